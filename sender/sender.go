// Package sender drains ready batches from the accumulator into a Producer
// and feeds the producer's delivery reports back to the accumulator.
package sender

import (
	"fmt"
	"runtime/debug"
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
	// Close stops the producer. It returns the batches whose outcome it
	// knows and no Poll or Wait returned yet (their last report came
	// meanwhile), and apart from them the batches it never completed.
	Close() (done []Completion, unreported []*accumulator.Batch)
	// Fatal returns an error when the producer can send no more.
	Fatal() error
}

// NewProducer makes a producer: to start with, for another lane, and after
// a fatal error.
type NewProducer func() (Producer, error)

// pollInterval bounds how long the poll loop sleeps in the producer.
const pollInterval = 100 * time.Millisecond

// fatalCheck is the send loop's longest sleep. A producer that fails
// within failedSoon of being made (as every one does when the cluster
// refuses it an ID) makes the next one that does too wait before it is
// replaced, from when it was made: remakeBackoff[0], doubling up to
// remakeBackoff[1]. Each replacement connects to every broker anew.
// Pooled batches that no flush took for poolIdle are freed
// (Accumulator.DropIdle). Variables for tests.
var (
	fatalCheck    = time.Second
	poolIdle      = 30 * time.Second
	failedSoon    = 10 * time.Second
	remakeBackoff = [2]time.Duration{time.Second, time.Minute}
)

// Sender runs the send loop and the delivery-report loops of one instance.
// Its producers are its lanes: a flush uses one lane from start to end.
type Sender struct {
	acc       *accumulator.Accumulator
	newProd   NewProducer
	log       func(level int, msg string)
	inflight  atomic.Int64 // batches produced and not completed
	recreated atomic.Int64 // producers replaced after a fatal error
	stop      chan struct{}
	wg        sync.WaitGroup
	lanes     []*Lane      // the first started have a producer
	started   atomic.Int32 // lanes with a producer
	lanesMu   sync.Mutex   // guards the lanes' flushes, maxLanes, starting and closing
	maxLanes  int          // lanes that may be started
	starting  bool         // a flush is making the next lane's producer
	closing   bool         // no lane may start
}

// Lane is one producer of a Sender and what the flushes using it share: one
// thread produces at a time, so that a topic's batches reach librdkafka in
// the order they were drained, and one flush waits in the producer.
type Lane struct {
	s     *Sender
	index int
	// mu is held for reading while using prod, for writing to replace or
	// close it; the send loop, which replaces it, uses it without.
	mu        sync.RWMutex
	prod      Producer
	closed    bool         // prod is closed; guarded by mu
	lastStats []byte       // prod's statistics when it was closed; guarded by mu
	sending   sync.Mutex   // held while producing: by a flush in SendAll, or the send loop
	waiting   sync.Mutex   // held by the flush waiting in Producer.Wait
	waitBuf   []Completion // that flush's
	awaiting  atomic.Bool  // a flush waits in the producer (holds waiting)
	flushes   int          // flushes using the lane now; guarded by s.lanesMu
	// The send loop's, for replacing prod after a fatal error.
	remakeFailed bool          // making a new producer failed, and was logged
	made         time.Time     // when prod was made
	failed       time.Time     // when its fatal error was seen; zero for none
	remakeDelay  time.Duration // after a fatal error, prod is replaced no sooner than this after it was made
}

// Start makes a producer and runs a Sender over acc with it, which makes up
// to maxLanes-1 more for flushes that run at the same time (Lane).
func Start(acc *accumulator.Accumulator, newProd NewProducer, maxLanes int, log func(level int, msg string)) (*Sender, error) {
	s := &Sender{acc: acc, newProd: newProd, log: log, stop: make(chan struct{}), maxLanes: max(maxLanes, 1)}
	for i := range s.maxLanes {
		s.lanes = append(s.lanes, &Lane{s: s, index: i})
	}
	prod, err := newProd()
	if err != nil {
		return nil, err
	}
	s.startLane(s.lanes[0], prod)
	s.wg.Add(1)
	go s.sendLoop()
	return s, nil
}

// startLane starts lane l with prod and its delivery-report loop;
// s.lanesMu is held, or s is not running yet.
func (s *Sender) startLane(l *Lane, prod Producer) {
	l.prod, l.made = prod, time.Now()
	s.started.Add(1)
	s.wg.Add(1)
	go s.pollLoop(l)
}

// Lane returns the lane for a flush, which gives it back with Release:
// lane prefer (the chunk's earlier attempt's, or -1); else the one fewest
// flushes use, or a new one when all are in use and fewer than maxLanes
// exist. A flush alone (Workers 0 or 1) always gets the first; flushes at
// once get producers of their own rather than queueing behind each other
// on librdkafka's one thread and connection per broker.
func (s *Sender) Lane(prefer int) *Lane {
	s.lanesMu.Lock()
	started := s.lanes[:s.started.Load()]
	if prefer >= 0 && prefer < len(started) {
		started[prefer].flushes++
		s.lanesMu.Unlock()
		return started[prefer]
	}
	best := started[0]
	for _, l := range started[1:] {
		if l.flushes < best.flushes {
			best = l
		}
	}
	grow := best.flushes > 0 && len(started) < s.maxLanes && !s.starting && !s.closing
	if !grow {
		best.flushes++
		s.lanesMu.Unlock()
		return best
	}
	s.starting = true
	s.lanesMu.Unlock()
	if next := s.startNext(); next != nil {
		return next
	}
	s.lanesMu.Lock()
	best.flushes++
	s.lanesMu.Unlock()
	return best
}

// startNext makes the next lane's producer, without holding s.lanesMu, so
// that other flushes take and give back lanes meanwhile, and starts the
// lane for the caller; nil when it cannot, or the sender is closing.
// s.starting is set.
func (s *Sender) startNext() *Lane {
	prod, err := s.newProducer()
	s.lanesMu.Lock()
	s.starting = false
	next := s.lanes[s.started.Load()]
	switch {
	case err != nil:
		s.maxLanes = next.index
		s.lanesMu.Unlock()
		s.log(2, fmt.Sprintf("cannot make producer %d, flushes share the %d made: %v", next.index+1, next.index, err))
		return nil
	case s.closing:
		s.lanesMu.Unlock()
		prod.Close() // nothing produced
		return nil
	}
	s.startLane(next, prod)
	next.flushes++
	s.lanesMu.Unlock()
	s.log(3, fmt.Sprintf("flushes ran at once: made producer %d of at most %d", next.index+1, len(s.lanes)))
	return next
}

// Index is the lane's number, which the accumulator keeps its batches by.
func (l *Lane) Index() int { return l.index }

// Release gives the lane back.
func (l *Lane) Release() {
	l.s.lanesMu.Lock()
	l.flushes--
	l.s.lanesMu.Unlock()
}

// SendAll produces every batch of the lane on the caller's goroutine: a
// flush that has appended its records sends them itself rather than waking
// the send loop. When another flush or the send loop is producing already,
// it leaves its batches to them (its Wait wakes the send loop), since
// producers on several threads only contend in librdkafka.
func (l *Lane) SendAll() {
	if !l.sending.TryLock() {
		return
	}
	defer l.sending.Unlock()
	var buf [16]*accumulator.Batch
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	l.produce(l.s.acc.DrainAll(l.index, buf[:0]))
}

// produce hands batches to the producer; l.sending is held. When Produce
// panics (C out of memory; the flush's export, or the send loop's guard,
// recovers), that batch and the ones after it fail for a retry as the panic
// goes on: drained, they are in no queue, and their flushes would wait for
// them for good.
func (l *Lane) produce(batches []*accumulator.Batch) {
	i := 0
	defer func() {
		if i < len(batches) {
			l.s.inflight.Add(int64(len(batches) - i - 1)) // abort counts every batch out
			l.s.abort(batches[i:], "not produced: the producer failed")
		}
	}()
	for ; i < len(batches); i++ {
		l.s.inflight.Add(1)
		l.prod.Produce(batches[i])
		batches[i] = nil
	}
}

// Wait waits until Kafka reported on all of w's records in flight or the
// deadline passes, as Accumulator.Wait does. The first flush of the lane to
// wait takes its delivery reports itself, in C (Producer.Wait), as they
// come: a report then wakes its thread alone, where handing it over through
// Go's poller and scheduler costs several thread wake-ups per flush. Other
// flushes sleep until it, or the lane's poll loop once it has left,
// completes their batches.
func (l *Lane) Wait(w *accumulator.Waiter, deadline time.Time) (accumulator.Result, bool) {
	return l.s.acc.Wait(w, deadline, l.await)
}

func (l *Lane) await(done <-chan struct{}, deadline time.Time) {
	if !l.waiting.TryLock() {
		accumulator.Sleep(done, deadline)
		return
	}
	defer l.waiting.Unlock()
	// Set before done is looked at: a completion that the poll loop makes
	// after this either closes done before the look or wakes the Wait.
	l.awaiting.Store(true)
	defer l.awaiting.Store(false)
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
		if !l.waitInProducer(min(left, pollInterval)) {
			accumulator.Sleep(done, deadline) // Close completes every batch
			return
		}
	}
}

// waitInProducer waits up to timeout for delivery reports and completes
// their batches, under l.mu as the poll loop (Close drains after); false
// once the producer is closed. l.mu is released also if the producer's Wait
// panics (the flush's export recovers), else Close would wait for it for good.
func (l *Lane) waitInProducer(timeout time.Duration) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return false
	}
	l.waitBuf = l.prod.Wait(timeout, l.waitBuf[:0])
	l.s.complete(l.waitBuf)
	return true
}

// Statistics returns each producer's latest librdkafka statistics (JSON),
// nil for one that has none; once closed, those it had then.
func (s *Sender) Statistics() [][]byte {
	var out [][]byte
	for _, l := range s.lanes[:s.started.Load()] {
		l.mu.RLock()
		js := l.lastStats
		if !l.closed {
			js = statistics(l.prod)
		}
		l.mu.RUnlock()
		out = append(out, js)
	}
	return out
}

// statistics returns p's latest librdkafka statistics, nil for none.
func statistics(p Producer) []byte {
	if p, ok := p.(interface{ Statistics() []byte }); ok {
		return p.Statistics()
	}
	return nil
}

// Partitions returns how many partitions topic has, as the lane's producer
// knows them, asking the cluster until deadline at most, or -1 when it
// cannot tell; with retry (records held back for want of the count are
// being retried) it asks even if the cluster could not tell lately. It asks
// without holding l.mu, so that replacing the producer meanwhile does not
// wait for the answer: once closed, the producer answers with what it knew,
// asking nothing.
func (l *Lane) Partitions(topic string, deadline time.Time, retry bool) int {
	l.mu.RLock()
	p, ok := l.prod.(interface {
		Partitions(string, time.Time, bool) int
	})
	ok = ok && !l.closed
	l.mu.RUnlock()
	if !ok {
		return -1
	}
	return p.Partitions(topic, deadline, retry)
}

// newProducer makes a producer; a panic doing so is an error, so that the
// lane bookkeeping around it (s.starting) is not left half-done.
func (s *Sender) newProducer() (p Producer, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return s.newProd()
}

// Recreated counts the producers replaced after fatal errors.
func (s *Sender) Recreated() int64 { return s.recreated.Load() }

// recreate replaces l's producer, which hit a fatal error. Its batches not
// yet reported fail retriably, so their flushes retry them; a record that
// was in flight may then arrive twice. Called by the send loop.
func (s *Sender) recreate(l *Lane, cause error) {
	prod, err := s.newProducer()
	if err != nil {
		if !l.remakeFailed {
			l.remakeFailed = true
			s.log(1, fmt.Sprintf("producer %d failed (%v) and cannot be made again: %v", l.index+1, cause, err))
		}
		return
	}
	l.mu.Lock()
	old := l.prod
	l.prod = prod
	l.mu.Unlock()
	done, left := old.Close() // no flush uses old now; closing it may wait up to a second
	now := time.Now()
	lived := l.failed.Sub(l.made)
	l.remakeFailed, l.made, l.failed = false, now, time.Time{}
	s.recreated.Add(1)
	failed := s.complete(done) + s.abort(left, "producer replaced after a fatal error")
	msg := fmt.Sprintf("producer %d failed (%v); made a new one, %d records in flight failed and will be retried", l.index+1, cause, failed)
	if lived < failedSoon {
		l.remakeDelay = min(max(2*l.remakeDelay, remakeBackoff[0]), remakeBackoff[1])
		msg += fmt.Sprintf("; it lasted %s: a new one that fails as soon is replaced no sooner than %s after it is made", lived.Round(time.Millisecond), l.remakeDelay)
	} else {
		l.remakeDelay = 0
	}
	s.log(2, msg)
}

// abort completes batches never reported on (or never produced) as failed,
// for a retry, and returns how many records they held.
func (s *Sender) abort(batches []*accumulator.Batch, reason string) int {
	n := 0
	for _, b := range batches {
		s.inflight.Add(-1) // first, as in complete: Abort wakes its flush
		n += s.acc.Abort(b, reason)
	}
	return n
}

func (s *Sender) sendLoop() {
	defer s.wg.Done()
	var ready []*accumulator.Batch
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Flushes produce their own batches and seldom wake this loop: it
		// looks for a fatal producer error (or retries making a producer),
		// and frees idle pooled batches, at least every fatalCheck.
		next := fatalCheck
		for _, l := range s.lanes[:s.started.Load()] {
			var wait time.Duration
			s.guard("the send loop", func() { ready, wait = s.sendLane(l, ready[:0]) })
			if wait > 0 {
				next = min(next, wait)
			}
		}
		s.guard("the send loop", func() { s.acc.DropIdle(time.Now(), poolIdle) })
		timer.Reset(next)
		select {
		case <-s.acc.Wake():
		case <-timer.C:
		case <-s.stop:
			return
		}
	}
}

// sendLane replaces l's producer after a fatal error and produces l's
// ready batches; it returns ready's storage and how long until the next
// batch is ready (0: none waits).
func (s *Sender) sendLane(l *Lane, ready []*accumulator.Batch) ([]*accumulator.Batch, time.Duration) {
	if err := l.prod.Fatal(); err != nil {
		if l.failed.IsZero() {
			l.failed = time.Now()
		}
		if time.Since(l.made) >= l.remakeDelay {
			s.recreate(l, err)
		}
	}
	l.sending.Lock()
	defer l.sending.Unlock()
	ready, wait := s.acc.Drain(time.Now(), l.index, ready)
	l.produce(ready)
	return ready, wait
}

func (s *Sender) pollLoop(l *Lane) {
	defer s.wg.Done()
	var done []Completion
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		if s.guard("the delivery-report loop", func() { done = s.poll(l, done[:0]) }) {
			time.Sleep(pollInterval) // a panic that repeats does not spin
		}
	}
}

// poll takes l's delivery reports for up to pollInterval and completes
// their batches; it returns done's storage.
func (s *Sender) poll(l *Lane, done []Completion) []Completion {
	l.mu.RLock()
	defer l.mu.RUnlock()
	done = l.prod.Poll(pollInterval, done)
	if len(done) > 0 {
		s.complete(done)
		if l.awaiting.Load() { // else a Wake would end the next Wait at once, for nothing
			l.prod.Wake()
		}
	}
	return done
}

// guard runs f and logs a panic in it, as an export recovers one: on a
// goroutine of the plugin's own, a panic would end Fluent Bit, with every
// chunk it holds in memory. It reports whether f panicked.
func (s *Sender) guard(where string, f func()) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log(1, fmt.Sprintf("internal error in %s: %v\n%s", where, r, debug.Stack()))
			panicked = true
		}
	}()
	f()
	return false
}

// complete reports the batches' outcomes to the accumulator, and returns
// how many records failed for now. A panic completing one batch is logged,
// and the batches after it are still completed: their flushes would
// otherwise wait for them for good.
func (s *Sender) complete(done []Completion) (retriable int) {
	for i := range done {
		c := done[i]
		done[i] = Completion{}
		s.inflight.Add(-1)
		s.guard("completing a batch", func() { retriable += s.acc.Complete(c.Batch, c.Failures) })
	}
	return retriable
}

// Close sends what the accumulator holds and waits for its delivery reports
// until deadline, then stops the producers: batches whose reports came
// meanwhile are completed with them, those still unreported as failed, so
// their memory is freed. The accumulator takes no records from Close on.
// It returns how many records failed for now at the end, never acknowledged.
func (s *Sender) Close(deadline time.Time) int {
	s.acc.Close()
	for time.Now().Before(deadline) && (s.inflight.Load() > 0 || s.acc.Batches() > 0) {
		time.Sleep(5 * time.Millisecond)
	}
	s.lanesMu.Lock()
	s.closing = true
	s.lanesMu.Unlock()
	close(s.stop)
	lanes := s.lanes[:s.started.Load()]
	for _, l := range lanes {
		l.mu.RLock()
		l.prod.Interrupt()
		l.mu.RUnlock()
	}
	s.wg.Wait()
	done := make([][]Completion, len(lanes))
	unreported := make([][]*accumulator.Batch, len(lanes))
	var closing sync.WaitGroup
	for i, l := range lanes { // at once: each may wait up to a second
		closing.Go(func() {
			l.mu.Lock() // a flush waiting in Producer.Wait leaves it first
			l.closed, l.lastStats = true, statistics(l.prod)
			l.mu.Unlock()
			done[i], unreported[i] = l.prod.Close()
		})
	}
	closing.Wait()
	abandoned := 0
	for i := range lanes { // records purged from librdkafka's queues fail, for a retry
		abandoned += s.complete(done[i]) + s.abort(unreported[i], stopped)
	}
	// Batches never produced: left when the deadline passed, or made by
	// those completions (records sent again, or to the dead-letter topic). The accumulator takes
	// no records since its Close, so none comes after.
	for _, b := range s.acc.DrainAll(accumulator.AllLanes, nil) {
		abandoned += s.acc.Abort(b, stopped)
	}
	return abandoned
}

const stopped = "plugin stopped before Kafka acknowledged it"
