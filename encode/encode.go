// Package encode turns a record into a Kafka message value: JSON or msgpack,
// with the record's time injected under a configurable key.
package encode

import (
	"fmt"
	"strconv"

	"github.com/gokafka/gokafka/chunk"
	"github.com/tinylib/msgp/msgp"
)

// Encoder appends message values. It is safe for concurrent use.
type Encoder struct {
	msgpack  bool
	tsKey    string // "" leaves the time out
	tsFormat string
}

// New returns an Encoder for format "json" or "msgpack" that writes the
// record time under tsKey ("" for none) in tsFormat: double, epoch_ms,
// epoch_ns, iso8601 or iso8601_ns.
func New(format, tsKey, tsFormat string) (*Encoder, error) {
	e := &Encoder{msgpack: format == "msgpack", tsKey: tsKey, tsFormat: tsFormat}
	switch {
	case format != "json" && format != "msgpack":
		return nil, fmt.Errorf("unknown format %q", format)
	case tsKey == "":
	case tsFormat == "double", tsFormat == "epoch_ms", tsFormat == "epoch_ns":
	case tsFormat == "iso8601", tsFormat == "iso8601_ns":
	default:
		return nil, fmt.Errorf("unknown timestamp format %q", tsFormat)
	}
	return e, nil
}

// Append appends rec's message value to dst. On error dst is returned as it
// was given.
func (e *Encoder) Append(dst []byte, rec *chunk.Record) ([]byte, error) {
	if e.msgpack {
		return e.appendMsgpack(dst, rec)
	}
	start := len(dst)
	var rest []byte
	var err error
	if e.tsKey != "" && msgp.NextType(rec.Body) == msgp.MapType {
		var tsBuf [40]byte
		ts := tsField{key: e.tsKey, value: e.appendTimeJSON(tsBuf[:0], rec.Time)}
		dst, rest, err = appendMap(dst, rec.Body, 0, &ts)
	} else {
		dst, rest, err = appendJSON(dst, rec.Body, 0)
	}
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d bytes after the body", len(rest))
	}
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

func (e *Encoder) appendTimeJSON(dst []byte, ns int64) []byte {
	switch e.tsFormat {
	case "iso8601", "iso8601_ns":
		return append(e.appendTimeText(append(dst, '"'), ns), '"')
	}
	return e.appendTimeText(dst, ns)
}

// appendTimeText writes ns in the configured format, unquoted.
func (e *Encoder) appendTimeText(dst []byte, ns int64) []byte {
	switch e.tsFormat {
	case "double":
		sec, frac := divmod(ns, 1e9)
		dst = strconv.AppendInt(dst, sec, 10)
		return appendFraction(append(dst, '.'), uint64(frac), 9)
	case "epoch_ms":
		ms, _ := divmod(ns, 1e6)
		return strconv.AppendInt(dst, ms, 10)
	case "epoch_ns":
		return strconv.AppendInt(dst, ns, 10)
	case "iso8601":
		return AppendISO8601(dst, ns, 6)
	default:
		return AppendISO8601(dst, ns, 9)
	}
}

// appendMsgpack copies the body, adding the time field to a map body whose
// keys do not already hold it.
func (e *Encoder) appendMsgpack(dst []byte, rec *chunk.Record) ([]byte, error) {
	if e.tsKey == "" || msgp.NextType(rec.Body) != msgp.MapType {
		return append(dst, rec.Body...), nil
	}
	n, entries, err := msgp.ReadMapHeaderBytes(rec.Body)
	if err != nil {
		return dst, err
	}
	for b, i := entries, uint32(0); i < n; i++ {
		var k []byte
		if k, b, err = msgp.ReadMapKeyZC(b); err != nil {
			return dst, err
		}
		if string(k) == e.tsKey {
			return append(dst, rec.Body...), nil
		}
		if b, err = msgp.Skip(b); err != nil {
			return dst, err
		}
	}
	dst = msgp.AppendMapHeader(dst, n+1)
	dst = append(dst, entries...)
	dst = msgp.AppendString(dst, e.tsKey)
	switch e.tsFormat {
	case "double":
		return msgp.AppendFloat64(dst, float64(rec.Time)/1e9), nil
	case "epoch_ms":
		ms, _ := divmod(rec.Time, 1e6)
		return msgp.AppendInt64(dst, ms), nil
	case "epoch_ns":
		return msgp.AppendInt64(dst, rec.Time), nil
	}
	var buf [40]byte
	return msgp.AppendStringFromBytes(dst, e.appendTimeText(buf[:0], rec.Time)), nil
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
// given number of fraction digits, without time.Time's formatting cost.
func AppendISO8601(dst []byte, ns int64, digits int) []byte {
	secs, frac := divmod(ns, 1e9)
	days, sod := divmod(secs, 86400)
	y, m, d := civil(days)
	y = min(max(y, 0), 9999)
	dst = appendFraction(dst, uint64(y), 4)
	dst = appendFraction(append(dst, '-'), uint64(m), 2)
	dst = appendFraction(append(dst, '-'), uint64(d), 2)
	dst = appendFraction(append(dst, 'T'), uint64(sod/3600), 2)
	dst = appendFraction(append(dst, ':'), uint64(sod/60%60), 2)
	dst = appendFraction(append(dst, ':'), uint64(sod%60), 2)
	for i := digits; i < 9; i++ {
		frac /= 10
	}
	return append(appendFraction(append(dst, '.'), uint64(frac), digits), 'Z')
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
