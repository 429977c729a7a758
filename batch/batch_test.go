package batch

import (
	"bytes"
	"fmt"
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
	var value bytes.Buffer
	w := lz4.NewWriter(&value)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := Records(value.Bytes(), "application/msgpack", func([]byte) error { n++; return nil })
	if want := fmt.Sprintf("msgpack record at byte %d:", good); err == nil || !strings.HasPrefix(err.Error(), want) || n != 2 {
		t.Fatalf("%d records, then %v; want 2, then an error starting %q", n, err, want)
	}
}
