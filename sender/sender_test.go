package sender

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/logsink"
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

func (p *slowCluster) Wake()      {}
func (p *slowCluster) Interrupt() { close(p.interrupted) }
func (p *slowCluster) Close() ([]Completion, []*accumulator.Batch) {
	return nil, nil
}
func (p *slowCluster) Fatal() error { return nil }

func (p *slowCluster) Partitions(string, time.Time, bool) int {
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
	_, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
	defer s.Close(time.Now())
	l := s.Lane(-1)
	defer l.Release()
	answered := make(chan int)
	go func() { answered <- l.Partitions("t", time.Now().Add(time.Minute), false) }()
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

// recorder is a producer without a cluster: Poll reports the batches
// produced, as acknowledged, once report is set, with bogus after a
// completion of no batch, on which completing panics (Wait too, unless
// pollOnly: then it returns only on a Wake, or after 10 s); Close returns
// the batches produced and not reported, as acknowledged when acked is set
// (their reports came meanwhile), else as unreported.
type recorder struct {
	mu          sync.Mutex
	produced    []*accumulator.Batch
	records     atomic.Int64 // produced since it was made
	report      bool
	acked       bool
	fatal       error
	pollOnly    bool
	bogus       bool
	panicOn     int  // Produce panics on its panicOn-th call from now (0: never)
	pollPanics  int  // Poll panics on its next pollPanics calls
	waitPanics  bool // Wait panics
	wakes       atomic.Int32
	woken       chan struct{}
	interrupted chan struct{}
}

func newRecorder() *recorder {
	return &recorder{woken: make(chan struct{}, 1), interrupted: make(chan struct{})}
}

func (p *recorder) Produce(b *accumulator.Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.panicOn > 0 {
		if p.panicOn--; p.panicOn == 0 {
			panic("rdk: out of memory for a batch")
		}
	}
	p.produced = append(p.produced, b)
	p.records.Add(int64(len(b.Recs)))
}

func (p *recorder) Poll(timeout time.Duration, dst []Completion) []Completion {
	select {
	case <-p.interrupted:
	case <-time.After(min(timeout, 10*time.Millisecond)):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pollPanics > 0 {
		p.pollPanics--
		panic("rdk: a delivery report of no batch")
	}
	if p.report {
		if p.bogus && len(p.produced) > 0 {
			dst = append(dst, Completion{})
		}
		for _, b := range p.produced {
			dst = append(dst, Completion{Batch: b})
		}
		p.produced = nil
	}
	return dst
}

func (p *recorder) Wait(timeout time.Duration, dst []Completion) []Completion {
	p.mu.Lock()
	pollOnly, waitPanics := p.pollOnly, p.waitPanics
	p.mu.Unlock()
	if waitPanics {
		panic("rdk: waiting failed")
	}
	if !pollOnly {
		return p.Poll(timeout, dst)
	}
	select {
	case <-p.woken:
	case <-time.After(10 * time.Second):
	}
	return dst
}

func (p *recorder) Wake() {
	p.wakes.Add(1)
	select {
	case p.woken <- struct{}{}:
	default:
	}
}
func (p *recorder) Interrupt() { close(p.interrupted) }

func (p *recorder) Close() (done []Completion, unreported []*accumulator.Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.produced {
		if p.acked {
			done = append(done, Completion{Batch: b})
		} else {
			unreported = append(unreported, b)
		}
	}
	p.produced = nil
	return done, unreported
}

func (p *recorder) Fatal() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatal
}

// staged is n records of a chunk for the accumulator.
func staged(n int) *accumulator.Staged {
	s := &accumulator.Staged{}
	for i := range n {
		start := len(s.Buf)
		s.Buf = fmt.Appendf(s.Buf, "record %d", i)
		s.Add(i, start, len(s.Buf), len(s.Buf), false, 0)
	}
	return s
}

// produce appends n records for lane 0 and produces them into p. A SendAll
// that finds the send loop producing (full batches wake it) leaves the rest
// to it, and it sends a lingering batch only after Linger: so produce asks
// again until p has every record.
func produce(t *testing.T, acc *accumulator.Accumulator, s *Sender, p *recorder, n int) *accumulator.Waiter {
	t.Helper()
	w := accumulator.NewWaiter(n)
	want := p.records.Load() + int64(n)
	if got, err := acc.Append("t", -1, 0, staged(n), w, time.Now().Add(time.Minute)); got != n || err != nil {
		t.Fatal(got, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l := s.Lane(0)
		l.SendAll()
		l.Release()
		if p.records.Load() >= want {
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records produced", n-int(want-p.records.Load()), n)
		}
	}
}

// TestCloseCompletesReported: batches whose reports came before the
// producers closed count as Kafka reported them (here acknowledged), not
// as failed for a retry, which would send them again; and batches never
// reported fail for a retry.
func TestCloseCompletesReported(t *testing.T) {
	for _, acked := range []bool{true, false} {
		p := newRecorder()
		p.acked = acked
		acc, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
		w := produce(t, acc, s, p, 10)
		s.Close(time.Now())
		res, ok := acc.Wait(w, time.Now(), accumulator.Sleep)
		if want := 10 * btoi(acked); !ok || res.Delivered != want || res.Retriable != 10-want || acc.Acknowledged() != int64(want) {
			t.Errorf("acknowledged before Close %v: %+v, %d acknowledged", acked, res, acc.Acknowledged())
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRecreateCompletesReported: when a producer is replaced after a fatal
// error, its batches whose reports came meanwhile count as acknowledged, and
// those never reported fail for a retry at once: their flushes do not wait
// for them until their timeout, nor their memory stay held.
func TestRecreateCompletesReported(t *testing.T) {
	for _, acked := range []bool{true, false} {
		first := newRecorder() // its Close returns what it holds, as reported or not
		first.acked = acked
		prods := []*recorder{first, newRecorder()}
		var made atomic.Int32
		newProd := func() (Producer, error) { return prods[min(made.Add(1)-1, 1)], nil }
		acc := accumulator.New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{}) // one batch
		s, err := Start(acc, newProd, 1, func(int, string) {})
		if err != nil {
			t.Fatal(err)
		}
		w := produce(t, acc, s, first, 10)
		first.mu.Lock()
		first.fatal = errors.New("fenced")
		first.mu.Unlock()
		res, ok := acc.Wait(w, time.Now().Add(10*time.Second), accumulator.Sleep) // the send loop looks every second
		if want := 10 * btoi(acked); !ok || res.Delivered != want || res.Retriable != 10-want || s.Recreated() != 1 || s.inflight.Load() != 0 {
			t.Errorf("reported before the fatal error %v: %+v (done %v), %d producers replaced, %d batches in flight",
				acked, res, ok, s.Recreated(), s.inflight.Load())
		}
		s.Close(time.Now())
	}
}

// TestPollWakesOnlyAWaiter: the poll loop wakes a flush waiting in the
// producer after it completes batches, and no Wait when none waits (the
// next would end at once, for nothing).
func TestPollWakesOnlyAWaiter(t *testing.T) {
	p := newRecorder()
	p.report = true
	acc, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
	defer s.Close(time.Now())
	for i := range 3 {
		w := produce(t, acc, s, p, 10)
		if res, ok := acc.Wait(w, time.Now().Add(10*time.Second), accumulator.Sleep); !ok || res.Delivered != 10 {
			t.Fatalf("flush %d: %+v", i, res)
		}
		if n := s.inflight.Load(); n != 0 { // else Close would wait its whole deadline
			t.Fatalf("flush %d: %d batches in flight after every report came", i, n)
		}
	}
	if n := p.wakes.Load(); n != 0 {
		t.Fatalf("%d wakes with no flush waiting in the producer", n)
	}

	// A flush waits in the producer, whose reports only the poll loop takes.
	p.mu.Lock()
	p.report, p.pollOnly = false, true
	p.mu.Unlock()
	w := produce(t, acc, s, p, 10)
	l := s.Lane(0)
	defer l.Release()
	got := make(chan accumulator.Result, 1)
	go func() {
		res, _ := l.Wait(w, time.Now().Add(10*time.Second))
		got <- res
	}()
	for deadline := time.Now().Add(10 * time.Second); !l.awaiting.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flush does not wait in the producer")
		}
	}
	p.mu.Lock()
	p.report = true
	p.mu.Unlock()
	if res := <-got; res.Delivered != 10 {
		t.Fatalf("waiting flush: %+v", res)
	}
	if p.wakes.Load() == 0 {
		t.Fatal("the poll loop did not wake the flush waiting in the producer")
	}
}

// TestPanicWhileWaitingFreesTheLane: a flush whose wait in the producer
// panics (its export recovers) leaves the lane unlocked: Close does not
// wait for it for good.
func TestPanicWhileWaitingFreesTheLane(t *testing.T) {
	p := newRecorder()
	acc, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
	w := produce(t, acc, s, p, 10)
	p.mu.Lock()
	p.waitPanics = true
	p.mu.Unlock()
	l := s.Lane(0)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the wait did not panic")
			}
		}()
		l.Wait(w, time.Now().Add(10*time.Second))
	}()
	l.Release()
	closed := make(chan struct{})
	go func() {
		s.Close(time.Now())
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for the lane the panicking flush held")
	}
}

// TestPanicsInTheLoopsAreLogged: a panic in the delivery-report loop, or in
// completing one batch, is logged; it does not end the process, and the
// batches reported after it are completed.
func TestPanicsInTheLoopsAreLogged(t *testing.T) {
	p := newRecorder()
	p.pollPanics, p.bogus = 2, true
	logs := &logsink.Sink{}
	acc, s := startSender(t, func() (Producer, error) { return p, nil }, 1, logs.Log)
	defer s.Close(time.Now())
	w := produce(t, acc, s, p, 10)
	p.mu.Lock()
	p.report = true
	p.mu.Unlock()
	if res, ok := acc.Wait(w, time.Now().Add(10*time.Second), accumulator.Sleep); !ok || res.Delivered != 10 {
		t.Fatalf("%+v (done %v), want the 10 records delivered", res, ok)
	}
	if logs.Count("internal error in the delivery-report loop: rdk: a delivery report of no batch") != 2 ||
		logs.Count("internal error in completing a batch") != 1 {
		t.Fatalf("logged %q", logs)
	}
}

// TestPanicInTheSendLoopIsLogged: when producing panics in the send loop,
// the panic is logged, not the end of the process, and the batch fails for
// a retry.
func TestPanicInTheSendLoopIsLogged(t *testing.T) {
	p := newRecorder()
	p.panicOn = 1
	acc := accumulator.New(1<<16, 1<<20, time.Millisecond, fixture.GoAllocator{}) // one batch
	logged := make(chan string, 10)
	s, err := Start(acc, func() (Producer, error) { return p, nil }, 1, func(_ int, msg string) { logged <- msg })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(time.Now())
	w := accumulator.NewWaiter(10)
	if got, err := acc.Append("t", -1, 0, staged(10), w, time.Now().Add(time.Minute)); got != 10 || err != nil {
		t.Fatal(got, err)
	}
	// Not waiting: the batch lingers, then the send loop produces it.
	if msg := <-logged; !strings.Contains(msg, "internal error in the send loop: rdk: out of memory for a batch") {
		t.Fatalf("logged %q", msg)
	}
	if res, ok := acc.Wait(w, time.Now().Add(10*time.Second), accumulator.Sleep); !ok || res.Retriable != 10 {
		t.Fatalf("%+v (done %v), want the 10 records failed for a retry", res, ok)
	}
}

// TestPanicInProduceFailsTheRest: when producing a batch panics (C out of
// memory; the flush's export recovers), that batch and the rest of the pass
// fail for a retry; the batch produced before it stays in flight.
func TestPanicInProduceFailsTheRest(t *testing.T) {
	p := newRecorder()
	acc, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
	defer s.Close(time.Now())
	// A batch per partition, none full: only the flush's SendAll drains them.
	const partitions, each = 4, 3
	w := accumulator.NewWaiter(partitions * each)
	for part := range int32(partitions) {
		if got, err := acc.Append("t", part, 0, staged(each), w, time.Now().Add(time.Minute)); got != each || err != nil {
			t.Fatal(got, err)
		}
	}
	p.mu.Lock()
	p.panicOn = 2
	p.mu.Unlock()
	l := s.lanes[0]
	l.sending.Lock() // as SendAll, without giving way to the send loop
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Produce did not panic")
			}
		}()
		l.produce(acc.DrainAll(0, nil))
	}()
	l.sending.Unlock()
	res, done := acc.Wait(w, time.Now(), func(<-chan struct{}, time.Time) {})
	if done || res.InFlight != each || res.Retriable != (partitions-1)*each {
		t.Fatalf("in flight %d, failed for a retry %d (done %v); want the %d records of the batch produced in flight, the other %d failed",
			res.InFlight, res.Retriable, done, each, (partitions-1)*each)
	}
	if got := s.inflight.Load(); got != 1 {
		t.Fatalf("%d batches in flight, want 1", got)
	}
}

// TestAppendAfterClose: once the sender closed, the accumulator takes no
// records (nothing would send them): the flush retries them.
func TestAppendAfterClose(t *testing.T) {
	acc, s := startSender(t, func() (Producer, error) { return newRecorder(), nil }, 1, func(int, string) {})
	s.Close(time.Now())
	w := accumulator.NewWaiter(10)
	if n, err := acc.Append("t", -1, 0, staged(10), w, time.Now().Add(time.Minute)); n != 0 || !errors.Is(err, accumulator.ErrClosed) {
		t.Fatalf("appended %d (%v) after Close", n, err)
	}
	if res, ok := acc.Wait(w, time.Now(), accumulator.Sleep); !ok || res.InFlight != 0 || acc.Batches() != 0 {
		t.Fatalf("%+v, %d batches left", res, acc.Batches())
	}
}

// closeRecorder is a recorder that notes its Close.
type closeRecorder struct {
	*recorder
	closed atomic.Bool
}

func (p *closeRecorder) Close() ([]Completion, []*accumulator.Batch) {
	p.closed.Store(true)
	return p.recorder.Close()
}

// refuseAtClose is a recorder whose Close reports every batch produced as
// refused for good (as reports that came in while it closed).
type refuseAtClose struct{ *recorder }

func (p refuseAtClose) Close() (done []Completion, unreported []*accumulator.Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.produced {
		var failures []accumulator.Failure
		for i := range b.Recs {
			failures = append(failures, accumulator.Failure{Index: i, Err: 10, Reason: "too large", Permanent: true})
		}
		done = append(done, Completion{Batch: b, Failures: failures})
	}
	p.produced = nil
	return done, nil
}

// startSender starts a sender of at most lanes producers made by newProd,
// logging to log, over an accumulator of 1 KiB batches in 1 MiB that
// never lingers them out.
func startSender(t *testing.T, newProd NewProducer, lanes int, log func(int, string)) (*accumulator.Accumulator, *Sender) {
	t.Helper()
	acc := accumulator.New(1<<10, 1<<20, time.Hour, fixture.GoAllocator{})
	s, err := Start(acc, newProd, lanes, log)
	if err != nil {
		t.Fatal(err)
	}
	return acc, s
}

// onlyFirst makes first, then fails; made counts the calls.
func onlyFirst(first Producer, made *atomic.Int32) NewProducer {
	return func() (Producer, error) {
		if made.Add(1) == 1 {
			return first, nil
		}
		return nil, errors.New("out of memory")
	}
}

// TestLaneNotMadeAgainAfterFailing: when making another producer fails,
// flushes share the ones made; the next flushes do not try again (and log
// again) each time.
func TestLaneNotMadeAgainAfterFailing(t *testing.T) {
	var made atomic.Int32
	newProd := onlyFirst(newRecorder(), &made)
	logs := &logsink.Sink{}
	_, s := startSender(t, newProd, 3, logs.Log)
	defer s.Close(time.Now())
	var lanes []*Lane
	for range 4 { // flushes at once
		lanes = append(lanes, s.Lane(-1))
	}
	for _, l := range lanes {
		if l.Index() != 0 {
			t.Errorf("lane %d, want the first", l.Index())
		}
		l.Release()
	}
	if made.Load() != 2 || logs.Count("cannot make producer 2") != 1 {
		t.Fatalf("%d producers asked for, want 2; log %q", made.Load(), logs)
	}
}

// TestNewLaneCountsItsFlush: the flush that makes a lane uses it: the next
// flush that starts while both are in use gets a producer of its own. Each
// producer made is logged.
func TestNewLaneCountsItsFlush(t *testing.T) {
	logs := &logsink.Sink{}
	_, s := startSender(t, func() (Producer, error) { return newRecorder(), nil }, 3, logs.Log)
	defer s.Close(time.Now())
	var got []int
	for range 3 {
		l := s.Lane(-1)
		defer l.Release()
		got = append(got, l.Index())
	}
	if got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Fatalf("flushes at once got lanes %v, want 0, 1, 2", got)
	}
	if logs.Count("made producer 2 of at most 3") != 1 || logs.Count("made producer 3 of at most 3") != 1 {
		t.Errorf("log %q, want a line for each producer made", logs)
	}
}

// TestProducerMadeWhileClosingIsClosed: a producer that a flush was making
// when the sender closed is closed, not started (its threads and
// connections would outlive the instance).
func TestProducerMadeWhileClosingIsClosed(t *testing.T) {
	second := &closeRecorder{recorder: newRecorder()}
	making, gate := make(chan struct{}), make(chan struct{})
	var made atomic.Int32
	newProd := func() (Producer, error) {
		if made.Add(1) == 1 {
			return newRecorder(), nil
		}
		close(making)
		<-gate
		return second, nil
	}
	_, s := startSender(t, newProd, 2, func(int, string) {})
	first := s.Lane(-1)
	got := make(chan *Lane)
	go func() { got <- s.Lane(-1) }() // makes the second producer
	<-making
	s.Close(time.Now())
	close(gate)
	l := <-got
	l.Release()
	first.Release()
	if !second.closed.Load() || l.Index() != 0 {
		t.Fatalf("producer made during Close: closed %v; the flush got lane %d, want the first", second.closed.Load(), l.Index())
	}
}

// TestRecreateFailureLoggedOnce: while a producer that failed cannot be
// made again, the send loop tries every second, and says so once.
func TestRecreateFailureLoggedOnce(t *testing.T) {
	first := newRecorder()
	first.fatal = errors.New("fenced")
	var made atomic.Int32
	newProd := onlyFirst(first, &made)
	logs := &logsink.Sink{}
	_, s := startSender(t, newProd, 1, logs.Log)
	defer s.Close(time.Now())
	for deadline := time.Now().Add(10 * time.Second); made.Load() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d producers asked for in 10 s", made.Load())
		}
	}
	if n := logs.Count("cannot be made again"); n != 1 {
		t.Fatalf("logged %d times: %q", n, logs)
	}
}

// TestCloseFailsDeadLettersMadeAtClose: batches made for the dead-letter
// topic by the reports Close completes, which nothing will send, fail for a
// retry: their records are not left in flight, nor their memory held.
func TestCloseFailsDeadLettersMadeAtClose(t *testing.T) {
	acc := accumulator.New(1<<10, 1<<20, time.Hour, fixture.GoAllocator{})
	acc.SetDeadLetterTopic("dlq", 1<<20)
	p := refuseAtClose{newRecorder()}
	s, err := Start(acc, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
	if err != nil {
		t.Fatal(err)
	}
	w := produce(t, acc, s, p.recorder, 3)
	abandoned := s.Close(time.Now())
	res, ok := acc.Wait(w, time.Now(), accumulator.Sleep)
	if abandoned != 3 || !ok || res.Retriable != 3 || acc.Batches() != 0 || acc.Used() != 0 {
		t.Fatalf("abandoned %d, %+v (done %v), %d batches and %d bytes left", abandoned, res, ok, acc.Batches(), acc.Used())
	}
}

// TestGuardReportsAPanic: the loops sleep after a panic they logged, so
// that one that repeats does not spin.
func TestGuardReportsAPanic(t *testing.T) {
	logs := &logsink.Sink{}
	s := &Sender{log: logs.Log}
	if !s.guard("a test", func() { panic("x") }) || s.guard("a test", func() {}) {
		t.Fatal("guard does not tell a panic")
	}
	if logs.Count("internal error in a test: x") != 1 {
		t.Fatalf("log %q", logs)
	}
}

// TestClosedLaneUsesNoProducer: once a lane's producer is closed, the lane
// neither produces into it (a flush's SendAll) nor asks it (a partition
// count): in rdk it is freed C memory.
func TestClosedLaneUsesNoProducer(t *testing.T) {
	t.Run("SendAll", func(t *testing.T) {
		p := newRecorder()
		acc, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
		defer s.Close(time.Now())
		if n, err := acc.Append("t", -1, 0, staged(3), accumulator.NewWaiter(3), time.Now().Add(time.Minute)); n != 3 || err != nil {
			t.Fatal(n, err)
		}
		l := s.Lane(0)
		defer l.Release()
		l.mu.Lock() // as Close does
		l.closed = true
		l.mu.Unlock()
		l.SendAll()
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.produced) != 0 {
			t.Fatalf("%d batches produced into a closed producer", len(p.produced))
		}
	})
	t.Run("Partitions", func(t *testing.T) {
		p := &slowCluster{asked: make(chan struct{}, 1), answer: make(chan struct{}), interrupted: make(chan struct{})}
		close(p.answer)
		_, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
		l := s.Lane(-1)
		defer l.Release()
		s.Close(time.Now())
		if n := l.Partitions("t", time.Now().Add(time.Minute), false); n != -1 || len(p.asked) != 0 {
			t.Fatalf("a closed lane answered %d (asked %d times), want -1 without asking", n, len(p.asked))
		}
	})
}

// statsProducer is a recorder with librdkafka statistics, that counts how
// often it is asked for them.
type statsProducer struct {
	*recorder
	asked atomic.Int32
}

func (p *statsProducer) Statistics() []byte {
	p.asked.Add(1)
	return []byte(`{"msg_cnt":0}`)
}

// TestStatisticsAfterClose: a closed sender returns the statistics its
// producers had when they closed, without asking them.
func TestStatisticsAfterClose(t *testing.T) {
	p := &statsProducer{recorder: newRecorder()}
	_, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
	if got := s.Statistics(); len(got) != 1 || string(got[0]) != `{"msg_cnt":0}` {
		t.Fatalf("statistics %q", got)
	}
	s.Close(time.Now())
	asked := p.asked.Load()
	if got := s.Statistics(); len(got) != 1 || string(got[0]) != `{"msg_cnt":0}` || p.asked.Load() != asked {
		t.Fatalf("after Close: statistics %q, the producer asked %d more times", got, p.asked.Load()-asked)
	}
}

// TestPanicMakingAProducer: a panic while a flush makes a producer of its
// own (the export recovers it) is an error making one: later flushes are
// not kept from making theirs.
func TestPanicMakingAProducer(t *testing.T) {
	var calls atomic.Int32
	newProd := func() (Producer, error) {
		if calls.Add(1) == 2 {
			panic("rdk: out of memory")
		}
		return newRecorder(), nil
	}
	sink := &logsink.Sink{}
	_, s := startSender(t, newProd, 3, sink.Log)
	defer s.Close(time.Now())
	a := s.Lane(-1)
	defer a.Release()
	b := s.Lane(-1) // lane 0 busy: making lane 1 panics
	b.Release()
	if b.Index() != 0 || !strings.Contains(sink.String(), "cannot make producer 2, flushes share the 1 made: internal error: rdk: out of memory") {
		t.Fatalf("lane %d; log:\n%s", b.Index(), sink)
	}
	s.lanesMu.Lock()
	starting := s.starting
	s.lanesMu.Unlock()
	if starting {
		t.Fatal("still starting a producer after the panic")
	}
}

// TestFatalAgainBacksOff: a producer that fails soon after it was made is
// replaced after a delay that doubles, so that a cluster refusing every new
// producer is not reconnected to each second; one that lasted is replaced
// at once.
func TestFatalAgainBacksOff(t *testing.T) {
	oldCheck, oldSoon, oldBackoff := fatalCheck, failedSoon, remakeBackoff
	fatalCheck, failedSoon, remakeBackoff = 5*time.Millisecond, 100*time.Millisecond, [2]time.Duration{20 * time.Millisecond, 160 * time.Millisecond}
	t.Cleanup(func() { fatalCheck, failedSoon, remakeBackoff = oldCheck, oldSoon, oldBackoff })
	first := newRecorder()
	var made atomic.Int32
	newProd := func() (Producer, error) {
		if made.Add(1) == 1 {
			return first, nil
		}
		p := newRecorder()
		p.fatal = errors.New("CLUSTER_AUTHORIZATION_FAILED: refused")
		return p, nil
	}
	logs := &logsink.Sink{}
	_, s := startSender(t, newProd, 1, logs.Log)
	defer s.Close(time.Now())
	time.Sleep(2 * failedSoon) // the first lasts
	first.mu.Lock()
	first.fatal = errors.New("OUT_OF_ORDER_SEQUENCE_NUMBER: fenced")
	first.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); made.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d producers made; log:\n%s", made.Load(), logs)
		}
	}
	time.Sleep(time.Second)
	// Without the delay, 200 producers a second; with it, at most one per
	// 20, 40, 80, 160, 160... ms.
	if n := made.Load(); n > 12 {
		t.Errorf("%d producers made in a second", n)
	}
	lines := strings.Split(logs.String(), "\n")
	if !strings.HasSuffix(lines[0], "producer 1 failed (OUT_OF_ORDER_SEQUENCE_NUMBER: fenced); made a new one, 0 records in flight failed and will be retried") ||
		!strings.Contains(lines[1], "producer 1 failed (CLUSTER_AUTHORIZATION_FAILED: refused); made a new one, 0 records in flight failed and will be retried; it lasted ") ||
		!strings.HasSuffix(lines[1], ": a new one that fails as soon is replaced no sooner than 20ms after it is made") ||
		!strings.HasSuffix(lines[2], "no sooner than 40ms after it is made") {
		t.Fatalf("log:\n%s", logs)
	}
}

// TestIdlePoolFreedWithoutTraffic: the send loop keeps the batches a
// backlog left pooled for poolIdle at least, then frees them, though no
// record comes after the backlog to release a batch.
func TestIdlePoolFreedWithoutTraffic(t *testing.T) {
	oldCheck, oldIdle := fatalCheck, poolIdle
	fatalCheck, poolIdle = 5*time.Millisecond, time.Second
	t.Cleanup(func() { fatalCheck, poolIdle = oldCheck, oldIdle })
	p := newRecorder()
	p.report = true
	acc, s := startSender(t, func() (Producer, error) { return p, nil }, 1, func(int, string) {})
	defer s.Close(time.Now())
	w := produce(t, acc, s, p, 1000) // hundreds of 1 KiB batches
	if res, ok := acc.Wait(w, time.Now().Add(10*time.Second), accumulator.Sleep); !ok || res.Delivered != 1000 {
		t.Fatalf("backlog: %+v", res)
	}
	// The first look, at the start, found the pool empty: the batches go
	// at the third, 2 poolIdle after the start.
	for range 2 {
		if acc.Used() == 0 {
			t.Fatal("the sent batches were not kept for reuse")
		}
		time.Sleep(poolIdle / 4)
	}
	for deadline := time.Now().Add(10 * time.Second); acc.Used() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still pooled", acc.Used())
		}
	}
}
