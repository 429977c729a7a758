package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
)

// million holds 1M docker log records and their v2 chunks, made once per
// test binary.
var million struct {
	sync.Mutex
	recs   []fixture.Record
	chunks [][]byte
}

func millionRecords(t *testing.T) ([]fixture.Record, [][]byte) {
	million.Lock()
	defer million.Unlock()
	if million.recs == nil {
		million.recs = containerLogs(t, "docker", 1000000)
		million.chunks = fixture.EncodeChunks(million.recs, fixture.ChunkOptions{Layout: 2})
	}
	return million.recs, million.chunks
}

// hostInBackground runs the host on its own goroutine, so that the test's
// goroutine can act meanwhile. A host that times out is killed and reported
// as a test error; its result, like that of a run that failed the test,
// has exit code -1.
func hostInBackground(t *testing.T, o hostrun.Options) <-chan hostrun.Result {
	o.AllowFail = true
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	done := make(chan hostrun.Result, 1)
	go func() {
		res := hostrun.Result{ExitCode: -1}
		defer func() { done <- res }() // also when Run stops this goroutine with t.Fatal
		res = hostrun.Run(t, o)
	}()
	return done
}

// streamDisturbed runs the host over chunks on its own goroutine, with
// keys plus failureKeys, while disturb acts on the broker from the test's
// goroutine; then it counts, by tally, what reached topic: 0 lost and 0
// duplicates are required, except, when broker is not nil, duplicates its
// log shows to be the broker's (brokerWroteTwice).
func streamDisturbed(t *testing.T, bootstrap, topic string, recs []fixture.Record, chunks [][]byte, extra []string, broker *kafkatest.Broker, disturb func()) hostrun.Result {
	done := hostInBackground(t, hostrun.Options{Plugin: pluginSO(t), Instances: []hostrun.Instance{{
		Keys: keys(append(append([]string{"Brokers", bootstrap, "Topics", topic}, extra...), failureKeys...)...), Chunks: chunks,
	}}})
	disturb()
	res := <-done
	s := res.Sum(0)
	lost, dups := tally(t, recs, unbatched(t, kafkatest.ConsumeAll(t, bootstrap, topic, 5*time.Minute)))
	brokers := 0
	if broker != nil && len(dups) > 0 {
		brokers = brokerWroteTwice(t, broker, topic, dups)
	}
	t.Logf("%d records in; %d chunks, %d flushes, %d retries; peak RSS %d MiB; %d lost, %d duplicates (%d the broker's)",
		len(recs), s.Chunks, s.Flushes, s.Retry, res.MaxRSSKB>>10, lost, len(dups), brokers)
	if res.ExitCode != 0 || s.OK != s.Chunks {
		t.Errorf("host exit %d, %+v; stderr:\n%s", res.ExitCode, s, hostrun.Tail(res.Stderr, 30))
	}
	if lost != 0 || len(dups) != brokers {
		t.Errorf("%d records lost, %d duplicated (%d of them the broker's)", lost, len(dups), brokers)
	}
	return res
}

// brokerWroteTwice counts the duplicates whose two copies the broker's log
// holds in one partition under one producer id, epoch and sequence number:
// librdkafka sent a batch again after a connection broke, as the idempotent
// producer does, and the broker, which should have known it, wrote it a
// second time. A record the plugin sent again would have a new sequence
// number (or partition). Others are logged, the first few.
func brokerWroteTwice(t *testing.T, broker *kafkatest.Broker, topic string, dups [][2]*kafka.Message) int {
	type writer struct {
		partition  int32
		producerID int64
		epoch      int16
		sequence   int64
	}
	logs := map[int32][]kafkatest.BatchHeader{}
	writerOf := func(m *kafka.Message) writer {
		p, offset := m.TopicPartition.Partition, int64(m.TopicPartition.Offset)
		if logs[p] == nil {
			batches, err := broker.Batches(topic, p)
			if err != nil {
				t.Fatal(err)
			}
			logs[p] = batches
		}
		b, ok := kafkatest.BatchAt(logs[p], offset)
		if !ok {
			t.Fatalf("no batch of %s [%d] holds offset %d", topic, p, offset)
		}
		return writer{p, b.ProducerID, b.ProducerEpoch, int64(b.BaseSequence) + offset - b.BaseOffset}
	}
	brokers, others := 0, 0
	for _, d := range dups {
		if a, b := writerOf(d[0]), writerOf(d[1]); a == b && a.producerID >= 0 {
			brokers++
		} else if others++; others <= 3 {
			t.Logf("duplicate at %v (written by %+v) and %v (%+v)", d[0].TopicPartition, a, d[1].TopicPartition, b)
		}
	}
	return brokers
}

// unbatched returns msgs with each batch mode message replaced by one message
// per record it holds, with the batch message's timestamp.
func unbatched(t *testing.T, msgs []*kafka.Message) []*kafka.Message {
	var out []*kafka.Message
	for _, m := range msgs {
		if header(m, "content-encoding") != "lz4" {
			out = append(out, m)
			continue
		}
		err := batch.Records(m.Value, header(m, batch.ContentTypeHeader), func(rec []byte) error {
			out = append(out, &kafka.Message{TopicPartition: m.TopicPartition, Timestamp: m.Timestamp, Value: append([]byte(nil), rec...)})
			return nil
		})
		if err != nil {
			t.Fatalf("batch message at %v: %v", m.TopicPartition, err)
		}
	}
	return out
}

// tally counts how many of recs came back from msgs, each compared whole
// with the plugin's JSON of it (expectedJSON): the records lost, and each
// duplicate with the record's first copy; a message that is none of them
// fails the test.
func tally(t *testing.T, recs []fixture.Record, msgs []*kafka.Message) (lost int, dups [][2]*kafka.Message) {
	first := make(map[string]*kafka.Message, len(recs))
	for _, r := range recs {
		first[string(expectedJSON(r))] = nil
	}
	for _, m := range msgs {
		key := string(m.Value)
		f, ok := first[key]
		if !ok {
			t.Fatalf("unexpected message %s", m.Value)
		}
		if f != nil {
			dups = append(dups, [2]*kafka.Message{f, m})
		} else {
			first[key] = m
		}
	}
	for _, m := range first {
		if m == nil {
			lost++
		}
	}
	return lost, dups
}

// waitForMessages waits until topic holds at least n messages.
func waitForMessages(t *testing.T, bootstrap, topic string, n int64, timeout time.Duration) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "watermarks"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		md, err := c.GetMetadata(&topic, false, 2000)
		if err != nil {
			continue
		}
		total := int64(0)
		for _, p := range md.Topics[topic].Partitions {
			if _, high, err := c.QueryWatermarkOffsets(topic, p.ID, 2000); err == nil {
				total += high
			}
		}
		if total >= n {
			return
		}
	}
	t.Fatalf("topic %s did not reach %d messages in %v", topic, n, timeout)
}

var failureKeys = []string{"Workers", "2", "Retry_Limit", "no_limits"}

// TestBrokerFrozen: the broker is frozen (SIGSTOP) for 20 s mid-stream at full
// speed, then resumed. Flushes time out and are retried; the retries wait for
// the records still in flight instead of sending them again: 0 lost, no
// duplicate but the broker's own (brokerWroteTwice).
func TestBrokerFrozen(t *testing.T) {
	b := kafkatest.StartBroker(t, kafkatest.Options{})
	recs, chunks := millionRecords(t)
	streamThroughFreeze(t, b, recs, chunks, nil, 100000, 20*time.Second)
}

// TestBatchModeBrokerFrozen: the same in batch mode, 300k records offered at
// 50k a second, the broker frozen for 10 s once it holds 20 batch messages
// (about 30k records).
func TestBatchModeBrokerFrozen(t *testing.T) {
	b := kafkatest.StartBroker(t, kafkatest.Options{})
	const rate = 50000
	recs := containerLogs(t, "docker", 6*rate)
	chunks := fixture.EncodeChunks(recs, fixture.ChunkOptions{})
	chunksPerSec := float64(len(chunks)) * rate / float64(len(recs))
	extra := []string{"Message_Mode", "batch", "Rate", fmt.Sprintf("%.2f", chunksPerSec)}
	streamThroughFreeze(t, b, recs, chunks, extra, 20, 10*time.Second)
}

// streamThroughFreeze streams chunks into a new topic of b, with keys extra,
// and freezes b for d once the topic holds after messages. Some flushes must
// have been retried, and no record lost or duplicated: the retries wait for
// the records still in flight.
func streamThroughFreeze(t *testing.T, b *kafkatest.Broker, recs []fixture.Record, chunks [][]byte, extra []string, after int64, d time.Duration) {
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, b.Bootstrap(), topic, 6)
	res := streamDisturbed(t, b.Bootstrap(), topic, recs, chunks, extra, b, func() {
		waitForMessages(t, b.Bootstrap(), topic, after, time.Minute)
		b.Freeze()
		t.Logf("broker frozen for %v", d)
		time.Sleep(d)
		b.Thaw()
		t.Log("broker resumed")
	})
	if res.Sum(0).Retry == 0 {
		t.Error("no flush was retried: the freeze did not hit the stream")
	}
}

// TestBrokerKilledTwice: the broker is killed (SIGKILL) and restarted twice
// while 1M records stream through Workers 2: 0 lost, no duplicate but the
// broker's own. Most runs here have some: the restarted broker wrote a batch
// that librdkafka sent again (same producer id, epoch and sequence numbers)
// a second time, about one chunk's records each (README).
func TestBrokerKilledTwice(t *testing.T) {
	b := kafkatest.StartBroker(t, kafkatest.Options{})
	recs, chunks := millionRecords(t)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, b.Bootstrap(), topic, 6)
	streamDisturbed(t, b.Bootstrap(), topic, recs, chunks, nil, b, func() {
		for _, at := range []int64{100000, 400000} {
			waitForMessages(t, b.Bootstrap(), topic, at, 2*time.Minute)
			b.Kill()
			t.Logf("broker killed after %d messages", at)
			time.Sleep(3 * time.Second)
			b.Start()
			t.Log("broker restarted")
		}
	})
}

// oversized is a record of 300 kB that does not compress below 200 kB (its
// field time is "big"): over a producer's message.max.bytes of 200000.
func oversized(at time.Time) fixture.Record {
	noise := make([]byte, 300000)
	for i := range noise {
		noise[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i*7919+i/13)%36]
	}
	return fixture.Record{Time: at, Body: []fixture.KV{{Key: "log", Value: string(noise)}, {Key: "time", Value: "big"}}}
}

// TestDeadLetterTopic: one record over the producer's message size limit
// among 1,000: 999 delivered, the oversized one in the dead-letter topic,
// cut to fit, with headers saying why after its own, and its key; the
// chunk is acknowledged.
func TestDeadLetterTopic(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 999)
	big := oversized(recs[0].Time)
	in := append(append(append([]fixture.Record{}, recs[:300]...), big), recs[300:]...)
	topic, dlq := kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t)+"-dlq"
	kafkatest.CreateTopic(t, bootstrap, topic, 3)
	kafkatest.CreateTopic(t, bootstrap, dlq, 1)
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys: keys("Brokers", bootstrap, "Topics", topic, "DLQ_Topic", dlq, "rdkafka.message.max.bytes", "200000",
			"Message_Key_Field", "time", "Header", "env prod"),
		Chunks: fixture.EncodeChunks(in, fixture.ChunkOptions{Layout: 2, ChunkBytes: 1 << 20}),
	}}})
	if s := res.Instances[0]; s.Chunks != 1 || s.OK != 1 {
		t.Fatalf("the chunk must be acked: %+v\n%s", s, hostrun.Tail(res.Stderr, 10))
	}
	compare(t, topic, recs, kafkatest.Consume(t, bootstrap, topic, len(recs), time.Minute), decodeJSON)
	dead := kafkatest.ConsumeAll(t, bootstrap, dlq, time.Minute)
	t.Logf("%d records in: %d in %s, %d in the dead-letter topic", len(in), len(recs), topic, len(dead))
	if len(dead) != 1 {
		t.Fatalf("%d messages in the dead-letter topic, want 1", len(dead))
	}
	headers := map[string]string{}
	for _, h := range dead[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	want := expectedJSON(big)
	if headers["gokafka.error.code"] != "10" || headers["gokafka.topic"] != topic || headers["gokafka.truncated"] != fmt.Sprint(len(want)) ||
		!strings.Contains(headers["gokafka.error"], "too large") || len(dead[0].Value) >= 200000 || !bytes.HasPrefix(want, dead[0].Value) ||
		headers["env"] != "prod" || string(dead[0].Key) != "big" { // the record's own key and headers are kept
		t.Errorf("dead-letter message: headers %v, key %q, value of %d bytes", headers, dead[0].Key, len(dead[0].Value))
	}
	if !strings.Contains(res.Stderr, "sent to the dead-letter topic "+dlq) {
		t.Errorf("log does not tell:\n%s", hostrun.Tail(res.Stderr, 10))
	}
}

// TestUnknownTopicNamed: records for a topic the cluster does not have (and
// does not create) fail within the flush, not after librdkafka's 30 s, and
// its log names the topic and Kafka's reason; once Retry_Limit gave the
// chunk up, Exit says how many records were not delivered.
func TestUnknownTopicNamed(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 100)
	topic := kafkatest.UniqueTopic(t) + "-missing"
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys:   keys("Brokers", bootstrap, "Topics", topic, "rdkafka.allow.auto.create.topics", "false"),
		Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2}),
	}}})
	if s := res.Instances[0]; s.Chunks != 1 || s.Retry != 2 || s.Dropped != 1 {
		t.Fatalf("want the chunk tried twice (Retry_Limit 1), then dropped: %+v\n%s", s, hostrun.Tail(res.Stderr, 20))
	}
	for _, want := range []string{
		"records of up to", "for topic " + topic + " not delivered: Local: Unknown topic",
		"100 of 100 records not delivered for now; chunk will be retried",
		"100 records of 1 chunk handed back for a retry that did not come (Retry_Limit reached, or this shutdown) were not delivered",
	} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, hostrun.Tail(res.Stderr, 20))
		}
	}
	if strings.Contains(res.Stderr, "flush timed out") {
		t.Errorf("a flush waited out its Flush_Timeout:\n%s", hostrun.Tail(res.Stderr, 20))
	}
}

// expectedJSON is the plugin's JSON for rec with the default settings, in
// its field order.
func expectedJSON(rec fixture.Record) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the plugin writes <, > and & as they are
	for _, kv := range rec.Body {
		enc.Encode(kv.Key)
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		enc.Encode(kv.Value)
		b.Truncate(b.Len() - 1)
		b.WriteByte(',')
	}
	fmt.Fprintf(&b, `"@timestamp":"%s"}`, isoTime(rec.Time))
	return b.Bytes()
}

// TestHotReload: Fluent Bit's reload sequence (Exit of the old instances,
// Init of new ones on the loaded .so) in the middle of a stream: every
// record arrives, the old producer is stopped, no flush hangs.
func TestHotReload(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 50000)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 3)
	chunks := fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})
	res := hostrun.Run(t, hostrun.Options{Plugin: so, ReloadAfter: len(chunks) / 2, Instances: []hostrun.Instance{{
		Keys: keys("Brokers", bootstrap, "Topics", topic, "Workers", "2", "Log_Level", "debug", "Rate", "20"), Chunks: chunks,
	}}})
	s := res.Sum(0)
	if len(res.Instances) != 2 || s.OK != s.Chunks-s.Requeued || int(s.OK) != len(chunks) || res.Instances[1].OK == 0 {
		t.Fatalf("want the chunks split over two generations, all OK: %+v", res.Instances)
	}
	if res.FaultHandler != "plugin" { // the host, as Fluent Bit, put its own back at the reload
		t.Errorf("the %s's SIGSEGV handler is in place after the reload: a fault in Go would abort, not panic", res.FaultHandler)
	}
	if n := strings.Count(res.Stderr, "] stopped"); n != 2 {
		t.Errorf("%d instances stopped, want 2 (the old and the new)", n)
	}
	if n := strings.Count(res.Stderr, "] Hot_Reload is on and this output runs on Fluent Bit's worker threads"); n != 2 {
		t.Errorf("%d warnings of Hot_Reload with Workers, want one per instance (2)", n)
	}
	compare(t, topic, recs, kafkatest.Consume(t, bootstrap, topic, len(recs), time.Minute), decodeJSON)
}

// TestClusterNodeBounce: a three-node cluster (replication 3, min ISR 2),
// acks=all; a node is stopped and started again mid-stream: 0 lost, 0
// duplicates.
func TestClusterNodeBounce(t *testing.T) {
	c := kafkatest.StartCluster(t)
	recs := containerLogs(t, "docker", 300000)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, c.Bootstrap(), topic, 6)
	streamDisturbed(t, c.Bootstrap(), topic, recs, fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2}), []string{"Rate", "10"}, nil, func() {
		waitForMessages(t, c.Bootstrap(), topic, 30000, time.Minute)
		c.StopNode(2)
		t.Log("node 2 stopped")
		time.Sleep(3 * time.Second)
		c.StartNode(2)
		t.Log("node 2 started again")
	})
}

// TestOutageMemoryBound: the broker is down for 60 s while 20k records/s are
// offered. Flushes are retried; the host's resident memory stays below
// Buffer_Memory + 64 MiB; every record arrives once the broker is back.
func TestOutageMemoryBound(t *testing.T) {
	b := kafkatest.StartBroker(t, kafkatest.Options{})
	const rate = 20000
	recs := containerLogs(t, "docker", 80*rate)
	chunks := fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 1})
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, b.Bootstrap(), topic, 6)
	chunksPerSec := float64(len(chunks)) * rate / float64(len(recs))
	res := streamDisturbed(t, b.Bootstrap(), topic, recs, chunks, []string{"Buffer_Memory", "64M", "Rate", fmt.Sprintf("%.2f", chunksPerSec)}, b, func() {
		waitForMessages(t, b.Bootstrap(), topic, 5*rate, time.Minute)
		b.Stop()
		t.Log("broker stopped for 60 s")
		time.Sleep(60 * time.Second)
		b.Start()
		t.Log("broker started again")
	})
	if res.Sum(0).Retry == 0 {
		t.Error("no flush was retried: the outage did not hit the stream")
	}
	if limit := int64(64+64) << 10; res.MaxRSSKB <= 0 || res.MaxRSSKB > limit {
		t.Errorf("peak RSS %d KiB, want below %d KiB", res.MaxRSSKB, limit)
	}
}
