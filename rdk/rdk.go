// Package rdk is the librdkafka adapter: a producer that takes whole batches
// through a thin C path and counts their delivery reports in C.
//
// It links the librdkafka that confluent-kafka-go bundles (importing that
// package puts the archive on the link line once); rdkafka.h is copied from
// the same module by `make` (see the Makefile's rdk/rdkafka.h target).
package rdk

/*
#include <malloc.h>
#include "producer.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/sender"

	// Links librdkafka.
	_ "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Logger receives the producer's messages; level is Fluent Bit's
// (1 error, 2 warn, 3 info, 4 debug, 5 trace).
type Logger func(level int, msg string)

// Producer is one librdkafka producer.
type Producer struct {
	rk  *C.rd_kafka_t
	ctx *C.gk_ctx
	log Logger

	// mu guards topics, partitions, unanswered, closed, nextID and
	// batches: any goroutine may produce.
	mu         sync.Mutex
	topics     map[string]*topicHandle
	partitions map[string]partitionCount
	unanswered time.Time      // when the cluster last did not answer for a partition count
	maxAge     time.Duration  // how long a known partition count is used before it is asked again
	closed     bool           // Close began: no partition count is asked, no token made
	background sync.WaitGroup // partition counts being asked, tokens being made
	nextID     uint64
	batches    map[uint64]produced // not completed

	wake        *os.File // readable when batches completed or events came (gk_start)
	wakeBuf     [64]byte
	interrupted atomic.Bool // Poll returns at once

	done     [256]*C.gk_batch // Poll's
	waitMu   sync.Mutex       // guards waitDone
	waitDone [256]*C.gk_batch // Wait's
	events   [C.GK_MAX_EVENTS]C.gk_event
	redact   redactor // the secret values of the configuration
	causes   *Causes  // errors logged, by cause (logEvents)

	tokens   TokenSource        // nil unless the producer authenticates with OAUTHBEARER tokens of its own
	stopping context.Context    // cancelled when Close begins
	stop     context.CancelFunc // cancels stopping
}

var _ sender.Producer = (*Producer)(nil)

// accumulator.Rec and gk_rec must have the same size and field order.
var (
	_ [unsafe.Sizeof(accumulator.Rec{}) - C.sizeof_gk_rec]byte
	_ [C.sizeof_gk_rec - unsafe.Sizeof(accumulator.Rec{})]byte
	_ [unsafe.Offsetof(accumulator.Rec{}.Keyed) - C.gk_rec_keyed_offset]byte
	_ [C.gk_rec_keyed_offset - unsafe.Offsetof(accumulator.Rec{}.Keyed)]byte
)

// New creates a producer from props that logs to log, each error once per
// cause among the producers sharing causes; an error names the property
// refused.
// A flush that waits makes librdkafka send its records at once, unless the
// operator set linger.ms. Records without a key go to one partition per
// batch, unless the operator set the partitioner or its stickiness. With
// tokens, librdkafka's SASL OAUTHBEARER tokens come from it.
func New(props []conf.Property, log Logger, causes *Causes, tokens TokenSource) (*Producer, error) {
	redact := newRedactor(props)
	cconf := C.rd_kafka_conf_new()
	var errstr [512]C.char
	sendAtOnce, batchPartitions := C.int(1), C.int(1)
	for _, p := range props {
		if p.FromUser && conf.PropertyName(p.Key) == "linger.ms" {
			sendAtOnce = 0
		}
		if p.FromUser && (p.Key == "partitioner" || p.Key == "sticky.partitioning.linger.ms") {
			batchPartitions = 0
		}
		k, v := C.CString(p.Key), C.CString(p.Value)
		res := C.rd_kafka_conf_set(cconf, k, v, &errstr[0], C.size_t(len(errstr)))
		C.free(unsafe.Pointer(k))
		C.free(unsafe.Pointer(v))
		if res != C.RD_KAFKA_CONF_OK {
			C.rd_kafka_conf_destroy(cconf)
			name := p.Key
			if p.FromUser {
				name = conf.RdkafkaPrefix + p.Key
			}
			return nil, fmt.Errorf("%s: %s", name, redact.apply(C.GoString(&errstr[0])))
		}
	}
	ctx := C.gk_ctx_new()
	if ctx == nil {
		C.rd_kafka_conf_destroy(cconf)
		return nil, errors.New("rdk: out of memory")
	}
	maxAge := partitionsMaxAge(cconf)
	C.gk_conf_callbacks(cconf, ctx, sendAtOnce, batchPartitions)
	if tokens != nil {
		C.gk_conf_token_refresh(cconf)
	}
	rk := C.rd_kafka_new(C.RD_KAFKA_PRODUCER, cconf, &errstr[0], C.size_t(len(errstr)))
	if rk == nil {
		C.rd_kafka_conf_destroy(cconf)
		C.gk_ctx_free(ctx)
		text := redact.apply(C.GoString(&errstr[0]))
		return nil, fmt.Errorf("%s: %s", culprits(props, text), text)
	}
	p := &Producer{
		rk:         rk,
		ctx:        ctx,
		log:        log,
		topics:     make(map[string]*topicHandle),
		partitions: make(map[string]partitionCount),
		maxAge:     maxAge,
		batches:    make(map[uint64]produced),
		redact:     redact,
		causes:     causes,
		tokens:     tokens,
	}
	p.stopping, p.stop = context.WithCancel(context.Background())
	fd := C.gk_start(ctx, rk)
	if fd < 0 {
		p.Close()
		return nil, fmt.Errorf("rdkafka: cannot start the delivery report thread")
	}
	p.wake = os.NewFile(uintptr(fd), "rdkafka-events")
	return p, nil
}

// topicHandle is a topic's librdkafka handle and the turn of its next batch
// without a partition: the partitioner sends such a batch's records without
// a key to one partition, the turn-th available one (the turn modulo the
// partition count when none is available).
type topicHandle struct {
	rkt  *C.rd_kafka_topic_t
	turn uint32
}

// produced is a batch handed to librdkafka and its C state, which Poll or
// Wait frees when the batch completes, or else Close.
type produced struct {
	b  *accumulator.Batch
	cb *C.gk_batch
}

// Produce hands every record of b to librdkafka in one C call.
func (p *Producer) Produce(b *accumulator.Batch) {
	cb := C.gk_batch_new(C.int32_t(len(b.Recs)))
	if cb == nil {
		panic("rdk: out of memory for a batch")
	}
	p.mu.Lock()
	t := p.topic(b.Topic)
	if b.Partition < 0 {
		cb.turn = C.uint32_t(t.turn)
		t.turn++
	}
	p.nextID++
	cb.id = C.uint64_t(p.nextID)
	p.batches[p.nextID] = produced{b, cb}
	p.mu.Unlock()
	C.gk_produce(p.rk, p.ctx, t.rkt, C.int32_t(b.Partition),
		(*C.char)(unsafe.Pointer(unsafe.SliceData(b.Buf))),
		(*C.gk_rec)(unsafe.Pointer(unsafe.SliceData(b.Recs))), cb)
}

// topic returns the topic's handle, made on first use with its turns
// starting at random (each producer's first batches go to different
// partitions); p.mu is held.
func (p *Producer) topic(name string) *topicHandle {
	t := p.topics[name]
	if t == nil {
		cname := C.CString(name)
		t = &topicHandle{rkt: C.rd_kafka_topic_new(p.rk, cname, nil), turn: rand.Uint32()}
		C.free(unsafe.Pointer(cname))
		p.topics[name] = t
	}
	return t
}

// partitionsMaxAge is how long a known partition count is used before it
// is asked again (in the background): librdkafka's own refresh interval,
// topic.metadata.refresh.interval.ms, at least a second, or 5 minutes (the
// Java client's metadata.max.age.ms) when that is off (-1 or 0). Keys then
// map to partitions added meanwhile, in batch mode as in record mode.
func partitionsMaxAge(cconf *C.rd_kafka_conf_t) time.Duration {
	name := C.CString("topic.metadata.refresh.interval.ms")
	defer C.free(unsafe.Pointer(name))
	var buf [32]C.char
	size := C.size_t(len(buf))
	if C.rd_kafka_conf_get(cconf, name, &buf[0], &size) == C.RD_KAFKA_CONF_OK {
		if ms, err := strconv.Atoi(C.GoString(&buf[0])); err == nil && ms > 0 {
			return max(time.Duration(ms)*time.Millisecond, time.Second)
		}
	}
	return 5 * time.Minute
}

// unknownFor is how long a partition count the cluster could not tell
// stays unknown without asking again; for as long after the cluster did not
// answer, no topic is asked.
const unknownFor = 10 * time.Second

// Partitions returns how many partitions topic has, asking the cluster the
// first time for up to a second and never past deadline; -1 when it cannot
// tell, and then for unknownFor without asking again, unless retry (records
// held back for want of the count are being retried) and the cluster did
// answer. A count older than p.maxAge is used while it is asked again.
func (p *Producer) Partitions(topic string, deadline time.Time, retry bool) int {
	wait := min(time.Until(deadline), time.Second)
	p.mu.Lock()
	known, ok := p.partitions[topic]
	if !ok {
		known.n = -1
	}
	refresh := known.n > 0 && !known.asking && time.Since(known.asked) > p.maxAge
	ask := known.n <= 0 && wait > 0 && (retry || !ok || time.Since(known.asked) >= unknownFor) && time.Since(p.unanswered) >= unknownFor
	if p.closed || !refresh && !ask {
		p.mu.Unlock()
		return known.n
	}
	rkt := p.topic(topic).rkt
	p.background.Add(1) // Close waits for it
	if refresh {
		known.asking = true
		p.partitions[topic] = known
		wait = time.Second
	}
	p.mu.Unlock()
	if refresh {
		go func() {
			defer p.background.Done()
			p.askPartitions(topic, rkt, wait, false)
		}()
		return known.n
	}
	defer p.background.Done()
	return p.askPartitions(topic, rkt, wait, !ok)
}

// askPartitions asks the cluster for topic's partition count, waiting up to
// wait, and keeps it; when the cluster cannot tell, the count known (or -1:
// none, or forgotten meanwhile) stays. At the first question, a topic the cluster answers it does
// not know may be one it is creating for that question
// (auto.create.topics.enable): it is asked again every topicRetry meanwhile.
func (p *Producer) askPartitions(topic string, rkt *C.rd_kafka_topic_t, wait time.Duration, first bool) int {
	end := time.Now().Add(wait)
	n := p.countPartitions(rkt, wait)
	for first && n == -1 && time.Until(end) > topicRetry {
		time.Sleep(topicRetry)
		n = p.countPartitions(rkt, time.Until(end))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n == -2 {
		p.unanswered = time.Now()
	}
	if n <= 0 {
		n = -1
		if known, ok := p.partitions[topic]; ok {
			n = known.n
		}
	}
	p.partitions[topic] = partitionCount{n: n, asked: time.Now()}
	return n
}

const topicRetry = 100 * time.Millisecond

// countPartitions asks the cluster for rkt's partition count, waiting up to
// wait: -1 if the cluster answered without one, -2 if it did not answer.
func (p *Producer) countPartitions(rkt *C.rd_kafka_topic_t, wait time.Duration) int {
	return int(C.gk_partition_count(p.rk, rkt, C.int(max(wait.Milliseconds(), 1))))
}

// partitionCount is a topic's partition count, or -1, as asked at a time.
type partitionCount struct {
	n      int
	asked  time.Time
	asking bool // asked again, in the background
}

// Poll waits up to timeout, in Go's poller, for batches to complete or for
// librdkafka's errors and logs, logs those and appends the batches completed.
func (p *Producer) Poll(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	p.wake.SetReadDeadline(time.Now().Add(timeout))
	if !p.interrupted.Load() { // else Interrupt's deadline may have come before this one
		p.wake.Read(p.wakeBuf[:]) // a completion or event, or the deadline
	}
	p.logEvents()
	if C.gk_token_wanted(p.ctx) != 0 {
		p.refreshToken()
	}
	n := int(C.gk_take(p.ctx, &p.done[0], C.int(len(p.done))))
	return p.completions(p.done[:n], dst)
}

// Wait waits up to timeout on the caller's thread, in C, for batches to
// complete and appends them to dst. While a caller waits here, completions
// wake it alone rather than the poll loop.
func (p *Producer) Wait(timeout time.Duration, dst []sender.Completion) []sender.Completion {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	n := int(C.gk_wait(p.ctx, C.int(max(timeout.Milliseconds(), 1)), &p.waitDone[0], C.int(len(p.waitDone))))
	return p.completions(p.waitDone[:n], dst)
}

// Wake ends the Wait in progress, or else the next one, at once.
func (p *Producer) Wake() { C.gk_wake(p.ctx) }

// Interrupt ends the Poll in progress, and every later one, at once.
func (p *Producer) Interrupt() {
	p.interrupted.Store(true)
	p.wake.SetReadDeadline(time.Unix(1, 0))
}

// unknownPartition is librdkafka's failure of a record for a partition its
// topic does not have.
const unknownPartition = int(C.RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)

// completions frees the completed C batches and appends their outcomes.
func (p *Producer) completions(done []*C.gk_batch, dst []sender.Completion) []sender.Completion {
	for _, cb := range done {
		p.mu.Lock()
		b := p.batches[uint64(cb.id)].b
		delete(p.batches, uint64(cb.id))
		p.mu.Unlock()
		var failures []accumulator.Failure
		if cb.nfail > 0 {
			idx := unsafe.Slice(cb.fail_idx, cb.nfail)
			errs := unsafe.Slice(cb.fail_err, cb.nfail)
			failures = make([]accumulator.Failure, cb.nfail)
			for i := range failures {
				failures[i] = accumulator.Failure{
					Index:     int(idx[i]),
					Err:       int(errs[i]),
					Reason:    reason(int(errs[i]), b.Recs[idx[i]].Keyed),
					Permanent: permanent(int(errs[i])),
					Refusal:   refusal(int(errs[i])),
				}
			}
		}
		if b.Partition >= 0 && slices.ContainsFunc(failures, func(f accumulator.Failure) bool { return f.Err == unknownPartition }) {
			// The topic has fewer partitions than the count its keyed
			// records were placed by (it was deleted and made again): the
			// next flush asks for the count, and their retry uses it.
			p.mu.Lock()
			delete(p.partitions, b.Topic)
			p.mu.Unlock()
		}
		if cb.unrecorded != 0 {
			failures = failUnrecorded(failures, len(b.Recs), int(cb.unrecorded))
		}
		C.gk_batch_free(cb)
		dst = append(dst, sender.Completion{Batch: b, Failures: failures})
	}
	return dst
}

// failUnrecorded adds to the failures recorded of a batch of n records a
// retriable one for every other record: C could not record a failure (out
// of memory), so which record it was is unknown, and none may pass for
// acknowledged. err is the failure's error code.
func failUnrecorded(failures []accumulator.Failure, n, err int) []accumulator.Failure {
	recorded := make([]bool, n)
	for _, f := range failures {
		recorded[f.Index] = true
	}
	reason := "delivery report not recorded (out of memory): " + errorText(err)
	for i, r := range recorded {
		if !r {
			failures = append(failures, accumulator.Failure{Index: i, Err: err, Reason: reason})
		}
	}
	return failures
}

// reason is what the log and the dead-letter header say of a record, with
// a key or without, that failed with code.
func reason(code int, keyed bool) string {
	text := errorText(code)
	switch C.rd_kafka_resp_err_t(code) {
	case C.RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		// The broker refuses a whole request over the topic's limit, its
		// small records too: librdkafka does not split it.
		text += " (the record over rdkafka.message.max.bytes, or its request over the topic's max.message.bytes)"
	case C.RD_KAFKA_RESP_ERR_INVALID_RECORD:
		// Kafka says why in its response, which librdkafka does not pass on.
		if !keyed {
			text += " (a topic with cleanup.policy compact refuses messages without a key; batch mode's have none)"
		}
	}
	return text
}

// culprits names the operator's properties that librdkafka's error at
// rd_kafka_new names, as rdkafka.<key>: by key or its alias (`acks` must be
// set to `all` when ...), else by value (Unsupported SASL mechanism: FOO);
// "rdkafka" when it names none of them.
func culprits(props []conf.Property, text string) string {
	var byKey, byValue []string
	for _, p := range props {
		switch alias := conf.PropertyAlias(p.Key); {
		case !p.FromUser:
		case mentions(text, p.Key) || alias != "" && mentions(text, alias):
			byKey = append(byKey, conf.RdkafkaPrefix+p.Key)
		case !SecretProperty(p.Key) && len(p.Value) >= 3 && mentions(text, p.Value):
			byValue = append(byValue, conf.RdkafkaPrefix+p.Key)
		}
	}
	switch {
	case len(byKey) > 0:
		return strings.Join(byKey, ", ")
	case len(byValue) > 0:
		return strings.Join(byValue, ", ")
	}
	return "rdkafka"
}

// mentions reports whether text holds word where neither a letter, a
// digit, '.' nor '_' adjoins it: linger.ms is not in
// sticky.partitioning.linger.ms.
func mentions(text, word string) bool {
	part := func(c byte) bool {
		return c == '.' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(text[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		if (start == 0 || !part(text[start-1])) && (end == len(text) || !part(text[end])) {
			return true
		}
		i = start + 1
	}
}

func errorText(code int) string {
	return C.GoString(C.rd_kafka_err2str(C.rd_kafka_resp_err_t(code)))
}

// permanent reports errors that no retry of the same record can cure.
func permanent(code int) bool {
	switch C.rd_kafka_resp_err_t(code) {
	case C.RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
		C.RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
		C.RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
		C.RD_KAFKA_RESP_ERR_INVALID_RECORD,
		C.RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,
		C.RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
		// The topic's message format predates what the record needs
		// (headers: v2, Kafka 0.11).
		C.RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT,
		C.RD_KAFKA_RESP_ERR__BAD_MSG,
		C.RD_KAFKA_RESP_ERR__INVALID_ARG:
		return true
	}
	return false
}

// refusal says why Kafka refused a record with code, where sending it
// again at once may help. Kafka refuses a request's records whole for a
// timestamp out of the topic's range. Seen with Kafka 4.3 and librdkafka
// 2.15: with one record at fault, INVALID_TIMESTAMP on every record; with
// several, Kafka names them (KIP-467), INVALID_RECORD on those, without the
// cause, and _INVALID_DIFFERENT_RECORD on the others.
func refusal(code int) accumulator.Refusal {
	switch C.rd_kafka_resp_err_t(code) {
	case C.RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
		return accumulator.RefusedTimestamp
	case C.RD_KAFKA_RESP_ERR_INVALID_RECORD:
		return accumulator.RefusedInvalid
	case C.RD_KAFKA_RESP_ERR__INVALID_DIFFERENT_RECORD:
		return accumulator.RefusedBeside
	}
	return accumulator.OtherRefusal
}

// logEvents passes librdkafka's errors and logs to the plugin's logger,
// with the configuration's secrets cut out. An error or warning is logged
// once per cause and causeInterval; its repeats (every reconnect, every
// broker) are logged at debug level. A broker failure or a fatal error
// comes both as a log line and as an error event with the same text: the
// log line is logged at debug level.
func (p *Producer) logEvents() {
	var dropped C.int
	n := int(C.gk_events(p.ctx, &p.events[0], C.int(len(p.events)), &dropped))
	now := time.Now()
	for _, e := range p.events[:n] {
		text := p.redact.apply(C.GoString(&e.text[0]))
		level := syslogToFluentBit(int(e.level))
		switch {
		case e.err == 0 && e.level <= 3 && (strings.HasPrefix(text, "FAIL: ") || strings.HasPrefix(text, "FATAL: ")):
			p.log(max(level, 4), "librdkafka: "+text)
		case e.err != 0 || e.level <= 4:
			p.logCause(int(e.err), level, text, now)
		default:
			p.log(level, "librdkafka: "+text)
		}
	}
	if dropped > 0 {
		p.log(2, fmt.Sprintf("librdkafka: %d more messages not shown", dropped))
	}
}

// logCause logs text, an error (code err) or warning of librdkafka's, at
// level once per cause and causeInterval, and at debug level otherwise.
func (p *Producer) logCause(err, level int, text string, now time.Time) {
	level, suffix := p.causes.level(causeKey(err, text), level, now)
	p.log(level, "librdkafka: "+text+suffix)
}

func syslogToFluentBit(level int) int {
	switch {
	case level <= 3:
		return 1
	case level == 4:
		return 2
	case level <= 6:
		return 3
	}
	return 4
}

// Close purges what librdkafka still holds and destroys the producer. It
// returns the batches whose every record was reported on, with their
// outcome (reports counted in C that no Poll or Wait took yet: Kafka may
// have acknowledged them), and apart from those the batches librdkafka
// never completed, of which nothing is known.
func (p *Producer) Close() ([]sender.Completion, []*accumulator.Batch) {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stop()
	p.background.Wait()
	C.gk_stop(p.ctx)
	if p.wake != nil {
		p.wake.Close()
	}
	C.rd_kafka_purge(p.rk, C.RD_KAFKA_PURGE_F_QUEUE|C.RD_KAFKA_PURGE_F_INFLIGHT)
	// Serve, on this thread, the reports that came since the poll thread
	// stopped and those of the records just purged (failed for a retry), so
	// that as many batches as possible complete with what Kafka said.
	C.rd_kafka_poll(p.rk, 0)
	for _, t := range p.topics {
		C.rd_kafka_topic_destroy(t.rkt)
	}
	C.rd_kafka_destroy(p.rk)
	p.logEvents()
	// librdkafka is gone: no report comes any more. The batches whose last
	// report came wait in C; every other one was reported on in part or
	// not at all.
	var done []sender.Completion
	for {
		n := int(C.gk_take(p.ctx, &p.done[0], C.int(len(p.done))))
		if n == 0 {
			break
		}
		done = p.completions(p.done[:n], done)
	}
	var left []*accumulator.Batch
	for id, pb := range p.batches {
		C.gk_batch_free(pb.cb)
		left = append(left, pb.b)
		delete(p.batches, id)
	}
	C.gk_ctx_free(p.ctx)
	return done, left
}

// Properties lists every librdkafka configuration property name.
func Properties() []string {
	text := C.gk_properties()
	if text == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(text))
	var names []string
	for _, line := range strings.Split(C.GoString(text), "\n") {
		name, _, ok := strings.Cut(line, "|")
		name = strings.TrimSpace(name)
		if !ok || name == "" || name == "Property" || strings.Trim(name, "-") == "" {
			continue
		}
		names = append(names, name)
	}
	return names
}

// Allocator hands out batch buffers in C memory, which librdkafka may keep
// referencing after the producing call returns.
type Allocator struct{}

func (Allocator) Alloc(n int) []byte {
	ptr := C.malloc(C.size_t(n))
	if ptr == nil {
		panic("rdk: out of memory")
	}
	return unsafe.Slice((*byte)(ptr), n)[:0]
}

func (Allocator) Free(b []byte) { C.free(unsafe.Pointer(unsafe.SliceData(b))) }

// Trim has glibc give its free pages back to the system: freed buffers of
// a megabyte or so lie among other chunks, where free alone keeps them.
func (Allocator) Trim() { C.malloc_trim(0) }
