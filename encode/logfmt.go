package encode

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"
)

// maxKeyPath bounds the key path of a nested map or array in logfmt, and of
// a nested map in GELF. The path is repeated before every value inside it:
// without a bound, a long key over many small values would make the output
// grow with the square of the record.
const maxKeyPath = 256

var errKeyPath = fmt.Errorf("key path of a nested map or array is longer than %d bytes", maxKeyPath)

// flatValue bounds what logfmt writes of one record (GELF has a limit of
// its own): each nested value repeats its key path, so a record of many
// small values under a long path would grow hundreds of times.
type flatValue struct {
	start int // where the record's text starts in dst
	limit int // the length of dst it may not pass
}

// errValueSize is returned for a record whose value outgrows
// Options.MaxValue.
var errValueSize = errors.New("its value would be longer than logfmt and GELF may write (16 times rdkafka.message.max.bytes; in batch mode, Buffer_Memory up to 64 MiB)")

// appendLogfmt writes a map as logfmt: key=value pairs separated by spaces,
// nested maps and arrays flattened with dotted keys (kubernetes.pod_name,
// items.0), the extra fields last. A map that repeats a key is written as
// appendMap does.
func appendLogfmt(dst, b []byte, x *extras, rm *removal, d *dedup, maxValue int) ([]byte, []byte, error) {
	var prefix [256]byte
	v := flatValue{len(dst), len(dst) + maxValue}
	dst, b, err := appendLogfmtMap(dst, v, prefix[:0], b, 0, x, rm, d)
	if err != nil {
		return dst, b, err
	}
	for i := 0; i < x.len(); i++ {
		if !x.seen[i] {
			dst = appendLogfmtPair(dst, v.start, x.field(i).name)
			dst = x.appendValue(dst, i)
		}
	}
	return dst, b, nil
}

// appendLogfmtPair starts a pair: a space unless it is the first, the key
// (spaces, '=' and quotes replaced by '_', invalid UTF-8 by U+FFFD), then
// '='.
func appendLogfmtPair(dst []byte, start int, key []byte) []byte {
	if len(dst) > start {
		dst = append(dst, ' ')
	}
	for len(key) > 0 {
		c := key[0]
		if c >= utf8.RuneSelf {
			n := runeLen(key)
			if n == 0 {
				dst, key = append(dst, "\ufffd"...), key[1:]
			} else {
				dst, key = append(dst, key[:n]...), key[n:]
			}
			continue
		}
		if c <= ' ' || c == '=' || c == '"' || c == 0x7f {
			c = '_'
		}
		dst, key = append(dst, c), key[1:]
	}
	return append(dst, '=')
}

// appendLogfmtMap writes the entries of a map at depth, their keys after
// prefix and a dot (the top-level map's, at depth 0, alone). A key the map
// repeats is written as appendMap writes it.
func appendLogfmtMap(dst []byte, v flatValue, prefix, b []byte, depth int, x *extras, rm *removal, d *dedup) ([]byte, []byte, error) {
	var f filter
	n, b, fp, err := openMap(b, d, &f)
	if err != nil {
		return dst, b, err
	}
	for i := uint32(0); i < n; i++ {
		sep, key := len(dst), -1 // key: the offset of k in f.entries, if text
		text := isText(b)
		var k []byte
		var sub *removal
		var drop bool
		if k, sub, drop, b, err = flatKey(b, depth, x, rm, fp, d); err != nil {
			break
		} else if drop {
			continue
		} else if text {
			key = len(f.entries) - len(b) - len(k)
		}
		path := prefix
		if depth > 0 {
			path = append(path, '.')
		}
		path = append(path, k...)
		if dst, b, err = appendLogfmtValueAt(dst, v, path, b, depth+1, sub, d); err != nil {
			break
		}
		if d != nil {
			from := sep
			if len(dst) > sep && sep > v.start {
				from++ // after the space
			}
			d.add(key, len(k), sep, from, len(dst))
		}
	}
	f.release()
	if err != nil {
		return dst, b, err
	}
	if d != nil {
		dst = d.close(dst, v.start, ' ')
	}
	return dst, b, nil
}

// flatKey reads the map key at the start of b for a format that flattens
// maps: a text key as textKey does, any other as its JSON text, unquoted.
func flatKey(b []byte, depth int, x *extras, rm *removal, f *filter, d *dedup) (k []byte, sub *removal, drop bool, rest []byte, err error) {
	if isText(b) {
		return textKey(b, x, rm, f)
	}
	text, rest, err := appendKey(nil, b, depth, d)
	if err != nil {
		return nil, nil, false, rest, err
	}
	return text[1 : len(text)-1], nil, false, rest, nil
}

// appendLogfmtValueAt writes the value at the start of b under key,
// flattening maps and arrays, within v. A value without a key, that of a
// top-level key "", is left out: logfmt has no way to write it.
func appendLogfmtValueAt(dst []byte, v flatValue, key, b []byte, depth int, rm *removal, d *dedup) ([]byte, []byte, error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	if len(dst) > v.limit {
		return dst, b, errValueSize
	}
	t := msgp.NextType(b)
	if (t == msgp.MapType || t == msgp.ArrayType) && len(key) > maxKeyPath {
		return dst, b, errKeyPath
	}
	switch t {
	case msgp.MapType:
		before := len(dst)
		dst, rest, err := appendLogfmtMap(dst, v, key, b, depth, nil, rm, d)
		if err == nil && len(dst) == before && len(key) > 0 { // empty, or emptied by Remove_Keys: kept visible
			dst = append(appendLogfmtPair(dst, v.start, key), "{}"...)
		}
		return dst, rest, err
	case msgp.ArrayType:
		n, rest, err := msgp.ReadArrayHeaderBytes(b)
		if err == nil && n == 0 && len(key) > 0 {
			return append(appendLogfmtPair(dst, v.start, key), "[]"...), rest, nil
		}
		for i := uint32(0); err == nil && i < n; i++ {
			dst, rest, err = appendLogfmtValueAt(dst, v, strconv.AppendUint(append(key, '.'), uint64(i), 10), rest, depth+1, nil, d)
		}
		return dst, rest, err
	}
	if len(key) == 0 {
		rest, err := msgp.Skip(b)
		return dst, rest, err
	}
	dst = appendLogfmtPair(dst, v.start, key)
	switch t {
	case msgp.StrType, msgp.BinType: // bin as text, as in JSON
		s, rest, err := readKey(b)
		return appendLogfmtValue(dst, s), rest, err
	case msgp.NilType:
		return dst, b[1:], nil
	}
	return appendJSON(dst, b, depth, d) // numbers, booleans, ext
}

// appendLogfmtValue writes s bare when it is safe, else quoted as a JSON
// string (which escapes quotes, backslashes and control characters).
func appendLogfmtValue(dst, s []byte) []byte {
	bare := len(s) > 0
	for _, c := range s {
		if c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7f {
			bare = false
			break
		}
	}
	if bare {
		return append(dst, s...)
	}
	return appendString(dst, s)
}
