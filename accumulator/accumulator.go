// Package accumulator gathers encoded records into batches per topic and
// partition, bounded by a batch size, a linger time and one memory budget for
// the whole instance, after the Java producer's RecordAccumulator and
// BufferPool.
//
// Flushes append their records and wait; the sender drains ready batches,
// hands them to Kafka, and reports each batch's outcome with Complete, which
// tells every waiting flush how its records fared.
package accumulator

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Rec locates one record in a batch's buffer: its value at Off, then its key
// (KeyLen bytes), then its headers (HdrLen bytes, see AppendHeader).
// The layout (4 x uint32, int64, bool) is shared with the C producer.
type Rec struct {
	Off, Len       uint32
	KeyLen, HdrLen uint32
	TimeMs         int64 // Kafka message timestamp, 0 for produce time; in batch mode a staged record's event time
	Keyed          bool  // it has a key, perhaps empty; else Kafka gets a null key
}

// Size is the record's bytes in its buffer.
func (r Rec) Size() uint32 { return r.Len + r.KeyLen + r.HdrLen }

// AppendHeader appends one header in the layout the C producer reads:
// name length (uint16, little endian), name, value length (uint32), value.
func AppendHeader(dst, name, value []byte) []byte {
	dst = append(dst, byte(len(name)), byte(len(name)>>8))
	dst = append(dst, name...)
	n := uint32(len(value))
	dst = append(dst, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	return append(dst, value...)
}

// Batch is a run of records for one topic and partition, in one buffer.
type Batch struct {
	Topic     string
	Partition int32 // -1 lets the producer's partitioner choose
	Lane      int   // the sender lane whose producer sends it
	Buf       []byte
	Recs      []Rec
	// DeadLetter marks a batch of records Kafka refused, on their way to
	// the dead-letter topic.
	DeadLetter bool

	idx     []int32 // per record: its index in its chunk
	frame   *frame  // batch mode: the records' LZ4 frame
	sealed  bool    // batch mode: the frame is closed, Recs holds the one message
	spans   []span
	created time.Time
	full    bool
	held    int  // bytes of Buf's capacity kept for what C holds of the records (Cost)
	resent  bool // its records went once already (resendAs)
}

// What C holds per record beside the bytes of its batch, which batches
// leave unused in their buffer so that Buffer_Memory bounds librdkafka's
// memory too (measured with glibc's malloc statistics on x86-64, librdkafka
// 2.15, producing 20000 records at once to no broker):
//
//   - RecordOverhead: librdkafka's message, one allocation of
//     rd_kafka_msg_t (about 180 bytes) with a copy of the key, plus malloc's
//     8-byte header, rounded up to 16 (192 bytes without a key: at most the
//     key's length + 203); the batch's 8-byte slot for it (producer.h); and
//     up to 16 bytes of failure arrays should it fail.
//   - HeadersOverhead: a record with headers has an rd_kafka_headers_t and
//     its list of 4 pointers, two allocations (112 bytes measured).
//   - HeaderOverhead, per header: rd_kafka_header_add allocates an
//     rd_kafka_header_t (40 bytes) followed by the name and the value, each
//     with a nul, rounded as above: at most its name and value + 65 bytes;
//     the list of pointers doubles beyond 4, at most 16 bytes more a header
//     (measured: 80 bytes a header of 10-byte name and value, 976 for 10).
//
// The copies of the key and the headers come on top: a record's cost (see
// Cost) counts its key and headers twice, the second time for C's copy,
// whose length covers what their encoding here adds (6 bytes a header).
// The value is not copied: librdkafka points into the batch.
const (
	RecordOverhead  = 232
	HeadersOverhead = 112
	HeaderOverhead  = 80
)

// Cost is the memory that a record takes from Buffer_Memory, in its batch
// and in C; headers are its encoded headers (AppendHeader).
func Cost(r Rec, headers []byte) int {
	c := int(r.Size()+r.KeyLen+r.HdrLen) + RecordOverhead
	if n := countHeaders(headers); n > 0 {
		c += HeadersOverhead + n*HeaderOverhead
	}
	return c
}

// countHeaders counts the headers in h as the C producer reads them (it
// stops at the first one cut short).
func countHeaders(h []byte) int {
	n := 0
	for len(h) >= 6 {
		nlen := int(h[0]) | int(h[1])<<8
		if len(h)-2 < nlen+4 {
			break
		}
		h = h[2+nlen:]
		vlen := int(h[0]) | int(h[1])<<8 | int(h[2])<<16 | int(h[3])<<24
		if len(h)-4 < vlen {
			break
		}
		h = h[4+vlen:]
		n++
	}
	return n
}

// fits reports room for one more record of cost bytes (Cost).
func (b *Batch) fits(cost int) bool {
	return len(b.Buf)+b.held+cost <= cap(b.Buf)
}

// span says that n consecutive records of a batch belong to waiter w.
type span struct {
	w *Waiter
	n int
}

// Failure is one record that Kafka did not take.
type Failure struct {
	Index     int // record index in its batch
	Err       int // librdkafka error code
	Reason    string
	Permanent bool    // retrying cannot help: the record is dropped
	Refusal   Refusal // why Kafka refused it, where sending it again at once may help
}

// Refusal says why Kafka refused a record, where sending it again at once,
// in the same flush, may help.
type Refusal uint8

const (
	OtherRefusal Refusal = iota
	// RefusedBeside: refused for another record of its request.
	RefusedBeside
	// RefusedTimestamp: its request held a timestamp out of the topic's
	// range (message.timestamp.before.max.ms), its own or another's.
	RefusedTimestamp
	// RefusedInvalid: named invalid among the records of its request, why
	// not said; maybe for its timestamp.
	RefusedInvalid
)

// How a refused record goes again (resendAs).
type resendHow uint8

const (
	notAgain resendHow = iota
	asIs
	restamped // with the produce time as its timestamp
	toDeadLetter
)

// Allocator provides the batch buffers; the plugin uses C memory so that
// librdkafka can reference records without copying them.
type Allocator interface {
	Alloc(n int) []byte
	Free(b []byte)
	// Trim gives what Free freed back to the operating system; it runs on
	// a goroutine of its own.
	Trim()
}

// ErrTooLarge is what the errors of records that can never be sent are
// (errors.Is): larger than the memory budget or, in batch mode, than a
// message may be.
var ErrTooLarge = errors.New("too large to send")

// tooLargeError says why records can never be sent.
type tooLargeError string

func (e tooLargeError) Error() string        { return string(e) }
func (e tooLargeError) Is(target error) bool { return target == ErrTooLarge }

// tooLarge is the error for a record that needs size bytes of the budget,
// more than it has, as what says.
func tooLarge(what string, size int) error {
	return tooLargeError(fmt.Sprintf("%s needs %d bytes of buffer memory, more than Buffer_Memory", what, size))
}

// ErrClosed is returned by Append once the accumulator is closed: the
// records left are not buffered, for a retry.
var ErrClosed = errors.New("output stopping")

type key struct {
	topic     string
	partition int32
	lane      int
}

// AllLanes drains the batches of every lane.
const AllLanes = -1

// Accumulator holds the batches of one plugin instance.
type Accumulator struct {
	batchSize int
	linger    time.Duration
	limit     int64
	alloc     Allocator
	// acknowledged counts the records Kafka acknowledged, for a flush to
	// tell whether Kafka answered while it waited.
	acknowledged atomic.Int64

	mu           sync.Mutex
	used         int64 // bytes of buffers allocated, free or not
	free         batchPool
	deques       map[key][]*Batch
	flushing     int             // flushes waiting: every batch is ready
	waiters      []chan struct{} // appenders waiting for memory, in turn (waitForMemory): every batch is ready
	closed       bool
	wake         chan struct{}
	frames       *framing         // batch mode, nil in record mode
	dlq          string           // dead-letter topic, "" for none
	maxMessage   int              // the producer's message size limit, 0 if not known (SetDeadLetterTopic)
	batchHeaders []byte           // batch mode: the operator's headers, encoded (SetBatchHeaders)
	delivered    map[string]int64 // records acknowledged, by topic
}

// New returns an Accumulator of batchSize-byte batches under a budget of
// limit bytes.
func New(batchSize int, limit int64, linger time.Duration, alloc Allocator) *Accumulator {
	return &Accumulator{
		batchSize: batchSize,
		linger:    linger,
		limit:     limit,
		alloc:     alloc,
		deques:    make(map[key][]*Batch),
		delivered: make(map[string]int64),
		wake:      make(chan struct{}, 1),
	}
}

// Wake is signalled when batches may have become ready.
func (a *Accumulator) Wake() <-chan struct{} { return a.wake }

func (a *Accumulator) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Staged is a flush's encoded records for one topic and partition, before
// they enter batches. Values, keys and headers live in Buf; Idx holds each
// record's index in its chunk.
type Staged struct {
	Buf  []byte
	Recs []Rec
	Idx  []int32
	// Batch mode (Accumulator.Compress): the records compressed into
	// segments, and how many.
	segs []*segment
	cut  int
}

// Add records record idx of the chunk, written to s.Buf from valueStart: its
// value up to keyStart, its key (if keyed) up to hdrStart, its headers up to
// the end.
func (s *Staged) Add(idx, valueStart, keyStart, hdrStart int, keyed bool, timeMs int64) {
	s.Idx = append(s.Idx, int32(idx))
	s.Recs = append(s.Recs, Rec{
		Off:    uint32(valueStart),
		Len:    uint32(keyStart - valueStart),
		KeyLen: uint32(hdrStart - keyStart),
		HdrLen: uint32(len(s.Buf) - hdrStart),
		TimeMs: timeMs,
		Keyed:  keyed,
	})
}

// Reset empties s for reuse.
func (s *Staged) Reset() {
	s.Buf, s.Recs, s.Idx, s.segs, s.cut = s.Buf[:0], s.Recs[:0], s.Idx[:0], s.segs[:0], 0
}

// Footprint is the memory s keeps for reuse: its buffers' capacity, batch
// mode's compressed segments included.
func (s *Staged) Footprint() int {
	n := cap(s.Buf) + cap(s.Recs)*int(unsafe.Sizeof(Rec{})) + cap(s.Idx)*4
	for _, seg := range s.segs[:cap(s.segs)] {
		if seg != nil {
			n += cap(seg.blocks)
		}
	}
	return n
}

// Lead is how many records an ErrTooLarge from Append is about: the first
// segment's in batch mode, whose LZ4 block goes whole into one frame, else
// the first record.
func (s *Staged) Lead() int {
	if len(s.segs) > 0 {
		return s.segs[0].recs
	}
	return 1
}

// Skip drops the first n records (in batch mode, whole segments of them).
func (s *Staged) Skip(n int) {
	s.Recs, s.Idx = s.Recs[n:], s.Idx[n:]
	for n > 0 && len(s.segs) > 0 {
		n -= s.segs[0].recs
		s.segs = s.segs[1:]
	}
}

// Append copies s's records into batches of topic/partition for lane on
// behalf of w, waiting for memory until deadline. It returns how many
// records went in; fewer than all means the deadline passed (or, with
// ErrTooLarge, that the next s.Lead() records can never fit: the caller
// skips and counts them). Once the accumulator is closed, no record goes in
// (ErrClosed): nothing would send it.
func (a *Accumulator) Append(topic string, partition int32, lane int, s *Staged, w *Waiter, deadline time.Time) (int, error) {
	k := key{topic, partition, lane}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, ErrClosed
	}
	var b *Batch // the deque's last batch
	if d := a.deques[k]; len(d) > 0 {
		b = d[len(d)-1]
	}
	if a.frames != nil {
		return a.appendSegments(k, b, s, w, deadline)
	}
	for i, r := range s.Recs {
		cost := Cost(r, s.Buf[r.Off+r.Len+r.KeyLen:r.Off+r.Size()])
		if b == nil || b.full || !b.fits(cost) {
			var err error
			if b, err = a.next(k, b, cost, deadline); err != nil {
				return i, err
			}
		}
		rec := r
		rec.Off = uint32(len(b.Buf))
		b.Buf = append(b.Buf, s.Buf[r.Off:r.Off+r.Size()]...)
		b.held += cost - int(r.Size())
		b.Recs = append(b.Recs, rec)
		a.track(b, s.Idx[i], w)
	}
	return len(s.Recs), nil
}

// next closes b, the newest batch of key k (nil for none), to appends and
// starts the key's next batch, for a record of size bytes (Cost), or a
// segment of size bytes of blocks.
func (a *Accumulator) next(k key, b *Batch, size int, deadline time.Time) (*Batch, error) {
	if b != nil && !b.full {
		b.full = true
		a.signal()
	}
	var err error
	if a.frames != nil {
		b, err = a.newFrameBatch(size, deadline)
	} else {
		b, err = a.newBatch(size, deadline)
	}
	if err != nil {
		return nil, err
	}
	b.Topic, b.Partition, b.Lane, b.created = k.topic, k.partition, k.lane, time.Now()
	a.deques[k] = append(a.deques[k], b)
	return b, nil
}

// track makes record i of w's chunk, just appended to b, b's newest.
func (a *Accumulator) track(b *Batch, i int32, w *Waiter) {
	b.idx = append(b.idx, i)
	b.addSpan(w)
	w.state[i] = InFlight
	w.pending++
}

// addSpan counts b's newest record in w's span.
func (b *Batch) addSpan(w *Waiter) {
	if n := len(b.spans); n > 0 && b.spans[n-1].w == w {
		b.spans[n-1].n++
	} else {
		b.spans = append(b.spans, span{w, 1})
	}
}

// freeBuf gives the buffer of b, a record mode batch, back to the
// allocator and the budget; a.mu is held.
func (a *Accumulator) freeBuf(b *Batch) {
	a.alloc.Free(b.Buf)
	a.used -= int64(cap(b.Buf))
}

// newBatch takes a pooled batch or allocates one for a record of cost
// bytes (Cost), waiting for memory until deadline (obtain).
func (a *Accumulator) newBatch(cost int, deadline time.Time) (*Batch, error) {
	capacity := max(cost, a.batchSize)
	if int64(capacity) > a.limit {
		return nil, tooLarge("with its key, headers and bookkeeping it", cost)
	}
	return a.obtain(deadline, func() *Batch {
		if capacity == a.batchSize {
			if b := a.free.take(); b != nil {
				return b
			}
		}
		// Give pooled buffers back to the budget for an odd-sized one.
		for capacity != a.batchSize && a.used+int64(capacity) > a.limit {
			b := a.free.take()
			if b == nil {
				break
			}
			a.freeBuf(b)
		}
		if a.used+int64(capacity) > a.limit {
			return nil
		}
		buf := a.alloc.Alloc(capacity) // first: a panic here leaves used as it was
		a.used += int64(capacity)
		return &Batch{Buf: buf}
	})
}

// obtain returns the batch that get finds (nil: none now), asking it in
// turn after the appenders that waited first, again each time memory may
// have been freed, until deadline; ErrClosed once the accumulator closes.
// a.mu is held and released while waiting.
func (a *Accumulator) obtain(deadline time.Time, get func() *Batch) (*Batch, error) {
	var turn chan struct{} // the place among the waiters, nil until queued
	defer func() {
		if r := recover(); r != nil { // in get (malloc failed): those queued behind must not wait for good
			a.leave(turn)
			panic(r)
		}
	}()
	for {
		if a.closed {
			a.leave(turn)
			return nil, ErrClosed
		}
		if a.myTurn(turn) {
			if b := get(); b != nil {
				a.leave(turn)
				return b, nil
			}
		}
		var err error
		if turn, err = a.waitForMemory(turn, deadline); err != nil {
			return nil, err
		}
	}
}

// myTurn reports whether the appender whose place in the queue of waiters
// is turn (nil: not queued) may take memory: no one waits before it.
func (a *Accumulator) myTurn(turn chan struct{}) bool {
	return len(a.waiters) == 0 || a.waiters[0] == turn
}

// waitForMemory queues the appender at the end of the waiters unless it
// has its place (turn) already, and waits until it is woken or deadline
// passes, when it leaves the queue and returns ErrMemoryTimeout; a.mu is
// held and released while waiting.
func (a *Accumulator) waitForMemory(turn chan struct{}, deadline time.Time) (chan struct{}, error) {
	wait := time.Until(deadline)
	if wait <= 0 {
		a.leave(turn)
		return nil, ErrMemoryTimeout
	}
	if turn == nil {
		turn = make(chan struct{}, 1)
		a.waiters = append(a.waiters, turn)
	}
	a.signal()
	a.mu.Unlock()
	t := time.NewTimer(wait)
	select {
	case <-turn:
	case <-t.C:
	}
	t.Stop()
	a.mu.Lock()
	return turn, nil
}

// leave takes turn (nil: not queued) out of the waiters and wakes the
// next one, as memory may be left.
func (a *Accumulator) leave(turn chan struct{}) {
	if turn == nil {
		return
	}
	a.waiters = slices.DeleteFunc(a.waiters, func(c chan struct{}) bool { return c == turn })
	a.wakeFirst()
}

// wakeFirst wakes the first waiter for memory, if any.
func (a *Accumulator) wakeFirst() {
	if len(a.waiters) > 0 {
		select {
		case a.waiters[0] <- struct{}{}:
		default:
		}
	}
}

// ErrMemoryTimeout means Buffer_Memory stayed full until the deadline.
var ErrMemoryTimeout = errors.New("buffer memory full")

// Drain moves the ready batches of lane (or AllLanes) to dst and returns
// it, with how long until the next batch becomes ready by linger (0: none
// waiting).
func (a *Accumulator) Drain(now time.Time, lane int, dst []*Batch) ([]*Batch, time.Duration) {
	return a.drain(now, lane, false, dst)
}

// DrainAll moves every batch of lane to dst, ready or not: a flush that has
// appended its records sends them at once.
func (a *Accumulator) DrainAll(lane int, dst []*Batch) []*Batch {
	dst, _ = a.drain(time.Time{}, lane, true, dst)
	return dst
}

func (a *Accumulator) drain(now time.Time, lane int, all bool, dst []*Batch) ([]*Batch, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	all = all || a.flushing > 0 || len(a.waiters) > 0 || a.closed
	var next time.Duration
	for k, d := range a.deques {
		if lane != AllLanes && k.lane != lane {
			continue
		}
		n := 0
		for n < len(d) {
			b := d[n]
			if !all && !b.full && n == len(d)-1 {
				if left := b.created.Add(a.linger).Sub(now); left > 0 {
					if next == 0 || left < next {
						next = left
					}
					break
				}
			}
			n++
		}
		for _, b := range d[:n] {
			a.seal(b)
		}
		dst = append(dst, d[:n]...)
		if n == len(d) {
			delete(a.deques, k)
		} else {
			a.deques[k] = append(d[:0], d[n:]...)
		}
	}
	return dst, next
}

// Complete reports a sent batch's outcome: every record not in failures was
// acknowledged. The batch goes back to the pool. Refused records that may
// go again at once (resendAs) do; with a dead-letter topic, records that
// failed for good go there instead of being dropped. It returns how many
// records failed for now, left for their chunk's retry.
func (a *Accumulator) Complete(b *Batch, failures []Failure) (retriable int) {
	sort.Slice(failures, func(i, j int) bool { return failures[i].Index < failures[j].Index })
	a.mu.Lock()
	defer a.mu.Unlock()
	if b.frame != nil && len(failures) > 0 && a.resendFrame(b, &failures[0]) {
		return 0
	}
	oldest := oldestRefused(b, failures)
	var again, dead []moved
	acked := int64(0)
	j := 0
	for _, s := range b.spans {
		// A batch message's failure is its every record's: one example
		// per waiter.
		first := j
		for end := j + s.n; j < end; j++ {
			var f *Failure
			if b.frame != nil { // one message: its outcome is every record's
				if len(failures) > 0 {
					f = &failures[0]
				}
			} else {
				for len(failures) > 0 && failures[0].Index < j { // duplicates
					failures = failures[1:]
				}
				if len(failures) > 0 && failures[0].Index == j {
					f = &failures[0]
					failures = failures[1:]
				}
			}
			// A batch message that is not sent again (resendFrame) fails
			// whole. conf refuses DLQ_Topic in batch mode: the message
			// holds records of many chunks; they are dropped.
			if f != nil && b.frame == nil {
				switch how := b.resendAs(j, f, oldest); {
				case how != notAgain:
					again = append(again, moved{j, s.w, f, how})
					continue
				case f.Permanent && a.dlq != "" && !b.DeadLetter:
					dead = append(dead, moved{j, s.w, f, toDeadLetter})
					s.w.note(b, j, f, true, false)
					continue
				}
			}
			switch {
			case f == nil:
				acked++
			case !f.Permanent:
				retriable++
			}
			s.w.settle(b, j, f, j == first)
		}
	}
	if len(again) > 0 {
		a.resend(b, again)
	}
	if len(dead) > 0 {
		a.resend(b, dead)
	}
	a.delivered[b.Topic] += acked
	a.acknowledged.Add(acked)
	a.release(b)
	return retriable
}

// oldestRefused is the oldest timestamp of b's records refused with
// RefusedTimestamp, 0 if none had one of its own. When Kafka refuses a
// request for one timestamp too old it names no record, and that record is
// the oldest of the request, so the oldest of its batch.
func oldestRefused(b *Batch, failures []Failure) int64 {
	oldest := int64(0)
	for _, f := range failures {
		if t := b.Recs[f.Index].TimeMs; f.Refusal == RefusedTimestamp && t != 0 && (oldest == 0 || t < oldest) {
			oldest = t
		}
	}
	return oldest
}

// resendAs says how record j of b, refused with f, goes again at once, if
// it does. A record refused for its timestamp, or named invalid, goes with
// the produce time; one refused beside it, as it was, once, and after that
// only on the chunk's retry; one named invalid on the produce time counts
// as refused for good. oldest is oldestRefused's.
func (b *Batch) resendAs(j int, f *Failure, oldest int64) resendHow {
	t := b.Recs[j].TimeMs
	switch f.Refusal {
	case RefusedTimestamp:
		if t != 0 && (t <= oldest || b.resent) { // the oldest, or refused again
			return restamped
		}
		if !b.resent {
			return asIs
		}
	case RefusedBeside:
		if !b.resent {
			return asIs
		}
	case RefusedInvalid:
		if t != 0 {
			return restamped
		}
	}
	return notAgain
}

// resendFrame sends batch message b again, closed to more records, if
// resendAs says so for f; it reports whether it did. a.mu is held.
func (a *Accumulator) resendFrame(b *Batch, f *Failure) bool {
	how := b.resendAs(0, f, b.Recs[0].TimeMs)
	if how == notAgain {
		return false
	}
	if how == restamped {
		b.Recs[0].TimeMs = 0
		for _, s := range b.spans {
			s.w.Restamped += s.n
		}
	}
	b.resent, b.full = true, true
	a.requeue(b)
	return true
}

// requeue puts b, a batch sent again, in its queue ahead of the batches not
// sent yet, behind those sent again before it: its records keep their
// order. a.mu is held.
func (a *Accumulator) requeue(b *Batch) {
	k := key{b.Topic, b.Partition, b.Lane}
	d := a.deques[k]
	i := 0
	for i < len(d) && d[i].resent {
		i++
	}
	a.deques[k] = slices.Insert(d, i, b)
	a.signal()
}

// Acknowledged counts the records Kafka acknowledged so far.
func (a *Accumulator) Acknowledged() int64 { return a.acknowledged.Load() }

// DeliveredByTopic returns how many records Kafka acknowledged, by topic.
func (a *Accumulator) DeliveredByTopic() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]int64, len(a.delivered))
	for t, n := range a.delivered {
		out[t] = n
	}
	return out
}

func (a *Accumulator) release(b *Batch) {
	b.Recs, b.idx, b.spans, b.full, b.DeadLetter, b.held, b.resent = b.Recs[:0], b.idx[:0], b.spans[:0], false, false, 0, false
	switch {
	case b.frame != nil:
		a.releaseFrame(b)
	case cap(b.Buf) == a.batchSize && !a.closed:
		b.Buf = b.Buf[:0]
		a.free.put(b)
	default:
		a.freeBuf(b)
	}
	a.wakeFirst()
}

// DropIdle frees the pooled batches that no flush took for idle
// (batchPool.dropIdle), and then, in record mode, has the allocator trim:
// the memory an outage's backlog took goes back once it is sent, whether
// or not records still come. The send loop calls it.
func (a *Accumulator) DropIdle(now time.Time, idle time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.free.dropIdle(now, idle, a.freeBuf)
	if a.frames != nil {
		n += a.frames.free.dropIdle(now, idle, a.forgetFrame)
	}
	if n == 0 {
		return
	}
	if a.frames == nil {
		go a.alloc.Trim() // glibc takes tens of ms after a large backlog
	}
	a.wakeFirst()
}

// Abort completes b with every record failed, retriably, for reason, and
// returns how many records that was.
func (a *Accumulator) Abort(b *Batch, reason string) int {
	failures := make([]Failure, len(b.Recs))
	for i := range failures {
		failures[i] = Failure{Index: i, Err: -1, Reason: reason}
	}
	return a.Complete(b, failures)
}

// Batches returns how many batches wait to be drained.
func (a *Accumulator) Batches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, d := range a.deques {
		n += len(d)
	}
	return n
}

// Close makes every batch ready, for the last drain, and stops pooling;
// Append takes no more records.
func (a *Accumulator) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for b := a.free.take(); b != nil; b = a.free.take() {
		a.freeBuf(b)
	}
	if a.frames != nil {
		a.closeFrames()
	}
	a.wakeFirst()
	a.signal()
}

// Used returns the bytes of batch buffers allocated now.
func (a *Accumulator) Used() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used
}
