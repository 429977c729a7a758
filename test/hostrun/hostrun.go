// Package hostrun builds the C test host (test/host/host.c) and Go plugins,
// and runs the host on chunks for tests.
package hostrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gokafka/gokafka/test/fixture"
)

// StaticTLSTunable is added to the host's environment. The real plugin links
// librdkafka (through confluent-kafka-go), whose initial-exec TLS is larger
// than the ~512 bytes of surplus static TLS glibc keeps for dlopen; without a
// larger reserve dlopen fails with "cannot allocate memory in static TLS
// block". Glibc reads the tunable at process start, so it must be in the
// environment of the process that calls dlopen.
const StaticTLSTunable = "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536"

var (
	buildMu    sync.Mutex
	builtHost  string
	builtPlugs = map[string]string{}
)

// BuildHost compiles test/host/host.c into <repo>/build/test/gokafka-host
// (once per test binary, and only when host.c is newer) and returns its path.
func BuildHost(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtHost != "" {
		return builtHost
	}
	root := fixture.RepoRoot(t)
	src := filepath.Join(root, "test", "host", "host.c")
	out := filepath.Join(root, "build", "test", "gokafka-host")
	si, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if oi, err := os.Stat(out); err != nil || oi.ModTime().Before(si.ModTime()) {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := fmt.Sprintf("%s.tmp%d", out, os.Getpid()) // other test binaries may build too
		cmd := exec.Command("gcc", "-O2", "-g", "-Wall", "-Wextra", "-o", tmp, src, "-ldl", "-lpthread")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the host: %v\n%s", err, b)
		} else if len(b) > 0 {
			t.Logf("gcc: %s", b)
		}
		if err := os.Rename(tmp, out); err != nil {
			t.Fatal(err)
		}
	}
	builtHost = out
	return out
}

// BuildPlugin builds the Go package pkgDir as a c-shared plugin at out (both
// relative to the repo root unless absolute), once per test binary per out.
func BuildPlugin(t testing.TB, pkgDir, out string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	root := fixture.RepoRoot(t)
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if p, ok := builtPlugs[out]; ok {
		return p
	}
	if !filepath.IsAbs(pkgDir) && !strings.HasPrefix(pkgDir, ".") {
		pkgDir = "./" + pkgDir
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	// Build under a temporary name: another test binary may load the old one.
	tmp := filepath.Join(filepath.Dir(out), fmt.Sprintf(".tmp%d-%s", os.Getpid(), filepath.Base(out)))
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-buildvcs=false",
		"-ldflags=-extldflags=-Wl,--exclude-libs,ALL", "-o", tmp, pkgDir)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building plugin %s: %v\n%s", pkgDir, err, b)
	}
	os.Remove(strings.TrimSuffix(tmp, filepath.Ext(tmp)) + ".h")
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	builtPlugs[out] = out
	return out
}

// Instance is one [OUTPUT] section.
type Instance struct {
	Keys      [][2]string // written in order; Name defaults to Options.Name
	Chunks    [][]byte    // written to a chunk file for this instance
	ChunkFile string      // or an existing chunk file
}

// Options describe one host run.
type Options struct {
	Plugin      string // path of the .so
	Name        string // Name for sections without one; default "gokafka"
	Instances   []Instance
	Grace       time.Duration // -g (host default 5s)
	Backoff     time.Duration // -b (host default 200ms)
	ReloadAfter int           // -R: hot reload after this many chunks are done
	StartDelay  time.Duration // -d: the first flush this long after Init, as Fluent Bit's comes one Flush interval after its start (default 0)
	Env         []string      // extra environment, KEY=VALUE
	SignalAfter time.Duration // send Signal after this delay (0: never)
	Signal      syscall.Signal
	Timeout     time.Duration // kill the host after this; default 2 minutes
	Verbose     bool          // keep the host's per-flush lines (no -q)
	AllowFail   bool          // do not fail the test on a non-zero exit; a timeout is an error, exit code -1
}

// InstanceStats is the host's JSON line for one instance. Every chunk
// dispatched to it (Chunks) ends as exactly one of OK, Dropped (FLB_ERROR, or
// retries exhausted), Abandoned or Requeued.
type InstanceStats struct {
	Instance int    `json:"instance"`
	Gen      int    `json:"gen"` // 1 for instances created by a hot reload
	Name     string `json:"name"`
	Chunks   int64  `json:"chunks"`
	Flushes  int64  `json:"flushes"`
	OK       int64  `json:"ok"`
	Retry    int64  `json:"retry"`
	Error    int64  `json:"error"`
	Dropped  int64  `json:"dropped"`
	// Abandoned chunks were dispatched but never finished when the host
	// stopped, as in Fluent Bit: Workers 0 flushes the engine had not started
	// when the grace ran out, and retries not run (one asked for after the
	// stop is never run). Tasks queued to a worker thread are not abandoned:
	// the worker runs them before it is joined.
	Abandoned int64 `json:"abandoned"`
	// Requeued chunks are the same leftovers at a hot reload: handed to the
	// new generation, which counts them again in its Chunks.
	Requeued   int64   `json:"requeued"`
	MaxFlushMS float64 `json:"max_flush_ms"`
}

// Result is what a host run printed.
type Result struct {
	Instances []InstanceStats
	CPUUser   float64
	CPUSys    float64
	Wall      float64
	MaxRSSKB  int64
	// FaultHandler is whose SIGSEGV handler was in place at the end: the
	// plugin's (the Go runtime's), or the host's, which it installs, as
	// Fluent Bit does, before loading the plugin and again at a hot reload.
	FaultHandler string
	Stdout       string
	Stderr       string
	ExitCode     int
}

// Sum adds up the stats of every instance with the given index (all generations).
func (r Result) Sum(instance int) InstanceStats {
	s := InstanceStats{Instance: instance}
	for _, in := range r.Instances {
		if in.Instance == instance {
			s.Chunks += in.Chunks
			s.Flushes += in.Flushes
			s.OK += in.OK
			s.Retry += in.Retry
			s.Error += in.Error
			s.Dropped += in.Dropped
			s.Abandoned += in.Abandoned
			s.Requeued += in.Requeued
			s.MaxFlushMS = max(s.MaxFlushMS, in.MaxFlushMS)
		}
	}
	return s
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WriteConf writes a host.conf for o into dir and returns its path.
func WriteConf(t testing.TB, dir string, o Options) string {
	t.Helper()
	name := o.Name
	if name == "" {
		name = "gokafka"
	}
	var b strings.Builder
	for i, in := range o.Instances {
		b.WriteString("[OUTPUT]\n")
		hasName := false
		for _, kv := range in.Keys {
			hasName = hasName || strings.EqualFold(kv[0], "name")
		}
		if !hasName {
			fmt.Fprintf(&b, "    Name %s\n", name)
		}
		for _, kv := range in.Keys {
			fmt.Fprintf(&b, "    %s %s\n", kv[0], kv[1])
		}
		file := in.ChunkFile
		if in.Chunks != nil {
			file = filepath.Join(dir, fmt.Sprintf("chunks-%d.bin", i))
			if err := fixture.WriteChunkFile(file, in.Chunks); err != nil {
				t.Fatal(err)
			}
		}
		if file != "" {
			fmt.Fprintf(&b, "    Chunks %s\n", file)
		}
	}
	path := filepath.Join(dir, "host.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Run runs the host once and parses its output. Unless o.AllowFail, a
// non-zero exit or a timeout fails the test with the tail of stderr.
func Run(t testing.TB, o Options) Result {
	t.Helper()
	host := BuildHost(t)
	conf := WriteConf(t, t.TempDir(), o)
	args := []string{"-p", o.Plugin, "-c", conf}
	if o.Grace > 0 {
		args = append(args, "-g", strconv.FormatFloat(o.Grace.Seconds(), 'f', -1, 64))
	}
	if o.Backoff > 0 {
		args = append(args, "-b", strconv.FormatInt(o.Backoff.Milliseconds(), 10))
	}
	if o.ReloadAfter > 0 {
		args = append(args, "-R", strconv.Itoa(o.ReloadAfter))
	}
	if o.StartDelay > 0 {
		args = append(args, "-d", strconv.FormatFloat(o.StartDelay.Seconds(), 'f', -1, 64))
	}
	if !o.Verbose {
		args = append(args, "-q")
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, host, args...)
	cmd.Env = append(append(os.Environ(), StaticTLSTunable), o.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if o.SignalAfter > 0 {
		sig := o.Signal
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		timer := time.AfterFunc(o.SignalAfter, func() { cmd.Process.Signal(sig) })
		defer timer.Stop()
	}
	err := cmd.Wait()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil && !o.AllowFail:
		t.Fatalf("host timed out after %v; stderr tail:\n%s", timeout, Tail(res.Stderr, 40))
	case ctx.Err() != nil:
		// Errorf, not Fatalf: a test may run the host on a goroutine of its own.
		t.Errorf("host killed after %v; stderr tail:\n%s", timeout, Tail(res.Stderr, 40))
		res.ExitCode = -1
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	if res.ExitCode != 0 && !o.AllowFail {
		t.Fatalf("host exited %d; stderr tail:\n%s", res.ExitCode, Tail(res.Stderr, 40))
	}
	sc := bufio.NewScanner(strings.NewReader(res.Stdout))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"instance"`)) {
			var s InstanceStats
			if err := json.Unmarshal(line, &s); err != nil {
				t.Fatalf("bad host line %q: %v", line, err)
			}
			res.Instances = append(res.Instances, s)
		} else if bytes.Contains(line, []byte(`"cpu_user_s"`)) {
			var s struct {
				User   float64 `json:"cpu_user_s"`
				Sys    float64 `json:"cpu_sys_s"`
				Wall   float64 `json:"wall_s"`
				MaxRSS int64   `json:"maxrss_kb"`
				Fault  string  `json:"fault_handler"`
			}
			if err := json.Unmarshal(line, &s); err != nil {
				t.Fatalf("bad host line %q: %v", line, err)
			}
			res.CPUUser, res.CPUSys, res.Wall, res.MaxRSSKB, res.FaultHandler = s.User, s.Sys, s.Wall, s.MaxRSS, s.Fault
		}
	}
	if res.ExitCode == 0 && len(res.Instances) == 0 && !o.AllowFail {
		t.Fatalf("host printed no stats; stderr tail:\n%s", Tail(res.Stderr, 40))
	}
	return res
}
