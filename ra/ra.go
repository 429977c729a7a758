// Package ra implements Fluent Bit's record accessor syntax over msgpack
// bytes: $log, $kubernetes['labels']['app'], $items[0]. Lookups copy nothing.
package ra

import (
	"fmt"
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

// Parse reads "$a['b'][0]"; a bare "a" (no $) names a top-level key.
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
	if end == 0 || strings.ContainsAny(rest[:end], "]'\"") {
		return nil, fmt.Errorf("%q: missing or bad top-level key after $", s)
	}
	p := Path{{Key: rest[:end]}}
	rest = rest[end:]
	for rest != "" {
		closing := strings.IndexByte(rest, ']')
		if rest[0] != '[' || closing < 0 {
			return nil, fmt.Errorf("%q: expected ['key'] or [index] at %q", s, rest)
		}
		inner := rest[1:closing]
		rest = rest[closing+1:]
		if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0] {
			p = append(p, Segment{Key: inner[1 : len(inner)-1]})
			continue
		}
		i, err := strconv.Atoi(inner)
		if err != nil || i < 0 {
			return nil, fmt.Errorf("%q: [%s] is neither a quoted key nor an index", s, inner)
		}
		p = append(p, Segment{Index: i, IsIndex: true})
	}
	return p, nil
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
			fmt.Fprintf(&b, "['%s']", s.Key)
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
		return strconv.AppendFloat(dst, float64(f), 'g', -1, 32), err == nil
	case msgp.Float64Type:
		f, _, err := msgp.ReadFloat64Bytes(v)
		return strconv.AppendFloat(dst, f, 'g', -1, 64), err == nil
	case msgp.BoolType:
		b, _, err := msgp.ReadBoolBytes(v)
		return strconv.AppendBool(dst, b), err == nil
	}
	return dst, false
}
