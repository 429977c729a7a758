package hostrun

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gokafka/gokafka/test/fixture"
)

// probeOut is one line the probe plugin appends to its Out file at Exit.
type probeOut struct {
	ID            string            `json:"id"`
	InitSeq       int               `json:"init_seq"`
	ExitSeq       int               `json:"exit_seq"`
	Keys          map[string]string `json:"keys"`
	Flushes       int64             `json:"flushes"`
	Bytes         int64             `json:"bytes"`
	Attempts      map[string]int    `json:"attempts"`
	OK            map[string]int    `json:"ok"`
	Tags          []string          `json:"tags"`
	Threads       int               `json:"threads"`
	MaxConcurrent int64             `json:"max_concurrent"`
}

func probePlugin(t *testing.T) string {
	return BuildPlugin(t, "test/host/probe", "build/test/probe.so")
}

// chunks returns n distinct chunks of 10 records each.
func chunks(prefix string, n int) [][]byte {
	var out [][]byte
	for k := 0; k < n; k++ {
		var recs []fixture.Record
		for i := 0; i < 10; i++ {
			recs = append(recs, fixture.Record{Time: time.Unix(1700000000, int64(k*10+i)),
				Body: []fixture.KV{{Key: "log", Value: fmt.Sprintf("%s chunk %d line %d", prefix, k, i)}}})
		}
		out = append(out, fixture.EncodeChunks(recs, fixture.ChunkOptions{})...)
	}
	return out
}

func hashes(cs [][]byte) (map[string]int, int64) {
	m := map[string]int{}
	var n int64
	for _, c := range cs {
		sum := sha256.Sum256(c)
		m[hex.EncodeToString(sum[:])]++
		n += int64(len(c))
	}
	return m, n
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("probe output missing: %v", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func readOuts(t *testing.T, path string) []probeOut {
	t.Helper()
	var outs []probeOut
	for _, l := range readLines(t, path) {
		var o probeOut
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	return outs
}

// run runs the probe with one [OUTPUT] per keys entry (Out set per instance)
// and returns the result, the event log and each instance's Out path.
func run(t *testing.T, o Options) (Result, []string, []string) {
	t.Helper()
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	o.Plugin = probePlugin(t)
	o.Name = "probe"
	o.Env = append(o.Env, "PROBE_EVENTS="+events)
	var outs []string
	for i := range o.Instances {
		out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
		outs = append(outs, out)
		o.Instances[i].Keys = append([][2]string{{"Id", string(rune('a' + i))}, {"Out", out}}, o.Instances[i].Keys...)
	}
	res := Run(t, o)
	var ev []string
	if _, err := os.Stat(events); err == nil {
		ev = readLines(t, events)
	}
	return res, ev, outs
}

func wantEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

// checkExact checks that every chunk was returned FLB_OK exactly once in total.
func checkExact(t *testing.T, cs [][]byte, outs ...probeOut) {
	t.Helper()
	want, _ := hashes(cs)
	got := map[string]int{}
	for _, o := range outs {
		for h, n := range o.OK {
			got[h] += n
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %d distinct chunks, want each of %d exactly once", len(got), len(want))
	}
}

// checkAccounted checks that every chunk dispatched to each instance ended
// one way: OK, dropped, abandoned or requeued.
func checkAccounted(t *testing.T, res Result) {
	t.Helper()
	for _, s := range res.Instances {
		if s.Chunks != s.OK+s.Dropped+s.Abandoned+s.Requeued {
			t.Fatalf("instance %d gen %d: chunks != ok+dropped+abandoned+requeued: %+v", s.Instance, s.Gen, s)
		}
	}
}

func TestLifecycleTwoInstances(t *testing.T) {
	ca, cb := chunks("a", 20), chunks("b", 25)
	res, ev, outs := run(t, Options{Instances: []Instance{
		{Chunks: ca},
		{Keys: [][2]string{{"Workers", "4"}, {"Tag", "app.b"}}, Chunks: cb},
	}})
	wantEvents(t, ev, "preregister 0", "register", "init a", "init b", "prerun 0", "prerun 0",
		"preexit 0", "exit a", "preexit 0", "exit b", "unregister")
	for i, n := range []int64{20, 25} {
		s := res.Instances[i]
		if s.Name != fmt.Sprintf("probe.%d", i) || s.Chunks != n || s.Flushes != n || s.OK != n || s.Dropped != 0 ||
			s.Abandoned+s.Requeued != 0 {
			t.Fatalf("instance %d stats %+v", i, s)
		}
	}
	a, b := readOuts(t, outs[0]), readOuts(t, outs[1])
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("Exit called %d and %d times, want once each", len(a), len(b))
	}
	checkExact(t, ca, a[0])
	checkExact(t, cb, b[0])
	_, bytesA := hashes(ca)
	if a[0].Bytes != bytesA || a[0].InitSeq != 1 || b[0].InitSeq != 2 {
		t.Fatalf("bytes %d (want %d), init order %d,%d", a[0].Bytes, bytesA, a[0].InitSeq, b[0].InitSeq)
	}
	if !reflect.DeepEqual(a[0].Tags, []string{"test"}) || !reflect.DeepEqual(b[0].Tags, []string{"app.b"}) {
		t.Fatalf("tags %v %v", a[0].Tags, b[0].Tags)
	}
	if res.Wall <= 0 || res.MaxRSSKB <= 0 || res.FaultHandler != "plugin" { // the Go runtime's replaced the host's
		t.Fatalf("summary %+v", res)
	}
}

func TestConfigKeys(t *testing.T) {
	consumed := []string{"workers", "WORKERS", "retry_limit", "match", "match_regex", "alias", "log_level",
		"log_suppress_interval", "host", "port", "ipv6", "tls", "tls.verify", "net.keepalive",
		"oauth2.enable", "storage.total_limit_size", "name", "chunks", "tag", "rate"}
	keys := [][2]string{
		{"Workers", "1"}, {"Retry_Limit", "3"}, {"Match", "*"}, {"Match_Regex", ".*"}, {"Alias", "x"},
		{"Log_Level", "debug"}, {"Log_Suppress_Interval", "1s"}, {"Host", "h"}, {"Port", "9"},
		{"IPv6", "off"}, {"tls", "on"}, {"tls.verify", "off"}, {"net.keepalive", "on"},
		{"oauth2.enable", "on"}, {"storage.total_limit_size", "1M"}, {"Tag", "t"}, {"Rate", "0"},
		{"Custom_Key", "Mixed Case  Value"}, {"Env_Val", "pre-${PROBE_TEST_ENV}-post"}, {"Empty_Key", ""},
		{"Dup", "first"}, {"DUP", "second"},
		{"Echo", strings.Join(consumed, ",") + ",custom_key,CUSTOM_KEY,env_val,empty_key,missing,dup,mode"},
		{"Mode", "ok"},
	}
	_, _, outs := run(t, Options{Env: []string{"PROBE_TEST_ENV=from env"},
		Instances: []Instance{{Keys: keys, Chunks: chunks("k", 2)}}})
	got := readOuts(t, outs[0])[0].Keys
	for _, k := range consumed {
		if got[k] != "" {
			t.Errorf("consumed key %s reached the plugin as %q", k, got[k])
		}
	}
	for k, v := range map[string]string{"custom_key": "Mixed Case  Value", "CUSTOM_KEY": "Mixed Case  Value",
		"env_val": "pre-from env-post", "empty_key": "", "missing": "", "dup": "first", "mode": "ok"} {
		if got[k] != v {
			t.Errorf("key %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestWorkersDeliverEveryChunk(t *testing.T) {
	for _, workers := range []int{0, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			cs := chunks("w", 60)
			res, _, outs := run(t, Options{Instances: []Instance{{Chunks: cs,
				Keys: [][2]string{{"Workers", fmt.Sprint(workers)}, {"Delay", "10"}}}}})
			s := res.Instances[0]
			if s.Chunks != 60 || s.Flushes != 60 || s.OK != 60 || s.MaxFlushMS < 10 {
				t.Fatalf("stats %+v", s)
			}
			o := readOuts(t, outs[0])[0]
			checkExact(t, cs, o)
			_, n := hashes(cs)
			if o.Bytes != n {
				t.Fatalf("bytes %d, want %d", o.Bytes, n)
			}
			if workers == 0 && (o.Threads != 1 || o.MaxConcurrent != 1) {
				t.Fatalf("Workers 0: %d threads, %d concurrent flushes", o.Threads, o.MaxConcurrent)
			}
			if workers == 4 && (o.Threads < 2 || o.Threads > 4 || o.MaxConcurrent < 2) {
				t.Fatalf("Workers 4: %d threads, %d concurrent flushes", o.Threads, o.MaxConcurrent)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	cases := []struct {
		name                          string
		keys                          [][2]string
		flushes, ok, retry, err, drop int64
		attempts                      int
	}{
		{"retry_first", [][2]string{{"Mode", "retry_first"}}, 40, 20, 20, 0, 0, 2},
		{"retry_first_workers", [][2]string{{"Mode", "retry_first"}, {"Workers", "3"}}, 40, 20, 20, 0, 0, 2},
		{"retry_limit_2", [][2]string{{"Mode", "retry"}, {"Retry_Limit", "2"}}, 60, 0, 60, 0, 20, 3},
		{"no_retries", [][2]string{{"Mode", "retry"}, {"Retry_Limit", "no_retries"}}, 20, 0, 20, 0, 20, 1},
		{"error", [][2]string{{"Mode", "error"}}, 20, 0, 0, 20, 20, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := chunks(c.name, 20)
			res, _, outs := run(t, Options{Backoff: 5 * time.Millisecond,
				Instances: []Instance{{Keys: c.keys, Chunks: cs}}})
			s := res.Instances[0]
			if s.Flushes != c.flushes || s.OK != c.ok || s.Retry != c.retry || s.Error != c.err || s.Dropped != c.drop {
				t.Fatalf("stats %+v", s)
			}
			checkAccounted(t, res)
			o := readOuts(t, outs[0])[0]
			want, _ := hashes(cs)
			for h := range want {
				want[h] = c.attempts // the same bytes every time: same hash
			}
			if !reflect.DeepEqual(o.Attempts, want) {
				t.Fatalf("attempts per chunk %v, want %d each", o.Attempts, c.attempts)
			}
		})
	}
}

func TestHotReload(t *testing.T) {
	ca, cb := chunks("ra", 30), chunks("rb", 30)
	res, ev, outs := run(t, Options{ReloadAfter: 10, Instances: []Instance{
		// Chunks arrive at 100/s (every ready chunk is dispatched at once,
		// as in Fluent Bit) and flushes take 10 ms: neither instance ends
		// before the reload, even when the engine thread stalls.
		{Chunks: ca, Keys: [][2]string{{"Delay", "10"}, {"Rate", "100"}}},
		{Chunks: cb, Keys: [][2]string{{"Workers", "2"}, {"Delay", "10"}, {"Rate", "100"}}},
	}})
	wantEvents(t, ev, "preregister 0", "register", "init a", "init b", "prerun 1", "prerun 1",
		"preregister 1", "register", "preexit 1", "exit a", "preexit 1", "exit b", "unregister",
		"init a", "init b", "prerun 1", "prerun 1", "preexit 0", "exit a", "preexit 0", "exit b", "unregister")
	if len(res.Instances) != 4 {
		t.Fatalf("want 2 instances x 2 generations, got %+v", res.Instances)
	}
	for i, cs := range [][][]byte{ca, cb} {
		o := readOuts(t, outs[i])
		if len(o) != 2 {
			t.Fatalf("instance %d: Exit called %d times, want 2 (old and new)", i, len(o))
		}
		checkExact(t, cs, o...)
		if s := res.Sum(i); s.OK != 30 || s.Dropped+s.Abandoned != 0 || s.Chunks-s.Requeued != 30 {
			t.Fatalf("instance %d stats %+v", i, s)
		}
		if res.Instances[2+i].Gen != 1 || res.Instances[2+i].OK == 0 {
			t.Fatalf("new instance %d flushed nothing: %+v", i, res.Instances[2+i])
		}
	}
	checkAccounted(t, res)
	if res.FaultHandler != "host" { // put back at the reload, as Fluent Bit does; the probe leaves it
		t.Fatalf("the %s's SIGSEGV handler after the reload, want the host's", res.FaultHandler)
	}
}

// TestSignalStopsWithinGrace: at SIGTERM new chunks are no longer dispatched
// (the input stops), but as in Fluent Bit every chunk already dispatched to a
// worker thread runs, after the grace if need be: chunks arrive at 400/s,
// twice what 2 workers flush, so at the signal a queue has built up that
// the grace does not drain, and shutdown takes the grace plus its flushes.
func TestSignalStopsWithinGrace(t *testing.T) {
	cs := chunks("s", 500)
	const delay, workers = 0.020, 2
	res, ev, outs := run(t, Options{SignalAfter: time.Second, Grace: time.Second,
		Instances: []Instance{{Chunks: cs, Keys: [][2]string{{"Workers", "2"}, {"Delay", "20"}, {"Rate", "400"}}}}})
	s := res.Instances[0]
	checkAccounted(t, res)
	// Nothing dispatched is lost, and what was not dispatched is not run.
	if s.Chunks >= 500 || s.OK != s.Chunks || s.Flushes != s.OK || s.Abandoned != 0 {
		t.Fatalf("stats %+v, wall %.2fs", s, res.Wall)
	}
	if !strings.Contains(res.Stderr, "task(s) queued to worker threads run before they are joined") {
		t.Fatalf("no queue left at the end of the grace; stats %+v, wall %.2fs", s, res.Wall)
	}
	// Past signal + grace (wall_s starts a little after the signal's clock),
	// and at least the flush time of everything dispatched, shared by the
	// workers; not much more.
	ideal := float64(s.OK) * delay / workers
	if res.Wall < 1.8 || res.Wall < 0.95*ideal || res.Wall > 2*ideal+2 {
		t.Fatalf("wall %.2fs for %d flushes of %.0f ms on %d workers; stats %+v", res.Wall, s.OK, delay*1000, workers, s)
	}
	if ev[len(ev)-1] != "unregister" || readOuts(t, outs[0])[0].Flushes != s.Flushes {
		t.Fatalf("events %q", ev)
	}
	if !strings.Contains(res.Stderr, "caught signal 15") {
		t.Fatalf("stderr:\n%s", res.Stderr)
	}
}

// TestSignalRunsQueuedFlushes: the reviewer's case. Two workers, flushes of
// 3 s, four chunks: each worker runs one and has one queued. SIGTERM at
// 0.5 s, grace 1 s: Fluent Bit's workers still run their queued task before
// they are joined, so all four are flushed and shutdown takes about 6 s.
func TestSignalRunsQueuedFlushes(t *testing.T) {
	cs := chunks("q", 4)
	res, ev, outs := run(t, Options{SignalAfter: 500 * time.Millisecond, Grace: time.Second,
		Instances: []Instance{{Chunks: cs, Keys: [][2]string{{"Workers", "2"}, {"Delay", "3000"}}}}})
	s := res.Instances[0]
	checkAccounted(t, res)
	if s.Chunks != 4 || s.Flushes != 4 || s.OK != 4 || s.Abandoned != 0 || res.Wall < 5.9 || res.Wall > 9 {
		t.Fatalf("stats %+v, wall %.2fs", s, res.Wall)
	}
	o := readOuts(t, outs[0])
	if len(o) != 1 || o[0].Flushes != 4 || ev[len(ev)-1] != "unregister" {
		t.Fatalf("Exit saw %+v; events %q", o, ev)
	}
	checkExact(t, cs, o[0])
}

// TestSignalWorkers0AbandonsEngineQueue: with Workers 0 the flushes wait in
// the engine thread's queue, which Fluent Bit serves during the grace only:
// after it, flb_engine_shutdown never resumes them. Flushes of 1 s, SIGTERM
// at 0.5 s, grace 1 s: the flush running when the grace ends finishes, and
// the rest are abandoned (counted, never flushed).
func TestSignalWorkers0AbandonsEngineQueue(t *testing.T) {
	cs := chunks("z", 4)
	res, _, outs := run(t, Options{SignalAfter: 500 * time.Millisecond, Grace: time.Second,
		Instances: []Instance{{Chunks: cs, Keys: [][2]string{{"Delay", "1000"}}}}})
	s := res.Instances[0]
	checkAccounted(t, res)
	if s.Chunks != 4 || s.OK < 1 || s.Abandoned < 1 || s.OK+s.Abandoned != 4 || s.Flushes != s.OK {
		t.Fatalf("stats %+v, wall %.2fs", s, res.Wall)
	}
	if o := readOuts(t, outs[0]); o[0].Flushes != s.Flushes {
		t.Fatalf("the plugin saw %d flushes, the host counts %d", o[0].Flushes, s.Flushes)
	}
	if !strings.Contains(res.Stderr, "never finished: abandoned") {
		t.Fatalf("stderr:\n%s", Tail(res.Stderr, 20))
	}
}

// TestSlowQueueIsNotAHang: the watchdog allows grace+10 s per flush, not for
// the whole queue: seven queued flushes of 1.6 s after a 1 ms grace take
// over 11 s and end normally.
func TestSlowQueueIsNotAHang(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 12s")
	}
	res, _, _ := run(t, Options{SignalAfter: time.Second, Grace: time.Millisecond, // after every chunk is dispatched
		Instances: []Instance{{Chunks: chunks("l", 7), Keys: [][2]string{{"Workers", "1"}, {"Delay", "1600"}}}}})
	if s := res.Instances[0]; s.OK != 7 || res.Wall < 11 {
		t.Fatalf("stats %+v, wall %.2fs", s, res.Wall)
	}
}

func TestRate(t *testing.T) {
	res, _, _ := run(t, Options{Instances: []Instance{{Chunks: chunks("r", 10), Keys: [][2]string{{"Rate", "50"}}}}})
	if res.Wall < 0.17 || res.Instances[0].OK != 10 {
		t.Fatalf("10 chunks at 50/s took %.3fs: %+v", res.Wall, res.Instances[0])
	}
}

// TestStartDelay: with StartDelay, the first flush waits that long after
// Init (wall_s starts then), and every chunk is still flushed.
func TestStartDelay(t *testing.T) {
	BuildHost(t) // both built before the clock starts
	probePlugin(t)
	start := time.Now()
	res, _, _ := run(t, Options{StartDelay: time.Second, Instances: []Instance{{Chunks: chunks("d", 3)}}})
	before := time.Since(start) - time.Duration(res.Wall*float64(time.Second))
	if before < time.Second || res.Instances[0].OK != 3 {
		t.Fatalf("%v before wall_s started (want 1s at least): %+v", before, res.Instances[0])
	}
}

func TestChunkBufferIsReadOnlyAndRevoked(t *testing.T) {
	for _, mode := range []string{"write", "keep"} {
		res, _, _ := run(t, Options{AllowFail: true, Instances: []Instance{
			{Chunks: chunks(mode, 5), Keys: [][2]string{{"Mode", mode}}}}})
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "SIGSEGV") {
			t.Fatalf("mode %s: exit %d, stderr:\n%s", mode, res.ExitCode, Tail(res.Stderr, 20))
		}
	}
}

// TestInitFailure: as in Fluent Bit, a failed Init exits the other
// instances, the one never initialised with a NULL context.
func TestInitFailure(t *testing.T) {
	res, ev, _ := run(t, Options{AllowFail: true, Instances: []Instance{
		{Chunks: chunks("i", 2)}, {Keys: [][2]string{{"Mode", "fail_init"}}}, {}}})
	if res.ExitCode != 3 || !strings.Contains(res.Stderr, "init failed: instance 1 (probe.1)") {
		t.Fatalf("exit %d, stderr:\n%s", res.ExitCode, res.Stderr)
	}
	wantEvents(t, ev, "preregister 0", "register", "init a", "init b", "preexit 0", "exit a", "preexit 0", "exit ?")
}

func TestLoadFailure(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "plain.so")
	if err := os.WriteFile(notELF, []byte("not a shared object"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ plugin, name, want string }{
		{"/nonexistent/out_gokafka.so", "gokafka", "cannot open shared object file"},
		{notELF, "gokafka", "dlopen " + notELF},
		{probePlugin(t), "gokafka", "Name 'gokafka' is not the registered plugin 'probe'"},
	} {
		res := Run(t, Options{Plugin: c.plugin, Name: c.name, AllowFail: true, Instances: []Instance{{}}})
		if res.ExitCode != 2 || !strings.Contains(res.Stderr, c.want) {
			t.Fatalf("%s: exit %d, stderr:\n%s", c.plugin, res.ExitCode, res.Stderr)
		}
	}
}

func TestHangDetected(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10s")
	}
	res, _, _ := run(t, Options{AllowFail: true, SignalAfter: time.Second, Grace: time.Millisecond,
		Instances: []Instance{{Chunks: chunks("h", 5), Keys: [][2]string{{"Mode", "hang"}, {"Workers", "1"}}}}})
	if res.ExitCode != 4 || !strings.Contains(res.Stderr, "HANG: shutdown exceeded grace+10s") ||
		strings.Contains(res.Stdout, `"instance"`) {
		t.Fatalf("exit %d, stderr:\n%s", res.ExitCode, res.Stderr)
	}
}
