package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

func eventTime(b []byte, sec, nsec uint32) []byte {
	b = append(b, 0xd7, 0x00)
	b = binary.BigEndian.AppendUint32(b, sec)
	return binary.BigEndian.AppendUint32(b, nsec)
}

func body(msg string) []byte {
	b := msgp.AppendMapHeader(nil, 1)
	b = msgp.AppendString(b, "log")
	return msgp.AppendString(b, msg)
}

// v2 appends [[EventTime, {meta}], body].
func v2(b []byte, sec, nsec uint32, meta bool, bd []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendArrayHeader(b, 2)
	b = eventTime(b, sec, nsec)
	if meta {
		b = msgp.AppendMapHeader(b, 1)
		b = msgp.AppendString(b, "k")
		b = msgp.AppendString(b, "v")
	} else {
		b = msgp.AppendMapHeader(b, 0)
	}
	return append(b, bd...)
}

func readAll(t *testing.T, data []byte) []Record {
	t.Helper()
	var out []Record
	r := NewReader(data)
	var rec Record
	for {
		more, err := r.Next(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return out
		}
		out = append(out, rec)
	}
}

func TestLayouts(t *testing.T) {
	var data []byte
	// v1 with EventTime, integer and float timestamps.
	data = msgp.AppendArrayHeader(data, 2)
	data = append(eventTime(data, 1700000000, 123456789), body("a")...)
	data = msgp.AppendArrayHeader(data, 2)
	data = append(msgp.AppendInt64(data, 1700000001), body("b")...)
	data = msgp.AppendArrayHeader(data, 2)
	data = append(msgp.AppendFloat64(data, 1700000002.5), body("c")...)
	// v2 inside a group, with and without metadata; a non-map body.
	data = v2(data, groupStart, 0, true, msgp.AppendMapHeader(nil, 0))
	data = v2(data, 1700000003, 7, true, body("d"))
	data = v2(data, 1700000004, 0, false, msgp.AppendArrayHeader(msgp.AppendNil(nil), 0)[1:])
	data = v2(data, groupEnd, 0, false, msgp.AppendMapHeader(nil, 0))

	recs := readAll(t, data)
	wantTimes := []int64{1700000000123456789, 1700000001e9, 1700000002500000000, 1700000003000000007, 1700000004e9}
	if len(recs) != len(wantTimes) {
		t.Fatalf("got %d records, want %d (markers skipped)", len(recs), len(wantTimes))
	}
	for i, r := range recs {
		if r.Time != wantTimes[i] {
			t.Errorf("record %d: time %d, want %d", i, r.Time, wantTimes[i])
		}
	}
	for i, msg := range []string{"a", "b", "c", "d"} {
		if !bytes.Equal(recs[i].Body, body(msg)) {
			t.Errorf("record %d body %x", i, recs[i].Body)
		}
	}
	if recs[0].Metadata != nil || !bytes.Equal(recs[3].Metadata, []byte{0x81, 0xa1, 'k', 0xa1, 'v'}) {
		t.Errorf("metadata: %x, %x", recs[0].Metadata, recs[3].Metadata)
	}
	if !bytes.Equal(recs[4].Body, []byte{0x90}) {
		t.Errorf("array body: %x", recs[4].Body)
	}
}

func TestMalformed(t *testing.T) {
	good := v2(nil, 1, 0, false, body("ok"))
	cases := map[string][]byte{
		"truncated":       good[:len(good)-2],
		"not an array":    msgp.AppendString(nil, "x"),
		"three elements":  msgp.AppendArrayHeader(nil, 3),
		"string time":     append(msgp.AppendString(msgp.AppendArrayHeader(nil, 2), "now"), body("x")...),
		"absurd length":   {0x92, 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xdf, 0xff, 0xff, 0xff, 0xff},
		"empty header":    append(msgp.AppendArrayHeader(msgp.AppendArrayHeader(nil, 2), 0), body("x")...),
		"bad prefix":      {0x92, 0x01, 0xc1},
		"huge int time":   append(msgp.AppendInt64(msgp.AppendArrayHeader(nil, 2), 1<<62), body("x")...),
		"float time NaN":  append(msgp.AppendFloat64(msgp.AppendArrayHeader(nil, 2), nan()), body("x")...),
		"float time max":  append(msgp.AppendFloat64(msgp.AppendArrayHeader(nil, 2), math.MaxInt64/1e9), body("x")...),
		"missing body v1": msgp.AppendInt64(msgp.AppendArrayHeader(nil, 2), 1),
	}
	for name, bad := range cases {
		data := append(append([]byte{}, good...), bad...)
		r := NewReader(data)
		var rec Record
		if more, err := r.Next(&rec); !more || err != nil {
			t.Fatalf("%s: first record: %v", name, err)
		}
		more, err := r.Next(&rec)
		var cerr *Error
		if more || !errors.As(err, &cerr) || cerr.Offset != len(good) || cerr.Record != 1 {
			t.Errorf("%s: got more=%v err=%v, want an error at byte %d", name, more, err, len(good))
		}
	}
}

// float64(MaxInt64/1e9) is 2^63/1e9, out of range; the float below it is in.
func TestFloatTimeBounds(t *testing.T) {
	for _, f := range []float64{math.MaxInt64 / 1e9, -math.MaxInt64 / 1e9} {
		if ns, _, _, err := readTime(msgp.AppendFloat64(nil, f)); err == nil {
			t.Errorf("%v: got %d, want an error", f, ns)
		}
		below := math.Nextafter(f, 0)
		if ns, _, _, err := readTime(msgp.AppendFloat64(nil, below)); err != nil || (ns > 0) != (f > 0) {
			t.Errorf("%v: got %d, %v", below, ns, err)
		}
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

func FuzzReader(f *testing.F) {
	f.Add(v2(nil, 1, 2, true, body("seed")))
	f.Add(append(msgp.AppendFloat64(msgp.AppendArrayHeader(nil, 2), 1.5), body("x")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(data)
		var rec Record
		for {
			more, err := r.Next(&rec)
			if !more {
				var cerr *Error
				if err != nil && (!errors.As(err, &cerr) || cerr.Offset >= len(data)) {
					t.Fatalf("error %v does not point into the chunk", err)
				}
				return
			}
			if len(rec.Body) == 0 {
				t.Fatal("record with an empty body")
			}
		}
	})
}

// FuzzSkip checks skip against msgp.Skip: the same rest and the same error.
func FuzzSkip(f *testing.F) {
	f.Add(body("seed"))
	f.Add([]byte{0x82, 0xa1, 'a', 0x91, 0xc0, 0xd9, 1, 'b', 0xde, 0, 1, 0xa0, 0xdc, 0, 1, 0x7f})
	f.Add(append(bytes.Repeat([]byte{0x91}, 2000), 0xc0))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := skip(b)
		want, wantErr := msgp.Skip(b)
		if len(got) != len(want) || (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("skip(%x) = %d bytes left, %v; msgp.Skip: %d, %v", b, len(got), gotErr, len(want), wantErr)
		}
	})
}

// FuzzNextOpen checks NextOpen against Next: the same records and errors,
// whether the caller ends each body itself (EndBody, here with the length
// msgp.Skip finds), skips it (SkipBody), or leaves it to the next NextOpen.
func FuzzNextOpen(f *testing.F) {
	f.Add(v2(v2(nil, 1, 2, true, body("seed")), 3, 4, false, body("two")), uint8(0))
	f.Add(append(v2(nil, 1, 0, false, body("ok")), 0x92, 0x01, 0xc1), uint8(1))
	f.Add(append(v2(nil, 1, 0, false, body("ok")), 0x92, 0x01), uint8(2))
	f.Add(append(v2(nil, groupStart, 0, false, body("marker")), v2(nil, 1, 0, false, body("ok"))...), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, how uint8) {
		r1, r2 := NewReader(data), NewReader(data)
		for i := 0; ; i++ {
			var rec1, rec2 Record
			more1, err1 := r1.Next(&rec1)
			more2, err2 := r2.NextOpen(&rec2)
			if more2 {
				switch (how >> (i % 4 * 2)) & 3 {
				case 0:
					if rest, err := msgp.Skip(rec2.Body); err == nil {
						r2.EndBody(&rec2, len(rec2.Body)-len(rest))
						break
					}
					fallthrough
				case 1:
					if err := r2.SkipBody(&rec2); err != nil {
						more2, err2 = false, err
					}
				default:
					// Left open: the next NextOpen skips it; compare the
					// body msgp.Skip delimits, or the error of that
					// NextOpen.
					if rest, err := msgp.Skip(rec2.Body); err == nil {
						rec2.Body = rec2.Body[:len(rec2.Body)-len(rest)]
					} else {
						more2, err2 = r2.NextOpen(&rec2)
					}
				}
			}
			if more1 != more2 || (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
				t.Fatalf("record %d: Next %v, %v; NextOpen %v, %v", i, more1, err1, more2, err2)
			}
			if !more1 {
				return
			}
			if rec1.Time != rec2.Time || !bytes.Equal(rec1.Metadata, rec2.Metadata) || !bytes.Equal(rec1.Body, rec2.Body) {
				t.Fatalf("record %d: %+v, open %+v", i, rec1, rec2)
			}
		}
	})
}
