package accumulator

import "time"

// maxExamples bounds how many failed records a flush keeps to log.
const maxExamples = 10

// Waiter follows the records of one flush until Kafka has reported on each.
// Its fields are guarded by the accumulator's lock; read them with Result.
type Waiter struct {
	pending int // appended, not yet reported
	sealed  bool
	done    chan struct{}
	Result
}

// Result is how a flush's records fared.
type Result struct {
	Delivered int
	Retriable int // failed for now: the chunk must be retried
	Permanent int // can never be delivered: dropped
	Examples  []FailedRecord
}

// FailedRecord describes a record Kafka did not take, for the log.
type FailedRecord struct {
	Topic     string
	Size      int
	Reason    string
	Permanent bool
}

// NewWaiter starts following a flush.
func NewWaiter() *Waiter { return &Waiter{done: make(chan struct{})} }

func (w *Waiter) fail(b *Batch, f Failure) {
	if f.Permanent {
		w.Permanent++
	} else {
		w.Retriable++
	}
	if len(w.Examples) < maxExamples {
		r := b.Recs[f.Index]
		w.Examples = append(w.Examples, FailedRecord{b.Topic, int(r.Len), f.Reason, f.Permanent})
	}
}

func (w *Waiter) check() {
	if w.sealed && w.pending == 0 {
		close(w.done)
		w.sealed = false // close once
	}
}

// Wait makes every batch ready and waits until Kafka reported on all of w's
// records or the deadline passes; ok is false on timeout, and the result then
// counts what was reported so far.
func (a *Accumulator) Wait(w *Waiter, deadline time.Time) (res Result, ok bool) {
	a.mu.Lock()
	w.sealed = true
	w.check()
	a.flushing++
	a.signal()
	a.mu.Unlock()

	t := time.NewTimer(time.Until(deadline))
	select {
	case <-w.done:
		ok = true
	case <-t.C:
	}
	t.Stop()

	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushing--
	res = w.Result
	res.Examples = append([]FailedRecord(nil), w.Examples...)
	return res, ok
}
