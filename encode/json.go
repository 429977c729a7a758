package encode

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
)

// maxDepth bounds nesting so a hostile record cannot exhaust the stack.
const maxDepth = 256

var errDepth = fmt.Errorf("nested deeper than %d", maxDepth)

// maxKeyText bounds the JSON text of a map key that is not a string. Such a
// key is written as a string of its JSON text, which escapes the quotes of
// any string key inside it: without a bound, keys nested in keys would
// double the output at every level.
const maxKeyText = 4096

var errKeyText = fmt.Errorf("a map key that is not a string is longer than %d bytes as JSON", maxKeyText)

// appendJSON appends the JSON form of the msgpack value at the start of b and
// returns the bytes after it. With d nil, a map that repeats a key returns
// errDup.
func appendJSON(dst, b []byte, depth int, d *dedup) ([]byte, []byte, error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	if len(b) == 0 {
		return dst, b, msgp.ErrShortBytes
	}
	var err error
	switch lead := b[0]; {
	case lead <= 0x7f: // positive fixint
		return strconv.AppendUint(dst, uint64(lead), 10), b[1:], nil
	case lead >= 0xe0: // negative fixint
		return strconv.AppendInt(dst, int64(int8(lead)), 10), b[1:], nil
	case lead >= 0xa0 && lead <= 0xbf, lead == 0xd9, lead == 0xda, lead == 0xdb: // str
		var s []byte
		if s, b, err = readString(b); err != nil {
			return dst, b, err
		}
		return appendString(dst, s), b, nil
	case lead >= 0x80 && lead <= 0x8f, lead == 0xde, lead == 0xdf: // map
		return appendMap(dst, b, depth, nil, nil, d)
	case lead >= 0x90 && lead <= 0x9f, lead == 0xdc, lead == 0xdd: // array
		var n uint32
		if n, b, err = msgp.ReadArrayHeaderBytes(b); err != nil {
			return dst, b, err
		}
		dst = append(dst, '[')
		for i := uint32(0); i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, b, err = appendJSON(dst, b, depth+1, d); err != nil {
				return dst, b, err
			}
		}
		return append(dst, ']'), b, nil
	case lead == 0xc0:
		return append(dst, "null"...), b[1:], nil
	case lead == 0xc2:
		return append(dst, "false"...), b[1:], nil
	case lead == 0xc3:
		return append(dst, "true"...), b[1:], nil
	case lead >= 0xcc && lead <= 0xcf: // uint 8-64
		var u uint64
		u, b, err = msgp.ReadUint64Bytes(b)
		return strconv.AppendUint(dst, u, 10), b, err
	case lead >= 0xd0 && lead <= 0xd3: // int 8-64
		var i int64
		i, b, err = msgp.ReadInt64Bytes(b)
		return strconv.AppendInt(dst, i, 10), b, err
	case lead == 0xca:
		var f float32
		f, b, err = msgp.ReadFloat32Bytes(b)
		return appendFloat(dst, float64(f), 32), b, err
	case lead == 0xcb:
		var f float64
		f, b, err = msgp.ReadFloat64Bytes(b)
		return appendFloat(dst, f, 64), b, err
	case lead >= 0xc4 && lead <= 0xc6: // bin: text, as Fluent Bit writes it
		var v []byte
		if v, b, err = msgp.ReadBytesZC(b); err != nil {
			return dst, b, err
		}
		return appendString(dst, v), b, nil
	case lead >= 0xd4 && lead <= 0xd8, lead >= 0xc7 && lead <= 0xc9: // ext
		var typ int8
		var data []byte
		if typ, data, b, err = readExt(b); err != nil {
			return dst, b, err
		}
		if typ == 0 && len(data) == 8 { // EventTime: seconds.nanoseconds (1e9 or more carry, as a record's time)
			ns := uint64(binary.BigEndian.Uint32(data))*1e9 + uint64(binary.BigEndian.Uint32(data[4:]))
			dst = strconv.AppendUint(dst, ns/1e9, 10)
			return appendFraction(append(dst, '.'), ns%1e9, 9), b, nil
		}
		return appendBase64(dst, data), b, nil
	}
	return dst, b, msgp.InvalidPrefixError(b[0])
}

// appendMap writes a msgpack map as a JSON object, leaving out the keys rm
// removes and adding the extra fields the map does not have. A key the map
// repeats is written once (see dedup.go): with d nil, a map that may
// repeat one returns errDup.
func appendMap(dst, b []byte, depth int, x *extras, rm *removal, d *dedup) ([]byte, []byte, error) {
	var f filter
	n, b, fp, err := openMap(b, d, &f)
	if err != nil {
		return dst, b, err
	}
	dst = append(dst, '{')
	first := len(dst)
	for i := uint32(0); i < n; i++ {
		var sub *removal
		var k []byte
		sep, key := len(dst), -1 // key: the offset of k in f.entries, if text
		if isText(b) {
			var drop bool
			if k, sub, drop, b, err = textKey(b, x, rm, fp); err != nil {
				break
			} else if drop {
				continue
			}
			key = len(f.entries) - len(b) - len(k)
			if sep > first {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
		} else {
			if sep > first {
				dst = append(dst, ',')
			}
			if dst, b, err = appendKey(dst, b, depth, d); err != nil {
				break
			}
		}
		dst = append(dst, ':')
		switch {
		case sub != nil && msgp.NextType(b) == msgp.MapType:
			dst, b, err = appendMap(dst, b, depth+1, nil, sub, d)
		case isStr(b): // the common value, without appendJSON's dispatch
			var s []byte
			if s, b, err = readString(b); err == nil {
				dst = appendString(dst, s)
			}
		default:
			dst, b, err = appendJSON(dst, b, depth+1, d)
		}
		if err != nil {
			break
		}
		if d != nil {
			start := sep
			if sep > first {
				start++ // after the comma
			}
			d.add(key, len(k), sep, start, len(dst))
		}
	}
	f.release()
	if err != nil {
		return dst, b, err
	}
	if d != nil {
		dst = d.close(dst, first, ',')
	}
	for i := 0; i < x.len(); i++ {
		if !x.seen[i] {
			if len(dst) > first {
				dst = append(dst, ',')
			}
			dst = append(dst, x.field(i).json...)
			dst = x.appendValue(dst, i)
		}
	}
	return append(dst, '}'), b, nil
}

// readString is msgp.ReadStringZC with the short form, fixstr, inline.
func readString(b []byte) (s, rest []byte, err error) {
	if len(b) > 0 && b[0]&0xe0 == 0xa0 {
		if end := 1 + int(b[0]&0x1f); end <= len(b) {
			return b[1:end], b[end:], nil
		}
	}
	return msgp.ReadStringZC(b)
}

// isStr reports a msgpack str at the start of b.
func isStr(b []byte) bool {
	return len(b) > 0 && (b[0] >= 0xa0 && b[0] <= 0xbf || b[0] == 0xd9 || b[0] == 0xda || b[0] == 0xdb)
}

// appendKey writes a map key that is not text (str or bin) as a JSON string
// of its JSON form.
func appendKey(dst, b []byte, depth int, d *dedup) ([]byte, []byte, error) {
	start := len(dst)
	dst, b, err := appendJSON(dst, b, depth+1, d)
	if err != nil {
		return dst, b, err
	}
	if dst[start] != '"' && len(dst)-start > maxKeyText {
		return dst, b, errKeyText
	}
	return quoteJSON(dst, start), b, nil
}

// quoteJSON makes the JSON text at dst[start:] a JSON string of that text,
// unless it is a string already (ext as base64).
func quoteJSON(dst []byte, start int) []byte {
	if dst[start] == '"' {
		return dst
	}
	text := string(dst[start:])
	return appendString(dst[:start], []byte(text))
}

func readExt(b []byte) (typ int8, data, rest []byte, err error) {
	rest, err = msgp.Skip(b)
	if err != nil {
		return 0, nil, b, err
	}
	hdr := 2 // fixext
	switch b[0] {
	case 0xc7:
		hdr = 3
	case 0xc8:
		hdr = 4
	case 0xc9:
		hdr = 6
	}
	end := len(b) - len(rest)
	if end < hdr {
		return 0, nil, b, msgp.ErrShortBytes
	}
	return int8(b[hdr-1]), b[hdr:end], rest, nil
}

// appendFloat writes f as its shortest text (ra.AppendFloat); a whole
// number within int64's range keeps a ".0", as Fluent Bit writes it, so a
// consumer still sees a float (5.0, not 5; 1500000.0, not 1.5e+06).
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...) // JSON has no NaN or Infinity
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return append(strconv.AppendFloat(dst, f, 'f', -1, bits), ".0"...)
	}
	return ra.AppendFloat(dst, f, bits)
}

func appendBase64(dst, v []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, v)
	return append(dst, '"')
}

// safe[c] is true for ASCII bytes that JSON strings carry as they are.
var safe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// escapes[c], for an ASCII byte that is not safe, is its escape: the text
// (\" \\ \n \r \t or \u00XX) in the low bytes, little-endian, and its
// length in the top byte, so that one 8-byte store writes it.
var escapes = func() (t [0x80]uint64) {
	for c := range 0x80 {
		var text string
		switch c {
		case '"', '\\':
			text = string([]byte{'\\', byte(c)})
		case '\n':
			text = `\n`
		case '\r':
			text = `\r`
		case '\t':
			text = `\t`
		default:
			if safe[c] {
				continue
			}
			text = string([]byte{'\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]})
		}
		var word [8]byte
		copy(word[:], text)
		word[7] = byte(len(text))
		t[c] = binary.LittleEndian.Uint64(word[:])
	}
	return t
}()

// Bytes of a word, for special.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special sets the high bit of each byte of x (little-endian: the first is
// the lowest) that needs a look: a control character, quote, backslash or
// non-ASCII byte. SWAR: for a byte below 0x20 the subtraction sets its high
// bit, as it does for a quote or backslash made 0 by the XOR; OR-ing x in
// marks non-ASCII bytes and keeps the high bits of a byte that had one
// anyway. Above a marked byte a borrow may mark others that do not need a
// look, so only the lowest mark is sure, and only the lowest is used.
func special(x uint64) uint64 {
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((x - ones*0x20) | (q - ones) | (b - ones) | x) & highs
}

// appendString writes s as a JSON string: UTF-8 passes through, control
// characters are escaped, and invalid UTF-8 becomes U+FFFD.
//
// dst is grown once for the quotes, s and 8 bytes of slack, and written by
// index: plain bytes are copied 8 at a time, the last few of a longer
// string as one word too, the slack taking what a word store writes past
// the end. Each escape, which makes the output longer than s, first makes
// sure the room is still there.
func appendString(dst, s []byte) []byte {
	const slack = 8 + 1 // a word store past the end, the closing quote
	dst = slices.Grow(dst, 1+len(s)+slack)
	n := len(dst)
	out := dst[:cap(dst)]
	out[n] = '"'
	n++
	// s[:i] is written to out[:n]; len(out)-n >= len(s)-i+slack.
	const room = slack + 6 // an escape adds up to 6 bytes for 1
	i := 0
	for {
		// Words: plain bytes are written; an ASCII byte that is not is
		// escaped here, without leaving the loop.
		// (s[i:i+8] and out[n:n+8] cost two compares each, where s[i:]
		// would also mask its pointer, being possibly empty.)
		for i+8 <= len(s) {
			w := binary.LittleEndian.Uint64(s[i : i+8])
			binary.LittleEndian.PutUint64(out[n:n+8], w)
			m := special(w)
			if m == 0 {
				i, n = i+8, n+8
				continue
			}
			// The plain bytes before the first mark are written.
			k := bits.TrailingZeros64(m) / 8
			i, n = i+k, n+k
			c := s[i]
			if c >= 0x80 {
				break // to the non-ASCII run below, perhaps via the tail
			}
			if len(out)-n < len(s)-i+room {
				out = grow(out, n, len(s)-i+room)
			}
			e := escapes[c]
			binary.LittleEndian.PutUint64(out[n:n+8], e)
			i, n = i+1, n+int(e>>56)
		}
		if left := len(s) - i; left < 8 {
			if left == 0 {
				break
			}
			// The last 1 to 7 bytes: the word ending s, shifted down;
			// in a string shorter than a word, byte by byte.
			if len(s) >= 8 {
				w := binary.LittleEndian.Uint64(s[len(s)-8:]) >> (8 * (8 - left))
				binary.LittleEndian.PutUint64(out[n:n+8], w)
				m := special(w) & (1<<(8*left) - 1)
				if m == 0 {
					n += left
					break
				}
				k := bits.TrailingZeros64(m) / 8
				i, n = i+k, n+k
			} else {
				for i < len(s) && safe[s[i]] {
					out[n] = s[i]
					i, n = i+1, n+1
				}
				if i == len(s) {
					break
				}
			}
			if len(out)-n < len(s)-i+room {
				out = grow(out, n, len(s)-i+room)
			}
			if c := s[i]; c < 0x80 {
				e := escapes[c]
				binary.LittleEndian.PutUint64(out[n:n+8], e)
				i, n = i+1, n+int(e>>56)
				continue
			}
		} else if len(out)-n < len(s)-i+room {
			out = grow(out, n, len(s)-i+room)
		}
		// A run of valid non-ASCII characters is copied at once; an
		// invalid byte becomes U+FFFD.
		j := i
		for j < len(s) && s[j] >= 0x80 {
			size := runeLen(s[j:])
			if size == 0 {
				break
			}
			j += size
		}
		if j > i {
			n += copy(out[n:], s[i:j])
			i = j
		} else {
			n += copy(out[n:], "\ufffd")
			i++
		}
	}
	out[n] = '"'
	return out[:n+1]
}

// grow returns out with room for n bytes and more after out[:n], all of
// its capacity in its length.
func grow(out []byte, n, more int) []byte {
	out = slices.Grow(out[:n], more)
	return out[:cap(out)]
}

// runeLen returns the length of the character at the start of s, which
// starts with a byte >= 0x80, or 0 where that is not valid UTF-8: as
// utf8.DecodeRune does, without its call, for the common case of 4 bytes
// or more left.
func runeLen(s []byte) int {
	if len(s) < 4 {
		if r, size := utf8.DecodeRune(s); r != utf8.RuneError || size > 1 {
			return size
		}
		return 0
	}
	w := binary.LittleEndian.Uint32(s) // the first byte lowest
	switch {
	case w&0xc0e0 == 0x80c0: // 110xxxxx 10xxxxxx
		if w&0x1e != 0 { // not overlong: above 0xc1
			return 2
		}
	case w&0xc0c0f0 == 0x8080e0: // 1110xxxx 10xxxxxx 10xxxxxx
		// The low bits of the first byte and the 0x20 bit of the second
		// tell an overlong form (0xe0 then below 0xa0) and a surrogate
		// (0xed then 0xa0 or above).
		if t := w & 0x200f; t != 0 && t != 0x200d {
			return 3
		}
	case w&0xc0c0c0f8 == 0x808080f0: // 11110xxx 10xxxxxx 10xxxxxx 10xxxxxx
		// The top 9 bits of the 21-bit code point: from U+10000 to
		// U+10FFFF.
		if t := (w&7)<<6 | w>>8&0x3f; t >= 0x10 && t <= 0x10f {
			return 4
		}
	}
	return 0
}

// AppendJSON appends the JSON form of the one msgpack value v.
func AppendJSON(dst, v []byte) ([]byte, error) {
	out, rest, err := withDedup(func(d *dedup) ([]byte, []byte, error) { return appendJSON(dst, v, 0, d) })
	return whole(out, len(dst), rest, err)
}
