package chunk

import (
	"testing"

	"github.com/gokafka/gokafka/test/benchdata"
)

// BenchmarkNext decodes one record per op from a chunk of 1000 generated
// docker container log records (v2 layout), starting over at its end.
func BenchmarkNext(b *testing.B) {
	data := benchdata.Chunk(b, 1000)
	var r Reader
	r.Reset(data)
	var rec Record
	b.SetBytes(int64(len(data) / 1000))
	b.ReportAllocs()
	for b.Loop() {
		if more, _ := r.Next(&rec); !more {
			r.Reset(data)
			if more, err := r.Next(&rec); !more {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkChunk decodes a whole chunk of 1000 records per op and reports
// the cost per record.
func BenchmarkChunk(b *testing.B) {
	data := benchdata.Chunk(b, 1000)
	var r Reader
	var rec Record
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(data)
		n := 0
		for {
			more, err := r.Next(&rec)
			if !more {
				if err != nil {
					b.Fatal(err)
				}
				break
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("%d records", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/record")
}
