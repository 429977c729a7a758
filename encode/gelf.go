package encode

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"unicode"

	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
)

// GELF (Graylog Extended Log Format 1.1, as Graylog's Kafka input reads
// it): a JSON object of version, host, short_message, full_message,
// timestamp (the event time, seconds to the millisecond) and level, then
// every other field of the record as an additional field: "_" and its key,
// a nested map's keys joined by "_", bytes other than letters, digits, '_',
// '.' and '-' replaced by '_'. A top-level field named as one Graylog keeps
// for itself gets a '_' after its name: Graylog would drop it (or, for
// level, fail to index a text level). GELF's additional values are strings
// or numbers: a boolean is its text, as are NaN and the infinities, an
// array its JSON text; null leaves its field out.

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
	// A field inside an array stays in the array's text as well.
	inArray := func(p ra.Path) bool { return slices.ContainsFunc(p, func(s ra.Segment) bool { return s.IsIndex }) }
	removed := append(slices.Clone(remove), slices.DeleteFunc([]ra.Path{g.ShortMessage, g.FullMessage, g.Host}, inArray)...)
	var err error
	if gelf.withoutLevel, err = newRemoval(removed); err != nil {
		return nil, err
	}
	if !inArray(g.Level) {
		removed = append(removed, g.Level)
	}
	gelf.withLevel, err = newRemoval(removed)
	return gelf, err
}

// graylogFields are the names Graylog keeps for itself: an additional
// field of one of them, "_" and the name, is dropped (or, for level,
// breaks the index of a message whose level is text). Those that start
// with "_" are its search index's own.
var graylogFields = []string{"id", "message", "source", "timestamp", "version", "host", "short_message", "full_message", "level",
	"_id", "_source", "_index", "_type", "_score", "_all", "_ttl"}

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
		var lower [len("informational")]byte
		if len(s) > len(lower) {
			return 0, false
		}
		for i, c := range s {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		n, ok := syslogLevels[string(lower[:len(s)])]
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

// blank reports a str or bin of only white space (javaSpace), or none,
// which Graylog refuses as a host or a short message, or an ext of no data,
// whose text is empty.
func blank(v []byte) bool {
	if msgp.NextType(v) == msgp.ExtensionType {
		_, data, _, err := readExt(v)
		return err == nil && len(data) == 0
	}
	if !isText(v) {
		return false
	}
	s, _, err := readKey(v)
	return err == nil && len(bytes.TrimLeftFunc(s, javaSpace)) == 0
}

// javaSpace is Java's Character.isWhitespace, with which Graylog tells a
// blank field: Unicode's space, line and paragraph separators but the
// non-breaking ones, and the controls \t to \r and \x1c to \x1f.
func javaSpace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1c && r <= 0x1f:
		return true
	case r == 0xa0, r == 0x2007, r == 0x202f:
		return false
	}
	return unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

// appendGELF writes the map at the start of body, a record of time ns, as
// GELF. A record without a short message (or with it null or blank) returns
// ErrNoValueField; one without a host (or with it null or blank) gets
// Hostname.
func (e *Encoder) appendGELF(dst, body []byte, ns int64, x *extras, d *dedup) ([]byte, []byte, error) {
	g := e.gelf
	short, ok := lookupSet(g.ShortMessage, body)
	if !ok || blank(short) {
		return dst, body, ErrNoValueField
	}
	var err error
	dst = append(dst, `{"version":"1.1","host":`...)
	if v, ok := lookupSet(g.Host, body); ok && !blank(v) {
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
	dst = appendMillis(append(dst, `,"timestamp":`...), ns)
	rm := g.withoutLevel
	if v, ok := lookupSet(g.Level, body); ok {
		if level, ok := syslogLevel(v); ok {
			dst, rm = append(append(dst, `,"level":`...), '0'+level), g.withLevel
		}
	}
	var name [maxKeyPath]byte
	if dst, body, err = appendGELFMap(dst, name[:0], body, 0, x, rm, d, len(dst)+e.o.MaxValue); err != nil {
		return dst, body, err
	}
	for i := 0; i < x.len(); i++ {
		if !x.seen[i] {
			dst = appendTopName(append(dst, ',', '"'), x.field(i).name)
			dst = x.appendValue(append(dst, '"', ':'), i)
		}
	}
	return append(dst, '}'), body, nil
}

// appendMillis writes ns as seconds with three decimals, rounded down to
// the millisecond.
func appendMillis(dst []byte, ns int64) []byte {
	ms, _ := divmod(ns, 1e6)
	if ms < 0 {
		dst, ms = append(dst, '-'), -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	return appendFraction(append(dst, '.'), uint64(ms%1000), 3)
}

// appendGELFText writes v as a JSON string: text as it is, anything else
// as its JSON text (ext, a string already, as it is).
func appendGELFText(dst, v []byte, d *dedup) ([]byte, error) {
	if isText(v) {
		s, _, err := readKey(v)
		return appendString(dst, s), err
	}
	start := len(dst)
	dst, _, err := appendJSON(dst, v, 0, d)
	if err != nil {
		return dst, err
	}
	return quoteJSON(dst, start), nil
}

// appendTopName writes the additional field name of a top-level key.
func appendTopName(dst, key []byte) []byte {
	start := len(dst)
	dst = appendGELFName(append(dst, '_'), key)
	if slices.Contains(graylogFields, string(dst[start+1:])) {
		dst = append(dst, '_')
	}
	return dst
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
// additional fields, named after prefix (which the record's own map, at
// depth 0, does not have: prefix is only room for its names).
func appendGELFMap(dst, prefix, b []byte, depth int, x *extras, rm *removal, d *dedup, limit int) ([]byte, []byte, error) {
	n, b, err := msgp.ReadMapHeaderBytes(b)
	for i := uint32(0); i < n && err == nil; i++ {
		var k []byte
		var sub *removal
		var drop bool
		if k, sub, drop, b, err = flatKey(b, depth, x, rm, nil, d); err != nil {
			break
		} else if drop {
			continue
		}
		name := prefix
		if depth == 0 {
			name = appendTopName(name[:0], k)
		} else {
			name = appendGELFName(append(name, '_'), k)
		}
		dst, b, err = appendGELFValue(dst, name, b, depth+1, sub, d, limit)
	}
	return dst, b, err
}

// appendGELFValue writes the value at the start of b as the additional
// field name, a map as the fields inside it; it fails when dst passed limit
// before a value.
func appendGELFValue(dst, name, b []byte, depth int, rm *removal, d *dedup, limit int) ([]byte, []byte, error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	if len(dst) > limit {
		return dst, b, errValueSize
	}
	t := msgp.NextType(b)
	switch t {
	case msgp.MapType:
		if len(name) > maxKeyPath {
			return dst, b, errKeyPath
		}
		return appendGELFMap(dst, name, b, depth, nil, rm, d, limit)
	case msgp.NilType:
		return dst, b[1:], nil
	}
	dst = append(append(append(dst, ',', '"'), name...), '"', ':')
	switch t {
	case msgp.ArrayType:
		start := len(dst)
		dst, rest, err := appendJSON(dst, b, depth, d)
		if err != nil {
			return dst, rest, err
		}
		return quoteJSON(dst, start), rest, nil
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
