// Package metrics serves the instances' statistics as Prometheus text at
// http://Metrics_Listen/metrics. Instances that name the same address share
// one listener; it is closed when the last of them unregisters, so that a
// hot reload (old instances exit, then new ones start) binds the port again.
// Everything is read at scrape time: no goroutine runs besides the server's.
package metrics

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gokafka/gokafka/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// Source is what an instance shows besides its Stats; *plugin.Instance is one.
type Source interface {
	BufferBytes() int64
	DeliveredByTopic() map[string]int64
	BrokerStatistics() [][]byte // librdkafka's statistics JSON of each producer, nil for none yet
	ProducersReplaced() int64   // producers replaced after a fatal error
}

// The metrics, labelled by instance (and topic or broker).
var (
	descDelivered    = desc("records_delivered_total", "Records Kafka acknowledged.", "topic")
	descRetried      = desc("records_retried_total", "Records in chunks handed back to Fluent Bit for a retry.")
	descFailed       = desc("records_failed_total", "Records dropped: Kafka can never take them, they cannot be encoded, their timestamp cannot be read, or they are larger than Buffer_Memory (in batch mode, than a message may be).")
	descDeadLettered = desc("records_dead_lettered_total", "Records Kafka refused for good, sent to DLQ_Topic.")
	descRerouted     = desc("records_rerouted_total", "Records sent to the default topic because Topic_Key gave no allowed topic, by reason: no_field, not_a_topic (a value that cannot name one, or DLQ_Topic), not_in_topics (with Dynamic_Topic off), past_limit (Dynamic_Topic_Limit).", "reason")
	descRestamped    = desc("records_restamped_total", "Records sent again with the produce time as their timestamp, Kafka having refused them for their timestamp or as invalid.")
	descSkipped      = desc("records_skipped_total", "Records skipped for lack of their value field: Raw_Log_Key in raw format, the short message in gelf.")
	descBuffer       = desc("buffer_bytes", "Memory of the batch buffers now (counted against Buffer_Memory).")
	descFlush        = desc("flush_duration_seconds", "Duration of flushes, from the chunk handed over to the return code.")
	descProducers    = desc("producers", "librdkafka producers made: the first, and another (up to Producers) when a flush starts while every one is in use.")
	descReplaced     = desc("producers_replaced_total", "librdkafka producers replaced after a fatal error (a fenced idempotent producer, for example); the records they had in flight were retried.")
	descQueueMsgs    = desc("producer_queue_messages", "Messages in librdkafka's queues (msg_cnt).")
	descQueueBytes   = desc("producer_queue_bytes", "Bytes of the messages in librdkafka's queues (msg_size).")
	descBrokerUp     = desc("broker_up", "1 when librdkafka's connection to the broker is UP, else 0.", "broker")
	descBrokerState  = desc("broker_state", "librdkafka's state of its connection to the broker: 1 for the current state, 0 for the others.", "broker", "state")
	descBrokerRTT    = desc("broker_rtt_seconds", "Average round-trip time to the broker over librdkafka's last statistics interval.", "broker")
	descThrottle     = desc("broker_throttle_seconds", "Longest time the broker held the producer's requests back for a client quota over librdkafka's last statistics interval (0: not throttled).", "broker")
	descBrokerTxErrs = desc("broker_tx_errors_total", "Transmission errors to the broker (librdkafka txerrs).", "broker")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("gokafka_"+name, help, append([]string{"instance"}, labels...), nil)
}

// brokerStates are librdkafka's broker states (rd_kafka_broker_state_names).
var brokerStates = []string{"INIT", "DOWN", "TRY_CONNECT", "CONNECT", "SSL_HANDSHAKE", "AUTH_LEGACY",
	"UP", "UPDATE", "APIVERSION_QUERY", "AUTH_HANDSHAKE", "AUTH_REQ", "REAUTH"}

var (
	regMu     sync.Mutex // guards endpoints and each endpoint's refs, ln, srv
	endpoints = map[string]*endpoint{}
)

// endpoint is the registry of one address. It outlives its listener: the
// totals of instances that left stay here, for those that take their label.
type endpoint struct {
	addr string
	reg  *prometheus.Registry
	refs int
	srv  *http.Server
	ln   net.Listener

	mu      sync.Mutex // guards the maps below; held while reading sources
	live    map[string]*entry
	retired map[string]*totals // by instance label
	txErrs  map[txKey]*monotonic
}

// txKey names a producer's transmit errors to a broker.
type txKey struct {
	instance, broker string
	producer         int
}

type entry struct {
	stats *plugin.Stats
	src   Source
}

// totals are an instance's counters at one moment.
type totals struct {
	delivered                                         map[string]int64 // by topic
	retried, failed, deadLettered, restamped, skipped int64
	rerouted                                          [len(plugin.RerouteReasons)]int64
	replaced                                          int64    // producers
	buckets                                           []uint64 // cumulative, per plugin.FlushBuckets
	flushes                                           uint64
	flushSeconds                                      float64
}

func read(e *entry) *totals {
	t := &totals{
		delivered:    e.src.DeliveredByTopic(),
		retried:      e.stats.Retried.Load(),
		failed:       e.stats.Failed.Load(),
		deadLettered: e.stats.DeadLettered.Load(),
		restamped:    e.stats.Restamped.Load(),
		skipped:      e.stats.Skipped.Load(),
		replaced:     e.src.ProducersReplaced(),
	}
	for i := range t.rerouted {
		t.rerouted[i] = e.stats.Rerouted[i].Load()
	}
	t.buckets, t.flushes, t.flushSeconds = e.stats.Flushes.Snapshot()
	return t
}

// add adds o (nil for none) to t.
func (t *totals) add(o *totals) {
	if o == nil {
		return
	}
	if t.delivered == nil {
		t.delivered = map[string]int64{}
	}
	for topic, n := range o.delivered {
		t.delivered[topic] += n
	}
	t.retried += o.retried
	t.failed += o.failed
	t.deadLettered += o.deadLettered
	for i, n := range o.rerouted {
		t.rerouted[i] += n
	}
	t.restamped += o.restamped
	t.skipped += o.skipped
	t.replaced += o.replaced
	if len(t.buckets) < len(o.buckets) {
		t.buckets = append(t.buckets, make([]uint64, len(o.buckets)-len(t.buckets))...)
	}
	for i, n := range o.buckets {
		t.buckets[i] += n
	}
	t.flushes += o.flushes
	t.flushSeconds += o.flushSeconds
}

// monotonic turns a counter that restarts from zero (a new librdkafka
// producer) into one that keeps growing.
type monotonic struct{ base, last int64 }

func (m *monotonic) observe(v int64) int64 {
	if v < m.last {
		m.base += m.last
	}
	m.last = v
	return m.base + v
}

// retire keeps the last value: the next one counts from zero.
func (m *monotonic) retire() { m.base, m.last = m.base+m.last, 0 }

// ErrLabelUsed is Register's error for an instance label that a running
// instance has on the same address.
var ErrLabelUsed = errors.New("instance label already used")

// Register shows stats and src under the label instance at
// http://addr/metrics, starting the listener for addr unless another
// instance already did. An instance that takes the label of one that
// unregistered continues its counters. unregister reads the final counters,
// and the broker statistics the source had when it stopped, so it is called
// once the instance stopped (after its Exit, whose acknowledgements count);
// it waits for a scrape that is reading the source.
func Register(addr, instance string, stats *plugin.Stats, src Source) (unregister func(), err error) {
	if stats == nil || src == nil {
		return nil, errors.New("metrics: nil stats or source")
	}
	regMu.Lock()
	defer regMu.Unlock()
	ep := endpoints[addr]
	if ep == nil {
		ep = &endpoint{addr: addr, reg: prometheus.NewRegistry(), live: map[string]*entry{},
			retired: map[string]*totals{}, txErrs: map[txKey]*monotonic{}}
		ep.reg.MustRegister(ep)
		endpoints[addr] = ep
	}
	ep.mu.Lock()
	_, taken := ep.live[instance]
	ep.mu.Unlock()
	if taken {
		return nil, fmt.Errorf("%w: %q on %s", ErrLabelUsed, instance, addr)
	}
	if ep.refs == 0 {
		if err := ep.listen(); err != nil {
			if len(ep.retired) == 0 {
				delete(endpoints, addr) // nothing to keep for a bad address
			}
			return nil, err
		}
	}
	ep.refs++
	e := &entry{stats: stats, src: src}
	ep.mu.Lock()
	ep.live[instance] = e
	ep.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { ep.unregister(instance, e) }) }, nil
}

// What a client of an endpoint can hold, inside Fluent Bit's process:
// connections (more wait to be accepted), a connection idle between
// requests, and scrapes at once (more are answered 503).
var (
	maxConns         = 64
	idleTimeout      = time.Minute
	maxScrapesAtOnce = 4
)

func (ep *endpoint) listen() error {
	ln, err := net.Listen("tcp", ep.addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(ep.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: maxScrapesAtOnce, Timeout: 20 * time.Second}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: idleTimeout, MaxHeaderBytes: 16 << 10}
	go func() { _ = srv.Serve(netutil.LimitListener(ln, maxConns)) }() // ErrServerClosed after Close
	ep.srv, ep.ln = srv, ln
	return nil
}

func (ep *endpoint) unregister(instance string, e *entry) {
	regMu.Lock()
	defer regMu.Unlock()
	ep.mu.Lock()
	final := read(e)
	if r := ep.retired[instance]; r != nil {
		r.add(final)
	} else {
		ep.retired[instance] = final
	}
	ep.observeBrokers(instance, e.src.BrokerStatistics(), nil)
	// The next instance of this label counts on from these; its producers
	// count from zero.
	for k, m := range ep.txErrs {
		if k.instance == instance {
			m.retire()
		}
	}
	delete(ep.live, instance)
	ep.mu.Unlock()
	if ep.refs--; ep.refs == 0 {
		ep.srv.Close() // open connections, and the listener once Serve has it
		ep.ln.Close()  // before Serve has it: else the address stays bound until it runs
		ep.srv, ep.ln = nil, nil
	}
}

// Describe sends every metric's description.
func (ep *endpoint) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descRetried, descFailed, descDeadLettered, descRerouted,
		descRestamped, descSkipped, descBuffer, descFlush, descProducers, descReplaced, descQueueMsgs, descQueueBytes, descBrokerUp, descBrokerState,
		descBrokerRTT, descThrottle, descBrokerTxErrs} {
		ch <- d
	}
}

// Collect reads every live instance, adding the totals of those that had
// its label before.
func (ep *endpoint) Collect(ch chan<- prometheus.Metric) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for label, e := range ep.live {
		t := read(e)
		t.add(ep.retired[label])
		counter := func(d *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{label}, labels...)...)
		}
		for topic, n := range t.delivered {
			counter(descDelivered, n, topic)
		}
		counter(descRetried, t.retried)
		counter(descFailed, t.failed)
		counter(descDeadLettered, t.deadLettered)
		for i, n := range t.rerouted {
			counter(descRerouted, n, plugin.RerouteReasons[i])
		}
		counter(descRestamped, t.restamped)
		counter(descSkipped, t.skipped)
		counter(descReplaced, t.replaced)
		ch <- prometheus.MustNewConstMetric(descBuffer, prometheus.GaugeValue, float64(e.src.BufferBytes()), label)
		buckets := make(map[float64]uint64, len(plugin.FlushBuckets))
		for i, le := range plugin.FlushBuckets {
			if i < len(t.buckets) {
				buckets[le] = t.buckets[i]
			}
		}
		ch <- prometheus.MustNewConstHistogram(descFlush, t.flushes, t.flushSeconds, buckets, label)
		stats := e.src.BrokerStatistics()
		ch <- prometheus.MustNewConstMetric(descProducers, prometheus.GaugeValue, float64(len(stats)), label)
		ep.observeBrokers(label, stats, ch)
	}
}

// rdStats is the part of librdkafka's statistics shown (STATISTICS.md).
type rdStats struct {
	MsgCnt  int64 `json:"msg_cnt"`
	MsgSize int64 `json:"msg_size"`
	Brokers map[string]struct {
		Name   string `json:"name"`
		Source string `json:"source"` // learned, configured, internal, logical
		State  string `json:"state"`
		TxErrs int64  `json:"txerrs"`
		RTT    struct {
			Avg int64 `json:"avg"` // microseconds
		} `json:"rtt"`
		Throttle struct {
			Max int64 `json:"max"` // milliseconds
		} `json:"throttle"`
	} `json:"brokers"`
}

// observeBrokers sends the metrics of librdkafka's statistics of an
// instance's producers to ch (nil to only keep track of the transmit
// errors): queues summed; per broker, the transmit errors of every producer
// the label has had, up when every producer that connected to it (not in
// INIT: librdkafka connects only where it sends) is, not said when none
// did, their average round-trip time and their longest throttle.
func (ep *endpoint) observeBrokers(label string, stats [][]byte, ch chan<- prometheus.Metric) {
	type broker struct {
		state        string // UP, or the first other state a producer is in
		rttSum, rtts int64
		throttleMs   int64
	}
	var queueMsgs, queueBytes int64
	brokers := map[string]*broker{}
	seen := false
	for i, js := range stats {
		var s rdStats
		if len(js) == 0 || json.Unmarshal(js, &s) != nil {
			continue
		}
		seen = true
		queueMsgs += s.MsgCnt
		queueBytes += s.MsgSize
		for key, b := range s.Brokers {
			if b.Source == "internal" || b.Source == "logical" {
				continue
			}
			name := cmp.Or(b.Name, key)
			v := brokers[name]
			if v == nil {
				v = &broker{state: b.State}
				brokers[name] = v
			} else if v.state == "INIT" || v.state == "UP" && b.State != "INIT" {
				v.state = b.State
			}
			ep.txErr(txKey{label, name, i}).observe(b.TxErrs)
			if b.RTT.Avg > 0 {
				v.rttSum += b.RTT.Avg
				v.rtts++
			}
			v.throttleMs = max(v.throttleMs, b.Throttle.Max)
		}
	}
	if ch == nil || !seen {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{label}, labels...)...)
	}
	gauge(descQueueMsgs, float64(queueMsgs))
	gauge(descQueueBytes, float64(queueBytes))
	for name, b := range brokers {
		// A broker no producer needed is neither up nor down: the bootstrap
		// servers, added again after an outage, stay in INIT.
		if b.state != "INIT" {
			up := 0.0
			if b.state == "UP" {
				up = 1
			}
			gauge(descBrokerUp, up, name)
		}
		known := false
		for _, st := range brokerStates {
			v := 0.0
			if st == b.state {
				v, known = 1, true
			}
			gauge(descBrokerState, v, name, st)
		}
		if !known && b.state != "" {
			gauge(descBrokerState, 1, name, b.state)
		}
		gauge(descBrokerRTT, float64(b.rttSum)/float64(max(b.rtts, 1))/1e6, name)
		gauge(descThrottle, float64(b.throttleMs)/1e3, name)
		ch <- prometheus.MustNewConstMetric(descBrokerTxErrs, prometheus.CounterValue, float64(ep.txErrsTotal(label, name)), label, name)
	}
}

// txErrsTotal sums the transmit errors to broker of every producer label
// has had: one without statistics for now (just made) still counts.
func (ep *endpoint) txErrsTotal(label, broker string) int64 {
	n := int64(0)
	for k, m := range ep.txErrs {
		if k.instance == label && k.broker == broker {
			n += m.base + m.last
		}
	}
	return n
}

// txErr returns the transmit errors counter of k, made on first use.
func (ep *endpoint) txErr(k txKey) *monotonic {
	m := ep.txErrs[k]
	if m == nil {
		m = new(monotonic)
		ep.txErrs[k] = m
	}
	return m
}
