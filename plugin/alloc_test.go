//go:build !race

// The race detector allocates on its own: counts are only meaningful without it.

package plugin

import (
	"math"
	"testing"
	"time"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/test/benchdata"
	"github.com/gokafka/gokafka/test/fixture"
)

// The flush path must not allocate per record in steady state: for each
// stage, the allocations of one call over a chunk of 1000 generated docker
// container log records, divided by 1000, must round to 0, and a chunk of
// 2000 records must cost no more allocations than one of 1000 (the marginal
// cost of a record is 0; per-flush allocations are allowed). Counts, not
// times: these hold on any machine.
const allocRuns = 50

// marginalSlack is how many more allocations a 2000-record call may make
// than a 1000-record one before a per-record allocation is assumed.
const marginalSlack = 2

func checkAllocs(t *testing.T, what string, run func(data []byte)) {
	t.Helper()
	small, large := benchdata.Chunk(t, 1000), benchdata.Chunk(t, 2000)
	run(large) // warm up: pools, buffers and batches at their steady-state sizes
	run(small)
	a1 := testing.AllocsPerRun(allocRuns, func() { run(small) })
	a2 := testing.AllocsPerRun(allocRuns, func() { run(large) })
	t.Logf("%s: %.0f allocations per 1000-record call, %.0f per 2000-record call", what, a1, a2)
	if perRecord := a1 / 1000; math.Round(perRecord) != 0 {
		t.Errorf("%s: %.3f allocations per record, want 0", what, perRecord)
	}
	if a2-a1 > marginalSlack {
		t.Errorf("%s: 1000 more records cost %.0f more allocations, want 0 per record", what, a2-a1)
	}
}

// TestAllocsDecodeEncodeStage is the per-record loop of Flush before the
// accumulator: chunk.Reader.Next, the instance's encoder (JSON, @timestamp
// iso8601_ns), Staged.Add.
func TestAllocsDecodeEncodeStage(t *testing.T) {
	in := benchInstance(t)
	var r chunk.Reader
	var rec chunk.Record
	var st accumulator.Staged
	checkAllocs(t, "decode+encode+stage", func(data []byte) {
		r.Reset(data)
		st.Reset()
		for {
			more, err := r.Next(&rec)
			if !more {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			start := len(st.Buf)
			if st.Buf, err = in.enc.Load().Append(st.Buf, &rec, "bench"); err != nil {
				t.Fatal(err)
			}
			st.Add(len(st.Recs), start, len(st.Buf), len(st.Buf), false, rec.Time/1e6)
		}
	})
}

// TestAllocsAccumulator is the accumulator's share: Append of a flush's
// staged records, Drain, Complete of every batch, Wait.
func TestAllocsAccumulator(t *testing.T) {
	in := benchInstance(t)
	acc := accumulator.New(1<<20, 64<<20, 0, fixture.GoAllocator{})
	far := time.Now().Add(time.Hour)
	staged := map[int]*accumulator.Staged{}
	var ready []*accumulator.Batch
	checkAllocs(t, "accumulator", func(data []byte) {
		st := staged[len(data)]
		if st == nil { // staged once per chunk, outside the count
			st = &accumulator.Staged{}
			r := chunk.NewReader(data)
			var rec chunk.Record
			for more, _ := r.Next(&rec); more; more, _ = r.Next(&rec) {
				start := len(st.Buf)
				st.Buf, _ = in.enc.Load().Append(st.Buf, &rec, "bench")
				st.Add(len(st.Recs), start, len(st.Buf), len(st.Buf), false, rec.Time/1e6)
			}
			staged[len(data)] = st
		}
		w := accumulator.NewWaiter(len(st.Recs))
		s := *st
		if n, err := acc.Append("logs", -1, 0, &s, w, far); err != nil || n != len(st.Recs) {
			t.Fatal(n, err)
		}
		ready, _ = acc.Drain(time.Now(), accumulator.AllLanes, ready[:0])
		for _, b := range ready {
			acc.Complete(b, nil)
		}
		if res, ok := acc.Wait(w, far, accumulator.Sleep); !ok || res.Delivered != len(st.Recs) {
			t.Fatalf("%+v %v", res, ok)
		}
	})
}

// TestAllocsFlush is the whole Flush with a producer that completes batches
// at once (the send and poll loops' allocations are counted too), in record
// and in batch mode.
func TestAllocsFlush(t *testing.T) {
	for _, mode := range []string{"record", "batch"} {
		t.Run(mode, func(t *testing.T) {
			in := benchInstance(t, "Message_Mode", mode)
			checkAllocs(t, "flush", func(data []byte) {
				if got := in.Flush(data, "bench"); got != OK {
					t.Fatalf("Flush = %d", got)
				}
			})
		})
	}
}
