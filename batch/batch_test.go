package batch

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/tinylib/msgp/msgp"
)

// TestMsgpackErrorOffset: a bad msgpack record is reported at its start in
// the decompressed value, after the records before it.
func TestMsgpackErrorOffset(t *testing.T) {
	raw := msgp.AppendInt(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "a"), 1)
	raw = msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(raw, 1), "b"), "xy")
	good := len(raw)
	raw = msgp.AppendInt(msgp.AppendString(msgp.AppendMapHeader(raw, 2), "c"), 1) // one of its 2 entries
	n := 0
	err := Records(frame(t, raw), "application/msgpack", func([]byte) error { n++; return nil })
	if want := fmt.Sprintf("msgpack record at byte %d:", good); err == nil || !strings.HasPrefix(err.Error(), want) || n != 2 {
		t.Fatalf("%d records, then %v; want 2, then an error starting %q", n, err, want)
	}
}

// frame compresses raw into one LZ4 frame, as a batch message's value.
func frame(t testing.TB, raw []byte) []byte {
	t.Helper()
	var value bytes.Buffer
	w := lz4.NewWriter(&value)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return value.Bytes()
}

// TestReadStream: values one after another read as one stream of records,
// in order, a record longer than the read buffer whole.
func TestReadStream(t *testing.T) {
	var want []string
	var values []byte
	for v := range 3 {
		var raw []byte
		for i := range 1000 {
			rec := fmt.Sprintf(`{"value":%d,"record":%d}`, v, i)
			if v == 1 && i == 500 {
				rec = `{"log":"` + strings.Repeat("x", 200<<10) + `"}`
			}
			want = append(want, rec)
			raw = append(append(raw, rec...), '\n')
		}
		values = append(values, frame(t, raw)...)
	}
	var got []string
	if err := Read(bytes.NewReader(values), NDJSON, func(rec []byte) error { got = append(got, string(rec)); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d records read, want %d (equal: %v)", len(got), len(want), slices.Equal(got, want))
	}
}

// TestReadBounded: a value that decompresses to a record larger than the
// bound (an LZ4 bomb on a topic anyone may write to) is refused before
// more than the bound is held; so is a value whose last record has no
// newline.
func TestReadBounded(t *testing.T) {
	const max = 1 << 20
	for name, tc := range map[string]struct {
		contentType string
		raw         []byte
		want        string
	}{
		"line":            {NDJSON, append(bytes.Repeat([]byte("x"), 4<<20), '\n'), "record longer than 1048576 bytes"},
		"msgpack string":  {Msgpack, msgp.AppendString(nil, strings.Repeat("x", 4<<20)), "msgpack record at byte 0: record longer than 1048576 bytes"},
		"no last newline": {Text, []byte("a\nb"), "last record has no newline"},
	} {
		n := 0
		err := read(bytes.NewReader(frame(t, tc.raw)), tc.contentType, max, func([]byte) error { n++; return nil })
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v after %d records, want %q", name, err, n, tc.want)
		}
	}
}

// TestRecordAtTheBound: a record of exactly the bound is read, in lines
// and in msgpack; one byte more is refused.
func TestRecordAtTheBound(t *testing.T) {
	const max = 1 << 20
	line := func(n int) []byte { return append(bytes.Repeat([]byte("x"), n), '\n') }
	str := msgp.AppendString(nil, strings.Repeat("x", max-5)) // str 32: 5 bytes of header
	for name, tc := range map[string]struct {
		contentType string
		raw         []byte
		ok          bool
	}{
		"line of max":       {NDJSON, line(max), true},
		"line of max+1":     {Text, line(max + 1), false},
		"msgpack of max":    {Msgpack, str, true},
		"msgpack of max+1":  {Msgpack, msgp.AppendString(nil, strings.Repeat("x", max-4)), false},
		"lines around":      {Text, append(append(line(3), line(max)...), line(2)...), true},
		"msgpack after one": {Msgpack, append(msgp.AppendInt(nil, 1), str...), true},
	} {
		var sizes []int
		err := read(bytes.NewReader(frame(t, tc.raw)), tc.contentType, max, func(rec []byte) error { sizes = append(sizes, len(rec)); return nil })
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v after records of %v", name, err, sizes)
		}
	}
}

// TestCallbackErrorStops: an error fn returns ends the reading, returned
// as it is, with no record after it.
func TestCallbackErrorStops(t *testing.T) {
	stop := errors.New("enough")
	for contentType, raw := range map[string][]byte{
		NDJSON:  []byte("{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"),
		Msgpack: msgp.AppendInt(msgp.AppendInt(msgp.AppendInt(nil, 1), 2), 3),
	} {
		n := 0
		err := Records(frame(t, raw), contentType, func([]byte) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Errorf("%s: %v after %d records, want %v after 2", contentType, err, n, stop)
		}
	}
}

// TestWireNames: the header names and content types of batch messages, as
// README documents them for consumers.
func TestWireNames(t *testing.T) {
	for got, want := range map[string]string{
		ContentTypeHeader: "content-type", ContentEncodingHeader: "content-encoding", RecordsHeader: "gokafka.records",
		FirstTimeHeader: "gokafka.first_time", LastTimeHeader: "gokafka.last_time",
		NDJSON: "application/x-ndjson", Msgpack: "application/msgpack", Text: "text/plain",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	if len(Headers) != 5 {
		t.Errorf("Headers %q, want the 5", Headers)
	}
}

// FuzzRead: any bytes as batch message values (a topic anyone may write
// to) end in records within the bound or an error, never a panic; and the
// records that data splits into, in one LZ4 frame, read back as they were.
func FuzzRead(f *testing.F) {
	ndjson := []byte("{\"a\":1}\n{\"b\":\"x\"}\n")
	mp := msgp.AppendString(msgp.AppendInt(msgp.AppendMapHeader(nil, 1), 1), "s")
	for _, seed := range [][]byte{ndjson, mp, []byte("a\n\nb"), {0x04, 0x22, 0x4d, 0x18}} {
		f.Add(seed, false)
		f.Add(seed, true)
		f.Add(frame(f, seed), false)
		f.Add(frame(f, seed), true)
		f.Add(frame(f, seed)[:10], false)
	}
	const bound = 4096
	f.Fuzz(func(t *testing.T, data []byte, msgpack bool) {
		contentType := NDJSON
		if msgpack {
			contentType = Msgpack
		}
		_ = read(bytes.NewReader(data), contentType, bound, func(rec []byte) error {
			if len(rec) > bound {
				t.Fatalf("a record of %d bytes, over the bound %d", len(rec), bound)
			}
			return nil
		})

		var want [][]byte
		var raw []byte
		for _, piece := range bytes.Split(data, []byte("\n")) {
			if msgpack {
				piece = msgp.AppendBytes(nil, piece)
				raw = append(raw, piece...)
			} else {
				raw = append(append(raw, piece...), '\n')
			}
			want = append(want, piece)
		}
		var got [][]byte
		err := read(bytes.NewReader(frame(t, raw)), contentType, bound, func(rec []byte) error {
			got = append(got, bytes.Clone(rec))
			return nil
		})
		longest := 0
		for _, w := range want {
			longest = max(longest, len(w))
		}
		if longest > bound {
			if err == nil {
				t.Fatalf("a record of %d bytes read, over the bound %d", longest, bound)
			}
			return
		}
		if err != nil || !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("read back %d records (%v), not the %d written", len(got), err, len(want))
		}
	})
}
