package rdk_test

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/rdk"
	"github.com/gokafka/gokafka/sender"
	"github.com/gokafka/gokafka/test/kafkatest"
	"github.com/gokafka/gokafka/test/logsink"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

func staged(first, n int) *accumulator.Staged {
	s := &accumulator.Staged{}
	for i := first; i < first+n; i++ {
		start := len(s.Buf)
		s.Buf = fmt.Appendf(s.Buf, "record %d", i)
		s.Add(i-first, start, len(s.Buf), len(s.Buf), false, 0)
	}
	return s
}

// stagedFrom is staged for records first to first+n-1 of one chunk.
func stagedFrom(first, n int) *accumulator.Staged {
	s := staged(first, n)
	for i := range s.Idx {
		s.Idx[i] += int32(first)
	}
	return s
}

// send appends n records through the sender and waits for their reports.
func send(t *testing.T, acc *accumulator.Accumulator, first, n int) accumulator.Result {
	w := accumulator.NewWaiter(n)
	if got, err := acc.Append(topic, -1, 0, staged(first, n), w, time.Now().Add(time.Minute)); got != n || err != nil {
		t.Fatal(got, err)
	}
	res, ok := acc.Wait(w, time.Now().Add(30*time.Second), accumulator.Sleep)
	if !ok {
		t.Fatalf("no reports: %+v", res)
	}
	return res
}

var topic string

// startSender starts a sender, with producers made from props, over an
// accumulator of 64 KiB batches; their logs are dropped.
func startSender(t *testing.T, props []conf.Property) (*accumulator.Accumulator, *sender.Sender) {
	t.Helper()
	acc, snd, _ := startLoggedSender(t, props, func(int, string) {})
	return acc, snd
}

// startLoggedSender is startSender with the sender's and producers' logs
// going to log; it also returns the producer the sender made first.
func startLoggedSender(t *testing.T, props []conf.Property, log rdk.Logger) (*accumulator.Accumulator, *sender.Sender, *rdk.Producer) {
	t.Helper()
	var first *rdk.Producer
	newProd := func() (sender.Producer, error) {
		p, err := rdk.New(props, log, rdk.NewCauses(), nil)
		if first == nil {
			first = p
		}
		return p, err
	}
	acc := accumulator.New(64<<10, 16<<20, 0, rdk.Allocator{})
	snd, err := sender.Start(acc, newProd, 1, log)
	if err != nil {
		t.Fatal(err)
	}
	return acc, snd, first
}

// TestFatalErrorRecreatesProducer: after a fatal librdkafka error (as a
// fenced idempotent producer raises), the sender makes a new producer and
// delivery goes on; the records of the old one fail retriably.
func TestFatalErrorRecreatesProducer(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic = kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 2)
	cfg, err := conf.Load(conf.MapGetter{"Brokers": bootstrap}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &logsink.Sink{}
	var mu sync.Mutex
	var prods []*rdk.Producer
	newProd := func() (sender.Producer, error) {
		p, err := rdk.New(cfg.Rdkafka, sink.Log, rdk.NewCauses(), nil)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		prods = append(prods, p)
		mu.Unlock()
		return p, nil
	}
	acc := accumulator.New(64<<10, 16<<20, 0, rdk.Allocator{})
	snd, err := sender.Start(acc, newProd, 1, sink.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close(time.Now().Add(5 * time.Second))

	if res := send(t, acc, 0, 1000); res.Delivered != 1000 {
		t.Fatalf("before: %+v", res)
	}
	prods[0].InjectFatal("test: producer fenced")
	if prods[0].Fatal() == nil {
		t.Fatal("no fatal error after injecting one")
	}
	if res := send(t, acc, 1000, 1000); res.Delivered != 1000 {
		t.Fatalf("after: %+v\n%s", res, sink)
	}
	if snd.Recreated() != 1 || len(prods) != 2 || !strings.Contains(sink.String(), "producer 1 failed (OUT_OF_ORDER_SEQUENCE_NUMBER") {
		t.Fatalf("recreated %d, %d producers; log:\n%s", snd.Recreated(), len(prods), sink)
	}
	msgs := kafkatest.Consume(t, bootstrap, topic, 2000, time.Minute)
	t.Logf("%d records sent, %d consumed, producer recreated %d time(s)", 2000, len(msgs), snd.Recreated())
	if len(msgs) != 2000 {
		t.Fatalf("%d messages", len(msgs))
	}
}

// TestWaitingFlushSendsAtOnce: the records a flush waits for go out at once,
// not after librdkafka's linger.ms (here 4 minutes, far past the flush's
// deadline), unless the operator set linger.ms (here 12 s: they go out
// before Close's deadline).
func TestWaitingFlushSendsAtOnce(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic = kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)
	cfg, err := conf.Load(conf.MapGetter{"Brokers": bootstrap}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, byOperator := range []bool{false, true} {
		linger := map[bool]string{false: "240000", true: "12000"}[byOperator]
		props := append(slices.Clone(cfg.Rdkafka), conf.Property{Key: "linger.ms", Value: linger, FromUser: byOperator})
		acc, snd := startSender(t, props)
		w := accumulator.NewWaiter(100)
		if got, err := acc.Append(topic, -1, 0, staged(0, 100), w, time.Now().Add(time.Minute)); got != 100 || err != nil {
			t.Fatal(got, err)
		}
		lane := snd.Lane(-1)
		lane.SendAll()
		wait := time.Minute // for a new producer to connect and deliver
		if byOperator {
			wait = 3 * time.Second
		}
		res, acked := lane.Wait(w, time.Now().Add(wait))
		lane.Release()
		snd.Close(time.Now().Add(30 * time.Second))
		if byOperator && (acked || res.Delivered != 0) {
			t.Errorf("linger.ms set by the operator: %d of 100 delivered within %v, want 0", res.Delivered, wait)
		}
		if !byOperator && (!acked || res.Delivered != 100) {
			t.Errorf("%d of 100 delivered within %v, want all", res.Delivered, wait)
		}
	}
	if msgs := kafkatest.Consume(t, bootstrap, topic, 200, time.Minute); len(msgs) != 200 {
		t.Fatalf("%d messages in the topic, want 200", len(msgs))
	}
}

// TestKeylessBatchesTakeTurns: the records without a key of one batch go
// to one partition, and a topic's consecutive batches to the next partition
// each, also when batches of two topics alternate; unless the operator set
// the partitioner's stickiness, which then spreads them. The first batch of
// a topic finds every partition's leader known only after it is sent, so
// the turns are checked on the batches after it.
func TestKeylessBatchesTakeTurns(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	cfg, err := conf.Load(conf.MapGetter{"Brokers": bootstrap}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const partitions, batches, perBatch = 3, 5, 200 // batches per topic; a batch of 64 KiB holds 270 records
	for _, byOperator := range []bool{false, true} {
		topics := []string{kafkatest.UniqueTopic(t) + "-a", kafkatest.UniqueTopic(t) + "-b"}
		for _, name := range topics {
			kafkatest.CreateTopic(t, bootstrap, name, partitions)
		}
		props := cfg.Rdkafka
		if byOperator {
			props = append(slices.Clone(props), conf.Property{Key: "sticky.partitioning.linger.ms", Value: "0", FromUser: true})
		}
		acc, snd := startSender(t, props)
		for i := range batches {
			for _, name := range topics {
				topic = name
				if res := send(t, acc, i*perBatch, perBatch); res.Delivered != perBatch {
					t.Fatalf("%s batch %d: %+v", name, i, res)
				}
			}
		}
		snd.Close(time.Now().Add(30 * time.Second))
		for _, name := range topics {
			msgs := kafkatest.Consume(t, bootstrap, name, batches*perBatch, time.Minute)
			if len(msgs) != batches*perBatch {
				t.Fatalf("%d messages in %s, want %d", len(msgs), name, batches*perBatch)
			}
			counts := make([]map[int32]int, batches) // records per partition of each batch
			for i := range counts {
				counts[i] = map[int32]int{}
			}
			for _, m := range msgs {
				var n int
				if _, err := fmt.Sscanf(string(m.Value), "record %d", &n); err != nil {
					t.Fatal(err)
				}
				counts[n/perBatch][m.TopicPartition.Partition]++
			}
			t.Logf("operator's stickiness %v: records per partition of each batch to %s %v", byOperator, name, counts)
			if byOperator {
				if len(counts[0]) == 1 {
					t.Errorf("with the operator's stickiness 0, a batch went to one partition: %v", counts[0])
				}
				continue
			}
			prev := int32(-1)
			for i, c := range counts {
				if len(c) != 1 {
					t.Errorf("%s batch %d went to %d partitions: %v", name, i, len(c), c)
					continue
				}
				for p := range c {
					if i > 1 && p != (prev+1)%partitions {
						t.Errorf("%s batch %d went to partition %d, batch %d to %d, want the next one: %v", name, i-1, prev, i, p, counts)
					}
					prev = p
				}
			}
		}
	}
}

// TestKeylessBatchesSkipLeaderlessPartitions: while some partitions have no
// leader (their one replica's node is stopped), keyless batches take turns
// over the others evenly, rather than the next partition taking a
// leaderless one's turns too.
func TestKeylessBatchesSkipLeaderlessPartitions(t *testing.T) {
	c := kafkatest.StartCluster(t)
	topic = kafkatest.UniqueTopic(t)
	const partitions, batches, perBatch = 6, 12, 100
	kafkatest.CreateTopicReplicas(t, c.Bootstrap(), topic, partitions, 1) // 2 partitions per node
	c.StopNode(2)
	// The producer starts once both nodes left know it: a partition it took
	// for led by node 2 would hold its batch until node 2 is back.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		seen1, seen3 := kafkatest.Leaderless(t, c.Addr(1), topic), kafkatest.Leaderless(t, c.Addr(3), topic)
		if seen1 == partitions/3 && seen3 == partitions/3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions without a leader: %d seen by node 1, %d by node 3; want %d", seen1, seen3, partitions/3)
		}
	}
	cfg, err := conf.Load(conf.MapGetter{"Brokers": c.Bootstrap()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, snd := startSender(t, cfg.Rdkafka)
	// librdkafka counts a partition available once its leader's thread has
	// taken it, a moment after the metadata: until then the first batch
	// could go to any partition.
	// A lookup that fails is not asked again for 10 s: on a loaded machine
	// the first may.
	lane := snd.Lane(-1)
	n := lane.Partitions(topic, time.Now().Add(time.Second), false)
	for end := time.Now().Add(30 * time.Second); n != partitions && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
		n = lane.Partitions(topic, time.Now().Add(time.Second), false)
	}
	if n != partitions {
		t.Fatalf("%d partitions after 30 s, want %d", n, partitions)
	}
	lane.Release()
	time.Sleep(3 * time.Second)
	for i := range batches {
		if res := send(t, acc, i*perBatch, perBatch); res.Delivered != perBatch {
			t.Fatalf("batch %d: %+v", i, res)
		}
	}
	snd.Close(time.Now().Add(30 * time.Second))
	counts := map[int32]int{}
	for _, m := range kafkatest.Consume(t, c.Bootstrap(), topic, batches*perBatch, time.Minute) {
		counts[m.TopicPartition.Partition]++
	}
	t.Logf("records per partition: %v", counts)
	const available = partitions - partitions/3
	if len(counts) != available {
		t.Fatalf("records went to %d partitions, want the %d with a leader: %v", len(counts), available, counts)
	}
	for p, n := range counts {
		if n != batches/available*perBatch {
			t.Errorf("partition %d has %d records, want %d: %v", p, n, batches/available*perBatch, counts)
		}
	}
}

// TestFullQueueFailsRecords: when librdkafka's queue is full (an operator
// may bound it with rdkafka.queue.buffering.max.messages) and no broker is
// up, producing fails the records that do not fit, for a retry, rather than
// blocking the flush until they time out; the queued ones fail when their
// message.timeout.ms passes.
func TestFullQueueFailsRecords(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "127.0.0.1:1",
		"rdkafka.queue.buffering.max.messages": "10", "rdkafka.message.timeout.ms": "2000"}, []string{"queue.buffering.max.messages", "message.timeout.ms"})
	if err != nil {
		t.Fatal(err)
	}
	acc, snd := startSender(t, cfg.Rdkafka)
	defer snd.Close(time.Now())
	w := accumulator.NewWaiter(100)
	if got, err := acc.Append("t", -1, 0, staged(0, 100), w, time.Now().Add(time.Minute)); got != 100 || err != nil {
		t.Fatal(got, err)
	}
	lane := snd.Lane(-1)
	defer lane.Release()
	sent := make(chan struct{})
	go func() {
		lane.SendAll()
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(time.Minute): // blocked, each record waiting for a place
		t.Fatal("producing blocked on the full queue")
	}
	// Had producing waited for room, every record would have been queued
	// and timed out.
	res, ok := lane.Wait(w, time.Now().Add(30*time.Second))
	want := map[string]int{"Local: Queue full": 90, "Local: Message timed out": 10}
	got := map[string]int{}
	for _, e := range res.Examples {
		got[e.Reason] += e.Records
	}
	if !ok || res.Retriable != 100 || !maps.Equal(got, want) {
		t.Fatalf("%+v, want 100 failed for a retry: %v", res, want)
	}
}

// TestNoThreadsLeft: creating and closing producers leaves no librdkafka
// thread behind, as a hot reload of Fluent Bit requires.
func TestNoThreadsLeft(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": kafkatest.Bootstrap(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := threads(t)
	for i := 0; i < 5; i++ {
		p, err := rdk.New(cfg.Rdkafka, func(int, string) {}, rdk.NewCauses(), nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Poll(50*time.Millisecond, nil)
		if done, left := p.Close(); len(done)+len(left) != 0 {
			t.Fatalf("%d batches completed, %d left", len(done), len(left))
		}
	}
	// Go may keep an OS thread or two of its own; librdkafka starts several
	// per producer and broker.
	if after := threads(t); after > before+2 {
		t.Fatalf("%d threads before, %d after 5 producers", before, after)
	}
}

// producerToNowhere makes a producer of the plugin's settings for a broker
// that is not there.
func producerToNowhere(t *testing.T) *rdk.Producer { return producerFor(t, "127.0.0.1:1") }

// producerFor makes a producer of the plugin's settings for brokers.
func producerFor(t *testing.T, brokers string) *rdk.Producer {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rdk.New(cfg.Rdkafka, func(int, string) {}, rdk.NewCauses(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCloseFreesBatches: closing a producer with batches in flight (here
// to no broker) returns each of them once, completed (their records purged
// from librdkafka's queues fail for a retry) or not, and frees their C
// state, which librdkafka holds until it reports on their every record.
func TestCloseFreesBatches(t *testing.T) {
	p := producerToNowhere(t)
	before := rdk.LiveBatches()
	acc := accumulator.New(64<<10, 16<<20, 0, rdk.Allocator{})
	w := accumulator.NewWaiter(40)
	for partition := range 4 {
		if got, err := acc.Append("t", int32(partition)-1, 0, stagedFrom(partition*10, 10), w, time.Now().Add(time.Minute)); got != 10 || err != nil {
			t.Fatal(got, err)
		}
	}
	batches := acc.DrainAll(0, nil)
	for _, b := range batches {
		p.Produce(b)
	}
	done, left := p.Close()
	for _, c := range done {
		acc.Complete(c.Batch, c.Failures)
	}
	for _, b := range left {
		acc.Abort(b, "closed")
	}
	if len(done)+len(left) != len(batches) || rdk.LiveBatches() != before {
		t.Fatalf("%d completed and %d unreported of %d batches, %d C batches not freed", len(done), len(left), len(batches), rdk.LiveBatches()-before)
	}
	if res, ok := acc.Wait(w, time.Now(), accumulator.Sleep); !ok || res.Retriable != 40 {
		t.Fatalf("%+v, want all 40 failed for a retry", res)
	}
}

// TestSenderCloseCountsPurged: records librdkafka still holds when the
// sender closes (no broker here) are purged, fail for a retry, and are
// counted as given up.
func TestSenderCloseCountsPurged(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, snd := startSender(t, cfg.Rdkafka)
	w := accumulator.NewWaiter(40)
	if got, err := acc.Append("t", -1, 0, staged(0, 40), w, time.Now().Add(time.Minute)); got != 40 || err != nil {
		t.Fatal(got, err)
	}
	if _, ok := acc.Wait(w, time.Now().Add(200*time.Millisecond), accumulator.Sleep); ok {
		t.Fatal("reports without a broker")
	}
	if n := snd.Close(time.Now()); n != 40 {
		t.Errorf("Close gave up %d records, want 40", n)
	}
	if res, ok := acc.Wait(w, time.Now(), accumulator.Sleep); !ok || res.Retriable != 40 {
		t.Errorf("%+v, want all 40 failed for a retry", res)
	}
}

// TestPollTakesEveryCompletion: more batches complete at once than one Poll
// takes; the next Poll takes the rest at once rather than sleeping out its
// timeout for a wake-up that already came.
func TestPollTakesEveryCompletion(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)
	p := producerFor(t, bootstrap)
	defer p.Close()
	acc := accumulator.New(1<<10, 16<<20, 0, rdk.Allocator{})
	const n = 700 // batches, more than twice what one Poll takes
	w := accumulator.NewWaiter(n)
	for i := range n {
		if got, err := acc.Append(topic, 0, 0, stagedFrom(i, 1), w, time.Now().Add(time.Minute)); got != 1 || err != nil {
			t.Fatal(got, err)
		}
		for _, b := range acc.DrainAll(0, nil) { // one record each
			p.Produce(b)
		}
	}
	var done []sender.Completion
	for got := 0; got < n; {
		start := time.Now()
		done = p.Poll(time.Minute, done[:0])
		if took := time.Since(start); took > 30*time.Second {
			t.Fatalf("a Poll waited %v with %d of %d batches taken", took, got, n)
		}
		for _, c := range done {
			acc.Complete(c.Batch, c.Failures)
		}
		got += len(done)
	}
	if res, ok := acc.Wait(w, time.Now(), accumulator.Sleep); !ok || res.Delivered != n {
		t.Errorf("%+v", res)
	}
}

// TestCloseReturnsAcknowledged: closing a producer after Kafka
// acknowledged a batch whose reports no Poll or Wait took yet returns the
// batch completed, with its records delivered, not as unreported (which
// the sender would fail for a retry, and send again).
func TestCloseReturnsAcknowledged(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)
	p := producerFor(t, bootstrap)
	acc := accumulator.New(64<<10, 16<<20, 0, rdk.Allocator{})
	w := accumulator.NewWaiter(10)
	if got, err := acc.Append(topic, -1, 0, staged(0, 10), w, time.Now().Add(time.Minute)); got != 10 || err != nil {
		t.Fatal(got, err)
	}
	for _, b := range acc.DrainAll(0, nil) {
		p.Produce(b)
	}
	if msgs := kafkatest.Consume(t, bootstrap, topic, 10, 30*time.Second); len(msgs) != 10 {
		t.Fatalf("%d messages in the topic, want 10", len(msgs))
	}
	time.Sleep(time.Second) // for the report, which nobody polls
	done, left := p.Close()
	for _, c := range done {
		acc.Complete(c.Batch, c.Failures)
	}
	for _, b := range left {
		acc.Abort(b, "closed")
	}
	if res, _ := acc.Wait(w, time.Now(), accumulator.Sleep); res.Delivered != 10 || acc.Acknowledged() != 10 {
		t.Fatalf("Kafka holds the 10 records; %d batches completed, %d unreported: %+v", len(done), len(left), res)
	}
}

// TestUnrecordedFailureFailsBatch: a failure that C has no memory to
// record fails every record of its batch not otherwise failed, for a
// retry, rather than passing for an acknowledgement. Here the queue holds
// 10 records, the other 90 fail at once, and the first failure finds no
// memory.
func TestUnrecordedFailureFailsBatch(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "127.0.0.1:1", "rdkafka.queue.buffering.max.messages": "10"}, []string{"queue.buffering.max.messages"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := rdk.New(cfg.Rdkafka, func(int, string) {}, rdk.NewCauses(), nil)
	if err != nil {
		t.Fatal(err)
	}
	acc := accumulator.New(64<<10, 16<<20, 0, rdk.Allocator{})
	w := accumulator.NewWaiter(100)
	if got, err := acc.Append("t", -1, 0, staged(0, 100), w, time.Now().Add(time.Minute)); got != 100 || err != nil {
		t.Fatal(got, err)
	}
	batches := acc.DrainAll(0, nil)
	rdk.FailAllocs(1)
	for _, b := range batches {
		p.Produce(b)
	}
	rdk.FailAllocs(0)
	done, left := p.Close() // the queued 10 are purged: the batch completes
	for _, c := range done {
		acc.Complete(c.Batch, c.Failures)
	}
	for _, b := range left {
		acc.Abort(b, "closed")
	}
	if res, _ := acc.Wait(w, time.Now(), accumulator.Sleep); len(done) != 1 || res.Delivered != 0 || res.Retriable != 100 {
		t.Fatalf("%d batches completed: %+v, want all 100 records failed for a retry", len(done), res)
	}
}

// TestPermanentErrors: the errors that no retry can cure drop a record (or
// send it to the dead-letter topic); others are retried. Refusals for a
// timestamp or for another record of the request are told apart, as a
// resend at once may cure them.
func TestPermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		err       kafka.ErrorCode
		permanent bool
		refusal   accumulator.Refusal
	}{
		{kafka.ErrMsgSizeTooLarge, true, accumulator.OtherRefusal},
		{kafka.ErrInvalidTimestamp, false, accumulator.RefusedTimestamp}, // outside message.timestamp.before.max.ms, this record or another
		{kafka.ErrInvalidRecord, true, accumulator.RefusedInvalid},       // one of several refused records of a request
		{kafka.ErrInvalidDifferentRecord, false, accumulator.RefusedBeside},
		{kafka.ErrUnsupportedForMessageFormat, true, accumulator.OtherRefusal},
		{kafka.ErrPolicyViolation, true, accumulator.OtherRefusal},
		{kafka.ErrInvalidMsg, false, accumulator.OtherRefusal}, // a CRC error on the way: librdkafka retries it too
		{kafka.ErrNotLeaderForPartition, false, accumulator.OtherRefusal},
		{kafka.ErrRequestTimedOut, false, accumulator.OtherRefusal},
		{kafka.ErrMsgTimedOut, false, accumulator.OtherRefusal},
		{kafka.ErrPurgeQueue, false, accumulator.OtherRefusal},
		{kafka.ErrQueueFull, false, accumulator.OtherRefusal},
		{kafka.ErrTopicException, true, accumulator.OtherRefusal},
		{kafka.ErrRecordListTooLarge, true, accumulator.OtherRefusal},
		{kafka.ErrInvalidMsgSize, true, accumulator.OtherRefusal},
		{kafka.ErrBadMsg, true, accumulator.OtherRefusal},
		{kafka.ErrInvalidArg, true, accumulator.OtherRefusal},
	} {
		if got := rdk.Permanent(int(tc.err)); got != tc.permanent {
			t.Errorf("%v: permanent %v, want %v", tc.err, got, tc.permanent)
		}
		if got := rdk.Refusal(int(tc.err)); got != tc.refusal {
			t.Errorf("%v: refusal %v, want %v", tc.err, got, tc.refusal)
		}
	}
	// A small record refused as too large was refused with its request.
	if r := rdk.Reason(int(kafka.ErrMsgSizeTooLarge), true); !strings.Contains(r, "Message size too large") || !strings.Contains(r, "the topic's max.message.bytes") {
		t.Errorf("reason %q", r)
	}
}

// TestBatchBoundsCMemory: what librdkafka allocates for a batch's records
// (messages, with copies of their keys and headers) and the batch's C state
// fit in the room the accumulator leaves in the batch's buffer, so that
// Buffer_Memory bounds C's memory too. It counts with glibc's malloc
// statistics, in a process of its own with every thread's allocations in
// one arena.
func TestBatchBoundsCMemory(t *testing.T) {
	const oneArena = "glibc.malloc.arena_max=1"
	if tunables := os.Getenv("GLIBC_TUNABLES"); !strings.Contains(tunables, oneArena) {
		if tunables != "" {
			tunables += ":"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestBatchBoundsCMemory$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "GLIBC_TUNABLES="+tunables+oneArena)
		out, err := cmd.CombinedOutput()
		t.Logf("in a process of its own:\n%s", out)
		switch {
		case err != nil:
			t.Fatal(err)
		case bytes.Contains(out, []byte("--- SKIP: TestBatchBoundsCMemory")):
			t.Skip("skipped in its own process")
		case !bytes.Contains(out, []byte("--- PASS: TestBatchBoundsCMemory")):
			t.Fatal("the test did not run in its own process")
		}
		return
	}
	if rdk.MallocInUse() < 0 {
		t.Skip("no mallinfo2 (glibc < 2.33)")
	}
	runtime.LockOSThread() // the allocations of one thread, between the counts
	defer runtime.UnlockOSThread()
	for _, shape := range []struct{ key, headers, name, value int }{
		{0, 0, 0, 0}, {1, 0, 0, 0}, {100, 0, 0, 0}, {0, 1, 1, 1}, {0, 3, 12, 40}, {16, 10, 8, 8}, {0, 2, 10, 1000},
	} {
		p := producerToNowhere(t)
		acc := accumulator.New(256<<10, 64<<20, 0, rdk.Allocator{})
		const n = 5000
		s := &accumulator.Staged{}
		for i := range n {
			start := len(s.Buf)
			s.Buf = fmt.Appendf(s.Buf, "record %d", i)
			keyStart := len(s.Buf)
			s.Buf = append(s.Buf, strings.Repeat("k", shape.key)...)
			hdrStart := len(s.Buf)
			for range shape.headers {
				s.Buf = accumulator.AppendHeader(s.Buf, []byte(strings.Repeat("n", shape.name)), []byte(strings.Repeat("v", shape.value)))
			}
			s.Add(i, start, keyStart, hdrStart, shape.key > 0, 0)
		}
		w := accumulator.NewWaiter(n)
		if got, err := acc.Append("t", -1, 0, s, w, time.Now().Add(time.Minute)); got != n || err != nil {
			t.Fatal(got, err)
		}
		batches := acc.DrainAll(0, nil)
		p.Produce(batches[len(batches)-1]) // the topic's handle is made
		b := batches[0]                    // full: the next record did not fit
		before := rdk.MallocInUse()
		p.Produce(b)
		inC := rdk.MallocInUse() - before
		if len(b.Buf)+inC > cap(b.Buf) {
			t.Errorf("key %d, %d headers of %d+%d bytes: %d records take %d bytes of a %d-byte batch and %d in C, %d a record more than it leaves",
				shape.key, shape.headers, shape.name, shape.value, len(b.Recs), len(b.Buf), cap(b.Buf), inC, (len(b.Buf)+inC-cap(b.Buf))/len(b.Recs))
		} else {
			t.Logf("key %d, %d headers of %d+%d bytes: %d records, %d bytes in C, %d a record; %d bytes left",
				shape.key, shape.headers, shape.name, shape.value, len(b.Recs), inC, inC/len(b.Recs), cap(b.Buf)-len(b.Buf)-inC)
		}
		done, left := p.Close()
		for _, c := range done {
			acc.Complete(c.Batch, c.Failures)
		}
		for _, b := range append(left, batches[1:len(batches)-1]...) {
			acc.Abort(b, "closed")
		}
	}
}

func threads(t *testing.T) int {
	tasks, err := os.ReadDir(filepath.Join("/proc", fmt.Sprint(os.Getpid()), "task"))
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}

// TestPartitions: batch mode asks the cluster for a topic's partition count;
// without a cluster the answer is -1 within about a second, and is not asked
// again at once. A topic the broker creates when asked (auto-create) is
// known at the first question.
func TestPartitions(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	created, auto := kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t)+"-auto"
	kafkatest.CreateTopic(t, bootstrap, created, 3)
	for _, tc := range []struct {
		brokers, topic string
		want           int
	}{{bootstrap, created, 3}, {"127.0.0.1:1", created, -1}, {bootstrap, auto, 1}} { // the test broker creates topics of 1 partition
		cfg, err := conf.Load(conf.MapGetter{"Brokers": tc.brokers}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := rdk.New(cfg.Rdkafka, func(int, string) {}, rdk.NewCauses(), nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		first := p.Partitions(tc.topic, start.Add(time.Minute), false)
		firstTook := time.Since(start)
		second := p.Partitions(tc.topic, start.Add(time.Minute), false)
		p.Close()
		if first != tc.want || second != tc.want {
			t.Errorf("%s, topic %s: %d then %d partitions, want %d", tc.brokers, tc.topic, first, second, tc.want)
		}
		if firstTook > 10*time.Second { // far from the minute it may not wait
			t.Errorf("%s: asking took %v", tc.brokers, firstTook)
		}
	}
}

// TestPartitionsBounded: without a cluster, asking for a partition count
// ends at the deadline given, and once the cluster did not answer, no other
// topic is asked for a while: a flush of records for many new topics does
// not wait a second for each.
func TestPartitionsBounded(t *testing.T) {
	p := producerToNowhere(t)
	defer p.Close()
	if n := p.Partitions("a", time.Now().Add(100*time.Millisecond), false); n != -1 || !p.Asked("a") {
		t.Fatalf("%d partitions without a cluster, asked %v", n, p.Asked("a"))
	}
	for i := range 5 {
		topic := fmt.Sprint("t", i)
		if n := p.Partitions(topic, time.Now().Add(time.Minute), false); n != -1 || p.Asked(topic) {
			t.Fatalf("%d partitions without a cluster, asked %v", n, p.Asked(topic))
		}
	}
}

// TestPartitionsAskedAgainOnRetry: a count the cluster could not tell is
// not asked again for a while, except for a retry of the records held back
// for want of it: here the topic is created meanwhile.
func TestPartitionsAskedAgainOnRetry(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.UniqueTopic(t)
	cfg, err := conf.Load(conf.MapGetter{"Brokers": bootstrap, "rdkafka.allow.auto.create.topics": "false"}, []string{"allow.auto.create.topics"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := rdk.New(cfg.Rdkafka, func(int, string) {}, rdk.NewCauses(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if n := p.Partitions(topic, time.Now().Add(300*time.Millisecond), false); n != -1 {
		t.Fatalf("%d partitions before the topic exists", n)
	}
	kafkatest.CreateTopic(t, bootstrap, topic, 2)
	if n := p.Partitions(topic, time.Now().Add(time.Minute), false); n != -1 {
		t.Errorf("%d partitions: asked again at once", n)
	}
	if n := p.Partitions(topic, time.Now().Add(time.Minute), true); n != 2 {
		t.Errorf("%d partitions on a retry, want 2", n)
	}
}

// TestPartitionsRefreshed: partitions added to a topic are seen once the
// known count is older than librdkafka's metadata refresh interval (here
// 100 ms), asked in the background while the old count is still used.
func TestPartitionsRefreshed(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 2)
	cfg, err := conf.Load(conf.MapGetter{"Brokers": bootstrap, "rdkafka.topic.metadata.refresh.interval.ms": "100"},
		[]string{"topic.metadata.refresh.interval.ms"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := rdk.New(cfg.Rdkafka, func(int, string) {}, rdk.NewCauses(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if n := p.Partitions(topic, time.Now().Add(time.Minute), false); n != 2 {
		t.Fatalf("%d partitions, want 2", n)
	}
	kafkatest.AddPartitions(t, bootstrap, topic, 4)
	n := p.Partitions(topic, time.Now().Add(time.Minute), false)
	for deadline := time.Now().Add(30 * time.Second); n != 4 && time.Now().Before(deadline); n = p.Partitions(topic, deadline, false) {
		if n != 2 {
			t.Fatalf("%d partitions, want 2 until the new count is known", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n != 4 {
		t.Fatalf("%d partitions after adding 2, want 4", n)
	}
}

// TestPartitionsAskedAgainAfterUnknownPartition: a topic deleted and made
// again with fewer partitions refuses a batch placed by the old count
// (librdkafka's _UNKNOWN_PARTITION); the count is then asked again at once,
// so the records' retry goes to a partition that exists.
func TestPartitionsAskedAgainAfterUnknownPartition(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic = kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 3)
	cfg, err := conf.Load(conf.MapGetter{"Brokers": bootstrap}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, snd, prod := startLoggedSender(t, cfg.Rdkafka, func(int, string) {})
	defer snd.Close(time.Now().Add(5 * time.Second))
	if n := prod.Partitions(topic, time.Now().Add(time.Minute), false); n != 3 {
		t.Fatalf("%d partitions, want 3", n)
	}
	kafkatest.DeleteTopic(t, bootstrap, topic)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)

	w := accumulator.NewWaiter(10)
	if got, err := acc.Append(topic, 2, 0, staged(0, 10), w, time.Now().Add(time.Minute)); got != 10 || err != nil {
		t.Fatal(got, err)
	}
	res, ok := acc.Wait(w, time.Now().Add(time.Minute), accumulator.Sleep)
	if !ok || res.Delivered != 0 || len(res.Examples) == 0 || !strings.Contains(res.Examples[0].Reason, "Unknown partition") {
		t.Fatalf("records for partition 2 of a topic made again with 1: %+v", res)
	}
	if n := prod.Partitions(topic, time.Now().Add(time.Minute), true); n != 1 {
		t.Fatalf("%d partitions after Kafka refused partition 2, want 1", n)
	}
}

// TestCompactedTopicWithoutKey: a compacted topic refuses the records
// without a key, and their reason says so; it takes those with a key.
func TestCompactedTopicWithoutKey(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic = kafkatest.UniqueTopic(t)
	kafkatest.CreateTopicConfig(t, bootstrap, topic, 1, map[string]string{"cleanup.policy": "compact"})
	cfg, err := conf.Load(conf.MapGetter{"Brokers": bootstrap}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, snd := startSender(t, cfg.Rdkafka)
	defer snd.Close(time.Now().Add(5 * time.Second))
	s := &accumulator.Staged{}
	for i := range 10 {
		start := len(s.Buf)
		s.Buf = fmt.Appendf(s.Buf, "record %d", i)
		keyStart := len(s.Buf)
		if i%2 == 0 {
			s.Buf = fmt.Appendf(s.Buf, "key %d", i)
		}
		s.Add(i, start, keyStart, len(s.Buf), i%2 == 0, 0)
	}
	w := accumulator.NewWaiter(10)
	if got, err := acc.Append(topic, -1, 0, s, w, time.Now().Add(time.Minute)); got != 10 || err != nil {
		t.Fatal(got, err)
	}
	res, ok := acc.Wait(w, time.Now().Add(30*time.Second), accumulator.Sleep)
	if !ok || res.Delivered != 5 || res.Permanent != 5 || len(res.Examples) != 1 ||
		!strings.Contains(res.Examples[0].Reason, "cleanup.policy compact refuses messages without a key") {
		t.Fatalf("5 records with a key and 5 without to a compacted topic: %+v", res)
	}
	for i := range 10 {
		if acked := w.State(i) == accumulator.Acked; acked != (i%2 == 0) {
			t.Errorf("record %d (keyed %v): state %v", i, i%2 == 0, w.State(i))
		}
	}
}

// TestThrottleLogged: a broker that throttles the producer for a client
// quota is logged as a warning, and the records are delivered.
func TestThrottleLogged(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	topic = kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)
	kafkatest.SetProducerQuota(t, bootstrap, topic, 1024)
	cfg, err := conf.Load(conf.MapGetter{"Brokers": bootstrap, "Client_ID": topic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &logsink.Sink{}
	acc, snd, _ := startLoggedSender(t, cfg.Rdkafka, sink.Log)
	defer snd.Close(time.Now().Add(5 * time.Second))
	// Batches of 50 KiB that LZ4 cannot shrink to the quota, until one is
	// throttled (the broker applies a new quota a little later).
	const said = "throttles this producer for "
	for batches := 0; !strings.Contains(sink.String(), said); batches++ {
		if batches == 5 {
			t.Fatalf("no %q after %d batches of 50 times the quota; log:\n%s", said, batches, sink)
		}
		s := &accumulator.Staged{}
		for i := range 50 {
			start := len(s.Buf)
			for range 64 {
				s.Buf = fmt.Appendf(s.Buf, "%016x", rand.Uint64())
			}
			s.Add(i, start, len(s.Buf), len(s.Buf), false, 0)
		}
		w := accumulator.NewWaiter(50)
		if got, err := acc.Append(topic, -1, 0, s, w, time.Now().Add(time.Minute)); got != 50 || err != nil {
			t.Fatal(got, err)
		}
		if res, ok := acc.Wait(w, time.Now().Add(time.Minute), accumulator.Sleep); !ok || res.Delivered != 50 {
			t.Fatalf("50 records under a quota: %+v", res)
		}
		time.Sleep(time.Second) // the throttle is logged from the poll loop
	}
	if lines := sink.Matching(said); !strings.HasPrefix(lines[0], "2 ") || !strings.Contains(lines[0], "client quota") {
		t.Errorf("throttle logged as %q, want a warning (2)", lines)
	}
}

// TestAllBrokersDownBootstrapsAgain: when every broker the producer knows
// is down, it connects through bootstrap.servers again, twice in a row too
// (the second time when 30 s have passed since the first). librdkafka 2.15
// can drop every broker it knows (a metadata response that lists none, as a
// single broker fenced by its controller for a moment sends) and then not
// re-bootstrap by itself; here its own re-bootstrap is off, so only the
// plugin's brings the producer back.
func TestAllBrokersDownBootstrapsAgain(t *testing.T) {
	b := kafkatest.StartBroker(t, kafkatest.Options{})
	topic = kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, b.Bootstrap(), topic, 1)
	cfg, err := conf.Load(conf.MapGetter{"Brokers": b.Bootstrap(),
		"rdkafka.metadata.recovery.strategy": "none", "rdkafka.statistics.interval.ms": "100"},
		[]string{"metadata.recovery.strategy", "statistics.interval.ms"})
	if err != nil {
		t.Fatal(err)
	}
	sink := &logsink.Sink{}
	acc, snd, prod := startLoggedSender(t, cfg.Rdkafka, sink.Log)
	defer snd.Close(time.Now().Add(5 * time.Second))

	// waitUntil waits up to a minute for cond, which what describes.
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("no %s after a minute; statistics: %s\nlog:\n%s", what, prod.Statistics(), sink)
	}
	bootstrapBroker := fmt.Sprintf(`"name":"%s/bootstrap"`, b.Bootstrap())
	knowsBootstrap := func() bool { return strings.Contains(string(prod.Statistics()), bootstrapBroker) }
	const added = "bootstrap.servers added to the brokers again"
	if res := send(t, acc, 0, 100); res.Delivered != 100 {
		t.Fatalf("before: %+v", res)
	}
	// The broker learned from metadata replaced the bootstrap one.
	waitUntil("bootstrap broker dropped", func() bool { return !knowsBootstrap() })
	for outage := 1; outage <= 2; outage++ {
		b.Kill()
		waitUntil(fmt.Sprintf("log line %q number %d", added, outage), func() bool { return strings.Count(sink.String(), added) == outage })
		if outage == 1 {
			waitUntil("bootstrap broker added again", knowsBootstrap)
		}
		b.Start()
		if res := send(t, acc, 100*outage, 100); res.Delivered != 100 {
			t.Fatalf("after outage %d: %+v\n%s", outage, res, sink)
		}
	}
}

// TestNewNamesProperty: a property librdkafka refuses is named as the
// operator gave it: rdkafka.<name> when it is theirs. So are those that
// librdkafka's check of the whole configuration names.
func TestNewNamesProperty(t *testing.T) {
	for fromUser, want := range map[bool]string{true: "rdkafka.acks: ", false: "acks: "} {
		_, err := rdk.New([]conf.Property{{Key: "acks", Value: "sometimes", FromUser: fromUser}}, func(int, string) {}, rdk.NewCauses(), nil)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("from the operator %v: %v, want an error starting %q", fromUser, err, want)
		}
	}
	// A setting idempotence cannot have turns it off (conf), so that the
	// producer starts, unless the operator turned it on.
	for _, acks := range []string{"0", "1"} {
		cfg, err := conf.Load(conf.MapGetter{"Brokers": "127.0.0.1:1", "rdkafka.acks": acks}, []string{"acks"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := rdk.New(cfg.Rdkafka, func(int, string) {}, rdk.NewCauses(), nil)
		if err != nil {
			t.Fatalf("rdkafka.acks %s: %v", acks, err)
		}
		p.Close()
	}
	user := func(kv ...string) []conf.Property {
		var props []conf.Property
		for i := 0; i < len(kv); i += 2 {
			props = append(props, conf.Property{Key: kv[i], Value: kv[i+1], FromUser: true})
		}
		return props
	}
	for _, c := range []struct {
		props []conf.Property
		want  string
	}{
		{user("security.protocol", "sasl_plaintext", "sasl.mechanisms", "FOO"), "rdkafka.sasl.mechanisms: Unsupported SASL mechanism: FOO"},
		{user("acks", "1", "enable.idempotence", "true"), "rdkafka.acks, rdkafka.enable.idempotence: `acks` must be set to `all`"},
		{user("security.protocol", "ssl", "ssl.ca.location", "/nonexistent/ca.pem"), "rdkafka.ssl.ca.location: ssl.ca.location failed"},
		{append(user("linger.ms", "2000"), conf.Property{Key: "message.timeout.ms", Value: "1000"}), "rdkafka.linger.ms: `message.timeout.ms` must be greater than `linger.ms`"},
	} {
		_, err := rdk.New(c.props, func(int, string) {}, rdk.NewCauses(), nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error starting %q", c.props, err, c.want)
		}
	}
}
