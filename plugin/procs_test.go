package plugin

import (
	"runtime"
	"testing"
)

func TestNoteHostThreadRaisesGOMAXPROCS(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	callers.Lock()
	saved := callers.tids
	callers.tids, callers.base, callers.fixed = map[int]bool{}, 2, false
	callers.Unlock()
	t.Cleanup(func() {
		callers.Lock()
		callers.tids, callers.base = saved, before
		callers.Unlock()
		runtime.GOMAXPROCS(before)
	})

	// Threads of their own, as Fluent Bit's engine and worker threads are.
	for threads := 1; threads <= 7; threads++ {
		done := make(chan int)
		go func() {
			runtime.LockOSThread() // the thread exits with the goroutine
			NoteHostThread()
			NoteHostThread() // a thread counts once
			done <- runtime.GOMAXPROCS(0)
		}()
		got := <-done
		want := min(2+threads, 2+3*2) // the default plus a P for each of at most 3x the default threads
		if got != want {
			t.Fatalf("GOMAXPROCS %d after another thread, want %d", got, want)
		}
	}
}

func TestForgetHostThreadsCountsAnew(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	callers.Lock()
	saved := callers.tids
	callers.tids, callers.base, callers.fixed = map[int]bool{}, before, false
	callers.Unlock()
	t.Cleanup(func() {
		callers.Lock()
		callers.tids = saved
		callers.Unlock()
		runtime.GOMAXPROCS(before)
	})
	noteOnNewThread := func() int {
		done := make(chan int)
		go func() {
			runtime.LockOSThread() // the thread exits with the goroutine
			NoteHostThread()
			done <- runtime.GOMAXPROCS(0)
		}()
		return <-done
	}

	// Two hot reloads, each with a new thread: its P replaces the exited one's.
	for reload := range 3 {
		if got := noteOnNewThread(); got != before+1 {
			t.Fatalf("after reload %d: GOMAXPROCS %d with one live host thread, want %d", reload, got, before+1)
		}
		ForgetHostThreads()
		if got := runtime.GOMAXPROCS(0); got != before {
			t.Fatalf("after the last Exit: GOMAXPROCS %d, want the default %d", got, before)
		}
	}
}
