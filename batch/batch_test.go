package batch

import (
	"bytes"
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
func frame(t *testing.T, raw []byte) []byte {
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
