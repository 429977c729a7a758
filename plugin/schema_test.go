package plugin

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/sender"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/logsink"
	"github.com/hamba/avro/v2"
)

const logSchema = `{"type":"record","name":"L","fields":[{"name":"log","type":"string"}]}`

// registryHandler answers for subject logs-value, whose latest schema has
// ID 42, to user u with password p.
func registryHandler(w http.ResponseWriter, r *http.Request) {
	if u, p, _ := r.BasicAuth(); u != "u" || p != "p" {
		http.Error(w, `{"error_code":40101,"message":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Path != "/subjects/logs-value/versions/latest" {
		http.Error(w, `{"error_code":40401,"message":"Subject 'x' not found."}`, http.StatusNotFound)
		return
	}
	fmt.Fprintf(w, `{"subject":"logs-value","version":3,"id":42,"schema":%q}`, logSchema)
}

func avroKeys(url, subject string) conf.MapGetter {
	return conf.MapGetter{"Format": "avro", "Schema_Registry_URL": url, "Schema_Registry_Subject": subject,
		"Schema_Registry_HTTP_User": "u", "Schema_Registry_HTTP_Passwd": "p"}
}

// TestSchemaFromRegistry: while the registry cannot be reached chunks are
// retried; once it answers, the next flush (a chunk's retry) fetches the
// schema and sends its records in Avro with the schema's ID.
func TestSchemaFromRegistry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens, for now
	prod := &fakeProducer{}
	in, sink := newInstance(t, prod, avroKeys("http://"+addr, "logs-value"))
	in.schema.wait = time.Hour // a flush waits for its fetch to end, not longer
	if got := in.Flush(chunkOf("a", "b"), "t"); got != Retry {
		t.Fatalf("Flush without a schema = %d", got)
	}
	if !strings.Contains(sink.String(), "2 records not sent: no Avro schema from Schema_Registry_URL yet") {
		t.Fatalf("log:\n%s", sink)
	}
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(registryHandler)}
	go srv.Serve(ln)
	defer srv.Close()
	if got := in.Flush(chunkOf("a", "b"), "t"); got != OK || len(prod.msgs) != 2 {
		t.Fatalf("Flush = %d, %d messages; log:\n%s", got, len(prod.msgs), sink)
	}
	for i, m := range prod.msgs {
		var rec struct {
			Log string `avro:"log"`
		}
		if !strings.HasPrefix(m.value, "\x00\x00\x00\x00\x2a") {
			t.Fatalf("message %d: % x", i, m.value)
		}
		if err := avro.Unmarshal(avro.MustParse(logSchema), []byte(m.value[5:]), &rec); err != nil || rec.Log != []string{"a", "b"}[i] {
			t.Fatalf("message %d: %+v, %v", i, rec, err)
		}
	}
	if !strings.Contains(sink.String(), "loaded Avro schema 42 from Schema_Registry_URL") {
		t.Fatalf("log:\n%s", sink)
	}
}

// TestSchemaRegistryNotAnswering: while a registry takes requests but does
// not answer, one flush waits for the fetch in vain; the next ones find it
// still running and hand their chunks back at once.
func TestSchemaRegistryNotAnswering(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused at Init
	in, sink := newInstance(t, &fakeProducer{}, avroKeys("http://"+addr, "logs-value"))
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var requests atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1); <-release })}
	go srv.Serve(ln)
	defer srv.Close()
	defer close(release)
	in.schema.wait = 50 * time.Millisecond
	if got := in.Flush(chunkOf("a"), "t"); got != Retry {
		t.Fatalf("Flush = %d", got)
	}
	in.schema.wait = time.Hour // the fetch runs on: no flush waits for it again
	for range 3 {
		if got := in.Flush(chunkOf("a"), "t"); got != Retry {
			t.Fatalf("Flush = %d", got)
		}
	}
	if n := strings.Count(sink.String(), "1 records not sent: no Avro schema from Schema_Registry_URL yet"); n != 4 || requests.Load() != 1 {
		t.Fatalf("%d chunks handed back, want 4, and %d requests, want the first flush's only; log:\n%s", n, requests.Load(), sink)
	}
}

// TestSchemaRefused: a registry's refusal fails Init, naming the key.
func TestSchemaRefused(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(registryHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String()
	for _, c := range []struct{ subject, user, want string }{
		{"other", "u", "Schema_Registry_URL: refused: " + url + ": Subject 'x' not found."},
		{"logs-value", "v", "Schema_Registry_URL: refused: " + url + ": Unauthorized"},
	} {
		keys := avroKeys(url, c.subject)
		keys["Brokers"], keys["Schema_Registry_HTTP_User"] = "unused:1", c.user
		cfg, err := conf.Load(keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg, func() (sender.Producer, error) { return &fakeProducer{}, nil }, fixture.GoAllocator{}, new(Stats), (&logsink.Sink{}).Log)
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// TestSchemaStrRefused: a Schema_Str the encoder cannot use fails Init,
// naming the key.
func TestSchemaStrRefused(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1", "Format": "avro", "Schema_Str": `{"type":"array","items":"long"}`, "Schema_ID": "1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, func() (sender.Producer, error) { return &fakeProducer{}, nil }, fixture.GoAllocator{}, new(Stats), (&logsink.Sink{}).Log)
	if want := "Schema_Str: avro schema is array, not a record"; err == nil || err.Error() != want {
		t.Fatalf("%v, want %s", err, want)
	}
}

// TestExitWaitsForSchemaFetch: a fetch a flush started in the background
// has ended when Exit returns, rather than log through an exited instance.
func TestExitWaitsForSchemaFetch(t *testing.T) {
	var requests atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 { // Init's
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		registryHandler(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	keys := avroKeys("http://"+ln.Addr().String(), "logs-value")
	keys["Brokers"] = "unused:1"
	cfg, err := conf.Load(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The fetch's last act, its log line, waits for unblock.
	entered, unblock := make(chan struct{}), make(chan struct{})
	var logged atomic.Bool
	log := func(level int, msg string) {
		if strings.Contains(msg, "loaded Avro schema") {
			close(entered)
			<-unblock
			logged.Store(true)
		}
	}
	in, err := New(cfg, func() (sender.Producer, error) { return &fakeProducer{}, nil }, fixture.GoAllocator{}, new(Stats), log)
	if err != nil {
		t.Fatal(err)
	}
	// The flush sees the schema come, though the fetch has not ended.
	if got := in.Flush(chunkOf("a"), "t"); got != OK {
		t.Fatalf("Flush = %d", got)
	}
	<-entered
	exited := make(chan bool)
	go func() {
		in.Exit()
		exited <- logged.Load()
	}()
	time.Sleep(50 * time.Millisecond) // time for an Exit that does not wait to return
	close(unblock)
	if !<-exited {
		t.Fatal("Exit returned while the schema fetch still ran")
	}
}
