package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/test/benchdata"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
)

// fluentBitEnv names the fluent-bit binary BenchmarkFluentBit runs. The
// project never builds Fluent Bit: bring one built with its kafka output.
const fluentBitEnv = "GOKAFKA_FLUENT_BIT"

// fluentBitBinary is $GOKAFKA_FLUENT_BIT; the benchmark is skipped without
// it (make bench-fluent-bit refuses to run without it).
func fluentBitBinary(b *testing.B) string {
	path := os.Getenv(fluentBitEnv)
	if path == "" {
		b.Skipf("%s is not set: it names a fluent-bit binary built with its kafka output", fluentBitEnv)
	}
	return path
}

// fluentBitOutput is one [OUTPUT] section BenchmarkFluentBit compares.
type fluentBitOutput struct {
	name  string
	keys  [][2]string        // after Name, Match; Brokers and Topics are added for Kafka
	count func(string) int64 // the records in the topic; nil for the null output
	so    bool               // the output is gokafka's, loaded with -e
}

// fluentBitScenario is a tail [INPUT]'s keys beside its file.
type fluentBitScenario struct {
	name, doc string
	input     [][2]string
}

// BenchmarkFluentBit runs the real Fluent Bit ($GOKAFKA_FLUENT_BIT) on one
// container log file (tail from its head, the docker parser, Exit_On_Eof)
// into one local broker, once per scenario and output per round, rounds
// interleaved. The outputs: null (what Fluent Bit costs by itself), its
// built-in kafka output with its defaults and with gokafka's producer
// settings (lz4, idempotence, linger.ms 1, murmur2_random), and gokafka in
// record and in batch mode. The scenarios: "steady", with Mem_Buf_Limit
// 32MB, where tail reads only as fast as Fluent Bit's chunks leave memory;
// and "backlog", without it, where the output drains the whole file as fast
// as it can. CPU is the process's; peak RSS its VmHWM; records/s counts to
// the broker's append time of the topic's last message (LogAppendTime), as
// Fluent Bit's exit waits whole seconds. Each Kafka output's topic must hold
// every record, or the count is reported (the built-in's) or the benchmark
// fails (gokafka's). An output's own CPU is its CPU less the null output's.
//
//	GOKAFKA_FLUENT_BIT     the fluent-bit binary (required)
//	GOKAFKA_BENCH_RECORDS  records (default 1000000)
//	GOKAFKA_BENCH_ROUNDS   rounds (default 3)
//	GOKAFKA_BROKERS        an existing cluster instead of a broker of its own
func BenchmarkFluentBit(b *testing.B) {
	fluentBit := fluentBitBinary(b)
	records := envInt(b, "GOKAFKA_BENCH_RECORDS", 1_000_000)
	rounds := envInt(b, "GOKAFKA_BENCH_ROUNDS", 3)
	root := fixture.RepoRoot(b)
	dir := filepath.Join(root, "build", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	logFile := filepath.Join(dir, "fluent-bit-input.log")
	benchdata.Generate(b, logFile, records)
	bootstrap := kafkatest.Bootstrap(b)
	plugin := hostrun.BuildPlugin(b, ".", "build/bench/out_gokafka.so")

	messages := func(topic string) int64 { return countMessages(b, bootstrap, topic) }
	batchRecords := func(topic string) int64 { return countBatchRecords(b, bootstrap, topic) }
	outputs := []fluentBitOutput{
		{name: "null", keys: [][2]string{{"Name", "null"}}},
		{name: "kafka", keys: [][2]string{{"Name", "kafka"}}, count: messages},
		{name: "kafka-lz4-idempotent", keys: [][2]string{{"Name", "kafka"},
			{"rdkafka.compression.type", "lz4"}, {"rdkafka.enable.idempotence", "true"},
			{"rdkafka.linger.ms", "1"}, {"rdkafka.partitioner", "murmur2_random"}}, count: messages},
		{name: "gokafka", keys: [][2]string{{"Name", "gokafka"}}, count: messages, so: true},
		{name: "gokafka-batch", keys: [][2]string{{"Name", "gokafka"}, {"Message_Mode", "batch"}}, count: batchRecords, so: true},
	}
	file := [][2]string{{"Path", logFile}, {"Read_from_Head", "On"}, {"Exit_On_Eof", "On"}}
	scenarios := []fluentBitScenario{
		{"steady", "Mem_Buf_Limit 32MB", append(slices.Clone(file), [2]string{"Mem_Buf_Limit", "32MB"})},
		{"backlog", "no Mem_Buf_Limit", file},
	}
	var log strings.Builder
	logf := func(format string, args ...any) {
		fmt.Printf(format, args...)
		fmt.Fprintf(&log, format, args...)
	}
	logf("machine: %s; %s; load average at start %s\n", machine(), fluentBitVersion(b, fluentBit), loadavg())
	all := map[string][]result{} // by scenario/output
	lost := map[string]int64{}
	tag := fmt.Sprintf("%08x", rand.Uint32())
	for round := 0; round <= rounds; round++ { // round 0 warms the broker and the page cache up
		for _, sc := range scenarios {
			for _, o := range outputs {
				key := sc.name + "/" + o.name
				topic := fmt.Sprintf("fb-%s-%s-%s-%d", sc.name, o.name, tag, round)
				if o.count != nil {
					kafkatest.CreateTopicConfig(b, bootstrap, topic, partitions, map[string]string{"message.timestamp.type": "LogAppendTime"})
				}
				r := runFluentBit(b, fluentBit, plugin, sc.input, bootstrap, topic, o)
				r.mode, r.records = key, int64(records)
				if o.count != nil {
					if n := o.count(topic); n != r.records {
						if o.so {
							b.Fatalf("%s: topic %s holds %d records, want %d", key, topic, n, records)
						}
						r.note = fmt.Sprintf("topic holds %d records of %d", n, records)
						lost[key] += r.records - n
					}
				}
				if round == 0 {
					continue
				}
				logf("round %d %-30s %9.0f records/s %6.3f CPU µs/record (%5.3f sys) %6.1f MiB peak RSS %s\n",
					round, key, r.recordsPerSec(), r.cpuPerRecord(), r.sysPerRecord(), r.rssMiB(), r.note)
				all[key] = append(all[key], r)
			}
		}
	}
	logf("load average at end %s\n", loadavg())

	med, _, spread := medianRounds(all)
	var t strings.Builder
	fmt.Fprintf(&t, "%d docker log lines through Fluent Bit (tail from the file's head, docker parser, Exit_On_Eof) into %d partitions "+
		"of one local broker; per scenario and output the round with the median CPU/record of %d\n", records, partitions, rounds)
	for _, sc := range scenarios {
		null, kafka := med[sc.name+"/null"], med[sc.name+"/kafka"]
		own := func(r result) float64 { return r.cpuPerRecord() - null.cpuPerRecord() }
		fmt.Fprintf(&t, "\n%s (%s):\n\n", sc.name, sc.doc)
		fmt.Fprintf(&t, "| output | records/s | CPU µs/record | (range) | own CPU µs/record (− null) | peak RSS MiB | records lost (all rounds) | records/s ÷ kafka | own CPU ÷ kafka | RSS ÷ kafka |\n")
		fmt.Fprintf(&t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, o := range outputs {
			key := sc.name + "/" + o.name
			r := med[key]
			rate, ratios := "", "| | |"
			if o.count != nil {
				rate = fmt.Sprintf("%.0f", r.recordsPerSec())
				ratios = fmt.Sprintf("%.2f | %.2f | %.2f |", r.recordsPerSec()/kafka.recordsPerSec(), own(r)/own(kafka), r.rssMiB()/kafka.rssMiB())
			}
			fmt.Fprintf(&t, "| %s | %s | %.3f | %s | %.3f | %.1f | %d | %s\n",
				o.name, rate, r.cpuPerRecord(), spread[key], own(r), r.rssMiB(), lost[key], ratios)
		}
		for _, o := range outputs {
			r := med[sc.name+"/"+o.name]
			b.Run(sc.name+"/"+o.name, func(b *testing.B) {
				b.ReportMetric(r.recordsPerSec(), "records/s")
				b.ReportMetric(r.cpuPerRecord(), "cpu-µs/record")
				b.ReportMetric(own(r), "own-cpu-µs/record")
				b.ReportMetric(r.rssMiB(), "peak-RSS-MiB")
			})
		}
	}
	fmt.Print("\n" + t.String())
	if err := os.WriteFile(filepath.Join(dir, "fluent-bit.md"), []byte(t.String()+"\n```\n"+log.String()+"```\n"), 0o644); err != nil {
		b.Error(err)
	}
}

// runFluentBit runs fluent-bit with a tail input of the input keys and
// output o into topic, and returns its wall time (to the topic's last
// append, for a Kafka output), CPU and peak RSS.
func runFluentBit(b *testing.B, fluentBit, plugin string, input [][2]string, bootstrap, topic string, o fluentBitOutput) result {
	b.Helper()
	confFile := writeFluentBitConf(b, b.TempDir(), [][2]string{{"Flush", "1"}, {"Grace", "30"}}, input, o, bootstrap, topic)
	cmd, out := fluentBitCommand(fluentBit, plugin, confFile, o)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// ru_maxrss would carry this process's peak over (Linux keeps the peak of
	// the image that called execve): read the new image's own, VmHWM, until
	// it exits.
	var peakKB int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Minute)
	for {
		select {
		case err := <-exited:
			if err != nil {
				b.Fatalf("fluent-bit with %s: %v; its output's tail:\n%s", o.name, err, hostrun.Tail(out.String(), 30))
			}
			end := time.Now()
			if o.count != nil {
				end = lastAppend(b, bootstrap, topic)
			}
			ps := cmd.ProcessState
			return result{wall: end.Sub(start).Seconds(), user: ps.UserTime().Seconds(), sys: ps.SystemTime().Seconds(),
				maxRSSKB: peakKB, csw: contextSwitches(ps), goMallocs: -1}
		case <-tick.C:
			peakKB = max(peakKB, vmHWM(cmd.Process.Pid))
		case <-timeout:
			cmd.Process.Kill()
			<-exited
			b.Fatalf("fluent-bit with %s ran for 10 minutes; its output's tail:\n%s", o.name, hostrun.Tail(out.String(), 30))
		}
	}
}

// lastAppend is when the broker appended topic's last message: its
// timestamp, the topic's message.timestamp.type being LogAppendTime.
func lastAppend(b *testing.B, bootstrap, topic string) time.Time {
	b.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "bench-last", "enable.partition.eof": true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var assign []kafka.TopicPartition
	for p := range int32(partitions) {
		assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetTail(1)})
	}
	if err := c.Assign(assign); err != nil {
		b.Fatal(err)
	}
	var last time.Time
	done := map[int32]bool{}
	for deadline := time.Now().Add(time.Minute); len(done) < partitions; {
		if time.Now().After(deadline) {
			b.Fatalf("the last messages of %s: %d of %d partitions read in a minute", topic, len(done), partitions)
		}
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			if e.TimestampType != kafka.TimestampLogAppendTime {
				b.Fatalf("%s: a message's timestamp is of type %v, want LogAppendTime", topic, e.TimestampType)
			}
			if e.Timestamp.After(last) {
				last = e.Timestamp
			}
			done[e.TopicPartition.Partition] = true
		case kafka.PartitionEOF:
			done[e.Partition] = true
		case kafka.Error:
			b.Fatalf("the last messages of %s: %v", topic, e)
		}
	}
	return last
}

// vmHWM is the peak resident memory (KiB) of process pid, 0 once it is gone.
func vmHWM(pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(status), "VmHWM:")
	kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.SplitN(rest, "\n", 2)[0], "kB")), 10, 64)
	return kb
}

// writeFluentBitConf writes dir/fluent-bit.conf: a [SERVICE] section with
// service's keys, a tail [INPUT] with the docker parser and input's keys, and
// output o, into topic when it is a Kafka output.
func writeFluentBitConf(b *testing.B, dir string, service, input [][2]string, o fluentBitOutput, bootstrap, topic string) string {
	b.Helper()
	var conf strings.Builder
	section := func(name string, keys [][2]string) {
		fmt.Fprintf(&conf, "[%s]\n", name)
		for _, kv := range keys {
			fmt.Fprintf(&conf, "    %s %s\n", kv[0], kv[1])
		}
	}
	section("SERVICE", append([][2]string{{"Log_Level", "warn"},
		{"Parsers_File", filepath.Join(fixture.RepoRoot(b), "examples", "parsers.conf")}}, service...))
	section("INPUT", append([][2]string{{"Name", "tail"}, {"Parser", "docker"}}, input...))
	keys := append(slices.Clone(o.keys), [2]string{"Match", "*"})
	if o.count != nil {
		keys = append(keys, [2]string{"Brokers", bootstrap}, [2]string{"Topics", topic})
	}
	section("OUTPUT", keys)
	path := filepath.Join(dir, "fluent-bit.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// fluentBitCommand is fluent-bit with confFile, gokafka loaded when o is
// its; both output streams go to out.
func fluentBitCommand(fluentBit, plugin, confFile string, o fluentBitOutput) (cmd *exec.Cmd, out *bytes.Buffer) {
	args := []string{"-c", confFile}
	if o.so {
		args = append(args, "-e", plugin)
	}
	cmd = exec.Command(fluentBit, args...)
	cmd.Env = append(os.Environ(), hostrun.StaticTLSTunable)
	out = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, out
}

// fluentBitVersion is the first line fluent-bit --version prints.
func fluentBitVersion(b *testing.B, fluentBit string) string {
	b.Helper()
	out, err := exec.Command(fluentBit, "--version").Output()
	if err != nil {
		b.Fatalf("%s --version: %v", fluentBit, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return line
}

// BenchmarkFluentBitRestartInOutage compares what Fluent Bit's built-in
// kafka output and gokafka deliver of records read while Kafka is down, when
// Fluent Bit is restarted before Kafka comes back: the loss the built-in's
// early acknowledgement causes. Per output, with filesystem buffering and a
// tail DB kept across the restart, and Retry_Limit no_limits: the broker
// stopped, Fluent Bit reads the file, runs 10 s and is stopped; the broker
// started, Fluent Bit runs again on the same storage until the topic holds
// every record or a minute passes. It reports the records the topic holds
// and fails unless gokafka's holds every one.
//
//	GOKAFKA_FLUENT_BIT     the fluent-bit binary (required)
func BenchmarkFluentBitRestartInOutage(b *testing.B) {
	fluentBit := fluentBitBinary(b)
	const records = 10_000
	dir := b.TempDir()
	logFile := filepath.Join(dir, "input.log")
	benchdata.Generate(b, logFile, records)
	broker := kafkatest.StartBroker(b, kafkatest.Options{})
	bootstrap := broker.Bootstrap()
	plugin := hostrun.BuildPlugin(b, ".", "build/bench/out_gokafka.so")
	messages := func(topic string) int64 { return countMessages(b, bootstrap, topic) }
	outputs := []fluentBitOutput{
		{name: "kafka", keys: [][2]string{{"Name", "kafka"}, {"Retry_Limit", "no_limits"}}, count: messages},
		{name: "gokafka", keys: [][2]string{{"Name", "gokafka"}, {"Retry_Limit", "no_limits"}}, count: messages, so: true},
	}
	held := map[string]int64{}
	for _, o := range outputs {
		topic := fmt.Sprintf("fb-outage-%s-%08x", o.name, rand.Uint32())
		kafkatest.CreateTopic(b, bootstrap, topic, partitions)
		state := filepath.Join(dir, o.name)
		if err := os.MkdirAll(state, 0o755); err != nil {
			b.Fatal(err)
		}
		confFile := writeFluentBitConf(b, state,
			[][2]string{{"Flush", "1"}, {"Grace", "5"}, {"storage.path", filepath.Join(state, "storage")}},
			[][2]string{{"Path", logFile}, {"Read_from_Head", "On"}, {"DB", filepath.Join(state, "tail.db")}, {"storage.type", "filesystem"}},
			o, bootstrap, topic)

		broker.Stop()
		runUntil(b, fluentBit, plugin, confFile, o, func() bool { time.Sleep(10 * time.Second); return true })
		broker.Start()
		deadline := time.Now().Add(time.Minute)
		runUntil(b, fluentBit, plugin, confFile, o, func() bool {
			time.Sleep(time.Second)
			return o.count(topic) >= records || time.Now().After(deadline)
		})
		held[o.name] = o.count(topic)
		fmt.Printf("%s: the topic holds %d of %d records read while Kafka was down, after a restart of Fluent Bit\n", o.name, held[o.name], records)
	}
	if held["gokafka"] != records {
		b.Fatalf("gokafka: the topic holds %d records, want %d", held["gokafka"], records)
	}
	for _, o := range outputs {
		n := held[o.name]
		b.Run(o.name, func(b *testing.B) { b.ReportMetric(float64(n), "records-delivered") })
	}
}

// runUntil runs fluent-bit with confFile, calling done again and again
// while it runs, until done returns true; then it stops it with SIGTERM, as a
// service manager does, and waits for it to exit.
func runUntil(b *testing.B, fluentBit, plugin, confFile string, o fluentBitOutput, done func() bool) {
	b.Helper()
	cmd, out := fluentBitCommand(fluentBit, plugin, confFile, o)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for !done() {
		select {
		case err := <-exited:
			b.Fatalf("fluent-bit with %s exited early: %v; its output's tail:\n%s", o.name, err, hostrun.Tail(out.String(), 30))
		default:
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			b.Fatalf("fluent-bit with %s: %v; its output's tail:\n%s", o.name, err, hostrun.Tail(out.String(), 30))
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-exited
		b.Fatalf("fluent-bit with %s did not exit within 2 minutes of SIGTERM; its output's tail:\n%s", o.name, hostrun.Tail(out.String(), 30))
	}
}
