// Package benchdata gives the micro-benchmarks and allocation tests their
// input: docker container log records from ../shared/data/gen-container-logs.py
// (the same generator as the end-to-end benchmark, fixed seed), or, where the
// generator or python3 is missing, a fixed sample of its output.
package benchdata

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/gokafka/gokafka/test/fixture"
)

// Sample is the generator's first lines (seed 7): access logs, JSON
// application logs, a Java stack trace, non-ASCII text, quotes, tabs.
var Sample = []string{
	`{"log": "10.0.0.39 - - \"DELETE /healthz HTTP/1.1\" 200 9594\n", "stream": "stderr", "time": "2026-11-22T10:00:00.000000000Z"}`,
	`{"log": "10.0.1.150 - - \"GET /healthz HTTP/1.1\" 201 5014\n", "stream": "stdout", "time": "2026-11-22T10:00:00.001000001Z"}`,
	`{"log": "10.0.2.18 - - \"POST /api/v1/users HTTP/1.1\" latency_ms=12 55742\n", "stream": "stdout", "time": "2026-11-22T10:00:00.002000002Z"}`,
	`{"log": "3 200 cache=miss cache=miss timeout POST timeout timeout user_id=42 POST 200 POST журнал \"quoted\" \\ back\tslash\n", "stream": "stdout", "time": "2026-11-22T10:00:00.003000003Z"}`,
	`{"log": "10.0.4.37 - - \"GET /healthz HTTP/1.1\" 404 73534\n", "stream": "stderr", "time": "2026-11-22T10:00:00.004000004Z"}`,
	`{"log": "10.0.5.149 - - \"POST /api/v1/orders HTTP/1.1\" 200 71893\n", "stream": "stderr", "time": "2026-11-22T10:00:00.005000005Z"}`,
	`{"log": "10.0.6.16 - - \"POST /api/v1/orders HTTP/1.1\" latency_ms=12 56145\n", "stream": "stdout", "time": "2026-11-22T10:00:00.006000006Z"}`,
	`{"log": "10.0.7.237 - - \"DELETE /api/v1/orders HTTP/1.1\" 404 32661\n", "stream": "stdout", "time": "2026-11-22T10:00:00.007000007Z"}`,
	`{"log": "{\"level\": \"info\", \"msg\": \"timeout 404 retrying reset 500\", \"seq\": 8, \"user\": \"emoji 🚀\", \"ok\": true}\n", "stream": "stderr", "time": "2026-11-22T10:00:00.008000008Z"}`,
	`{"log": "Exception in thread \"main\" java.lang.IllegalStateException: seq 9\n\tat com.example.Service.handle(Service.java:130)\n\tat com.example.Main.main(Main.java:7)\n", "stream": "stderr", "time": "2026-11-22T10:00:00.009000009Z"}`,
	`{"log": "10.0.10.194 - - \"PUT /api/v1/users HTTP/1.1\" 500 55372\n", "stream": "stdout", "time": "2026-11-22T10:00:00.010000010Z"}`,
	`{"log": "Exception in thread \"main\" java.lang.IllegalStateException: seq 11\n\tat com.example.Service.handle(Service.java:89)\n\tat com.example.Main.main(Main.java:7)\n", "stream": "stderr", "time": "2026-11-22T10:00:00.011000011Z"}`,
	`{"log": "{\"level\": \"warn\", \"msg\": \"WARN latency_ms=12 cache=hit reset timeout connection PUT PUT 201\", \"seq\": 12, \"user\": \"日本語のログ\", \"ok\": true}\n", "stream": "stdout", "time": "2026-11-22T10:00:00.012000012Z"}`,
	`{"log": "10.0.13.180 - - \"PUT /healthz HTTP/1.1\" latency_ms=12 89391\n", "stream": "stdout", "time": "2026-11-22T10:00:00.013000013Z"}`,
	`{"log": "10.0.14.99 - - \"PUT /api/v1/users HTTP/1.1\" 500 46691\n", "stream": "stdout", "time": "2026-11-22T10:00:00.014000014Z"}`,
	`{"log": "{\"level\": \"warn\", \"msg\": \"/healthz DEBUG 404 /api/v1/users\", \"seq\": 15, \"user\": \"emoji 🚀\", \"ok\": true}\n", "stream": "stdout", "time": "2026-11-22T10:00:00.015000015Z"}`,
}

// Generator returns the path of gen-container-logs.py ($GOKAFKA_LOGGEN, or
// ../shared/data beside the repository), or "" when it or python3 is missing.
func Generator(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		return ""
	}
	path := fixture.Generator(fixture.RepoRoot(tb))
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// Generate writes n docker log lines from the generator to path.
func Generate(tb testing.TB, path string, n int) {
	tb.Helper()
	gen := Generator(tb)
	if gen == "" {
		tb.Fatal("benchdata: gen-container-logs.py or python3 not found (set GOKAFKA_LOGGEN)")
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("python3", gen, "--format", "docker", "--lines", strconv.Itoa(n))
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("benchdata: %s: %v\n%s", gen, err, stderr.Bytes())
	}
}

var cache struct {
	sync.Mutex
	lines map[int][]byte
	recs  map[int][]fixture.Record
}

// Lines returns n docker log lines, newline-terminated: from the generator
// when it is there, else Sample repeated.
func Lines(tb testing.TB, n int) []byte {
	tb.Helper()
	cache.Lock()
	defer cache.Unlock()
	return lines(tb, n)
}

func lines(tb testing.TB, n int) []byte {
	if b, ok := cache.lines[n]; ok {
		return b
	}
	var out []byte
	if Generator(tb) != "" {
		dir, err := os.MkdirTemp("", "benchdata-")
		if err != nil {
			tb.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "container.log")
		Generate(tb, path, n)
		if out, err = os.ReadFile(path); err != nil {
			tb.Fatal(err)
		}
	} else {
		tb.Logf("benchdata: generator not found, using the fixed sample")
		for i := 0; i < n; i++ {
			out = append(append(out, Sample[i%len(Sample)]...), '\n')
		}
	}
	if cache.lines == nil {
		cache.lines = map[int][]byte{}
	}
	cache.lines[n] = out
	return out
}

// Records returns n docker container log records, parsed as Fluent Bit's
// docker parser does (see Lines).
func Records(tb testing.TB, n int) []fixture.Record {
	tb.Helper()
	cache.Lock()
	defer cache.Unlock()
	if recs, ok := cache.recs[n]; ok {
		return recs
	}
	dir, err := os.MkdirTemp("", "benchdata-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "container.log")
	if err := os.WriteFile(path, lines(tb, n), 0o644); err != nil {
		tb.Fatal(err)
	}
	recs, err := fixture.ReadContainerLog(path, "docker")
	if err != nil {
		tb.Fatal(err)
	}
	if cache.recs == nil {
		cache.recs = map[int][]fixture.Record{}
	}
	cache.recs[n] = recs
	return recs
}

// Chunk returns one chunk (v2 layout, EventTime) holding n records.
func Chunk(tb testing.TB, n int) []byte {
	tb.Helper()
	chunks := fixture.EncodeChunks(Records(tb, n), fixture.ChunkOptions{Layout: 2, ChunkBytes: 1 << 30})
	if len(chunks) != 1 {
		tb.Fatalf("benchdata: %d chunks, want 1", len(chunks))
	}
	return chunks[0]
}

// Values returns n message-sized values for tests of the accumulator alone:
// the docker log lines themselves (JSON of about the size the encoder
// writes for their records).
func Values(tb testing.TB, n int) [][]byte {
	tb.Helper()
	return bytes.Split(bytes.TrimSuffix(Lines(tb, n), []byte("\n")), []byte("\n"))
}
