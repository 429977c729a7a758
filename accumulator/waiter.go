package accumulator

import "time"

// maxExamples bounds how many failed records a waiter keeps to log.
const maxExamples = 10

// State is what became of one record of a chunk.
type State uint8

const (
	Unsent       State = iota // not handed to the accumulator (yet)
	InFlight                  // appended, no report yet
	Acked                     // acknowledged by Kafka
	Retriable                 // failed for now: send again on the chunk's retry
	Dropped                   // can never be delivered
	DeadLettered              // delivered to the dead-letter topic instead
)

// Settled reports states a retry of the chunk must not send again.
func (s State) Settled() bool { return s == Acked || s == Dropped || s == DeadLettered }

// Waiter follows the records of one chunk until Kafka has reported on each,
// across the flush attempts of that chunk. Its fields are guarded by the
// accumulator's lock; read them with Wait's result.
type Waiter struct {
	state   []State // by record index in the chunk
	pending int     // records in flight
	done    chan struct{}
	Result
	// Counted is the part of the result the flush that holds the waiter
	// has already added to its statistics; only that flush touches it.
	Counted Result
}

// Result counts a waiter's records.
type Result struct {
	Delivered    int
	DeadLettered int
	Restamped    int // sent again with the produce time, Kafka having refused them for their timestamp or named them invalid
	Retriable    int // failed for now in the last attempt
	Permanent    int // can never be delivered: dropped
	InFlight     int // no report yet
	Examples     []FailedRecord
}

// FailedRecord describes a record Kafka did not take, for the log.
type FailedRecord struct {
	Topic        string
	Size         int
	Records      int // batch mode: the records of the failed batch message; 0 for one record
	Reason       string
	Permanent    bool
	ToDeadLetter bool // being sent to the dead-letter topic
}

func (w *Waiter) example(r FailedRecord) {
	if len(w.Examples) < maxExamples {
		w.Examples = append(w.Examples, r)
	}
}

// NewWaiter follows a chunk of n records.
func NewWaiter(n int) *Waiter { return &Waiter{state: make([]State, n)} }

// Len is the number of records followed.
func (w *Waiter) Len() int { return len(w.state) }

// State returns record i's state; only call it when no record is in flight
// (after a Wait that returned ok).
func (w *Waiter) State(i int) State { return w.state[i] }

// settle records the outcome of record i of the chunk.
func (w *Waiter) settle(b *Batch, j int, f *Failure, example bool) {
	i := b.idx[j]
	switch {
	case f == nil && b.DeadLetter:
		w.state[i] = DeadLettered
		w.DeadLettered++
	case f == nil:
		w.state[i] = Acked
		w.Delivered++
	default:
		if f.Permanent {
			w.state[i] = Dropped
			w.Permanent++
		} else {
			w.state[i] = Retriable
			w.Retriable++
		}
		if example {
			w.example(FailedRecord{Topic: b.Topic, Size: b.size(j), Records: b.records(), Reason: f.Reason, Permanent: f.Permanent})
		}
	}
	w.pending--
	if w.pending == 0 && w.done != nil {
		close(w.done)
		w.done = nil
	}
}

// Drop marks record i, which is not in flight, as never deliverable.
func (a *Accumulator) Drop(w *Waiter, i int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !w.state[i].Settled() {
		w.state[i] = Dropped
		w.Permanent++
	}
}

// records is how many records a batch message holds, 0 for a batch of
// records.
func (b *Batch) records() int {
	if b.frame != nil {
		return len(b.idx)
	}
	return 0
}

// size is record j's size: its value's, or in batch mode the whole batch
// message's.
func (b *Batch) size(j int) int {
	if b.frame != nil {
		return int(b.Recs[0].Len)
	}
	return int(b.Recs[j].Len)
}

// Block waits until done is closed or deadline passes, whichever comes
// first; it may return earlier.
type Block func(done <-chan struct{}, deadline time.Time)

// Sleep is the plain Block.
func Sleep(done <-chan struct{}, deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
}

// Wait makes every batch ready and waits with block until Kafka reported on
// all of w's records in flight or the deadline passes; ok is false on
// timeout. The result counts every attempt so far, and clears the examples
// and the retriable count for the next attempt.
func (a *Accumulator) Wait(w *Waiter, deadline time.Time, block Block) (res Result, ok bool) {
	a.mu.Lock()
	done := w.done
	if w.pending > 0 && done == nil {
		done = make(chan struct{})
		w.done = done
	}
	a.flushing++
	if len(a.deques) > 0 {
		a.signal() // every batch is ready now
	}
	a.mu.Unlock()

	if done != nil {
		block(done, deadline)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushing--
	res = w.Result
	res.InFlight = w.pending
	w.Retriable, w.Examples = 0, nil
	return res, w.pending == 0
}
