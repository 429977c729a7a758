package sender

import (
	"testing"
	"time"

	"github.com/gokafka/gokafka/accumulator"
)

// slowCluster is a producer without a cluster that answers a partition
// count once answer is closed.
type slowCluster struct {
	asked, answer, interrupted chan struct{}
}

func (p *slowCluster) Produce(*accumulator.Batch) {}

func (p *slowCluster) Poll(timeout time.Duration, dst []Completion) []Completion {
	select {
	case <-p.interrupted:
	case <-time.After(timeout):
	}
	return dst
}

func (p *slowCluster) Wait(timeout time.Duration, dst []Completion) []Completion {
	return p.Poll(timeout, dst)
}

func (p *slowCluster) Wake()                       {}
func (p *slowCluster) Interrupt()                  { close(p.interrupted) }
func (p *slowCluster) Close() []*accumulator.Batch { return nil }
func (p *slowCluster) Fatal() error                { return nil }

func (p *slowCluster) Partitions(string, time.Time) int {
	p.asked <- struct{}{}
	<-p.answer
	return 3
}

// TestPartitionsLeaveTheLane: while a flush asks the lane's producer for a
// partition count, replacing the producer (which takes the lane for
// writing) does not wait for the answer, nor do the poll loop and the
// flushes behind it.
func TestPartitionsLeaveTheLane(t *testing.T) {
	p := &slowCluster{asked: make(chan struct{}), answer: make(chan struct{}), interrupted: make(chan struct{})}
	acc := accumulator.New(1<<10, 1<<20, time.Hour, accumulator.GoAllocator{})
	s, err := Start(acc, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(time.Now())
	l := s.Lane(-1)
	defer l.Release()
	answered := make(chan int)
	go func() { answered <- l.Partitions("t", time.Now().Add(time.Minute)) }()
	<-p.asked
	locked := make(chan struct{})
	go func() {
		l.mu.Lock()
		close(locked)
		l.mu.Unlock()
	}()
	select {
	case <-locked:
	case <-time.After(time.Second):
		t.Error("the lane stays locked while its producer is asked")
	}
	close(p.answer)
	if n := <-answered; n != 3 {
		t.Fatalf("%d partitions, want 3", n)
	}
}
