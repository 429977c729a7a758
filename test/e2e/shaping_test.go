package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/plugin"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
)

// TestShaping routes container logs enriched as the kubernetes filter does:
// topic from the namespace (allow-listed, others to the default topic), key
// from the pod name with Java-compatible partitions, static, field and
// metadata headers, the labels removed, the tag added, event timestamps.
func TestShaping(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	base := kafkatest.UniqueTopic(t)
	def, shop, pay := base+"-default", base+"-shop", base+"-pay"
	const partitions = 4
	for _, topic := range []string{def, shop, pay} {
		kafkatest.CreateTopic(t, bootstrap, topic, partitions)
	}
	namespaces := []string{shop, pay, base + "-rogue"} // the last one is not allowed

	recs := containerLogs(t, "docker", 30000)
	for i := range recs {
		recs[i].Metadata = []fixture.KV{{Key: "source", Value: "tail"}, {Key: "seq", Value: int64(i)}}
		kube := []fixture.KV{{Key: "namespace_name", Value: namespaces[i%3]}}
		switch i % 37 {
		case 0: // no key
		case 1: // an empty key, not a null one
			kube = append(kube, fixture.KV{Key: "pod_name", Value: ""})
		default:
			kube = append(kube, fixture.KV{Key: "pod_name", Value: fmt.Sprintf("web-%d", i%37)})
		}
		kube = append(kube, fixture.KV{Key: "labels", Value: []fixture.KV{{Key: "app", Value: fmt.Sprintf("app-%d", i%5)}}})
		recs[i].Body = append(recs[i].Body, fixture.KV{Key: "kubernetes", Value: kube})
	}
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys: keys("Brokers", bootstrap, "Topics", def+","+shop+","+pay, "Topic_Key", "$kubernetes['namespace_name']",
			"Message_Key_Field", "$kubernetes['pod_name']", "Header", "env prod", "Header_Key", "app $kubernetes['labels']['app']",
			"Metadata_Headers", "on", "Remove_Keys", "$kubernetes['labels']", "Include_Tag_Key", "on", "Tag", "kube.var.log",
			"Timestamp_Format", "epoch_ms", "Workers", "2"),
		Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2}),
	}}})
	if s := res.Instances[0]; s.OK != s.Chunks {
		t.Fatalf("%+v", s)
	}

	byTime := map[string]int{} // the docker "time" field is unique per record
	for i, r := range recs {
		v, _ := fixture.Get(r.Body, "time")
		byTime[v.(string)] = i
	}
	seen := make([]bool, len(recs))
	checked := 0
	for _, topic := range []string{def, shop, pay} {
		want := 0
		for i := range recs {
			if expectTopic(i, namespaces, def) == topic {
				want++
			}
		}
		msgs := kafkatest.Consume(t, bootstrap, topic, want, time.Minute)
		if len(msgs) != want {
			t.Errorf("topic %s: %d messages, want %d", topic, len(msgs), want)
		}
		for _, m := range msgs {
			var v map[string]any
			if err := json.Unmarshal(m.Value, &v); err != nil {
				t.Fatalf("%s: %v", m.Value, err)
			}
			i, ok := byTime[fmt.Sprint(v["time"])]
			if !ok || seen[i] {
				t.Fatalf("unknown or duplicated message %s", m.Value)
			}
			seen[i] = true
			checkShaped(t, m, recs[i], i, expectTopic(i, namespaces, def), partitions)
			checked++
		}
	}
	t.Logf("%d records in, %d messages checked for topic, key, partition, headers, timestamp and value", len(recs), checked)
	if checked != len(recs) {
		t.Errorf("%d of %d records came back", checked, len(recs))
	}
}

func expectTopic(i int, namespaces []string, def string) string {
	if i%3 == 2 {
		return def
	}
	return namespaces[i%3]
}

func checkShaped(t *testing.T, m *kafka.Message, rec fixture.Record, i int, topic string, partitions int32) {
	t.Helper()
	kube, _ := fixture.Get(rec.Body, "kubernetes")
	pod, keyed := fixture.Get(kube.([]fixture.KV), "pod_name")
	ns, _ := fixture.Get(kube.([]fixture.KV), "namespace_name")
	labels, _ := fixture.Get(kube.([]fixture.KV), "labels")
	app, _ := fixture.Get(labels.([]fixture.KV), "app")

	wantKube := map[string]any{"namespace_name": ns}
	if keyed {
		wantKube["pod_name"] = pod
	}
	want := map[string]any{"@timestamp": float64(rec.Time.UnixMilli()), "tag": "kube.var.log", "kubernetes": wantKube}
	for _, kv := range rec.Body {
		if kv.Key != "kubernetes" {
			want[kv.Key] = kv.Value
		}
	}
	var got map[string]any
	json.Unmarshal(m.Value, &got)
	wantHeaders := []string{"env=prod", "app=" + app.(string), "source=tail", "seq=" + strconv.Itoa(i)}
	var gotHeaders []string
	for _, h := range m.Headers {
		gotHeaders = append(gotHeaders, h.Key+"="+string(h.Value))
	}
	key, _ := pod.(string)
	wantPartition := (plugin.Murmur2([]byte(key)) & 0x7fffffff) % partitions
	switch {
	case *m.TopicPartition.Topic != topic:
		t.Errorf("record %d went to %s, want %s", i, *m.TopicPartition.Topic, topic)
	case (m.Key != nil) != keyed || string(m.Key) != key:
		t.Errorf("record %d key %q (null %v), want %q (null %v)", i, m.Key, m.Key == nil, key, !keyed)
	case keyed && m.TopicPartition.Partition != wantPartition:
		t.Errorf("record %d (key %s) in partition %d, want %d", i, pod, m.TopicPartition.Partition, wantPartition)
	case fmt.Sprint(gotHeaders) != fmt.Sprint(wantHeaders):
		t.Errorf("record %d headers %v, want %v", i, gotHeaders, wantHeaders)
	case m.Timestamp.UnixMilli() != rec.Time.UnixMilli() || m.TimestampType != kafka.TimestampCreateTime:
		t.Errorf("record %d timestamp %v (%v), want %v", i, m.Timestamp, m.TimestampType, rec.Time)
	case canonical(t, got) != canonical(t, want):
		t.Errorf("record %d value\n%s\nwant\n%s", i, canonical(t, got), canonical(t, want))
	}
}
