// Package e2e drives out_gokafka.so through the C test host, as Fluent Bit
// does, against a real Kafka broker, and checks every record that comes out.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
	"github.com/tinylib/msgp/msgp"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// pluginSO builds the .so once per test binary.
func pluginSO(t *testing.T) string {
	root := fixture.RepoRoot(t)
	return hostrun.BuildPlugin(t, root, filepath.Join(root, "build", "test", "out_gokafka.so"))
}

// containerLogs generates n lines in format (docker or cri) with the shared
// generator and parses them as Fluent Bit's parsers would.
func containerLogs(t *testing.T, format string, n int) []fixture.Record {
	gen := fixture.Generator(fixture.RepoRoot(t))
	out, err := exec.Command("python3", gen, "--format", format, "--lines", fmt.Sprint(n)).Output()
	if err != nil {
		t.Fatalf("%s: %v (the project expects ../shared beside it; GOKAFKA_LOGGEN names the generator elsewhere)", gen, err)
	}
	path := filepath.Join(t.TempDir(), format+".log")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := fixture.ReadContainerLog(path, format)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// expected is the JSON the plugin must write for rec with the default
// Timestamp_Key and Timestamp_Format, in canonical form (sorted keys).
func expected(t *testing.T, rec fixture.Record) string {
	m := map[string]any{"@timestamp": isoTime(rec.Time)}
	for _, kv := range rec.Body {
		m[kv.Key] = plain(kv.Value)
	}
	return canonical(t, m)
}

// plain is v as decodeJSON gives it back: a map for each []fixture.KV, and
// text with each byte that is not UTF-8 as U+FFFD (which encoding/json
// would write as the escape \ufffd, where a decoded U+FFFD is written as it
// is). decodeMsgpack's values go through it too: msgpack keeps the bytes
// (TestTimestampsAndMsgpack checks that apart).
func plain(v any) any {
	switch v := v.(type) {
	case string:
		var b strings.Builder
		for _, r := range v { // U+FFFD for each byte that is not UTF-8
			b.WriteRune(r)
		}
		return b.String()
	case map[string]any:
		for k, e := range v {
			v[k] = plain(e)
		}
		return v
	case []fixture.KV:
		m := make(map[string]any, len(v))
		for _, kv := range v {
			m[kv.Key] = plain(kv.Value)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// notUTF8 is two bytes that are not UTF-8, in the text of addTypedFields.
const notUTF8 = "\xff\xfe"

// addTypedFields gives every record, beside its text fields, a field of
// each other type a record may carry: negative integers, integers beyond
// float64's 2^53 and beyond int64, fractional floats, booleans, null,
// nested maps and arrays, and text that JSON must escape, including a
// run of two bytes that are not UTF-8 (in JSON each as U+FFFD).
func addTypedFields(recs []fixture.Record) {
	const text = "say \"hi\" \\ \n\t\x01 ünïcødé 😀 " + notUTF8 + " "
	for i := range recs {
		n := int64(i)
		recs[i].Body = append(recs[i].Body,
			fixture.KV{Key: "pid", Value: n*7919 - 500000},
			fixture.KV{Key: "span_id", Value: int64(1<<53) + n},
			fixture.KV{Key: "offset", Value: uint64(1<<63) + uint64(i)},
			fixture.KV{Key: "ratio", Value: float64(n) + 0.25},
			fixture.KV{Key: "sampled", Value: i%2 == 0},
			fixture.KV{Key: "parent", Value: nil},
			fixture.KV{Key: "ctx", Value: []fixture.KV{
				{Key: "attempt", Value: n % 5},
				{Key: "path", Value: []any{"a", -n, 1.5, true, nil, []fixture.KV{{Key: "k", Value: "v"}}}},
			}},
			fixture.KV{Key: "note", Value: text + strconv.Itoa(i)},
		)
	}
}

// isoTime is the default Timestamp_Format (iso8601, nine fraction
// digits, UTC), made with the standard library rather than the plugin's
// encoder, so that a fault of the encoder cannot hide in the expectation.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

func canonical(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compare checks that msgs hold exactly recs, field for field, each once,
// with the record's event time as the Kafka timestamp.
func compare(t *testing.T, topic string, recs []fixture.Record, msgs []*kafka.Message, decode func([]byte) (map[string]any, error)) {
	t.Helper()
	want := make(map[string]int, len(recs))
	wantTime := make(map[string]int64, len(recs))
	for _, r := range recs {
		e := expected(t, r)
		want[e]++
		wantTime[e] = r.Time.UnixMilli()
	}
	missing, extra, badTime := len(recs), 0, 0
	for _, m := range msgs {
		v, err := decode(m.Value)
		if err != nil {
			t.Fatalf("topic %s: message %q does not decode: %v", topic, m.Value, err)
		}
		got := canonical(t, v)
		if want[got] == 0 {
			if extra++; extra <= 3 {
				t.Errorf("topic %s: unexpected message %s", topic, got)
			}
			continue
		}
		want[got]--
		missing--
		if m.Timestamp.UnixMilli() != wantTime[got] {
			badTime++
		}
	}
	t.Logf("topic %s: %d records in, %d messages out, %d missing, %d unexpected or duplicated, %d with a wrong timestamp",
		topic, len(recs), len(msgs), missing, extra, badTime)
	if missing != 0 || extra != 0 || badTime != 0 {
		t.Fail()
	}
}

// decodeJSON keeps numbers as their text (json.Number), so that canonical
// tells 5 from 5.0 and keeps integers beyond float64's 2^53 exact. JSON
// must be UTF-8 (RFC 8259), which encoding/json alone does not check.
func decodeJSON(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("not UTF-8")
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("data after the object")
	}
	return m, nil
}

func decodeMsgpack(b []byte) (map[string]any, error) {
	m, rest, err := msgp.ReadMapStrIntfBytes(b, nil)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the map", len(rest))
	}
	return plain(m).(map[string]any), err
}

func keys(kv ...string) [][2]string {
	var out [][2]string
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, [2]string{kv[i], kv[i+1]})
	}
	return out
}

// TestEndToEnd: two instances in one host, 100k records each, to two topics:
// docker logs in the v2 layout with group markers and Workers 0, and CRI logs
// in the v1 layout with Workers 4, each record with fields of every type.
// Every record comes back field for field.
func TestEndToEnd(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	const n = 100000
	docker, cri := containerLogs(t, "docker", n), containerLogs(t, "cri", n)
	addTypedFields(docker)
	addTypedFields(cri)
	topicA, topicB := kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topicA, 3)
	kafkatest.CreateTopic(t, bootstrap, topicB, 3)

	res := hostrun.Run(t, hostrun.Options{Plugin: so, StartDelay: time.Second, Instances: []hostrun.Instance{
		{Keys: keys("Brokers", bootstrap, "Topics", topicA, "Workers", "0"),
			Chunks: fixture.EncodeChunks(docker, fixture.ChunkOptions{Layout: 2, GroupMarkers: true})},
		{Keys: keys("Brokers", bootstrap, "Topics", topicB, "Workers", "4"),
			Chunks: fixture.EncodeChunks(cri, fixture.ChunkOptions{Layout: 1, Time: fixture.EventTime})},
	}})
	if len(res.Instances) != 2 {
		t.Fatalf("stats of %d instances, want 2", len(res.Instances))
	}
	for i, s := range res.Instances {
		if s.OK != s.Chunks || s.Retry+s.Error+s.Dropped != 0 {
			t.Errorf("instance %d: %+v", i, s)
		}
	}
	compare(t, topicA, docker, kafkatest.Consume(t, bootstrap, topicA, len(docker), time.Minute), decodeJSON)
	compare(t, topicB, cri, kafkatest.Consume(t, bootstrap, topicB, len(cri), time.Minute), decodeJSON)
}

// TestKeyOrderWithWorkers: with Workers 4, flushes run at once through
// two producers (Producers 2, the second one logged); records of one key in one chunk still reach
// their partition in the chunk's order, and every record arrives once.
func TestKeyOrderWithWorkers(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	const chunks, perChunk, nKeys = 40, 2000, 7
	recs, data := keyedChunks(chunks, perChunk, nKeys, fixture.KV{Key: "log", Value: strings.Repeat("x", 200)})
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 3)
	res := hostrun.Run(t, hostrun.Options{Plugin: so, StartDelay: time.Second, Instances: []hostrun.Instance{{
		Keys:   keys("Brokers", bootstrap, "Topics", topic, "Workers", "4", "Producers", "2", "Message_Key_Field", "key", "Batch_Size", "64K"),
		Chunks: data,
	}}})
	if s := res.Instances[0]; s.Chunks != chunks || s.OK != s.Chunks || s.Retry+s.Error+s.Dropped != 0 {
		t.Fatalf("want %d chunks acknowledged at once: %+v", chunks, s)
	}
	if !strings.Contains(res.Stderr, "made producer 2 of at most 2") {
		t.Errorf("no second producer made for flushes at once:\n%s", hostrun.Tail(res.Stderr, 20))
	}
	msgs := kafkatest.Consume(t, bootstrap, topic, len(recs), time.Minute)
	compare(t, topic, recs, msgs, decodeJSON)
	// Within a partition, Consume returns messages in offset order.
	last := map[string]int64{}        // by chunk and key: the sequence number seen last
	partitionOf := map[string]int32{} // by key
	for _, m := range msgs {
		v, err := decodeJSON(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := v["seq"].(json.Number).Int64()
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprint(seq/perChunk, "/", v["key"])
		if string(m.Key) != v["key"] {
			t.Fatalf("record %d: message key %q, want %q", seq, m.Key, v["key"])
		}
		if p, ok := partitionOf[string(m.Key)]; ok && p != m.TopicPartition.Partition {
			t.Fatalf("key %s: partitions %d and %d", m.Key, p, m.TopicPartition.Partition)
		}
		partitionOf[string(m.Key)] = m.TopicPartition.Partition
		if prev, ok := last[key]; ok && seq < prev {
			t.Fatalf("chunk/key %s: record %d after record %d", key, seq, prev)
		}
		last[key] = seq
	}
	if len(last) != chunks*nKeys {
		t.Errorf("%d chunk/key pairs seen, want %d", len(last), chunks*nKeys)
	}
}

// keyedChunks makes chunks of perChunk records each, numbered in "seq" and
// keyed "k<seq modulo nKeys>" in "key", then the fields more.
func keyedChunks(chunks, perChunk, nKeys int, more ...fixture.KV) ([]fixture.Record, [][]byte) {
	var recs []fixture.Record
	var data [][]byte
	for c := range chunks {
		first := len(recs)
		for i := range perChunk {
			seq := c*perChunk + i
			body := append([]fixture.KV{{Key: "key", Value: fmt.Sprint("k", seq%nKeys)}, {Key: "seq", Value: int64(seq)}}, more...)
			recs = append(recs, fixture.Record{Time: time.Unix(1700000000, int64(seq)), Body: body})
		}
		data = append(data, fixture.EncodeChunks(recs[first:], fixture.ChunkOptions{ChunkBytes: 1 << 30})...)
	}
	return recs, data
}

// TestTimestampsAndMsgpack: integer and float timestamps in the v1 layout,
// msgpack values of records with fields of every type (text that is not
// UTF-8 kept as it is), Workers 4.
func TestTimestampsAndMsgpack(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 20000)
	addTypedFields(recs)
	for _, tf := range []fixture.TimeFormat{fixture.Int, fixture.Float} {
		topic := kafkatest.UniqueTopic(t)
		kafkatest.CreateTopic(t, bootstrap, topic, 2)
		res := hostrun.Run(t, hostrun.Options{Plugin: so, StartDelay: time.Second, Instances: []hostrun.Instance{{
			Keys:   keys("Brokers", bootstrap, "Topics", topic, "Format", "msgpack", "Workers", "4"),
			Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 1, Time: tf}),
		}}})
		if s := res.Instances[0]; s.OK != s.Chunks || s.Retry+s.Error+s.Dropped != 0 {
			t.Errorf("time format %v: want every chunk acknowledged at once: %+v", tf, s)
		}
		// The chunk carries the time at the precision of its encoding:
		// whole seconds, or the nearest nanosecond to a float64 of seconds.
		want := make([]fixture.Record, len(recs))
		for i, r := range recs {
			want[i] = r
			if tf == fixture.Int {
				want[i].Time = r.Time.Truncate(time.Second)
			} else {
				f := float64(r.Time.Unix()) + float64(r.Time.Nanosecond())/1e9
				want[i].Time = time.Unix(0, int64(math.Round(f*1e9)))
			}
		}
		msgs := kafkatest.Consume(t, bootstrap, topic, len(recs), time.Minute)
		compare(t, topic, want, msgs, decodeMsgpack)
		changed := 0 // msgpack text is bytes: those that are not UTF-8 go as they are
		for _, m := range msgs {
			if !bytes.Contains(m.Value, []byte(" "+notUTF8+" ")) {
				changed++
			}
		}
		if changed > 0 {
			t.Errorf("%d of %d messages do not keep the bytes that are not UTF-8", changed, len(msgs))
		}
	}
}

// TestPoisonRecord: a record larger than the producer accepts is logged with
// its size and topic and dropped; the rest of its chunk is delivered.
func TestPoisonRecord(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 1000)
	big := fixture.Record{Time: recs[0].Time, Body: []fixture.KV{{Key: "log", Value: strings.Repeat("x", 2<<20)}}}
	in := append(append(append([]fixture.Record{}, recs[:500]...), big), recs[500:]...)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys:   keys("Brokers", bootstrap, "Topics", topic),
		Chunks: fixture.EncodeChunks(in, fixture.ChunkOptions{Layout: 2, ChunkBytes: 4 << 20}),
	}}})
	if s := res.Instances[0]; s.Chunks != 1 || s.OK != 1 {
		t.Fatalf("the chunk with a poison record must be acked: %+v", s)
	}
	if !strings.Contains(res.Stderr, "record of 2097") || !strings.Contains(res.Stderr, "for topic "+topic+" dropped") ||
		!strings.Contains(res.Stderr, ": 1 of 1001 records can never be delivered") {
		t.Errorf("log does not report the dropped record:\n%s", hostrun.Tail(res.Stderr, 20))
	}
	compare(t, topic, recs, kafkatest.Consume(t, bootstrap, topic, len(recs), time.Minute), decodeJSON)
}

// TestFutureEventTime: Kafka refuses a timestamp too far ahead of its clock
// (log.message.timestamp.after.max.ms, an hour by default), so an event
// time ahead of the plugin's clock goes out as the produce time: a record
// dated two hours ahead is delivered, in batch mode with the rest of its
// frame, whose timestamp is its last record's event time. The value, and
// batch mode's last_time header, keep the event time.
func TestFutureEventTime(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 1000)
	future := time.Now().Add(2 * time.Hour).Truncate(time.Millisecond)
	recs[len(recs)-1].Time = future
	eventTime := map[string]time.Time{}
	for _, r := range recs {
		eventTime[string(expectedJSON(r))] = r.Time.Truncate(time.Millisecond)
	}
	for _, mode := range []string{"record", "batch"} {
		topic := kafkatest.UniqueTopic(t)
		kafkatest.CreateTopic(t, bootstrap, topic, 1)
		start := time.Now().Truncate(time.Millisecond)
		res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
			Keys:   keys("Brokers", bootstrap, "Topics", topic, "Message_Mode", mode),
			Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2}),
		}}})
		end := time.Now()
		if s := res.Instances[0]; s.OK != s.Chunks || strings.Contains(res.Stderr, "dropped") {
			t.Errorf("%s mode: %+v\n%s", mode, s, hostrun.Tail(res.Stderr, 10))
		}
		msgs := kafkatest.ConsumeAll(t, bootstrap, topic, time.Minute)
		if mode == "batch" {
			for _, m := range msgs {
				if h := header(m, "gokafka.last_time"); h != future.UTC().Format(batch.TimeLayout) {
					t.Errorf("last_time header %s, want %v", h, future)
				}
			}
		}
		msgs = unbatched(t, msgs)
		if lost, dups := tally(t, recs, msgs); lost != 0 || len(dups) != 0 {
			t.Fatalf("%s mode: %d of %d records lost, %d duplicated", mode, lost, len(recs), len(dups))
		}
		for _, m := range msgs {
			// Batch mode: the frame's timestamp is its last record's, the future one.
			if want := eventTime[string(m.Value)]; want.After(start) || mode == "batch" {
				if m.Timestamp.Before(start) || m.Timestamp.After(end) {
					t.Fatalf("%s mode: Kafka timestamp %v, want the produce time, %v to %v", mode, m.Timestamp, start, end)
				}
			} else if !m.Timestamp.Equal(want) {
				t.Fatalf("%s mode: Kafka timestamp %v, want the event time %v", mode, m.Timestamp, want)
			}
		}
	}
}

// TestOldEventTime: on a topic that refuses timestamps over an hour old
// (message.timestamp.before.max.ms), a chunk of recent records with old
// ones loses none, and nothing is dead-lettered. Kafka refuses the old
// records' request whole; the plugin sends the records again at once, the
// old ones with the produce time, the others with their event time. Seen
// here: one old record, librdkafka reports INVALID_TIMESTAMP on every
// record of the request (the plugin takes the oldest for the culprit); two,
// it names them. In batch mode the message's timestamp is its newest
// record's: Kafka refuses a message of old records only, and takes old
// records beside recent ones.
func TestOldEventTime(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	allOld := make([]int, 1000)
	for i := range allOld {
		allOld[i] = i
	}
	for _, tc := range []struct {
		mode string
		old  []int
	}{{"record", []int{500}}, {"record", []int{500, 999}}, {"batch", allOld}, {"batch", []int{500, 999}}} {
		recs := containerLogs(t, "docker", 1000)
		now := time.Now().Truncate(time.Millisecond)
		for i := range recs {
			recs[i].Time = now.Add(time.Duration(i-len(recs)) * time.Millisecond)
		}
		refused := tc.mode == "record" || len(tc.old) == len(recs)
		eventTime, old := map[string]time.Time{}, map[string]bool{}
		for _, i := range tc.old {
			recs[i].Time = now.Add(-2 * time.Hour)
			old[string(expectedJSON(recs[i]))] = true
		}
		newest := recs[0].Time
		for _, r := range recs {
			eventTime[string(expectedJSON(r))] = r.Time
			if r.Time.After(newest) {
				newest = r.Time
			}
		}
		topic := kafkatest.UniqueTopic(t)
		kafkatest.CreateTopicConfig(t, bootstrap, topic, 1, map[string]string{"message.timestamp.before.max.ms": "3600000"})
		k := keys("Brokers", bootstrap, "Topics", topic, "Message_Mode", tc.mode)
		if tc.mode == "record" {
			kafkatest.CreateTopic(t, bootstrap, topic+"-dlq", 1)
			k = append(k, keys("DLQ_Topic", topic+"-dlq")...)
		}
		start := time.Now().Truncate(time.Millisecond)
		res := hostrun.Run(t, hostrun.Options{Plugin: so, StartDelay: time.Second, Instances: []hostrun.Instance{{
			Keys: k, Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2}),
		}}})
		end := time.Now()
		if s := res.Instances[0]; s.OK != s.Chunks || s.Retry != 0 || refused != strings.Contains(res.Stderr, "refused by Kafka for their timestamp (or as invalid) were sent again with the produce time") {
			t.Errorf("%s mode, %d old, refusal expected %v: %+v\n%s", tc.mode, len(tc.old), refused, s, hostrun.Tail(res.Stderr, 10))
		}
		msgs := unbatched(t, kafkatest.ConsumeAll(t, bootstrap, topic, time.Minute))
		if lost, dups := tally(t, recs, msgs); lost != 0 || len(dups) != 0 {
			t.Fatalf("%s mode, %d old: %d of %d records lost, %d duplicated", tc.mode, len(tc.old), lost, len(recs), len(dups))
		}
		restamped := 0
		for _, m := range msgs {
			want := eventTime[string(m.Value)]
			if tc.mode == "batch" {
				want = newest
			}
			switch {
			case m.Timestamp.Equal(want) && (!refused || !old[string(m.Value)]):
			case m.Timestamp.Before(start) || m.Timestamp.After(end):
				t.Fatalf("%s mode: Kafka timestamp %v, want the event time or the produce time, %v to %v", tc.mode, m.Timestamp, start, end)
			default:
				restamped++
			}
		}
		if tc.mode == "record" && restamped != len(tc.old) || !refused && restamped != 0 {
			t.Errorf("%s mode: %d records went with the produce time, want the %d old ones if refused (%v)", tc.mode, restamped, len(tc.old), refused)
		}
		if tc.mode == "record" {
			if dead := kafkatest.ConsumeAll(t, bootstrap, topic+"-dlq", 5*time.Second); len(dead) != 0 {
				t.Errorf("%d records dead-lettered, want none", len(dead))
			}
		}
	}
}

// TestMalformedChunk: a truncated chunk returns FLB_ERROR with a log line
// saying where decoding failed; the records before the fault are delivered,
// and the next chunk is not affected.
func TestMalformedChunk(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 200)
	good := fixture.EncodeChunks(recs[:100], fixture.ChunkOptions{Layout: 2})[0]
	bad := fixture.EncodeChunks(recs[100:], fixture.ChunkOptions{Layout: 2})[0]
	bad = bad[:len(bad)-5]
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys: keys("Brokers", bootstrap, "Topics", topic), Chunks: [][]byte{bad, good},
	}}})
	if s := res.Instances[0]; s.Error != 1 || s.OK != 1 {
		t.Fatalf("want one error and one ok: %+v", s)
	}
	if !strings.Contains(res.Stderr, fmt.Sprintf("of %d (entry 99)", len(bad))) || !strings.Contains(res.Stderr, "the 99 records before it were sent") {
		t.Errorf("log does not say where decoding failed:\n%s", hostrun.Tail(res.Stderr, 20))
	}
	compare(t, topic, append(recs[100:199:199], recs[:100]...), kafkatest.Consume(t, bootstrap, topic, 199, time.Minute), decodeJSON)
}

// flushesTimedOut counts the flushes the log says ended at their time limit
// with nothing acknowledged: Flush_Timeout (flushTimeout), or 250 ms once
// Kafka has acknowledged nothing for that long.
func flushesTimedOut(stderr, flushTimeout string) int {
	re := regexp.MustCompile(`flush timed out after (` + regexp.QuoteMeta(flushTimeout) + `|250ms): 0 of |from the earlier attempt still unacknowledged after 250ms`)
	return len(re.FindAllStringIndex(stderr, -1))
}

// TestBrokerDown: with no broker, flushes return FLB_RETRY within
// Flush_Timeout, the retry knows its chunk and waits for the records its
// first attempt queued instead of queueing them again, and Exit returns.
func TestBrokerDown(t *testing.T) {
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 2000)
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Backoff: 100 * time.Millisecond, Grace: time.Second, Instances: []hostrun.Instance{{
		Keys:   keys("Brokers", "127.0.0.1:1", "Topics", "nowhere", "Flush_Timeout", "1s", "Max_Block", "200ms", "Workers", "2", "Retry_Limit", "1"),
		Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2}),
	}}})
	s := res.Instances[0]
	if s.OK != 0 || s.Retry != 2*s.Chunks || s.Dropped != s.Chunks {
		t.Errorf("want every chunk retried once then dropped: %+v", s)
	}
	if n := flushesTimedOut(res.Stderr, "1s"); n != int(s.Flushes) || s.MaxFlushMS > 10_000 { // a guard against a hang, not a measure
		t.Errorf("%d of %d flushes ended at their time limit, the longest after %.0f ms:\n%s", n, s.Flushes, s.MaxFlushMS, hostrun.Tail(res.Stderr, 20))
	}
	if !strings.Contains(res.Stderr, "will be retried") {
		t.Errorf("no retry logged:\n%s", hostrun.Tail(res.Stderr, 20))
	}
	// Each retry knew its chunk: it waited for the records the first attempt
	// had queued instead of queueing them again (which would deliver them
	// twice once the broker is back), so the queue held each record once.
	if n := strings.Count(res.Stderr, "from the earlier attempt still unacknowledged after 250ms"); n != int(s.Chunks) ||
		!strings.Contains(res.Stderr, fmt.Sprintf("] %d records not acknowledged were still buffered or in the producer's queue", len(recs))) {
		t.Errorf("%d retries found their earlier attempt, want %d, and %d records queued once:\n%s", n, s.Chunks, len(recs), hostrun.Tail(res.Stderr, 20))
	}
}

// TestConfigErrors: a bad value fails Init with one line naming the key.
func TestConfigErrors(t *testing.T) {
	so := pluginSO(t)
	for key, value := range map[string]string{
		"Batch_Size": "lots", "Compression": "brotli", "rdkafka.acks": "sometimes", "rdkafka.message.max.bytes": "12",
	} {
		res := hostrun.Run(t, hostrun.Options{Plugin: so, AllowFail: true, Instances: []hostrun.Instance{{
			Keys: keys("Brokers", "127.0.0.1:1", key, value),
		}}})
		if res.ExitCode != 3 || !strings.Contains(res.Stderr, "configuration error: "+key+": ") {
			t.Errorf("%s %s: exit %d, stderr:\n%s", key, value, res.ExitCode, hostrun.Tail(res.Stderr, 5))
		}
	}
	// The instance after the one that failed is exited without having been
	// initialised (a NULL context), as Fluent Bit does.
	res := hostrun.Run(t, hostrun.Options{Plugin: so, AllowFail: true, Instances: []hostrun.Instance{
		{Keys: keys("Topics", "x")}, {Keys: keys("Brokers", "127.0.0.1:1")}}})
	if res.ExitCode != 3 || !strings.Contains(res.Stderr, "configuration error: Brokers: required") || strings.Contains(res.Stderr, "panic") {
		t.Errorf("missing Brokers: exit %d, stderr:\n%s", res.ExitCode, hostrun.Tail(res.Stderr, 5))
	}
}
