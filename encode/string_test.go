package encode

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"
)

// appendStringSimple is the plain form of appendString that the fast one
// must match byte for byte: the table lookup per byte, no words, no slack.
func appendStringSimple(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case safe[c]:
			dst = append(dst, c)
		case c >= 0x80:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\ufffd"...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		case c == '"', c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(dst, '"')
}

func checkString(t *testing.T, s []byte) {
	t.Helper()
	want := appendStringSimple([]byte("pre"), s)
	// Every starting capacity: none spare, a little, plenty.
	for _, spare := range []int{0, 1, 7, 9, len(s), 6*len(s) + 16} {
		dst := make([]byte, 3, 3+spare)
		copy(dst, "pre")
		if got := appendString(dst, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) with %d spare = %q, want %q", s, spare, got, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "a", "abcdefg", "abcdefgh", "abcdefghi", "\"", "\\", "\x00", "\x1f", "\x7f", "\xff", "é", "日本",
		"🚀", "\xf0\x9f\x9a", "a\xffb\xfe", `10.0.0.39 - - "DELETE /healthz HTTP/1.1" 200 9594` + "\n",
		"журнал \"quoted\" \\ back\tslash\n", "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", "\x01\x02\x03\x04\x05\x06\x07\x08\x09",
		"abcdefg\"", "abcdefgh\"", "abcdefghijklmno\x00", "abcdefghijklmnop\xc3\xa9", "abcdefghijklmn\xc3\xa9",
	} {
		checkString(t, []byte(s))
	}
	// Each byte at each position of strings up to 24 bytes long.
	for n := 1; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				s := bytes.Repeat([]byte{'x'}, n)
				s[pos] = byte(c)
				checkString(t, s)
			}
		}
	}
}

func TestSpecial(t *testing.T) {
	// The lowest mark is the first byte that needs a look, for every pair
	// of bytes around a plain background.
	for a := 0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			for _, pos := range []int{0, 3, 6} {
				w := []byte("abcdefgh")
				w[pos], w[pos+1] = byte(a), byte(b)
				first := -1
				for i, c := range w {
					if !safe[c] {
						first = i
						break
					}
				}
				m := special(binary.LittleEndian.Uint64(w))
				got := -1
				if m != 0 {
					for got = 0; m&(0x80<<(8*got)) == 0; got++ {
					}
				}
				if got != first {
					t.Fatalf("%q: first mark at %d, want %d", w, got, first)
				}
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add([]byte("héllo \"wörld\"\n\t\\ 日本 🚀\x01 a\xffb"))
	f.Add([]byte(`{"level": "info", "msg": "timeout 404 retrying reset 500", "seq": 8, "user": "emoji 🚀", "ok": true}` + "\n"))
	f.Fuzz(func(t *testing.T, s []byte) {
		checkString(t, s)
	})
}

// BenchmarkAppendString writes the keys and string values of generated
// container log records, one record's strings per op.
func BenchmarkAppendString(b *testing.B) {
	recs := records(b, 1000)
	var strs [][][]byte
	for _, rec := range recs {
		strs = append(strs, recStrings(rec.Body))
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = buf[:0]
		for _, s := range strs[i] {
			buf = appendString(buf, s)
		}
		if i++; i == len(strs) {
			i = 0
		}
	}
}

// recStrings returns the keys and string values of a flat map.
func recStrings(body []byte) [][]byte {
	var ss [][]byte
	n, p, err := msgp.ReadMapHeaderBytes(body)
	for i := uint32(0); i < 2*n && err == nil; i++ {
		var s []byte
		if s, p, err = msgp.ReadStringZC(p); err == nil {
			ss = append(ss, s)
		}
	}
	return ss
}

func TestRuneLen(t *testing.T) {
	// Every first and second byte, the third and fourth from the edges of
	// the continuation range, and every length up to 4.
	edges := []byte{0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff}
	for c0 := 0x80; c0 < 0x100; c0++ {
		for c1 := 0; c1 < 0x100; c1++ {
			for _, c2 := range edges {
				for _, c3 := range edges {
					s := []byte{byte(c0), byte(c1), c2, c3}
					for n := 1; n <= len(s); n++ {
						want := 0
						if r, size := utf8.DecodeRune(s[:n]); r != utf8.RuneError || size > 1 {
							want = size
						}
						if got := runeLen(s[:n]); got != want {
							t.Fatalf("runeLen(%q) = %d, want %d", s[:n], got, want)
						}
					}
				}
			}
		}
	}
}
