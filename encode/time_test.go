package encode

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gokafka/gokafka/chunk"
	"github.com/tinylib/msgp/msgp"
)

// TestISO8601Random checks both fraction widths against time.Time's
// formatting over all of int64 (years 1677 to 2262), after other bytes in
// dst.
func TestISO8601Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		ns := int64(r.Uint64())
		if r.IntN(4) == 0 {
			ns -= ns % 1e9 // whole seconds: zero fractions
		}
		tm := time.Unix(0, ns).UTC()
		for digits, layout := range map[int]string{6: "2006-01-02T15:04:05.000000Z", 9: "2006-01-02T15:04:05.000000000Z"} {
			if got, want := string(AppendISO8601([]byte("x"), ns, digits)), "x"+tm.Format(layout); got != want {
				t.Fatalf("%d, %d digits: got %s, want %s", ns, digits, got, want)
			}
		}
	}
}

// TestTimestampFormatsOtherOutputs: the time in msgpack and logfmt, for
// the formats TestTimestampFormats checks in JSON only; iso8601_ns is
// Timestamp_Format's default.
func TestTimestampFormatsOtherOutputs(t *testing.T) {
	body := pack(nil, obj{{"log", "x"}})
	for _, tc := range []struct {
		format string
		lfmt   string
		mp     any
	}{
		{"iso8601_ns", "2026-11-22T10:00:01.123456789Z", "2026-11-22T10:00:01.123456789Z"},
		{"iso8601", "2026-11-22T10:00:01.123456Z", "2026-11-22T10:00:01.123456Z"},
		{"double", "1795341601.123456789", float64(ts) / 1e9},
		{"epoch_ms", "1795341601123", int64(1795341601123)},
		{"epoch_ns", "1795341601123456789", int64(1795341601123456789)},
	} {
		e, err := New(Options{Format: "logfmt", TimestampKey: "ts", TimestampFormat: tc.format})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := e.Append(nil, &chunk.Record{Time: ts, Body: body}, ""); err != nil || string(got) != "log=x ts="+tc.lfmt {
			t.Errorf("%s logfmt: got %s (%v), want ts=%s", tc.format, got, err, tc.lfmt)
		}
		e, _ = New(Options{Format: "msgpack", TimestampKey: "ts", TimestampFormat: tc.format})
		got, err := e.Append(nil, &chunk.Record{Time: ts, Body: body}, "")
		if err != nil {
			t.Fatal(err)
		}
		if v, _, err := msgp.ReadMapStrIntfBytes(got, nil); err != nil || v["ts"] != tc.mp {
			t.Errorf("%s msgpack: got %#v (%v), want %#v", tc.format, v["ts"], err, tc.mp)
		}
	}
}

// TestUnknownTimestampFormat: New refuses a Timestamp_Format it does not
// know, rather than writing the time in another.
func TestUnknownTimestampFormat(t *testing.T) {
	for _, format := range []string{"json", "msgpack", "logfmt"} {
		if _, err := New(Options{Format: format, TimestampKey: "ts", TimestampFormat: "rfc822"}); err == nil {
			t.Errorf("%s: Timestamp_Format rfc822 accepted", format)
		}
	}
}
