package e2e

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
	"github.com/gokafka/gokafka/test/scrape"
)

// series names a sample as scrape.Metrics does; labels in sorted order.
func series(name string, labels ...string) string {
	var ls []string
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// metricsRun runs the host in the background and scrapes addr every 100 ms
// while it runs, until done says a scrape shows what the test waits for. It
// returns that scrape (or the last one, and ok false), whether an earlier one
// showed partial (records delivered but not all), and the host's result.
// Counters must never go backwards from one scrape to the next.
func metricsRun(t *testing.T, addr string, o hostrun.Options, done func(map[string]float64) bool, partial func(map[string]float64) bool) (m map[string]float64, ok, sawPartial bool, res hostrun.Result) {
	t.Helper()
	hostDone := hostInBackground(t, o)
	scrapes := 0
	prev := map[string]float64{}
	for {
		select {
		case res := <-hostDone:
			t.Logf("%d scrapes during the run", scrapes)
			return m, ok, sawPartial, res
		case <-time.After(100 * time.Millisecond):
		}
		if ok {
			continue
		}
		cur, err := scrape.Metrics(addr)
		if err != nil {
			continue // not listening yet, or between a reload's Exit and Init
		}
		scrapes++
		m = cur
		for k, v := range m {
			if p, ok := prev[k]; ok && v < p && (strings.Contains(k, "_total{") || strings.Contains(k, "_count{")) {
				t.Errorf("%s went back from %v to %v", k, p, v)
			}
			prev[k] = v
		}
		if partial != nil && partial(m) {
			sawPartial = true
		}
		ok = done(m)
	}
}

// keeper is an instance that keeps the host running for about d with two
// chunks of a few records, so the endpoint can be scraped after the others
// finished: the host stops when every instance's chunks are done.
func keeper(t *testing.T, bootstrap string, recs []fixture.Record, d time.Duration) hostrun.Instance {
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 1)
	chunks := append(fixture.EncodeChunks(recs[:5], fixture.ChunkOptions{}), fixture.EncodeChunks(recs[5:10], fixture.ChunkOptions{})...)
	return hostrun.Instance{Keys: keys("Brokers", bootstrap, "Topics", topic, "Rate", fmt.Sprintf("%.3f", 1/d.Seconds())), Chunks: chunks}
}

// TestMetrics: two instances share one Metrics_Listen address. The
// endpoint is scraped during each host run and its counters are checked
// against the records sent and the flushes the host made: with a broker
// (delivered per instance and topic, nothing retried or failed), without one
// (every record of every chunk retried), with a record Kafka refuses
// (failed, or dead-lettered), and across a hot reload (the
// counters carry on and the port is bound again).
func TestMetrics(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)
	addr := kafkatest.FreeAddr(t)
	docker, cri := containerLogs(t, "docker", 20000), containerLogs(t, "cri", 20000)
	chunksA := fixture.EncodeChunks(docker, fixture.ChunkOptions{Layout: 2})
	chunksB := fixture.EncodeChunks(cri, fixture.ChunkOptions{Layout: 1})
	const labelA, labelB = "gokafka.0", "cri-logs" // the default name, and Metrics_Instance
	flushes := func(m map[string]float64, label string) float64 {
		return m[series("gokafka_flush_duration_seconds_count", "instance", label)]
	}

	t.Run("delivered", func(t *testing.T) {
		topicA, topicB := kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t)
		kafkatest.CreateTopic(t, bootstrap, topicA, 3)
		kafkatest.CreateTopic(t, bootstrap, topicB, 3)
		deliveredA := series("gokafka_records_delivered_total", "instance", labelA, "topic", topicA)
		deliveredB := series("gokafka_records_delivered_total", "instance", labelB, "topic", topicB)
		brokerUp := func(m map[string]float64, label string) bool {
			for k, v := range m {
				if strings.HasPrefix(k, "gokafka_broker_up{") && strings.Contains(k, fmt.Sprintf("instance=%q", label)) && v == 1 {
					return true
				}
			}
			return false
		}
		m, ok, sawPartial, res := metricsRun(t, addr, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{
			{Keys: keys("Brokers", bootstrap, "Topics", topicA, "Workers", "0", "Metrics_Listen", addr, "Rate", "10"),
				Chunks: chunksA},
			{Keys: keys("Brokers", bootstrap, "Topics", topicB, "Workers", "2", "Metrics_Listen", addr, "Metrics_Instance", labelB, "Rate", "10"),
				Chunks: chunksB},
			keeper(t, bootstrap, docker, 10*time.Second),
		}}, func(m map[string]float64) bool {
			// librdkafka's statistics come every 5 s.
			return m[deliveredA] == float64(len(docker)) && m[deliveredB] == float64(len(cri)) &&
				flushes(m, labelA) == float64(len(chunksA)) && flushes(m, labelB) == float64(len(chunksB)) &&
				brokerUp(m, labelA) && brokerUp(m, labelB)
		}, func(m map[string]float64) bool { return m[deliveredA] > 0 && m[deliveredA] < float64(len(docker)) })
		if res.ExitCode != 0 {
			t.Fatalf("host exit %d:\n%s", res.ExitCode, hostrun.Tail(res.Stderr, 30))
		}
		if !ok {
			t.Fatalf("no scrape showed every record delivered and the brokers up; host: %+v\nlast scrape: %v", res.Instances, m)
		}
		if !sawPartial {
			t.Errorf("no scrape saw instance A part way through")
		}
		for _, label := range []string{labelA, labelB} {
			if !strings.Contains(res.Stderr, "[output:gokafka:"+label+"] brokers=") {
				t.Errorf("no log line of instance %s:\n%s", label, hostrun.Tail(res.Stderr, 20))
			}
		}
		for i, label := range []string{labelA, labelB} {
			s := res.Sum(i)
			if s.OK != s.Chunks {
				t.Errorf("instance %d: %+v", i, s)
			}
			if got := flushes(m, label); got != float64(s.Flushes) {
				t.Errorf("%s: %v flushes counted, the host made %d", label, got, s.Flushes)
			}
			for _, name := range []string{"gokafka_records_retried_total", "gokafka_records_failed_total", "gokafka_records_dead_lettered_total"} {
				if v, ok := m[series(name, "instance", label)]; !ok || v != 0 {
					t.Errorf("%s{instance=%q} = %v (shown: %v), want 0", name, label, v, ok)
				}
			}
			if _, ok := m[series("gokafka_producer_queue_messages", "instance", label)]; !ok {
				t.Errorf("%s: no gokafka_producer_queue_messages", label)
			}
		}
		// Workers 0 runs one flush at a time: one producer.
		if v := m[series("gokafka_producers", "instance", labelA)]; v != 1 {
			t.Errorf("%s: %v producers, want 1", labelA, v)
		}
		if v, ok := m[series("gokafka_producers_replaced_total", "instance", labelA)]; !ok || v != 0 {
			t.Errorf("%s: %v producers replaced (shown %v), want 0", labelA, v, ok)
		}
		for k, v := range m {
			if strings.HasPrefix(k, "gokafka_broker_up{") || strings.HasPrefix(k, "gokafka_broker_rtt") || strings.HasPrefix(k, "gokafka_producer_queue") {
				t.Logf("%s %v", k, v)
			}
			if strings.HasPrefix(k, "gokafka_records_delivered_total{") && k != deliveredA && k != deliveredB {
				t.Errorf("unexpected series %s = %v", k, m[k])
			}
		}
	})

	t.Run("retried", func(t *testing.T) {
		recs := docker[:3000]
		chunks := fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2, ChunkBytes: 256 << 10})
		retried := series("gokafka_records_retried_total", "instance", labelA)
		badKeys := keys("Brokers", "127.0.0.1:1", "Topics", "nowhere", "Flush_Timeout", "1s", "Max_Block", "200ms",
			"Retry_Limit", "1", "Workers", "2", "Metrics_Listen", addr)
		m, ok, _, res := metricsRun(t, addr, hostrun.Options{Plugin: so, Backoff: 100 * time.Millisecond, Grace: time.Second,
			Instances: []hostrun.Instance{
				{Keys: badKeys, Chunks: chunks},
				keeper(t, bootstrap, docker, 8*time.Second),
			}}, func(m map[string]float64) bool {
			return m[retried] == float64(2*len(recs)) && flushes(m, labelA) == float64(2*len(chunks))
		}, nil)
		s := res.Sum(0)
		if res.ExitCode != 0 || s.OK != 0 || s.Retry != 2*s.Chunks || s.Dropped != s.Chunks {
			t.Fatalf("want every chunk retried once then dropped: exit %d, %+v", res.ExitCode, s)
		}
		if !ok {
			t.Fatalf("no scrape showed %d records retried in %d flushes; host: %+v; last scrape: retried %v, flushes %v",
				2*len(recs), 2*len(chunks), s, m[retried], flushes(m, labelA))
		}
		if got := flushes(m, labelA); got != float64(s.Flushes) {
			t.Errorf("%v flushes counted, the host made %d", got, s.Flushes)
		}
		if v := m[series("gokafka_records_failed_total", "instance", labelA)]; v != 0 {
			t.Errorf("failed = %v, want 0", v)
		}
	})

	t.Run("refused", func(t *testing.T) {
		// A record over message.max.bytes among ten: failed without a
		// DLQ_Topic (A), dead-lettered with one (B); the ten delivered.
		recs := append(append([]fixture.Record{}, docker[:10]...), oversized(docker[0].Time))
		topicA, topicB, dlq := kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t)
		for _, topic := range []string{topicA, topicB, dlq} {
			kafkatest.CreateTopic(t, bootstrap, topic, 1)
		}
		want := map[string]float64{
			series("gokafka_records_delivered_total", "instance", labelA, "topic", topicA): 10,
			series("gokafka_records_delivered_total", "instance", labelB, "topic", topicB): 10,
			series("gokafka_records_failed_total", "instance", labelA):                     1,
			series("gokafka_records_dead_lettered_total", "instance", labelA):              0,
			series("gokafka_records_failed_total", "instance", labelB):                     0,
			series("gokafka_records_dead_lettered_total", "instance", labelB):              1,
		}
		m, ok, _, res := metricsRun(t, addr, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{
			{Keys: keys("Brokers", bootstrap, "Topics", topicA, "Metrics_Listen", addr, "rdkafka.message.max.bytes", "200000"),
				Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2, ChunkBytes: 1 << 20})},
			{Keys: keys("Brokers", bootstrap, "Topics", topicB, "Metrics_Listen", addr, "Metrics_Instance", labelB, "rdkafka.message.max.bytes", "200000",
				"DLQ_Topic", dlq), Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2, ChunkBytes: 1 << 20})},
			keeper(t, bootstrap, docker, 8*time.Second),
		}}, func(m map[string]float64) bool {
			for k, v := range want {
				if got, shown := m[k]; !shown || got != v {
					return false
				}
			}
			return true
		}, nil)
		if s0, s1 := res.Sum(0), res.Sum(1); res.ExitCode != 0 || s0.OK != s0.Chunks || s1.OK != s1.Chunks {
			t.Fatalf("want every chunk acknowledged: exit %d, %+v, %+v", res.ExitCode, s0, s1)
		}
		if !ok {
			t.Errorf("no scrape showed %v; last scrape: %v", want, m)
		}
	})

	t.Run("reload", func(t *testing.T) {
		topicA, topicB := kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t)
		kafkatest.CreateTopic(t, bootstrap, topicA, 3)
		kafkatest.CreateTopic(t, bootstrap, topicB, 3)
		deliveredA := series("gokafka_records_delivered_total", "instance", labelA, "topic", topicA)
		deliveredB := series("gokafka_records_delivered_total", "instance", labelB, "topic", topicB)
		m, ok, _, res := metricsRun(t, addr, hostrun.Options{Plugin: so, ReloadAfter: (len(chunksA) + len(chunksB)) / 2,
			Instances: []hostrun.Instance{
				{Keys: keys("Brokers", bootstrap, "Topics", topicA, "Metrics_Listen", addr, "Rate", "10"), Chunks: chunksA},
				{Keys: keys("Brokers", bootstrap, "Topics", topicB, "Workers", "2", "Metrics_Listen", addr, "Metrics_Instance", labelB, "Rate", "10"),
					Chunks: chunksB},
				keeper(t, bootstrap, docker, 8*time.Second),
			}}, func(m map[string]float64) bool {
			return m[deliveredA] == float64(len(docker)) && m[deliveredB] == float64(len(cri)) &&
				flushes(m, labelA) == float64(len(chunksA)) && flushes(m, labelB) == float64(len(chunksB))
		}, nil)
		if res.ExitCode != 0 {
			t.Fatalf("host exit %d (the new instances must bind the port again):\n%s", res.ExitCode, hostrun.Tail(res.Stderr, 30))
		}
		gens := 0
		for _, in := range res.Instances {
			gens = max(gens, in.Gen+1)
		}
		if gens != 2 {
			t.Fatalf("want two generations: %+v", res.Instances)
		}
		if !ok {
			t.Fatalf("no scrape after the reload showed every record delivered; host: %+v\nlast scrape: %v", res.Instances, m)
		}
		for i, label := range []string{labelA, labelB} {
			s := res.Sum(i)
			if got := flushes(m, label); s.OK != s.Chunks || got != float64(s.Flushes) {
				t.Errorf("%s: %v flushes counted; host, both generations: %+v", label, got, s)
			}
		}
		// Only the instance with Workers is warned of, once per generation.
		for label, want := range map[string]int{labelA: 0, labelB: 2} {
			if n := strings.Count(res.Stderr, "[output:gokafka:"+label+"] Hot_Reload is on"); n != want {
				t.Errorf("%s: %d warnings of Hot_Reload with Workers, want %d", label, n, want)
			}
		}
	})
}

// TestMetricsListenErrors: a Metrics_Listen address that cannot be bound,
// or an instance label taken twice on one address, fails Init with a
// configuration error naming Metrics_Listen, and the instance is stopped.
func TestMetricsListenErrors(t *testing.T) {
	so := pluginSO(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	base := []string{"Brokers", "127.0.0.1:1", "Log_Level", "debug", "Flush_Timeout", "1s", "Max_Block", "1s"}
	res := hostrun.Run(t, hostrun.Options{Plugin: so, AllowFail: true, Instances: []hostrun.Instance{
		{Keys: keys(append(base, "Metrics_Listen", busy.Addr().String())...)},
	}})
	if want := "configuration error: Metrics_Listen: listen tcp " + busy.Addr().String() + ": bind: address already in use"; res.ExitCode != 3 ||
		!strings.Contains(res.Stderr, want) || !strings.Contains(res.Stderr, "] stopped") {
		t.Errorf("busy port: exit %d, want 3 and %q and the instance stopped; stderr:\n%s", res.ExitCode, want, hostrun.Tail(res.Stderr, 10))
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res = hostrun.Run(t, hostrun.Options{Plugin: so, AllowFail: true, Instances: []hostrun.Instance{
		{Keys: keys(append(base, "Metrics_Listen", addr, "Metrics_Instance", "same")...)},
		{Keys: keys(append(base, "Metrics_Listen", addr, "Metrics_Instance", "same")...)},
	}})
	if want := `[output:gokafka:same] configuration error: Metrics_Instance: instance label already used: "same" on ` + addr; res.ExitCode != 3 ||
		!strings.Contains(res.Stderr, want) || strings.Count(res.Stderr, "] stopped") != 2 {
		t.Errorf("label taken twice: exit %d, want 3, %q and both instances stopped; stderr:\n%s", res.ExitCode, want, hostrun.Tail(res.Stderr, 10))
	}
}
