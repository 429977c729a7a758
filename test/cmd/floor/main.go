// Command floor produces pre-encoded message values to Kafka as fast as a
// path into librdkafka allows, awaiting every delivery report: the floors
// the end-to-end benchmark (test/bench) compares the plugin with.
//
//	floor -mode thin|ckg -brokers host:port -topic t -values values.bin [-set prop=value]...
//
// thin: the plugin's own C path alone (rdk.Producer: one C call per batch of
// accumulator.Batch records in C memory, delivery reports counted in C).
// ckg: confluent-kafka-go's Producer.Produce, one call per message, delivery
// reports read from Events().
//
// Both use the librdkafka settings the plugin derives from its defaults
// (conf.Load: lz4, idempotence, acks all, linger.ms 5; -set adds or
// overrides one, for experiments) and keep at most -memory bytes of values
// unacknowledged (the plugin's Buffer_Memory). The
// values file (see test/bench) holds what the plugin would write: records
// of u32 length, i64 Kafka timestamp in ms (both little-endian), value.
// One JSON line on stdout reports the run, with the process's peak RSS; CPU
// is for the parent to read from the process's rusage.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/rdk"
	"github.com/gokafka/gokafka/sender"
)

// Result is the JSON line floor prints.
type Result struct {
	Mode      string  `json:"mode"`
	Records   int64   `json:"records"`
	Delivered int64   `json:"delivered"`
	Failed    int64   `json:"failed"`
	WallS     float64 `json:"wall_s"` // from the first produce to the producer closed
	GoMallocs uint64  `json:"go_mallocs"`
	GoGCs     uint32  `json:"go_gcs"`
	Batches   int64   `json:"batches,omitempty"`
	// MaxRSSKB is this process's peak RSS. Linux carries the peak RSS of
	// the process that called execve over into the new program's
	// ru_maxrss, so it is clean only when floor was forked by a small
	// process (test/bench starts it through sh for that).
	MaxRSSKB int64 `json:"maxrss_kb"`
}

func main() {
	mode := flag.String("mode", "thin", "thin or ckg")
	brokers := flag.String("brokers", "", "bootstrap servers")
	topic := flag.String("topic", "", "topic")
	values := flag.String("values", "", "values file")
	memory := flag.Int64("memory", 64<<20, "most value bytes unacknowledged at once")
	batch := flag.Int("batch", 1<<20, "thin: bytes per batch")
	delay := flag.Duration("delay", 0, "wait this long after making the producer before the clock starts (the plugin's first flush comes one Flush interval after Init)")
	var set []conf.Property
	flag.Func("set", "librdkafka `property=value` to add or override (repeatable)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want property=value")
		}
		set = append(set, conf.Property{Key: k, Value: val, FromUser: true})
		return nil
	})
	flag.Parse()
	if *brokers == "" || *topic == "" || *values == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg, err := conf.Load(conf.MapGetter{"Brokers": *brokers}, nil)
	if err != nil {
		fail(err)
	}
	cfg.Rdkafka = append(cfg.Rdkafka, set...) // later properties win
	f, err := os.Open(*values)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	in := &reader{r: bufio.NewReaderSize(f, 1<<20)}
	var res Result
	switch *mode {
	case "thin":
		res, err = thin(cfg, *topic, in, *memory, *batch, *delay)
	case "ckg":
		res, err = ckg(cfg, *topic, in, *memory, *delay)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fail(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.Mode, res.GoMallocs, res.GoGCs = *mode, ms.Mallocs, ms.NumGC
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.MaxRSSKB = ru.Maxrss
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Delivered != res.Records {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}

// reader reads the values file.
type reader struct {
	r   *bufio.Reader
	hdr [12]byte
}

// next reads the next record's header; io.EOF at the end.
func (r *reader) next() (n int, tsMs int64, err error) {
	if _, err = io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("values file: truncated header")
		}
		return 0, 0, err
	}
	return int(binary.LittleEndian.Uint32(r.hdr[:])), int64(binary.LittleEndian.Uint64(r.hdr[4:])), nil
}

// value reads the value of the record whose header next read into dst.
func (r *reader) value(dst []byte) error {
	_, err := io.ReadFull(r.r, dst)
	if err != nil {
		err = fmt.Errorf("values file: truncated value: %w", err)
	}
	return err
}

// thin produces batches of records in C memory through rdk.Producer, at
// most memory/batch batches unacknowledged, on one goroutine.
func thin(cfg *conf.Config, topic string, in *reader, memory int64, batchSize int, delay time.Duration) (Result, error) {
	var res Result
	prod, err := rdk.New(cfg.Rdkafka, func(level int, msg string) {
		if level <= 2 {
			fmt.Fprintln(os.Stderr, msg)
		}
	}, rdk.NewCauses(), nil)
	if err != nil {
		return res, err
	}
	alloc := rdk.Allocator{}
	maxBatches := int(max(memory/int64(batchSize), 1))
	var free []*accumulator.Batch
	allocated, inflight := 0, 0
	var done []sender.Completion
	collect := func(timeout time.Duration) {
		done = prod.Poll(timeout, done[:0])
		for _, c := range done {
			res.Failed += int64(len(c.Failures))
			res.Delivered += int64(len(c.Batch.Recs) - len(c.Failures))
			c.Batch.Buf, c.Batch.Recs = c.Batch.Buf[:0], c.Batch.Recs[:0]
			free = append(free, c.Batch)
			inflight--
		}
	}
	newBatch := func() *accumulator.Batch {
		for len(free) == 0 && allocated >= maxBatches {
			collect(100 * time.Millisecond)
		}
		if n := len(free); n > 0 {
			b := free[n-1]
			free = free[:n-1]
			return b
		}
		allocated++
		return &accumulator.Batch{Topic: topic, Partition: -1, Buf: alloc.Alloc(batchSize)}
	}
	send := func(b *accumulator.Batch) {
		prod.Produce(b)
		inflight++
		res.Batches++
		collect(0)
	}

	time.Sleep(delay)
	start := time.Now()
	b := newBatch()
	for {
		n, ts, err := in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		if n > batchSize {
			return res, fmt.Errorf("a value of %d bytes is larger than a batch", n)
		}
		if len(b.Buf)+n > cap(b.Buf) {
			send(b)
			b = newBatch()
		}
		off := len(b.Buf)
		b.Buf = b.Buf[:off+n]
		if err := in.value(b.Buf[off:]); err != nil {
			return res, err
		}
		b.Recs = append(b.Recs, accumulator.Rec{Off: uint32(off), Len: uint32(n), TimeMs: ts})
		res.Records++
	}
	if len(b.Recs) > 0 {
		send(b)
	}
	for inflight > 0 {
		collect(100 * time.Millisecond)
	}
	if done, left := prod.Close(); len(done)+len(left) > 0 {
		return res, fmt.Errorf("%d batches never completed", len(done)+len(left))
	}
	res.WallS = time.Since(start).Seconds()
	for _, b := range free {
		alloc.Free(b.Buf)
	}
	return res, nil
}

// ckg produces one message per Producer.Produce call and counts the delivery
// reports from Events() on another goroutine, at most memory bytes (by the
// file's average value size) unacknowledged.
func ckg(cfg *conf.Config, topic string, in *reader, memory int64, delay time.Duration) (Result, error) {
	var res Result
	cm := kafka.ConfigMap{
		// The plugin needs no value back in a report; neither does this floor.
		"go.delivery.report.fields": "none",
	}
	for _, p := range cfg.Rdkafka {
		cm[p.Key] = p.Value
	}
	p, err := kafka.NewProducer(&cm)
	if err != nil {
		return res, err
	}
	var (
		mu        sync.Mutex
		cond      = sync.NewCond(&mu)
		inflight  int64
		delivered int64
		failed    int64
	)
	go func() {
		for e := range p.Events() {
			switch ev := e.(type) {
			case *kafka.Message:
				mu.Lock()
				if ev.TopicPartition.Error != nil {
					failed++
				} else {
					delivered++
				}
				inflight--
				cond.Signal()
				mu.Unlock()
			case kafka.Error:
				fmt.Fprintln(os.Stderr, "floor: ckg:", ev)
			}
		}
	}()

	time.Sleep(delay)
	start := time.Now()
	buf := make([]byte, 0, 1<<20)
	var bytes int64
	var maxInflight int64 = 1 << 62
	for {
		n, ts, err := in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		buf = buf[:n]
		if err := in.value(buf); err != nil {
			return res, err
		}
		res.Records++
		bytes += int64(n)
		if res.Records == 1000 { // bound by count, from the first values' average size
			maxInflight = max(memory/(bytes/res.Records), 1)
		}
		mu.Lock()
		for inflight >= maxInflight {
			cond.Wait()
		}
		inflight++
		mu.Unlock()
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Value:          buf, // copied by librdkafka (RD_KAFKA_MSG_F_COPY)
			Timestamp:      time.UnixMilli(ts),
		}
		for {
			err = p.Produce(msg, nil)
			var kerr kafka.Error
			if errors.As(err, &kerr) && kerr.Code() == kafka.ErrQueueFull {
				time.Sleep(time.Millisecond)
				continue
			}
			break
		}
		if err != nil {
			return res, err
		}
	}
	mu.Lock()
	for inflight > 0 {
		cond.Wait()
	}
	res.Delivered, res.Failed = delivered, failed
	mu.Unlock()
	p.Close()
	res.WallS = time.Since(start).Seconds()
	return res, nil
}
