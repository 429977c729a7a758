package plugin

import (
	"runtime"
	"testing"
	"time"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/sender"
	"github.com/gokafka/gokafka/test/benchdata"
	"github.com/gokafka/gokafka/test/fixture"
)

// instantProducer completes every batch as soon as it is produced, without
// allocating: Poll wakes on the first produced batch. It stands in for
// librdkafka so that benchmarks and allocation counts see the plugin's own
// work only.
type instantProducer struct {
	ch                   chan *accumulator.Batch
	kick                 chan struct{}
	stop                 chan struct{} // closed by Interrupt
	pollTimer, waitTimer *time.Timer   // Poll's (the poll loop's) and Wait's (one flush at a time)
}

func newInstantProducer() *instantProducer {
	return &instantProducer{ch: make(chan *accumulator.Batch, 1<<16), kick: make(chan struct{}, 1), stop: make(chan struct{})}
}

func (p *instantProducer) Wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *instantProducer) Interrupt() { close(p.stop) }

func (p *instantProducer) Produce(b *accumulator.Batch) { p.ch <- b }

func (p *instantProducer) Poll(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	return p.receive(&p.pollTimer, p.stop, timeout, dst)
}

func (p *instantProducer) Wait(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	return p.receive(&p.waitTimer, p.kick, timeout, dst)
}

// receive waits up to timeout, or until kicked (or stopped), for a produced batch and
// completes it and every other one produced.
func (p *instantProducer) receive(timer **time.Timer, kick chan struct{}, timeout time.Duration, dst []sender.Completion) []sender.Completion {
	if *timer == nil {
		*timer = time.NewTimer(timeout)
	} else {
		(*timer).Reset(timeout)
	}
	select {
	case b := <-p.ch:
		dst = append(dst, sender.Completion{Batch: b})
	case <-(*timer).C:
		return dst
	case <-kick:
		return dst
	}
	for {
		select {
		case b := <-p.ch:
			dst = append(dst, sender.Completion{Batch: b})
		default:
			return dst
		}
	}
}

func (p *instantProducer) Close() ([]sender.Completion, []*accumulator.Batch) { return nil, nil }

func (p *instantProducer) Fatal() error { return nil }

// benchInstance is an instance with the default options (JSON,
// @timestamp iso8601_ns, 1 MiB batches, 64 MiB Buffer_Memory) but keys
// over instant producers, logging nowhere.
func benchInstance(tb testing.TB, keys ...string) *Instance {
	tb.Helper()
	g := conf.MapGetter{"Brokers": "unused:1"}
	for i := 0; i+1 < len(keys); i += 2 {
		g[keys[i]] = keys[i+1]
	}
	cfg, err := conf.Load(g, nil)
	if err != nil {
		tb.Fatal(err)
	}
	in, err := New(cfg, func() (sender.Producer, error) { return newInstantProducer(), nil }, fixture.GoAllocator{}, new(Stats), func(int, string) {})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(in.Exit)
	return in
}

// reportPerRecord reports ns, allocations and bytes allocated per record; the
// allocations are the whole process's (flushing goroutines, send and poll
// loops) since start.
func reportPerRecord(b *testing.B, records int, start *runtime.MemStats) {
	var end runtime.MemStats
	runtime.ReadMemStats(&end)
	n := float64(b.N) * float64(records)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64(end.Mallocs-start.Mallocs)/n, "allocs/record")
	b.ReportMetric(float64(end.TotalAlloc-start.TotalAlloc)/n, "B/record")
}

// BenchmarkFlush is the whole flush path, one chunk of 1000 generated docker
// container log records per op: decode, JSON encode, stage, Append, the
// sender's Drain and Produce, Complete, and the flush's wake-up, with a
// producer that completes batches at once. serial is Workers 0 (one flush at
// a time), batch-mode the same with Message_Mode batch; parallel runs
// GOMAXPROCS flushes at once, as Workers N does.
func BenchmarkFlush(b *testing.B) {
	const n = 1000
	data := benchdata.Chunk(b, n)
	b.Run("serial", func(b *testing.B) { benchFlushSerial(b, data, n) })
	b.Run("batch-mode", func(b *testing.B) { benchFlushSerial(b, data, n, "Message_Mode", "batch") })
	b.Run("parallel", func(b *testing.B) {
		in := benchInstance(b)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		var start runtime.MemStats
		runtime.ReadMemStats(&start)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if got := in.Flush(data, "bench"); got != OK {
					b.Errorf("Flush = %d", got)
					return
				}
			}
		})
		reportPerRecord(b, n, &start)
	})
}

// BenchmarkFlushSmallChunks is the same with chunks of 10 records, where the
// per-flush costs (waiter, timers, wake-ups, log formatting) dominate.
func BenchmarkFlushSmallChunks(b *testing.B) {
	const n = 10
	benchFlushSerial(b, benchdata.Chunk(b, n), n)
}

// benchFlushSerial flushes data, a chunk of n records, one flush at a time,
// with the options keys.
func benchFlushSerial(b *testing.B, data []byte, n int, keys ...string) {
	in := benchInstance(b, keys...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var start runtime.MemStats
	runtime.ReadMemStats(&start)
	for b.Loop() {
		if got := in.Flush(data, "bench"); got != OK {
			b.Fatalf("Flush = %d", got)
		}
	}
	reportPerRecord(b, n, &start)
}
