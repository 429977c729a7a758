// Package sender drains ready batches from the accumulator into a Producer
// and feeds the producer's delivery reports back to the accumulator.
package sender

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gokafka/gokafka/accumulator"
)

// Completion is the outcome of one produced batch: every record not listed
// in Failures was acknowledged by Kafka.
type Completion struct {
	Batch    *accumulator.Batch
	Failures []accumulator.Failure
}

// Producer ships whole batches to Kafka.
type Producer interface {
	// Produce hands b over; its outcome comes back from Poll, also when it
	// fails at once.
	Produce(b *accumulator.Batch)
	// Poll waits up to timeout for delivery reports and appends the
	// batches they completed to dst.
	Poll(timeout time.Duration, dst []Completion) []Completion
	// Wait is Poll for a flush waiting on its own thread; while it waits,
	// delivery reports wake it rather than Poll. Not called concurrently
	// with itself.
	Wait(timeout time.Duration, dst []Completion) []Completion
	// Wake ends the Wait in progress, or else the next one, at once: the
	// poll loop completed batches, perhaps those the waiting flush waits for.
	Wake()
	// Interrupt ends the Poll in progress, and every later one, at once:
	// the poll loop is stopping.
	Interrupt()
	// Close stops the producer and returns the batches it never completed.
	Close() []*accumulator.Batch
	// Fatal returns an error when the producer can send no more.
	Fatal() error
}

// NewProducer makes a producer, to start with and after a fatal error.
type NewProducer func() (Producer, error)

// pollInterval bounds how long the poll loop sleeps in the producer.
const pollInterval = 100 * time.Millisecond

// fatalCheck is the send loop's longest sleep.
const fatalCheck = time.Second

// Sender runs the send loop and the delivery-report loop of one instance.
type Sender struct {
	acc        *accumulator.Accumulator
	newProd    NewProducer
	log        func(level int, msg string)
	inflight   atomic.Int64 // batches produced and not completed
	recreated  atomic.Int64 // producers replaced after a fatal error
	stop       chan struct{}
	wg         sync.WaitGroup
	mu         sync.RWMutex // held for reading while polling, for writing to replace or close prod
	closed     bool         // prod is closed; guarded by mu
	sending    sync.Mutex   // held while producing: by a flush in SendAll, or the send loop
	waiting    sync.Mutex   // held by the flush waiting in Producer.Wait
	waitBuf    []Completion // that flush's
	prod       Producer
	fatalSince time.Time // when recreating the producer first failed
}

// Start makes a producer and runs a Sender over acc with it.
func Start(acc *accumulator.Accumulator, newProd NewProducer, log func(level int, msg string)) (*Sender, error) {
	prod, err := newProd()
	if err != nil {
		return nil, err
	}
	s := &Sender{acc: acc, newProd: newProd, log: log, prod: prod, stop: make(chan struct{})}
	s.wg.Add(2)
	go s.sendLoop()
	go s.pollLoop()
	return s, nil
}

// SendAll produces every batch of the accumulator on the caller's
// goroutine: a flush that has appended its records sends them itself rather
// than waking the send loop. When another flush or the send loop is
// producing already, it leaves its batches to them (its Wait wakes the send
// loop), since producers on several threads only contend in librdkafka.
func (s *Sender) SendAll() {
	if !s.sending.TryLock() {
		return
	}
	defer s.sending.Unlock()
	var buf [16]*accumulator.Batch
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	for _, b := range s.acc.DrainAll(buf[:0]) {
		s.inflight.Add(1)
		s.prod.Produce(b)
	}
}

// Wait waits until Kafka reported on all of w's records in flight or the
// deadline passes, as Accumulator.Wait does. The first flush to wait takes
// the delivery reports itself, in C (Producer.Wait), as they come: a report
// then wakes its thread alone, where handing it over through Go's poller and
// scheduler costs several thread wake-ups per flush. Other flushes sleep
// until it, or the poll loop once it has left, completes their batches.
func (s *Sender) Wait(w *accumulator.Waiter, deadline time.Time) (accumulator.Result, bool) {
	return s.acc.Wait(w, deadline, s.await)
}

func (s *Sender) await(done <-chan struct{}, deadline time.Time) {
	if !s.waiting.TryLock() {
		accumulator.Sleep(done, deadline)
		return
	}
	defer s.waiting.Unlock()
	for {
		select {
		case <-done:
			return
		default:
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			accumulator.Sleep(done, deadline) // Close completes every batch
			return
		}
		s.waitBuf = s.prod.Wait(min(left, pollInterval), s.waitBuf[:0])
		s.mu.RUnlock()
		s.complete(s.waitBuf)
	}
}

// Partitions returns how many partitions topic has, or -1 when the
// producer cannot tell.
func (s *Sender) Partitions(topic string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.prod.(interface{ Partitions(string) int }); ok {
		return p.Partitions(topic)
	}
	return -1
}

// Statistics returns the producer's latest librdkafka statistics (JSON), or
// nil when it has none.
func (s *Sender) Statistics() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.prod.(interface{ Statistics() []byte }); ok {
		return p.Statistics()
	}
	return nil
}

// Recreated counts the producers replaced after fatal errors.
func (s *Sender) Recreated() int64 { return s.recreated.Load() }

// recreate replaces a producer that hit a fatal error. Its batches not yet
// reported fail retriably, so their flushes retry them; a record that was
// in flight may then arrive twice. Called by the send loop.
func (s *Sender) recreate(cause error) {
	prod, err := s.newProd()
	if err != nil {
		if s.fatalSince.IsZero() {
			s.fatalSince = time.Now()
			s.log(1, fmt.Sprintf("producer failed (%v) and cannot be made again: %v", cause, err))
		}
		return
	}
	s.mu.Lock()
	old := s.prod
	s.prod = prod
	s.mu.Unlock()
	left := old.Close() // no flush uses old now; closing it may wait up to a second
	s.fatalSince = time.Time{}
	s.recreated.Add(1)
	s.log(2, fmt.Sprintf("producer failed (%v); made a new one, %d batches in flight will be retried", cause, len(left)))
	for _, b := range left {
		s.acc.Abort(b, "producer replaced after a fatal error")
		s.inflight.Add(-1)
	}
}

func (s *Sender) sendLoop() {
	defer s.wg.Done()
	var ready []*accumulator.Batch
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := s.prod.Fatal(); err != nil {
			s.recreate(err)
		}
		// One thread produces at a time (SendAll too), so that batches of a
		// partition reach librdkafka in the order they were drained.
		s.sending.Lock()
		var next time.Duration
		ready, next = s.acc.Drain(time.Now(), ready[:0])
		for i, b := range ready {
			s.inflight.Add(1)
			s.prod.Produce(b)
			ready[i] = nil
		}
		s.sending.Unlock()
		// Flushes produce their own batches and seldom wake this loop: it
		// looks for a fatal producer error (or retries making a producer)
		// at least this often.
		if next == 0 || next > fatalCheck {
			next = fatalCheck
		}
		timer.Reset(next)
		select {
		case <-s.acc.Wake():
		case <-timer.C:
		case <-s.stop:
			return
		}
	}
}

func (s *Sender) pollLoop() {
	defer s.wg.Done()
	var done []Completion
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		s.mu.RLock()
		done = s.prod.Poll(pollInterval, done[:0])
		if len(done) > 0 {
			s.complete(done)
			s.prod.Wake()
		}
		s.mu.RUnlock()
	}
}

func (s *Sender) complete(done []Completion) {
	for i, c := range done {
		s.acc.Complete(c.Batch, c.Failures)
		s.inflight.Add(-1)
		done[i] = Completion{}
	}
}

// Close sends what the accumulator holds and waits for its delivery reports
// until deadline, then stops the producer; batches still unreported then
// are completed as failed, so their memory is freed.
func (s *Sender) Close(deadline time.Time) {
	s.acc.Close()
	for time.Now().Before(deadline) && (s.inflight.Load() > 0 || s.acc.Batches() > 0) {
		time.Sleep(5 * time.Millisecond)
	}
	close(s.stop)
	s.mu.RLock()
	s.prod.Interrupt()
	s.mu.RUnlock()
	s.wg.Wait()
	unsent, _ := s.acc.Drain(time.Now(), nil)
	s.mu.Lock() // a flush waiting in Producer.Wait leaves it first
	s.closed = true
	s.mu.Unlock()
	left := s.prod.Close()
	for _, b := range append(unsent, left...) {
		s.acc.Abort(b, "plugin stopped before Kafka acknowledged it")
	}
}
