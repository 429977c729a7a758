// Package chunk reads the records of a Fluent Bit chunk without copying them.
//
// A chunk is a run of msgpack values, each [[time, metadata], body] (Fluent
// Bit 2.1+) or [time, body]; time is an EventTime (ext type 0), an integer or
// a float. Group markers, times of -1 and -2 seconds as Fluent Bit's log
// event decoder reads them (EventTime seconds 0xFFFFFFFF and 0xFFFFFFFE with
// 0 ns; an unsigned integer or a float whose whole seconds, as int64, are -1
// or -2), are not records: each record carries the group start it follows.
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
	// TimeErr says why the timestamp cannot be read (Time is then 0): the
	// record is whole, but to be dropped.
	TimeErr error
	Group   Group
}

// Group is the group start marker before a record, as Fluent Bit's
// OpenTelemetry input puts a resource and scope before their records; its
// slices are nil for a record outside a group.
type Group struct {
	Metadata []byte // msgpack map, nil in the [time, body] layout
	Body     []byte // one msgpack value
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
	group     Group // the group the next records are in
}

// NewReader starts reading data.
func NewReader(data []byte) *Reader { return &Reader{data: data, rest: data} }

// Reset starts reading data with r, so a Reader can be reused.
func (r *Reader) Reset(data []byte) { *r = Reader{data: data, rest: data} }

// Count returns how many records data holds, up to its end or its first
// malformed entry; group markers are not records.
func Count(data []byte) int {
	n, r, rec := 0, NewReader(data), Record{}
	for more, _ := r.Next(&rec); more; more, _ = r.Next(&rec) {
		n++
	}
	return n
}

// Next fills rec with the next record; it returns false at the end of the
// chunk or with an *Error where decoding failed. A record whose timestamp
// cannot be read but whose entry is well formed comes with rec.TimeErr set.
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
		switch marker {
		case noMarker:
			if !delimit {
				r.open, r.openStart = true, start
			}
			rec.Group = r.group
			return true, nil
		case startMarker:
			r.group = Group{Metadata: rec.Metadata, Body: rec.Body}
		case endMarker:
			r.group = Group{}
		}
	}
	return false, nil
}

// read decodes one entry; marker says if it is a group marker. Unless
// delimit, the body of a record that is not a marker is left to the
// caller: rec.Body and r.rest start with it.
func (r *Reader) read(rec *Record, delimit bool) (marker groupMarker, err error) {
	b := r.rest
	n, b, err := readArrayHeader(b)
	if err != nil {
		return noMarker, err
	}
	if n != 2 {
		return noMarker, fmt.Errorf("entry is an array of %d, want 2", n)
	}
	rec.Metadata, rec.TimeErr = nil, nil
	if msgp.NextType(b) == msgp.ArrayType {
		// [[time, metadata], body]
		if n, b, err = readArrayHeader(b); err != nil {
			return noMarker, err
		}
		if n < 1 {
			return noMarker, fmt.Errorf("empty header array")
		}
		if rec.Time, marker, rec.TimeErr, b, err = readTime(b); err != nil {
			return noMarker, err
		}
		for i := uint32(1); i < n; i++ {
			start := b
			if len(b) > 0 && b[0] == 0x80 { // empty map, the usual metadata
				b = b[1:]
			} else if b, err = skip(b); err != nil {
				return noMarker, err
			}
			if i == 1 {
				rec.Metadata = start[:len(start)-len(b)]
			}
		}
	} else if rec.Time, marker, rec.TimeErr, b, err = readTime(b); err != nil {
		return noMarker, err
	}
	if !delimit && marker == noMarker {
		if len(b) == 0 { // as skip would find
			return noMarker, fmt.Errorf("body: %w", msgp.ErrShortBytes)
		}
		rec.Body, r.rest = b, b
		return noMarker, nil
	}
	start := b
	if b, err = skip(b); err != nil {
		return noMarker, fmt.Errorf("body: %w", err)
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

// groupMarker tells a record from a group's start and end markers.
type groupMarker int8

const (
	noMarker    groupMarker = 0
	startMarker groupMarker = -1 // Fluent Bit's seconds
	endMarker   groupMarker = -2
)

// readTime reads the timestamp at the start of b as Fluent Bit's log event
// decoder does. timeErr says why a timestamp that msgpack delimits cannot
// be read; err, that it is malformed.
func readTime(b []byte) (ns int64, marker groupMarker, timeErr error, rest []byte, err error) {
	if len(b) >= 10 && b[0] == 0xd7 && b[1] == 0 { // fixext8 EventTime, the usual
		if sec := binary.BigEndian.Uint32(b[2:]); sec < groupEnd {
			return int64(sec)*1e9 + int64(binary.BigEndian.Uint32(b[6:])), noMarker, nil, b[10:], nil
		}
	}
	if rest, err = skip(b); err != nil {
		return 0, noMarker, nil, b, err
	}
	ns, marker, timeErr = parseTime(b[:len(b)-len(rest)])
	return ns, marker, timeErr, rest, nil
}

// parseTime reads the timestamp v, one whole msgpack value.
func parseTime(v []byte) (ns int64, marker groupMarker, err error) {
	if d := eventTimeData(v); d != nil {
		sec, nsec := binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		if sec == groupStart || sec == groupEnd {
			if nsec != 0 {
				return 0, noMarker, fmt.Errorf("EventTime of a group marker with %d ns", nsec)
			}
			return 0, groupMarker(int32(sec)), nil
		}
		return int64(sec)*1e9 + int64(nsec), noMarker, nil
	}
	var sec int64
	switch msgp.NextType(v) {
	case msgp.UintType:
		u, _, _ := msgp.ReadUint64Bytes(v)
		sec = int64(u) // as Fluent Bit's time_t: 2^64-1 is -1, a group start
	case msgp.IntType:
		if sec, _, _ = msgp.ReadInt64Bytes(v); sec < 0 {
			return 0, noMarker, fmt.Errorf("negative integer timestamp %d", sec)
		}
	case msgp.Float64Type, msgp.Float32Type:
		f, _, _ := msgp.ReadFloat64Bytes(v)
		// MaxInt64/1e9 rounds up as a float64, to 2^63/1e9: f*1e9 must stay below it.
		if math.IsNaN(f) || math.Abs(f) >= math.MaxInt64/1e9 {
			return 0, noMarker, fmt.Errorf("timestamp %v out of range", f)
		}
		if sec = int64(f); sec >= 0 { // whole seconds, as Fluent Bit's time_t
			return int64(math.Round(f * 1e9)), noMarker, nil
		}
	default:
		return 0, noMarker, fmt.Errorf("timestamp of type %v, want EventTime, integer or float", msgp.NextType(v))
	}
	switch {
	case sec == -1 || sec == -2:
		return 0, groupMarker(sec), nil
	case sec < 0 || sec > math.MaxInt64/int64(1e9):
		return 0, noMarker, fmt.Errorf("timestamp %d s out of range", sec)
	}
	return sec * 1e9, noMarker, nil
}

// eventTimeData returns the 8 bytes of v if it is an EventTime: ext type 0 with
// 8 bytes, in any ext encoding, as msgpack-c reads it; else nil.
func eventTimeData(v []byte) []byte {
	h := 0 // header length
	switch v[0] {
	case 0xd7: // fixext8
		h = 2
	case 0xc7: // ext8
		h = 3
	case 0xc8: // ext16
		h = 4
	case 0xc9: // ext32
		h = 6
	}
	if h == 0 || len(v) != h+8 || v[h-1] != 0 {
		return nil
	}
	return v[h:]
}
