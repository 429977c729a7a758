package main

import (
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/plugin"
	"github.com/gokafka/gokafka/sender"
	"github.com/gokafka/gokafka/test/fixture"
)

// idleProducer never gets a batch: the tests here send nothing.
type idleProducer struct{}

func (idleProducer) Produce(*accumulator.Batch) {}
func (idleProducer) Poll(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	time.Sleep(time.Millisecond)
	return dst
}
func (p idleProducer) Wait(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	return p.Poll(timeout, dst)
}
func (idleProducer) Wake()                                              {}
func (idleProducer) Interrupt()                                         {}
func (idleProducer) Close() ([]sender.Completion, []*accumulator.Batch) { return nil, nil }
func (idleProducer) Fatal() error                                       { return nil }

// TestExitOnce: ExitCtx calls for one context, even at the same time, stop
// its instance once and all return FLB_OK.
func TestExitOnce(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3000 { // Load then Delete lost this race within a few hundred rounds
		var mu sync.Mutex
		var logged []string
		log := func(level int, msg string) {
			mu.Lock()
			defer mu.Unlock()
			logged = append(logged, msg)
		}
		in, err := plugin.New(cfg, func() (sender.Producer, error) { return idleProducer{}, nil }, fixture.GoAllocator{}, new(plugin.Stats), log)
		if err != nil {
			t.Fatal(err)
		}
		contexts.Store(uintptr(0), &running{in: in}) // the nil context: C.free(nil) does nothing
		start, rets := make(chan struct{}), make(chan int, 8)
		for range cap(rets) {
			go func() {
				<-start
				rets <- FLBPluginExitCtx(nil)
			}()
		}
		close(start)
		for range cap(rets) {
			if ret := <-rets; ret != 1 {
				t.Fatalf("round %d: ExitCtx = %d; log: %q", round, ret, logged)
			}
		}
	}
}

// heldProducer acknowledges the batches it was given once released.
type heldProducer struct {
	idleProducer
	mu       sync.Mutex
	released bool
	held     []sender.Completion
}

func (p *heldProducer) Produce(b *accumulator.Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = append(p.held, sender.Completion{Batch: b})
}

func (p *heldProducer) Poll(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	time.Sleep(time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		dst, p.held = append(dst, p.held...), nil
	}
	return dst
}

func (p *heldProducer) Wait(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	return p.Poll(timeout, dst)
}

// TestMetricsStopAfterExit: the metrics' final totals, taken when they
// stop, include what Kafka acknowledged while Exit waited.
func TestMetricsStopAfterExit(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1", "Flush_Timeout": "200ms", "Max_Block": "100ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prod := &heldProducer{}
	in, err := plugin.New(cfg, func() (sender.Producer, error) { return prod, nil }, fixture.GoAllocator{}, new(plugin.Stats), func(int, string) {})
	if err != nil {
		t.Fatal(err)
	}
	recs := []fixture.Record{{Body: []fixture.KV{{Key: "log", Value: "a"}}}, {Body: []fixture.KV{{Key: "log", Value: "b"}}}}
	if ret := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0], "t"); ret != plugin.Retry {
		t.Fatalf("Flush = %d, want Retry", ret)
	}
	var final map[string]int64
	r := &running{in: in, stopMetrics: func() { final = in.DeliveredByTopic() }}
	time.AfterFunc(50*time.Millisecond, func() { prod.mu.Lock(); prod.released = true; prod.mu.Unlock() })
	r.stop()
	if final["fluent-bit"] != 2 {
		t.Fatalf("metrics stopped with %v delivered, want the 2 records acknowledged during Exit", final)
	}
}

// TestFlushUnknownContext: a chunk for a context with no instance is
// handed back for a retry, and stderr says so.
func TestFlushUnknownContext(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	recs := []fixture.Record{{Body: []fixture.KV{{Key: "log", Value: "a"}}}, {Body: []fixture.KV{{Key: "log", Value: "b"}}}}
	ret := flush(nil, fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0], "app.logs")
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	if ret != 2 || !strings.Contains(string(out), "tag app.logs: chunk of 2 records not sent: flushed to an instance that is not running") {
		t.Fatalf("flush = %d, stderr %q", ret, out)
	}
}

// TestWarnReloadWithWorkers: with Hot_Reload on, an instance warns once, at
// its first flush off Init's thread (a worker's); on Init's thread (Workers
// 0), or with Hot_Reload off, it says nothing.
func TestWarnReloadWithWorkers(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t.Cleanup(func() { hotReload.Store(false) })
	for _, tc := range []struct {
		name       string
		hotReload  bool
		initThread int
		want       int
	}{
		{"worker thread", true, -1, 1},
		{"Init's thread", true, syscall.Gettid(), 0},
		{"Hot_Reload off", false, -1, 0},
	} {
		var warnings atomic.Int32
		log := func(level int, msg string) {
			if level == plugin.LevelWarn && strings.HasPrefix(msg, "Hot_Reload is on") {
				warnings.Add(1)
			}
		}
		cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		in, err := plugin.New(cfg, func() (sender.Producer, error) { return idleProducer{}, nil }, fixture.GoAllocator{}, new(plugin.Stats), log)
		if err != nil {
			t.Fatal(err)
		}
		hotReload.Store(tc.hotReload)
		r := &running{in: in, initThread: tc.initThread}
		for range 3 {
			r.warnReloadWithWorkers()
		}
		in.Exit()
		if n := int(warnings.Load()); n != tc.want {
			t.Errorf("%s: %d warnings, want %d", tc.name, n, tc.want)
		}
	}
}
