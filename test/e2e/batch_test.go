package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
)

func header(m *kafka.Message, name string) string {
	for _, h := range m.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

// TestBatchMode: 100k records with fields of every type in batch mode, keyed by stream (some empty),
// through the host and the real broker. Every message is an LZ4 frame of NDJSON whose
// headers count its records (and carry the static Header); decoded with the batch package every record
// comes back field for field, in the partition its key's murmur2 picks; the
// concatenated values decompress with the stock lz4 tool to the same lines.
func TestBatchMode(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	recs := containerLogs(t, "docker", 100000)
	addTypedFields(recs)
	for i := 0; i < len(recs); i += 50 { // an empty key has a partition too, murmur2's of ""
		for j := range recs[i].Body {
			if recs[i].Body[j].Key == "stream" {
				recs[i].Body[j].Value = ""
			}
		}
	}
	// Event times out of order: a record 5 s older than its neighbours
	// lands in a later segment of a frame than the frame's first, so the
	// first_time header must be the minimum over every segment.
	for i := 50; i < len(recs); i += 97 {
		recs[i].Time = recs[i].Time.Add(-5 * time.Second)
	}
	topic := kafkatest.UniqueTopic(t)
	const partitions = 4
	kafkatest.CreateTopic(t, bootstrap, topic, partitions)
	// Where the Java client's partitioner puts each key among 4 partitions,
	// (murmur2(key) & 0x7fffffff) % 4, written out rather than computed with
	// the plugin's own Murmur2, which batch mode places records with.
	javaPartition := map[string]int32{"stdout": 2, "stderr": 0, "": 1}
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys: keys("Brokers", bootstrap, "Topics", topic, "Message_Mode", "batch", "Message_Key_Field", "$stream",
			"Workers", "2", "Batch_Size", "256K", "Header", "env prod"),
		Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2}),
	}}})
	if s := res.Instances[0]; s.OK != s.Chunks {
		t.Fatalf("%+v\n%s", s, hostrun.Tail(res.Stderr, 20))
	}

	want := map[string]int{}
	for _, r := range recs {
		want[expected(t, r)]++
	}
	msgs := kafkatest.ConsumeAll(t, bootstrap, topic, time.Minute)
	var values bytes.Buffer
	var lines [][]byte
	got, bad := 0, 0
	for _, m := range msgs {
		if header(m, "content-type") != "application/x-ndjson" || header(m, "content-encoding") != "lz4" || header(m, "env") != "prod" || m.Key != nil {
			t.Fatalf("message headers %v, key %q", m.Headers, m.Key)
		}
		n := 0
		var first, last time.Time // the earliest and latest event times of the message's records
		err := batch.Records(m.Value, header(m, batch.ContentTypeHeader), func(rec []byte) error {
			n++
			v, err := decodeJSON(rec)
			if err != nil {
				return err
			}
			ts, err := time.Parse(time.RFC3339Nano, v["@timestamp"].(string))
			if err != nil {
				return err
			}
			if ts = ts.Truncate(time.Millisecond); n == 1 || ts.Before(first) {
				first = ts
			}
			if n == 1 || ts.After(last) {
				last = ts
			}
			stream := v["stream"].(string)
			if p, ok := javaPartition[stream]; !ok || p != m.TopicPartition.Partition {
				return fmt.Errorf("record of key %s in partition %d, want %d", stream, m.TopicPartition.Partition, p)
			}
			if c := canonical(t, v); want[c] > 0 {
				want[c]--
				got++
			} else {
				bad++
			}
			lines = append(lines, append([]byte(nil), rec...))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if header(m, "gokafka.records") != strconv.Itoa(n) || header(m, "gokafka.first_time") != first.UTC().Format(batch.TimeLayout) ||
			header(m, "gokafka.last_time") != last.UTC().Format(batch.TimeLayout) || !m.Timestamp.Equal(last) {
			t.Errorf("headers %v, timestamp %v for %d records from %v to %v", m.Headers, m.Timestamp, n, first, last)
		}
		values.Write(m.Value)
	}
	t.Logf("%d records in, %d batch messages, %d records out, %d unexpected or duplicated; %d bytes of values for %d of JSON",
		len(recs), len(msgs), got, bad, values.Len(), len(bytes.Join(lines, []byte{'\n'})))
	if got != len(recs) || bad != 0 {
		t.Errorf("%d of %d records came back, %d unexpected", got, len(recs), bad)
	}

	// The stock lz4 tool reads the concatenated values as one stream.
	path := filepath.Join(t.TempDir(), "values.lz4")
	if err := os.WriteFile(path, values.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("lz4", "-dc", path).Output()
	if err != nil {
		t.Fatalf("lz4 -dc: %v (Debian package lz4)", err)
	}
	if want := append(bytes.Join(lines, []byte{'\n'}), '\n'); !bytes.Equal(out, want) {
		t.Errorf("lz4 -dc gave %d bytes, the messages' records are %d", len(out), len(want))
	}
	// So does the project's command, from the file and from the topic: to
	// its end, asked for more messages than it holds, or for one.
	cmdPath := filepath.Join(t.TempDir(), "gokafka-batch")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", cmdPath, "./cmd/gokafka-batch")
	build.Dir = fixture.RepoRoot(t)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building gokafka-batch: %v\n%s", err, b)
	}
	if out2, err := exec.Command(cmdPath, "-file", path).Output(); err != nil || !bytes.Equal(out2, out) {
		t.Errorf("gokafka-batch -file: %v, %d bytes", err, len(out2))
	}
	sorted := func(b []byte) string {
		l := strings.Split(string(b), "\n")
		slices.Sort(l)
		return strings.Join(l, "\n")
	}
	for _, n := range []int{0, len(msgs) + 1} {
		out2, err := exec.Command(cmdPath, "-brokers", bootstrap, "-topic", topic, "-n", strconv.Itoa(n)).Output()
		if err != nil || sorted(out2) != sorted(out) { // partitions' messages interleave in any order
			t.Errorf("gokafka-batch -topic -n %d: %v, %d bytes for %d", n, err, len(out2), len(out))
		}
	}
	one, err := exec.Command(cmdPath, "-brokers", bootstrap, "-topic", topic, "-n", "1").Output()
	if lines := bytes.Count(one, []byte{'\n'}); err != nil || lines == 0 || lines >= len(recs) {
		t.Errorf("gokafka-batch -n 1: %v, %d lines", err, lines)
	}
	// A message that is not a batch message, one that is not an LZ4 frame,
	// and one whose records are not as many as it says, are reported and
	// skipped.
	batchHeaders := func(records string) []kafka.Header {
		return []kafka.Header{{Key: "content-type", Value: []byte(batch.NDJSON)}, {Key: "content-encoding", Value: []byte("lz4")},
			{Key: "gokafka.records", Value: []byte(records)}}
	}
	foreign := kafkatest.Produce(t, bootstrap, topic, 0, msgs[0].Value) // a batch message's frame, but no headers
	notLZ4 := kafkatest.Produce(t, bootstrap, topic, 0, []byte("not an LZ4 frame"), batchHeaders("1")...)
	empty := kafkatest.Produce(t, bootstrap, topic, 0, nil, batchHeaders("3")...)
	noCount := kafkatest.Produce(t, bootstrap, topic, 0, msgs[0].Value, batchHeaders("")...)
	var stderr bytes.Buffer
	read := exec.Command(cmdPath, "-brokers", bootstrap, "-topic", topic)
	read.Stderr = &stderr
	out2, err := read.Output()
	for _, want := range []string{
		fmt.Sprintf("message at partition 0 offset %v: not a batch message: no content-encoding lz4 header", foreign.Offset),
		fmt.Sprintf("message at partition 0 offset %v: lz4 frame:", notLZ4.Offset),
		fmt.Sprintf("message at partition 0 offset %v: 0 records, where its gokafka.records header says 3", empty.Offset),
		fmt.Sprintf(`message at partition 0 offset %v: its gokafka.records header is missing or not a count of records: ""`, noCount.Offset),
		"4 messages could not be read",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("gokafka-batch with foreign messages: no %q in stderr:\n%s", want, &stderr)
		}
	}
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || sorted(out2) != sorted(out) {
		t.Errorf("gokafka-batch with foreign messages: %v, %d bytes for %d; stderr:\n%s", err, len(out2), len(out), &stderr)
	}
	if b, err := exec.Command(cmdPath, "-brokers", bootstrap, "-topic", topic+"-none").CombinedOutput(); err == nil || !bytes.Contains(b, []byte("Unknown topic")) {
		t.Errorf("gokafka-batch with a topic the cluster does not have: %v\n%s", err, b)
	}
	// Nothing to read, or a content type it does not know, is a usage error.
	for _, args := range [][]string{{"-brokers", bootstrap}, {"-file", path, "-type", "msgpack"}} {
		b, err := exec.Command(cmdPath, args...).CombinedOutput()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !bytes.Contains(b, []byte("give -topic or -file")) {
			t.Errorf("gokafka-batch %q: %v\n%s", args, err, b)
		}
	}
}

// TestBatchModeTopicMadeAgain: a topic deleted and made again with fewer
// partitions while keyed records flow to it in batch mode. Kafka refuses
// the batches placed by the old count (Unknown partition); the plugin asks
// for the count again, so that the chunks' retries (3 at most) go to the
// one partition left and no chunk is given up. Records Kafka took before the
// deletion went with the topic; every other one arrives once, as it was.
func TestBatchModeTopicMadeAgain(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	const chunks, perChunk = 40, 200
	recs, data := keyedChunks(chunks, perChunk, 20)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 3)
	done := hostInBackground(t, hostrun.Options{Plugin: pluginSO(t), StartDelay: time.Second, Instances: []hostrun.Instance{{
		Keys: keys("Brokers", bootstrap, "Topics", topic, "Message_Mode", "batch", "Message_Key_Field", "key",
			"Rate", "10", "Retry_Limit", "3"),
		Chunks: data,
	}}})
	time.Sleep(2 * time.Second) // a second of chunks, of the four
	kafkatest.DeleteTopic(t, bootstrap, topic)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)
	res := <-done
	if s := res.Sum(0); res.ExitCode != 0 || s.Chunks != chunks || s.OK != s.Chunks {
		t.Fatalf("host exit %d, want every chunk acknowledged: %+v\n%s", res.ExitCode, s, hostrun.Tail(res.Stderr, 20))
	}
	if !strings.Contains(res.Stderr, "Unknown partition") {
		t.Errorf("no batch refused for a partition the topic lost: the test did not test that:\n%s", hostrun.Tail(res.Stderr, 20))
	}
	index := make(map[string]int, len(recs))
	for i, r := range recs {
		index[string(expectedJSON(r))] = i
	}
	seen := make([]bool, len(recs))
	for _, m := range unbatched(t, kafkatest.ConsumeAll(t, bootstrap, topic, 10*time.Second)) {
		i, ok := index[string(m.Value)]
		switch {
		case m.TopicPartition.Partition != 0:
			t.Fatalf("a record in partition %d of a topic of 1", m.TopicPartition.Partition)
		case !ok:
			t.Fatalf("a record that was not sent: %s", m.Value)
		case seen[i]:
			t.Fatalf("record %d twice", i)
		}
		seen[i] = true
	}
	// The last 2 s of chunks went out after the topic was made again.
	for i := (chunks - 20) * perChunk; i < len(recs); i++ {
		if !seen[i] {
			t.Fatalf("record %d, of a chunk sent after the topic was made again, missing", i)
		}
	}
}
