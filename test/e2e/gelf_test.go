package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
)

// TestGELF: container logs enriched as the kubernetes filter does, as GELF
// for Graylog: every field comes back where GELF puts it; records without a
// log line are skipped, counted in the log, and the rest of their chunk is
// delivered.
func TestGELF(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	levels := []any{"ERROR", "warn", int64(6), "TRACE", nil}
	recs := containerLogs(t, "docker", 20000)
	skipped := 0
	for i := range recs {
		var body []fixture.KV
		for _, kv := range recs[i].Body {
			if kv.Key != "log" || i%97 != 5 { // every 97th record has no log line
				body = append(body, kv)
			}
		}
		if len(body) < len(recs[i].Body) {
			skipped++
		}
		kube := []fixture.KV{{Key: "host", Value: fmt.Sprintf("node-%d", i%3)}, {Key: "pod_name", Value: fmt.Sprintf("web-%d", i%7)},
			{Key: "labels", Value: []fixture.KV{{Key: "app.kubernetes.io/name", Value: "web"}}}}
		recs[i].Body = append(body, fixture.KV{Key: "kubernetes", Value: kube}, fixture.KV{Key: "level", Value: levels[i%len(levels)]},
			fixture.KV{Key: "ids", Value: []any{int64(i), "x"}})
	}
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 2)
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys: keys("Brokers", bootstrap, "Topics", topic, "Format", "gelf", "Gelf_Short_Message_Key", "log",
			"Gelf_Host_Key", "$kubernetes['host']", "Include_Tag_Key", "on", "Tag", "kube.web", "Workers", "2"),
		Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2}),
	}}})
	if s := res.Instances[0]; s.OK != s.Chunks {
		t.Fatalf("%+v\n%s", s, hostrun.Tail(res.Stderr, 20))
	}
	logged := 0
	for _, m := range regexp.MustCompile(`(\d+) of \d+ records have no \(or a null or blank\) \$log and were skipped`).FindAllStringSubmatch(res.Stderr, -1) {
		n, _ := strconv.Atoi(m[1])
		logged += n
	}
	if logged != skipped {
		t.Errorf("the log counts %d records skipped, want %d", logged, skipped)
	}
	checkGELF(t, recs, kafkatest.Consume(t, bootstrap, topic, len(recs)-skipped, time.Minute))
}

// checkGELF compares each message with the GELF form of the record whose
// docker time it holds, and checks every record but the skipped came once.
func checkGELF(t *testing.T, recs []fixture.Record, msgs []*kafka.Message) {
	t.Helper()
	byTime := map[string]int{}
	for i, r := range recs {
		v, _ := fixture.Get(r.Body, "time")
		byTime[v.(string)] = i
	}
	seen := map[int]bool{}
	for _, m := range msgs {
		var got map[string]any
		if err := json.Unmarshal(m.Value, &got); err != nil {
			t.Fatalf("%s: %v", m.Value, err)
		}
		i, ok := byTime[fmt.Sprint(got["_time"])]
		if !ok || seen[i] {
			t.Fatalf("unknown or duplicated message %s", m.Value)
		}
		seen[i] = true
		if want := wantGELF(recs[i]); !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d:\ngot  %v\nwant %v", i, got, want)
		}
	}
	for i, r := range recs {
		if _, hasLog := fixture.Get(r.Body, "log"); hasLog != seen[i] {
			t.Fatalf("record %d with a log line %v came back %v", i, hasLog, seen[i])
		}
	}
	t.Logf("%d of %d records came back as GELF, field for field", len(seen), len(recs))
}

// wantGELF is the GELF form of one of TestGELF's records.
func wantGELF(r fixture.Record) map[string]any {
	kube, _ := fixture.Get(r.Body, "kubernetes")
	host, _ := fixture.Get(kube.([]fixture.KV), "host")
	pod, _ := fixture.Get(kube.([]fixture.KV), "pod_name")
	want := map[string]any{"version": "1.1", "timestamp": float64(r.Time.UnixMilli()) / 1e3, "_tag": "kube.web"}
	for _, kv := range r.Body {
		switch v := kv.Value.(type) {
		case []fixture.KV: // kubernetes
		case []any:
			js, _ := json.Marshal(v)
			want["_"+kv.Key] = string(js)
		case nil:
		default:
			want["_"+kv.Key] = v
		}
	}
	want["short_message"], want["host"] = want["_log"], host
	delete(want, "_log")
	if level, ok := map[any]float64{"ERROR": 3, "warn": 4, int64(6): 6}[want["_level"]]; ok { // syslog severities
		want["level"] = level
		delete(want, "_level")
	} else if level, ok := want["_level"]; ok { // a name Graylog keeps for itself
		want["_level_"] = level
		delete(want, "_level")
	}
	want["_kubernetes_pod_name"], want["_kubernetes_labels_app.kubernetes.io_name"] = pod, "web"
	return want
}
