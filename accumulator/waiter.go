package accumulator

import (
	"slices"
	"time"
)

// maxExamples bounds how many kinds of failure a waiter keeps to log.
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
	Tag     string // the chunk's, for the plugin's log
}

// Result counts a waiter's records.
type Result struct {
	Delivered    int
	DeadLettered int
	Restamped    int // sent again with the produce time, Kafka having refused them for their timestamp or named them invalid
	Retriable    int // failed for now in the last attempt
	Permanent    int // can never be delivered: dropped
	InFlight     int // no report yet
	Examples     []FailedRecords
}

// FailureKind tells failures apart in the log.
type FailureKind struct {
	Topic        string
	Reason       string
	Permanent    bool
	ToDeadLetter bool // being sent to the dead-letter topic
	BatchMessage bool // batch mode: the records failed with their batch message
}

// FailedRecords counts the records of one chunk that Kafka did not take
// for one kind of failure, for the log.
type FailedRecords struct {
	FailureKind
	Records  int
	Messages int // batch messages, in batch mode
	MaxSize  int // bytes of the largest record, or batch message
}

// note counts record j of b, failed with f, among w's examples; first says
// it is the first of w's records in a batch message. Beyond maxExamples
// kinds, one that loses records takes the place of one that is retried.
func (w *Waiter) note(b *Batch, j int, f *Failure, toDeadLetter, first bool) {
	kind := FailureKind{Topic: b.Topic, Reason: f.Reason, Permanent: f.Permanent, ToDeadLetter: toDeadLetter, BatchMessage: b.frame != nil}
	i := slices.IndexFunc(w.Examples, func(e FailedRecords) bool { return e.FailureKind == kind })
	if i < 0 {
		i = len(w.Examples)
		if i == maxExamples {
			if i = slices.IndexFunc(w.Examples, func(e FailedRecords) bool { return !e.Permanent }); i < 0 || !kind.Permanent {
				return
			}
			w.Examples = slices.Delete(w.Examples, i, i+1)
			i = len(w.Examples)
		}
		w.Examples = append(w.Examples, FailedRecords{FailureKind: kind})
	}
	e := &w.Examples[i]
	e.Records++
	if b.frame == nil || first {
		e.MaxSize = max(e.MaxSize, b.size(j))
		if b.frame != nil {
			e.Messages++
		}
	}
}

// NewWaiter follows a chunk of n records.
func NewWaiter(n int) *Waiter { return &Waiter{state: make([]State, n)} }

// Len is the number of records followed.
func (w *Waiter) Len() int { return len(w.state) }

// State returns record i's state; only call it when no record is in flight
// (after a Wait that returned ok).
func (w *Waiter) State(i int) State { return w.state[i] }

// settle records the outcome of record j of b; first says it is the first
// of w's records in a batch message.
func (w *Waiter) settle(b *Batch, j int, f *Failure, first bool) {
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
		w.note(b, j, f, false, first)
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
	defer func() { // also when block panics: else every batch would stay ready, Linger ignored
		a.mu.Lock()
		defer a.mu.Unlock()
		a.flushing--
		res = w.Result
		res.InFlight = w.pending
		w.Retriable, w.Examples = 0, nil
		ok = w.pending == 0
	}()
	if done != nil {
		block(done, deadline)
	}
	return // with what the deferred function sets
}
