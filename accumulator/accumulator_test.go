package accumulator

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gokafka/gokafka/test/fixture"
)

// staged builds n records of size bytes each, with a 2-byte key.
func staged(n, size int) *Staged { return stagedFrom(0, n, size) }

// stagedFrom builds records first to first+n-1 of a chunk.
func stagedFrom(first, n, size int) *Staged {
	s := &Staged{}
	for i := first; i < first+n; i++ {
		start := len(s.Buf)
		s.Buf = append(s.Buf, fmt.Sprintf("%0*d", size, i)...)
		keyStart := len(s.Buf)
		s.Buf = append(s.Buf, "k1"...)
		s.Add(i, start, keyStart, len(s.Buf), true, int64(i))
	}
	return s
}

func far() time.Time { return time.Now().Add(time.Hour) }

// perBatch10 is a batch size that holds 10 records of 100 bytes (98 and
// a 2-byte key, counted twice: see Cost).
const perBatch10 = 10 * (102 + RecordOverhead)

func TestBatchesBoundedBySize(t *testing.T) {
	a := New(perBatch10, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(100)
	if n, err := a.Append("t", -1, 0, staged(25, 98), w, far()); n != 25 || err != nil {
		t.Fatal(n, err)
	}
	// 100 bytes per record (98 + key): 10 per batch; the first two are full.
	ready, _ := a.Drain(time.Now(), AllLanes, nil)
	if len(ready) != 2 || len(ready[0].Recs) != 10 || len(ready[1].Recs) != 10 {
		t.Fatalf("ready batches: %d", len(ready))
	}
	b := ready[1]
	if r := b.Recs[3]; string(b.Buf[r.Off:r.Off+r.Len]) != fmt.Sprintf("%098d", 13) || string(b.Buf[r.Off+r.Len:r.Off+r.Len+r.KeyLen]) != "k1" || r.TimeMs != 13 {
		t.Fatalf("record 13 misplaced: %+v", r)
	}
	if a.Batches() != 1 {
		t.Fatalf("the partial batch should linger, %d left", a.Batches())
	}
}

// TestLanesKeepTheirBatches: records of one topic for two lanes go into
// separate batches; a lane's drain takes only its own; a dead-letter batch
// goes out through the lane of the batch Kafka refused, with the record's key.
func TestLanesKeepTheirBatches(t *testing.T) {
	a := New(1<<20, 16<<20, time.Hour, fixture.GoAllocator{})
	a.SetDeadLetterTopic("dlq", 1<<20)
	w0, w1 := NewWaiter(3), NewWaiter(2)
	a.Append("t", -1, 0, staged(3, 10), w0, far())
	a.Append("t", -1, 1, staged(2, 10), w1, far())
	one := a.DrainAll(1, nil)
	if len(one) != 1 || one[0].Lane != 1 || len(one[0].Recs) != 2 || a.Batches() != 1 {
		t.Fatalf("lane 1 drained %d batches, %d left", len(one), a.Batches())
	}
	a.Complete(one[0], []Failure{{Index: 1, Err: 10, Reason: "too large", Permanent: true}})
	if zero := a.DrainAll(0, nil); len(zero) != 1 || zero[0].Lane != 0 || len(zero[0].Recs) != 3 {
		t.Fatalf("lane 0 drained %d batches", len(zero))
	}
	dl := a.DrainAll(1, nil)
	if len(dl) != 1 || !dl[0].DeadLetter || dl[0].Topic != "dlq" || dl[0].Lane != 1 || a.Batches() != 0 {
		t.Fatalf("lane 1 drained %d batches, want its dead letter", len(dl))
	}
	if r := dl[0].Recs[0]; !r.Keyed || string(dl[0].Buf[r.Off+r.Len:r.Off+r.Len+r.KeyLen]) != "k1" {
		t.Errorf("dead letter's key %+v, want the record's", r)
	}
}

func TestLingerAndFlushReadiness(t *testing.T) {
	a := New(1000, 1<<20, time.Hour, fixture.GoAllocator{})
	a.Append("t", -1, 0, staged(1, 10), NewWaiter(1), far())
	ready, next := a.Drain(time.Now(), AllLanes, nil)
	if len(ready) != 0 || next <= 0 || next > time.Hour {
		t.Fatalf("ready=%d next=%v", len(ready), next)
	}
	if ready, _ = a.Drain(time.Now().Add(2*time.Hour), AllLanes, nil); len(ready) != 1 {
		t.Fatalf("after linger: %d ready", len(ready))
	}
	// A waiting flush makes every batch ready at once, long before linger.
	w := NewWaiter(1)
	a.Append("t", -1, 0, staged(1, 10), w, far())
	waited := make(chan struct{})
	go func() {
		a.Wait(w, far(), Sleep)
		close(waited)
	}()
	<-a.Wake()
	if ready, _ = a.Drain(time.Now(), AllLanes, nil); len(ready) != 1 {
		t.Fatalf("while a flush waits: %d ready, want 1", len(ready))
	}
	a.Complete(ready[0], nil)
	<-waited
}

// TestPanicWhileWaitingKeepsLinger: a flush whose wait panics (its export
// recovers) stops making every batch ready: later batches linger again.
func TestPanicWhileWaitingKeepsLinger(t *testing.T) {
	a := New(1000, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(1)
	a.Append("t", -1, 0, staged(1, 10), w, far())
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the wait did not panic")
			}
		}()
		a.Wait(w, far(), func(<-chan struct{}, time.Time) { panic("waiting") })
	}()
	if ready, next := a.Drain(time.Now(), AllLanes, nil); len(ready) != 0 || next <= 0 {
		t.Fatalf("after the panicking wait: %d ready (next in %v), want the batch to linger", len(ready), next)
	}
}

// TestFailuresNotedByKind: a chunk's failures are counted by kind for the
// log, and Complete returns how many failed for now. Beyond maxExamples
// kinds, a record refused for good still gets its line, in place of a
// retried kind.
func TestFailuresNotedByKind(t *testing.T) {
	a := New(1<<20, 16<<20, time.Hour, fixture.GoAllocator{})
	const n = maxExamples + 4
	w := NewWaiter(n)
	a.Append("t", -1, 0, staged(n-1, 10), w, far())
	a.Append("t", -1, 0, stagedFrom(n-1, 1, 22), w, far()) // the largest
	var failures []Failure
	for i := range maxExamples + 1 { // a kind each
		failures = append(failures, Failure{Index: i, Err: 1, Reason: fmt.Sprint("transient ", i)})
	}
	failures = append(failures, Failure{Index: maxExamples + 1, Err: 10, Reason: "too large", Permanent: true},
		Failure{Index: n - 1, Err: 10, Reason: "too large", Permanent: true})
	if retriable := a.Complete(a.DrainAll(AllLanes, nil)[0], failures); retriable != maxExamples+1 {
		t.Errorf("Complete says %d records failed for now, want %d", retriable, maxExamples+1)
	}
	res, _ := a.Wait(w, far(), Sleep)
	if len(res.Examples) != maxExamples || res.Retriable != maxExamples+1 || res.Permanent != 2 || res.Delivered != 1 {
		t.Fatalf("%+v", res)
	}
	last := res.Examples[maxExamples-1]
	if last.Reason != "too large" || !last.Permanent || last.Records != 2 || last.MaxSize != 22 {
		t.Errorf("the records refused for good are noted as %+v", last)
	}
}

func TestWaiterOutcome(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	w1, w2 := NewWaiter(4), NewWaiter(2)
	a.Append("t", -1, 0, staged(3, 10), w1, far())
	a.Append("t", -1, 0, staged(2, 10), w2, far())
	a.Append("t", -1, 0, stagedFrom(3, 1, 10), w1, far())
	done := make(chan Result)
	go func() {
		res, ok := a.Wait(w1, far(), Sleep)
		if !ok {
			t.Error("w1 timed out")
		}
		done <- res
	}()
	var ready []*Batch
	for len(ready) == 0 {
		ready, _ = a.Drain(time.Now(), AllLanes, nil)
	}
	// Records 1 (w1) and 4 (w2) fail; record 5 belongs to w1 again.
	a.Complete(ready[0], []Failure{{Index: 4, Err: 1, Reason: "later"}, {Index: 1, Err: 10, Reason: "too large", Permanent: true}})
	res := <-done
	if res.Delivered != 3 || res.Permanent != 1 || res.Retriable != 0 || len(res.Examples) != 1 || res.Examples[0].MaxSize != 10 || res.Examples[0].Records != 1 {
		t.Fatalf("w1: %+v", res)
	}
	if w1.State(0) != Acked || w1.State(1) != Dropped || w1.State(3) != Acked {
		t.Fatalf("w1 states %v", w1.state)
	}
	res, ok := a.Wait(w2, far(), Sleep)
	if !ok || res.Delivered != 1 || res.Retriable != 1 || w2.State(1) != Retriable || w2.State(1).Settled() {
		t.Fatalf("w2: %+v %v", res, ok)
	}
	// A retry sends the retriable record again; the waiter keeps its count.
	s := stagedFrom(1, 1, 10)
	a.Append("t", -1, 0, s, w2, far())
	ready, _ = a.Drain(time.Now().Add(2*time.Hour), AllLanes, nil)
	a.Complete(ready[0], nil)
	if res, ok = a.Wait(w2, far(), Sleep); !ok || res.Delivered != 2 || res.Retriable != 0 || w2.State(1) != Acked {
		t.Fatalf("w2 after retry: %+v %v", res, ok)
	}
}

func TestMemoryBound(t *testing.T) {
	a := New(perBatch10, 3*perBatch10, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(40)
	start := time.Now()
	n, err := a.Append("t", -1, 0, staged(40, 98), w, start.Add(50*time.Millisecond))
	if n != 30 || !errors.Is(err, ErrMemoryTimeout) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("appended %d (%v): want 30 then a memory timeout", n, err)
	}
	if a.Used() != 3*perBatch10 {
		t.Fatalf("used %d", a.Used())
	}
	// Completing a batch releases memory to a blocked appender.
	ready, _ := a.Drain(time.Now(), AllLanes, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if n, err := a.Append("t", -1, 0, staged(10, 98), w, far()); n != 10 || err != nil {
			t.Errorf("after release: %d, %v", n, err)
		}
	}()
	time.Sleep(10 * time.Millisecond)
	a.Complete(ready[0], nil)
	wg.Wait()
	if a.Used() != 3*perBatch10 {
		t.Fatalf("used %d after reuse", a.Used())
	}
	// A record that can never fit.
	if n, err := a.Append("t", -1, 0, staged(1, 3*perBatch10), w, far()); n != 0 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized: %d %v", n, err)
	}
}

// TestMemoryWaitersServedInTurn: an appender waiting for a large buffer
// gets the memory released after it began to wait; appenders that come
// later wait behind it instead of taking that memory piece by piece.
func TestMemoryWaitersServedInTurn(t *testing.T) {
	a := New(perBatch10, 3*perBatch10, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(30)
	a.Append("t", -1, 0, staged(30, 98), w, far())
	ready := a.DrainAll(AllLanes, nil) // the budget's three batches
	select {
	case <-a.Wake():
	default:
	}
	large := make(chan error)
	go func() { // needs two batches' memory
		n, err := a.Append("large", -1, 0, stagedFrom(1, 1, 2*perBatch10-RecordOverhead-4), w, time.Now().Add(time.Second))
		if n != 1 && err == nil {
			err = fmt.Errorf("appended %d", n)
		}
		large <- err
	}()
	<-a.Wake() // it waits for memory
	for i, b := range ready {
		a.Complete(b, nil)
		a.Append(fmt.Sprint("t", i), -1, 0, staged(10, 98), NewWaiter(10), time.Now().Add(20*time.Millisecond))
	}
	if err := <-large; err != nil {
		t.Fatalf("the large record: %v", err)
	}
}

func TestOversizedRecordGetsItsOwnBatch(t *testing.T) {
	a := New(1000, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(100)
	a.Append("t", -1, 0, staged(1, 5000), w, far())
	a.Close()
	ready, _ := a.Drain(time.Now(), AllLanes, nil)
	if want := 5004 + RecordOverhead; len(ready) != 1 || cap(ready[0].Buf) != want || a.Used() != int64(want) {
		t.Fatalf("batches %d, used %d", len(ready), a.Used())
	}
	a.Complete(ready[0], nil)
	if a.Used() != 0 {
		t.Fatalf("closed accumulator kept %d bytes", a.Used())
	}
}

func TestConcurrentAppends(t *testing.T) {
	a := New(4096, 1<<20, time.Millisecond, fixture.GoAllocator{})
	stop := make(chan struct{})
	go func() { // a sender that acknowledges everything
		var ready []*Batch
		for {
			select {
			case <-stop:
				return
			case <-a.Wake():
			case <-time.After(time.Millisecond):
			}
			ready, _ = a.Drain(time.Now(), AllLanes, ready[:0])
			for _, b := range ready {
				a.Complete(b, nil)
			}
		}
	}()
	defer close(stop)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				w := NewWaiter(100)
				s := staged(100, 50)
				if n, err := a.Append(fmt.Sprint("t", i%3), -1, 0, s, w, far()); n != 100 || err != nil {
					t.Error(n, err)
				}
				if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 100 {
					t.Errorf("flush: %+v %v", res, ok)
				}
			}
		}()
	}
	wg.Wait()
}

// TestCostCountsKeyAndHeaders: a record takes from a batch its bytes plus
// what C holds for it: a copy of its key and headers, its message, and per
// header librdkafka's struct (Cost).
func TestCostCountsKeyAndHeaders(t *testing.T) {
	s := &Staged{}
	for i := range 100 {
		start := len(s.Buf)
		s.Buf = fmt.Appendf(s.Buf, "%098d", i)
		keyStart := len(s.Buf)
		s.Buf = append(s.Buf, "key of fifty bytes..............................."...)
		hdrStart := len(s.Buf)
		s.Buf = AppendHeader(s.Buf, []byte("name"), []byte("value"))
		s.Buf = AppendHeader(s.Buf, []byte("trace"), []byte("0af7651916cd43dd8448eb211c80319c"))
		s.Add(i, start, keyStart, hdrStart, true, 0)
	}
	r := s.Recs[0]
	inBatch, inC := int(r.Size()), int(r.KeyLen+r.HdrLen)+RecordOverhead+HeadersOverhead+2*HeaderOverhead
	if got := Cost(r, s.Buf[r.Off+r.Len+r.KeyLen:r.Off+r.Size()]); got != inBatch+inC {
		t.Fatalf("cost %d, want %d", got, inBatch+inC)
	}
	a := New(10*(inBatch+inC), 1<<20, time.Hour, fixture.GoAllocator{})
	if n, err := a.Append("t", -1, 0, s, NewWaiter(100), far()); n != 100 || err != nil {
		t.Fatal(n, err)
	}
	batches := a.DrainAll(AllLanes, nil)
	if len(batches) != 10 {
		t.Fatalf("%d batches, want 10", len(batches))
	}
	for i, b := range batches {
		if len(b.Recs) != 10 {
			t.Fatalf("batch %d holds %d records, want 10", i, len(b.Recs))
		}
	}
}

// TestAppendAfterCloseRefused: once closed, the accumulator takes no
// records, and an Append waiting for memory gives up at once: nothing
// would send them.
func TestAppendAfterCloseRefused(t *testing.T) {
	a := New(perBatch10, perBatch10, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(20)
	waited := make(chan error)
	go func() {
		_, err := a.Append("t", -1, 0, staged(20, 98), w, far()) // the second batch waits
		waited <- err
	}()
	<-a.Wake()
	a.Close()
	select {
	case err := <-waited:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("waiting Append: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Append waiting for memory still waits after Close")
	}
	ready := a.DrainAll(AllLanes, nil)
	if n, err := a.Append("t", -1, 0, stagedFrom(10, 10, 98), NewWaiter(20), far()); n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("appended %d (%v) after Close", n, err)
	}
	if a.Batches() != 0 || len(ready) != 1 {
		t.Fatalf("%d batches drained, %d left", len(ready), a.Batches())
	}
}

// stagedAt builds records 0 to len(times)-1 of a chunk, with these event
// times (0: the produce time), values of 10 digits and a 2-byte key.
func stagedAt(times ...int64) *Staged {
	s := &Staged{}
	for i, t := range times {
		start := len(s.Buf)
		s.Buf = append(s.Buf, fmt.Sprintf("%010d", i)...)
		keyStart := len(s.Buf)
		s.Buf = append(s.Buf, "k1"...)
		s.Add(i, start, keyStart, len(s.Buf), true, t)
	}
	return s
}

// sentAgain is what a resent batch holds: each record's value and time.
func sentAgain(t *testing.T, b *Batch) string {
	t.Helper()
	var out []string
	for _, r := range b.Recs {
		if key := string(b.Buf[r.Off+r.Len : r.Off+r.Len+r.KeyLen]); key != "k1" {
			t.Fatalf("key %q", key)
		}
		out = append(out, fmt.Sprintf("%s@%d", b.Buf[r.Off:r.Off+r.Len], r.TimeMs))
	}
	return strings.Join(out, " ")
}

// TestResendNamedRecords: Kafka names the invalid records of a request
// (librdkafka: INVALID_RECORD), the others refused beside them. All go
// again at once, in their order, to their topic and partition: the named
// ones with the produce time, once, then dead-lettered; the others as they
// were, once, then left for the chunk's retry.
func TestResendNamedRecords(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetDeadLetterTopic("dlq", 1<<20)
	w := NewWaiter(5)
	a.Append("t", 2, 0, stagedAt(1, 2, 3, 4, 5), w, far())
	invalid := func(i int) Failure {
		return Failure{Index: i, Err: 87, Reason: "invalid", Permanent: true, Refusal: RefusedInvalid}
	}
	beside := func(i int) Failure { return Failure{Index: i, Err: -138, Reason: "beside", Refusal: RefusedBeside} }
	a.Complete(a.DrainAll(0, nil)[0], []Failure{invalid(0), beside(1), {Index: 2, Err: 10, Reason: "too large", Permanent: true}, invalid(3)})
	again := a.DrainAll(0, nil)
	if len(again) != 2 || again[0].DeadLetter == again[1].DeadLetter {
		t.Fatalf("%d batches after the refusal, want the resent and the dead letter", len(again))
	}
	re, dl := again[0], again[1]
	if re.DeadLetter {
		re, dl = dl, re
	}
	if got := sentAgain(t, re); re.Topic != "t" || re.Partition != 2 || got != "0000000000@0 0000000001@2 0000000003@0" {
		t.Fatalf("resent to %s[%d]: %s", re.Topic, re.Partition, got)
	}
	a.Complete(dl, nil)
	a.Complete(re, []Failure{invalid(0), beside(1)}) // refused again
	last := a.DrainAll(0, nil)
	if len(last) != 1 || !last[0].DeadLetter || last[0].Recs[0].TimeMs != 0 {
		t.Fatalf("%d batches after the second refusal, want a dead letter with the produce time", len(last))
	}
	a.Complete(last[0], nil)
	res, ok := a.Wait(w, far(), Sleep)
	if !ok || res.Delivered != 2 || res.DeadLettered != 2 || res.Restamped != 2 || res.Retriable != 1 || res.Permanent != 0 {
		t.Fatalf("%+v %v", res, ok)
	}
	if w.State(1) != Retriable || w.State(0) != DeadLettered || w.State(3) != Acked {
		t.Fatalf("states %v", w.state)
	}
}

// TestResendOldestRefused: Kafka refuses a request for one timestamp
// without naming the record (librdkafka: INVALID_TIMESTAMP on each). The
// oldest goes again with the produce time, the others as they were; one
// refused again is restamped then, or, already on the produce time, left
// for the chunk's retry, never dropped.
func TestResendOldestRefused(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(4)
	a.Append("t", -1, 0, stagedAt(5, 3, 0, 4), w, far())
	badTime := func(i int) Failure {
		return Failure{Index: i, Err: 32, Reason: "Invalid timestamp", Refusal: RefusedTimestamp}
	}
	a.Complete(a.DrainAll(0, nil)[0], []Failure{badTime(0), badTime(1), badTime(2), badTime(3)})
	again := a.DrainAll(0, nil)
	if len(again) != 1 {
		t.Fatalf("%d batches resent", len(again))
	}
	if got := sentAgain(t, again[0]); got != "0000000000@5 0000000001@0 0000000002@0 0000000003@4" {
		t.Fatalf("resent: %s", got)
	}
	a.Complete(again[0], []Failure{badTime(0), badTime(2)})
	last := a.DrainAll(0, nil)
	if len(last) != 1 || sentAgain(t, last[0]) != "0000000000@0" {
		t.Fatalf("%d batches after the second refusal", len(last))
	}
	a.Complete(last[0], nil)
	res, ok := a.Wait(w, far(), Sleep)
	if !ok || res.Delivered != 3 || res.Restamped != 2 || res.Retriable != 1 || res.Permanent != 0 || w.State(2) != Retriable {
		t.Fatalf("%+v %v", res, ok)
	}
}

// TestResendKeepsOrder: records sent again go ahead of those queued after
// them, in the order they were first sent; a record refused beside others
// and then named invalid itself is restamped, not dropped.
func TestResendKeepsOrder(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	first, later := NewWaiter(3), NewWaiter(6)
	a.Append("t", 0, 0, stagedAt(1, 2, 3), first, far())
	sent := a.DrainAll(0, nil)
	a.Append("t", 0, 0, stagedFrom(3, 3, 10), later, far()) // queued while the first is in flight
	beside := func(i int) Failure { return Failure{Index: i, Err: -138, Reason: "beside", Refusal: RefusedBeside} }
	a.Complete(sent[0], []Failure{beside(0), beside(1), beside(2)})
	again := a.DrainAll(0, nil)
	if len(again) != 2 || sentAgain(t, again[0]) != "0000000000@1 0000000001@2 0000000002@3" || again[1].idx[0] != 3 {
		t.Fatalf("%d batches, the first %s", len(again), sentAgain(t, again[0]))
	}
	a.Complete(again[1], nil)
	a.Complete(again[0], []Failure{{Index: 1, Err: 87, Reason: "invalid", Permanent: true, Refusal: RefusedInvalid}})
	last := a.DrainAll(0, nil)
	if len(last) != 1 || sentAgain(t, last[0]) != "0000000001@0" {
		t.Fatalf("%d batches after the second refusal", len(last))
	}
	a.Complete(last[0], nil)
	if res, ok := a.Wait(first, far(), Sleep); !ok || res.Delivered != 3 || res.Restamped != 1 {
		t.Fatalf("%+v %v", res, ok)
	}
}

// completeAll completes every batch there is as acknowledged.
func completeAll(a *Accumulator) {
	for _, b := range a.DrainAll(AllLanes, nil) {
		a.Complete(b, nil)
	}
}

// drainWake empties the wake-up channel.
func drainWake(a *Accumulator) {
	select {
	case <-a.Wake():
	default:
	}
}

// TestCostCountsEmptyHeaderLast: a header with an empty value, last of its
// record, is one the C producer adds (rd_kafka_header_add), so it costs as
// any other.
func TestCostCountsEmptyHeaderLast(t *testing.T) {
	s := &Staged{Buf: []byte("value")}
	hdr := len(s.Buf)
	s.Buf = AppendHeader(s.Buf, []byte("empty"), nil)
	s.Add(0, 0, hdr, hdr, false, 0)
	r := s.Recs[0]
	want := int(r.Size()+r.HdrLen) + RecordOverhead + HeadersOverhead + HeaderOverhead
	if got := Cost(r, s.Buf[hdr:]); got != want {
		t.Fatalf("cost %d, want %d (one header)", got, want)
	}
}

// TestFullBatchWakesTheSender: a batch that fills while a flush is still
// appending wakes the send loop, which produces it meanwhile.
func TestFullBatchWakesTheSender(t *testing.T) {
	a := New(perBatch10, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(11)
	a.Append("t", -1, 0, staged(10, 98), w, far()) // exactly one batch
	drainWake(a)
	a.Append("t", -1, 0, stagedFrom(10, 1, 98), w, far()) // starts the next: the first is full
	select {
	case <-a.Wake():
	default:
		t.Fatal("a batch filled and the send loop was not woken")
	}
}

// TestOversizedRecordAfterPooledBatch: a record larger than Batch_Size gets
// a buffer of its own size, counted in the budget, also when a pooled batch
// is free: a pooled buffer would grow past what the budget counts (and a C
// buffer cannot grow).
func TestOversizedRecordAfterPooledBatch(t *testing.T) {
	a := New(1000, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(2)
	a.Append("t", -1, 0, staged(1, 10), w, far())
	completeAll(a) // its batch is pooled
	a.Append("t", -1, 0, stagedFrom(1, 1, 5000), w, far())
	ready := a.DrainAll(AllLanes, nil)
	want := 5004 + RecordOverhead
	if len(ready) != 1 || cap(ready[0].Buf) != want || a.Used() != int64(1000+want) {
		t.Fatalf("%d batches, capacity %d (want %d), %d bytes used (want %d)", len(ready), cap(ready[0].Buf), want, a.Used(), 1000+want)
	}
}

// TestMemoryQueueEmptyAfterAWait: an appender that waited for memory and got
// it leaves the queue of waiters; the next appender then takes free memory
// at once rather than waiting behind no one.
func TestMemoryQueueEmptyAfterAWait(t *testing.T) {
	a := New(perBatch10, perBatch10, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(30)
	a.Append("t", -1, 0, staged(10, 98), w, far()) // the budget's one batch
	ready := a.DrainAll(AllLanes, nil)
	drainWake(a)
	waited := make(chan error, 1)
	go func() {
		_, err := a.Append("t", -1, 0, stagedFrom(10, 10, 98), w, far())
		waited <- err
	}()
	<-a.Wake() // it waits for memory
	a.Complete(ready[0], nil)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	completeAll(a)
	if n, err := a.Append("t", -1, 0, stagedFrom(20, 10, 98), w, time.Now().Add(2*time.Second)); n != 10 || err != nil {
		t.Fatalf("with the budget free: appended %d (%v)", n, err)
	}
}

// TestMemoryGivenBackAtClose: Close frees the pooled buffers, a batch
// completed after Close is freed rather than pooled, and a batch of records
// sent again counts in the budget until it is completed: once every batch is
// completed, no memory is left (with the plugin's C allocator, what is left
// leaks at each hot reload).
func TestMemoryGivenBackAtClose(t *testing.T) {
	a := New(perBatch10, 10*perBatch10, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(30)
	a.Append("t", -1, 0, staged(30, 98), w, far())
	ready := a.DrainAll(AllLanes, nil)
	if len(ready) != 3 {
		t.Fatalf("%d batches", len(ready))
	}
	a.Complete(ready[0], nil) // pooled
	a.Complete(ready[1], []Failure{{Index: 0, Err: -138, Reason: "beside", Refusal: RefusedBeside}})
	again := a.DrainAll(AllLanes, nil) // the record sent again, in a batch of its own
	if len(again) != 1 || a.Used() != int64(3*perBatch10+cap(again[0].Buf)) {
		t.Fatalf("%d batches sent again, %d bytes used", len(again), a.Used())
	}
	a.Close()
	a.Complete(ready[2], nil)
	a.Complete(again[0], nil)
	if a.Used() != 0 {
		t.Fatalf("%d bytes used after Close with every batch completed", a.Used())
	}
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 30 {
		t.Fatalf("%+v", res)
	}
}

// TestPooledDeadLetterBatchReset: a dead-letter batch whose buffer is pooled
// (its size Batch_Size by chance) comes back as a plain batch: its records
// count as delivered to their topic, not as dead-lettered.
func TestPooledDeadLetterBatchReset(t *testing.T) {
	deadLetterOf := func(a *Accumulator, w *Waiter) *Batch {
		a.Append("t", -1, 0, staged(1, 10), w, far())
		a.Complete(a.DrainAll(AllLanes, nil)[0], []Failure{{Index: 0, Err: 10, Reason: "too large", Permanent: true}})
		return a.DrainAll(AllLanes, nil)[0]
	}
	probe := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	probe.SetDeadLetterTopic("dlq", 1<<20)
	size := cap(deadLetterOf(probe, NewWaiter(1)).Buf)

	a := New(size, 1<<20, time.Hour, fixture.GoAllocator{}) // dead-letter batches of Batch_Size
	a.SetDeadLetterTopic("dlq", 1<<20)
	dl := deadLetterOf(a, NewWaiter(1))
	if !dl.DeadLetter || cap(dl.Buf) != size {
		t.Fatalf("dead letter of %d bytes, want %d", cap(dl.Buf), size)
	}
	a.Complete(dl, nil) // pooled, the newest
	w := NewWaiter(1)
	a.Append("t", -1, 0, staged(1, 10), w, far())
	b := a.DrainAll(AllLanes, nil)[0]
	if b.DeadLetter {
		t.Error("a pooled dead-letter batch still marked as one")
	}
	a.Complete(b, nil)
	if res, _ := a.Wait(w, far(), Sleep); res.Delivered != 1 || res.DeadLettered != 0 || w.State(0) != Acked {
		t.Fatalf("%+v, state %v", res, w.State(0))
	}
}

// TestDeliveredByTopic: the per-topic count of acknowledged records (the
// metrics endpoint's) counts the records Kafka acknowledged, not those it
// refused.
func TestDeliveredByTopic(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(5)
	a.Append("t", -1, 0, staged(3, 10), w, far())
	a.Append("u", -1, 0, stagedFrom(3, 2, 10), w, far())
	for _, b := range a.DrainAll(AllLanes, nil) {
		var failures []Failure
		if b.Topic == "t" {
			failures = []Failure{{Index: 1, Err: 1, Reason: "later"}}
		}
		a.Complete(b, failures)
	}
	if got := fmt.Sprint(a.DeliveredByTopic()); got != "map[t:2 u:2]" {
		t.Fatalf("delivered by topic %s", got)
	}
}

// TestDuplicateFailures: a record reported failed twice counts once, and
// the failures of the records after it still count.
func TestDuplicateFailures(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(4)
	a.Append("t", -1, 0, staged(4, 10), w, far())
	later := func(i int) Failure { return Failure{Index: i, Err: 1, Reason: "later"} }
	if n := a.Complete(a.DrainAll(AllLanes, nil)[0], []Failure{later(2), later(1), later(1)}); n != 2 {
		t.Errorf("Complete says %d failed for now, want 2", n)
	}
	res, ok := a.Wait(w, far(), Sleep)
	if !ok || res.Delivered != 2 || res.Retriable != 2 || w.State(1) != Retriable || w.State(2) != Retriable || w.State(3) != Acked {
		t.Fatalf("%+v, states %v", res, w.state)
	}
}

// TestDeadLetterRefusedIsDropped: a record the dead-letter topic refuses
// for good is dropped, not dead-lettered again and again.
func TestDeadLetterRefusedIsDropped(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetDeadLetterTopic("dlq", 1<<20)
	w := NewWaiter(1)
	a.Append("t", -1, 0, staged(1, 10), w, far())
	tooLarge := []Failure{{Index: 0, Err: 10, Reason: "too large", Permanent: true}}
	a.Complete(a.DrainAll(AllLanes, nil)[0], tooLarge)
	dl := a.DrainAll(AllLanes, nil)
	if len(dl) != 1 || !dl[0].DeadLetter {
		t.Fatalf("%d batches, want the dead letter", len(dl))
	}
	a.Complete(dl[0], tooLarge)
	if res, ok := a.Wait(w, far(), Sleep); !ok || a.Batches() != 0 || res.Permanent != 1 || res.DeadLettered != 0 || w.State(0) != Dropped {
		t.Fatalf("%+v, %d batches left, state %v", res, a.Batches(), w.State(0))
	}
}

// TestWaitingForMemoryMakesBatchesReady: while an appender waits for
// memory, every batch is ready, lingering ones too: else batches of other
// partitions would hold the budget until Linger passed, and the appender
// would wait for nothing.
func TestWaitingForMemoryMakesBatchesReady(t *testing.T) {
	a := New(perBatch10, 3*perBatch10, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(4)
	for p := range 3 { // a batch each, lingering, the whole budget
		a.Append("t", int32(p), 0, stagedFrom(p, 1, 98), w, far())
	}
	drainWake(a)
	waited := make(chan error, 1)
	go func() {
		_, err := a.Append("t", 3, 0, stagedFrom(3, 1, 98), w, far())
		waited <- err
	}()
	<-a.Wake() // it waits for memory
	ready, _ := a.Drain(time.Now(), AllLanes, nil)
	for _, b := range ready {
		a.Complete(b, nil)
	}
	if len(ready) != 3 {
		a.Close() // lets the appender go
		<-waited
		t.Fatalf("%d batches ready while an appender waits for memory, want 3", len(ready))
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}

// TestLingerNextIsTheSoonest: Drain tells how long until the first of the
// lingering batches is ready, not the last, so the send loop does not
// sleep past a batch's Linger.
func TestLingerNextIsTheSoonest(t *testing.T) {
	a := New(1000, 1<<20, time.Hour, fixture.GoAllocator{})
	a.Append("t", 0, 0, staged(1, 10), NewWaiter(1), far())
	firstBy := time.Now()
	time.Sleep(5 * time.Millisecond) // the second batch is younger
	a.Append("t", 1, 0, staged(1, 10), NewWaiter(1), far())
	now := time.Now()
	if _, next := a.Drain(now, AllLanes, nil); next <= 0 || next > firstBy.Add(time.Hour).Sub(now) {
		t.Fatalf("next batch ready in %v, want at most %v", next, firstBy.Add(time.Hour).Sub(now))
	}
}

// TestResentBatchReadyAtOnce: records Kafka refused beside others go again
// at once, not after Linger, also when no flush waits for them.
func TestResentBatchReadyAtOnce(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(3)
	a.Append("t", 0, 0, stagedAt(1, 2, 3), w, far())
	beside := func(i int) Failure { return Failure{Index: i, Err: -138, Reason: "beside", Refusal: RefusedBeside} }
	a.Complete(a.DrainAll(0, nil)[0], []Failure{beside(0), beside(1), beside(2)})
	if ready, _ := a.Drain(time.Now(), AllLanes, nil); len(ready) != 1 {
		t.Fatalf("%d batches ready, want the records sent again", len(ready))
	}
}

// TestWaiterBehindOneThatGivesUp: an appender that waits for memory behind
// one that gives up (its deadline passed) takes the memory free then,
// rather than waiting for a release that may not come.
func TestWaiterBehindOneThatGivesUp(t *testing.T) {
	a := New(perBatch10, 3*perBatch10, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(40)
	a.Append("t", -1, 0, staged(30, 98), w, far())
	ready := a.DrainAll(AllLanes, nil) // the budget's three batches
	drainWake(a)
	large := make(chan error, 1)
	go func() { // needs two batches' memory, gives up soon
		_, err := a.Append("large", -1, 0, stagedFrom(30, 1, 2*perBatch10-RecordOverhead-4), w, time.Now().Add(100*time.Millisecond))
		large <- err
	}()
	<-a.Wake()
	small := make(chan error, 1)
	go func() { // waits behind it
		_, err := a.Append("small", -1, 0, stagedFrom(31, 1, 98), w, far())
		small <- err
	}()
	<-a.Wake()
	a.Complete(ready[0], nil) // one batch's memory: enough for the second only
	if err := <-large; !errors.Is(err, ErrMemoryTimeout) {
		t.Fatalf("large record: %v, want a memory timeout", err)
	}
	select {
	case err := <-small:
		if err != nil {
			t.Fatalf("the appender behind the one that gave up: %v", err)
		}
	case <-time.After(5 * time.Second):
		a.Close() // lets it go
		t.Fatal("the appender behind the one that gave up still waits, with memory free")
	}
}

// TestSkipKeepsRecordIndexes: records appended after Skip (the plugin's
// way past a record too large, or past those an earlier Append took) are
// followed under their own index in the chunk.
func TestSkipKeepsRecordIndexes(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(5)
	s := staged(5, 10)
	s.Skip(3)
	if n, err := a.Append("t", -1, 0, s, w, far()); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	a.Complete(a.DrainAll(AllLanes, nil)[0], []Failure{{Index: 0, Err: 1, Reason: "later"}})
	if w.State(3) != Retriable || w.State(4) != Acked || w.State(0) != Unsent || w.State(1) != Unsent {
		t.Fatalf("states %v, want record 3 failed and 4 acknowledged", w.state)
	}
}

// TestExampleSizeIsTheLargest: a kind of failure is logged with the size of
// its largest record, wherever it is in the batch.
func TestExampleSizeIsTheLargest(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	w := NewWaiter(2)
	a.Append("t", -1, 0, stagedFrom(0, 1, 30), w, far())
	a.Append("t", -1, 0, stagedFrom(1, 1, 10), w, far())
	tooLarge := func(i int) Failure { return Failure{Index: i, Err: 10, Reason: "too large", Permanent: true} }
	a.Complete(a.DrainAll(AllLanes, nil)[0], []Failure{tooLarge(0), tooLarge(1)})
	if res, _ := a.Wait(w, far(), Sleep); len(res.Examples) != 1 || res.Examples[0].MaxSize != 30 {
		t.Fatalf("%+v, want one kind of 2 records of up to 30 bytes", res.Examples)
	}
}

// TestDeadLetterWithinMessageLimit: a record refused for good goes to the
// dead-letter topic's partitioner (partition -1: its own topic's partition
// may not exist there), cut so that with its key and headers it stays within
// the message size limit, and it may go again once there when refused beside
// others.
func TestDeadLetterWithinMessageLimit(t *testing.T) {
	const maxMessage = 10000
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetDeadLetterTopic("dlq", maxMessage)
	s := &Staged{Buf: []byte(strings.Repeat("v", 8000) + strings.Repeat("k", 5000))}
	s.Add(0, 0, 8000, len(s.Buf), true, 0)
	w := NewWaiter(1)
	a.Append("t", 3, 0, s, w, far())
	a.Complete(a.DrainAll(AllLanes, nil)[0], []Failure{{Index: 0, Err: 10, Reason: "Broker: Message size too large", Permanent: true}})
	dl := a.DrainAll(AllLanes, nil)
	if len(dl) != 1 {
		t.Fatalf("%d batches", len(dl))
	}
	b, r := dl[0], dl[0].Recs[0]
	if b.Topic != "dlq" || b.Partition != -1 || r.KeyLen != 5000 || r.Len >= 8000 || int(r.Size()) > maxMessage {
		t.Fatalf("dead letter to %s[%d]: value %d bytes, key %d, headers %d; want within %d", b.Topic, b.Partition, r.Len, r.KeyLen, r.HdrLen, maxMessage)
	}
	if h := string(b.Buf[r.Off+r.Len+r.KeyLen : r.Off+r.Size()]); !strings.Contains(h, HeaderTruncated+"\x04\x00\x00\x008000") {
		t.Errorf("headers %q, want the original size", h)
	}
	a.Complete(b, []Failure{{Index: 0, Err: -138, Reason: "beside", Refusal: RefusedBeside}})
	again := a.DrainAll(AllLanes, nil)
	if len(again) != 1 || again[0].Topic != "dlq" {
		t.Fatalf("%d batches after the dead letter was refused beside others, want it again", len(again))
	}
	a.Complete(again[0], nil)
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.DeadLettered != 1 {
		t.Fatalf("%+v", res)
	}
}

// failingAlloc panics, as rdk's allocator does when malloc fails, on its
// first allocation.
type failingAlloc struct{ calls atomic.Int32 }

func (f *failingAlloc) Alloc(n int) []byte {
	if f.calls.Add(1) == 1 {
		panic("rdk: out of memory")
	}
	return make([]byte, 0, n)
}
func (*failingAlloc) Free([]byte) {}
func (*failingAlloc) Trim()       {}

// TestAllocPanicKeepsBudget: a buffer that could not be allocated is not
// counted against Buffer_Memory, and an appender that had queued for
// memory leaves the queue: those behind it do not wait for good.
func TestAllocPanicKeepsBudget(t *testing.T) {
	a := New(1000, 1<<20, time.Hour, &failingAlloc{})
	first := make(chan struct{}, 1)
	a.mu.Lock()
	a.waiters = append(a.waiters, first) // an appender waits: the next queues behind it
	a.mu.Unlock()
	go func() {
		time.Sleep(20 * time.Millisecond)
		a.mu.Lock()
		a.leave(first)
		a.mu.Unlock()
	}()
	func() {
		defer func() { recover() }()
		a.Append("t", -1, 0, staged(1, 5), NewWaiter(1), time.Now().Add(time.Second))
	}()
	if u := a.Used(); u != 0 {
		t.Fatalf("Used = %d after an allocation that failed", u)
	}
	if n, err := a.Append("u", -1, 0, staged(1, 5), NewWaiter(1), time.Now().Add(time.Second)); n != 1 || err != nil {
		t.Fatalf("an append after the failed one: %d, %v", n, err)
	}
}

// trimCounter counts the allocator's trims.
type trimCounter struct {
	fixture.GoAllocator
	trims atomic.Int32
}

func (c *trimCounter) Trim() { c.trims.Add(1) }

// TestIdlePooledBatchesGiveMemoryBack: the batches a backlog took stay
// pooled while flushes take from the pool within the idle time; those none
// took for that long go back to the budget, and then the last one too once
// records stop coming. In record mode the allocator then trims (C memory).
func TestIdlePooledBatchesGiveMemoryBack(t *testing.T) {
	const idle = time.Minute
	for _, mode := range []string{"record", "batch"} {
		t.Run(mode, func(t *testing.T) {
			alloc := &trimCounter{}
			a := New(perBatch10, 20*perBatch10, time.Hour, alloc)
			pool := &a.free
			if mode == "batch" {
				a.SetFrames("application/x-ndjson", true)
				pool = &a.frames.free
			}
			sent := 0
			send := func(records int) {
				s := staged(records, 98)
				if mode == "batch" {
					s = framed(a, 0, records, 98)
				}
				if n, err := a.Append("t", -1, 0, s, NewWaiter(records), far()); n != records || err != nil {
					t.Fatalf("appended %d of %d: %v", n, records, err)
				}
				for _, b := range a.DrainAll(AllLanes, nil) {
					a.Complete(b, nil)
					sent++
				}
			}
			pooled := func() int64 {
				n := int64(0)
				for _, b := range pool.free {
					n += int64(cap(b.Buf))
				}
				return n
			}
			wantTrims := func(n int32) {
				t.Helper()
				if mode == "batch" {
					n = 0 // Go memory: the garbage collector's
				}
				for deadline := time.Now().Add(10 * time.Second); alloc.trims.Load() < n && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				if alloc.trims.Load() != n {
					t.Fatalf("%d trims, want %d", alloc.trims.Load(), n)
				}
			}
			now := time.Now()
			send(200) // a backlog: many batches at once
			backlog := len(pool.free)
			if backlog < 3 || sent != backlog || a.Used() != pooled() {
				t.Fatalf("%d batches sent, %d pooled, %d bytes used, %d pooled", sent, backlog, a.Used(), pooled())
			}
			a.DropIdle(now, idle) // the first look
			send(10)
			send(10)
			a.DropIdle(now.Add(idle/2), idle)
			if len(pool.free) != backlog || a.Used() != pooled() {
				t.Fatalf("within the idle time: %d pooled of %d", len(pool.free), backlog)
			}
			wantTrims(0)
			a.DropIdle(now.Add(idle), idle)
			if len(pool.free) != 1 || a.Used() != pooled() {
				t.Fatalf("after the idle time: %d pooled of %d, %d bytes used, %d pooled", len(pool.free), backlog, a.Used(), pooled())
			}
			wantTrims(1)
			a.DropIdle(now.Add(2*idle), idle) // no record came since
			if len(pool.free) != 0 || a.Used() != 0 {
				t.Fatalf("with no records coming: %d pooled, %d bytes used", len(pool.free), a.Used())
			}
			wantTrims(2)
		})
	}
}
