package accumulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/pierrec/lz4/v4"
)

func TestFrames(t *testing.T) {
	a := New(10000, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	w := NewWaiter(300)
	s := framed(a, 0, 300, 98)
	if n, err := a.Append("t", 2, 0, s, w, far()); n != 300 || err != nil {
		t.Fatal(n, err)
	}
	a.Close()
	ready, _ := a.Drain(time.Now(), AllLanes, nil)
	// 99 bytes a line: segments, and so frames, of 101 lines for the
	// 10000-byte Batch_Size.
	if len(ready) != 3 {
		t.Fatalf("%d batches", len(ready))
	}
	var lines []string
	for _, b := range ready {
		if len(b.Recs) != 1 || b.Partition != 2 {
			t.Fatalf("a batch is one message of its partition: %d messages, partition %d", len(b.Recs), b.Partition)
		}
		r := b.Recs[0]
		raw, err := io.ReadAll(lz4.NewReader(bytes.NewReader(b.Buf[:r.Len])))
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > 10000 || int(r.Len) >= len(raw) {
			t.Errorf("frame of %d bytes holds %d uncompressed", r.Len, len(raw))
		}
		got := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		lines = append(lines, got...)
		h := batchHeaders(b)
		if h[batch.ContentTypeHeader] != "application/x-ndjson" || h[batch.ContentEncodingHeader] != "lz4" || h[batch.RecordsHeader] != fmt.Sprint(len(got)) ||
			h[batch.FirstTimeHeader] == "" || h[batch.LastTimeHeader] == "" {
			t.Errorf("headers %v", h)
		}
	}
	if len(lines) != 300 {
		t.Fatalf("%d lines in the frames, want 300", len(lines))
	}
	for i, l := range lines {
		if l != fmt.Sprintf("%098d", i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
	for _, b := range ready {
		a.Complete(b, nil)
	}
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 300 || a.Used() != 0 {
		t.Fatalf("%+v, %d bytes still used", res, a.Used())
	}
}

// framed stages records first to first+n-1 as batch mode does: size digits
// and a newline each, cut into segments as they are added.
func framed(a *Accumulator, first, n, size int) *Staged {
	s := &Staged{}
	for i := first; i < first+n; i++ {
		start := len(s.Buf)
		s.Buf = append(s.Buf, fmt.Sprintf("%0*d\n", size, i)...)
		s.Add(i, start, len(s.Buf), len(s.Buf), false, int64(i))
		a.Compress(s, false)
	}
	a.Compress(s, true)
	return s
}

// Frames hold blocks of several flushes, records larger than a block, and
// blocks stored uncompressed; the stock lz4 reader reads them back.
func TestFrameSegments(t *testing.T) {
	a := New(1<<20, 8<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("text/plain", true)
	noise := make([]byte, 3*frameBlock/2) // incompressible, larger than a block
	for i := range noise {
		noise[i] = 'a' + byte(rand.IntN(26))
	}
	var want []byte
	w := NewWaiter(2003)
	for part, s := range []*Staged{framed(a, 0, 1000, 150), framed(a, 1000, 1000, 150), bigRecord(a, 2000, noise), framed(a, 2001, 2, 10)} {
		for i := range s.Recs {
			want = append(want, s.Buf[s.Recs[i].Off:s.Recs[i].Off+s.Recs[i].Len]...)
		}
		if n, err := a.Append("t", -1, 0, s, w, far()); n != len(s.Recs) || err != nil {
			t.Fatalf("part %d: %d records, %v", part, n, err)
		}
	}
	a.Close()
	ready, _ := a.Drain(time.Now(), AllLanes, nil)
	if len(ready) != 1 {
		t.Fatalf("%d batches, want 1", len(ready))
	}
	r := ready[0].Recs[0]
	got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(ready[0].Buf[:r.Len])))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("frame of %d bytes reads back as %d bytes (%v), want %d", r.Len, len(got), err, len(want))
	}
	a.Complete(ready[0], nil)
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 2003 {
		t.Fatalf("%+v", res)
	}
}

func bigRecord(a *Accumulator, i int, value []byte) *Staged {
	s := &Staged{Buf: append(value, '\n')}
	s.Add(i, 0, len(s.Buf), len(s.Buf), false, int64(i))
	a.Compress(s, true)
	return s
}

// When memory runs out, Append stops at a segment's end, and the rest
// follows once sent batches are given back.
func TestFrameMemoryBound(t *testing.T) {
	a := New(10000, 7000, time.Hour, fixture.GoAllocator{}) // room for two frames' buffers
	a.SetFrames("application/x-ndjson", true)
	w := NewWaiter(300)
	s := framed(a, 0, 300, 98) // segments of 101, 101 and 98 lines
	n, err := a.Append("t", -1, 0, s, w, time.Now().Add(20*time.Millisecond))
	if n != 202 || !errors.Is(err, ErrMemoryTimeout) {
		t.Fatalf("appended %d (%v): want 202 then a memory timeout", n, err)
	}
	s.Skip(n)
	var lines []string
	send := func() {
		ready, _ := a.Drain(time.Now().Add(2*time.Hour), AllLanes, nil)
		for _, b := range ready {
			r := b.Recs[0]
			raw, err := io.ReadAll(lz4.NewReader(bytes.NewReader(b.Buf[:r.Len])))
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")...)
			a.Complete(b, nil)
		}
	}
	send()
	if n, err := a.Append("t", -1, 0, s, w, far()); n != 98 || err != nil {
		t.Fatalf("after release: %d, %v", n, err)
	}
	send()
	for i, l := range lines {
		if l != fmt.Sprintf("%098d", i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 300 || len(lines) != 300 {
		t.Fatalf("%+v, %d lines", res, len(lines))
	}
}

// TestFrameReuseWhileWaiting: an Append waiting for memory takes the frame
// of a batch sent meanwhile, which keeps its memory, instead of waiting for
// memory that no sent frame gives back.
func TestFrameReuseWhileWaiting(t *testing.T) {
	a := New(10000, 7000, time.Hour, fixture.GoAllocator{}) // room for two frames' buffers
	a.SetFrames("application/x-ndjson", true)
	w := NewWaiter(300)
	s := framed(a, 0, 300, 98) // three frames' worth
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the sender, woken when an Append waits for memory
		for {
			select {
			case <-stop:
				return
			case <-a.Wake():
			}
			ready, _ := a.Drain(time.Now(), AllLanes, nil)
			for _, b := range ready {
				a.Complete(b, nil)
			}
		}
	}()
	if n, err := a.Append("t", -1, 0, s, w, time.Now().Add(10*time.Second)); n != 300 || err != nil {
		t.Fatalf("appended %d (%v): want all 300, the third frame a sent one's", n, err)
	}
	if used := a.Used(); used > 7000 {
		t.Fatalf("%d bytes used, over the 7000 of the budget", used)
	}
}

// TestFrameBudgetIncompressible: records that do not compress grow each
// frame past the third of Batch_Size it reserved; Buffer_Memory still bounds
// the memory of frames in progress on every partition at once.
func TestFrameBudgetIncompressible(t *testing.T) {
	const batch, limit, partitions = 1 << 20, 2 << 20, 6
	a := New(batch, limit, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	rng := rand.New(rand.NewPCG(1, 2))
	line := make([]byte, 999)
	var err error
	for i := 0; err == nil && i < 10000; i++ {
		s := &Staged{}
		for j := range line {
			line[j] = "0123456789abcdef"[rng.IntN(16)]
		}
		s.Buf = append(append(s.Buf, line...), '\n')
		s.Add(0, 0, len(s.Buf), len(s.Buf), false, 0)
		a.Compress(s, true)
		_, err = a.Append("t", int32(i%partitions), 0, s, NewWaiter(1), time.Now().Add(time.Millisecond))
	}
	if !errors.Is(err, ErrMemoryTimeout) {
		t.Fatalf("%v: want the budget to run out", err)
	}
	used := a.Used()
	t.Logf("%d bytes used for a budget of %d", used, limit)
	if used > limit {
		t.Fatal("over the budget")
	}
}

// TestFrameTooLarge: a record larger than Buffer_Memory is refused with
// ErrTooLarge, as in record mode, after the records before it; once the
// caller skips it, the records after it go in, within the budget.
func TestFrameTooLarge(t *testing.T) {
	const limit = 64 << 10
	a := New(16<<10, limit, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", false)
	noise := make([]byte, 1<<20) // incompressible
	for i := range noise {
		noise[i] = 'a' + byte(rand.IntN(26))
	}
	s := &Staged{}
	for i, v := range [][]byte{[]byte("before"), noise, []byte("after")} {
		start := len(s.Buf)
		s.Buf = append(append(s.Buf, v...), '\n')
		s.Add(i, start, len(s.Buf), len(s.Buf), false, int64(i))
		a.Compress(s, false)
	}
	a.Compress(s, true)
	w := NewWaiter(3)
	n, err := a.Append("t", -1, 0, s, w, time.Now().Add(10*time.Millisecond))
	if n != 1 || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "compressed, in a frame of its own, their block needs ") {
		t.Fatalf("appended %d (%v): want 1 then ErrTooLarge", n, err)
	}
	s.Skip(n)
	s.Skip(1) // as the plugin does with a record too large
	if n, err := a.Append("t", -1, 0, s, w, time.Now().Add(10*time.Millisecond)); n != 1 || err != nil {
		t.Fatalf("after the large record: %d, %v", n, err)
	}
	if used := a.Used(); used > limit {
		t.Fatalf("%d bytes used, over the %d of the budget", used, limit)
	}
}

// TestFrameWithinMessageLimit: a frame of many small segments (a block
// each) of records that do not compress grows past its records' bytes; the
// batch closes before its message passes the message size limit, which
// librdkafka would refuse for good, though Batch_Size (at the largest conf
// allows for it) is not reached.
func TestFrameWithinMessageLimit(t *testing.T) {
	const maxMessage = 1000000
	a := New((maxMessage-4096)*255/256, 8<<20, time.Hour, fixture.GoAllocator{})
	a.SetDeadLetterTopic("", maxMessage)
	a.SetFrames("application/x-ndjson", false)
	rng := rand.New(rand.NewPCG(1, 2))
	w := NewWaiter(30000)
	for i := range 30000 { // a flush each: one segment, one block
		line := make([]byte, 40)
		for j := range line {
			line[j] = byte(rng.IntN(256))
		}
		line[39] = '\n'
		if n, err := a.Append("t", 0, 0, bigRecord(a, i, line[:39]), w, far()); n != 1 || err != nil {
			t.Fatal(n, err)
		}
	}
	a.Close()
	ready, _ := a.Drain(time.Now(), AllLanes, nil)
	for i, b := range ready {
		// librdkafka's check: value, headers and a record's framing.
		if size := int(b.Recs[0].Size()) + 36; size > maxMessage {
			t.Errorf("batch %d of %d: a message of %d bytes, over message.max.bytes %d", i, len(ready), size, maxMessage)
		}
		a.Complete(b, nil)
	}
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 30000 || len(ready) < 2 {
		t.Fatalf("%+v in %d batches", res, len(ready))
	}
}

// TestBatchHeaders: a batch message carries the operator's headers after
// the batch mode ones; the longest times fit the room kept for them.
func TestBatchHeaders(t *testing.T) {
	a := New(10000, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	static := AppendHeader(AppendHeader(nil, []byte("env"), []byte("prod")), []byte("team"), []byte("logs"))
	a.SetBatchHeaders(static)
	w := NewWaiter(3)
	if n, err := a.Append("t", 0, 0, framed(a, 0, 3, 10), w, far()); n != 3 || err != nil {
		t.Fatal(n, err)
	}
	ready := a.DrainAll(AllLanes, nil)
	r := ready[0].Recs[0]
	h := ready[0].Buf[r.Off+r.Len : r.Off+r.Size()]
	if !bytes.HasSuffix(h, static) || countHeaders(h) != 7 {
		t.Fatalf("%d headers %q, want the 5 of batch mode then %q", countHeaders(h), h, static)
	}
	a.Complete(ready[0], nil)
	for _, ms := range []int64{math.MinInt64, math.MaxInt64, -1, 253402300799999} {
		if s := time.UnixMilli(ms).UTC().Format(batch.TimeLayout); len(s) > maxTimeLen {
			t.Errorf("%d ms: %q is longer than %d", ms, s, maxTimeLen)
		}
	}
}

// A stage's footprint counts its compressed segments, kept for the next
// flush, beside its buffers.
func TestStagedFootprintCountsSegments(t *testing.T) {
	a := New(1<<20, 8<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	s := framed(a, 0, 2000, 150)
	blocks := 0
	for _, seg := range s.segs {
		blocks += cap(seg.blocks)
	}
	s.Reset()
	if blocks == 0 || s.Footprint() < cap(s.Buf)+blocks {
		t.Fatalf("footprint %d, buffer %d, segments %d", s.Footprint(), cap(s.Buf), blocks)
	}
}

// TestFrameRestamped: a batch message whose timestamp (its records' latest
// event time) Kafka refused goes out again once with the produce time,
// closed to records appended meanwhile; refused again, it is left for the
// chunks' retry.
func TestFrameRestamped(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	w, later := NewWaiter(6), NewWaiter(9)
	a.Append("t", -1, 0, framed(a, 1, 5, 98), w, far())
	sent := a.DrainAll(0, nil)
	if len(sent) != 1 || sent[0].Recs[0].TimeMs != 5 {
		t.Fatalf("%d batches sent", len(sent))
	}
	value := string(sent[0].Buf)
	refused := []Failure{{Err: 32, Reason: "Invalid timestamp", Refusal: RefusedTimestamp}}
	a.Complete(sent[0], refused)
	a.Append("t", -1, 0, framed(a, 6, 3, 98), later, far())
	again := a.DrainAll(0, nil)
	if len(again) != 2 || again[0].Recs[0].TimeMs != 0 || string(again[0].Buf) != value || len(again[1].idx) != 3 {
		t.Fatalf("%d batches sent again", len(again))
	}
	a.Complete(again[1], nil)
	a.Complete(again[0], refused) // refused again: for the retry
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Restamped != 5 || res.Retriable != 5 || res.Permanent != 0 || a.Batches() != 0 {
		t.Fatalf("%+v %v", res, ok)
	}
	if res, ok := a.Wait(later, far(), Sleep); !ok || res.Delivered != 3 {
		t.Fatalf("the later records: %+v %v", res, ok)
	}
}

// TestFramesResentInOrder: batch messages refused in one request go again
// in the order they were first sent.
func TestFramesResentInOrder(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	w := NewWaiter(10)
	a.Append("t", 0, 0, framed(a, 0, 5, 98), w, far())
	sent := a.DrainAll(0, nil)
	a.Append("t", 0, 0, framed(a, 5, 5, 98), w, far())
	sent = a.DrainAll(0, sent)
	if len(sent) != 2 {
		t.Fatalf("%d batch messages sent", len(sent))
	}
	a.Complete(sent[0], []Failure{{Err: 32, Reason: "Invalid timestamp", Refusal: RefusedTimestamp}})
	a.Complete(sent[1], []Failure{{Err: -138, Reason: "beside", Refusal: RefusedBeside}})
	again := a.DrainAll(0, nil)
	if len(again) != 2 || again[0] != sent[0] || again[1] != sent[1] || again[0].Recs[0].TimeMs != 0 || again[1].Recs[0].TimeMs != 9 {
		t.Fatalf("%d batch messages sent again, out of order", len(again))
	}
	for _, b := range again {
		a.Complete(b, nil)
	}
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 10 || res.Restamped != 5 {
		t.Fatalf("%+v %v", res, ok)
	}
}

// batchHeaders returns the headers of batch message b by name.
func batchHeaders(b *Batch) map[string]string {
	r := b.Recs[0]
	h := map[string]string{}
	for hb := b.Buf[r.Off+r.Len+r.KeyLen : r.Off+r.Size()]; len(hb) > 0; {
		n := int(hb[0]) | int(hb[1])<<8
		name := string(hb[2 : 2+n])
		hb = hb[2+n:]
		v := int(hb[0]) | int(hb[1])<<8 | int(hb[2])<<16 | int(hb[3])<<24
		h[name] = string(hb[4 : 4+v])
		hb = hb[4+v:]
	}
	return h
}

// TestFramesGivenBackAtClose: in batch mode too, the sent frames kept for
// reuse give their memory back at Close.
func TestFramesGivenBackAtClose(t *testing.T) {
	a := New(10000, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	a.Append("t", 0, 0, framed(a, 0, 300, 98), NewWaiter(300), far())
	completeAll(a)
	a.Close()
	if a.Used() != 0 {
		t.Fatalf("%d bytes used after Close", a.Used())
	}
}

// TestReusedFrameGoesAgainOnce: a frame sent again once and reused for the
// next batch message is that message's first send: refused beside another,
// it goes again at once, rather than waiting for the chunk's retry.
func TestReusedFrameGoesAgainOnce(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	beside := []Failure{{Err: -138, Reason: "beside", Refusal: RefusedBeside}}
	for round := range 2 {
		w := NewWaiter(5)
		a.Append("t", 0, 0, framed(a, 0, 5, 98), w, far())
		a.Complete(a.DrainAll(0, nil)[0], beside)
		again := a.DrainAll(0, nil)
		if len(again) != 1 {
			t.Fatalf("round %d: %d batch messages sent again, want 1", round, len(again))
		}
		a.Complete(again[0], nil) // its frame is kept for the next round
		if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 5 {
			t.Fatalf("round %d: %+v", round, res)
		}
	}
}

// TestFrameTimesAcrossFlushes: a batch message holding the records of
// several flushes gives the earliest and latest event times of all of
// them; a frame kept from a sent message starts afresh, with its own
// records' times, count, and Kafka timestamp.
func TestFrameTimesAcrossFlushes(t *testing.T) {
	a := New(300, 1<<20, time.Hour, fixture.GoAllocator{}) // messages too large for a buffer of their own (seal)
	a.SetFrames("application/x-ndjson", true)
	w := NewWaiter(3000)
	a.Append("t", 0, 0, framed(a, 2005, 5, 10), w, far()) // event times 2005 to 2009 ms
	a.Append("t", 0, 0, framed(a, 2000, 5, 10), w, far()) // then earlier ones
	sent := a.DrainAll(0, nil)
	if len(sent) != 1 {
		t.Fatalf("%d batch messages", len(sent))
	}
	if h := batchHeaders(sent[0]); h[batch.FirstTimeHeader] != "1970-01-01T00:00:02.000Z" || h[batch.LastTimeHeader] != "1970-01-01T00:00:02.009Z" ||
		sent[0].Recs[0].TimeMs != 2009 {
		t.Fatalf("headers %v, timestamp %d", h, sent[0].Recs[0].TimeMs)
	}
	a.Complete(sent[0], nil)
	a.Append("t", 0, 0, framed(a, 1000, 5, 10), w, far()) // in the frame kept
	b := a.DrainAll(0, nil)[0]
	if b != sent[0] {
		t.Fatal("the sent frame was not reused")
	}
	if h := batchHeaders(b); h[batch.FirstTimeHeader] != "1970-01-01T00:00:01.000Z" || h[batch.LastTimeHeader] != "1970-01-01T00:00:01.004Z" ||
		h[batch.RecordsHeader] != "5" || b.Recs[0].TimeMs != 1004 {
		t.Fatalf("reused frame: headers %v, timestamp %d", h, b.Recs[0].TimeMs)
	}
	a.Complete(b, nil) // unpins its buffer
}

// TestStagedReusedInBatchMode: a stage reset for the next flush (the plugin
// keeps them) cuts its new records into segments from the start.
func TestStagedReusedInBatchMode(t *testing.T) {
	a := New(1<<16, 1<<20, time.Hour, fixture.GoAllocator{})
	a.SetFrames("application/x-ndjson", true)
	w := NewWaiter(10)
	s := framed(a, 0, 5, 10)
	a.Append("t", 0, 0, s, w, far())
	s.Reset()
	for i := 5; i < 10; i++ {
		start := len(s.Buf)
		s.Buf = fmt.Appendf(s.Buf, "%010d\n", i)
		s.Add(i, start, len(s.Buf), len(s.Buf), false, int64(i))
		a.Compress(s, false)
	}
	a.Compress(s, true)
	if n, err := a.Append("t", 0, 0, s, w, far()); n != 5 || err != nil {
		t.Fatalf("second flush: %d records, %v", n, err)
	}
	completeAll(a)
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 10 {
		t.Fatalf("%+v", res)
	}
}

// TestTooSmallFrameGivesItsMemoryBack: a kept frame too small for the next
// segment, which the budget cannot grow, gives its memory back for a larger
// one: else the budget shrinks for good and Append waits for memory no batch
// holds.
func TestTooSmallFrameGivesItsMemoryBack(t *testing.T) {
	const limit = 40000
	a := New(30000, limit, time.Hour, fixture.GoAllocator{}) // frames of 10000 bytes to start with
	a.SetFrames("text/plain", false)
	w := NewWaiter(3)
	a.Append("t", 0, 0, framed(a, 0, 1, 10), w, far())
	a.Append("t", 1, 0, framed(a, 1, 1, 10), w, far())
	completeAll(a) // two frames kept, 20000 bytes
	if a.Used() != 20000 {
		t.Fatalf("%d bytes used, want the two frames'", a.Used())
	}
	noise := make([]byte, 33000) // incompressible: a frame of 34 KB or so
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.IntN(256))
	}
	if n, err := a.Append("t", 2, 0, bigRecord(a, 2, noise), w, time.Now().Add(2*time.Second)); n != 1 || err != nil {
		t.Fatalf("appended %d (%v) with %d of %d bytes used by frames that are not in use", n, err, a.Used(), limit)
	}
	if a.Used() > limit {
		t.Fatalf("%d bytes used, over %d", a.Used(), limit)
	}
}

// TestSmallFramesInFlightCountWhatTheyHold: the batch messages of small
// flushes, sent and not yet acknowledged (as an outage keeps them), count
// against Buffer_Memory what they hold, librdkafka's share too, not the
// frame buffer they were compressed in: 50 of them fit a budget of four such
// buffers, and read back.
func TestSmallFramesInFlightCountWhatTheyHold(t *testing.T) {
	const limit = 120000
	a := New(90000, limit, time.Hour, fixture.GoAllocator{}) // frame buffers of 30000 bytes
	a.SetFrames("text/plain", false)
	w := NewWaiter(50)
	var inFlight []*Batch
	for i := range 50 {
		if n, err := a.Append("t", 0, 0, framed(a, i, 1, 50), w, time.Now().Add(100*time.Millisecond)); n != 1 || err != nil {
			t.Fatalf("flush %d: appended %d (%v) with %d of %d bytes used", i, n, err, a.Used(), limit)
		}
		inFlight = a.DrainAll(0, inFlight)
	}
	held := 30000 // the one frame buffer, in the pool
	for _, b := range inFlight {
		if r := b.Recs[0]; cap(b.Buf) != len(b.Buf)+Cost(Rec{HdrLen: r.HdrLen}, b.Buf[r.Len:])-int(r.HdrLen) {
			t.Fatalf("a message of %d bytes (%d of headers) in a buffer of %d", len(b.Buf), r.HdrLen, cap(b.Buf))
		}
		held += cap(b.Buf)
	}
	if len(inFlight) != 50 || a.Used() != int64(held) {
		t.Fatalf("%d batch messages in flight use %d bytes, want %d", len(inFlight), a.Used(), held)
	}
	for i, b := range inFlight {
		r := b.Recs[0]
		raw, err := io.ReadAll(lz4.NewReader(bytes.NewReader(b.Buf[:r.Len])))
		if err != nil || string(raw) != fmt.Sprintf("%050d\n", i) {
			t.Fatalf("message %d: %q, %v", i, raw, err)
		}
		a.Complete(b, nil)
	}
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 50 {
		t.Fatalf("%+v", res)
	}
	a.Close()
	if a.Used() != 0 {
		t.Fatalf("%d bytes used after Close", a.Used())
	}
}
