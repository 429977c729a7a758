package accumulator

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gokafka/gokafka/batch"
	"github.com/pierrec/lz4/v4"
)

// Batch mode: a batch is one Kafka message whose value is an LZ4 frame of
// its records (newline-delimited text, or a msgpack stream). A flush cuts its
// staged records into segments of whole records and compresses each into LZ4
// blocks as soon as it is full, while its bytes are fresh in the CPU's cache
// (Compress); Append then puts each segment's blocks into a batch's frame. So
// the memory budget counts compressed bytes, compression runs outside the
// accumulator's lock, and Batch_Size bounds the uncompressed bytes of a frame.

// frameBlock is the LZ4 block size (the frame's maximum), and the size of a
// segment of records, unless one record alone is larger.
const frameBlock = 64 << 10

// frameHeader and frameEnd open and close every frame: what pierrec/lz4
// writes for 64 KiB independent blocks without checksums.
var frameHeader, frameEnd = lz4Frame()

func lz4Frame() (header, end []byte) {
	var empty bytes.Buffer
	w := lz4.NewWriter(&empty)
	if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)); err != nil {
		panic(err) // constant, valid options
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	b := empty.Bytes()
	return b[:len(b)-4], b[len(b)-4:]
}

// compressors hold the reference implementation's fast LZ4 (pierrec/lz4's
// CCompat compressor: on log text 12 % faster than its default one, 25 %
// faster than its Writer).
var compressors = sync.Pool{New: func() any { return new(lz4.CompressorCCompat) }}

// segment is a run of one flush's staged records as LZ4 blocks, each after
// its size as the frame format has it.
type segment struct {
	raw              int // uncompressed bytes
	recs             int
	earliest, latest int64 // event times, ms
	blocks           []byte
}

// appendBlock appends src as one frame block: compressed, or stored as it
// is when it does not compress.
func appendBlock(dst, src []byte, c *lz4.CompressorCCompat) []byte {
	at := len(dst)
	bound := lz4.CompressBlockBound(len(src))
	dst = slices.Grow(dst, 4+bound)[:at+4+bound]
	n, err := c.CompressBlock(src, dst[at+4:])
	size := uint32(n)
	if err != nil || n == 0 || n >= len(src) {
		n = copy(dst[at+4:], src)
		size = uint32(n) | 1<<31 // uncompressed
	}
	binary.LittleEndian.PutUint32(dst[at:], size)
	return dst[:at+4+n]
}

// framing is the batch mode of an accumulator.
type framing struct {
	contentType string
	eventTime   bool      // a batch message's timestamp is its latest event time, not 0
	segment     int       // raw bytes of a segment: frameBlock, or Batch_Size if smaller
	free        batchPool // sent batches, with their frame and buffer, for reuse
	// trailer is the room kept in a frame's buffer after its blocks: for
	// the frame's end and the message's headers (seal), and for what C
	// holds of the message (Cost: its struct and its copy of the headers).
	trailer int
	// maxFrame bounds a frame's start and blocks, so that the message
	// stays within the producer's message size limit; 0 for none known.
	maxFrame int
	headers  int // a message's headers at their longest, the operator's included
}

// messageOverhead is what a message takes on the wire beside its value and
// headers, within message.max.bytes: librdkafka 2.15 counts a record's
// largest framing (36 bytes, RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD), and the
// batch that holds a lone message adds its own header (61 bytes).
const messageOverhead = 128

// maxTimeLen bounds an event time in RFC 3339 (with milliseconds), over
// int64's range of them: years of up to 9 digits and a sign.
const maxTimeLen = 40

// appendBatchHeaders appends the headers of a batch message of records records
// whose event times run from earliest to latest, ms; the operator's last.
func (a *Accumulator) appendBatchHeaders(dst []byte, records int, earliest, latest int64) []byte {
	dst = AppendHeader(dst, []byte(batch.ContentTypeHeader), []byte(a.frames.contentType))
	dst = AppendHeader(dst, []byte(batch.ContentEncodingHeader), []byte("lz4"))
	dst = AppendHeader(dst, []byte(batch.RecordsHeader), strconv.AppendInt(nil, int64(records), 10))
	dst = AppendHeader(dst, []byte(batch.FirstTimeHeader), time.UnixMilli(earliest).UTC().AppendFormat(nil, batch.TimeLayout))
	dst = AppendHeader(dst, []byte(batch.LastTimeHeader), time.UnixMilli(latest).UTC().AppendFormat(nil, batch.TimeLayout))
	return append(dst, a.batchHeaders...)
}

// SetBatchHeaders gives the operator's headers (encoded with AppendHeader),
// which every batch message carries after the batch mode headers.
func (a *Accumulator) SetBatchHeaders(pairs []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batchHeaders = slices.Clone(pairs)
	a.frameLimits()
}

// frameLimits sets the trailer and maxFrame of batch mode, for the
// headers at their longest; a.mu is held.
func (a *Accumulator) frameLimits() {
	f := a.frames
	if f == nil {
		return
	}
	h := a.appendBatchHeaders(nil, 0, 0, 0)
	// At their longest: a count of 19 digits, times of maxTimeLen.
	n := len(h) + 18 + 2*(maxTimeLen-len("1970-01-01T00:00:00.000Z"))
	f.headers = n
	f.trailer = len(frameEnd) + n + Cost(Rec{HdrLen: uint32(n)}, h) - n
	f.maxFrame = 0
	if a.maxMessage > 0 {
		f.maxFrame = max(a.maxMessage-messageOverhead-len(frameEnd)-n, 1)
	}
}

// SetFrames turns batch mode on: contentType is the records' media type;
// with eventTime, a batch message's Kafka timestamp is its records' latest
// event time, else 0 (produce time). Each staged record must then end with
// its separator (a newline in NDJSON), have its event time as TimeMs, and s
// be passed to Compress before Append.
func (a *Accumulator) SetFrames(contentType string, eventTime bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.frames = &framing{contentType: contentType, eventTime: eventTime, segment: min(frameBlock, a.batchSize)}
	a.frameLimits()
}

// Compress compresses, in batch mode, the records staged in s since the
// last call as a segment once they fill one, or, when final, whatever they
// are. Call it after each Staged.Add, and with final before Append.
func (a *Accumulator) Compress(s *Staged, final bool) {
	f := a.frames
	if f == nil || s.cut == len(s.Recs) {
		return
	}
	end := len(s.Recs)
	if !final {
		if len(s.Buf)-int(s.Recs[s.cut].Off) <= f.segment || end-s.cut < 2 {
			return
		}
		end-- // the newest record starts the next segment
	}
	s.compress(end)
}

// compress makes s's records from the last cut to end a segment.
func (s *Staged) compress(end int) {
	n := len(s.segs)
	if n < cap(s.segs) {
		s.segs = s.segs[:n+1] // reuse an earlier flush's, with its buffer
	} else {
		s.segs = append(s.segs, nil)
	}
	if s.segs[n] == nil {
		s.segs[n] = new(segment)
	}
	seg := s.segs[n]
	stop := len(s.Buf)
	if end < len(s.Recs) {
		stop = int(s.Recs[end].Off)
	}
	raw := s.Buf[s.Recs[s.cut].Off:stop]
	seg.raw, seg.recs, seg.earliest, seg.latest = len(raw), end-s.cut, s.Recs[s.cut].TimeMs, s.Recs[s.cut].TimeMs
	for _, r := range s.Recs[s.cut+1 : end] {
		seg.earliest, seg.latest = min(seg.earliest, r.TimeMs), max(seg.latest, r.TimeMs)
	}
	s.cut = end
	c := compressors.Get().(*lz4.CompressorCCompat)
	seg.blocks = seg.blocks[:0]
	for len(raw) > 0 {
		block := raw[:min(len(raw), frameBlock)]
		seg.blocks = appendBlock(seg.blocks, block, c)
		raw = raw[len(block):]
	}
	compressors.Put(c)
}

// frame is the LZ4 frame of a batch in batch mode.
type frame struct {
	raw              int   // uncompressed bytes
	earliest, latest int64 // event times, ms
	pin              runtime.Pinner
}

// frameStartSize is the starting size of a frame's buffer: logs compress
// about 4:1.
func (a *Accumulator) frameStartSize() int { return a.batchSize / 3 }

// newFrameBatch reuses a sent batch, or starts a new one, with room for n
// bytes of blocks, waiting for memory until deadline (obtain). A sent batch
// keeps its memory, so a waiting flush must look for one again after each
// release rather than only for memory.
func (a *Accumulator) newFrameBatch(n int, deadline time.Time) (*Batch, error) {
	size := max(a.frameStartSize(), len(frameHeader)+n+a.frames.trailer)
	if int64(size) > a.limit {
		return nil, tooLarge("compressed, in a frame of its own, their block", size)
	}
	if f := a.frames; f.maxFrame > 0 && len(frameHeader)+n > f.maxFrame {
		return nil, tooLargeError(fmt.Sprintf("compressed to %d bytes, over what rdkafka.message.max.bytes (%d) leaves beside the message's headers (%d bytes with the Header pairs)",
			len(frameHeader)+n, a.maxMessage, f.headers))
	}
	return a.obtain(deadline, func() *Batch {
		for b := a.frames.free.take(); b != nil; b = a.frames.free.take() {
			b.Buf = append(b.Buf[:0], frameHeader...)
			if a.reserve(b, n, true) {
				b.frame.raw, b.frame.earliest, b.frame.latest = 0, 0, 0
				return b
			}
			a.forgetFrame(b) // too small: give its memory back for a larger one
		}
		if a.used+int64(size) > a.limit {
			return nil
		}
		a.used += int64(size)
		return &Batch{frame: &frame{}, Buf: append(make([]byte, 0, size), frameHeader...)}
	})
}

// reserve makes room in b's buffer for n more bytes and the frame's
// trailer, growing it by half at least if the budget allows, else by what
// is needed; false if the budget has no room for that, or if it is not the
// caller's turn to take memory (inTurn false: others wait for memory first).
func (a *Accumulator) reserve(b *Batch, n int, inTurn bool) bool {
	more := len(b.Buf) + n + a.frames.trailer - cap(b.Buf)
	if more <= 0 {
		return true
	}
	left := int(a.limit - a.used)
	if more > left || !inTurn {
		return false
	}
	more = max(more, min(cap(b.Buf)/2, left))
	b.Buf = append(make([]byte, 0, cap(b.Buf)+more), b.Buf...)
	a.used += int64(more)
	return true
}

// appendSegments puts s's compressed segments into batches of key k, whose
// newest batch is b (nil for none), on behalf of w. It returns how many
// records went in: fewer than all means the deadline passed or, with
// ErrTooLarge, that the next segment can never be sent: larger than the
// budget, or than a message may be (a record that does not compress to fit
// message.max.bytes).
func (a *Accumulator) appendSegments(k key, b *Batch, s *Staged, w *Waiter, deadline time.Time) (int, error) {
	n := 0
	for _, seg := range s.segs {
		if b == nil || b.full || b.frame.raw > 0 && !a.frameFits(b, seg) || !a.reserve(b, len(seg.blocks), a.myTurn(nil)) {
			var err error
			if b, err = a.next(k, b, len(seg.blocks), deadline); err != nil {
				return n, err
			}
		}
		f := b.frame
		b.Buf = append(b.Buf, seg.blocks...)
		if f.raw == 0 {
			f.earliest, f.latest = seg.earliest, seg.latest
		}
		f.raw += seg.raw
		f.earliest, f.latest = min(f.earliest, seg.earliest), max(f.latest, seg.latest)
		for _, i := range s.Idx[n : n+seg.recs] {
			a.track(b, i, w)
		}
		n += seg.recs
	}
	return n, nil
}

// frameFits reports whether segment seg may join b's frame: Batch_Size
// bounds the frame's records, uncompressed, and the message size limit the
// frame itself. Incompressible records, or many small segments (a block
// each, with its size), make a frame larger than its records.
func (a *Accumulator) frameFits(b *Batch, seg *segment) bool {
	if b.frame.raw+seg.raw > a.batchSize {
		return false
	}
	return a.frames.maxFrame == 0 || len(b.Buf)+len(seg.blocks) <= a.frames.maxFrame
}

// seal closes b's frame and makes b one Kafka message: the frame, then the
// batch headers. a.mu is held.
//
// It pins the buffer, which librdkafka references from C once the batch is
// produced: every sealed batch must come back through Complete (or Abort),
// whose releaseFrame unpins it; a sealed batch lost on the way keeps its
// buffer pinned, and its memory, for good.
func (a *Accumulator) seal(b *Batch) {
	f := b.frame
	if f == nil || b.sealed {
		return
	}
	before := cap(b.Buf)
	b.Buf = append(b.Buf, frameEnd...)
	n := len(b.Buf)
	b.Buf = a.appendBatchHeaders(b.Buf, len(b.idx), f.earliest, f.latest)
	a.used += int64(cap(b.Buf) - before)
	hdr := len(b.Buf) - n
	if size := len(b.Buf) + Cost(Rec{HdrLen: uint32(hdr)}, b.Buf[n:]) - hdr; size <= cap(b.Buf)/4 && a.used+int64(size) <= a.limit {
		// A message far smaller than its buffer (a small flush's) goes in
		// a buffer of its own size, with room for what C holds of it, so
		// that Buffer_Memory counts what the batches in flight hold, as
		// many as an outage keeps; the buffer waits in the pool for the
		// next frame.
		big := b.Buf[:0]
		b.Buf = append(make([]byte, 0, size), b.Buf...)
		a.used += int64(size)
		if a.closed {
			a.used -= int64(cap(big))
		} else {
			a.frames.free.put(&Batch{frame: &frame{}, Buf: big})
			a.wakeFirst()
		}
	}
	ts := int64(0)
	if a.frames.eventTime {
		ts = f.latest
	}
	b.Recs = append(b.Recs[:0], Rec{Off: 0, Len: uint32(n), HdrLen: uint32(len(b.Buf) - n), TimeMs: ts})
	f.pin.Pin(&b.Buf[0])
	b.sealed = true
}

// releaseFrame keeps a sent batch, with its frame and buffer, for reuse, or
// gives its memory back to the budget when the accumulator is closed, the
// budget is overdrawn, or the buffer is one of a small message's own (seal).
func (a *Accumulator) releaseFrame(b *Batch) {
	b.frame.pin.Unpin()
	b.Buf, b.sealed = b.Buf[:0], false
	if a.closed || a.used > a.limit || cap(b.Buf) < a.frameStartSize() {
		a.forgetFrame(b)
		return
	}
	a.frames.free.put(b)
}

// forgetFrame gives the memory of batch b, kept for reuse, back to the
// budget, and b to the garbage collector; a.mu is held.
func (a *Accumulator) forgetFrame(b *Batch) { a.used -= int64(cap(b.Buf)) }

// closeFrames gives the kept batches' memory back; a.mu is held.
func (a *Accumulator) closeFrames() {
	for b := a.frames.free.take(); b != nil; b = a.frames.free.take() {
		a.forgetFrame(b)
	}
}
