package encode

import (
	"testing"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/test/benchdata"
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
// each output format, with the default @timestamp (iso8601_ns).
func BenchmarkEncode(b *testing.B) {
	recs := records(b, 1000)
	for _, format := range []string{"json", "msgpack"} {
		b.Run(format, func(b *testing.B) {
			e := mustEncoder(b, format, "@timestamp", "iso8601_ns")
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
// the accumulator: chunk.Reader.Next then a JSON Append (default
// @timestamp, iso8601_ns) into one growing buffer, as plugin.Flush does.
// One op is one record.
func BenchmarkDecodeEncodeJSON(b *testing.B) {
	data := benchdata.Chunk(b, 1000)
	e := mustEncoder(b, "json", "@timestamp", "iso8601_ns")
	var r chunk.Reader
	r.Reset(data)
	var rec chunk.Record
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		more, _ := r.Next(&rec)
		if !more {
			r.Reset(data)
			buf = buf[:0]
			if more, err := r.Next(&rec); !more {
				b.Fatal(err)
			}
		}
		buf, _ = e.Append(buf, &rec, "bench")
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

// BenchmarkDecodeEncodeJSONOpen is BenchmarkDecodeEncodeJSON with the one
// walk of each body that chunk.Reader.NextOpen and AppendOpen allow: the
// encoder finds where the body ends for the reader.
func BenchmarkDecodeEncodeJSONOpen(b *testing.B) {
	data := benchdata.Chunk(b, 1000)
	e := mustEncoder(b, "json", "@timestamp", "iso8601_ns")
	var r chunk.Reader
	r.Reset(data)
	var rec chunk.Record
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		more, _ := r.NextOpen(&rec)
		if !more {
			r.Reset(data)
			buf = buf[:0]
			if more, err := r.NextOpen(&rec); !more {
				b.Fatal(err)
			}
		}
		var n int
		buf, n, _ = e.AppendOpen(buf, &rec, "bench")
		r.EndBody(&rec, n)
	}
}
