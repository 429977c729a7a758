package accumulator

import (
	"runtime"
	"testing"
	"time"

	"github.com/gokafka/gokafka/test/benchdata"
	"github.com/gokafka/gokafka/test/fixture"
)

// perRecord reports ns, allocations and bytes allocated per record for a
// benchmark whose op handles records records; allocations are counted over
// the whole process (the benchmark's goroutine only, here).
type perRecord struct {
	b       *testing.B
	records int
	before  runtime.MemStats
}

func startPerRecord(b *testing.B, records int) *perRecord {
	p := &perRecord{b: b, records: records}
	runtime.ReadMemStats(&p.before)
	return p
}

func (p *perRecord) report() {
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	n := float64(p.b.N) * float64(p.records)
	p.b.ReportMetric(float64(p.b.Elapsed().Nanoseconds())/n, "ns/record")
	p.b.ReportMetric(float64(after.Mallocs-p.before.Mallocs)/n, "allocs/record")
	p.b.ReportMetric(float64(after.TotalAlloc-p.before.TotalAlloc)/n, "B/record")
}

// benchStaged stages n generated container log lines as values, without
// keys, as a flush does.
func benchStaged(b *testing.B, n int) *Staged {
	s := &Staged{}
	for i, v := range benchdata.Values(b, n) {
		start := len(s.Buf)
		s.Buf = append(s.Buf, v...)
		s.Add(i, start, len(s.Buf), len(s.Buf), false, int64(i))
	}
	return s
}

// BenchmarkAppendDrainComplete is the accumulator's share of one flush of
// 1000 records: Append into batches, Drain, Complete every batch, Wait. One
// op is one flush; see ns/record and allocs/record.
func BenchmarkAppendDrainComplete(b *testing.B) {
	const n = 1000
	s := benchStaged(b, n)
	a := New(1<<20, 64<<20, 0, fixture.GoAllocator{}) // linger 0: every batch is ready at once
	far := time.Now().Add(time.Hour)
	var ready []*Batch
	b.ReportAllocs()
	p := startPerRecord(b, n)
	for b.Loop() {
		w := NewWaiter(n)
		in := *s
		if k, err := a.Append("logs", -1, 0, &in, w, far); k != n || err != nil {
			b.Fatal(k, err)
		}
		ready, _ = a.Drain(time.Now(), AllLanes, ready[:0])
		for _, bt := range ready {
			a.Complete(bt, nil)
		}
		if res, ok := a.Wait(w, far, Sleep); !ok || res.Delivered != n {
			b.Fatalf("%+v %v", res, ok)
		}
	}
	p.report()
}

// BenchmarkAppend is Append alone, one record per op, into batches that are
// drained and completed whenever 1000 records went in.
func BenchmarkAppend(b *testing.B) {
	const n = 1000
	s := benchStaged(b, n)
	a := New(1<<20, 64<<20, 0, fixture.GoAllocator{})
	far := time.Now().Add(time.Hour)
	var ready []*Batch
	w := NewWaiter(n)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		one := Staged{Buf: s.Buf, Recs: s.Recs[i : i+1], Idx: s.Idx[i : i+1]}
		if k, err := a.Append("logs", -1, 0, &one, w, far); k != 1 || err != nil {
			b.Fatal(k, err)
		}
		if i++; i == n {
			i = 0
			ready, _ = a.Drain(time.Now(), AllLanes, ready[:0])
			for _, bt := range ready {
				a.Complete(bt, nil)
			}
			w.Delivered, w.Examples = 0, w.Examples[:0]
			clear(w.state)
		}
	}
}

// BenchmarkStagedAdd is the per-record bookkeeping of a flush after the
// encoder wrote the value.
func BenchmarkStagedAdd(b *testing.B) {
	s := &Staged{}
	v := make([]byte, 200)
	b.ReportAllocs()
	for b.Loop() {
		if len(s.Recs) == 1000 {
			s.Reset()
		}
		start := len(s.Buf)
		s.Buf = append(s.Buf, v...)
		s.Add(len(s.Recs), start, len(s.Buf), len(s.Buf), false, 1)
	}
}
