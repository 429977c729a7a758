package accumulator

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"
)

func TestFrames(t *testing.T) {
	a := New(10000, 1<<20, time.Hour, GoAllocator{})
	a.SetFrames("application/x-ndjson")
	w := NewWaiter(300)
	if n, err := a.Append("t", 2, staged(300, 98), w, far()); n != 300 || err != nil {
		t.Fatal(n, err)
	}
	a.Close()
	ready, _ := a.Drain(time.Now(), nil)
	// 99 bytes a line: 101 lines of the 10000-byte Batch_Size per frame.
	if len(ready) != 3 {
		t.Fatalf("%d batches", len(ready))
	}
	var lines []string
	for _, b := range ready {
		if len(b.Recs) != 1 || b.Partition != 2 {
			t.Fatalf("a batch is one message of its partition: %d messages, partition %d", len(b.Recs), b.Partition)
		}
		r := b.Recs[0]
		raw, err := io.ReadAll(lz4.NewReader(bytes.NewReader(b.Buf[:r.Len])))
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > 10000 || int(r.Len) >= len(raw) {
			t.Errorf("frame of %d bytes holds %d uncompressed", r.Len, len(raw))
		}
		got := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		lines = append(lines, got...)
		h := map[string]string{}
		for hb := b.Buf[r.Off+r.Len : r.Off+r.Size()]; len(hb) > 0; {
			n := int(hb[0]) | int(hb[1])<<8
			name := string(hb[2 : 2+n])
			hb = hb[2+n:]
			v := int(hb[0]) | int(hb[1])<<8 | int(hb[2])<<16 | int(hb[3])<<24
			h[name] = string(hb[4 : 4+v])
			hb = hb[4+v:]
		}
		if h[HeaderContentType] != "application/x-ndjson" || h[HeaderContentEncoding] != "lz4" || h[HeaderRecords] != fmt.Sprint(len(got)) ||
			h[HeaderFirstTime] == "" || h[HeaderLastTime] == "" {
			t.Errorf("headers %v", h)
		}
	}
	for i, l := range lines {
		if l != fmt.Sprintf("%098d", i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
	for _, b := range ready {
		a.Complete(b, nil)
	}
	if res, ok := a.Wait(w, far(), Sleep); !ok || res.Delivered != 300 || a.Used() != 0 {
		t.Fatalf("%+v, %d bytes still used", res, a.Used())
	}
}
