// Package plugin is one gokafka output instance: it decodes a chunk, shapes
// each record into a Kafka message (topic, key, headers, value), appends
// them to the accumulator and waits until Kafka has acknowledged them, or
// until Flush_Timeout.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/encode"
	"github.com/gokafka/gokafka/ra"
	"github.com/gokafka/gokafka/registry"
	"github.com/gokafka/gokafka/sender"
	"github.com/tinylib/msgp/msgp"
)

// Fluent Bit's flush return codes.
const (
	Error = 0 // chunk dropped
	OK    = 1
	Retry = 2 // same bytes flushed again later
)

// Log levels of Fluent Bit's logger.
const (
	LevelError = 1
	LevelWarn  = 2
	LevelInfo  = 3
	LevelDebug = 4
)

// Logger writes one message at a level, prefixed with the instance's name.
type Logger func(level int, msg string)

// Instance is one [OUTPUT] section's state.
type Instance struct {
	Stats *Stats

	cfg           *conf.Config
	log           Logger
	enc           atomic.Pointer[encode.Encoder] // nil until Format avro's schema comes from the registry
	schema        *schemaLoader                  // nil unless the schema comes from the registry
	acc           *accumulator.Accumulator
	snd           *sender.Sender
	defaultTopic  []byte
	allowed       map[string]bool // Topics
	dynamic       *dynamicTopics  // the other topics records named, with Dynamic_Topic on
	staticHeaders []byte          // Header pairs, encoded once
	batchMode     bool            // Message_Mode batch
	newline       bool            // batch mode: each record ends with '\n' (every format but msgpack)
	rawLines      bool            // batch mode, Format raw: a value ending with '\n' gets no other
	states        sync.Pool       // *flushState
	retries       *retryMemory
	reroutes      rerouteLog
	// stalledAt is the acknowledged count (accumulator.Acknowledged) when a
	// flush waited in vain and Kafka acknowledged nothing (noteStall), -1
	// when not stalled: while the count stays there, waits are stalledWait
	// at most; the first flush or Exit to see it moved ends the stall.
	stalledAt atomic.Int64
}

// errBatchRecordSize is the error of a record, in batch mode, longer than
// a batch message's reader takes.
var errBatchRecordSize = fmt.Errorf("longer than the %d MiB that batch mode's readers (gokafka-batch) take of a record", batch.MaxRecord>>20)

// stalledWait bounds a flush while Kafka acknowledges nothing (the cluster
// unreachable, or refusing the producer): with Workers 0 a waiting flush
// stalls all of Fluent Bit, and at shutdown Fluent Bit runs every flush
// queued to its workers after Grace, one Flush_Timeout each.
const stalledWait = 250 * time.Millisecond

// contentTypes are the media types of batch mode's records, by Format.
var contentTypes = map[string]string{
	"json":    batch.NDJSON,
	"msgpack": batch.Msgpack,
	"logfmt":  batch.Text,
	"raw":     batch.Text,
}

// flushState is the reusable scratch space of one flush.
type flushState struct {
	reader    chunk.Reader
	topics    map[string]*topicStage
	order     []*topicStage   // topics of this flush, in first-seen order
	last      *topicStage     // the previous record's
	topic     []byte          // the current record's topic name from Topic_Key
	topicText bool            // topic holds Topic_Key's value as text; else it is a map or an array
	admitted  map[string]bool // Dynamic_Topic's names outside Topics seen admitted (dynamicTopics)
	key       []byte          // the current record's key, in batch mode
	stageKey  []byte          // topic and partition, the key of topics
	// partitions caches, for one flush, the partition counts batch mode asks
	// the lane's producer for.
	partitions map[string]int
	lane       *sender.Lane
	scratch    []byte // header values as text
	// unencodable lists the records that cannot be encoded (or, in raw
	// or gelf format, have no value field, or have no readable timestamp),
	// to be marked dropped.
	unencodable []int
	tooLarge    int // records dropped as larger than Buffer_Memory or, in batch mode, than a message may be
	bytes       int // of the stages' buffers in topics
	// unplaced counts the keyed records batch mode did not send, their
	// topic's partition count unknown; unplacedTopic is the first one's.
	unplaced      int
	unplacedTopic string
	retry         bool // the flush retries a chunk: unknown partition counts are asked again
}

// dropped counts a chunk's records that a flush drops for one cause, and
// keeps the first one's error for the log.
type dropped struct {
	n     int
	first error
}

func (d *dropped) add(record int, err error) {
	if d.n++; d.first == nil {
		d.first = fmt.Errorf("record %d: %w", record, err)
	}
}

// log logs, when d has records, that they were dropped because they are
// what says.
func (d *dropped) log(in *Instance, records int, tag, what string) {
	if d.n > 0 {
		in.logChunk(tag, LevelError, "%d of %d records %s and were dropped; the first, %v", d.n, records, what, d.first)
	}
}

type topicStage struct {
	name      string
	partition int32
	used      bool
	bytes     int // the capacity of its buffers counted in flushState.bytes
	accumulator.Staged
}

// A flushState whose stages, at its next reset, are of more than
// maxStagedTopics topics or hold more than maxStagedBytes of buffers drops
// them: enough for a flush of a large chunk, while a burst of dynamic topics
// pins no more.
const (
	maxStagedTopics = 256
	maxStagedBytes  = 8 << 20
)

// reset empties st for a flush through lane.
func (st *flushState) reset(lane *sender.Lane) {
	st.lane = lane
	for _, t := range st.order {
		t.used = false
		t.Reset()
		n := t.Footprint()
		st.bytes += n - t.bytes
		t.bytes = n
	}
	st.order, st.unencodable, st.tooLarge, st.last, st.unplaced = st.order[:0], st.unencodable[:0], 0, nil, 0
	clear(st.partitions)
	if len(st.topics) > maxStagedTopics || st.bytes > maxStagedBytes {
		st.topics, st.bytes = make(map[string]*topicStage), 0
	}
}

// stage returns the staged records of topic and partition.
func (st *flushState) stage(topic []byte, partition int32) *accumulator.Staged {
	if t := st.last; t != nil && t.partition == partition && t.name == string(topic) {
		return &t.Staged // records of a chunk mostly go where the one before went
	}
	st.stageKey = append(append(st.stageKey[:0], topic...), byte(partition>>24), byte(partition>>16), byte(partition>>8), byte(partition))
	t := st.topics[string(st.stageKey)]
	if t == nil {
		t = &topicStage{name: string(topic), partition: partition}
		st.topics[string(st.stageKey)] = t
	}
	if !t.used {
		t.used = true
		st.order = append(st.order, t)
	}
	st.last = t
	return &t.Staged
}

// New starts an instance that produces through the producers newProd makes
// and counts into stats (which the metrics read once more after Exit).
func New(cfg *conf.Config, newProd sender.NewProducer, alloc accumulator.Allocator, stats *Stats, log Logger) (*Instance, error) {
	in := &Instance{Stats: stats, cfg: cfg, log: log, defaultTopic: []byte(cfg.Topics[0]), allowed: map[string]bool{}}
	if cfg.Registry.Enabled() {
		in.schema = &schemaLoader{wait: schemaWait}
		in.schema.ctx, in.schema.cancel = context.WithCancel(context.Background())
		if err := in.loadSchema(in.schema.ctx); errors.Is(err, registry.ErrRefused) {
			in.schema.stop()
			return nil, fmt.Errorf("Schema_Registry_URL: %w", err)
		} else if err != nil {
			in.schema.err = err
			in.Log(LevelWarn, "no Avro schema from Schema_Registry_URL yet: %v; chunks will be retried until one comes", err)
		}
	} else {
		enc, err := NewEncoder(cfg)
		if err != nil && cfg.Format == "avro" {
			return nil, fmt.Errorf("Schema_Str: %w", err)
		} else if err != nil {
			return nil, err
		}
		in.enc.Store(enc)
	}
	for _, t := range cfg.Topics {
		in.allowed[t] = true
	}
	if cfg.DynamicTopic {
		in.dynamic = &dynamicTopics{limit: cfg.DynamicTopicLimit, names: map[string]struct{}{}}
	}
	for _, h := range cfg.Headers {
		in.staticHeaders = accumulator.AppendHeader(in.staticHeaders, []byte(h.Name), []byte(h.Value))
	}
	in.acc = accumulator.New(int(cfg.BatchSize), cfg.BufferMemory, cfg.Linger, alloc)
	in.acc.SetDeadLetterTopic(cfg.DLQTopic, cfg.MaxMessageBytes())
	if in.batchMode = cfg.MessageMode == "batch"; in.batchMode {
		in.newline = cfg.Format != "msgpack"
		in.rawLines = cfg.Format == "raw"
		in.acc.SetFrames(contentTypes[cfg.Format], cfg.KafkaTimestamp == "event")
		in.acc.SetBatchHeaders(in.staticHeaders)
	}
	var err error
	if in.snd, err = sender.Start(in.acc, newProd, cfg.Producers, log); err != nil {
		if in.schema != nil {
			in.schema.stop()
		}
		return nil, err
	}
	in.retries = newRetryMemory(rememberedRecords)
	in.stalledAt.Store(-1)
	in.states.New = func() any {
		return &flushState{topics: make(map[string]*topicStage), partitions: make(map[string]int)}
	}
	for _, w := range cfg.Warnings {
		in.Log(LevelWarn, "%s", w)
	}
	return in, nil
}

// NewEncoder returns the encoder of cfg's payload options.
func NewEncoder(cfg *conf.Config) (*encode.Encoder, error) {
	return newEncoder(cfg, encode.Avro{Schema: cfg.Schema, SchemaID: uint32(cfg.SchemaID)})
}

// newEncoder returns the encoder of cfg's payload options and av's schema.
func newEncoder(cfg *conf.Config, av encode.Avro) (*encode.Encoder, error) {
	o := encode.Options{
		Avro:            av,
		Format:          cfg.Format,
		TimestampKey:    cfg.TimestampKey,
		TimestampFormat: cfg.TimestampFormat,
		RawKey:          cfg.RawLogKey,
		OTLP:            cfg.OTLP,
		Remove:          cfg.RemoveKeys,
		// Far past what a message may take: a value just past it still
		// goes to Kafka, which refuses it (to DLQ_Topic, if set). In
		// batch mode a record goes into its frame compressed.
		MaxValue: 16 * cfg.MaxMessageBytes(),
	}
	if cfg.MessageMode == "batch" {
		o.MaxValue = int(min(cfg.BufferMemory, batch.MaxRecord))
	}
	if cfg.Format == "gelf" {
		g := cfg.GELF
		o.GELF = encode.GELF{ShortMessage: g.ShortMessage, FullMessage: g.FullMessage, Host: g.Host, Level: g.Level}
		if o.GELF.Hostname, _ = os.Hostname(); o.GELF.Hostname == "" {
			o.GELF.Hostname = "localhost"
		}
	}
	if cfg.IncludeTagKey {
		o.TagKey = cfg.TagKey
	}
	return encode.New(o)
}

// Logger returns the instance's logger.
func (in *Instance) Logger() Logger { return in.log }

// Log formats a message for the instance's logger.
func (in *Instance) Log(level int, format string, args ...any) {
	in.log(level, fmt.Sprintf(format, args...))
}

// logChunk formats a message about a chunk of tag.
func (in *Instance) logChunk(tag string, level int, format string, args ...any) {
	in.log(level, "tag "+tag+": "+fmt.Sprintf(format, args...))
}

// Flush ships every record of data and returns OK once Kafka acknowledged
// them all; Retry when some failed for now or the timeout passed. In a
// malformed chunk, the records before the fault are shipped likewise, and
// Flush returns Error once they are all acknowledged or dropped. A retry of
// a chunk (the same bytes) sends only the records Kafka did not take, once
// those of the earlier attempt still in flight have been reported.
func (in *Instance) Flush(data []byte, tag string) int {
	start := time.Now()
	defer func() { in.Stats.Flushes.Observe(time.Since(start)) }()
	enc := in.enc.Load()
	if enc == nil {
		if enc = in.awaitSchema(); enc == nil {
			return in.noSchema(data, tag)
		}
	}
	acknowledged := in.acc.Acknowledged()
	wait := in.longestWait(acknowledged)
	deadline := start.Add(wait)
	var key chunkKey
	keyed := !in.retries.empty()
	var w *accumulator.Waiter
	laneIndex := -1
	if keyed {
		key = in.retries.key(tag, data)
		w, laneIndex = in.retries.take(key)
	}
	// remember keeps w for the chunk's retry, once: a concurrent retry
	// may have taken it since.
	remembered := false
	remember := func() {
		if remembered {
			return
		}
		if !keyed {
			key, keyed = in.retries.key(tag, data), true
		}
		if chunks, records := in.retries.put(key, w, laneIndex); chunks > 0 {
			in.Log(LevelWarn, "the retry memory is full: forgot the oldest chunks handed back for a retry, %d (%d records), "+
				"whose retries send every record again, those Kafka took meanwhile too", chunks, records)
		}
		remembered = true
	}
	// The export turns a panic into Retry: the waiter goes to the retry, as
	// on any Retry, else it would send again what Kafka took. The waiter's
	// records are all in a state a retry handles: not sent, or in a batch
	// and counted as pending (under the accumulator's lock), or reported.
	defer func() {
		if r := recover(); r != nil {
			if w != nil {
				remember()
			}
			panic(r)
		}
	}()
	// A retry takes its earlier attempt's lane: it waits for the records
	// still in flight there, and sends the rest after them.
	lane := in.snd.Lane(laneIndex)
	defer lane.Release()
	laneIndex = lane.Index()
	if w != nil {
		before, ok := lane.Wait(w, deadline)
		in.logFailures(tag, before) // reported since the earlier attempt returned
		if !ok {
			in.count(w, before, 0, 0)
			remember()
			in.Stats.Retried.Add(int64(w.Len()))
			in.logChunk(tag, LevelWarn, "retry of a chunk of %d records: %d from the earlier attempt still unacknowledged after %v; chunk will be retried",
				w.Len(), before.InFlight, wait)
			in.noteStall(acknowledged, start)
			return Retry
		}
	}

	st := in.states.Get().(*flushState)
	defer in.states.Put(st)
	st.reset(lane)
	st.retry = w != nil
	st.reader.Reset(data)
	t := in.stageChunk(st, enc, w, tag, start)
	records := t.records
	if w == nil {
		w = accumulator.NewWaiter(records)
		w.Tag = tag
	} else {
		in.logChunk(tag, LevelInfo, "retry of a chunk of %d records: %d already delivered, dead-lettered or dropped, sending the other %d",
			records, records-t.resent, t.resent)
	}
	for _, i := range st.unencodable {
		in.acc.Drop(w, i)
	}
	in.reportStaged(&t, tag)

	appendErr := in.append(st, laneIndex, w, records, start, start.Add(min(in.cfg.MaxBlock, wait)))
	lane.SendAll()
	res, acked := lane.Wait(w, deadline)
	in.logFailures(tag, res)
	in.count(w, res, len(st.unencodable)+st.tooLarge, t.skipped)

	code := OK
	switch {
	case appendErr != nil:
		in.logChunk(tag, LevelWarn, "%v; chunk will be retried", appendErr)
		in.noteStall(acknowledged, start)
		code = Retry
	case !acked:
		in.logChunk(tag, LevelWarn, "flush timed out after %v: %d of %d records acknowledged; chunk will be retried", wait, res.Delivered, records)
		in.noteStall(acknowledged, start)
		code = Retry
	case res.Retriable > 0:
		in.logChunk(tag, LevelWarn, "%d of %d records not delivered for now; chunk will be retried", res.Retriable, records)
		code = Retry
	case st.unplaced > 0:
		in.logUnplaced(st, tag, records)
		code = Retry
	}
	if t.decodeErr != nil {
		settled := res.Delivered + res.DeadLettered + res.Permanent
		then := "chunk will be retried for them, then dropped"
		if code != Retry {
			then, code = "the chunk is dropped", Error
		}
		in.logChunk(tag, LevelError, "%v; the %d records before it were sent: %d delivered, %d dead-lettered, %d dropped, %d to send again; %s",
			t.decodeErr, records, res.Delivered, res.DeadLettered, res.Permanent, records-settled, then)
	}
	if code == Retry {
		in.Stats.Retried.Add(int64(records))
		remember()
	}
	in.logChunk(tag, LevelDebug, "flush of %d records: %d acknowledged in %v", records, res.Delivered, time.Since(start).Round(time.Microsecond))
	return code
}

// chunkTally is what staging a chunk's records found.
type chunkTally struct {
	records, skipped, resent int                // resent: of a retry, those sent again
	rerouted                 [routed + 1]int    // by why
	firstRerouted            [routed + 1]string // the first value that is no topic name, or past the limit
	badTimes, unencodable    dropped
	decodeErr                error // where the chunk is malformed
}

// stageChunk decodes the records of st's chunk, encodes them into st's
// stages and compresses them in batch mode; of a retry (w), only those
// not settled yet. The records it cannot send are in st.unencodable; batch
// mode's keyed records of an unknown partition count, in st.unplaced.
func (in *Instance) stageChunk(st *flushState, enc *encode.Encoder, w *accumulator.Waiter, tag string, start time.Time) (t chunkTally) {
	var rec chunk.Record
	for ; ; t.records++ {
		// The encoder walks each body anyway and tells the reader where it
		// ends (EndBody); lookups before that see the body and what follows.
		more, err := st.reader.NextOpen(&rec)
		if !more {
			t.decodeErr = err
			break
		}
		if w != nil {
			if t.records >= w.Len() || w.State(t.records).Settled() {
				continue
			}
			t.resent++
		}
		// A body that is not a map is refused as Fluent Bit's own decoder
		// refuses it (its outputs stop there).
		if typ := msgp.NextType(rec.Body); rec.TimeErr != nil || typ != msgp.MapType {
			if t.decodeErr = st.reader.SkipBody(&rec); t.decodeErr != nil {
				break
			}
			if rec.TimeErr != nil {
				t.badTimes.add(t.records, rec.TimeErr)
			} else {
				t.unencodable.add(t.records, fmt.Errorf("its body is not a map but a msgpack %s", typ))
			}
			st.unencodable = append(st.unencodable, t.records)
			continue
		}
		topic, why := in.topic(st, &rec)
		if t.rerouted[why]++; t.rerouted[why] == 1 && (why == notATopicName || why == pastTopicLimit) {
			t.firstRerouted[why] = st.badTopic()
		}
		partition := int32(-1)
		if in.batchMode {
			var keyed bool
			if st.key, keyed = in.appendKey(st.key[:0], &rec); keyed {
				partition = in.partitionOf(st, topic, st.key, start.Add(in.cfg.FlushTimeout)) // not shortened while stalled: a lookup fails for 10 s
				// Its key's partition is not known: it waits for the chunk's retry.
				if partition < 0 {
					if t.decodeErr = st.reader.SkipBody(&rec); t.decodeErr != nil {
						break
					}
					if st.unplaced++; st.unplaced == 1 {
						st.unplacedTopic = string(topic)
					}
					continue
				}
			}
		}
		s := st.stage(topic, partition)
		valueStart := len(s.Buf)
		var bodyLen int
		if s.Buf, bodyLen, err = enc.AppendOpen(s.Buf, &rec, tag); err != nil {
			if skipErr := st.reader.SkipBody(&rec); skipErr != nil {
				t.decodeErr = skipErr // a malformed chunk, not a record the encoder rejects
				break
			}
			if errors.Is(err, encode.ErrNoValueField) {
				t.skipped++
			} else {
				t.unencodable.add(t.records, err)
			}
			st.unencodable = append(st.unencodable, t.records)
			continue
		}
		st.reader.EndBody(&rec, bodyLen)
		if in.batchMode && len(s.Buf)-valueStart > batch.MaxRecord {
			s.Buf = s.Buf[:valueStart]
			t.unencodable.add(t.records, errBatchRecordSize)
			st.unencodable = append(st.unencodable, t.records)
			continue
		}
		if in.newline && !(in.rawLines && len(s.Buf) > valueStart && s.Buf[len(s.Buf)-1] == '\n') {
			s.Buf = append(s.Buf, '\n')
		}
		keyStart, keyed := len(s.Buf), false
		if !in.batchMode { // a batch message has its own headers and no key
			s.Buf, keyed = in.appendKey(s.Buf, &rec)
		}
		hdrStart := len(s.Buf)
		if !in.batchMode {
			s.Buf = in.appendHeaders(s.Buf, st, &rec)
		}
		// 0 is the produce time; batch mode keeps the event time for its
		// headers, whatever Kafka_Timestamp says (see SetFrames).
		ts := int64(0)
		if in.batchMode || in.cfg.KafkaTimestamp == "event" {
			ts = max(rec.Time/1e6, 0)
		}
		s.Add(t.records, valueStart, keyStart, hdrStart, keyed, ts)
		in.acc.Compress(s, false)
	}
	return t
}

// reportStaged counts and logs what staging a chunk rerouted and dropped.
func (in *Instance) reportStaged(t *chunkTally, tag string) {
	for why, n := range t.rerouted[:routed] {
		if n > 0 {
			in.Stats.Rerouted[why].Add(int64(n))
		}
	}
	if n := t.rerouted[notInTopics]; n > 0 { // as meant: the topics allowed are listed
		in.logChunk(tag, LevelDebug, "%d records had a topic in %s that is not in Topics and went to %s", n, in.cfg.TopicKey, in.defaultTopic)
	}
	in.reroutes.note(in, &t.rerouted, &t.firstRerouted)
	if t.skipped > 0 {
		in.Stats.Skipped.Add(int64(t.skipped))
		field, missing := in.cfg.RawLogKey, "no (or a null)"
		if in.cfg.Format == "gelf" {
			field, missing = in.cfg.GELF.ShortMessage, "no (or a null or blank)"
		}
		in.logChunk(tag, LevelWarn, "%d of %d records have %s %s and were skipped", t.skipped, t.records, missing, field)
	}
	t.badTimes.log(in, t.records, tag, "have a timestamp that cannot be read")
	t.unencodable.log(in, t.records, tag, "cannot be encoded")
}

// logUnplaced logs that batch mode did not send the records whose key's
// partition is not known, for a retry.
func (in *Instance) logUnplaced(st *flushState, tag string, records int) {
	unknown, others := 0, "" // topics whose count was asked for in vain
	for _, n := range st.partitions {
		if n <= 0 {
			unknown++
		}
	}
	if unknown > 1 {
		others = " (and of " + plural(unknown-1, "other topic") + ")"
	}
	in.logChunk(tag, LevelWarn, "%d of %d records not sent: their key's partition is not known, the partition count of topic %s%s being unknown; chunk will be retried",
		st.unplaced, records, st.unplacedTopic, others)
}

// count adds what changed in w's result since it was last counted to the
// statistics, and logs how many records Kafka refused for good meanwhile,
// and how many were sent again with the produce time.
// own is how many the flush dropped itself, each logged by its cause;
// skipped of them had no value field (raw, gelf), and are counted apart.
func (in *Instance) count(w *accumulator.Waiter, res accumulator.Result, own, skipped int) {
	refused := res.Permanent - w.Counted.Permanent - own
	in.Stats.Failed.Add(int64(res.Permanent - w.Counted.Permanent - skipped))
	in.Stats.DeadLettered.Add(int64(res.DeadLettered - w.Counted.DeadLettered))
	restamped := res.Restamped - w.Counted.Restamped
	in.Stats.Restamped.Add(int64(restamped))
	w.Counted = res
	if restamped > 0 {
		in.logChunk(w.Tag, LevelWarn, "%d records refused by Kafka for their timestamp (or as invalid) were sent again with the produce time", restamped)
	}
	if refused > 0 {
		in.logChunk(w.Tag, LevelError, "%d of %d records can never be delivered and were dropped; %d delivered", refused, w.Len(), res.Delivered)
	}
}

// topic returns the record's topic, and why it is the default topic when
// Topic_Key is set but gave no allowed topic.
func (in *Instance) topic(st *flushState, rec *chunk.Record) (topic []byte, why reroute) {
	if in.cfg.TopicKey == nil {
		return in.defaultTopic, routed
	}
	v, found := in.cfg.TopicKey.Lookup(rec.Body)
	if !found || msgp.IsNil(v) {
		return in.defaultTopic, noTopicField
	}
	name, text := ra.AppendText(st.topic[:0], v)
	st.topic, st.topicText = name, text
	switch {
	case !text || !conf.ValidTopic(name) || in.cfg.DynamicTopic && string(name) == in.cfg.DLQTopic:
		return in.defaultTopic, notATopicName
	case in.allowed[string(name)]:
	case !in.cfg.DynamicTopic:
		return in.defaultTopic, notInTopics
	case !in.dynamic.admit(st, name):
		return in.defaultTopic, pastTopicLimit
	}
	return name, routed
}

// appendKey appends the message key: Message_Key_Field's value (as
// appendFieldText writes it), else Message_Key. Without either the record
// has no key (keyed false); a field holding "" gives an empty key, which
// Kafka keeps apart from a null one.
func (in *Instance) appendKey(dst []byte, rec *chunk.Record) (out []byte, keyed bool) {
	if in.cfg.MessageKeyField != nil {
		if v, found := in.cfg.MessageKeyField.Lookup(rec.Body); found {
			if out, ok := appendFieldText(dst, v); ok {
				return out, true
			}
		}
	}
	return append(dst, in.cfg.MessageKey...), in.cfg.MessageKey != ""
}

// appendHeaders appends the static headers, those from fields, and the
// metadata entries when Metadata_Headers is on.
func (in *Instance) appendHeaders(dst []byte, st *flushState, rec *chunk.Record) []byte {
	dst = append(dst, in.staticHeaders...)
	for _, h := range in.cfg.HeaderKeys {
		if v, found := h.Path.Lookup(rec.Body); found {
			dst = in.appendHeader(dst, st, []byte(h.Name), v)
		}
	}
	if !in.cfg.MetadataHeaders || rec.Metadata == nil {
		return dst
	}
	n, b, err := msgp.ReadMapHeaderBytes(rec.Metadata)
	for i := uint32(0); err == nil && i < n; i++ {
		var k, v []byte
		var isStr bool
		if k, v, isStr, err = ra.MapKey(b); err != nil {
			break
		}
		if b, err = msgp.Skip(v); err == nil && isStr {
			dst = in.appendHeader(dst, st, k, v[:len(v)-len(b)])
		}
	}
	return dst
}

// appendHeader adds header name with the msgpack value v as text (JSON for
// maps and arrays); a nil value adds none, as a missing field.
func (in *Instance) appendHeader(dst []byte, st *flushState, name, v []byte) []byte {
	if len(name) > math.MaxUint16 { // more than AppendHeader's name length holds
		return dst
	}
	text, ok := appendFieldText(st.scratch[:0], v)
	st.scratch = text
	if !ok {
		return dst
	}
	return accumulator.AppendHeader(dst, name, text)
}

// appendFieldText appends a field's value as a key or header value: a
// scalar as ra.AppendText writes it, a map or an array as its JSON; false
// for null (or a value that cannot be encoded), which gives none.
func appendFieldText(dst, v []byte) ([]byte, bool) {
	n := len(dst)
	if text, ok := ra.AppendText(dst, v); ok {
		return text, true
	}
	if msgp.NextType(v) == msgp.NilType {
		return dst[:n], false
	}
	text, err := encode.AppendJSON(dst[:n], v)
	if err != nil {
		return dst[:n], false
	}
	return text, true
}

// longestWait is how long a flush that began with acknowledged, or Exit,
// waits for Kafka: Flush_Timeout, or stalledWait while Kafka acknowledges
// nothing.
func (in *Instance) longestWait(acknowledged int64) time.Duration {
	at := in.stalledAt.Load()
	if acknowledged == at {
		return min(in.cfg.FlushTimeout, stalledWait)
	}
	if at >= 0 && in.stalledAt.CompareAndSwap(at, -1) {
		in.Log(LevelInfo, "Kafka acknowledges records again: flushes wait up to Flush_Timeout (%v)", in.cfg.FlushTimeout)
	}
	return in.cfg.FlushTimeout
}

// noteStall notes, after a flush that began at start with acknowledged
// and waited in vain (for acknowledgements or for memory), whether Kafka
// acknowledged nothing for stalledWait at least since: then the next
// flushes wait stalledWait at most, until Kafka acknowledges a record.
func (in *Instance) noteStall(acknowledged int64, start time.Time) {
	waited := time.Since(start)
	if waited < stalledWait || in.acc.Acknowledged() != acknowledged || in.stalledAt.Swap(acknowledged) == acknowledged {
		return
	}
	in.Log(LevelWarn, "Kafka acknowledged nothing for %v: flushes wait at most %v until it does", waited.Round(100*time.Millisecond), stalledWait)
}

// append moves the staged records of every topic into the accumulator's
// batches of lane laneIndex, waiting for memory until deadline (Max_Block).
// Records too large for Buffer_Memory or, in batch mode, for a message are
// dropped; running out of time is an error.
func (in *Instance) append(st *flushState, laneIndex int, w *accumulator.Waiter, records int, start, deadline time.Time) error {
	for i, t := range st.order {
		in.acc.Compress(&t.Staged, true)
		for s := t.Staged; len(s.Recs) > 0; {
			n, err := in.acc.Append(t.name, t.partition, laneIndex, &s, w, deadline)
			s.Skip(n)
			switch {
			case errors.Is(err, accumulator.ErrTooLarge):
				k := s.Lead()
				what := fmt.Sprintf("record of %d bytes", s.Recs[0].Len)
				if k > 1 {
					what = fmt.Sprintf("%d records", k)
				}
				in.logChunk(w.Tag, LevelError, "%s for topic %s dropped: %v", what, t.name, err)
				for _, i := range s.Idx[:k] {
					in.acc.Drop(w, int(i))
				}
				s.Skip(k)
				st.tooLarge += k
			case err != nil:
				left := len(s.Recs)
				for _, later := range st.order[i+1:] {
					left += len(later.Recs)
				}
				return fmt.Errorf("%v after %v: %d of %d records not buffered", err, time.Since(start).Round(time.Millisecond), left, records)
			}
		}
	}
	return nil
}

// logFailures logs each kind of failure of res's examples once, with its
// record count.
func (in *Instance) logFailures(tag string, res accumulator.Result) {
	for _, f := range res.Examples {
		what := fmt.Sprintf("%d records of up to %d bytes", f.Records, f.MaxSize)
		switch {
		case f.Messages == 1:
			what = fmt.Sprintf("batch message of %d bytes (%s of the chunk)", f.MaxSize, plural(f.Records, "record"))
		case f.BatchMessage:
			what = fmt.Sprintf("%d batch messages of up to %d bytes (%s of the chunk)", f.Messages, f.MaxSize, plural(f.Records, "record"))
		case f.Records == 1:
			what = fmt.Sprintf("record of %d bytes", f.MaxSize)
		}
		switch {
		case f.ToDeadLetter:
			in.logChunk(tag, LevelWarn, "%s for topic %s refused (%s), sent to the dead-letter topic %s", what, f.Topic, f.Reason, in.cfg.DLQTopic)
		case f.Permanent:
			in.logChunk(tag, LevelError, "%s for topic %s dropped: %s", what, f.Topic, f.Reason)
		default:
			in.logChunk(tag, LevelWarn, "%s for topic %s not delivered: %s", what, f.Topic, f.Reason)
		}
	}
}

// plural is n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// BufferBytes is the memory of the instance's batch buffers now.
func (in *Instance) BufferBytes() int64 { return in.acc.Used() }

// DeliveredByTopic returns the records Kafka acknowledged, by topic.
func (in *Instance) DeliveredByTopic() map[string]int64 { return in.acc.DeliveredByTopic() }

// BrokerStatistics returns each producer's latest librdkafka statistics
// (JSON), nil for one that has none.
func (in *Instance) BrokerStatistics() [][]byte { return in.snd.Statistics() }

// ProducersReplaced counts the producers replaced after a fatal error.
func (in *Instance) ProducersReplaced() int64 { return in.snd.Recreated() }

// Exit sends what is buffered, waits up to Flush_Timeout for Kafka (while
// Kafka acknowledges nothing, stalledWait: the chunks of what is left were
// handed back to Fluent Bit for a retry), and stops the producer.
func (in *Instance) Exit() {
	if in.schema != nil {
		in.schema.stop()
	}
	wait := in.longestWait(in.acc.Acknowledged())
	abandoned := in.snd.Close(time.Now().Add(wait))
	// What Kafka said since of the chunks handed back for a retry that
	// did not come (Retry_Limit, or this Exit) is logged and counted now,
	// and what it never took of them.
	undelivered, chunks := 0, 0
	for _, w := range in.retries.drain() {
		res, _ := in.acc.Wait(w, time.Time{}, accumulator.Sleep) // none in flight after Close
		// Only the losses get a line of their own: records failed for now
		// are given up below, and Close may have cut short a move to the
		// dead-letter topic.
		res.Examples = slices.DeleteFunc(res.Examples, func(f accumulator.FailedRecords) bool { return !f.Permanent || f.ToDeadLetter })
		in.logFailures(w.Tag, res)
		in.count(w, res, 0, 0)
		if n := w.Len() - res.Delivered - res.DeadLettered - res.Permanent; n > 0 {
			undelivered += n
			chunks++
		}
	}
	in.reroutes.mu.Lock()
	in.reroutes.report(in)
	in.reroutes.mu.Unlock()
	in.Log(LevelInfo, "stopped: Kafka acknowledged %d records since Init (Exit waited %v at most for acknowledgements)", in.acc.Acknowledged(), wait)
	if undelivered > 0 {
		in.Log(LevelWarn, "%d records of %s handed back for a retry that did not come (Retry_Limit reached, or this shutdown) were not delivered; "+
			"Fluent Bit sends them again only from filesystem storage, after a restart", undelivered, plural(chunks, "chunk"))
	}
	if abandoned > 0 {
		in.Log(LevelWarn, "%d records not acknowledged were still buffered or in the producer's queue when it stopped", abandoned)
	}
}
