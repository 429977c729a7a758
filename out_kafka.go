// Command out_gokafka is the Fluent Bit output plugin, built with
// -buildmode=c-shared. This file holds only the exports Fluent Bit calls and
// maps each instance context to a plugin.Instance.
package main

/*
#include <signal.h>
#include <stdlib.h>

// Go's handlers for the faults it turns into panics (a nil dereference, an
// integer division by zero), kept at the plugin's first Register. Fluent
// Bit installs its own again on every SIGHUP (hot reload) and SIGCONT; with
// those, such a fault would abort Fluent Bit instead of panicking into an
// export's recover.
static const int gk_faults[] = {SIGSEGV, SIGFPE};
static struct sigaction gk_go_faults[2];
static int gk_kept;

// gk_keep_fault_handlers saves the handlers in place (Go's) at the first
// Register, on Fluent Bit's main thread; not at a hot reload's, when
// Fluent Bit's own are in place.
static void gk_keep_fault_handlers(void) {
	for (int i = 0; !gk_kept && i < 2; i++)
		sigaction(gk_faults[i], NULL, &gk_go_faults[i]);
	gk_kept = 1;
}

// gk_restore_fault_handlers puts Go's handlers back, once kept.
static void gk_restore_fault_handlers(void) {
	for (int i = 0; gk_kept && i < 2; i++)
		sigaction(gk_faults[i], &gk_go_faults[i], NULL);
}

// The API table Fluent Bit passes to Go plugins (flb_api.h, v2.0+).
struct gk_api {
	char *(*output_get_property)(char *, void *);
	char *(*input_get_property)(char *, void *);
	void *(*output_get_cmt_instance)(void *);
	void *(*input_get_cmt_instance)(void *);
	void (*log_print)(int, const char *, int, const char *, ...);
	int (*input_log_check)(void *, int);
	int (*output_log_check)(void *, int);
};

struct gk_context {
	void *remote_context;
	void *proxy;
};

struct gk_plugin {
	char *name;
	struct gk_api *api;
	void *o_ins;
	struct gk_context *context;
};

// gk_set_context gives the instance a unique key that Fluent Bit passes back
// to FlushCtx and ExitCtx.
static void *gk_set_context(struct gk_plugin *p) {
	void *key = malloc(1);
	p->context->remote_context = key;
	return key;
}

static void gk_log(struct gk_api *api, int level, const char *msg) {
	if (api && api->log_print)
		api->log_print(level, NULL, 0, "%s", msg);
}

// gk_log_level returns the most verbose level the instance logs.
static int gk_log_level(struct gk_plugin *p) {
	if (!p->api || !p->api->output_log_check)
		return 3;
	for (int level = 5; level > 1; level--)
		if (p->api->output_log_check(p->o_ins, level))
			return level;
	return 1;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/metrics"
	"github.com/gokafka/gokafka/mskiam"
	"github.com/gokafka/gokafka/plugin"
	"github.com/gokafka/gokafka/rdk"
	"github.com/gokafka/gokafka/sender"
)

var (
	mu        sync.Mutex
	instances int      // Init calls since the last (re)registration, to name instances
	contexts  sync.Map // remote context key (uintptr) -> *running
	rdkProps  = sync.OnceValue(rdk.Properties)
)

// running is an instance, what stops its metrics (nil without them), and
// what its warning of Hot_Reload with workers needs.
type running struct {
	in          *plugin.Instance
	stopMetrics func()
	initThread  int         // the engine thread, where Workers 0 flushes run
	warned      atomic.Bool // reloadWithWorkers logged
}

// hotReload is whether Fluent Bit has Hot_Reload on, as PreRun last said.
var hotReload atomic.Bool

// reloadWithWorkers says why Workers and Hot_Reload do not go together.
const reloadWithWorkers = "Hot_Reload is on and this output runs on Fluent Bit's worker threads (Workers 1 or more): " +
	"a reload can crash Fluent Bit (SIGSEGV; seen with 5.1.1), which starts a Go output's workers twice and stops only one set at a reload. " +
	"With Hot_Reload On use Workers 0, or restart Fluent Bit instead of reloading it"

// getter reads the instance's keys; valid only during Init.
type getter struct{ plugin unsafe.Pointer }

func (g getter) Get(key string) string { return output.FLBPluginConfigKey(g.plugin, key) }

// hostLogger logs through Fluent Bit's log_print at the instance's level,
// each message after prefix, as Fluent Bit's own plugins do.
func hostLogger(p *C.struct_gk_plugin, prefix string) plugin.Logger {
	api, maxLevel := p.api, int(C.gk_log_level(p))
	return func(level int, msg string) {
		if level > maxLevel {
			return
		}
		cmsg := C.CString(prefix + msg)
		C.gk_log(api, C.int(level), cmsg)
		C.free(unsafe.Pointer(cmsg))
	}
}

// recoverTo turns a panic into a log line (on stderr without a logger) and
// the return code *ret.
func recoverTo(log plugin.Logger, ret *int, code int) {
	if r := recover(); r != nil {
		msg := fmt.Sprintf("internal error: %v\n%s", r, debug.Stack())
		if log != nil {
			log(plugin.LevelError, msg)
		} else {
			fmt.Fprintf(os.Stderr, "[gokafka] %s", msg)
		}
		*ret = code
	}
}

// recoverToFailure turns a panic into -1, the failure of the exports that
// return a C int.
func recoverToFailure(ret *C.int) {
	if recover() != nil {
		*ret = -1
	}
}

//export FLBPluginPreRegister
func FLBPluginPreRegister(reloading C.int) (ret C.int) {
	defer recoverToFailure(&ret)
	mu.Lock()
	instances = 0
	mu.Unlock()
	return 0
}

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) (ret C.int) {
	defer recoverToFailure(&ret)
	C.gk_keep_fault_handlers()
	C.gk_restore_fault_handlers()
	return C.int(output.FLBPluginRegister(def, "gokafka", "Kafka output with delivery tracking (Go)"))
}

//export FLBPluginInit
func FLBPluginInit(p unsafe.Pointer) (ret int) {
	C.gk_restore_fault_handlers()
	mu.Lock()
	name := fmt.Sprintf("gokafka.%d", instances)
	instances++
	mu.Unlock()
	log := hostLogger((*C.struct_gk_plugin)(p), "[output:gokafka:"+name+"] ")
	var r *running
	defer recoverTo(log, &ret, output.FLB_ERROR) // also of the cleanup below
	defer func() {
		if ret != output.FLB_OK && r != nil {
			r.stop() // started, then Init failed or panicked: Fluent Bit never exits it
		}
	}()
	fail := func(err error) int {
		log(plugin.LevelError, fmt.Sprintf("configuration error: %v", err))
		return output.FLB_ERROR
	}

	cfg, err := conf.Load(getter{p}, rdkProps())
	if err != nil {
		return fail(err)
	}
	if cfg.MetricsInstance != "" { // Fluent Bit keeps Alias to itself
		name = cfg.MetricsInstance
		log = hostLogger((*C.struct_gk_plugin)(p), "[output:gokafka:"+name+"] ")
	}
	var tokens rdk.TokenSource
	if cfg.MSKIAMRegion != "" {
		s, err := mskiam.New(context.Background(), cfg.MSKIAMRegion)
		if err != nil {
			return fail(fmt.Errorf("AWS_MSK_IAM: %w", err))
		}
		tokens = s.Token
	}
	causes := rdk.NewCauses()
	newProducer := func() (sender.Producer, error) {
		prod, err := rdk.New(cfg.Rdkafka, rdk.Logger(log), causes, tokens)
		if err != nil {
			return nil, err
		}
		return prod, nil
	}
	in, err := plugin.New(cfg, newProducer, rdk.Allocator{}, new(plugin.Stats), log)
	if err != nil {
		return fail(err)
	}
	r = &running{in: in, initThread: syscall.Gettid()}
	if cfg.MetricsListen != "" {
		if r.stopMetrics, err = metrics.Register(cfg.MetricsListen, name, in.Stats, in); err != nil {
			key := "Metrics_Listen"
			if errors.Is(err, metrics.ErrLabelUsed) {
				key = "Metrics_Instance"
			}
			return fail(fmt.Errorf("%s: %w", key, err))
		}
	}
	in.Log(plugin.LevelInfo, "brokers=%s topics=%v format=%s", cfg.Brokers, cfg.Topics, cfg.Format)
	if tokens != nil {
		in.Log(plugin.LevelInfo, "AWS MSK IAM: tokens signed for region %s", cfg.MSKIAMRegion)
	}
	contexts.Store(uintptr(C.gk_set_context((*C.struct_gk_plugin)(p))), r)
	return output.FLB_OK
}

// stop stops the instance, then its metrics, whose totals then include
// what Kafka acknowledged during Exit (a scrape meanwhile, and the final
// read, see the statistics the producers had when they stopped:
// Sender.Statistics).
func (r *running) stop() {
	if r.stopMetrics != nil {
		defer r.stopMetrics()
	}
	r.in.Exit()
}

// warnReloadWithWorkers logs reloadWithWorkers once, at the first flush
// off Init's thread (on a worker) while Hot_Reload is on.
func (r *running) warnReloadWithWorkers() {
	if hotReload.Load() && !r.warned.Load() && syscall.Gettid() != r.initThread && r.warned.CompareAndSwap(false, true) {
		r.in.Log(plugin.LevelWarn, "%s", reloadWithWorkers)
	}
}

func instance(ctx unsafe.Pointer) *running {
	r, _ := contexts.Load(uintptr(ctx))
	i, _ := r.(*running)
	return i
}

// FLBPluginOutputPreRun is called once per instance, after Init, with
// whether Hot_Reload is on.
//
//export FLBPluginOutputPreRun
func FLBPluginOutputPreRun(hotReloadOn C.int) (ret C.int) {
	defer recoverToFailure(&ret)
	hotReload.Store(hotReloadOn != 0)
	return 0
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.size_t, tag *C.char) (ret int) {
	C.gk_restore_fault_handlers()
	defer recoverTo(nil, &ret, output.FLB_ERROR) // arguments no chunk can have
	return flush(ctx, unsafe.Slice((*byte)(data), int(length)), C.GoString(tag))
}

// flush ships a chunk through the instance of ctx. Without one (its Init
// failed, or it has exited), the chunk is handed back, not dropped: from
// filesystem storage Fluent Bit sends it again after a restart. Said on
// stderr: there is no instance to log through.
func flush(ctx unsafe.Pointer, data []byte, tag string) (ret int) {
	r := instance(ctx)
	if r == nil {
		defer recoverTo(nil, &ret, output.FLB_RETRY)
		n := chunk.Count(data)
		fmt.Fprintf(os.Stderr, "[gokafka] tag %s: chunk of %d records not sent: flushed to an instance that is not running (its Init failed, or it has exited); chunk will be retried\n", tag, n)
		return output.FLB_RETRY
	}
	in := r.in
	defer recoverTo(in.Logger(), &ret, output.FLB_RETRY)
	plugin.NoteHostThread()
	r.warnReloadWithWorkers()
	return in.Flush(data, tag)
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) (ret int) {
	// A hot reload exits the old instances after Fluent Bit put its own in place.
	C.gk_restore_fault_handlers()
	v, ok := contexts.LoadAndDelete(uintptr(ctx)) // at most one Exit per instance
	if !ok {
		return output.FLB_OK
	}
	r := v.(*running)
	defer recoverTo(r.in.Logger(), &ret, output.FLB_ERROR)
	r.stop()
	C.free(ctx)
	if noneRunning() {
		plugin.ForgetHostThreads()
	}
	return output.FLB_OK
}

func noneRunning() bool {
	none := true
	contexts.Range(func(_, _ any) bool {
		none = false
		return false
	})
	return none
}

//export FLBPluginUnregister
func FLBPluginUnregister(def unsafe.Pointer) {
	defer func() { _ = recover() }()
	output.FLBPluginUnregister(def)
}

func main() {}
