// Package sender drains ready batches from the accumulator into a Producer
// and feeds the producer's delivery reports back to the accumulator.
package sender

import (
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
	// Close stops the producer and returns the batches it never completed.
	Close() []*accumulator.Batch
}

// pollInterval bounds how long the poll loop sleeps in the producer.
const pollInterval = 100 * time.Millisecond

// Sender runs the send loop and the delivery-report loop of one instance.
type Sender struct {
	acc      *accumulator.Accumulator
	prod     Producer
	inflight atomic.Int64 // batches produced and not completed
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Start runs a Sender over acc and prod.
func Start(acc *accumulator.Accumulator, prod Producer) *Sender {
	s := &Sender{acc: acc, prod: prod, stop: make(chan struct{})}
	s.wg.Add(2)
	go s.sendLoop()
	go s.pollLoop()
	return s
}

func (s *Sender) sendLoop() {
	defer s.wg.Done()
	var ready []*accumulator.Batch
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var next time.Duration
		ready, next = s.acc.Drain(time.Now(), ready[:0])
		for i, b := range ready {
			s.inflight.Add(1)
			s.prod.Produce(b)
			ready[i] = nil
		}
		if next == 0 {
			next = time.Hour
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
		done = s.prod.Poll(pollInterval, done[:0])
		s.complete(done)
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
	s.wg.Wait()
	unsent, _ := s.acc.Drain(time.Now(), nil)
	for _, b := range append(unsent, s.prod.Close()...) {
		s.acc.Abort(b, "plugin stopped before Kafka acknowledged it")
	}
}
