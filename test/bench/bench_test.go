// Package bench is the end-to-end benchmark of issue 10, run by `make bench`:
// 1M generated docker container log records in pre-encoded chunks (v2
// layout, ~256 KiB) go through the C test host (test/host) into one real
// local broker, in record mode with Workers 0 and Workers 2, and, in the same
// run, the same records as the JSON values the plugin writes go through two
// floors in a process of their own (test/cmd/floor): confluent-kafka-go's
// Producer.Produce, and the plugin's thin C path (rdk) alone. A no-op plugin
// in the same host (test/bench/noop) measures what the host and the Go
// runtime cost by themselves.
//
// Every mode runs once per round, rounds interleaved, each to a fresh topic
// of 6 partitions, which must then hold exactly the records sent (high minus
// low watermarks) or the benchmark fails. The table shows, per mode, the
// round with the median CPU per record: records/s (the host's or the floor's
// wall time from the first record, startDelay after making the producer, to
// the producer closed), CPU µs per record
// (user+sys of the whole process, librdkafka's threads included), peak RSS,
// context switches, and each figure as a ratio to the thin floor (and the
// CPU ratios between each mode's best round, the least disturbed); it is also
// written, with every round's figures, to build/bench/results.md.
//
//	GOKAFKA_BENCH_RECORDS  records (default 1000000)
//	GOKAFKA_BENCH_ROUNDS   rounds (default 3)
//	GOKAFKA_BROKERS        an existing cluster instead of a broker of its own
//	GOKAFKA_LOGGEN         gen-container-logs.py (default ../shared/data)
package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/conf"
	gokafka "github.com/gokafka/gokafka/plugin"
	"github.com/gokafka/gokafka/test/benchdata"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

const partitions = 6

// hostTag is the tag the C test host passes with every chunk (its default).
const hostTag = "test"

// result is one run of one mode.
type result struct {
	mode      string
	records   int64
	wall      float64 // seconds
	user, sys float64 // CPU seconds of the whole process (all its threads)
	maxRSSKB  int64
	csw       int64   // context switches, voluntary and not
	gcs       int     // Go garbage collections
	goMallocs float64 // Go allocations per record, where known (-1 otherwise)
	busy      float64 // the machine's CPU busy fraction during the run (all processes)
	note      string
}

func (r result) recordsPerSec() float64 { return float64(r.records) / r.wall }
func (r result) cpuPerRecord() float64  { return (r.user + r.sys) / float64(r.records) * 1e6 }
func (r result) sysPerRecord() float64  { return r.sys / float64(r.records) * 1e6 }
func (r result) rssMiB() float64        { return float64(r.maxRSSKB) / 1024 }

// machineCPU reads the busy and total jiffies of all CPUs from /proc/stat.
func machineCPU() (busy, total float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}

// input is what every mode sends.
type input struct {
	chunkFile, valuesFile string
	chunkBytes            int64 // sum of the chunks' sizes (held in memory by the host)
	records               int64
	valueBytes            int64
	chunks                int
}

// prepare generates the container logs, encodes the chunks (v2 layout,
// EventTime, ~256 KiB), writes the chunk file for the host, and the values
// the plugin would write (its default encoder over the decoded chunk
// records) for the floors.
func prepare(b *testing.B, dir string, records int) input {
	b.Helper()
	start := time.Now()
	logFile := filepath.Join(dir, "container.log")
	benchdata.Generate(b, logFile, records)
	recs, err := fixture.ReadContainerLog(logFile, "docker")
	if err != nil {
		b.Fatal(err)
	}
	os.Remove(logFile)
	chunks := fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})
	recs = nil
	in := input{chunkFile: filepath.Join(dir, "chunks.bin"), valuesFile: filepath.Join(dir, "values.bin"), chunks: len(chunks)}
	if err := fixture.WriteChunkFile(in.chunkFile, chunks); err != nil {
		b.Fatal(err)
	}
	for _, c := range chunks {
		in.chunkBytes += int64(len(c))
	}
	in.records, in.valueBytes = writeValues(b, in.valuesFile, chunks)
	if in.records != int64(records) {
		b.Fatalf("%d records in the chunks, want %d", in.records, records)
	}
	fmt.Printf("input: %d records in %d chunks (%.1f MiB), %.1f B per JSON value; prepared in %v\n",
		in.records, in.chunks, float64(in.chunkBytes)/(1<<20), float64(in.valueBytes)/float64(in.records),
		time.Since(start).Round(100*time.Millisecond))
	return in
}

// writeValues writes, for every record of chunks, what the plugin with its
// default options writes to Kafka: u32 value length, i64 Kafka timestamp in
// ms (little-endian), the value.
func writeValues(b *testing.B, path string, chunks [][]byte) (records, valueBytes int64) {
	b.Helper()
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "unused:1"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	enc := pluginEncoder(b, cfg)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var hdr [12]byte
	var val []byte
	var rec chunk.Record
	for _, c := range chunks {
		r := chunk.NewReader(c)
		for {
			more, err := r.Next(&rec)
			if !more {
				if err != nil {
					b.Fatal(err)
				}
				break
			}
			if val, err = enc(val[:0], &rec); err != nil {
				b.Fatal(err)
			}
			binary.LittleEndian.PutUint32(hdr[:], uint32(len(val)))
			ts := int64(0)
			if cfg.KafkaTimestamp == "event" {
				ts = max(rec.Time/1e6, 0)
			}
			binary.LittleEndian.PutUint64(hdr[4:], uint64(ts))
			w.Write(hdr[:])
			w.Write(val)
			records++
			valueBytes += int64(len(val))
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return records, valueBytes
}

// pluginEncoder is the encoder plugin.New builds from cfg.
func pluginEncoder(b *testing.B, cfg *conf.Config) func([]byte, *chunk.Record) ([]byte, error) {
	b.Helper()
	e, err := gokafka.NewEncoder(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return func(dst []byte, rec *chunk.Record) ([]byte, error) { return e.Append(dst, rec, hostTag) }
}

// buildFloor builds test/cmd/floor.
func buildFloor(b *testing.B, root string) string {
	b.Helper()
	out := filepath.Join(root, "build", "bench", "floor")
	cmd := exec.Command("go", "build", "-o", out, "./test/cmd/floor")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the floor: %v\n%s", err, msg)
	}
	return out
}

// forked starts name with args through sh, which forks it: Linux carries
// the peak RSS of the process that calls execve over into the new program's
// ru_maxrss, so a child exec'd straight from this (large) test process would
// report at least this process's peak. sh's own peak is a few MiB.
func forked(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "sh", append([]string{"-c", `"$0" "$@"; exit $?`, name}, args...)...)
}

// startDelay (seconds) passes between making the producer and the clock's
// start, in every mode: Fluent Bit's first flush comes one Flush interval
// (1 s by default) after the plugin's Init. Without it each mode's wall time
// took a random 0.05-0.5 s of librdkafka's start (its idempotent producer
// asks for a producer ID again only on a 500 ms timer when the first try
// found no broker up).
const startDelay = "1"

// hostStats is the C test host's summary line.
type hostStats struct {
	User   float64 `json:"cpu_user_s"`
	Sys    float64 `json:"cpu_sys_s"`
	Wall   float64 `json:"wall_s"`
	MaxRSS int64   `json:"maxrss_kb"`
}

// runHost runs the C test host (as hostrun.Run does, but forked through sh)
// with plugin on the chunk file, one instance with Workers workers.
func runHost(b *testing.B, plugin, bootstrap, topic string, workers int, in input, extra ...[2]string) result {
	b.Helper()
	host := hostrun.BuildHost(b)
	confFile := hostrun.WriteConf(b, b.TempDir(), hostrun.Options{Instances: []hostrun.Instance{{
		Keys: append([][2]string{
			{"Brokers", bootstrap}, {"Topics", topic},
			{"Workers", strconv.Itoa(workers)}, {"Retry_Limit", "no_limits"},
			{"Chunk_Copy", "off"}, // each chunk in place, as Fluent Bit passes its buffer
		}, extra...),
		ChunkFile: in.chunkFile,
	}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := forked(ctx, host, "-q", "-d", startDelay, "-p", plugin, "-c", confFile)
	cmd.Env = append(os.Environ(), hostrun.StaticTLSTunable, "GODEBUG=gctrace=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("host: %v; stderr tail:\n%s", err, hostrun.Tail(stderr.String(), 30))
	}
	var st hostStats
	var inst []hostrun.InstanceStats
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Bytes()
		var err error
		switch {
		case bytes.Contains(line, []byte(`"instance"`)):
			var s hostrun.InstanceStats
			err = json.Unmarshal(line, &s)
			inst = append(inst, s)
		case bytes.Contains(line, []byte(`"cpu_user_s"`)):
			err = json.Unmarshal(line, &st)
		}
		if err != nil {
			b.Fatalf("bad host line %q: %v", line, err)
		}
	}
	if len(inst) != 1 || st.Wall == 0 {
		b.Fatalf("host printed no stats; stdout:\n%s\nstderr tail:\n%s", stdout.String(), hostrun.Tail(stderr.String(), 30))
	}
	s := inst[0]
	if s.OK != int64(in.chunks) || s.Error+s.Dropped > 0 {
		b.Fatalf("host: %d of %d chunks OK, %d retries, %d errors, %d dropped; stderr tail:\n%s",
			s.OK, in.chunks, s.Retry, s.Error, s.Dropped, hostrun.Tail(stderr.String(), 30))
	}
	note := ""
	if s.Retry > 0 {
		note = fmt.Sprintf("%d retries", s.Retry)
	}
	gcs := 0
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "gc ") {
			gcs++
		}
	}
	return result{records: in.records, wall: st.Wall, user: st.User, sys: st.Sys, maxRSSKB: st.MaxRSS,
		csw: contextSwitches(cmd.ProcessState), gcs: gcs, goMallocs: -1, note: note}
}

// floorOut is test/cmd/floor's JSON line.
type floorOut struct {
	Records   int64   `json:"records"`
	Delivered int64   `json:"delivered"`
	Failed    int64   `json:"failed"`
	WallS     float64 `json:"wall_s"`
	GoMallocs uint64  `json:"go_mallocs"`
	GoGCs     int     `json:"go_gcs"`
	MaxRSSKB  int64   `json:"maxrss_kb"`
}

// runFloor runs the floor program in its own process. CPU is the process's
// (and its sh's) user+sys time; the peak RSS is the one floor reports of
// itself (the rusage of sh, which exec'd from this process, carries this
// process's peak).
func runFloor(b *testing.B, floor, mode, bootstrap, topic string, in input) result {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := forked(ctx, floor, "-mode", mode, "-delay", startDelay+"s", "-brokers", bootstrap, "-topic", topic, "-values", in.valuesFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("floor -mode %s: %v\n%s%s", mode, err, stdout.String(), hostrun.Tail(stderr.String(), 30))
	}
	var out floorOut
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil {
		b.Fatalf("floor -mode %s: bad output %q: %v", mode, stdout.String(), err)
	}
	if out.Records != in.records || out.Delivered != in.records {
		b.Fatalf("floor -mode %s: %d records read, %d delivered, %d failed; want %d", mode, out.Records, out.Delivered, out.Failed, in.records)
	}
	ps := cmd.ProcessState
	return result{records: out.Records, wall: out.WallS, user: ps.UserTime().Seconds(), sys: ps.SystemTime().Seconds(),
		maxRSSKB: out.MaxRSSKB, csw: contextSwitches(ps), gcs: out.GoGCs, goMallocs: float64(out.GoMallocs) / float64(out.Records)}
}

// contextSwitches is the process's (and its sh's) context switches.
func contextSwitches(ps *os.ProcessState) int64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return ru.Nvcsw + ru.Nivcsw
}

// countMessages returns how many messages topic holds (high minus low
// watermark, summed over its partitions).
func countMessages(b *testing.B, bootstrap, topic string) int64 {
	b.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "bench-count"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var n int64
	for p := int32(0); p < partitions; p++ {
		lo, hi, err := c.QueryWatermarkOffsets(topic, p, 30000)
		if err != nil {
			b.Fatalf("watermarks of %s/%d: %v", topic, p, err)
		}
		n += hi - lo
	}
	return n
}

// BenchmarkEndToEnd is `make bench`'s end-to-end part; run it once
// (-benchtime 1x).
func BenchmarkEndToEnd(b *testing.B) {
	records := envInt(b, "GOKAFKA_BENCH_RECORDS", 1_000_000)
	rounds := envInt(b, "GOKAFKA_BENCH_ROUNDS", 3)
	root := fixture.RepoRoot(b)
	dir := filepath.Join(root, "build", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	in := prepare(b, dir, records)
	bootstrap := kafkatest.Bootstrap(b)
	plugin := hostrun.BuildPlugin(b, ".", "build/bench/out_gokafka.so")
	noop := hostrun.BuildPlugin(b, "test/bench/noop", "build/bench/noop.so")
	floor := buildFloor(b, root)

	messages := func(topic string) int64 { return countMessages(b, bootstrap, topic) }
	batchRecords := func(topic string) int64 { return countBatchRecords(b, bootstrap, topic) }
	batchMode := [2]string{"Message_Mode", "batch"}
	modes := []struct {
		name  string
		count func(topic string) int64 // the records in the topic; nil: sends nothing
		run   func(topic string) result
	}{
		{"floor-thin", messages, func(t string) result { return runFloor(b, floor, "thin", bootstrap, t, in) }},
		{"floor-ckg", messages, func(t string) result { return runFloor(b, floor, "ckg", bootstrap, t, in) }},
		{"record-workers0", messages, func(t string) result { return runHost(b, plugin, bootstrap, t, 0, in) }},
		{"record-workers2", messages, func(t string) result { return runHost(b, plugin, bootstrap, t, 2, in) }},
		{"batch-workers0", batchRecords, func(t string) result { return runHost(b, plugin, bootstrap, t, 0, in, batchMode) }},
		{"batch-workers2", batchRecords, func(t string) result { return runHost(b, plugin, bootstrap, t, 2, in, batchMode) }},
		{"otlp-workers0", messages, func(t string) result {
			return runHost(b, plugin, bootstrap, t, 0, in, [2]string{"Format", "otlp_proto"})
		}},
		{"host-noop", nil, func(t string) result { return runHost(b, noop, bootstrap, t, 0, in) }},
	}
	var log strings.Builder
	logf := func(format string, args ...any) {
		fmt.Printf(format, args...)
		fmt.Fprintf(&log, format, args...)
	}
	logf("machine: %s; load average at start %s\n", machine(), loadavg())
	all := map[string][]result{}
	tag := fmt.Sprintf("%08x", rand.Uint32())
	// Warm the broker up (JIT, first topics, producer ids) before measuring.
	warm := "bench-warmup-" + tag
	kafkatest.CreateTopic(b, bootstrap, warm, partitions)
	runFloor(b, floor, "thin", bootstrap, warm, in)
	for round := 1; round <= rounds; round++ {
		for _, m := range modes {
			topic := fmt.Sprintf("bench-%s-%s-%d", m.name, tag, round)
			if m.count != nil {
				kafkatest.CreateTopic(b, bootstrap, topic, partitions)
			}
			busy0, total0 := machineCPU()
			r := m.run(topic)
			busy1, total1 := machineCPU()
			r.mode = m.name
			if total1 > total0 {
				r.busy = (busy1 - busy0) / (total1 - total0)
			}
			if m.count != nil {
				if n := m.count(topic); n != in.records {
					b.Fatalf("%s: topic %s holds %d records, want %d", m.name, topic, n, in.records)
				}
			}
			logf("round %d %-16s %9.0f records/s %6.3f CPU µs/record (%5.3f sys) %6.1f MiB peak RSS %6d ctx switches %3d GCs, machine %3.0f%% busy %s\n",
				round, m.name, r.recordsPerSec(), r.cpuPerRecord(), r.sysPerRecord(), r.rssMiB(), r.csw, r.gcs, 100*r.busy, r.note)
			all[m.name] = append(all[m.name], r)
		}
	}
	logf("load average at end %s\n", loadavg())

	med, best, spread := medianRounds(all)
	thin := med["floor-thin"]
	chunkMiB := float64(in.chunkBytes) / (1 << 20)
	var t strings.Builder
	fmt.Fprintf(&t, "%d records (%.0f B JSON values, %d chunks of ~256 KiB, %.0f MiB), %d partitions, one local broker; "+
		"per mode the round with the median CPU/record of %d\n\n", in.records, float64(in.valueBytes)/float64(in.records), in.chunks, chunkMiB, partitions, rounds)
	fmt.Fprintf(&t, "| mode | records/s | CPU µs/record | (range) | sys µs/record | peak RSS MiB | RSS − host-noop | ctx switches / 1k records | Go GCs | Go allocs/record | records/s ÷ thin | CPU ÷ thin | RSS ÷ thin |\n")
	fmt.Fprintf(&t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	noopR := med["host-noop"]
	for _, m := range modes {
		r := med[m.name]
		rssNet, allocs := "", ""
		if strings.HasPrefix(m.name, "record") {
			rssNet = fmt.Sprintf("%.1f", r.rssMiB()-noopR.rssMiB())
		}
		if r.goMallocs >= 0 {
			allocs = fmt.Sprintf("%.2f", r.goMallocs)
		}
		fmt.Fprintf(&t, "| %s | %.0f | %.3f | %s | %.3f | %.1f | %s | %.1f | %d | %s | %.2f | %.2f | %.2f |\n",
			m.name, r.recordsPerSec(), r.cpuPerRecord(), spread[m.name], r.sysPerRecord(), r.rssMiB(), rssNet,
			float64(r.csw)/float64(r.records)*1000, r.gcs, allocs,
			r.recordsPerSec()/thin.recordsPerSec(), r.cpuPerRecord()/thin.cpuPerRecord(), r.rssMiB()/thin.rssMiB())
	}
	w0, w2, ckg := med["record-workers0"], med["record-workers2"], med["floor-ckg"]
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(&t, "\nTargets (issue 10):\n")
	fmt.Fprintf(&t, "- record mode CPU/record ≤ 1.3x the thin floor: Workers 0 %.2fx, Workers 2 %.2fx: %s\n",
		w0.cpuPerRecord()/thin.cpuPerRecord(), w2.cpuPerRecord()/thin.cpuPerRecord(),
		verdict(max(w0.cpuPerRecord(), w2.cpuPerRecord()) <= 1.3*thin.cpuPerRecord()))
	fmt.Fprintf(&t, "- record mode below the confluent-kafka-go floor (%.3f µs): Workers 0 %.3f, Workers 2 %.3f: %s\n",
		ckg.cpuPerRecord(), w0.cpuPerRecord(), w2.cpuPerRecord(), verdict(max(w0.cpuPerRecord(), w2.cpuPerRecord()) < ckg.cpuPerRecord()))
	fmt.Fprintf(&t, "- Workers 2 ≥ 1.5x the records/s of Workers 0: %.2fx: %s\n",
		w2.recordsPerSec()/w0.recordsPerSec(), verdict(w2.recordsPerSec() >= 1.5*w0.recordsPerSec()))
	bw0 := med["batch-workers0"]
	fmt.Fprintf(&t, "- batch mode ≥ 3x the records/s of record mode (Workers 0): %.2fx: %s\n",
		bw0.recordsPerSec()/w0.recordsPerSec(), verdict(bw0.recordsPerSec() >= 3*w0.recordsPerSec()))
	fmt.Fprintf(&t, "- batch mode under half the CPU/record of record mode (Workers 0): %.2fx: %s\n",
		bw0.cpuPerRecord()/w0.cpuPerRecord(), verdict(bw0.cpuPerRecord() < 0.5*w0.cpuPerRecord()))
	fmt.Fprintf(&t, "- peak RSS of the host process ≤ Buffer_Memory + 64 MiB = 128 MiB: Workers 0 %.1f, Workers 2 %.1f MiB: %s "+
		"(the host alone, host-noop: %.1f MiB)\n",
		w0.rssMiB(), w2.rssMiB(), verdict(max(w0.rssMiB(), w2.rssMiB()) <= 128), noopR.rssMiB())
	cpuRatio := func(a, b string) float64 { return best[a].cpuPerRecord() / best[b].cpuPerRecord() }
	fmt.Fprintf(&t, "\nThe same ratios between each mode's best round (its lowest CPU/record, the least disturbed on a shared machine): "+
		"record mode %.2fx (Workers 0) and %.2fx (Workers 2) the thin floor; batch mode %.2fx the CPU/record of record mode (Workers 0).\n",
		cpuRatio("record-workers0", "floor-thin"), cpuRatio("record-workers2", "floor-thin"), cpuRatio("batch-workers0", "record-workers0"))
	fmt.Fprintf(&t, "\nThe C test host alone (host-noop: the mapped chunk file, each chunk passed in place, the Go runtime) costs %.3f µs/record; "+
		"net of it record mode costs %.3f (Workers 0) and %.3f (Workers 2) µs/record, %.2fx and %.2fx the thin floor.\n",
		noopR.cpuPerRecord(), w0.cpuPerRecord()-noopR.cpuPerRecord(), w2.cpuPerRecord()-noopR.cpuPerRecord(),
		(w0.cpuPerRecord()-noopR.cpuPerRecord())/thin.cpuPerRecord(), (w2.cpuPerRecord()-noopR.cpuPerRecord())/thin.cpuPerRecord())
	fmt.Print("\n" + t.String())
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(t.String()+"\n```\n"+log.String()+"```\n"), 0o644); err != nil {
		b.Error(err)
	}

	for _, m := range modes {
		r := med[m.name]
		b.Run(m.name, func(b *testing.B) {
			b.ReportMetric(r.recordsPerSec(), "records/s")
			b.ReportMetric(r.cpuPerRecord(), "cpu-µs/record")
			b.ReportMetric(r.rssMiB(), "peak-RSS-MiB")
			b.ReportMetric(r.recordsPerSec()/thin.recordsPerSec(), "records/s÷thin")
			b.ReportMetric(r.cpuPerRecord()/thin.cpuPerRecord(), "cpu÷thin")
			b.ReportMetric(r.rssMiB()/thin.rssMiB(), "RSS÷thin")
		})
	}
}

// medianRounds returns, of each mode's rounds, the one with the median CPU
// per record, the one with the lowest, and the range of CPU per record.
func medianRounds(all map[string][]result) (med, best map[string]result, spread map[string]string) {
	med, best, spread = map[string]result{}, map[string]result{}, map[string]string{}
	for name, rs := range all {
		rs = slices.Clone(rs)
		slices.SortFunc(rs, func(x, y result) int { return cmp.Compare(x.cpuPerRecord(), y.cpuPerRecord()) })
		med[name], best[name] = rs[len(rs)/2], rs[0]
		spread[name] = fmt.Sprintf("%.3f–%.3f", rs[0].cpuPerRecord(), rs[len(rs)-1].cpuPerRecord())
	}
	return med, best, spread
}

// countBatchRecords counts the records in a batch mode topic's messages,
// each value decompressed and read as gokafka-batch reads it.
func countBatchRecords(b *testing.B, bootstrap, topic string) int64 {
	var n int64
	for _, m := range kafkatest.ConsumeAll(b, bootstrap, topic, 2*time.Minute) {
		contentType := ""
		for _, h := range m.Headers {
			if h.Key == batch.ContentTypeHeader {
				contentType = string(h.Value)
			}
		}
		if err := batch.Records(m.Value, contentType, func([]byte) error { n++; return nil }); err != nil {
			b.Fatalf("message at %v: %v", m.TopicPartition, err)
		}
	}
	return n
}

// machine describes the CPUs.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s, %s", runtime.NumCPU(), model, runtime.Version())
}

// loadavg is the 1, 5 and 15 minute load averages.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
