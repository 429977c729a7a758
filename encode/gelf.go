package encode

import (
	"bytes"
	"math"
	"strconv"

	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
)

// GELF (Graylog Extended Log Format 1.1, as Graylog's Kafka input reads
// it): a JSON object of version, host, short_message, full_message,
// timestamp (the event time, seconds to the millisecond) and level, then
// every other field of the record as an additional field: "_" and its key,
// a nested map's keys joined by "_", characters other than letters,
// digits, '_', '.' and '-' replaced by '_'. GELF's additional values are
// strings or numbers: a boolean is its text, as are NaN and the infinities,
// an array its JSON text; null leaves its field out.

// GELF names the record fields GELF's own fields are taken from.
type GELF struct {
	ShortMessage, FullMessage, Host, Level ra.Path
	// Hostname is the host of a record without a Host field: GELF requires one.
	Hostname string
}

// gelfEncoder holds what Options.GELF settles.
type gelfEncoder struct {
	GELF
	hostname []byte // Hostname as a JSON string
	// The removals of the additional fields: the GELF fields, and
	// Remove_Keys; withLevel for a record whose level is a syslog level,
	// else it stays an additional field.
	withLevel, withoutLevel *removal
}

func newGELF(g GELF, remove []ra.Path) (*gelfEncoder, error) {
	gelf := &gelfEncoder{GELF: g, hostname: appendString(nil, []byte(g.Hostname))}
	var err error
	own := append(append([]ra.Path(nil), remove...), g.ShortMessage, g.FullMessage, g.Host)
	if gelf.withoutLevel, err = newRemoval(own); err != nil {
		return nil, err
	}
	gelf.withLevel, err = newRemoval(append(own, g.Level))
	return gelf, err
}

// syslogLevels are the severities of GELF's level, by their syslog names
// (RFC 5424 and syslog.conf's, which a level field of a log holds more often
// than its number).
var syslogLevels = map[string]byte{
	"emerg": 0, "panic": 0, "emergency": 0,
	"alert": 1,
	"crit":  2, "critical": 2,
	"err": 3, "error": 3,
	"warning": 4, "warn": 4,
	"notice": 5,
	"info":   6, "informational": 6,
	"debug": 7,
}

// syslogLevel reads a level field: an integer 0 to 7, or a string of one
// digit or a syslog name, in any case.
func syslogLevel(v []byte) (byte, bool) {
	switch msgp.NextType(v) {
	case msgp.IntType, msgp.UintType:
		n, _, err := msgp.ReadInt64Bytes(v)
		return byte(n), err == nil && n >= 0 && n <= 7
	case msgp.StrType, msgp.BinType:
		s, _, err := readKey(v)
		if err != nil {
			return 0, false
		}
		if len(s) == 1 && s[0] >= '0' && s[0] <= '7' {
			return s[0] - '0', true
		}
		if len(s) > len("informational") {
			return 0, false
		}
		n, ok := syslogLevels[string(bytes.ToLower(s))]
		return n, ok
	}
	return 0, false
}

// lookupSet returns the field at p in body unless it is missing or null; an
// empty p names no field.
func lookupSet(p ra.Path, body []byte) ([]byte, bool) {
	if len(p) == 0 {
		return nil, false
	}
	v, ok := p.Lookup(body)
	return v, ok && msgp.NextType(v) != msgp.NilType
}

// emptyText reports a str or bin of no bytes.
func emptyText(v []byte) bool {
	if !isText(v) {
		return false
	}
	s, _, err := readKey(v)
	return err == nil && len(s) == 0
}

// appendGELF writes the map at the start of body, a record of time ns, as
// GELF. A record without a short message (or with it null or "") returns
// ErrNoValueField.
func (e *Encoder) appendGELF(dst, body []byte, ns int64, x *extras, d *dedup) ([]byte, []byte, error) {
	g := e.gelf
	short, ok := lookupSet(g.ShortMessage, body)
	if !ok || emptyText(short) {
		return dst, body, ErrNoValueField
	}
	var err error
	dst = append(dst, `{"version":"1.1","host":`...)
	if v, ok := lookupSet(g.Host, body); ok {
		dst, err = appendGELFText(dst, v, d)
	} else {
		dst = append(dst, g.hostname...)
	}
	if err == nil {
		dst, err = appendGELFText(append(dst, `,"short_message":`...), short, d)
	}
	if v, ok := lookupSet(g.FullMessage, body); ok && err == nil {
		dst, err = appendGELFText(append(dst, `,"full_message":`...), v, d)
	}
	if err != nil {
		return dst, body, err
	}
	dst = strconv.AppendFloat(append(dst, `,"timestamp":`...), float64(ns/1e6)/1e3, 'f', 3, 64)
	rm := g.withoutLevel
	if v, ok := lookupSet(g.Level, body); ok {
		if level, ok := syslogLevel(v); ok {
			dst, rm = append(append(dst, `,"level":`...), '0'+level), g.withLevel
		}
	}
	var name [maxKeyPath]byte
	if dst, body, err = appendGELFMap(dst, append(name[:0], '_'), body, 0, x, rm, d); err != nil {
		return dst, body, err
	}
	for i := 0; i < x.len(); i++ {
		if !x.seen[i] {
			dst = appendGELFName(append(dst, ',', '"', '_'), x.field(i).name)
			dst = x.appendValue(append(dst, '"', ':'), i)
		}
	}
	return append(dst, '}'), body, nil
}

// appendGELFText writes v as a JSON string: text as it is, anything else
// as its JSON text.
func appendGELFText(dst, v []byte, d *dedup) ([]byte, error) {
	if isText(v) {
		s, _, err := readKey(v)
		return appendString(dst, s), err
	}
	text, _, err := appendJSON(nil, v, 0, d)
	return appendString(dst, text), err
}

// appendGELFName writes a key into an additional field's name, its
// characters other than GELF's (letters, digits, '_', '.', '-') as '_'.
func appendGELFName(dst, key []byte) []byte {
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendGELFMap writes the entries of the map at the start of b as
// additional fields, named after prefix ("_" for the record's own map, at
// depth 0).
func appendGELFMap(dst, prefix, b []byte, depth int, x *extras, rm *removal, d *dedup) ([]byte, []byte, error) {
	n, b, err := msgp.ReadMapHeaderBytes(b)
	for i := uint32(0); i < n && err == nil; i++ {
		var k []byte
		var sub *removal
		if isText(b) {
			var drop bool
			if k, sub, drop, b, err = textKey(b, x, rm, nil); err != nil || drop {
				continue
			}
		} else {
			var text []byte
			if text, b, err = appendKey(nil, b, depth, d); err != nil {
				break
			}
			k = text[1 : len(text)-1] // the key's JSON text, unquoted
		}
		name := prefix
		if depth > 0 {
			name = append(name, '_')
		}
		name = appendGELFName(name, k)
		if depth == 0 && string(name) == "_id" { // GELF reserves it
			name = append(name, '_')
		}
		dst, b, err = appendGELFValue(dst, name, b, depth+1, sub, d)
	}
	return dst, b, err
}

// appendGELFValue writes the value at the start of b as the additional
// field name, a map as the fields inside it.
func appendGELFValue(dst, name, b []byte, depth int, rm *removal, d *dedup) ([]byte, []byte, error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	t := msgp.NextType(b)
	switch t {
	case msgp.MapType:
		if len(name) > maxKeyPath {
			return dst, b, errKeyPath
		}
		return appendGELFMap(dst, name, b, depth, nil, rm, d)
	case msgp.NilType:
		return dst, b[1:], nil
	}
	dst = append(append(append(dst, ',', '"'), name...), '"', ':')
	switch t {
	case msgp.ArrayType:
		text, rest, err := appendJSON(nil, b, depth, d)
		return appendString(dst, text), rest, err
	case msgp.BoolType:
		v, rest, err := msgp.ReadBoolBytes(b)
		return strconv.AppendQuote(dst, strconv.FormatBool(v)), rest, err
	case msgp.StrType, msgp.BinType:
		s, rest, err := readKey(b)
		return appendString(dst, s), rest, err
	case msgp.Float32Type, msgp.Float64Type: // JSON has no NaN or Infinity: as text
		if f, rest, err := msgp.ReadFloat64Bytes(b); err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return strconv.AppendQuote(dst, strconv.FormatFloat(f, 'g', -1, 64)), rest, nil
		}
	}
	return appendJSON(dst, b, depth, d) // numbers, ext
}
