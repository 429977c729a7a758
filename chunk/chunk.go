// Package chunk reads the records of a Fluent Bit chunk without copying them.
//
// A chunk is a run of msgpack values, each [[time, metadata], body] (Fluent
// Bit 2.1+) or [time, body]; time is an EventTime (ext type 0), an integer or
// a float. Group markers (EventTime seconds 0xFFFFFFFF and 0xFFFFFFFE) are
// not records and are skipped.
package chunk

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tinylib/msgp/msgp"
)

// Record is one log record; its slices point into the chunk.
type Record struct {
	Time     int64  // Unix nanoseconds
	Metadata []byte // msgpack map, nil in the [time, body] layout
	Body     []byte // one msgpack value, normally a map
}

// Error says where a chunk stopped making sense.
type Error struct {
	Offset, Size int // byte offset of the bad record, chunk size
	Record       int // index of the bad record (markers included)
	Err          error
}

func (e *Error) Error() string {
	return fmt.Sprintf("malformed chunk at byte %d of %d (entry %d): %v", e.Offset, e.Size, e.Record, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Reader walks a chunk's records.
type Reader struct {
	data  []byte
	rest  []byte
	entry int
	// open: NextOpen returned a record whose body is not delimited yet;
	// rest starts with that body, the entry started at openStart.
	open      bool
	openStart int
}

// NewReader starts reading data.
func NewReader(data []byte) *Reader { return &Reader{data: data, rest: data} }

// Reset starts reading data with r, so a Reader can be reused.
func (r *Reader) Reset(data []byte) { *r = Reader{data: data, rest: data} }

// Next fills rec with the next record; it returns false at the end of the
// chunk or with an *Error where decoding failed.
func (r *Reader) Next(rec *Record) (bool, error) { return r.next(rec, true) }

// NextOpen is Next for a caller that walks each record's body anyway, as
// an encoder does, and so finds where it ends: the reader does not walk it
// too. rec.Body runs from the body to the end of the chunk, its first
// value being the body. The caller then calls EndBody with the body's
// length, or SkipBody, which delimits the body as Next does, with Next's
// errors, when it did not walk it to its end (on an error of its own, or
// before looking into rec.Body otherwise). A Next or NextOpen before that
// skips the body.
func (r *Reader) NextOpen(rec *Record) (bool, error) { return r.next(rec, false) }

// EndBody delimits the body of the record NextOpen filled rec with: it is
// n bytes long. n must be where a walk of rec.Body found the end of its
// first value.
func (r *Reader) EndBody(rec *Record, n int) {
	if !r.open {
		panic("chunk: EndBody without an open record")
	}
	rec.Body, r.rest, r.open = rec.Body[:n], r.rest[n:], false
}

// SkipBody delimits the body of the record NextOpen filled rec with as
// Next does, with Next's *Error where the body is malformed. It does
// nothing to a record whose body is delimited already.
func (r *Reader) SkipBody(rec *Record) error {
	if !r.open {
		return nil
	}
	r.open = false
	b, err := skip(r.rest)
	if err != nil {
		r.rest = nil // as after Next's error: nothing more to read
		return &Error{Offset: r.openStart, Size: len(r.data), Record: r.entry - 1, Err: fmt.Errorf("body: %w", err)}
	}
	rec.Body = r.rest[:len(r.rest)-len(b)]
	r.rest = b
	return nil
}

func (r *Reader) next(rec *Record, delimit bool) (bool, error) {
	if r.open {
		if err := r.SkipBody(rec); err != nil {
			return false, err
		}
	}
	for len(r.rest) > 0 {
		start := len(r.data) - len(r.rest)
		marker, err := r.read(rec, delimit)
		if err != nil {
			return false, &Error{Offset: start, Size: len(r.data), Record: r.entry, Err: err}
		}
		r.entry++
		if !marker {
			if !delimit {
				r.open, r.openStart = true, start
			}
			return true, nil
		}
	}
	return false, nil
}

// read decodes one entry; marker reports a group marker. Unless delimit,
// the body of a record that is not a marker is left to the caller:
// rec.Body and r.rest start with it.
func (r *Reader) read(rec *Record, delimit bool) (marker bool, err error) {
	b := r.rest
	n, b, err := readArrayHeader(b)
	if err != nil {
		return false, err
	}
	if n != 2 {
		return false, fmt.Errorf("entry is an array of %d, want 2", n)
	}
	rec.Metadata = nil
	if msgp.NextType(b) == msgp.ArrayType {
		// [[time, metadata], body]
		if n, b, err = readArrayHeader(b); err != nil {
			return false, err
		}
		if n < 1 {
			return false, fmt.Errorf("empty header array")
		}
		if rec.Time, marker, b, err = readTime(b); err != nil {
			return false, err
		}
		for i := uint32(1); i < n; i++ {
			start := b
			if len(b) > 0 && b[0] == 0x80 { // empty map, the usual metadata
				b = b[1:]
			} else if b, err = skip(b); err != nil {
				return false, err
			}
			if i == 1 {
				rec.Metadata = start[:len(start)-len(b)]
			}
		}
	} else if rec.Time, marker, b, err = readTime(b); err != nil {
		return false, err
	}
	if !delimit && !marker {
		if len(b) == 0 { // as skip would find
			return false, fmt.Errorf("body: %w", msgp.ErrShortBytes)
		}
		rec.Body, r.rest = b, b
		return false, nil
	}
	start := b
	if b, err = skip(b); err != nil {
		return false, fmt.Errorf("body: %w", err)
	}
	rec.Body = start[:len(start)-len(b)]
	r.rest = b
	return marker, nil
}

// readArrayHeader is msgp.ReadArrayHeaderBytes with the short form,
// fixarray, inline.
func readArrayHeader(b []byte) (n uint32, rest []byte, err error) {
	if len(b) > 0 && b[0]&0xf0 == 0x90 {
		return uint32(b[0] & 0x0f), b[1:], nil
	}
	return msgp.ReadArrayHeaderBytes(b)
}

// skip returns what follows the msgpack value at the start of b, as
// msgp.Skip does; the common shapes of a record (maps, arrays, strings,
// small scalars) are stepped over by skipPlain, without msgp.Skip's
// per-value cost. Anything skipPlain leaves to msgp.Skip, including every
// error, goes to msgp.Skip whole, so results and errors are msgp.Skip's.
func skip(b []byte) ([]byte, error) {
	if rest, ok := skipPlain(b); ok {
		return rest, nil
	}
	return msgp.Skip(b)
}

// maxPlainContainers bounds the maps and arrays skipPlain opens: far below
// msgp.Skip's nesting limit, so skipPlain never accepts what msgp.Skip
// refuses as too deep.
const maxPlainContainers = 1000

// skipPlain steps over one msgpack value without recursion: n counts the
// values still to step over, and a map or array adds its elements to it.
// ok is false for a value it does not know or one cut short.
func skipPlain(b []byte) (rest []byte, ok bool) {
	containers := 0
	for n := 1; n > 0; n-- {
		if n > len(b) { // each value takes a byte at least
			return nil, false
		}
		c := b[0]
		size, elems := 1, 0
		switch {
		case c >= 0xa0 && c <= 0xbf: // fixstr, the most common
			size += int(c & 0x1f)
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3: // fixint, nil, bool
		case c == 0xd9: // str8
			if len(b) < 2 {
				return nil, false
			}
			size = 2 + int(b[1])
		case c == 0xda: // str16
			if len(b) < 3 {
				return nil, false
			}
			size = 3 + int(binary.BigEndian.Uint16(b[1:]))
		case c >= 0x80 && c <= 0x8f: // fixmap
			elems = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f: // fixarray
			elems = int(c & 0x0f)
		case c == 0xde: // map16
			if len(b) < 3 {
				return nil, false
			}
			size, elems = 3, 2*int(binary.BigEndian.Uint16(b[1:]))
		case c == 0xdc: // array16
			if len(b) < 3 {
				return nil, false
			}
			size, elems = 3, int(binary.BigEndian.Uint16(b[1:]))
		default:
			return nil, false
		}
		if len(b) < size {
			return nil, false
		}
		if elems > 0 {
			if containers++; containers > maxPlainContainers {
				return nil, false
			}
			n += elems
		}
		b = b[size:]
	}
	return b, true
}

const (
	groupStart = 0xFFFFFFFF
	groupEnd   = 0xFFFFFFFE
)

// readTime reads an EventTime, integer or float timestamp.
func readTime(b []byte) (ns int64, marker bool, rest []byte, err error) {
	if len(b) >= 10 && b[0] == 0xd7 && b[1] == 0 { // fixext8, type 0: EventTime
		sec := binary.BigEndian.Uint32(b[2:])
		nsec := binary.BigEndian.Uint32(b[6:])
		return int64(sec)*1e9 + int64(nsec), sec == groupStart || sec == groupEnd, b[10:], nil
	}
	switch msgp.NextType(b) {
	case msgp.IntType, msgp.UintType:
		var s int64
		s, rest, err = msgp.ReadInt64Bytes(b)
		if err == nil && (s > math.MaxInt64/int64(1e9) || s < math.MinInt64/int64(1e9)) {
			err = fmt.Errorf("timestamp %d out of range", s)
		}
		return s * 1e9, false, rest, err
	case msgp.Float64Type, msgp.Float32Type:
		var f float64
		f, rest, err = msgp.ReadFloat64Bytes(b)
		// MaxInt64/1e9 rounds up as a float64, to 2^63/1e9: f*1e9 must stay below it.
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= math.MaxInt64/1e9) {
			err = fmt.Errorf("timestamp %v out of range", f)
		}
		return int64(math.Round(f * 1e9)), false, rest, err
	}
	return 0, false, b, fmt.Errorf("timestamp of type %v, want EventTime, integer or float", msgp.NextType(b))
}
