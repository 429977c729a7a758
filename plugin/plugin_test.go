package plugin

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/sender"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/logsink"
	"github.com/tinylib/msgp/msgp"
)

// fakeProducer acknowledges batches at once, failing the records whose value
// contains a marker: "retriable" or "permanent" (every record with refuse
// set); with hold set it never reports. It stands in for librdkafka in these
// unit tests only.
type fakeProducer struct {
	hold   bool
	refuse bool
	mu     sync.Mutex
	held   []sender.Completion
	done   []sender.Completion
	seen   map[string]bool // records containing "flaky" seen: they fail the first time
	sent   []string
	msgs   []message
	sizes  []int // of msgs: what librdkafka counts against message.max.bytes but a record's framing
}

// message is what the fake producer saw of one record.
type message struct {
	topic, value, key string
	headers           [][2]string
	timeMs            int64
}

// decodeHeaders reads accumulator.AppendHeader's layout.
func decodeHeaders(b []byte) [][2]string {
	var out [][2]string
	for len(b) >= 6 {
		n := int(b[0]) | int(b[1])<<8
		name := string(b[2 : 2+n])
		b = b[2+n:]
		v := int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24
		out = append(out, [2]string{name, string(b[4 : 4+v])})
		b = b[4+v:]
	}
	return out
}

func (p *fakeProducer) Produce(b *accumulator.Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var failures []accumulator.Failure
	for i, r := range b.Recs {
		v := string(b.Buf[r.Off : r.Off+r.Len])
		switch {
		case b.DeadLetter: // the dead-letter topic takes anything
			p.take(b, r)
		case strings.Contains(v, "retriable"):
			failures = append(failures, accumulator.Failure{Index: i, Err: -185, Reason: "Local: Message timed out"})
		case strings.Contains(v, "flaky") && !p.seen[v]:
			if p.seen == nil {
				p.seen = map[string]bool{}
			}
			p.seen[v] = true
			failures = append(failures, accumulator.Failure{Index: i, Err: -195, Reason: "Local: Broker transport failure"})
		case strings.Contains(v, "permanent") || p.refuse:
			failures = append(failures, accumulator.Failure{Index: i, Err: 10, Reason: "Broker: Message size too large", Permanent: true})
		default:
			p.take(b, r)
		}
	}
	c := sender.Completion{Batch: b, Failures: failures}
	if p.hold {
		p.held = append(p.held, c)
	} else {
		p.done = append(p.done, c)
	}
}

// topics lists the topics of the messages taken, sorted.
func (p *fakeProducer) topics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var topics []string
	for _, m := range p.msgs {
		topics = append(topics, m.topic)
	}
	sort.Strings(topics)
	return topics
}

// take records a message Kafka would acknowledge.
func (p *fakeProducer) take(b *accumulator.Batch, r accumulator.Rec) {
	v := string(b.Buf[r.Off : r.Off+r.Len])
	rest := b.Buf[r.Off+r.Len : r.Off+r.Size()]
	p.sent = append(p.sent, v)
	p.msgs = append(p.msgs, message{b.Topic, v, string(rest[:r.KeyLen]), decodeHeaders(rest[r.KeyLen:]), r.TimeMs})
	p.sizes = append(p.sizes, int(r.Size()))
}

// release reports the held batches and stops holding new ones.
func (p *fakeProducer) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = append(p.done, p.held...)
	p.held, p.hold = nil, false
}

func (p *fakeProducer) Poll(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	time.Sleep(time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	dst = append(dst, p.done...)
	p.done = p.done[:0]
	return dst
}

func (p *fakeProducer) Wait(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	return p.Poll(timeout, dst)
}

func (p *fakeProducer) Wake() {}

func (p *fakeProducer) Interrupt() {}

// Close returns the batches held as never reported on.
func (p *fakeProducer) Close() ([]sender.Completion, []*accumulator.Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var left []*accumulator.Batch
	for _, c := range p.held {
		left = append(left, c.Batch)
	}
	p.held = nil
	return nil, left
}

func (p *fakeProducer) Fatal() error { return nil }

// newInstance starts an instance over prod, logging to the sink returned,
// and exits it when the test ends.
func newInstance(t *testing.T, prod sender.Producer, keys conf.MapGetter) (*Instance, *logsink.Sink) {
	in, sink := startInstance(t, prod, keys)
	t.Cleanup(in.Exit)
	return in, sink
}

// startInstance starts an instance for a test that exits it itself.
func startInstance(t *testing.T, prod sender.Producer, keys conf.MapGetter) (*Instance, *logsink.Sink) {
	keys["Brokers"] = "unused:1"
	var props []string // librdkafka's, as the host reads them
	for k := range keys {
		if p, ok := strings.CutPrefix(k, conf.RdkafkaPrefix); ok {
			props = append(props, p)
		}
	}
	cfg, err := conf.Load(keys, props)
	if err != nil {
		t.Fatal(err)
	}
	sink := &logsink.Sink{}
	in, err := New(cfg, func() (sender.Producer, error) { return prod, nil }, fixture.GoAllocator{}, new(Stats), sink.Log)
	if err != nil {
		t.Fatal(err)
	}
	return in, sink
}

// TestStartAndStopLogs: settings that weaken delivery are logged at start,
// and the records Kafka acknowledged at the end.
func TestStartAndStopLogs(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1", "rdkafka.acks": "0"}, []string{"acks"})
	if err != nil {
		t.Fatal(err)
	}
	sink := &logsink.Sink{}
	in, err := New(cfg, func() (sender.Producer, error) { return &fakeProducer{}, nil }, fixture.GoAllocator{}, new(Stats), sink.Log)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Flush(chunkOf("a", "b"), "t"); got != OK {
		t.Fatalf("Flush = %d", got)
	}
	in.Exit()
	for _, want := range []string{
		fmt.Sprintf("%d rdkafka.acks 0: the broker confirms nothing", LevelWarn),
		fmt.Sprintf("%d stopped: Kafka acknowledged 2 records since Init (Exit waited 4s at most for acknowledgements)", LevelInfo),
	} {
		if !strings.Contains(sink.String(), want) {
			t.Errorf("log:\n%s\nwant a line starting %q", sink, want)
		}
	}
}

func chunkOf(msgs ...string) []byte {
	var recs []fixture.Record
	for _, m := range msgs {
		recs = append(recs, fixture.Record{Time: time.Unix(1700000000, 5), Body: []fixture.KV{{Key: "log", Value: m}}})
	}
	return fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0]
}

func TestFlushOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name string
		msgs []string
		want int
		sent int
		log  string
	}{
		{"all delivered", []string{"a", "b", "c"}, OK, 3, ""},
		{"retriable failure retries the chunk", []string{"a", "retriable", "c"}, Retry, 2, "1 of 3 records not delivered for now"},
		{"permanent failure drops only that record", []string{"a", "permanent", "c"}, OK, 2, "record of 19 bytes for topic fluent-bit dropped: Broker: Message size too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prod := &fakeProducer{}
			in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off"})
			if got := in.Flush(chunkOf(tc.msgs...), "tag"); got != tc.want {
				t.Fatalf("Flush = %d, want %d; log:\n%s", got, tc.want, sink)
			}
			if len(prod.sent) != tc.sent || !strings.Contains(sink.String(), tc.log) {
				t.Fatalf("sent %d records (want %d); log:\n%s", len(prod.sent), tc.sent, sink)
			}
		})
	}
}

func TestFlushTimeout(t *testing.T) {
	in, sink := newInstance(t, &fakeProducer{hold: true}, conf.MapGetter{"Flush_Timeout": "200ms", "Max_Block": "100ms"})
	start := time.Now()
	if got := in.Flush(chunkOf("a", "b"), "tag"); got != Retry {
		t.Fatalf("Flush = %d, want Retry", got)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("flush took %v", elapsed)
	}
	if !strings.Contains(sink.String(), "flush timed out after 200ms: 0 of 2 records acknowledged") {
		t.Fatalf("log:\n%s", sink)
	}
}

// TestStalledKafkaShortensFlushes: after a flush waited Flush_Timeout with
// nothing acknowledged, flushes wait at most stalledWait, until Kafka
// acknowledges a record again.
func TestStalledKafkaShortensFlushes(t *testing.T) {
	prod := &fakeProducer{hold: true}
	in, sink := newInstance(t, prod, conf.MapGetter{"Flush_Timeout": "1500ms", "Max_Block": "100ms"})
	for _, msgs := range [][]string{{"a", "b"}, {"c"}} {
		if got := in.Flush(chunkOf(msgs...), "t"); got != Retry {
			t.Fatalf("Flush = %d, want Retry", got)
		}
	}
	for _, line := range []string{
		`flush timed out after 1\.5s: 0 of 2 records acknowledged`,
		`Kafka acknowledged nothing for (1\.[5-9]|[2-9](\.[0-9])?)s: flushes wait at most 250ms until it does`, // measured, rounded
		`flush timed out after 250ms: 0 of 1 records acknowledged`,
	} {
		if !regexp.MustCompile(line).MatchString(sink.String()) {
			t.Fatalf("log:\n%s\nwant %q", sink, line)
		}
	}
	prod.release()
	if got := in.Flush(chunkOf("c"), "t"); got != OK { // the retry: waits for c
		t.Fatalf("retry = %d; log:\n%s", got, sink)
	}
	if got := in.Flush(chunkOf("d"), "t"); got != OK || in.acc.Acknowledged() != 4 || in.stalledAt.Load() != -1 ||
		!strings.Contains(sink.String(), "Kafka acknowledges records again: flushes wait up to Flush_Timeout (1.5s)") {
		t.Fatalf("Flush = %d, %d acknowledged, stalled at %d; log:\n%s", got, in.acc.Acknowledged(), in.stalledAt.Load(), sink)
	}
}

// fillMemory starts a flush of a record of 600 KiB, which prod holds
// unacknowledged, and returns once it was produced: with a Buffer_Memory of
// 1M, the next such record finds the memory full. The flush's code comes on
// the channel returned, after prod.release.
func fillMemory(t *testing.T, in *Instance, prod *fakeProducer) chan int {
	t.Helper()
	filling := make(chan int)
	go func() { filling <- in.Flush(chunkOf(strings.Repeat("x", 600<<10)), "t") }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		prod.mu.Lock()
		held := len(prod.held)
		prod.mu.Unlock()
		if held > 0 {
			return filling
		}
		if time.Now().After(deadline) {
			t.Fatal("the large record was not produced")
		}
	}
}

// TestStalledKafkaNotedWhileMemoryIsFull: a flush that waited Max_Block for
// memory in vain, with nothing acknowledged meanwhile, notes the stall too,
// and counts every record it did not buffer, those of later topics too.
func TestStalledKafkaNotedWhileMemoryIsFull(t *testing.T) {
	prod := &fakeProducer{hold: true}
	in, sink := newInstance(t, prod, conf.MapGetter{"Flush_Timeout": "2s", "Max_Block": "300ms", "Buffer_Memory": "1M", "Batch_Size": "1K",
		"Topics": "t,u", "Topic_Key": "$topic"})
	filling := fillMemory(t, in, prod)
	var two []fixture.Record
	for _, topic := range []string{"t", "u"} {
		two = append(two, fixture.Record{Body: []fixture.KV{{Key: "topic", Value: topic}, {Key: "log", Value: strings.Repeat("y", 600<<10)}}})
	}
	if got := in.Flush(fixture.EncodeChunks(two, fixture.ChunkOptions{Layout: 2, ChunkBytes: 4 << 20})[0], "t"); got != Retry {
		t.Fatalf("Flush = %d, want Retry", got)
	}
	if in.stalledAt.Load() != 0 || !strings.Contains(sink.String(), "buffer memory full") || !strings.Contains(sink.String(), "2 of 2 records not buffered") {
		t.Errorf("stalled at %d; log:\n%s", in.stalledAt.Load(), sink)
	}
	<-filling
}

// TestStalledKafkaShortensExit: while Kafka acknowledges nothing, Exit
// waits stalledWait at most for what is buffered.
func TestStalledKafkaShortensExit(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1", "Flush_Timeout": "1s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &logsink.Sink{}
	in, err := New(cfg, func() (sender.Producer, error) { return &fakeProducer{hold: true}, nil }, fixture.GoAllocator{}, new(Stats), sink.Log)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Flush(chunkOf("a"), "t"); got != Retry {
		t.Fatalf("Flush = %d, want Retry", got)
	}
	in.Exit()
	for _, want := range []string{"stopped: Kafka acknowledged 0 records since Init (Exit waited 250ms at most for acknowledgements)",
		"1 records not acknowledged were still buffered or in the producer's queue when it stopped",
		"1 records of 1 chunk handed back for a retry that did not come (Retry_Limit reached, or this shutdown) were not delivered"} {
		if !strings.Contains(sink.String(), want) {
			t.Fatalf("log:\n%s\nwant %q", sink, want)
		}
	}
}

// TestUndeliveredLoggedAtExit: records of a chunk handed back for a retry
// that Kafka failed for now after the flush returned, and no retry came,
// are logged as not delivered at Exit.
func TestUndeliveredLoggedAtExit(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1", "Flush_Timeout": "200ms", "Max_Block": "100ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prod, sink, stats := &fakeProducer{hold: true}, &logsink.Sink{}, new(Stats)
	in, err := New(cfg, func() (sender.Producer, error) { return prod, nil }, fixture.GoAllocator{}, stats, sink.Log)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Flush(chunkOf("a", "retriable b", "retriable c"), "t"); got != Retry {
		t.Fatalf("Flush = %d, want Retry", got)
	}
	prod.release()
	in.Exit()
	log := sink.String()
	if fmt.Sprint(in.DeliveredByTopic()) != "map[fluent-bit:1]" || stats.Failed.Load() != 0 ||
		!strings.Contains(log, "2 records of 1 chunk handed back for a retry that did not come (Retry_Limit reached, or this shutdown) were not delivered") ||
		strings.Contains(log, "still in the producer's queue") {
		t.Errorf("delivered %v, failed %d; log:\n%s", in.DeliveredByTopic(), stats.Failed.Load(), log)
	}
}

// TestLateOutcomesCountedAtExit: what Kafka says of a chunk after its flush
// returned Retry, when no retry comes (Retry_Limit, or shutdown), is counted
// at Exit, and a loss logged: a record refused for good is dropped, or
// dead-lettered.
func TestLateOutcomesCountedAtExit(t *testing.T) {
	for _, dlq := range []string{"", "dead"} {
		keys := conf.MapGetter{"Brokers": "unused:1", "Timestamp_Key": "off", "Flush_Timeout": "500ms", "Max_Block": "100ms"}
		if dlq != "" {
			keys["DLQ_Topic"] = dlq
		}
		cfg, err := conf.Load(keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		prod, sink, stats := &fakeProducer{hold: true}, &logsink.Sink{}, new(Stats)
		in, err := New(cfg, func() (sender.Producer, error) { return prod, nil }, fixture.GoAllocator{}, stats, sink.Log)
		if err != nil {
			t.Fatal(err)
		}
		if got := in.Flush(chunkOf("a", "permanent b"), "t"); got != Retry {
			t.Fatalf("Flush = %d, want Retry", got)
		}
		prod.release()
		in.Exit()
		log := sink.String()
		logged := strings.Contains(log, "tag t: 1 of 2 records can never be delivered") &&
			strings.Contains(log, "record of 21 bytes for topic fluent-bit dropped: Broker: Message size too large")
		wantDelivered := "map[fluent-bit:1]"
		if dlq != "" { // counted, and no line: only losses get one at Exit
			logged = !strings.Contains(log, "were not delivered") && !strings.Contains(log, "sent to the dead-letter topic")
			wantDelivered = "map[dead:1 fluent-bit:1]"
		}
		if fmt.Sprint(in.DeliveredByTopic()) != wantDelivered || stats.Failed.Load()+stats.DeadLettered.Load() != 1 || stats.DeadLettered.Load() == 1 != (dlq != "") || !logged {
			t.Errorf("DLQ_Topic %q: delivered %v, failed %d, dead-lettered %d; log:\n%s", dlq, in.DeliveredByTopic(), stats.Failed.Load(), stats.DeadLettered.Load(), sink)
		}
	}
}

func TestMalformedChunk(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{})
	data := append(chunkOf("a", "b"), 0x92, 0xc1)
	if got := in.Flush(data, "tag"); got != Error {
		t.Fatalf("Flush = %d, want Error", got)
	}
	if len(prod.sent) != 2 || !strings.Contains(sink.String(), "malformed chunk at byte") {
		t.Fatalf("sent %d; log:\n%s", len(prod.sent), sink)
	}
}

// TestMalformedChunkRetriesRecordsBeforeTheFault: records before the fault
// that failed for now are retried; the chunk is dropped once they are all
// settled.
func TestMalformedChunkRetriesRecordsBeforeTheFault(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off"})
	data := append(chunkOf("a", "flaky b", "permanent c"), 0x92, 0xc1)
	if got := in.Flush(data, "t"); got != Retry {
		t.Fatalf("Flush = %d, want Retry; log:\n%s", got, sink)
	}
	if !strings.Contains(sink.String(), "the 3 records before it were sent: 1 delivered, 0 dead-lettered, 1 dropped, 1 to send again; chunk will be retried for them, then dropped") {
		t.Fatalf("log:\n%s", sink)
	}
	if got := in.Flush(data, "t"); got != Error {
		t.Fatalf("retry: Flush = %d, want Error; log:\n%s", got, sink)
	}
	if fmt.Sprint(prod.sent) != `[{"log":"a"} {"log":"flaky b"}]` || fmt.Sprint(in.DeliveredByTopic()) != "map[fluent-bit:2]" || in.Stats.Failed.Load() != 1 ||
		!strings.Contains(sink.String(), "the 3 records before it were sent: 2 delivered, 0 dead-lettered, 1 dropped, 0 to send again; the chunk is dropped") {
		t.Fatalf("sent %q, delivered %v, failed %d; log:\n%s", prod.sent, in.DeliveredByTopic(), in.Stats.Failed.Load(), sink)
	}
}

// TestUnreadableTimestamp: a record whose timestamp cannot be read is
// dropped, logged and counted; the rest of the chunk is delivered.
func TestUnreadableTimestamp(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off"})
	data := msgp.AppendArrayHeader(chunkOf("a"), 2)
	data = msgp.AppendInt64(data, 1700000000000) // milliseconds
	data = msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(data, 1), "log"), "ms")
	data = append(data, chunkOf("c")...)
	if got := in.Flush(data, "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if fmt.Sprint(prod.sent) != `[{"log":"a"} {"log":"c"}]` || in.Stats.Failed.Load() != 1 ||
		!strings.Contains(sink.String(), "tag t: 1 of 3 records have a timestamp that cannot be read and were dropped; the first, record 1: timestamp 1700000000000 s out of range") ||
		strings.Contains(sink.String(), "can never be delivered") { // Kafka refused nothing
		t.Fatalf("sent %q, failed %d; log:\n%s", prod.sent, in.Stats.Failed.Load(), sink)
	}
}

// TestRefusedCountOnRetry: the records Kafka refuses for good are counted
// in the log also when the chunk is retried for others; its retry does not
// count them again.
func TestRefusedCountOnRetry(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off"})
	var msgs []string
	for i := range 15 {
		msgs = append(msgs, fmt.Sprintf("permanent %d", i))
	}
	data := chunkOf(append(msgs, "flaky x", "ok")...)
	if got := in.Flush(data, "t"); got != Retry {
		t.Fatalf("Flush = %d, want Retry; log:\n%s", got, sink)
	}
	if got := in.Flush(data, "t"); got != OK {
		t.Fatalf("retry: Flush = %d, want OK; log:\n%s", got, sink)
	}
	if n := strings.Count(sink.String(), "records can never be delivered"); n != 1 ||
		!strings.Contains(sink.String(), "tag t: 15 of 17 records can never be delivered and were dropped; 1 delivered") || in.Stats.Failed.Load() != 15 {
		t.Fatalf("%d lines of refused records, failed %d; log:\n%s", n, in.Stats.Failed.Load(), sink)
	}
}

// TestUnencodableRecordsLogOnce: records the encoder cannot write are
// dropped with one log line for the chunk, however many they are.
func TestUnencodableRecordsLogOnce(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off", "Format": "logfmt"})
	var data []byte
	for range 50 { // a body that is not a map
		data = msgp.AppendString(msgp.AppendInt64(msgp.AppendArrayHeader(data, 2), 1700000000), "not a map")
	}
	data = append(data, chunkOf("ok")...)
	if got := in.Flush(data, "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if n := strings.Count(sink.String(), "\n"); fmt.Sprint(prod.sent) != `[log=ok]` || in.Stats.Failed.Load() != 50 || n > 2 ||
		!strings.Contains(sink.String(), "tag t: 50 of 51 records cannot be encoded and were dropped; the first, record 0: ") {
		t.Fatalf("sent %q, failed %d, %d log lines:\n%s", prod.sent, in.Stats.Failed.Load(), n, sink)
	}
}

// TestPanicKeepsRetryState: a flush that panics after sending (the export
// then returns Retry) leaves its records' states to the retry, which sends
// only what Kafka did not take.
func TestPanicKeepsRetryState(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1", "Timestamp_Key": "off"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prod := &fakeProducer{}
	var panicked atomic.Bool
	log := func(level int, msg string) {
		if strings.Contains(msg, "not delivered") && !panicked.Swap(true) {
			panic("logger failed")
		}
	}
	in, err := New(cfg, func() (sender.Producer, error) { return prod, nil }, fixture.GoAllocator{}, new(Stats), log)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Exit()
	chunk := chunkOf("a", "flaky b")
	func() {
		defer func() {
			if r := recover(); r != "logger failed" {
				t.Fatalf("recovered %v", r)
			}
		}()
		in.Flush(chunk, "t")
	}()
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("retry: Flush = %d", got)
	}
	if fmt.Sprint(prod.sent) != `[{"log":"a"} {"log":"flaky b"}]` {
		t.Fatalf("each record must reach Kafka once: %q", prod.sent)
	}
}

// TestStagesMemoryIsBounded: a flushState keeps a large chunk's stage for
// the next flush, but not the stages of many topics beyond maxStagedBytes.
func TestStagesMemoryIsBounded(t *testing.T) {
	st := &flushState{topics: make(map[string]*topicStage), partitions: make(map[string]int)}
	kept := func() (n int) {
		for _, s := range st.topics {
			n += cap(s.Buf)
		}
		return n
	}
	big := make([]byte, 3<<20)
	for i := range 2 {
		st.reset(nil)
		s := st.stage([]byte("logs"), -1)
		if i == 1 && cap(s.Buf) < len(big) {
			t.Fatalf("the stage of the previous flush has %d bytes, want it kept", cap(s.Buf))
		}
		s.Buf = append(s.Buf, big...)
	}
	for i := range 10 {
		st.reset(nil)
		s := st.stage(fmt.Appendf(nil, "topic-%d", i), -1)
		s.Buf = append(s.Buf, big...)
		if n := kept(); n > maxStagedBytes+2*len(big) {
			t.Fatalf("flush %d: stages hold %d bytes", i, n)
		}
	}
}

func TestConcurrentFlushes(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Batch_Size": "4K", "Timestamp_Key": "off"})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := make([]string, 500)
			for i := range msgs {
				msgs[i] = fmt.Sprintf("worker %d record %d", g, i)
			}
			for i := 0; i < 10; i++ {
				if got := in.Flush(chunkOf(msgs...), "tag"); got != OK {
					t.Errorf("Flush = %d; log:\n%s", got, sink)
				}
			}
		}()
	}
	wg.Wait()
	copies := map[string]int{}
	for _, v := range prod.sent {
		copies[v]++
	}
	for g := 0; g < 4; g++ {
		for i := 0; i < 500; i++ {
			if v := fmt.Sprintf(`{"log":"worker %d record %d"}`, g, i); copies[v] != 10 {
				t.Fatalf("%s sent %d times, want 10 (one per flush of its chunk)", v, copies[v])
			}
		}
	}
	if len(prod.sent) != 4*10*500 {
		t.Fatalf("sent %d records", len(prod.sent))
	}
}

// TestFieldText: a key and a header from a field render its value alike:
// text as it is, numbers in decimal, booleans as true or false, maps and
// arrays as JSON; null gives Message_Key for a key, and no header.
func TestFieldText(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Message_Key_Field": "$f", "Message_Key": "fallback", "Header_Key": "h $f", "Timestamp_Key": "off"})
	values := []any{"text", int64(-7), 3.0, 2.5, true, []fixture.KV{{Key: "a", Value: "b"}}, []any{int64(1), "x"}, nil}
	want := []string{"text", "-7", "3", "2.5", "true", `{"a":"b"}`, `[1,"x"]`, ""}
	var recs []fixture.Record
	for _, v := range values {
		recs = append(recs, fixture.Record{Body: []fixture.KV{{Key: "f", Value: v}}})
	}
	if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 1})[0], "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if len(prod.msgs) != len(values) {
		t.Fatalf("sent %d records, want %d", len(prod.msgs), len(values))
	}
	for i, m := range prod.msgs {
		header := ""
		if len(m.headers) == 1 {
			header = m.headers[0][1]
		}
		if wantKey := cmp.Or(want[i], "fallback"); m.key != wantKey || header != want[i] {
			t.Errorf("%v: key %q, header %q; want %q and %q", values[i], m.key, header, wantKey, want[i])
		}
	}
}

func TestShaping(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{
		"Topics": "logs, shop, audit", "Topic_Key": "$kubernetes['namespace_name']",
		"Message_Key_Field": "$kubernetes['pod_name']", "Message_Key": "nokey",
		"Header": "env prod, team core", "Header_Key": "app $kubernetes['labels']['app'], n $n",
		"Metadata_Headers": "on", "Remove_Keys": "$kubernetes['labels']", "Include_Tag_Key": "on",
		"Timestamp_Key": "off",
	})
	kube := func(ns, pod string) fixture.KV {
		return fixture.KV{Key: "kubernetes", Value: []fixture.KV{{Key: "namespace_name", Value: ns}, {Key: "pod_name", Value: pod},
			{Key: "labels", Value: []fixture.KV{{Key: "app", Value: "web"}}}}}
	}
	recs := []fixture.Record{
		{Time: time.UnixMilli(1000), Metadata: []fixture.KV{{Key: "source", Value: "tail"}, {Key: strings.Repeat("k", 70000), Value: "too long a name: no header"}}, Body: []fixture.KV{{Key: "log", Value: "a"}, kube("shop", "web-1"), {Key: "n", Value: int64(7)}}},
		{Time: time.UnixMilli(2000), Body: []fixture.KV{{Key: "log", Value: "b"}, kube("elsewhere", "web-2")}},
		{Time: time.UnixMilli(3000), Body: []fixture.KV{{Key: "log", Value: "c"}, {Key: "n", Value: nil}}}, // a nil field sends no header
	}
	if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0], "kube.x"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	want := []message{
		{"shop", `{"log":"a","kubernetes":{"namespace_name":"shop","pod_name":"web-1"},"n":7,"tag":"kube.x"}`, "web-1",
			[][2]string{{"env", "prod"}, {"team", "core"}, {"app", "web"}, {"n", "7"}, {"source", "tail"}}, 1000},
		{"logs", `{"log":"b","kubernetes":{"namespace_name":"elsewhere","pod_name":"web-2"},"tag":"kube.x"}`, "web-2",
			[][2]string{{"env", "prod"}, {"team", "core"}, {"app", "web"}}, 2000},
		{"logs", `{"log":"c","n":null,"tag":"kube.x"}`, "nokey", [][2]string{{"env", "prod"}, {"team", "core"}}, 3000},
	}
	// Batches of different topics may be sent in any order.
	sort.Slice(prod.msgs, func(i, j int) bool { return prod.msgs[i].timeMs < prod.msgs[j].timeMs })
	if fmt.Sprint(prod.msgs) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", prod.msgs, want)
	}
	if rerouted(in) != [routed]int64{1, 0, 1, 0} || fmt.Sprint(in.DeliveredByTopic()) != "map[logs:2 shop:1]" {
		t.Fatalf("rerouted %v, delivered %v", rerouted(in), in.DeliveredByTopic())
	}
}

// TestSkipsRecordsWithoutTheValueField: raw and gelf skip a record without
// the field their value is made of and count it apart from failures.
func TestSkipsRecordsWithoutTheValueField(t *testing.T) {
	recs := []fixture.Record{{Body: []fixture.KV{{Key: "log", Value: "line 1"}}}, {Body: []fixture.KV{{Key: "msg", Value: "x"}}},
		{Body: []fixture.KV{{Key: "log", Value: ""}}}}
	for _, tc := range []struct {
		format, want, log string
		skipped           int64
		msgs              int
	}{
		{"raw", "line 1", "1 of 3 records have no (or a null) $log and were skipped", 1, 2}, // "" is a value
		{"gelf", `"short_message":"line 1"`, "2 of 3 records have no (or a null or blank) $log and were skipped", 2, 1},
	} {
		prod := &fakeProducer{}
		in, sink := newInstance(t, prod, conf.MapGetter{"Format": tc.format, "Raw_Log_Key": "$log", "Gelf_Short_Message_Key": "$log", "Kafka_Timestamp": "produce"})
		if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 1})[0], "t"); got != OK {
			t.Fatalf("%s: Flush = %d", tc.format, got)
		}
		if len(prod.msgs) != tc.msgs || !strings.Contains(prod.msgs[0].value, tc.want) || prod.msgs[0].timeMs != 0 ||
			in.Stats.Skipped.Load() != tc.skipped || in.Stats.Failed.Load() != 0 || !strings.Contains(sink.String(), tc.log) {
			t.Errorf("%s: msgs %v, skipped %d, failed %d; log:\n%s", tc.format, prod.msgs, in.Stats.Skipped.Load(), in.Stats.Failed.Load(), sink)
		}
	}
}

// TestBatchMessageRefusedLoggedOnce: Kafka refuses a batch message whole;
// the log gives it once, with its record count, not once per record.
func TestBatchMessageRefusedLoggedOnce(t *testing.T) {
	in, sink := newInstance(t, &fakeProducer{refuse: true}, conf.MapGetter{"Message_Mode": "batch"})
	if got := in.Flush(chunkOf("a", "b", "c"), "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	log := sink.String()
	if strings.Count(log, "batch message of") != 1 || !strings.Contains(log, "(3 records of the chunk) for topic fluent-bit dropped: Broker: Message size too large") ||
		!strings.Contains(log, "tag t: 3 of 3 records can never be delivered") {
		t.Errorf("log:\n%s", log)
	}
}

// TestBatchTimes: a batch message's headers give its records' earliest and
// latest event times, in whatever order they came, whatever Kafka_Timestamp
// says; its Kafka timestamp is the latest with event, 0 (the produce time)
// with produce.
func TestBatchTimes(t *testing.T) {
	for mode, wantMs := range map[string]int64{"event": 1700000001000, "produce": 0} {
		t.Run(mode, func(t *testing.T) {
			prod := &fakeProducer{}
			in, sink := newInstance(t, prod, conf.MapGetter{"Message_Mode": "batch", "Kafka_Timestamp": mode})
			recs := []fixture.Record{
				{Time: time.UnixMilli(1700000000500), Body: []fixture.KV{{Key: "log", Value: "a"}}},
				{Time: time.UnixMilli(1700000001000), Body: []fixture.KV{{Key: "log", Value: "b"}}},
				{Time: time.UnixMilli(1700000000000), Body: []fixture.KV{{Key: "log", Value: "c"}}},
			}
			if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0], "t"); got != OK {
				t.Fatalf("Flush = %d; log:\n%s", got, sink)
			}
			if len(prod.msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(prod.msgs))
			}
			h := map[string]string{}
			for _, kv := range prod.msgs[0].headers {
				h[kv[0]] = kv[1]
			}
			if h[batch.FirstTimeHeader] != "2023-11-14T22:13:20.000Z" || h[batch.LastTimeHeader] != "2023-11-14T22:13:21.000Z" ||
				prod.msgs[0].timeMs != wantMs {
				t.Fatalf("headers %v, timestamp %d; want the event times and %d", h, prod.msgs[0].timeMs, wantMs)
			}
		})
	}
}

// rerouted reads in's counts of records sent to the default topic, by reason.
func rerouted(in *Instance) (n [routed]int64) {
	for i := range n {
		n[i] = in.Stats.Rerouted[i].Load()
	}
	return n
}

// TestDynamicTopic: with Dynamic_Topic on, a Topic_Key value that names a
// topic is the record's topic; the others go to the default topic, and a
// warning says how many and why, at most once a minute.
func TestDynamicTopic(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Topics": "logs", "Topic_Key": "$t", "Dynamic_Topic": "on", "Timestamp_Key": "off", "DLQ_Topic": "logs-dlq"})
	var recs []fixture.Record
	// A record never names the dead-letter topic: its headers could forge a dead letter.
	for _, topic := range []any{"new-topic", "bad topic!", int64(42), []fixture.KV{{Key: "x", Value: "y"}}, strings.Repeat("x", 250), nil, "logs-dlq"} {
		recs = append(recs, fixture.Record{Body: []fixture.KV{{Key: "t", Value: topic}}})
	}
	recs = append(recs, fixture.Record{Body: []fixture.KV{{Key: "u", Value: "no t"}}})
	chunk := fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 1})[0]
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("Flush = %d", got)
	}
	topics := prod.topics()
	if fmt.Sprint(topics) != "[42 logs logs logs logs logs logs new-topic]" || rerouted(in) != [routed]int64{2, 4, 0, 0} {
		t.Fatalf("topics %v, rerouted %v", topics, rerouted(in))
	}
	want := `records sent to the default topic logs: 2 had no (or a null) $t, 4 had a $t that cannot name a topic (the first: "bad topic!")`
	if got := in.Flush(chunk, "t"); got != OK || sink.Count(want) != 1 || rerouted(in) != [routed]int64{4, 8, 0, 0} {
		t.Fatalf("second Flush = %d, rerouted %v; log:\n%s", got, rerouted(in), sink)
	}
	// A minute later, the records since the last line.
	in.reroutes.mu.Lock()
	in.reroutes.next = time.Time{}
	in.reroutes.mu.Unlock()
	if got := in.Flush(chunk, "t"); got != OK || sink.Count("records sent to the default topic logs: 4 had no (or a null) $t, 8 had a $t that cannot name a topic (the first: \"bad topic!\")") != 1 {
		t.Fatalf("third Flush = %d; log:\n%s", got, sink)
	}
}

// TestDynamicTopicLimit: records name at most Dynamic_Topic_Limit topics
// outside Topics, the first that come, also when flushes name them at once;
// records naming another go to the default topic, counted and logged.
func TestDynamicTopicLimit(t *testing.T) {
	// chunkNaming is a chunk of records naming the topics in turn.
	chunkNaming := func(topics ...string) []byte {
		var recs []fixture.Record
		for _, topic := range topics {
			recs = append(recs, fixture.Record{Body: []fixture.KV{{Key: "t", Value: topic}}})
		}
		return fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 1})[0]
	}
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Topics": "logs,listed", "Topic_Key": "$t", "Dynamic_Topic": "on", "Dynamic_Topic_Limit": "2"})
	if got := in.Flush(chunkNaming("a", "b", "listed", "c", "a", "d", "c", "logs"), "t"); got != OK {
		t.Fatalf("Flush = %d", got)
	}
	topics := prod.topics()
	if fmt.Sprint(topics) != "[a a b listed logs logs logs logs]" || rerouted(in) != [routed]int64{0, 0, 0, 3} {
		t.Fatalf("topics %v, rerouted %v", topics, rerouted(in))
	}
	if sink.Count(`records sent to the default topic logs: 3 named a topic past Dynamic_Topic_Limit's 2 (the first: "c")`) != 1 {
		t.Fatalf("log:\n%s", sink)
	}

	prod = &fakeProducer{}
	in, _ = newInstance(t, prod, conf.MapGetter{"Topic_Key": "$t", "Dynamic_Topic": "on", "Dynamic_Topic_Limit": "50"})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var names []string
			for i := range 100 {
				names = append(names, fmt.Sprintf("t%d.%d", g, i))
			}
			if got := in.Flush(chunkNaming(names...), "t"); got != OK {
				t.Errorf("Flush = %d", got)
			}
		}()
	}
	wg.Wait()
	byTopic := map[string]int{}
	for _, m := range prod.msgs {
		byTopic[m.topic]++
	}
	if len(byTopic) != 51 || byTopic["fluent-bit"] != 750 || rerouted(in) != [routed]int64{0, 0, 0, 750} {
		t.Fatalf("%d topics, %d records to the default topic, rerouted %v; want 50 topics besides it and 750 past the limit",
			len(byTopic)-1, byTopic["fluent-bit"], rerouted(in))
	}
}

// TestDynamicTopicsAdmitAtOnce: flushes naming topics at once admit exactly
// the limit, and a name admitted for one flush is admitted for all.
func TestDynamicTopicsAdmitAtOnce(t *testing.T) {
	const limit, flushes = 50, 8
	d := &dynamicTopics{limit: limit, names: map[string]struct{}{}}
	var mu sync.Mutex
	admitted := map[string]int{} // by name: for how many flushes
	var wg sync.WaitGroup
	for g := range flushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &flushState{}
			for i := range 100 {
				for _, name := range []string{fmt.Sprint("own", g, ".", i), fmt.Sprint("shared", i)} {
					if d.admit(st, []byte(name)) {
						mu.Lock()
						admitted[name]++
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(admitted) != limit {
		t.Fatalf("%d names admitted, want %d", len(admitted), limit)
	}
	for name, n := range admitted {
		if want := map[bool]int{true: flushes, false: 1}[strings.HasPrefix(name, "shared")]; n != want {
			t.Errorf("%s admitted for %d flushes, want %d", name, n, want)
		}
	}
}

// TestMissingTopicKeyLogged: records without Topic_Key's field are a
// warning when none since the last line had it (a misspelled Topic_Key),
// else logged at debug level (records meant for the default topic); Exit
// logs those counted since the last line.
func TestMissingTopicKeyLogged(t *testing.T) {
	in, sink := startInstance(t, &fakeProducer{}, conf.MapGetter{"Topics": "logs,shop", "Topic_Key": "$ns"})
	some := fixture.EncodeChunks([]fixture.Record{{Body: []fixture.KV{{Key: "ns", Value: "shop"}}}}, fixture.ChunkOptions{Layout: 1})[0]
	none := fixture.EncodeChunks([]fixture.Record{{Body: []fixture.KV{{Key: "namespace", Value: "shop"}}}}, fixture.ChunkOptions{Layout: 1})[0]
	for _, c := range []struct {
		chunks [][]byte
		level  string
	}{{[][]byte{some, none}, "4 "}, {[][]byte{none}, "2 "}} {
		in.reroutes.mu.Lock()
		in.reroutes.next = time.Time{}
		in.reroutes.mu.Unlock()
		for _, chunk := range c.chunks { // one chunk with the field, one without
			if got := in.Flush(chunk, "t"); got != OK {
				t.Fatalf("Flush = %d", got)
			}
		}
		lines := sink.Matching("records sent to the default topic logs: 1 had no (or a null) $ns (Topic_Key;")
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], c.level) {
			t.Fatalf("want a line at level %s; log:\n%s", c.level, sink)
		}
	}
	in.Flush(none, "t") // within the minute: counted, not logged
	in.Flush(none, "t")
	in.Exit()
	if sink.Count("records sent to the default topic logs: 2 had no (or a null) $ns") != 1 {
		t.Fatalf("Exit does not log the records since the last line:\n%s", sink)
	}
}

// TestRetrySendsOnlyWhatKafkaDidNotTake: a retry of the same bytes waits for
// the records of the earlier attempt still in flight and sends again only
// those that failed.
func TestRetrySendsOnlyWhatKafkaDidNotTake(t *testing.T) {
	prod := &fakeProducer{hold: true}
	in, sink := newInstance(t, prod, conf.MapGetter{"Flush_Timeout": "300ms", "Max_Block": "100ms"})
	chunk := chunkOf("a", "flaky b", "c", "flaky d")
	if got := in.Flush(chunk, "t"); got != Retry {
		t.Fatalf("held: Flush = %d", got)
	}
	// The earlier attempt is still in flight: the retry waits, then retries.
	if got := in.Flush(chunk, "t"); got != Retry {
		t.Fatalf("still held: Flush = %d", got)
	}
	prod.release() // a and c acknowledged, b and d failed
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("after release: Flush = %d; log:\n%s", got, sink)
	}
	sort.Strings(prod.sent)
	if fmt.Sprint(prod.sent) != fmt.Sprint([]string{`{"log":"a","@timestamp":"2023-11-14T22:13:20.000000005Z"}`,
		`{"log":"c","@timestamp":"2023-11-14T22:13:20.000000005Z"}`, `{"log":"flaky b","@timestamp":"2023-11-14T22:13:20.000000005Z"}`,
		`{"log":"flaky d","@timestamp":"2023-11-14T22:13:20.000000005Z"}`}) {
		t.Fatalf("each record must reach Kafka once: %q", prod.sent)
	}
	// b's and d's failures came while no flush waited: the retry logs them,
	// in one line.
	if strings.Count(sink.String(), "2 records of up to 63 bytes for topic fluent-bit not delivered: Local: Broker transport failure") != 1 {
		t.Fatalf("failures of the earlier attempt not logged:\n%s", sink)
	}
	if !strings.Contains(sink.String(), "2 already delivered, dead-lettered or dropped, sending the other 2") || fmt.Sprint(in.DeliveredByTopic()) != "map[fluent-bit:4]" {
		t.Fatalf("delivered %v; log:\n%s", in.DeliveredByTopic(), sink)
	}
	if len(in.retries.byKey) != 0 {
		t.Fatalf("%d chunks still remembered", len(in.retries.byKey))
	}
}

// TestRetryMemoryIsBounded: the memory keeps the newest chunks whose
// records, with chunkCost each, fit its bound, and holds no waiter once
// taken.
func TestRetryMemoryIsBounded(t *testing.T) {
	m := newRetryMemory(3 * (1000 + chunkCost))
	var taken []weak.Pointer[accumulator.Waiter]
	for i := range 10 {
		if chunks, records := m.put(chunkKey{sum: uint64(i)}, accumulator.NewWaiter(1000), i%2); i >= 3 && (chunks != 1 || records != 1000) || i < 3 && chunks != 0 {
			t.Fatalf("chunk %d forgot %d chunks, %d records", i, chunks, records)
		}
		if i%2 == 0 {
			w, lane := m.take(chunkKey{sum: uint64(i)})
			taken = append(taken, weak.Make(w))
			m.put(chunkKey{sum: uint64(i)}, w, lane) // put again: stays the newest
		}
	}
	if len(m.byKey) != 3 || m.records != 3*(1000+chunkCost) {
		t.Fatalf("want the 3 newest chunks, have %d (%d records)", len(m.byKey), m.records)
	}
	for i := 9; i >= 6; i-- {
		w, lane := m.take(chunkKey{sum: uint64(i)})
		if i >= 7 && (w == nil || lane != i%2) || i == 6 && (w != nil || lane != -1) {
			t.Fatalf("chunk %d: waiter %v, lane %d", i, w != nil, lane)
		}
	}
	runtime.GC()
	for i, p := range taken {
		if p.Value() != nil {
			t.Fatalf("waiter of chunk %d still held, %d records counted, %d entries", 2*i, m.records, m.order.Len())
		}
	}
}

// TestRetryMemoryOverflowLogged: a chunk forgotten for want of room is
// logged, as its retry will send every record again.
func TestRetryMemoryOverflowLogged(t *testing.T) {
	in, sink := newInstance(t, &fakeProducer{}, conf.MapGetter{})
	in.retries = newRetryMemory(2 + chunkCost) // one chunk of two records
	for _, c := range []string{"flaky a", "flaky b"} {
		if got := in.Flush(chunkOf(c, "x"), "t"); got != Retry {
			t.Fatalf("Flush %s = %d", c, got)
		}
	}
	if sink.Count("the retry memory is full: forgot the oldest chunks handed back for a retry, 1 (2 records), whose retries send every record again") != 1 {
		t.Fatalf("log:\n%s", sink)
	}
}

// TestRetryMemoryKeysTag: the same bytes under another tag are another
// chunk, whose flush sends every record.
func TestRetryMemoryKeysTag(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off"})
	chunk := chunkOf("flaky a", "b")
	if got := in.Flush(chunk, "one"); got != Retry {
		t.Fatalf("Flush = %d, want Retry", got)
	}
	if got := in.Flush(chunk, "two"); got != OK {
		t.Fatalf("other tag: Flush = %d; log:\n%s", got, sink)
	}
	if fmt.Sprint(prod.sent) != `[{"log":"b"} {"log":"flaky a"} {"log":"b"}]` || len(in.retries.byKey) != 1 {
		t.Fatalf("sent %q, %d chunks remembered; log:\n%s", prod.sent, len(in.retries.byKey), sink)
	}
}

func TestDeadLetter(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"DLQ_Topic": "dead", "Timestamp_Key": "off", "Header": "env prod"})
	if got := in.Flush(chunkOf("a", "permanent b", "c"), "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	var dead []message
	for _, m := range prod.msgs {
		if m.topic == "dead" {
			dead = append(dead, m)
		}
	}
	want := `[{dead {"log":"permanent b"}  [[env prod] [gokafka.error Broker: Message size too large] [gokafka.error.code 10] [gokafka.topic fluent-bit]] 1700000000000}]`
	if fmt.Sprint(dead) != want || len(prod.msgs) != 3 {
		t.Fatalf("dead-lettered %v of %v", dead, prod.msgs)
	}
	if in.Stats.DeadLettered.Load() != 1 || fmt.Sprint(in.DeliveredByTopic()) != "map[dead:1 fluent-bit:2]" || in.Stats.Failed.Load() != 0 ||
		!strings.Contains(sink.String(), "record of 21 bytes for topic fluent-bit refused (Broker: Message size too large), sent to the dead-letter topic dead") {
		t.Fatalf("dead %d delivered %v failed %d; log:\n%s", in.Stats.DeadLettered.Load(), in.DeliveredByTopic(), in.Stats.Failed.Load(), sink)
	}
}

// TestExitLeavesNoGoroutines: instances made and stopped, as a hot reload of
// Fluent Bit does, leave no goroutine behind.
func TestExitLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		cfg, _ := conf.Load(conf.MapGetter{"Brokers": "x:1"}, nil)
		prod := &fakeProducer{}
		in, err := New(cfg, func() (sender.Producer, error) { return prod, nil }, fixture.GoAllocator{}, new(Stats), func(int, string) {})
		if err != nil {
			t.Fatal(err)
		}
		if got := in.Flush(chunkOf("a", "b"), "t"); got != OK {
			t.Fatalf("Flush = %d", got)
		}
		in.Exit()
	}
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before, %d after", before, after)
	}
}

// fatalProducer fails every record retriably once fatal is set, as a fenced
// librdkafka producer does, and then reports a fatal error.
type fatalProducer struct {
	fakeProducer
	fatal atomic.Bool
}

func (p *fatalProducer) Produce(b *accumulator.Batch) {
	if !p.fatal.Load() {
		p.fakeProducer.Produce(b)
		return
	}
	failures := make([]accumulator.Failure, len(b.Recs))
	for i := range failures {
		failures[i] = accumulator.Failure{Index: i, Err: -150, Reason: "Local: Fatal error"}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = append(p.done, sender.Completion{Batch: b, Failures: failures})
}

func (p *fatalProducer) Fatal() error {
	if p.fatal.Load() {
		return errors.New("producer fenced")
	}
	return nil
}

// TestFatalProducerReplacedBetweenFlushes: a producer that hit a fatal error
// is replaced although each flush produces its own batches, so that nothing
// else wakes the send loop; the retried chunk then goes through.
func TestFatalProducerReplacedBetweenFlushes(t *testing.T) {
	first := &fatalProducer{}
	var made atomic.Int32
	newProd := func() (sender.Producer, error) {
		if made.Add(1) == 1 {
			return first, nil
		}
		return &fakeProducer{}, nil
	}
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &logsink.Sink{}
	in, err := New(cfg, newProd, fixture.GoAllocator{}, new(Stats), sink.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Exit()
	chunk := chunkOf("a")
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("Flush = %d", got)
	}
	first.fatal.Store(true)
	got, flushes := Retry, 0
	for deadline := time.Now().Add(10 * time.Second); got == Retry && time.Now().Before(deadline); flushes++ {
		got = in.Flush(chunk, "t") // one after the other, as with Workers 0
	}
	if got != OK || made.Load() != 2 || in.ProducersReplaced() != 1 {
		t.Fatalf("after %d flushes: Flush = %d, %d producers made, %d replaced; log:\n%s", flushes, got, made.Load(), in.ProducersReplaced(), sink)
	}
}

// orderProducer takes a batch's records one at a time, as librdkafka does,
// so that two batches produced at once would interleave.
type orderProducer struct{ fakeProducer }

func (p *orderProducer) Produce(b *accumulator.Batch) {
	for _, r := range b.Recs {
		p.mu.Lock()
		p.take(b, r)
		p.mu.Unlock()
		runtime.Gosched()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = append(p.done, sender.Completion{Batch: b})
}

// partitionedProducer knows topics of 4 partitions when asked for a retry,
// as rdk.Producer does once the cluster could not tell them; it keeps each
// batch message's partition and records.
type partitionedProducer struct {
	fakeProducer
	placed map[string]int32 // record's log value -> its batch message's partition
}

func (p *partitionedProducer) Partitions(_ string, _ time.Time, retry bool) int {
	if retry {
		return 4
	}
	return -1
}

func (p *partitionedProducer) Produce(b *accumulator.Batch) {
	r := b.Recs[0]
	err := batch.Records(b.Buf[r.Off:r.Off+r.Len], batch.NDJSON, func(rec []byte) error {
		var v struct{ Log string }
		err := json.Unmarshal(rec, &v)
		p.mu.Lock()
		p.placed[v.Log] = b.Partition
		p.mu.Unlock()
		return err
	})
	if err != nil {
		panic(err)
	}
	p.fakeProducer.Produce(b)
}

// TestBatchKeysWaitForPartitions: in batch mode a keyed record whose
// topic's partition count is unknown is not sent to just any partition: the
// chunk is retried, and its retry asks for the count again and sends it to
// its key's murmur2 partition. Records without a key go at once.
func TestBatchKeysWaitForPartitions(t *testing.T) {
	prod := &partitionedProducer{placed: map[string]int32{}}
	in, sink := newInstance(t, prod, conf.MapGetter{"Message_Mode": "batch", "Message_Key_Field": "$k", "Topics": "fluent-bit,other", "Topic_Key": "$t"})
	var recs []fixture.Record
	for _, key := range []string{"a", "", "b", "-", "c"} {
		body := []fixture.KV{{Key: "log", Value: "key " + key}}
		if key != "-" {
			body = append(body, fixture.KV{Key: "k", Value: key})
		}
		if key == "c" {
			body = append(body, fixture.KV{Key: "t", Value: "other"})
		}
		recs = append(recs, fixture.Record{Time: time.Unix(1700000000, 0), Body: body})
	}
	chunk := fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0]
	if got := in.Flush(chunk, "t"); got != Retry || fmt.Sprint(prod.placed) != "map[key -:-1]" || !strings.Contains(sink.String(),
		"4 of 5 records not sent: their key's partition is not known, the partition count of topic fluent-bit (and of 1 other topic) being unknown") {
		t.Fatalf("Flush = %d, placed %v; log:\n%s", got, prod.placed, sink)
	}
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("retry: Flush = %d; log:\n%s", got, sink)
	}
	for _, key := range []string{"a", "", "b", "c"} {
		if want := (Murmur2([]byte(key)) & 0x7fffffff) % 4; prod.placed["key "+key] != want {
			t.Errorf("key %q in partition %d, want %d", key, prod.placed["key "+key], want)
		}
	}
	if len(prod.placed) != 5 || len(prod.sent) != 4 { // one message, then one per topic and partition
		t.Errorf("placed %v in %d batch messages, want 5 records in 4", prod.placed, len(prod.sent))
	}
}

// keyedProducer knows topics of 3 partitions and keeps each batch message
// with its partition, in the order produced.
type keyedProducer struct {
	fakeProducer
	frames []keyedFrame
}

type keyedFrame struct {
	partition   int32
	contentType string
	value       []byte
}

func (p *keyedProducer) Partitions(string, time.Time, bool) int { return 3 }

func (p *keyedProducer) Produce(b *accumulator.Batch) {
	r := b.Recs[0]
	headers := decodeHeaders(b.Buf[r.Off+r.Len+r.KeyLen : r.Off+r.Size()])
	p.mu.Lock()
	p.frames = append(p.frames, keyedFrame{b.Partition, headers[0][1], slices.Clone(b.Buf[r.Off : r.Off+r.Len])})
	p.mu.Unlock()
	p.fakeProducer.Produce(b)
}

// TestBatchFormatsKeepKeyOrder: in batch mode, Format msgpack and logfmt
// records come back whole from many batch messages, each key's records in
// one partition and in the order they came.
func TestBatchFormatsKeepKeyOrder(t *testing.T) {
	const records, keys = 2000, 7
	parsers := map[string]func([]byte) (key string, seq int64, err error){
		batch.Msgpack: func(rec []byte) (string, int64, error) {
			v, _, err := msgp.ReadMapStrIntfBytes(rec, nil)
			key, _ := v["k"].(string)
			var seq int64
			switch n := v["seq"].(type) { // msgpack's smallest form of the number
			case int64:
				seq = n
			case uint64:
				seq = int64(n)
			}
			return key, seq, err
		},
		batch.Text: func(rec []byte) (string, int64, error) { // k=k3 seq=17
			var key string
			var seq int64
			_, err := fmt.Sscanf(string(rec), "k=%s seq=%d", &key, &seq)
			return key, seq, err
		},
	}
	for format, contentType := range map[string]string{"msgpack": batch.Msgpack, "logfmt": batch.Text} {
		t.Run(format, func(t *testing.T) {
			prod := &keyedProducer{}
			in, sink := newInstance(t, prod, conf.MapGetter{"Message_Mode": "batch", "Format": format, "Message_Key_Field": "$k",
				"Batch_Size": "1K", "Timestamp_Key": "off"})
			var recs []fixture.Record
			for i := range records {
				recs = append(recs, fixture.Record{Time: time.Unix(1700000000, 0), Body: []fixture.KV{{Key: "k", Value: fmt.Sprint("k", i%keys)}, {Key: "seq", Value: int64(i)}}})
			}
			for _, chunk := range fixture.EncodeChunks(recs, fixture.ChunkOptions{ChunkBytes: 8 << 10}) {
				if got := in.Flush(chunk, "t"); got != OK {
					t.Fatalf("Flush = %d; log:\n%s", got, sink)
				}
			}
			due := map[string]int64{} // by key: the sequence number due, less the key's own number
			partitionOf := map[string]int32{}
			n := 0
			for _, f := range prod.frames {
				if f.contentType != contentType {
					t.Fatalf("content type %s, want %s", f.contentType, contentType)
				}
				err := batch.Records(f.value, contentType, func(rec []byte) error {
					key, seq, err := parsers[contentType](rec)
					if p, ok := partitionOf[key]; err != nil || ok && p != f.partition {
						return fmt.Errorf("record %q (%v) in partition %d, its key's earlier ones in %d", rec, err, f.partition, p)
					}
					if want := due[key] + int64(key[1]-'0'); seq != want {
						return fmt.Errorf("record %q, want seq %d", rec, want)
					}
					partitionOf[key], due[key] = f.partition, due[key]+keys
					n++
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if n != records || len(partitionOf) != keys {
				t.Errorf("%d records of %d keys came back, want %d of %d", n, len(partitionOf), records, keys)
			}
			if len(prod.frames) < 10 {
				t.Errorf("%d batch messages, want many", len(prod.frames))
			}
		})
	}
}

// TestBatchesProducedInOrder: while a flush waits for memory, the send loop
// produces the batches that filled; the flush's own SendAll must not overtake
// them, or records of one partition would reach Kafka out of order.
func TestBatchesProducedInOrder(t *testing.T) {
	prod := &orderProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Buffer_Memory": "1M", "Batch_Size": "128K"})
	msgs := make([]string, 30000) // about 1.8 MB of values
	for i := range msgs {
		msgs[i] = fmt.Sprintf("%05d", i)
	}
	var recs []fixture.Record
	for _, m := range msgs {
		recs = append(recs, fixture.Record{Time: time.Unix(1700000000, 5), Body: []fixture.KV{{Key: "log", Value: m}}})
	}
	chunk := fixture.EncodeChunks(recs, fixture.ChunkOptions{ChunkBytes: 4 << 20})[0]
	for round := range 10 {
		prod.mu.Lock()
		prod.sent = prod.sent[:0]
		prod.mu.Unlock()
		if got := in.Flush(chunk, "t"); got != OK {
			t.Fatalf("round %d: Flush = %d; log:\n%s", round, got, sink)
		}
		prod.mu.Lock()
		sent := slices.Clone(prod.sent)
		prod.mu.Unlock()
		if len(sent) != len(msgs) {
			t.Fatalf("round %d: %d records sent, want %d", round, len(sent), len(msgs))
		}
		for i := 1; i < len(sent); i++ {
			if sent[i] < sent[i-1] {
				t.Fatalf("round %d: %s sent after %s", round, sent[i], sent[i-1])
			}
		}
	}
}

// producerMaker makes a new fakeProducer each call and keeps them; with
// gate set, every producer after the first is made once it is closed, and
// atGate gets a value when one waits for it.
type producerMaker struct {
	mu     sync.Mutex
	made   []*fakeProducer
	gate   chan struct{}
	atGate chan struct{}
}

func (m *producerMaker) make() (sender.Producer, error) {
	m.mu.Lock()
	first := len(m.made) == 0
	m.mu.Unlock()
	if m.gate != nil && !first {
		m.atGate <- struct{}{}
		<-m.gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.made = append(m.made, &fakeProducer{})
	return m.made[len(m.made)-1], nil
}

// logs returns the log field of every record each producer sent.
func (m *producerMaker) logs(t *testing.T) [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]string
	for _, p := range m.made {
		p.mu.Lock()
		var logs []string
		for _, v := range p.sent {
			var rec struct{ Log string }
			if err := json.Unmarshal([]byte(v), &rec); err != nil {
				t.Fatal(err)
			}
			logs = append(logs, rec.Log)
		}
		p.mu.Unlock()
		out = append(out, logs)
	}
	return out
}

// hold makes producer i hold its reports, and waits up to 10 s until it
// holds n.
// hold has producer i hold its reports from now on; set before the flush
// starts, so that none is reported before.
func (m *producerMaker) hold(i int) {
	m.mu.Lock()
	p := m.made[i]
	m.mu.Unlock()
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
}

// held waits until producer i holds n reports.
func (m *producerMaker) held(t *testing.T, i, n int) {
	m.mu.Lock()
	p := m.made[i]
	m.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		held := len(p.held)
		p.mu.Unlock()
		if held >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("producer %d holds %d reports, want %d", i+1, held, n)
		}
	}
}

func (m *producerMaker) instance(t *testing.T, keys conf.MapGetter) *Instance {
	keys["Brokers"] = "unused:1"
	cfg, err := conf.Load(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := New(cfg, m.make, fixture.GoAllocator{}, new(Stats), func(int, string) {})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestFlushesAtOnceGetTheirOwnProducer: flushes one after the other use one
// producer; a flush that starts while another waits gets a producer of its
// own, up to Producers, and each chunk's records all go through one (so
// that records of a key keep their order).
func TestFlushesAtOnceGetTheirOwnProducer(t *testing.T) {
	for _, producers := range []int{1, 2} {
		m := &producerMaker{}
		in := m.instance(t, conf.MapGetter{"Producers": fmt.Sprint(producers)})
		for i := range 3 {
			if got := in.Flush(chunkOf(fmt.Sprint("alone ", i)), "t"); got != OK {
				t.Fatalf("Producers %d: Flush = %d", producers, got)
			}
		}
		waiting := make(chan int)
		m.hold(0)
		go func() { waiting <- in.Flush(chunkOf("a1", "a2", "a3"), "t") }()
		m.held(t, 0, 1)
		other := make(chan int)
		go func() { other <- in.Flush(chunkOf("b1", "b2"), "t") }()
		if producers == 2 {
			if got := <-other; got != OK {
				t.Fatalf("second flush = %d while the first waits", got)
			}
		}
		m.made[0].release()
		if got := <-waiting; got != OK {
			t.Fatalf("Producers %d: first flush = %d", producers, got)
		}
		if producers == 1 {
			if got := <-other; got != OK {
				t.Fatalf("Producers 1: second flush = %d", got)
			}
		}
		in.Exit()
		want := [][]string{{"alone 0", "alone 1", "alone 2", "a1", "a2", "a3", "b1", "b2"}}
		if producers == 2 {
			want = [][]string{{"alone 0", "alone 1", "alone 2", "a1", "a2", "a3"}, {"b1", "b2"}}
		}
		if got := m.logs(t); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("Producers %d: producers sent %q, want %q", producers, got, want)
		}
	}
}

// TestRetryTakesItsEarlierLane: a chunk's retry goes through the producer
// of its earlier attempt, where its records may still be in flight, so
// that what it sends again follows them.
func TestRetryTakesItsEarlierLane(t *testing.T) {
	m := &producerMaker{}
	in := m.instance(t, conf.MapGetter{})
	defer in.Exit()
	first := make(chan int)
	m.hold(0)
	go func() { first <- in.Flush(chunkOf("b"), "t") }()
	m.held(t, 0, 1)
	retried := chunkOf("a1", "flaky a2")
	if got := in.Flush(retried, "t"); got != Retry { // the second producer's; a2 fails once
		t.Fatalf("Flush = %d, want a retry", got)
	}
	m.made[0].release()
	if got := <-first; got != OK {
		t.Fatalf("first flush = %d", got)
	}
	if got := in.Flush(retried, "t"); got != OK {
		t.Fatalf("retry = %d", got)
	}
	want := [][]string{{"b"}, {"a1", "flaky a2"}}
	if got := m.logs(t); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("producers sent %q, want %q", got, want)
	}
}

// TestMakingAProducerHoldsUpNoFlush: while a flush waits for its new
// producer to be made, the other flushes take and give back lanes.
func TestMakingAProducerHoldsUpNoFlush(t *testing.T) {
	m := &producerMaker{gate: make(chan struct{}), atGate: make(chan struct{}, 1)}
	in := m.instance(t, conf.MapGetter{})
	defer in.Exit()
	first := make(chan int)
	m.hold(0)
	go func() { first <- in.Flush(chunkOf("a"), "t") }()
	m.held(t, 0, 1)
	second := make(chan int)
	go func() { second <- in.Flush(chunkOf("b"), "t") }()
	<-m.atGate // the second flush makes the second producer
	done := make(chan int)
	go func() {
		in.snd.Lane(-1).Release() // shares the first lane meanwhile
		m.made[0].release()
		done <- <-first
	}()
	select {
	case got := <-done:
		if got != OK {
			t.Fatalf("first flush = %d", got)
		}
	case <-time.After(10 * time.Second):
		close(m.gate)
		t.Fatal("flushes were held up while the second producer was being made")
	}
	close(m.gate)
	if got := <-second; got != OK {
		t.Fatalf("second flush = %d", got)
	}
	want := [][]string{{"a"}, {"b"}}
	if got := m.logs(t); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("producers sent %q, want %q", got, want)
	}
}

// TestNonStringKeys: an entry whose key is not a string, in the metadata
// or the body, is skipped; the entries after it still count.
func TestNonStringKeys(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Topics": "logs, orders", "Topic_Key": "$topic",
		"Format": "raw", "Raw_Log_Key": "$log", "Metadata_Headers": "on"})
	meta := msgp.AppendMapHeader(nil, 3)
	meta = msgp.AppendString(msgp.AppendString(meta, "source"), "tail")
	meta = msgp.AppendString(msgp.AppendInt(meta, 1), "one")
	meta = msgp.AppendString(msgp.AppendString(meta, "stream"), "stdout")
	body := msgp.AppendMapHeader(nil, 3)
	body = msgp.AppendString(msgp.AppendInt(body, 1), "one")
	body = msgp.AppendString(msgp.AppendString(body, "topic"), "orders")
	body = msgp.AppendString(msgp.AppendString(body, "log"), "a")
	data := msgp.AppendArrayHeader(msgp.AppendArrayHeader(nil, 2), 2)
	data = msgp.AppendUint64(data, 1700000000)
	data = append(append(data, meta...), body...)
	if got := in.Flush(data, "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	want := []message{{"orders", "a", "", [][2]string{{"source", "tail"}, {"stream", "stdout"}}, 1700000000000}}
	if fmt.Sprint(prod.msgs) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", prod.msgs, want)
	}
}

// TestBatchRawNewlines: in batch mode with Format raw, each record ends with
// exactly one newline, whether its value had one or not; inner newlines stay.
func TestBatchRawNewlines(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Message_Mode": "batch", "Format": "raw", "Raw_Log_Key": "$log"})
	if got := in.Flush(chunkOf("hello\n", "world", "two\nlines\n", "\n", "last"), "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if len(prod.msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(prod.msgs))
	}
	var contentType string
	for _, kv := range prod.msgs[0].headers {
		if kv[0] == batch.ContentTypeHeader {
			contentType = kv[1]
		}
	}
	var lines []string
	if err := batch.Records([]byte(prod.msgs[0].value), contentType, func(r []byte) error {
		lines = append(lines, string(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"hello", "world", "two", "lines", "", "last"}; !slices.Equal(lines, want) {
		t.Fatalf("records %q, want %q", lines, want)
	}
}

// TestRecordLargerThanBufferMemory: a record that can never fit
// Buffer_Memory is dropped, logged once by its cause and counted as
// failed, and the records around it are delivered; the next flush counts
// afresh.
func TestRecordLargerThanBufferMemory(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Buffer_Memory": "1M", "Batch_Size": "100K", "Timestamp_Key": "off"})
	var recs []fixture.Record
	for _, m := range []string{"a", strings.Repeat("x", 1<<20), "c"} {
		recs = append(recs, fixture.Record{Time: time.Unix(1700000000, 0), Body: []fixture.KV{{Key: "log", Value: m}}})
	}
	if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2, ChunkBytes: 4 << 20})[0], "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if fmt.Sprint(prod.sent) != `[{"log":"a"} {"log":"c"}]` || in.Stats.Failed.Load() != 1 || fmt.Sprint(in.DeliveredByTopic()) != "map[fluent-bit:2]" ||
		!strings.Contains(sink.String(), "for topic fluent-bit dropped: with its key, headers and bookkeeping it needs ") ||
		!strings.Contains(sink.String(), " bytes of buffer memory, more than Buffer_Memory") ||
		strings.Contains(sink.String(), "can never be delivered") { // Kafka refused nothing
		t.Fatalf("sent %q, failed %d; log:\n%s", prod.sent, in.Stats.Failed.Load(), sink)
	}
	// The next flush: a record Kafka refuses for good is logged as such.
	if got := in.Flush(chunkOf("permanent d"), "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if !strings.Contains(sink.String(), "tag t: 1 of 1 records can never be delivered and were dropped") || in.Stats.Failed.Load() != 2 {
		t.Fatalf("failed %d; log:\n%s", in.Stats.Failed.Load(), sink)
	}
}

// TestBatchBlockLargerThanBufferMemory: in batch mode, when static headers
// leave no block of records room in Buffer_Memory, the records of each block
// are dropped together, logged and counted, and the flush returns.
func TestBatchBlockLargerThanBufferMemory(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Message_Mode": "batch", "Buffer_Memory": "1000000", "Batch_Size": "1000",
		"Header": "big " + strings.Repeat("x", 500000), "Timestamp_Key": "off"})
	done := make(chan int, 1)
	go func() { done <- in.Flush(chunkOf("a", "b", "c", "d", "e"), "t") }()
	select {
	case got := <-done:
		if got != OK {
			t.Fatalf("Flush = %d; log:\n%.2000s", got, sink)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Flush did not return; log:\n%.2000s", sink)
	}
	if len(prod.sent) != 0 || in.Stats.Failed.Load() != 5 ||
		!strings.Contains(sink.String(), "tag t: 5 records for topic fluent-bit dropped: compressed, in a frame of its own, their block needs ") {
		t.Fatalf("sent %d, failed %d; log:\n%.2000s", len(prod.sent), in.Stats.Failed.Load(), sink)
	}
}

// TestBatchMessagesWithinSizeLimit: batch messages stay within
// message.max.bytes beside large Header pairs, and a record that does not
// compress to fit a message is dropped and logged rather than sent.
func TestBatchMessagesWithinSizeLimit(t *testing.T) {
	const maxMessage = 10000
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Message_Mode": "batch", "rdkafka.message.max.bytes": strconv.Itoa(maxMessage),
		"Header": "big " + strings.Repeat("h", 4000), "Format": "raw", "Raw_Log_Key": "$log"})
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(n int) string { // incompressible
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(rng.IntN(26))
		}
		return string(b)
	}
	want := map[string]bool{}
	var msgs []string
	for i := range 300 {
		if i == 150 {
			msgs = append(msgs, noise(20000))
		}
		msgs = append(msgs, noise(40))
		want[msgs[len(msgs)-1]] = true
	}
	if got := in.Flush(chunkOf(msgs...), "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%.2000s", got, sink)
	}
	for i, m := range prod.msgs {
		if size := prod.sizes[i] + 36; size > maxMessage { // 36: librdkafka's largest record framing
			t.Errorf("a message of %d bytes, over message.max.bytes %d", size, maxMessage)
		}
		if err := batch.Records([]byte(m.value), batch.Text, func(r []byte) error {
			if !want[string(r)] {
				return fmt.Errorf("record %.20q not sent, or sent twice", r)
			}
			delete(want, string(r))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != 0 || in.Stats.Failed.Load() != 1 || sink.Count("record of 20001 bytes for topic fluent-bit dropped: compressed to 20012 bytes, over what rdkafka.message.max.bytes (10000) leaves beside the message's headers (4") != 1 {
		t.Fatalf("%d records not sent, %d failed; log:\n%.2000s", len(want), in.Stats.Failed.Load(), sink)
	}
}

// TestBodyNotAMap: an entry whose body is not a map, which Fluent Bit's
// own decoder stops at, is dropped and logged; the records around it go.
func TestBodyNotAMap(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off"})
	var data []byte
	for _, body := range [][]byte{
		msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), "a"),
		msgp.AppendString(msgp.AppendArrayHeader(nil, 1), "an array"),
		msgp.AppendString(nil, "a string"),
		msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), "b"),
	} {
		data = msgp.AppendArrayHeader(data, 2)
		data = append(msgp.AppendUint64(msgp.AppendArrayHeader(data, 2), 1700000000), 0x80) // [[time, {}], body]
		data = append(data, body...)
	}
	if got := in.Flush(data, "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if fmt.Sprint(prod.sent) != `[{"log":"a"} {"log":"b"}]` || in.Stats.Failed.Load() != 2 ||
		sink.Count("2 of 4 records cannot be encoded and were dropped; the first, record 1: its body is not a map but a msgpack array") != 1 {
		t.Fatalf("sent %q, failed %d; log:\n%s", prod.sent, in.Stats.Failed.Load(), sink)
	}
}

// TestBatchRecordReadersTake: in batch mode a record longer than
// gokafka-batch reads is dropped, logged, and the others are sent.
func TestBatchRecordReadersTake(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Message_Mode": "batch", "Buffer_Memory": "256M", "Timestamp_Key": "off"})
	var recs []fixture.Record
	for _, m := range []string{"a", strings.Repeat("x", batch.MaxRecord), "b"} {
		recs = append(recs, fixture.Record{Body: []fixture.KV{{Key: "log", Value: m}}})
	}
	if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{ChunkBytes: 1 << 30})[0], "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%.2000s", got, sink)
	}
	var sent []string
	for _, m := range prod.msgs {
		if err := batch.Records([]byte(m.value), batch.NDJSON, func(r []byte) error { sent = append(sent, string(r)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(sent) != `[{"log":"a"} {"log":"b"}]` || in.Stats.Failed.Load() != 1 ||
		sink.Count("1 of 3 records cannot be encoded and were dropped") != 1 || sink.Count("longer than the 64 MiB that batch mode's readers") != 1 {
		t.Fatalf("sent %.100q, failed %d; log:\n%.2000s", sent, in.Stats.Failed.Load(), sink)
	}
}

// TestDeadLetteredNotSentAgainOnRetry: a record sent to the dead-letter
// topic is settled: the chunk's retry, for another record, does not send it
// there again.
func TestDeadLetteredNotSentAgainOnRetry(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"DLQ_Topic": "dead", "Timestamp_Key": "off"})
	chunk := chunkOf("permanent b", "flaky c")
	if got := in.Flush(chunk, "t"); got != Retry {
		t.Fatalf("Flush = %d, want Retry; log:\n%s", got, sink)
	}
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("retry: Flush = %d; log:\n%s", got, sink)
	}
	dead := 0
	for _, m := range prod.msgs {
		if m.topic == "dead" {
			dead++
		}
	}
	if dead != 1 || in.Stats.DeadLettered.Load() != 1 || fmt.Sprint(in.DeliveredByTopic()) != "map[dead:1 fluent-bit:1]" {
		t.Fatalf("%d dead letters, dead-lettered %d, delivered %v; log:\n%s", dead, in.Stats.DeadLettered.Load(), in.DeliveredByTopic(), sink)
	}
}

// TestNegativeEventTimeIsProduceTime: a float timestamp just before the
// epoch (-0.5 s) gives no negative Kafka timestamp, which Kafka refuses:
// the record goes with the produce time.
func TestNegativeEventTimeIsProduceTime(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off", "Kafka_Timestamp": "event"})
	data := msgp.AppendFloat64(msgp.AppendArrayHeader(nil, 2), -0.5)
	data = msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(data, 1), "log"), "x")
	if got := in.Flush(data, "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if len(prod.msgs) != 1 || prod.msgs[0].timeMs != 0 {
		t.Fatalf("%v, want one message with timestamp 0", prod.msgs)
	}
}

// TestBatchMessagesWithinBatchSize: in batch mode the records of one flush
// are cut into batch messages of at most Batch_Size bytes of records, in
// their order.
func TestBatchMessagesWithinBatchSize(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Message_Mode": "batch", "Batch_Size": "4K", "Timestamp_Key": "off"})
	var msgs []string
	for i := range 200 {
		msgs = append(msgs, fmt.Sprintf("record %03d %s", i, strings.Repeat("y", 40)))
	}
	if got := in.Flush(chunkOf(msgs...), "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	var got []string
	for i, m := range prod.msgs {
		size := 0
		if err := batch.Records([]byte(m.value), batch.NDJSON, func(r []byte) error {
			size += len(r) + 1 // and its newline
			got = append(got, string(r))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if size > int(in.cfg.BatchSize) {
			t.Errorf("batch message %d of %d holds %d bytes of records, over Batch_Size %d", i, len(prod.msgs), size, in.cfg.BatchSize)
		}
	}
	if len(got) != len(msgs) || len(prod.msgs) < 2 {
		t.Fatalf("%d records in %d batch messages", len(got), len(prod.msgs))
	}
	for i, r := range got {
		if want := fmt.Sprintf(`{"log":%q}`, msgs[i]); r != want {
			t.Fatalf("record %d is %s, want %s", i, r, want)
		}
	}
}

// TestMetadataHeadersOff: without Metadata_Headers, a record's metadata
// gives no headers.
func TestMetadataHeadersOff(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off"})
	recs := []fixture.Record{{Time: time.Unix(1700000000, 0), Metadata: []fixture.KV{{Key: "source", Value: "tail"}}, Body: []fixture.KV{{Key: "log", Value: "a"}}}}
	if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0], "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if len(prod.msgs) != 1 || len(prod.msgs[0].headers) != 0 {
		t.Fatalf("%v, want no headers", prod.msgs)
	}
}

// TestMetadataHeaderNameAtTheLimit: a metadata key of 65536 bytes, one
// more than a header name's length holds, gives no header (its length would
// be written as 0, and the C producer would read the rest as garbage).
func TestMetadataHeaderNameAtTheLimit(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off", "Metadata_Headers": "on"})
	recs := []fixture.Record{{Time: time.Unix(1700000000, 0), Metadata: []fixture.KV{{Key: strings.Repeat("k", 1<<16), Value: "v"}, {Key: "source", Value: "tail"}},
		Body: []fixture.KV{{Key: "log", Value: "a"}}}}
	if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0], "t"); got != OK {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
	if len(prod.msgs) != 1 || fmt.Sprint(prod.msgs[0].headers) != "[[source tail]]" {
		t.Fatalf("%v, want the source header only", prod.msgs)
	}
}

// TestMalformedBodyIsAMalformedChunk: a body cut short, which the encoder
// cannot write, makes the chunk malformed there (the chunk is dropped once
// the records before it are settled), not a record that cannot be encoded.
func TestMalformedBodyIsAMalformedChunk(t *testing.T) {
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, conf.MapGetter{"Timestamp_Key": "off"})
	data := msgp.AppendInt64(msgp.AppendArrayHeader(chunkOf("a"), 2), 1700000000)
	data = msgp.AppendString(msgp.AppendMapHeader(data, 1), "log") // and no value
	if got := in.Flush(data, "t"); got != Error {
		t.Fatalf("Flush = %d, want Error; log:\n%s", got, sink)
	}
	if fmt.Sprint(prod.sent) != `[{"log":"a"}]` || !strings.Contains(sink.String(), "malformed chunk at byte") || strings.Contains(sink.String(), "cannot be encoded") {
		t.Fatalf("sent %q; log:\n%s", prod.sent, sink)
	}
}

// TestStagesOfManyTopicsNotKept: a flushState keeps the stages of at most
// maxStagedTopics topics, however small, between flushes.
func TestStagesOfManyTopicsNotKept(t *testing.T) {
	st := &flushState{topics: make(map[string]*topicStage), partitions: make(map[string]int)}
	st.reset(nil)
	for i := range maxStagedTopics + 1 {
		st.stage(fmt.Appendf(nil, "topic-%d", i), -1)
	}
	st.reset(nil)
	if len(st.topics) > maxStagedTopics {
		t.Fatalf("%d stages kept", len(st.topics))
	}
}

// TestRetryMemoryPutTwice: a chunk remembered twice (two flushes of the
// same bytes) is one entry, the newest, counted once.
func TestRetryMemoryPutTwice(t *testing.T) {
	m := newRetryMemory(10 * (1000 + chunkCost))
	k := chunkKey{sum: 1}
	w1, w2 := accumulator.NewWaiter(1000), accumulator.NewWaiter(1000)
	m.put(k, w1, 0)
	m.put(k, w2, 1)
	if m.order.Len() != 1 || m.records != 1000+chunkCost {
		t.Fatalf("%d entries, %d records", m.order.Len(), m.records)
	}
	if w, lane := m.take(k); w != w2 || lane != 1 {
		t.Fatalf("took the waiter of lane %d, want the newest", lane)
	}
}

// TestQuickFailureIsNoStall: a flush that gives up at once (Max_Block 0,
// memory full) while Kafka is merely slow does not note a stall: only a
// wait of stalledWait at least with nothing acknowledged shortens the next
// flushes.
func TestQuickFailureIsNoStall(t *testing.T) {
	prod := &fakeProducer{hold: true}
	in, sink := newInstance(t, prod, conf.MapGetter{"Flush_Timeout": "10s", "Max_Block": "0", "Buffer_Memory": "1M", "Batch_Size": "1K"})
	filling := fillMemory(t, in, prod)
	if got := in.Flush(chunkOf(strings.Repeat("y", 600<<10)), "t"); got != Retry {
		t.Fatalf("Flush = %d, want Retry", got)
	}
	stalled := in.stalledAt.Load()
	prod.release()
	if got := <-filling; got != OK {
		t.Fatalf("the first flush = %d", got)
	}
	if stalled != -1 || strings.Contains(sink.String(), "Kafka acknowledged nothing") {
		t.Fatalf("stalled at %d; log:\n%s", stalled, sink)
	}
}
