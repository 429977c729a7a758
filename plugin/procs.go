package plugin

import (
	"os"
	"runtime"
	"sync"
	"syscall"
)

// Each Fluent Bit thread that flushes through the plugin keeps a Go P while
// it runs C code between flushes (a C thread keeps its M, and the M its P,
// from one call into Go to the next). With GOMAXPROCS at its default and
// as many such threads as CPUs, no P is ever idle: Go's sysmon then takes a
// P back every 20 µs and keeps waking at that rate, a third of all context
// switches with Workers 2 on 2 CPUs. So each flushing thread adds one to
// GOMAXPROCS (up to 4x the default), unless the operator set GOMAXPROCS.
var callers = struct {
	sync.Mutex
	tids  map[int]bool
	base  int
	fixed bool
}{tids: map[int]bool{}, base: runtime.GOMAXPROCS(0), fixed: os.Getenv("GOMAXPROCS") != ""}

// NoteHostThread counts the calling OS thread, a Fluent Bit thread calling
// a flush, and raises GOMAXPROCS the first time a thread calls. The flush
// export calls it (tests' goroutines are not host threads).
func NoteHostThread() {
	if callers.fixed {
		return
	}
	tid := syscall.Gettid()
	callers.Lock()
	defer callers.Unlock()
	if callers.tids[tid] || len(callers.tids) >= 3*callers.base {
		return
	}
	callers.tids[tid] = true
	runtime.GOMAXPROCS(callers.base + len(callers.tids))
}

// ForgetHostThreads puts GOMAXPROCS back to its default and forgets the
// threads counted: the export calls it when the last instance has exited,
// so that a hot reload's new engine and worker threads count anew rather
// than on top of the exited ones.
func ForgetHostThreads() {
	if callers.fixed {
		return
	}
	callers.Lock()
	defer callers.Unlock()
	clear(callers.tids)
	runtime.SetDefaultGOMAXPROCS()
	callers.base = runtime.GOMAXPROCS(0)
}
