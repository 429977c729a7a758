// Package encode turns a record into a Kafka message value: JSON, msgpack,
// logfmt, GELF, OTLP, Avro, or one field's raw bytes; with the record's time and the
// Fluent Bit tag added under configurable keys and chosen keys removed.
package encode

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Options select what Append writes.
type Options struct {
	Format          string // json, msgpack, raw, logfmt, gelf, otlp_proto, otlp_json or avro
	TimestampKey    string // "" leaves the time out; not used in gelf or otlp_*
	TimestampFormat string // double, epoch, epoch_ms, epoch_ns, iso8601, iso8601_ns or java_sql_timestamp
	TagKey          string // "" leaves the tag out
	RawKey          ra.Path
	GELF            GELF
	OTLP            OTLP
	Avro            Avro
	Remove          []ra.Path
	// MaxValue bounds a logfmt or GELF record, in bytes (New: 1 GiB if 0):
	// one whose output passed it before its next value fails. These formats
	// repeat a nested value's key path before each value inside it, and so
	// can outgrow a record many times.
	MaxValue int
}

// ErrNoValueField is returned for a record without the field its value is
// made of, or with it nil: Raw_Log_Key in raw format, the short message
// (or with it blank) in gelf.
var ErrNoValueField = errors.New("record has no value field")

// Encoder appends message values. It is safe for concurrent use.
type Encoder struct {
	o      Options
	remove *removal
	fields []field // added to each map: the time, the tag
	gelf   *gelfEncoder
	otlp   plog.Marshaler // otlp_proto or otlp_json
	avro   *avroWriter
	// jsonISO is the number of fraction digits of an ISO 8601 time in
	// JSON, the common case, settled in New; 0 for other formats.
	jsonISO int
}

// New checks o and returns its Encoder.
func New(o Options) (*Encoder, error) {
	if o.MaxValue <= 0 {
		o.MaxValue = 1 << 30
	}
	switch o.Format {
	case "json", "msgpack", "logfmt":
	case "raw":
		if len(o.RawKey) == 0 {
			return nil, errors.New("raw format needs Raw_Log_Key")
		}
	case "gelf":
		if len(o.GELF.ShortMessage) == 0 {
			return nil, errors.New("gelf format needs its short message field")
		}
		o.TimestampKey = "" // GELF's timestamp is its own
	case "otlp_proto", "otlp_json":
		o.TimestampKey = "" // OTLP's too
	case "avro":
	default:
		return nil, fmt.Errorf("unknown format %q", o.Format)
	}
	switch o.TimestampFormat {
	case "double", "epoch", "epoch_ms", "epoch_ns", "iso8601", "iso8601_ns", "java_sql_timestamp":
	default:
		if o.TimestampKey != "" {
			return nil, fmt.Errorf("unknown timestamp format %q", o.TimestampFormat)
		}
	}
	rm, err := newRemoval(o.Remove)
	if err != nil {
		return nil, err
	}
	e := &Encoder{o: o, remove: rm}
	if o.Format == "avro" {
		if e.avro, err = newAvroWriter(o); err != nil {
			return nil, err
		}
	}
	if o.Format == "gelf" {
		if e.gelf, err = newGELF(o.GELF, o.Remove); err != nil {
			return nil, err
		}
	}
	switch o.Format {
	case "otlp_proto":
		e.otlp = &plog.ProtoMarshaler{}
	case "otlp_json":
		e.otlp = &plog.JSONMarshaler{}
	}
	if e.otlp != nil { // a body field that Remove_Keys removes is none
		e.o.OTLP.BodyKeys = slices.DeleteFunc(slices.Clone(o.OTLP.BodyKeys), func(k string) bool {
			_, drop := rm.child([]byte(k))
			return drop
		})
	}
	if o.Format == "json" && o.TimestampFormat == "iso8601" {
		e.jsonISO = 6
	} else if o.Format == "json" && o.TimestampFormat == "iso8601_ns" {
		e.jsonISO = 9
	}
	if o.TimestampKey != "" {
		e.fields = append(e.fields, newField(o.TimestampKey, false))
	}
	if o.TagKey != "" {
		e.fields = append(e.fields, newField(o.TagKey, true))
	}
	return e, nil
}

// Append appends rec's message value to dst. On error dst is returned as it
// was given.
func (e *Encoder) Append(dst []byte, rec *chunk.Record, tag string) ([]byte, error) {
	if e.o.Format == "raw" {
		return e.appendRaw(dst, rec.Body)
	}
	out, rest, err := e.appendBody(dst, rec, tag)
	return whole(out, len(dst), rest, err)
}

// AppendOpen is Append for a record from chunk.Reader.NextOpen, whose Body
// runs on after the body: it returns the body's length as well, for
// chunk.Reader.EndBody. On error dst is returned as it was given, and the
// caller is to call chunk.Reader.SkipBody, which tells a malformed chunk
// from a record this encoder rejects.
func (e *Encoder) AppendOpen(dst []byte, rec *chunk.Record, tag string) ([]byte, int, error) {
	if e.o.Format == "raw" { // the raw value is looked up in the body delimited
		rest, err := msgp.Skip(rec.Body)
		if err != nil {
			return dst, 0, err
		}
		n := len(rec.Body) - len(rest)
		out, err := e.appendRaw(dst, rec.Body[:n])
		return out, n, err
	}
	out, rest, err := e.appendBody(dst, rec, tag)
	if err != nil {
		return dst, 0, err
	}
	return out, len(rec.Body) - len(rest), nil
}

// appendRaw writes the Raw_Log_Key field of body.
func (e *Encoder) appendRaw(dst, body []byte) ([]byte, error) {
	v, ok := e.o.RawKey.Lookup(body)
	if !ok || msgp.NextType(v) == msgp.NilType { // a nil field is a missing one, as for keys and headers
		return dst, ErrNoValueField
	}
	if out, ok := ra.AppendText(dst, v); ok {
		return out, nil
	}
	return AppendJSON(dst, v)
}

// appendBody writes the first value of rec.Body in a format other than
// raw and returns what follows it. On error out is dst with perhaps more
// after it.
func (e *Encoder) appendBody(dst []byte, rec *chunk.Record, tag string) (out, rest []byte, err error) {
	if e.otlp != nil {
		return e.appendOTLP(dst, rec, tag)
	}
	if e.avro != nil {
		return e.avro.appendAvro(dst, rec.Body, &extras{e: e, time: rec.Time, tag: tag}, e.remove)
	}
	return withDedup(func(d *dedup) ([]byte, []byte, error) { return e.appendValue(dst, rec, tag, d) })
}

// appendValue is appendBody, with d for a record that repeats a map key
// (see dedup.go).
func (e *Encoder) appendValue(dst []byte, rec *chunk.Record, tag string, d *dedup) (out, rest []byte, err error) {
	if msgp.NextType(rec.Body) != msgp.MapType {
		switch e.o.Format {
		case "msgpack":
			rest, err := msgp.Skip(rec.Body)
			return append(dst, rec.Body[:len(rec.Body)-len(rest)]...), rest, err
		case "logfmt", "gelf":
			return dst, rec.Body, fmt.Errorf("%s needs a map body", e.o.Format)
		}
		return appendJSON(dst, rec.Body, 0, d)
	}
	x := extras{e: e, time: rec.Time, tag: tag}
	switch e.o.Format {
	case "json":
		return appendMap(dst, rec.Body, 0, &x, e.remove, d)
	case "msgpack":
		return appendMsgpackMap(dst, rec.Body, 0, &x, e.remove)
	case "gelf":
		return e.appendGELF(dst, rec.Body, rec.Time, &x, d)
	}
	return appendLogfmt(dst, rec.Body, &x, e.remove, d, e.o.MaxValue)
}

// whole returns dst if the encoding used up the record's body, else dst cut
// back to start with the error.
func whole(dst []byte, start int, rest []byte, err error) ([]byte, error) {
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d bytes after the body", len(rest))
	}
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// appendText writes a string in the output format.
func (e *Encoder) appendText(dst []byte, s string) []byte {
	if e.o.Format == "msgpack" {
		return msgp.AppendString(dst, s)
	}
	// Copied to the stack, a string is not copied to the heap on its way
	// to a []byte parameter.
	var buf [256]byte
	b := buf[:copy(buf[:], s)]
	if len(s) > len(buf) {
		b = []byte(s)
	}
	if e.o.Format == "logfmt" {
		return appendLogfmtValue(dst, b)
	}
	return appendString(dst, b)
}

// appendTime writes ns in the configured timestamp format and the output
// format.
func (e *Encoder) appendTime(dst []byte, ns int64) []byte {
	if e.jsonISO != 0 {
		return append(AppendISO8601(append(dst, '"'), ns, e.jsonISO), '"')
	}
	switch f := e.o.TimestampFormat; e.o.Format {
	case "msgpack":
		switch f {
		case "double":
			return msgp.AppendFloat64(dst, float64(ns)/1e9)
		case "epoch", "epoch_ms", "epoch_ns":
			return msgp.AppendInt64(dst, epoch(ns, f))
		}
		var buf [40]byte
		return msgp.AppendStringFromBytes(dst, appendTimeText(buf[:0], ns, f))
	case "json":
		if f == "java_sql_timestamp" {
			return append(appendTimeText(append(dst, '"'), ns, f), '"')
		}
	case "logfmt":
		if f == "java_sql_timestamp" { // a space inside
			var buf [40]byte
			return appendString(dst, appendTimeText(buf[:0], ns, f))
		}
	}
	return appendTimeText(dst, ns, e.o.TimestampFormat)
}

// appendTimeText writes ns in format, unquoted.
func appendTimeText(dst []byte, ns int64, format string) []byte {
	switch format {
	case "double":
		// Sign and magnitude, as a float prints: -0.5 s is -0.500000000.
		u := uint64(ns)
		if ns < 0 {
			dst, u = append(dst, '-'), -u
		}
		dst = strconv.AppendUint(dst, u/1e9, 10)
		return appendFraction(append(dst, '.'), u%1e9, 9)
	case "epoch", "epoch_ms", "epoch_ns":
		return strconv.AppendInt(dst, epoch(ns, format), 10)
	case "iso8601":
		return AppendISO8601(dst, ns, 6)
	case "java_sql_timestamp":
		// Fluent Bit's "%Y-%m-%d %H:%M:%S" and ".%06" microseconds:
		// 2006-01-02 15:04:05.000000, UTC.
		n := len(dst)
		dst = AppendISO8601(dst, ns, 6)
		dst[n+len(dateLayout)-1] = ' '
		return dst[:len(dst)-1] // no Z
	default:
		return AppendISO8601(dst, ns, 9)
	}
}

// epoch returns ns in whole seconds, milliseconds or nanoseconds since
// 1970 for format epoch, epoch_ms or epoch_ns, rounded down.
func epoch(ns int64, format string) int64 {
	switch format {
	case "epoch":
		s, _ := divmod(ns, 1e9)
		return s
	case "epoch_ms":
		ms, _ := divmod(ns, 1e6)
		return ms
	}
	return ns
}

// divmod divides rounding toward negative infinity, so times before 1970
// keep a positive fraction.
func divmod(n, d int64) (q, r int64) {
	q, r = n/d, n%d
	if r < 0 {
		q, r = q-1, r+d
	}
	return q, r
}

// appendFraction writes v zero-padded to digits places.
func appendFraction(dst []byte, v uint64, digits int) []byte {
	var buf [20]byte
	for i := digits - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:digits]...)
}

// AppendISO8601 writes ns as UTC 2006-01-02T15:04:05.999999999Z with the
// given number of fraction digits (6 or 9), without time.Time's cost: the
// date is formatted once a day, the rest two digits at a time, by index
// into dst grown once. All nine fraction digits are written; the Z goes
// after the first digits of them.
func AppendISO8601(dst []byte, ns int64, digits int) []byte {
	secs, frac := divmod(ns, 1e9)
	day, sod := divmod(secs, 86400)
	n := len(dst)
	dst = slices.Grow(dst, len(iso8601Layout))
	t := (*[len(iso8601Layout)]byte)(dst[n : n+len(iso8601Layout)])
	*(*[len(dateLayout)]byte)(t[:]) = *datePrefix(day)
	h, m, s := 2*(sod/3600), 2*(sod/60%60), 2*(sod%60)
	t[11], t[12], t[13] = pairs[h], pairs[h+1], ':'
	t[14], t[15], t[16] = pairs[m], pairs[m+1], ':'
	t[17], t[18], t[19] = pairs[s], pairs[s+1], '.'
	// The fraction as 1, 4 and 4 digits, each part found apart from the
	// others.
	f := uint32(frac)
	hi, mid, lo := f/1e8, f/1e4%1e4, f%1e4
	t[20] = byte('0' + hi)
	t[21], t[22] = pairs[2*(mid/100)], pairs[2*(mid/100)+1]
	t[23], t[24] = pairs[2*(mid%100)], pairs[2*(mid%100)+1]
	t[25], t[26] = pairs[2*(lo/100)], pairs[2*(lo/100)+1]
	t[27], t[28] = pairs[2*(lo%100)], pairs[2*(lo%100)+1]
	end := 21 + digits
	t[end-1] = 'Z'
	return dst[:n+end]
}

// The layouts AppendISO8601 writes.
const (
	iso8601Layout = "2006-01-02T15:04:05.999999999Z"
	dateLayout    = "2006-01-02T"
)

// pairs holds "00" to "99".
const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// dayText is a day's "2006-01-02T".
type dayText struct {
	day  int64
	text [len(dateLayout)]byte
}

var lastDay atomic.Pointer[dayText]

// datePrefix returns "YYYY-MM-DDT" for a day since 1970-01-01, from a
// one-day cache: records of one chunk share their day.
func datePrefix(day int64) *[len(dateLayout)]byte {
	if d := lastDay.Load(); d != nil && d.day == day {
		return &d.text
	}
	y, m, dd := civil(day)
	y = min(max(y, 0), 9999)
	text := appendFraction(nil, uint64(y), 4)
	text = appendFraction(append(text, '-'), uint64(m), 2)
	text = appendFraction(append(text, '-'), uint64(dd), 2)
	text = append(text, 'T')
	d := &dayText{day: day, text: [len(dateLayout)]byte(text)}
	lastDay.Store(d)
	return &d.text
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (y, m, d int64) {
	days += 719468
	era, _ := divmod(days, 146097)
	doe := days - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
