package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gokafka/gokafka/plugin"
	promscrape "github.com/gokafka/gokafka/test/scrape"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeSource struct {
	mu        sync.Mutex
	buffer    int64
	delivered map[string]int64
	stats     [][]byte
	replaced  int64
}

func (f *fakeSource) ProducersReplaced() int64 { return f.replaced }

func (f *fakeSource) BufferBytes() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.buffer }
func (f *fakeSource) BrokerStatistics() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}
func (f *fakeSource) DeliveredByTopic() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int64{}
	for t, n := range f.delivered {
		out[t] = n
	}
	return out
}

func (f *fakeSource) deliver(topic string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delivered == nil {
		f.delivered = map[string]int64{}
	}
	f.delivered[topic] += n
}

// setStats sets the statistics of each producer.
func (f *fakeSource) setStats(js ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = nil
	for _, s := range js {
		f.stats = append(f.stats, []byte(s))
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func register(t *testing.T, addr, instance string, stats *plugin.Stats, src Source) func() {
	t.Helper()
	unreg, err := Register(addr, instance, stats, src)
	if err != nil {
		t.Fatal(err)
	}
	return unreg
}

// scrape returns every sample at addr's /metrics (promscrape.Metrics).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	m, err := promscrape.Metrics(addr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func expect(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s missing", k)
		} else if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

const statsJSON = `{"name":"rdkafka#producer-1","type":"producer","msg_cnt":7,"msg_size":1234,
 "brokers":{
  "127.0.0.1:9092/1":{"name":"127.0.0.1:9092/1","nodeid":1,"source":"learned","state":"UP","txerrs":%d,
   "rtt":{"min":100,"max":900,"avg":2500,"cnt":4},"throttle":{"min":0,"max":1500,"avg":700,"cnt":2}},
  "127.0.0.1:9093/2":{"name":"127.0.0.1:9093/2","nodeid":2,"source":"learned","state":"CONNECT","txerrs":0,"rtt":{"avg":0}},
  ":0/internal":{"name":":0/internal","nodeid":-1,"source":"internal","state":"UP"}},
 "topics":{"logs":{"topic":"logs","partitions":{"0":{"partition":0,"msgq_cnt":3}}}}}`

// TestSharedListener: two instances on one address share its listener and
// its /metrics; every metric is there with the right labels and values.
func TestSharedListener(t *testing.T) {
	addr := freeAddr(t)
	var s1, s2 plugin.Stats
	f1, f2 := &fakeSource{buffer: 4096, replaced: 2}, &fakeSource{}
	defer register(t, addr, "gokafka.0", &s1, f1)()
	defer register(t, addr, "edge", &s2, f2)()

	f1.deliver("a", 10)
	f1.deliver("b", 5)
	f2.deliver("a", 3)
	s1.Retried.Add(4)
	s1.Failed.Add(1)
	s1.DeadLettered.Add(2)
	s2.Rerouted[1].Add(6)
	s2.Rerouted[3].Add(2)
	s1.Restamped.Add(9)
	s2.Skipped.Add(8)
	s1.Flushes.Observe(3 * time.Millisecond)
	s1.Flushes.Observe(2 * time.Second)
	f1.setStats(fmt.Sprintf(statsJSON, 3))

	got := scrape(t, addr)
	expect(t, got, map[string]float64{
		`gokafka_records_delivered_total{instance="gokafka.0",topic="a"}`:                      10,
		`gokafka_records_delivered_total{instance="gokafka.0",topic="b"}`:                      5,
		`gokafka_records_delivered_total{instance="edge",topic="a"}`:                           3,
		`gokafka_records_retried_total{instance="gokafka.0"}`:                                  4,
		`gokafka_records_retried_total{instance="edge"}`:                                       0,
		`gokafka_records_failed_total{instance="gokafka.0"}`:                                   1,
		`gokafka_records_dead_lettered_total{instance="gokafka.0"}`:                            2,
		`gokafka_records_rerouted_total{instance="edge",reason="no_field"}`:                    0,
		`gokafka_records_rerouted_total{instance="edge",reason="not_a_topic"}`:                 6,
		`gokafka_records_rerouted_total{instance="edge",reason="not_in_topics"}`:               0,
		`gokafka_records_rerouted_total{instance="edge",reason="past_limit"}`:                  2,
		`gokafka_records_restamped_total{instance="gokafka.0"}`:                                9,
		`gokafka_records_skipped_total{instance="edge"}`:                                       8,
		`gokafka_producers_replaced_total{instance="gokafka.0"}`:                               2,
		`gokafka_producers_replaced_total{instance="edge"}`:                                    0,
		`gokafka_buffer_bytes{instance="gokafka.0"}`:                                           4096,
		`gokafka_buffer_bytes{instance="edge"}`:                                                0,
		`gokafka_flush_duration_seconds_count{instance="gokafka.0"}`:                           2,
		`gokafka_flush_duration_seconds_bucket{instance="gokafka.0",le="0.0025"}`:              0,
		`gokafka_flush_duration_seconds_bucket{instance="gokafka.0",le="0.005"}`:               1,
		`gokafka_flush_duration_seconds_bucket{instance="gokafka.0",le="2.5"}`:                 2,
		`gokafka_flush_duration_seconds_bucket{instance="gokafka.0",le="+Inf"}`:                2,
		`gokafka_flush_duration_seconds_sum{instance="gokafka.0"}`:                             2.003,
		`gokafka_flush_duration_seconds_count{instance="edge"}`:                                0,
		`gokafka_producer_queue_messages{instance="gokafka.0"}`:                                7,
		`gokafka_producer_queue_bytes{instance="gokafka.0"}`:                                   1234,
		`gokafka_broker_up{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:                    1,
		`gokafka_broker_up{broker="127.0.0.1:9093/2",instance="gokafka.0"}`:                    0,
		`gokafka_broker_state{broker="127.0.0.1:9092/1",instance="gokafka.0",state="UP"}`:      1,
		`gokafka_broker_state{broker="127.0.0.1:9092/1",instance="gokafka.0",state="DOWN"}`:    0,
		`gokafka_broker_state{broker="127.0.0.1:9093/2",instance="gokafka.0",state="CONNECT"}`: 1,
		`gokafka_broker_state{broker="127.0.0.1:9093/2",instance="gokafka.0",state="UP"}`:      0,
		`gokafka_broker_rtt_seconds{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:           0.0025,
		`gokafka_broker_throttle_seconds{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:      1.5,
		`gokafka_broker_throttle_seconds{broker="127.0.0.1:9093/2",instance="gokafka.0"}`:      0,
		`gokafka_broker_tx_errors_total{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:       3,
	})
	for k := range got {
		if strings.Contains(k, "internal") {
			t.Errorf("librdkafka's internal broker is shown: %s", k)
		}
		if strings.Contains(k, `instance="edge"`) && strings.HasPrefix(k, "gokafka_broker") {
			t.Errorf("broker metrics for an instance without statistics: %s", k)
		}
	}

	regMu.Lock()
	ep := endpoints[addr]
	refs := ep.refs
	regMu.Unlock()
	if refs != 2 {
		t.Errorf("refs = %d, want 2", refs)
	}
	if problems, err := testutil.CollectAndLint(ep); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// TestReregistration: an instance that takes the label of one that left
// continues its counters (a hot reload), transmit errors included; the port
// is free between the two, and while the label is live it cannot be taken.
func TestReregistration(t *testing.T) {
	addr := freeAddr(t)
	var old plugin.Stats
	f := &fakeSource{}
	unreg := register(t, addr, "gokafka.0", &old, f)
	if _, err := Register(addr, "gokafka.0", new(plugin.Stats), &fakeSource{}); !errors.Is(err, ErrLabelUsed) {
		t.Errorf("a label in use taken again: %v", err)
	}
	f.deliver("a", 100)
	old.Retried.Add(10)
	old.Flushes.Observe(time.Millisecond)
	f.setStats(fmt.Sprintf(statsJSON, 5))
	scrape(t, addr)
	f.setStats(fmt.Sprintf(statsJSON, 6)) // after the last scrape, before Exit
	unreg()
	unreg() // idempotent

	// The port is released: it can be bound by anyone.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still bound after the last unregister: %v", err)
	}
	ln.Close()

	var cur plugin.Stats
	g := &fakeSource{}
	defer register(t, addr, "gokafka.0", &cur, g)()
	g.deliver("a", 1)
	g.deliver("b", 2)
	cur.Retried.Add(1)
	cur.Flushes.Observe(time.Millisecond)
	g.setStats(fmt.Sprintf(statsJSON, 1)) // a new producer counts from 0
	expect(t, scrape(t, addr), map[string]float64{
		`gokafka_records_delivered_total{instance="gokafka.0",topic="a"}`:                101,
		`gokafka_records_delivered_total{instance="gokafka.0",topic="b"}`:                2,
		`gokafka_records_retried_total{instance="gokafka.0"}`:                            11,
		`gokafka_flush_duration_seconds_count{instance="gokafka.0"}`:                     2,
		`gokafka_flush_duration_seconds_bucket{instance="gokafka.0",le="0.001"}`:         2,
		`gokafka_broker_tx_errors_total{broker="127.0.0.1:9092/1",instance="gokafka.0"}`: 7,
	})
	// A producer replaced within the instance also restarts from 0.
	g.setStats(fmt.Sprintf(statsJSON, 0))
	expect(t, scrape(t, addr), map[string]float64{
		`gokafka_broker_tx_errors_total{broker="127.0.0.1:9092/1",instance="gokafka.0"}`: 7,
	})
}

// TestProducersSummed: an instance's producers (one per flush running at
// once) show as one: queues and transmit errors summed, a broker up only
// when every producer that connected to it is; a producer without
// statistics yet (just made) keeps its transmit errors counted, and so does
// a reload to fewer producers.
func TestProducersSummed(t *testing.T) {
	addr := freeAddr(t)
	f := &fakeSource{}
	unreg := register(t, addr, "gokafka.0", new(plugin.Stats), f)
	withState := func(state string, txErrs int) string {
		return strings.Replace(fmt.Sprintf(statsJSON, txErrs), `"state":"UP","txerrs"`, `"state":"`+state+`","txerrs"`, 1)
	}
	f.setStats(fmt.Sprintf(statsJSON, 3), strings.Replace(withState("DOWN", 4), `"max":1500`, `"max":4000`, 1))
	expect(t, scrape(t, addr), map[string]float64{
		`gokafka_broker_throttle_seconds{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:   4,
		`gokafka_producers{instance="gokafka.0"}`:                                           2,
		`gokafka_producer_queue_messages{instance="gokafka.0"}`:                             14,
		`gokafka_producer_queue_bytes{instance="gokafka.0"}`:                                2468,
		`gokafka_broker_up{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:                 0,
		`gokafka_broker_state{broker="127.0.0.1:9092/1",instance="gokafka.0",state="DOWN"}`: 1,
		`gokafka_broker_state{broker="127.0.0.1:9092/1",instance="gokafka.0",state="UP"}`:   0,
		`gokafka_broker_rtt_seconds{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:        0.0025,
		`gokafka_broker_tx_errors_total{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:    7,
	})
	f.setStats(fmt.Sprintf(statsJSON, 5), "")
	expect(t, scrape(t, addr), map[string]float64{
		`gokafka_producer_queue_messages{instance="gokafka.0"}`:                          7,
		`gokafka_broker_up{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:              1,
		`gokafka_broker_tx_errors_total{broker="127.0.0.1:9092/1",instance="gokafka.0"}`: 9,
	})
	f.setStats(fmt.Sprintf(statsJSON, 5), withState("INIT", 4)) // a producer that never needed the broker
	expect(t, scrape(t, addr), map[string]float64{
		`gokafka_broker_up{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:              1,
		`gokafka_broker_tx_errors_total{broker="127.0.0.1:9092/1",instance="gokafka.0"}`: 9,
	})
	// No producer connected to it: neither up nor down.
	f.setStats(withState("INIT", 5), withState("INIT", 4))
	got := scrape(t, addr)
	expect(t, got, map[string]float64{`gokafka_broker_state{broker="127.0.0.1:9092/1",instance="gokafka.0",state="INIT"}`: 1})
	if v, ok := got[`gokafka_broker_up{broker="127.0.0.1:9092/1",instance="gokafka.0"}`]; ok {
		t.Errorf("broker_up %v of a broker in INIT", v)
	}
	f.setStats(fmt.Sprintf(statsJSON, 5), withState("DOWN", 4))
	unreg()
	g := &fakeSource{}
	defer register(t, addr, "gokafka.0", new(plugin.Stats), g)()
	g.setStats(fmt.Sprintf(statsJSON, 1))
	expect(t, scrape(t, addr), map[string]float64{
		`gokafka_producers{instance="gokafka.0"}`:                                        1,
		`gokafka_producer_queue_messages{instance="gokafka.0"}`:                          7,
		`gokafka_broker_up{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:              1,
		`gokafka_broker_tx_errors_total{broker="127.0.0.1:9092/1",instance="gokafka.0"}`: 10,
	})
}

// TestRetiredLabelNotShown: an instance that left and came not back is no
// longer shown; its totals do not leak into other labels.
func TestRetiredLabelNotShown(t *testing.T) {
	addr := freeAddr(t)
	var s1, s2 plugin.Stats
	f1 := &fakeSource{}
	unreg := register(t, addr, "a", &s1, f1)
	defer register(t, addr, "b", &s2, &fakeSource{})()
	s1.Failed.Add(3)
	unreg()
	got := scrape(t, addr)
	for k := range got {
		if strings.Contains(k, `instance="a"`) {
			t.Errorf("left instance still shown: %s", k)
		}
	}
	expect(t, got, map[string]float64{`gokafka_records_failed_total{instance="b"}`: 0})
}

// TestBadAddress: addresses that cannot be bound are errors, and leave no
// registration behind.
func TestBadAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, addr := range []string{ln.Addr().String(), "192.0.2.1:80", "localhost", "127.0.0.1:99999"} {
		if unreg, err := Register(addr, "x", new(plugin.Stats), &fakeSource{}); err == nil {
			unreg()
			t.Errorf("%s: no error", addr)
		} else {
			t.Logf("%s: %v", addr, err)
		}
		regMu.Lock()
		if endpoints[addr] != nil {
			t.Errorf("%s: registration left behind", addr)
		}
		regMu.Unlock()
	}
}

// TestConcurrent: registrations, unregistrations and scrapes at once (run
// with -race).
func TestConcurrent(t *testing.T) {
	addr := freeAddr(t)
	var keep plugin.Stats
	defer register(t, addr, "keep", &keep, &fakeSource{})()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				var s plugin.Stats
				unreg, err := Register(addr, fmt.Sprintf("i%d", i), &s, &fakeSource{stats: [][]byte{[]byte(fmt.Sprintf(statsJSON, j))}})
				if err != nil {
					t.Error(err)
					return
				}
				s.Retried.Add(1)
				unreg()
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				resp, err := http.Get("http://" + addr + "/metrics")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /metrics while instances come and go: %s", resp.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := scrape(t, addr)
	for i := 0; i < 4; i++ {
		if _, ok := got[fmt.Sprintf(`gokafka_records_retried_total{instance="i%d"}`, i)]; ok {
			t.Errorf("i%d still shown", i)
		}
	}
}

// TestRegisterAgainAtOnce: the address is free as soon as its last instance
// left, as at a hot reload, or an Init that fails after registering.
func TestRegisterAgainAtOnce(t *testing.T) {
	addr := freeAddr(t)
	for i := range 300 {
		unreg, err := Register(addr, "x", new(plugin.Stats), &fakeSource{})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		unreg()
	}
}

// TestReregistrationEveryCounter: every counter of an instance that left,
// and its flush durations' sum, continue under the instance that takes its
// label.
func TestReregistrationEveryCounter(t *testing.T) {
	addr := freeAddr(t)
	var old, cur plugin.Stats
	for _, s := range []*plugin.Stats{&old, &cur} {
		s.Retried.Add(1)
		s.Failed.Add(2)
		s.DeadLettered.Add(3)
		s.Rerouted[2].Add(4)
		s.Restamped.Add(5)
		s.Skipped.Add(6)
		s.Flushes.Observe(250 * time.Millisecond)
	}
	register(t, addr, "gokafka.0", &old, &fakeSource{replaced: 7})()
	defer register(t, addr, "gokafka.0", &cur, &fakeSource{replaced: 7})()
	expect(t, scrape(t, addr), map[string]float64{
		`gokafka_records_retried_total{instance="gokafka.0"}`:                         2,
		`gokafka_records_failed_total{instance="gokafka.0"}`:                          4,
		`gokafka_records_dead_lettered_total{instance="gokafka.0"}`:                   6,
		`gokafka_records_rerouted_total{instance="gokafka.0",reason="not_in_topics"}`: 8,
		`gokafka_records_restamped_total{instance="gokafka.0"}`:                       10,
		`gokafka_records_skipped_total{instance="gokafka.0"}`:                         12,
		`gokafka_producers_replaced_total{instance="gokafka.0"}`:                      14,
		`gokafka_flush_duration_seconds_count{instance="gokafka.0"}`:                  2,
		`gokafka_flush_duration_seconds_sum{instance="gokafka.0"}`:                    0.5,
	})
}

// TestBrokerSources: librdkafka's logical brokers, like its internal one,
// are not shown; a state this package does not know is shown as it is.
func TestBrokerSources(t *testing.T) {
	addr := freeAddr(t)
	f := &fakeSource{}
	defer register(t, addr, "gokafka.0", new(plugin.Stats), f)()
	f.setStats(`{"msg_cnt":0,"msg_size":0,"brokers":{
		"GroupCoordinator":{"name":"GroupCoordinator","nodeid":-1,"source":"logical","state":"UP"},
		"127.0.0.1:9092/1":{"name":"127.0.0.1:9092/1","nodeid":1,"source":"learned","state":"NEW_STATE","txerrs":0}}}`)
	got := scrape(t, addr)
	for k := range got {
		if strings.Contains(k, "GroupCoordinator") {
			t.Errorf("a logical broker is shown: %s", k)
		}
	}
	expect(t, got, map[string]float64{
		`gokafka_broker_state{broker="127.0.0.1:9092/1",instance="gokafka.0",state="NEW_STATE"}`: 1,
		`gokafka_broker_state{broker="127.0.0.1:9092/1",instance="gokafka.0",state="UP"}`:        0,
		`gokafka_broker_up{broker="127.0.0.1:9092/1",instance="gokafka.0"}`:                      0,
	})
}

// TestBrokerRTTOfMeasured: a broker's round-trip time is the average over
// the producers that measured one; one that has not (0) does not lower it.
func TestBrokerRTTOfMeasured(t *testing.T) {
	addr := freeAddr(t)
	f := &fakeSource{}
	defer register(t, addr, "gokafka.0", new(plugin.Stats), f)()
	unmeasured := strings.Replace(fmt.Sprintf(statsJSON, 0), `"avg":2500`, `"avg":0`, 1)
	f.setStats(fmt.Sprintf(statsJSON, 0), unmeasured)
	expect(t, scrape(t, addr), map[string]float64{`gokafka_broker_rtt_seconds{broker="127.0.0.1:9092/1",instance="gokafka.0"}`: 0.0025})
}

// TestClientLimits: connections beyond maxConns wait to be served until one
// closes, and a connection idle after its scrape is closed after
// idleTimeout, so no client holds the endpoint's memory for good.
func TestClientLimits(t *testing.T) {
	idle, conns := idleTimeout, maxConns
	idleTimeout, maxConns = 2*time.Second, 2
	defer func() { idleTimeout, maxConns = idle, conns }()
	addr := freeAddr(t)
	defer register(t, addr, "x", new(plugin.Stats), &fakeSource{})()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, r *bufio.Reader, wait time.Duration) error {
		c.SetDeadline(time.Now().Add(wait))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	a, ra := dial()
	b, rb := dial()
	for _, c := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{a, ra}, {b, rb}} {
		if err := get(c.c, c.r, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	c, rc := dial()
	if err := get(c, rc, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection beyond maxConns 2 was served at once (err %v)", err)
	}
	a.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := ra.ReadByte(); err != io.EOF {
		t.Fatalf("an idle connection was not closed after idleTimeout: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(rc, nil) // its request was sent before
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the waiting connection was not served once one closed: %v", err)
	}
	resp.Body.Close()
}
