package accumulator

import (
	"runtime"
	"strconv"
	"time"

	"github.com/pierrec/lz4/v4"
)

// Batch mode: a batch is one Kafka message whose value is an LZ4 frame of
// its records (newline-delimited JSON, or a msgpack stream). Records are
// compressed as they are appended, so the memory budget counts compressed
// bytes; Batch_Size bounds the uncompressed bytes of a frame.

// Headers of a batch message.
const (
	HeaderContentType     = "content-type"
	HeaderContentEncoding = "content-encoding" // lz4
	HeaderRecords         = "gokafka.records"
	HeaderFirstTime       = "gokafka.first_time" // event time of the first record, RFC 3339
	HeaderLastTime        = "gokafka.last_time"
)

// frameBlock is the LZ4 block size: the uncompressed bytes a frame holds
// before it compresses them into the batch.
const frameBlock = 64 << 10

// frameOverhead is what an open frame costs beside its output: the LZ4
// writer's block buffer and hash table.
const frameOverhead = 2*frameBlock + 64<<10

// framing is the batch mode of an accumulator.
type framing struct {
	contentType string
	newline     bool     // records separated by '\n' (NDJSON)
	free        []*frame // frames of sent batches, with their writer and buffer, for reuse
}

// SetFrames turns batch mode on: contentType is the records' media type;
// records are separated by newlines but in application/msgpack.
func (a *Accumulator) SetFrames(contentType string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.frames = &framing{contentType: contentType, newline: contentType != "application/msgpack"}
}

// frame is the open LZ4 frame of a batch in batch mode.
type frame struct {
	w           *lz4.Writer
	out         *frameOut
	buf         []byte // the buffer, kept for reuse
	raw         int    // uncompressed bytes written
	first, last int64  // event times, ms
	pin         runtime.Pinner
}

// frameOut appends compressed output to the batch buffer (Go memory, pinned
// when the batch is sealed, for librdkafka to read without a copy).
type frameOut struct{ b *Batch }

func (o *frameOut) Write(p []byte) (int, error) {
	o.b.Buf = append(o.b.Buf, p...)
	return len(p), nil
}

// frameBuffer is the starting size of a frame's buffer: logs compress
// about 4:1.
func (a *Accumulator) frameBuffer() int { return a.batchSize / 3 }

// newFrameBatch starts a batch with a reused frame, or a new one.
func (a *Accumulator) newFrameBatch(deadline time.Time) (*Batch, error) {
	var f *frame
	if n := len(a.frames.free); n > 0 {
		f = a.frames.free[n-1]
		a.frames.free = a.frames.free[:n-1]
	} else {
		if err := a.reserve(frameOverhead+a.frameBuffer(), deadline); err != nil {
			return nil, err
		}
		f = &frame{out: &frameOut{}, buf: make([]byte, 0, a.frameBuffer())}
		f.w = lz4.NewWriter(f.out)
		// No xxHash content checksum: Kafka's record batch CRC covers the
		// message already, and the checksum costs 7 % of a frame's compression.
		if err := f.w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ConcurrencyOption(1), lz4.ChecksumOption(false)); err != nil {
			panic(err) // constant, valid options
		}
	}
	b := &Batch{frame: f, Buf: f.buf[:0]}
	f.out.b = b
	f.w.Reset(f.out)
	f.raw, f.first, f.last = 0, 0, 0
	return b, nil
}

// reserve takes n bytes of the budget, waiting for memory until deadline;
// a.mu is held and released while waiting.
func (a *Accumulator) reserve(n int, deadline time.Time) error {
	if int64(n) > a.limit {
		return ErrTooLarge
	}
	for a.used+int64(n) > a.limit {
		if err := a.waitForMemory(deadline); err != nil {
			return err
		}
	}
	a.used += int64(n)
	return nil
}

// newline ends each NDJSON record in a frame (a variable: a literal would be
// allocated at every write).
var newline = []byte{'\n'}

// appendFramed writes staged record r into b's frame, charging the growth
// of the compressed output to the budget.
func (a *Accumulator) appendFramed(b *Batch, s *Staged, r Rec) {
	f := b.frame
	before := cap(b.Buf)
	f.w.Write(s.Buf[r.Off : r.Off+r.Len])
	if a.frames.newline {
		f.w.Write(newline)
	}
	f.raw += int(r.Len) + 1
	if f.first == 0 {
		f.first = r.TimeMs
	}
	f.last = r.TimeMs
	a.used += int64(cap(b.Buf) - before)
}

// fitsFrame reports room in b's frame for size more uncompressed bytes.
func (a *Accumulator) fitsFrame(b *Batch, size int) bool {
	return b.frame.raw+size+1 <= a.batchSize
}

// seal closes b's frame and makes b one Kafka message: the frame, then the
// batch headers. a.mu is held.
func (a *Accumulator) seal(b *Batch) {
	f := b.frame
	if f == nil || b.sealed {
		return
	}
	before := cap(b.Buf)
	f.w.Close()
	n := len(b.Buf)
	h := AppendHeader(nil, []byte(HeaderContentType), []byte(a.frames.contentType))
	h = AppendHeader(h, []byte(HeaderContentEncoding), []byte("lz4"))
	h = AppendHeader(h, []byte(HeaderRecords), strconv.AppendInt(nil, int64(len(b.idx)), 10))
	h = AppendHeader(h, []byte(HeaderFirstTime), time.UnixMilli(f.first).UTC().AppendFormat(nil, time.RFC3339Nano))
	h = AppendHeader(h, []byte(HeaderLastTime), time.UnixMilli(f.last).UTC().AppendFormat(nil, time.RFC3339Nano))
	b.Buf = append(b.Buf, h...)
	a.used += int64(cap(b.Buf) - before)
	b.Recs = append(b.Recs[:0], Rec{Off: 0, Len: uint32(n), HdrLen: uint32(len(h)), TimeMs: f.last})
	f.pin.Pin(&b.Buf[0])
	b.sealed = true
}

// releaseFrame keeps a sent batch's frame for reuse, or gives its memory
// back to the budget when the accumulator is closed.
func (a *Accumulator) releaseFrame(b *Batch) {
	f := b.frame
	f.pin.Unpin()
	f.buf, f.out.b = b.Buf[:0], nil
	if a.closed {
		a.used -= int64(cap(f.buf)) + frameOverhead
		return
	}
	a.frames.free = append(a.frames.free, f)
}
