package encode

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/tinylib/msgp/msgp"
)

// maxKeyPath bounds the key path of a nested map or array in logfmt. The
// path is repeated before every value inside it: without a bound, a long key
// over many small values would make the output grow with the square of the
// record.
const maxKeyPath = 256

var errKeyPath = fmt.Errorf("logfmt key path of a nested map or array is longer than %d bytes", maxKeyPath)

// appendLogfmt writes a map as logfmt: key=value pairs separated by spaces,
// nested maps and arrays flattened with dotted keys (kubernetes.pod_name,
// items.0), the extra fields last.
func appendLogfmt(dst, b []byte, x *extras, rm *removal) ([]byte, []byte, error) {
	var prefix [256]byte
	start := len(dst)
	dst, b, err := appendLogfmtMap(dst, start, prefix[:0], b, 0, x, rm)
	if err != nil {
		return dst, b, err
	}
	for i := 0; i < x.len(); i++ {
		if !x.seen[i] {
			dst = appendLogfmtPair(dst, start, x.field(i).name)
			dst = x.appendValue(dst, i)
		}
	}
	return dst, b, nil
}

// appendLogfmtPair starts a pair: a space unless it is the first, the key
// (spaces, '=' and quotes replaced by '_'), then '='.
func appendLogfmtPair(dst []byte, start int, key []byte) []byte {
	if len(dst) > start {
		dst = append(dst, ' ')
	}
	for _, c := range key {
		if c <= ' ' || c == '=' || c == '"' || c == 0x7f {
			c = '_'
		}
		dst = append(dst, c)
	}
	return append(dst, '=')
}

func appendLogfmtMap(dst []byte, start int, prefix, b []byte, depth int, x *extras, rm *removal) ([]byte, []byte, error) {
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return dst, b, err
	}
	for i := uint32(0); i < n; i++ {
		var k []byte
		var sub *removal
		if isStr(b) {
			var drop bool
			if k, sub, drop, b, err = stringKey(b, x, rm); err != nil {
				return dst, b, err
			} else if drop {
				continue
			}
		} else {
			var key []byte
			if key, b, err = appendKey(nil, b, depth); err != nil {
				return dst, b, err
			}
			k = key[1 : len(key)-1] // the key's JSON text, unquoted
		}
		if dst, b, err = appendLogfmtValueAt(dst, start, keyPath(prefix, k), b, depth+1, sub); err != nil {
			return dst, b, err
		}
	}
	return dst, b, nil
}

func keyPath(prefix, k []byte) []byte {
	if len(prefix) == 0 {
		return append(prefix, k...)
	}
	return append(append(prefix, '.'), k...)
}

// appendLogfmtValueAt writes the value at the start of b under key,
// flattening maps and arrays; the record's text starts at dst[start].
func appendLogfmtValueAt(dst []byte, start int, key, b []byte, depth int, rm *removal) ([]byte, []byte, error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	t := msgp.NextType(b)
	if (t == msgp.MapType || t == msgp.ArrayType) && len(key) > maxKeyPath {
		return dst, b, errKeyPath
	}
	switch t {
	case msgp.MapType:
		if n, rest, err := msgp.ReadMapHeaderBytes(b); err == nil && n == 0 {
			return append(appendLogfmtPair(dst, start, key), "{}"...), rest, nil // kept visible
		}
		return appendLogfmtMap(dst, start, key, b, depth, nil, rm)
	case msgp.ArrayType:
		n, rest, err := msgp.ReadArrayHeaderBytes(b)
		if err == nil && n == 0 {
			return append(appendLogfmtPair(dst, start, key), "[]"...), rest, nil
		}
		for i := uint32(0); err == nil && i < n; i++ {
			dst, rest, err = appendLogfmtValueAt(dst, start, strconv.AppendUint(append(key, '.'), uint64(i), 10), rest, depth+1, nil)
		}
		return dst, rest, err
	}
	dst = appendLogfmtPair(dst, start, key)
	switch t {
	case msgp.StrType:
		s, rest, err := msgp.ReadStringZC(b)
		return appendLogfmtValue(dst, s), rest, err
	case msgp.BinType:
		v, rest, err := msgp.ReadBytesZC(b)
		return appendLogfmtValue(dst, base64.StdEncoding.AppendEncode(nil, v)), rest, err // quoted when padded with '='
	case msgp.NilType:
		return dst, b[1:], nil
	}
	return appendJSON(dst, b, depth) // numbers, booleans, ext
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
