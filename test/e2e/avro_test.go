package e2e

import (
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
	"github.com/hamba/avro/v2"
)

// avroSchema has a field of each kind: string, enum, the time as
// timestamp-millis, the tag, nullable unions with and without a default, an
// int with a default, array, nested record with a map, a union of several
// branches. One line, as Schema_Str takes it.
const avroSchema = `{"type":"record","name":"ContainerLog","namespace":"e2e","fields":[` +
	`{"name":"log","type":"string"},` +
	`{"name":"stream","type":{"type":"enum","name":"Stream","symbols":["stdout","stderr"]}},` +
	`{"name":"time","type":"string"},` +
	`{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},` +
	`{"name":"tag","type":"string"},` +
	`{"name":"seq","type":"long"},` +
	`{"name":"ratio","type":"double"},` +
	`{"name":"ok","type":"boolean"},` +
	`{"name":"bin","type":"bytes"},` +
	`{"name":"level","type":["null","string"]},` +
	`{"name":"none","type":["null","long"],"default":null},` +
	`{"name":"code","type":"int","default":-1},` +
	`{"name":"tags","type":{"type":"array","items":"string"}},` +
	`{"name":"kubernetes","type":{"type":"record","name":"Kube","fields":[` +
	`{"name":"pod_name","type":"string"},` +
	`{"name":"namespace_name","type":"string","default":"default"},` +
	`{"name":"pod_id","type":["null","string"],"default":null},` +
	`{"name":"labels","type":{"type":"map","values":"string"}}]}},` +
	`{"name":"n","type":["null","long","double","string"],"default":null}]}`

// avroKeys are the keys of every run but the registry's: the time in ts, the
// tag, a field of the nested record and a map entry removed, the pod the key.
var avroKeys = []string{"Format", "avro", "Tag", "kube.web", "Timestamp_Key", "ts", "Include_Tag_Key", "on",
	"Remove_Keys", "$kubernetes['pod_id'], $kubernetes['labels']['secret']", "Message_Key_Field", "$kubernetes['pod_name']", "Workers", "2"}

// avroRecords returns n docker log records with fields of every kind, some
// missing or nil, and the number of poison ones among them: every 500th has
// its seq as text, which the schema's long cannot take.
func avroRecords(t *testing.T, n int) ([]fixture.Record, int) {
	recs := containerLogs(t, "docker", n)
	poison := 0
	for i := range recs {
		kube := []fixture.KV{{Key: "pod_name", Value: fmt.Sprintf("web-%d", i%7)}, {Key: "pod_id", Value: fmt.Sprint("uid-", i)}, {Key: "host", Value: "node-1"},
			{Key: "labels", Value: []fixture.KV{{Key: "app", Value: "web"}, {Key: "secret", Value: "s3cr3t"}, {Key: "gone", Value: nil}, {Key: "seq", Value: fmt.Sprint(i)}}}}
		if i%3 != 0 {
			kube = append(kube, fixture.KV{Key: "namespace_name", Value: "prod"})
		}
		var seq, ratio any = int64(i), float64(i) / 8
		if i%500 == 250 {
			seq = fmt.Sprint("seq-", i)
			poison++
		}
		if i%5 == 0 {
			ratio = int64(i)
		}
		body := append(recs[i].Body, fixture.KV{Key: "seq", Value: seq}, fixture.KV{Key: "ratio", Value: ratio}, fixture.KV{Key: "ok", Value: i%2 == 0},
			fixture.KV{Key: "bin", Value: []byte{0, byte(i), 0xff}}, fixture.KV{Key: "none", Value: nil}, fixture.KV{Key: "extra", Value: "not in the schema"},
			fixture.KV{Key: "kubernetes", Value: kube}, fixture.KV{Key: "tags", Value: []any{"a", fmt.Sprint(i)}})
		switch i % 3 {
		case 1:
			body = append(body, fixture.KV{Key: "level", Value: "info"})
		case 2:
			body = append(body, fixture.KV{Key: "level", Value: nil})
		}
		if i%4 == 0 {
			body = append(body, fixture.KV{Key: "code", Value: int64(i % 1000)})
		}
		if n := []any{int64(-i), float64(i) + 0.5, fmt.Sprint("n", i), uint64(math.MaxInt64) + uint64(i) + 1, nil}[i%5]; n != nil {
			body = append(body, fixture.KV{Key: "n", Value: n})
		}
		recs[i].Body = body
	}
	return recs, poison
}

// wantAvro is what a consumer decodes, with avroSchema, from r sent with
// avroKeys; nil if r cannot be encoded.
func wantAvro(r fixture.Record) map[string]any {
	get := func(kvs any, key string) any { v, _ := fixture.Get(kvs.([]fixture.KV), key); return v }
	seq, ok := get(r.Body, "seq").(int64)
	if !ok {
		return nil
	}
	ratio, isFloat := get(r.Body, "ratio").(float64)
	if !isFloat {
		ratio = float64(get(r.Body, "ratio").(int64))
	}
	code := -1 // the default
	if c, ok := get(r.Body, "code").(int64); ok {
		code = int(c)
	}
	n := get(r.Body, "n") // long, double and string branches as they are; nil for null
	if u, ok := n.(uint64); ok {
		n = float64(u) // beyond a long: the double branch
	}
	kube := get(r.Body, "kubernetes")
	ns, ok := get(kube, "namespace_name").(string)
	if !ok {
		ns = "default"
	}
	labels := map[string]any{}
	for _, kv := range get(kube, "labels").([]fixture.KV) {
		if kv.Value != nil && kv.Key != "secret" { // nil: left out of a map of strings; secret: removed
			labels[kv.Key] = kv.Value
		}
	}
	return map[string]any{
		"log": get(r.Body, "log"), "stream": get(r.Body, "stream"), "time": get(r.Body, "time"), "ts": time.UnixMilli(r.Time.UnixMilli()).UTC(),
		"tag": "kube.web", "seq": seq, "ratio": ratio, "ok": get(r.Body, "ok"), "bin": get(r.Body, "bin"), "level": get(r.Body, "level"),
		"none": nil, "code": code, "tags": get(r.Body, "tags"), "n": n,
		"kubernetes": map[string]any{"pod_name": get(kube, "pod_name"), "namespace_name": ns, "pod_id": nil, "labels": labels},
	}
}

const avroChunkBytes = 32 << 10

// sendAvro runs the host (run, or hostrun.Run when nil) over recs in chunks
// of avroChunkBytes, with kv, to a new topic, and reads back want messages.
func sendAvro(t *testing.T, bootstrap, so string, recs []fixture.Record, want int, run func(hostrun.Options) hostrun.Result, kv ...string) (hostrun.Result, []*kafka.Message) {
	t.Helper()
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 3)
	o := hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys:   append(keys("Brokers", bootstrap, "Topics", topic), keys(kv...)...),
		Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2, ChunkBytes: avroChunkBytes}),
	}}}
	if run == nil {
		run = func(o hostrun.Options) hostrun.Result { return hostrun.Run(t, o) }
	}
	res := run(o)
	if s := res.Sum(0); s.OK != s.Chunks || s.Chunks < 2 || s.Error+s.Dropped != 0 {
		t.Fatalf("want every chunk acknowledged: %+v\n%s", s, hostrun.Tail(res.Stderr, 20))
	}
	return res, kafkatest.Consume(t, bootstrap, topic, want, time.Minute)
}

// checkAvro checks that msgs hold each of recs that can be encoded once,
// framed with id, decoded as wantAvro says, keyed by pod, with the event time.
func checkAvro(t *testing.T, recs []fixture.Record, msgs []*kafka.Message, id uint32) {
	t.Helper()
	schema := avro.MustParse(avroSchema)
	seen := map[int64]bool{}
	for _, m := range msgs {
		if len(m.Value) < 5 || m.Value[0] != 0 || binary.BigEndian.Uint32(m.Value[1:5]) != id {
			t.Fatalf("framing % x, want 00 and ID %d", m.Value[:min(5, len(m.Value))], id)
		}
		var got map[string]any
		if err := avro.Unmarshal(schema, m.Value[5:], &got); err != nil {
			t.Fatalf("% x does not decode: %v", m.Value, err)
		}
		seq, _ := got["seq"].(int64)
		if seq < 0 || seq >= int64(len(recs)) || seen[seq] {
			t.Fatalf("unknown or duplicated message %v", got)
		}
		seen[seq] = true
		r := recs[seq]
		if want := wantAvro(r); !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d:\ngot  %#v\nwant %#v", seq, got, want)
		}
		if pod := got["kubernetes"].(map[string]any)["pod_name"]; string(m.Key) != pod || m.Timestamp.UnixMilli() != r.Time.UnixMilli() {
			t.Fatalf("record %d: key %q, Kafka time %v; want %q, %v", seq, m.Key, m.Timestamp, pod, r.Time)
		}
	}
	for i, r := range recs {
		if seen[int64(i)] != (wantAvro(r) != nil) {
			t.Fatalf("record %d: delivered %v, can be encoded %v", i, seen[int64(i)], wantAvro(r) != nil)
		}
	}
	t.Logf("%d of %d records came back, field for field", len(seen), len(recs))
}

// registry is a Confluent Schema Registry holding avroSchema as ID 42,
// version 3 of subject logs-value, that answers 401 to a request without
// its user and password or its token; it counts the requests it answered.
type registry struct {
	user, password, token string
	mu                    sync.Mutex
	served                map[string]int // by path
}

func (rg *registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, password, basic := r.BasicAuth()
	if !(rg.user != "" && basic && user == rg.user && password == rg.password || rg.token != "" && r.Header.Get("Authorization") == "Bearer "+rg.token) {
		http.Error(w, `{"error_code":40101,"message":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	var body any
	switch r.URL.Path {
	case "/subjects/logs-value/versions/latest", "/subjects/logs-value/versions/3":
		body = map[string]any{"subject": "logs-value", "version": 3, "id": 42, "schema": avroSchema}
	case "/schemas/ids/42":
		body = map[string]any{"schema": avroSchema}
	case "/subjects/text-value/versions/latest": // not a record
		body = map[string]any{"subject": "text-value", "version": 1, "id": 43, "schema": `"string"`}
	default:
		http.Error(w, `{"error_code":40401,"message":"Subject not found"}`, http.StatusNotFound)
		return
	}
	rg.mu.Lock()
	rg.served[r.Method+" "+r.URL.Path]++
	rg.mu.Unlock()
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	json.NewEncoder(w).Encode(body)
}

func (rg *registry) count(path string) int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.served["GET "+path]
}

// TestAvro: Format avro with the schema in the configuration, or from a
// Schema Registry, up at the start or later; records that do not fit the
// schema are dropped and counted, the others come back field for field.
func TestAvro(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)

	t.Run("ContainerLogs", func(t *testing.T) {
		recs, poison := avroRecords(t, 3000)
		res, msgs := sendAvro(t, bootstrap, so, recs, len(recs)-poison, nil, append(avroKeys, "Schema_Str", avroSchema, "Schema_ID", "7")...)
		if s := res.Sum(0); s.Retry != 0 {
			t.Errorf("chunks retried: %+v", s)
		}
		logged := 0
		re := regexp.MustCompile(`tag kube\.web: (\d+) of \d+ records cannot be encoded and were dropped; the first, record \d+: seq: `)
		for _, m := range re.FindAllStringSubmatch(res.Stderr, -1) {
			n, _ := strconv.Atoi(m[1])
			logged += n
		}
		if logged != poison {
			t.Errorf("the log counts %d records that cannot be encoded, want %d:\n%s", logged, poison, hostrun.Tail(res.Stderr, 10))
		}
		checkAvro(t, recs, msgs, 7)
	})

	recs, poison := avroRecords(t, 1000)
	t.Run("Registry", func(t *testing.T) {
		for _, c := range []struct {
			name, path string
			rg         *registry
			tls        bool
			kv         []string
		}{
			{"basic auth, subject", "/subjects/logs-value/versions/latest", &registry{user: "fluent", password: "p@ss:word"}, false,
				[]string{"Schema_Registry_Subject", "logs-value", "Schema_Registry_HTTP_User", "fluent", "Schema_Registry_HTTP_Passwd", "p@ss:word"}},
			{"bearer, version", "/subjects/logs-value/versions/3", &registry{token: "t0ken"}, false,
				[]string{"Schema_Registry_Subject", "logs-value", "Schema_Registry_Version", "3", "Schema_Registry_Bearer_Token", "t0ken"}},
			{"https, basic auth, ID", "/schemas/ids/42", &registry{user: "fluent", password: "pw-0f9a"}, true,
				[]string{"Schema_ID", "42", "Schema_Registry_HTTP_User", "fluent", "Schema_Registry_HTTP_Passwd", "pw-0f9a"}},
		} {
			c.rg.served = map[string]int{}
			srv := httptest.NewUnstartedServer(c.rg)
			var run func(hostrun.Options) hostrun.Result // hostrun.Run
			if !c.tls {
				srv.Start()
			} else { // the plugin trusts the server's certificate through Go's SSL_CERT_FILE
				srv.StartTLS()
				ca := filepath.Join(t.TempDir(), "registry.pem")
				if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
					t.Fatal(err)
				}
				run = func(o hostrun.Options) hostrun.Result {
					o.Env = []string{"SSL_CERT_FILE=" + ca}
					return hostrun.Run(t, o)
				}
			}
			// The first URL refuses connections; the second, with a trailing slash, is asked.
			kv := append(append(avroKeys, "Schema_Registry_URL", "http://"+kafkatest.FreeAddr(t)+", "+srv.URL+"/"), c.kv...)
			res, msgs := sendAvro(t, bootstrap, so, recs, len(recs)-poison, run, kv...)
			srv.Close()
			noSecrets(t, res, c.kv[len(c.kv)-1])
			checkAvro(t, recs, msgs, 42)
			if n := c.rg.count(c.path); n != 1 {
				t.Errorf("%s: GET %s answered %d times, want once: %v", c.name, c.path, n, c.rg.served)
			}
		}
	})

	// A registry that answers an error or a schema that is no record fails
	// Init, with the registry's answer.
	t.Run("RegistryRefuses", func(t *testing.T) {
		srv := httptest.NewServer(&registry{user: "fluent", password: "pw-0f9a", served: map[string]int{}})
		defer srv.Close()
		for _, c := range []struct{ user, subject, answer string }{
			{"fluent", "unknown-value", "Subject not found"}, // 404
			{"intruder", "logs-value", "Unauthorized"},       // 401
			{"fluent", "text-value", "not a record"},
		} {
			res := hostrun.Run(t, hostrun.Options{Plugin: so, AllowFail: true, Instances: []hostrun.Instance{{
				Keys: keys(append(avroKeys, "Brokers", "127.0.0.1:1", "Schema_Registry_URL", srv.URL, "Schema_Registry_Subject", c.subject,
					"Schema_Registry_HTTP_User", c.user, "Schema_Registry_HTTP_Passwd", "pw-0f9a")...),
			}}})
			if want := "configuration error: Schema_Registry_URL: "; res.ExitCode != 3 || !strings.Contains(grep(res.Stderr, want), c.answer) {
				t.Errorf("user %s, subject %s: exit %d, want 3 and %q with the registry's %q; stderr:\n%s", c.user, c.subject, res.ExitCode, want, c.answer, hostrun.Tail(res.Stderr, 5))
			}
			noSecrets(t, res, "pw-0f9a")
		}
	})

	// The registry listens only once flushes have been retried for want of
	// the schema (the metrics show more flushes than chunks); then every
	// record goes out once, and the schema is fetched once.
	t.Run("RegistryLate", func(t *testing.T) {
		addr, metrics := kafkatest.FreeAddr(t), kafkatest.FreeAddr(t)
		for metrics == addr {
			metrics = kafkatest.FreeAddr(t)
		}
		rg := &registry{token: "t0ken", served: map[string]int{}}
		srv := httptest.NewUnstartedServer(rg)
		defer srv.Close()
		nChunks := float64(len(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2, ChunkBytes: avroChunkBytes})))
		flushes := series("gokafka_flush_duration_seconds_count", "instance", "gokafka.0")
		up := false
		run := func(o hostrun.Options) hostrun.Result {
			o.Backoff, o.Timeout = 500*time.Millisecond, 2*time.Minute
			_, _, _, res := metricsRun(t, metrics, o, func(m map[string]float64) bool {
				if m[flushes] <= nChunks {
					return false
				}
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				srv.Listener.Close()
				srv.Listener = ln
				srv.Start()
				up = true
				return true
			}, nil)
			return res
		}
		res, msgs := sendAvro(t, bootstrap, so, recs, len(recs)-poison, run, append(avroKeys, "Schema_Registry_URL", "http://"+addr,
			"Schema_Registry_Subject", "logs-value", "Schema_Registry_Bearer_Token", "t0ken", "Retry_Limit", "no_limits", "Metrics_Listen", metrics)...)
		if !up {
			t.Fatalf("no scrape showed a flush retried before the host ended: %+v", res.Sum(0))
		}
		if s := res.Sum(0); s.Retry == 0 || !regexp.MustCompile(`\[ warn\] .*Schema_Registry_URL`).MatchString(res.Stderr) {
			t.Errorf("want chunks retried and a warning: %+v\n%s", s, hostrun.Tail(res.Stderr, 10))
		}
		checkAvro(t, recs, msgs, 42)
		if n := rg.count("/subjects/logs-value/versions/latest"); n != 1 {
			t.Errorf("the schema was fetched %d times, want once", n)
		}
	})

	t.Run("Batch", func(t *testing.T) {
		res := hostrun.Run(t, hostrun.Options{Plugin: so, AllowFail: true, Instances: []hostrun.Instance{{
			Keys: keys(append(avroKeys, "Brokers", "127.0.0.1:1", "Schema_Str", avroSchema, "Schema_ID", "7", "Message_Mode", "batch")...),
		}}})
		if res.ExitCode != 3 || !strings.Contains(res.Stderr, "configuration error: Format: ") {
			t.Errorf("Message_Mode batch: exit %d, stderr:\n%s", res.ExitCode, hostrun.Tail(res.Stderr, 5))
		}
	})
}
