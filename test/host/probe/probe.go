// Command probe is a tiny Fluent Bit Go output plugin that exists only to test
// the C test host (test/host/host.c). Build it with -buildmode=c-shared.
//
// Config keys: Id (names the instance in events), Out (file that gets one JSON
// line appended at Exit), Mode (ok, retry_first, retry, error, fail_init, hang;
// write and keep misuse the chunk buffer, which the host must turn into a crash),
// Delay (milliseconds to sleep in each flush), Echo (comma-separated keys to
// look up in Init and report back).
// Lifecycle events (pre-register, register, init, pre-run, pre-exit, exit,
// unregister) are appended, one per line, to the file named by $PROBE_EVENTS.
package main

import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

// probe is one plugin instance.
type probe struct {
	ID, Out, Mode string
	Delay         time.Duration
	Keys          map[string]string
	InitSeq       int64

	mu        sync.Mutex
	attempts  map[string]int // sha256 of chunk -> flushes seen
	okHashes  map[string]int // sha256 of chunk -> FLB_OK returned
	tags      map[string]bool
	threads   map[int]bool
	bytes     int64
	flushes   int64
	inflight  int64
	maxFlight int64
	kept      unsafe.Pointer // Mode keep: the previous flush's data
}

var seq atomic.Int64

// event appends one lifecycle line to $PROBE_EVENTS.
func event(format string, args ...any) {
	path := os.Getenv("PROBE_EVENTS")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, format+"\n", args...)
}

//export FLBPluginPreRegister
func FLBPluginPreRegister(hotReload C.int) C.int {
	event("preregister %d", int(hotReload))
	return 0
}

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	event("register")
	return output.FLBPluginRegister(def, "probe", "test host probe")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	p := &probe{
		ID:       output.FLBPluginConfigKey(plugin, "Id"),
		Out:      output.FLBPluginConfigKey(plugin, "Out"),
		Mode:     output.FLBPluginConfigKey(plugin, "Mode"),
		Keys:     map[string]string{},
		InitSeq:  seq.Add(1),
		attempts: map[string]int{},
		okHashes: map[string]int{},
		tags:     map[string]bool{},
		threads:  map[int]bool{},
	}
	ms, _ := strconv.Atoi(output.FLBPluginConfigKey(plugin, "Delay"))
	p.Delay = time.Duration(ms) * time.Millisecond
	for _, k := range strings.Split(output.FLBPluginConfigKey(plugin, "Echo"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			p.Keys[k] = output.FLBPluginConfigKey(plugin, k)
		}
	}
	event("init %s", p.ID)
	if p.Mode == "fail_init" {
		return output.FLB_ERROR
	}
	output.FLBPluginSetContext(plugin, p)
	return output.FLB_OK
}

//export FLBPluginOutputPreRun
func FLBPluginOutputPreRun(hotReload C.int) C.int {
	event("prerun %d", int(hotReload))
	return 0
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	p, ok := output.FLBPluginGetContext(ctx).(*probe)
	if !ok {
		return output.FLB_ERROR
	}
	if n := atomic.AddInt64(&p.inflight, 1); n > atomic.LoadInt64(&p.maxFlight) {
		atomic.StoreInt64(&p.maxFlight, n) // racy max, good enough for a probe
	}
	defer atomic.AddInt64(&p.inflight, -1)
	sum := sha256.Sum256(C.GoBytes(data, length))
	h := hex.EncodeToString(sum[:])
	if p.Delay > 0 {
		time.Sleep(p.Delay)
	}
	switch p.Mode {
	case "hang":
		select {}
	case "write": // the chunk is read-only
		*(*byte)(data) ^= 1
	case "keep": // the chunk is gone once the flush returned
		if k := atomic.SwapPointer(&p.kept, data); k != nil {
			sum = sha256.Sum256(C.GoBytes(k, 1))
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushes++
	p.bytes += int64(length)
	p.tags[C.GoString(tag)] = true
	p.threads[syscall.Gettid()] = true
	p.attempts[h]++
	ret := output.FLB_OK
	switch {
	case p.Mode == "error":
		ret = output.FLB_ERROR
	case p.Mode == "retry":
		ret = output.FLB_RETRY
	case p.Mode == "retry_first" && p.attempts[h] == 1:
		ret = output.FLB_RETRY
	}
	if ret == output.FLB_OK {
		p.okHashes[h]++
	}
	return ret
}

//export FLBPluginOutputPreExit
func FLBPluginOutputPreExit(hotReload C.int) {
	event("preexit %d", int(hotReload))
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) int {
	p, ok := output.FLBPluginGetContext(ctx).(*probe)
	if !ok {
		event("exit ?")
		return output.FLB_ERROR
	}
	event("exit %s", p.ID)
	p.mu.Lock()
	defer p.mu.Unlock()
	tags := []string{}
	for t := range p.tags {
		tags = append(tags, t)
	}
	line, _ := json.Marshal(map[string]any{
		"id": p.ID, "init_seq": p.InitSeq, "exit_seq": seq.Add(1), "keys": p.Keys,
		"flushes": p.flushes, "bytes": p.bytes, "attempts": p.attempts, "ok": p.okHashes,
		"tags": tags, "threads": len(p.threads), "max_concurrent": atomic.LoadInt64(&p.maxFlight),
	})
	if p.Out != "" {
		if f, err := os.OpenFile(p.Out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Write(append(line, '\n'))
			f.Close()
		}
	}
	return output.FLB_OK
}

//export FLBPluginUnregister
func FLBPluginUnregister(def unsafe.Pointer) {
	event("unregister")
	output.FLBPluginUnregister(def)
}

func main() {}
