package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
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

// TestGroups: a record carries the group start before it, through NextOpen
// too, until a group end; a record outside any group has none.
func TestGroups(t *testing.T) {
	var data []byte
	data = v2(data, 1, 0, false, body("before"))
	data = v2(data, groupStart, 0, true, body("group 1"))
	data = v2(data, 2, 0, false, body("in 1"))
	data = v2(data, groupEnd, 0, false, msgp.AppendMapHeader(nil, 0))
	data = v2(data, 3, 0, false, body("between"))
	data = v2(data, groupStart, 0, false, body("group 2"))
	data = v2(data, 4, 0, false, body("in 2"))
	data = v2(data, groupStart, 0, false, body("group 3")) // a start without an end
	data = v2(data, 5, 0, false, body("in 3"))
	wantGroups := [][]byte{nil, body("group 1"), nil, body("group 2"), body("group 3")}
	wantMeta := [][]byte{nil, {0x81, 0xa1, 'k', 0xa1, 'v'}, nil, {0x80}, {0x80}}

	if n := Count(data); n != len(wantGroups) {
		t.Errorf("Count = %d, want %d", n, len(wantGroups))
	}
	for _, open := range []bool{false, true} {
		r, rec := NewReader(data), Record{}
		for i := 0; ; i++ {
			next := r.Next
			if open {
				next = r.NextOpen
			}
			more, err := next(&rec)
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				if i != len(wantGroups) {
					t.Fatalf("open %v: %d records, want %d", open, i, len(wantGroups))
				}
				break
			}
			if !bytes.Equal(rec.Group.Body, wantGroups[i]) || !bytes.Equal(rec.Group.Metadata, wantMeta[i]) {
				t.Errorf("open %v, record %d: group %x, %x; want %x, %x", open, i, rec.Group.Metadata, rec.Group.Body, wantMeta[i], wantGroups[i])
			}
		}
	}
}

func TestMalformed(t *testing.T) {
	good := v2(nil, 1, 0, false, body("ok"))
	three := append(eventTime(msgp.AppendArrayHeader(nil, 3), 1, 0), body("x")...)
	three = append(three, body("extra")...)
	cases := map[string][]byte{
		// Whole entries of the wrong shape, a record after them: neither
		// their extra value nor the next record is taken as a record.
		"three whole elements, then a record": append(three, good...),
		"empty header, then a record":         append(append(msgp.AppendArrayHeader(msgp.AppendArrayHeader(nil, 2), 0), body("x")...), good...),
		"truncated":                           good[:len(good)-2],
		"not an array":                        msgp.AppendString(nil, "x"),
		"three elements":                      msgp.AppendArrayHeader(nil, 3),
		"cut time":                            {0x92, 0xcb, 0x41, 0xd9},
		"cut header time":                     {0x92, 0x92, 0xc7, 8, 0, 0, 0},
		"absurd length":                       {0x92, 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xdf, 0xff, 0xff, 0xff, 0xff},
		"empty header":                        append(msgp.AppendArrayHeader(msgp.AppendArrayHeader(nil, 2), 0), body("x")...),
		"bad prefix":                          {0x92, 0x01, 0xc1},
		"missing body v1":                     msgp.AppendInt64(msgp.AppendArrayHeader(nil, 2), 1),
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
		if n := Count(data); n != 1 {
			t.Errorf("%s: Count = %d, want the 1 record before the fault", name, n)
		}
	}
}

// ext returns an EventTime of sec and nsec in the ext encoding head (type 0
// and 8 bytes follow).
func ext(head []byte, sec, nsec uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(append(head, 0), sec), nsec)
}

// TestTimes: the timestamps Fluent Bit's log event decoder reads, and its
// group markers: -1 and -2 whole seconds, as int64.
func TestTimes(t *testing.T) {
	const marker = -1
	for name, tc := range map[string]struct {
		ts   []byte
		want int64
	}{
		"fixext8":          {ext([]byte{0xd7}, 1700000000, 5), 1700000000000000005},
		"ext8":             {ext([]byte{0xc7, 8}, 1700000000, 5), 1700000000000000005},
		"ext16":            {ext([]byte{0xc8, 0, 8}, 1700000000, 5), 1700000000000000005},
		"ext32":            {ext([]byte{0xc9, 0, 0, 0, 8}, 1700000000, 5), 1700000000000000005},
		"EventTime max":    {ext([]byte{0xd7}, groupEnd-1, 999999999), (groupEnd-1)*1e9 + 999999999},
		"group start":      {ext([]byte{0xd7}, groupStart, 0), marker},
		"group end ext8":   {ext([]byte{0xc7, 8}, groupEnd, 0), marker},
		"uint":             {msgp.AppendUint64(nil, 1700000000), 1700000000e9},
		"zero":             {msgp.AppendInt64(nil, 0), 0},
		"uint64 max":       {msgp.AppendUint64(nil, math.MaxUint64), marker},
		"uint64 max-1":     {msgp.AppendUint64(nil, math.MaxUint64-1), marker},
		"float32":          {msgp.AppendFloat32(nil, 1.5), 1500000000},
		"float -0.5":       {msgp.AppendFloat64(nil, -0.5), -500000000},
		"float -1":         {msgp.AppendFloat64(nil, -1), marker},
		"float -1.5":       {msgp.AppendFloat64(nil, -1.5), marker},
		"float -2.9":       {msgp.AppendFloat64(nil, -2.9), marker},
		"float below max":  {msgp.AppendFloat64(nil, math.Nextafter(math.MaxInt64/1e9, 0)), 9223372036854774784},
		"int below max":    {msgp.AppendInt64(nil, math.MaxInt64/int64(1e9)), math.MaxInt64 / int64(1e9) * 1e9},
		"uint as int form": {[]byte{0xd3, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0}, 1700000000e9},
	} {
		for _, layout := range []int{1, 2} {
			data := msgp.AppendArrayHeader(nil, 2)
			if layout == 2 {
				data = msgp.AppendArrayHeader(data, 2)
				data = msgp.AppendMapHeader(append(data, tc.ts...), 0)
			} else {
				data = append(data, tc.ts...)
			}
			data = append(data, body("x")...)
			recs := readAll(t, data)
			switch {
			case tc.want == marker && len(recs) != 0:
				t.Errorf("%s, layout %d: %d records, want a group marker", name, layout, len(recs))
			case tc.want != marker && (len(recs) != 1 || recs[0].Time != tc.want || recs[0].TimeErr != nil):
				t.Errorf("%s, layout %d: %+v, want time %d", name, layout, recs, tc.want)
			}
		}
	}
}

// TestUnreadableTime: a record whose timestamp cannot be read, in a well
// formed entry, comes with TimeErr; the records after it are read.
func TestUnreadableTime(t *testing.T) {
	good := v2(nil, 1, 0, false, body("ok"))
	for name, ts := range map[string][]byte{
		"milliseconds":        msgp.AppendInt64(nil, 1700000000000),
		"negative int":        msgp.AppendInt64(nil, -5),
		"uint 2^63":           msgp.AppendUint64(nil, 1<<63),
		"NaN":                 msgp.AppendFloat64(nil, nan()),
		"infinity":            msgp.AppendFloat64(nil, math.Inf(1)),
		"float max":           msgp.AppendFloat64(nil, math.MaxInt64/1e9),
		"float -max":          msgp.AppendFloat64(nil, -math.MaxInt64/1e9),
		"float -3":            msgp.AppendFloat64(nil, -3),
		"string":              msgp.AppendString(nil, "2024-01-01"),
		"nil":                 msgp.AppendNil(nil),
		"map":                 body("x"),
		"ext type 1":          {0xd7, 1, 0, 0, 0, 1, 0, 0, 0, 0},
		"fixext4":             {0xd6, 0, 0, 0, 0, 1},
		"ext8 of 9 bytes":     {0xc7, 9, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
		"marker with nanosec": ext([]byte{0xd7}, groupStart, 1),
	} {
		for _, layout := range []int{1, 2} {
			bad := msgp.AppendArrayHeader(nil, 2)
			if layout == 2 {
				bad = msgp.AppendMapHeader(append(msgp.AppendArrayHeader(bad, 2), ts...), 0)
			} else {
				bad = append(bad, ts...)
			}
			data := append(append(append(append([]byte{}, good...), bad...), body("bad")...), good...)
			recs := readAll(t, data)
			if len(recs) != 3 || recs[0].TimeErr != nil || recs[2].TimeErr != nil || recs[1].TimeErr == nil ||
				recs[1].Time != 0 || !bytes.Equal(recs[1].Body, body("bad")) || !bytes.Equal(recs[2].Body, body("ok")) {
				t.Errorf("%s, layout %d: %+v, want the second record with a TimeErr", name, layout, recs)
			}
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
			if rec1.Time != rec2.Time || (rec1.TimeErr == nil) != (rec2.TimeErr == nil) ||
				!bytes.Equal(rec1.Metadata, rec2.Metadata) || !bytes.Equal(rec1.Body, rec2.Body) {
				t.Fatalf("record %d: %+v, open %+v", i, rec1, rec2)
			}
		}
	})
}

// TestSkipStringLengths: skip steps over strings of every short length as
// msgp.Skip does, fixstr up to 31 bytes included; a record whose body holds
// a string of 16 to 31 bytes (a pod name, a level, a short message) is read
// whole and the record after it too.
func TestSkipStringLengths(t *testing.T) {
	for n := range 300 {
		b := msgp.AppendString(nil, strings.Repeat("s", n))
		b = append(b, 0xc0) // something after it
		got, gotErr := skip(b)
		want, wantErr := msgp.Skip(b)
		if len(got) != len(want) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("string of %d bytes: skip leaves %d bytes (%v), msgp.Skip %d (%v)", n, len(got), gotErr, len(want), wantErr)
		}
	}
	long := body(strings.Repeat("x", 20))
	data := v2(v2(nil, 1, 0, false, long), 2, 0, false, body("after"))
	recs := readAll(t, data)
	if len(recs) != 2 || !bytes.Equal(recs[0].Body, long) || !bytes.Equal(recs[1].Body, body("after")) {
		t.Fatalf("%d records: %+v", len(recs), recs)
	}
}

// TestNegativeIntegerTimes: a negative integer timestamp, -1 and -2
// included, is a record whose time cannot be read, as Fluent Bit's decoder
// refuses it; it is not a group marker, which would make the record vanish
// without a word and change the group of the records after it.
func TestNegativeIntegerTimes(t *testing.T) {
	for _, sec := range []int64{-1, -2} {
		data := v2(nil, groupStart, 0, false, body("group"))
		bad := msgp.AppendArrayHeader(nil, 2)
		bad = msgp.AppendInt64(bad, sec)
		data = append(append(data, bad...), body("bad")...)
		data = v2(data, 1, 0, false, body("ok"))
		recs := readAll(t, data)
		if len(recs) != 2 || recs[0].TimeErr == nil || !bytes.Equal(recs[0].Body, body("bad")) ||
			recs[1].TimeErr != nil || !bytes.Equal(recs[1].Group.Body, body("group")) {
			t.Errorf("integer %d: %+v, want the record with a TimeErr, then one still in the group", sec, recs)
		}
	}
}
