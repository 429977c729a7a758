// Package ra implements Fluent Bit's record accessor syntax over msgpack
// bytes: $log, $kubernetes['labels']['app'], $items[0]. Lookups copy nothing.
package ra

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tinylib/msgp/msgp"
)

// Segment is one step of a path: a map key, or an array index when IsIndex.
type Segment struct {
	Key     string
	Index   int
	IsIndex bool
}

// Path is a parsed record accessor.
type Path []Segment

// Parse reads "$a['b'][0]"; a bare "a" (no $) names a top-level key. As in
// Fluent Bit, blanks between the parts do not count and a doubled quote in
// a quoted key stands for one; keys may also be in double quotes.
func Parse(s string) (Path, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "$") {
		if s == "" || strings.ContainsAny(s, "[]'\"") {
			return nil, fmt.Errorf("%q is not a record accessor (e.g. $log or $kubernetes['labels']['app'])", s)
		}
		return Path{{Key: s}}, nil
	}
	rest := s[1:]
	end := strings.IndexByte(rest, '[')
	if end < 0 {
		end = len(rest)
	}
	top := strings.TrimSpace(rest[:end])
	if top == "" || strings.ContainsAny(top, "]'\" \t") {
		return nil, fmt.Errorf("%q: missing or bad top-level key after $", s)
	}
	p := Path{{Key: top}}
	rest = rest[end:]
	for rest != "" {
		seg, after, ok := segment(rest)
		if !ok {
			return nil, fmt.Errorf("%q: expected ['key'] or [index] at %q", s, rest)
		}
		p, rest = append(p, seg), strings.TrimLeft(after, blanks)
	}
	return p, nil
}

const blanks = " \t"

// segment reads "['key']" or "[index]" at the start of s and returns what
// follows it.
func segment(s string) (seg Segment, rest string, ok bool) {
	if s[0] != '[' {
		return seg, s, false
	}
	s = strings.TrimLeft(s[1:], blanks)
	if s != "" && (s[0] == '\'' || s[0] == '"') {
		seg.Key, s, ok = quoted(s)
	} else {
		digits := s[:len(s)-len(strings.TrimLeft(s, "0123456789"))]
		i, err := strconv.ParseUint(digits, 10, 31) // at most MaxInt32
		seg, s, ok = Segment{Index: int(i), IsIndex: true}, s[len(digits):], err == nil
	}
	s = strings.TrimLeft(s, blanks)
	if !ok || s == "" || s[0] != ']' {
		return seg, s, false
	}
	return seg, s[1:], true
}

// quoted reads the key quoted by s[0] and returns what follows its closing
// quote; a doubled quote inside stands for one.
func quoted(s string) (key, rest string, ok bool) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] != q:
			b.WriteByte(s[i])
		case i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i++
		default:
			return b.String(), s[i+1:], true
		}
	}
	return "", s, false
}

// String writes p back in record accessor syntax.
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p {
		switch {
		case i == 0:
			b.WriteString("$" + s.Key)
		case s.IsIndex:
			fmt.Fprintf(&b, "[%d]", s.Index)
		default:
			fmt.Fprintf(&b, "['%s']", strings.ReplaceAll(s.Key, "'", "''"))
		}
	}
	return b.String()
}

// Lookup returns the msgpack value at p in body, a map, or false when any
// step is missing or of the wrong type. Malformed input is "missing".
func (p Path) Lookup(body []byte) ([]byte, bool) {
	v := body
	for _, s := range p {
		var ok bool
		if s.IsIndex {
			v, ok = index(v, s.Index)
		} else {
			v, ok = Field(v, s.Key)
		}
		if !ok {
			return nil, false
		}
	}
	return v, true
}

// Field returns the value of key in the msgpack map m: that of its last
// copy when the map repeats the key, as Fluent Bit's record accessor looks
// a key up from the map's end.
func Field(m []byte, key string) ([]byte, bool) {
	n, b, err := msgp.ReadMapHeaderBytes(m)
	if err != nil {
		return nil, false
	}
	var found []byte
	ok := false
	for i := uint32(0); i < n; i++ {
		k, v, isText, err := MapKey(b)
		if err != nil {
			return nil, false
		}
		if b, err = msgp.Skip(v); err != nil {
			return nil, false
		}
		if isText && string(k) == key {
			found, ok = v[:len(v)-len(b)], true
		}
	}
	return found, ok
}

// MapKey reads the key of a map entry at b and returns it with what follows
// (the entry's value). A str key and a bin key are alike, both text,
// isText true. A key of another type is skipped, isText false, as Fluent
// Bit skips such entries (Fluent Bit skips bin keys too; here they are
// text, as in topics, keys and headers).
func MapKey(b []byte) (key, rest []byte, isText bool, err error) {
	if key, rest, err = msgp.ReadMapKeyZC(b); err == nil {
		return key, rest, true, nil
	}
	rest, err = msgp.Skip(b)
	return nil, rest, false, err
}

func index(a []byte, i int) ([]byte, bool) {
	n, b, err := msgp.ReadArrayHeaderBytes(a)
	if err != nil || uint32(i) >= n {
		return nil, false
	}
	for ; i > 0; i-- {
		if b, err = msgp.Skip(b); err != nil {
			return nil, false
		}
	}
	end, err := msgp.Skip(b)
	if err != nil {
		return nil, false
	}
	return b[:len(b)-len(end)], true
}

// AppendText appends a scalar msgpack value as text: strings and bin as
// their bytes, numbers in decimal, booleans as true/false. Maps, arrays,
// nil and ext report false.
func AppendText(dst, v []byte) ([]byte, bool) {
	switch msgp.NextType(v) {
	case msgp.StrType:
		s, _, err := msgp.ReadStringZC(v)
		return append(dst, s...), err == nil
	case msgp.BinType:
		s, _, err := msgp.ReadBytesZC(v)
		return append(dst, s...), err == nil
	case msgp.IntType:
		i, _, err := msgp.ReadInt64Bytes(v)
		return strconv.AppendInt(dst, i, 10), err == nil
	case msgp.UintType:
		u, _, err := msgp.ReadUint64Bytes(v)
		return strconv.AppendUint(dst, u, 10), err == nil
	case msgp.Float32Type:
		f, _, err := msgp.ReadFloat32Bytes(v)
		return AppendFloat(dst, float64(f), 32), err == nil
	case msgp.Float64Type:
		f, _, err := msgp.ReadFloat64Bytes(v)
		return AppendFloat(dst, f, 64), err == nil
	case msgp.BoolType:
		b, _, err := msgp.ReadBoolBytes(v)
		return strconv.AppendBool(dst, b), err == nil
	}
	return dst, false
}

// AppendFloat appends f, of bits precision, in the fewest digits that read
// back as f: plain from 1e-4 to 1e16, where C's %.16g (Fluent Bit's) is
// plain too, with an exponent outside.
func AppendFloat(dst []byte, f float64, bits int) []byte {
	if abs := math.Abs(f); abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		return strconv.AppendFloat(dst, f, 'e', -1, bits)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, bits)
}
