package encode

import (
	"testing"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/ra"
	"github.com/gokafka/gokafka/test/benchdata"
	"github.com/hamba/avro/v2"
	"github.com/tinylib/msgp/msgp"
)

// records decodes a chunk of n generated docker container log records.
func records(b *testing.B, n int) []chunk.Record {
	b.Helper()
	var recs []chunk.Record
	r := chunk.NewReader(benchdata.Chunk(b, n))
	for {
		var rec chunk.Record
		more, err := r.Next(&rec)
		if !more {
			if err != nil {
				b.Fatal(err)
			}
			return recs
		}
		recs = append(recs, rec)
	}
}

// BenchmarkEncode encodes one generated container log record per op, in
// each output format, with the default @timestamp (iso8601_ns; GELF and
// OTLP have their own timestamp; Avro's schema has the docker fields and a
// timestamp-micros time).
func BenchmarkEncode(b *testing.B) {
	recs := records(b, 1000)
	for _, format := range []string{"json", "msgpack", "logfmt", "gelf", "otlp_proto", "otlp_json", "avro"} {
		b.Run(format, func(b *testing.B) {
			ts := "@timestamp"
			if format == "avro" {
				ts = "ts"
			}
			e, err := New(Options{Format: format, TimestampKey: ts, TimestampFormat: "iso8601_ns",
				Avro: Avro{Schema: avro.MustParse(`{"type":"record","name":"C","fields":[{"name":"log","type":"string"},
					{"name":"stream","type":{"type":"enum","name":"S","symbols":["stdout","stderr"]}},{"name":"time","type":"string"},
					{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}}]}`)},
				GELF: GELF{ShortMessage: ra.Path{{Key: "log"}}, Host: ra.Path{{Key: "host"}}, Level: ra.Path{{Key: "level"}}, Hostname: "node-1"},
				OTLP: OTLP{BodyKeys: []string{"log", "message"}, BodyAttributes: true}})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 4096)
			var out int
			for _, rec := range recs {
				v, err := e.Append(buf[:0], &rec, "bench")
				if err != nil {
					b.Fatal(err)
				}
				out += len(v)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				buf, _ = e.Append(buf[:0], &recs[i], "bench")
				if i++; i == len(recs) {
					i = 0
				}
			}
			b.ReportMetric(float64(out)/float64(len(recs)), "B/value")
		})
	}
}

// BenchmarkDecodeEncodeJSON is the flush path's per-record CPU work before
// the accumulator: decoding a record from a chunk, then a JSON Append
// (default @timestamp, iso8601_ns) into one growing buffer. "open" is what
// plugin.Flush does, one walk of each body (chunk.Reader.NextOpen, the
// encoder finding where the body ends); "separate" is chunk.Reader.Next,
// which walks each body, then Append. One op is one record.
func BenchmarkDecodeEncodeJSON(b *testing.B) {
	for _, mode := range []struct {
		name string
		open bool
	}{{"open", true}, {"separate", false}} {
		open := mode.open
		b.Run(mode.name, func(b *testing.B) {
			data := benchdata.Chunk(b, 1000)
			e := mustEncoder(b, "json", "@timestamp", "iso8601_ns")
			var r chunk.Reader
			r.Reset(data)
			next := r.Next
			if open {
				next = r.NextOpen
			}
			var rec chunk.Record
			buf := make([]byte, 0, 1<<20)
			b.ReportAllocs()
			for b.Loop() {
				if more, _ := next(&rec); !more {
					r.Reset(data)
					buf = buf[:0]
					if more, err := next(&rec); !more {
						b.Fatal(err)
					}
				}
				if open {
					var n int
					buf, n, _ = e.AppendOpen(buf, &rec, "bench")
					r.EndBody(&rec, n)
				} else {
					buf, _ = e.Append(buf, &rec, "bench")
				}
			}
		})
	}
}

// BenchmarkTimestamp is the time field alone.
func BenchmarkTimestamp(b *testing.B) {
	e := mustEncoder(b, "json", "@timestamp", "iso8601_ns")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = e.appendTime(buf[:0], ts)
	}
}

// BenchmarkNestedCollidingKeys: 200 nested maps whose keys share the
// duplicate filter's bits (same length, first and last bytes) around a
// large array: the quick writing compares keys, and walks no value again.
func BenchmarkNestedCollidingKeys(b *testing.B) {
	v := msgp.AppendArrayHeader(nil, 20000)
	for range 20000 {
		v = msgp.AppendInt(msgp.AppendInt(msgp.AppendArrayHeader(v, 2), 1), 2)
	}
	for range 200 {
		m := append(msgp.AppendString(msgp.AppendMapHeader(nil, 6), "child"), v...)
		for _, k := range []string{"a1b", "a2b", "a3b", "a4b", "a5b"} {
			m = msgp.AppendInt(msgp.AppendString(m, k), 1)
		}
		v = m
	}
	b.SetBytes(int64(len(v)))
	var dst []byte
	for b.Loop() {
		var err error
		if dst, err = AppendJSON(dst[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}
