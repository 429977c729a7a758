/*
 * gokafka-host: a test host that loads a Fluent Bit Go output plugin (.so) and
 * drives it the way Fluent Bit v5.1 does (shared/reference/host-contract.md):
 * the same ABI structures, call order, threads, coroutine stacks, read-only
 * chunk copies, retries, graceful shutdown and hot reload.
 *
 *   gcc -O2 -g -Wall -Wextra -o gokafka-host host.c -ldl -lpthread
 *
 * Exit codes: 0 ok, 1 usage, 2 config/load/register failure, 3 init failure,
 * 4 shutdown hang (watchdog).
 *
 * Shutdown, as Fluent Bit 5.1 (flb_engine.c, flb_output_thread.c): dispatch of new
 * chunks stops, due retries run at once, the engine waits up to the grace for the
 * tasks it dispatched; then each worker thread runs every task already queued to it
 * (the stop message comes after them in its pipe) before it is joined, without a
 * timeout. Tasks still in the engine (Workers 0 flushes not yet started, retries)
 * are never run: "abandoned", or "requeued" to the new instances on hot reload.
 *
 * As Fluent Bit, the host installs SIGSEGV and SIGFPE handlers before it loads
 * the plugin and again at a hot reload; it reports whose SIGSEGV handler is in
 * place at the end ("fault_handler").
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define CO_STACK (64 * 1024) /* Fluent Bit v5.1 coroutine stack */
#define TASK_MAX 16384       /* live tasks per engine: Fluent Bit's task map limit
                                (FLB_CONFIG_DEFAULT_TASK_MAP_SIZE_LIMIT); nothing else bounds
                                the tasks dispatched to an output's workers */
#define POLL 0.05            /* longest sleep between state checks, seconds */
#define QUARANTINE 256       /* flushed chunk copies kept inaccessible before munmap */

/* ---- ABI shared with the plugin (x86-64, Fluent Bit v5.1) ---- */
struct flb_plugin_proxy_def {
    int type, proxy, flags;
    char *name, *description;
    int event_type;
    void *config_map;
};
struct flb_plugin_proxy_context {
    void *remote_context;
    void *proxy;
};
struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
    const char *(*custom_get_property)(const char *, void *);
    int (*custom_log_check)(void *, int);
};
struct flbgo_output_plugin { /* one per registration, shared by all instances */
    char *name;
    void *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
    int (*cb_init)(struct flbgo_output_plugin *);
    int (*cb_flush)(const void *, size_t, const char *);
    int (*cb_flush_ctx)(void *, const void *, size_t, char *);
    int (*cb_exit)(void);
    int (*cb_exit_ctx)(void *);
};
_Static_assert(sizeof(struct flb_plugin_proxy_def) == 48, "proxy def is 48 bytes in v5.1");

/* ---- host state ---- */
struct kv { char *key, *val; };

struct section { /* one [OUTPUT] of host.conf; survives a reload */
    struct kv *kv;
    int nkv;
    const char *name, *tag;
    int log_level, workers, retry_limit; /* retry_limit < 0: unlimited */
    double rate;
    int in_place; /* Chunk_Copy off */
    unsigned char *file;
    size_t *off;
    uint32_t *len;
    int nchunks, next, offered;
    int *requeue, nrequeue; /* chunks handed back by a reload drain */
};

struct task { int chunk, tries; double due; struct task *next; };
struct inst;
struct exec { struct inst *in; pthread_t th; struct task *head, *tail; int qlen; };

struct inst { /* the opaque o_ins handed to the plugin */
    struct section *sec;
    int idx, gen;
    char name[128];
    struct flb_plugin_proxy_context *ctx;
    struct exec *ex;
    int nex, rr, inflight, nretries;
    struct task *retries;
    long chunks, flushes, ok, retry, error, dropped;
    long abandoned, requeued; /* dispatched, never finished: discarded / handed to the next generation */
    double max_ms;
};

struct gen { /* one engine lifetime: registration + instances */
    struct flb_plugin_proxy_def *def;
    struct flbgo_output_plugin *plugin;
    struct inst *in;
    int quit;
    pthread_t engine;
};

static struct {
    int (*pre_register)(int);
    int (*reg)(struct flb_plugin_proxy_def *);
    int (*init)(struct flbgo_output_plugin *);
    int (*flush)(const void *, size_t, const char *);
    int (*flush_ctx)(void *, const void *, size_t, char *);
    int (*exit)(void);
    int (*exit_ctx)(void *);
    int (*pre_run)(int);
    void (*pre_exit)(int);
    void (*unreg)(struct flb_plugin_proxy_def *);
} sym;

static struct section *secs;
static int nsec;
static struct gen gens[2];
static int ngen;
static double grace = 5, backoff = 0.2, start_delay;
static int reload_after, quiet;
static char *reg_name;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;     /* work: chunks to dispatch, flushes done, quit */
static pthread_cond_t ctl_cv; /* main's: reload requested, engine done; so flushes do not wake it */
static volatile sig_atomic_t got_sig;
static int stopping, draining, reloading, reload_req, reload_registered, engine_done, reload_done;
static long total_chunks, total_done;
static double t_start, t_end;

static double wd_deadline; /* watchdog: 0 = disarmed; under mu */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gokafka-host: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(NULL);
    _exit(code);
}

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) die(2, "out of memory");
    return p;
}

/* Waits on c/m until the monotonic time t (or a broadcast). */
static void wait_until(pthread_cond_t *c, pthread_mutex_t *m, double t) {
    struct timespec ts = {(time_t)t, (long)((t - (time_t)t) * 1e9)};
    pthread_cond_timedwait(c, m, &ts);
}

/* ---- config ---- */
static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* Returns a malloc'd copy of v with ${VAR} replaced by the environment. */
static char *expand_env(const char *v) {
    size_t cap = strlen(v) + 1, n = 0;
    char *out = xcalloc(cap, 1);
    while (*v) {
        const char *add = v, *end;
        size_t len = 1;
        char name[256];
        if (v[0] == '$' && v[1] == '{' && (end = strchr(v, '}')) && end - v - 2 < (long)sizeof(name)) {
            memcpy(name, v + 2, end - v - 2);
            name[end - v - 2] = 0;
            add = getenv(name);
            add = add ? add : "";
            len = strlen(add);
            v = end + 1;
        } else {
            v++;
        }
        if (n + len + 1 > cap) {
            cap = (n + len + 1) * 2;
            if (!(out = realloc(out, cap))) die(2, "out of memory");
        }
        memcpy(out + n, add, len);
        out[n += len] = 0;
    }
    return out;
}

/* Keys Fluent Bit consumes itself, plus the host-only test keys. */
static int consumed(const char *k) {
    static const char *exact[] = {"name", "match", "match_regex", "alias", "log_level",
                                  "log_suppress_interval", "host", "port", "ipv6", "retry_limit",
                                  "workers", "tls", "storage.total_limit_size",
                                  "chunks", "chunk_copy", "tag", "rate", NULL};
    for (int i = 0; exact[i]; i++)
        if (!strcasecmp(k, exact[i])) return 1;
    return !strncasecmp(k, "net.", 4) || !strncasecmp(k, "oauth2", 6) || !strncasecmp(k, "tls.", 4);
}

/* First value of key (case-insensitive) or NULL when unset or empty. */
static const char *sec_get(struct section *s, const char *key) {
    for (int i = 0; i < s->nkv; i++)
        if (!strcasecmp(s->kv[i].key, key)) return s->kv[i].val[0] ? s->kv[i].val : NULL;
    return NULL;
}

/* The chunk file is mapped, not read: a chunk's pages are given back after
 * each flush of it (forget_chunk), so the host's resident memory is the
 * plugin's plus the chunks being flushed, as in Fluent Bit with filesystem
 * buffering. */
static void load_chunks(struct section *s, const char *path) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) die(2, "cannot open chunk file %s", path);
    long size = st.st_size;
    for (int pass = 0; pass < 2; pass++) { /* count, then index; read() leaves no pages mapped */
        int n = 0;
        for (long p = 0; p < size;) {
            unsigned char h[4];
            if (size - p < 4 || pread(fd, h, 4, p) != 4) die(2, "%s: truncated length at offset %ld", path, p);
            uint32_t len = h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24;
            if ((uint64_t)len > (uint64_t)(size - p - 4))
                die(2, "%s: chunk at offset %ld runs past the end", path, p);
            if (len > 0 && pass) {
                s->off[n] = p + 4;
                s->len[n] = len;
            }
            n += len > 0; /* chunks with zero records are never delivered */
            p += 4 + (long)len;
        }
        if (!pass) {
            s->nchunks = n;
            s->off = xcalloc(n, sizeof(size_t));
            s->len = xcalloc(n, sizeof(uint32_t));
            s->requeue = xcalloc(n, sizeof(int));
        }
    }
    s->file = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (s->file == MAP_FAILED) die(2, "cannot map %s", path);
    close(fd);
}

static int parse_level(const char *v) {
    static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    if (!v) return 3;
    for (int i = 0; i < 6; i++)
        if (!strcasecmp(v, names[i])) return i;
    die(2, "bad Log_Level '%s'", v);
    return 0;
}

static void load_conf(const char *path) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    int in_output = 0;
    if (!f) die(2, "cannot open config %s", path);
    while (getline(&line, &cap, f) >= 0) {
        char *p = trim(line);
        if (!*p || *p == '#' || *p == '@') continue;
        if (*p == '[') {
            in_output = !strcasecmp(p, "[OUTPUT]");
            if (in_output) {
                secs = realloc(secs, (nsec + 1) * sizeof(*secs));
                memset(&secs[nsec++], 0, sizeof(*secs));
            }
            continue;
        }
        if (!in_output) continue;
        struct section *s = &secs[nsec - 1];
        char *v = p;
        while (*v && !isspace((unsigned char)*v)) v++;
        if (*v) *v++ = 0;
        s->kv = realloc(s->kv, (s->nkv + 1) * sizeof(struct kv));
        s->kv[s->nkv].key = strdup(p);
        s->kv[s->nkv++].val = expand_env(trim(v)); /* env is fixed for the run: same as lookup time */
    }
    free(line);
    fclose(f);
    for (int i = 0; i < nsec; i++) {
        struct section *s = &secs[i];
        const char *v;
        if (!(s->name = sec_get(s, "name"))) die(2, "[OUTPUT] #%d has no Name", i);
        s->tag = (v = sec_get(s, "tag")) ? v : "test";
        s->log_level = parse_level(sec_get(s, "log_level"));
        s->workers = (v = sec_get(s, "workers")) ? atoi(v) : 0;
        s->rate = (v = sec_get(s, "rate")) ? atof(v) : 0;
        s->in_place = (v = sec_get(s, "chunk_copy")) && (!strcasecmp(v, "off") || !strcasecmp(v, "false"));
        s->retry_limit = 1;
        if ((v = sec_get(s, "retry_limit"))) {
            if (!strcasecmp(v, "no_limits") || !strcasecmp(v, "false") || !strcasecmp(v, "off"))
                s->retry_limit = -1;
            else if (!strcasecmp(v, "no_retries"))
                s->retry_limit = 0;
            else if ((s->retry_limit = atoi(v)) <= 0)
                s->retry_limit = 1; /* as Fluent Bit: invalid -> default */
        }
        if ((v = sec_get(s, "chunks"))) load_chunks(s, v);
        total_chunks += s->nchunks;
    }
}

/* ---- the flb_api handed to the plugin ---- */
static int valid_ins(void *o) {
    for (int g = 0; g < ngen; g++)
        if (gens[g].in && o >= (void *)gens[g].in && o < (void *)(gens[g].in + nsec)) return 1;
    fprintf(stderr, "[host] ERROR: plugin passed an unknown o_ins %p\n", o);
    return 0;
}

static const char *api_output_get_property(const char *key, void *o_ins) {
    if (!key || !valid_ins(o_ins) || consumed(key)) return NULL;
    return sec_get(((struct inst *)o_ins)->sec, key);
}

static int api_output_log_check(void *o_ins, int level) {
    return valid_ins(o_ins) && ((struct inst *)o_ins)->sec->log_level >= level;
}

static void api_log_print(int level, const char *file, int line, const char *fmt, ...) {
    static const char *names[] = {"help", "error", "warn", "info", "debug", "trace"};
    char buf[8192];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    (void)file;
    (void)line;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof(buf), "[%d/%02d/%02d %02d:%02d:%02d.%03ld] [%5s] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level >= 0 && level <= 5 ? names[level] : "unknown");
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
    va_end(ap);
    n = strlen(buf);
    if (buf[n - 1] != '\n') buf[n++] = '\n';
    fwrite(buf, 1, n, stderr);
}

static const char *api_null_prop(const char *k, void *o) { (void)k; (void)o; return NULL; }
static void *api_null_cmt(void *o) { (void)o; return NULL; }
static int api_no_log(void *o, int l) { (void)o; (void)l; return 0; }
static struct flb_api api = {api_output_get_property, api_null_prop, api_null_cmt, api_null_cmt, api_log_print,
                             api_no_log, api_output_log_check, api_null_prop, api_no_log};

/* ---- registration ---- */
static void *must_sym(void *h, const char *name, int required) {
    dlerror();
    void *p = dlsym(h, name);
    if (dlerror() != NULL) p = NULL;
    if (!p && required) die(2, "plugin lacks required symbol %s", name);
    return p;
}

/* PreRegister(hot) + Register(def) on the calling (main) thread. */
static void register_plugin(struct gen *g, int hot) {
    static const char *builtin[] = {"kafka", "kafka-rest", "stdout", "null", "http", "es", "forward",
                                    "file", "s3", "loki", "counter", "exit", "tcp", "udp", "syslog",
                                    "opentelemetry", "prometheus_exporter", "cloudwatch_logs", NULL};
    if (sym.pre_register && sym.pre_register(hot) == -1) die(2, "FLBPluginPreRegister(%d) failed", hot);
    g->def = xcalloc(1, sizeof(*g->def));
    if (sym.reg(g->def) == -1) die(2, "FLBPluginRegister failed");
    if (g->def->type != 2 || g->def->proxy != 11 || !g->def->name || !g->def->name[0])
        die(2, "bad registration: type=%d (want 2) proxy=%d (want 11) name=%s", g->def->type,
            g->def->proxy, g->def->name ? g->def->name : "(null)");
    for (int i = 0; builtin[i]; i++)
        if (!strcasecmp(g->def->name, builtin[i]))
            die(2, "plugin name '%s' is taken by a Fluent Bit built-in output", g->def->name);
    if (!reg_name) reg_name = strdup(g->def->name);
    struct flbgo_output_plugin *p = g->plugin = xcalloc(1, sizeof(*p));
    *p = (struct flbgo_output_plugin){.name = strdup(g->def->name), .cb_init = sym.init, .cb_flush = sym.flush,
                                      .cb_flush_ctx = sym.flush_ctx, .cb_exit = sym.exit, .cb_exit_ctx = sym.exit_ctx};
    g->in = xcalloc(nsec, sizeof(struct inst));
    for (int i = 0; i < nsec; i++) {
        struct inst *in = &g->in[i];
        if (strcasecmp(secs[i].name, reg_name))
            die(2, "[OUTPUT] #%d: Name '%s' is not the registered plugin '%s'", i, secs[i].name, reg_name);
        in->sec = &secs[i];
        in->idx = i;
        in->gen = g - gens;
        snprintf(in->name, sizeof(in->name), "%s.%d", reg_name, i);
        in->ctx = xcalloc(1, sizeof(*in->ctx));
        in->ctx->proxy = p;
        in->nex = secs[i].workers > 0 ? secs[i].workers : 1;
        in->ex = xcalloc(in->nex, sizeof(struct exec));
        for (int w = 0; w < in->nex; w++) in->ex[w].in = in;
    }
}

/* Unregister(def) on the main thread, then free what Fluent Bit frees (poisoned first). */
static void unregister_plugin(struct gen *g) {
    if (sym.unreg) sym.unreg(g->def);
    free(g->plugin->name);
    memset(g->plugin, 0xA5, sizeof(*g->plugin));
    free(g->plugin);
    memset(g->def, 0xA5, sizeof(*g->def));
    free(g->def);
}

/* ---- scheduling (all under mu) ---- */
static void push(struct exec *e, struct task *t) {
    t->next = NULL;
    if (e->tail) e->tail->next = t;
    else e->head = t;
    e->tail = t;
    e->qlen++;
}

static struct task *pop(struct exec *e) {
    struct task *t = e->head;
    if (t && !(e->head = t->next)) e->tail = NULL;
    e->qlen -= t != NULL;
    return t;
}

/* Next executor in round-robin order, busy or not, as flb_tp_thread_get_rr. */
static struct exec *pick(struct inst *in) {
    struct exec *e = &in->ex[in->rr];
    in->rr = (in->rr + 1) % in->nex;
    return e;
}

static long outstanding(struct gen *g);

static int new_chunk_ready(struct section *s, double now) {
    if (s->nrequeue) return 1;
    return s->next < s->nchunks && (s->rate <= 0 || now >= t_start + s->offered / s->rate);
}

/* Hands due retries and (unless draining) new chunks to executors: every ready
 * chunk at once, as Fluent Bit's flush tick, while the engine has fewer than
 * TASK_MAX live tasks. */
static int dispatch(struct gen *g, double now) {
    int n = 0;
    long live = outstanding(g);
    for (int i = 0; i < nsec; i++) {
        struct inst *in = &g->in[i];
        for (struct task **pp = &in->retries; *pp;) {
            struct task *t = *pp;
            if (draining || t->due <= now) {
                *pp = t->next;
                in->nretries--;
                push(pick(in), t);
                n++;
            } else {
                pp = &t->next;
            }
        }
        while (!draining && live < TASK_MAX && new_chunk_ready(in->sec, now)) {
            struct section *s = in->sec;
            struct task *t = xcalloc(1, sizeof(*t));
            if (s->nrequeue) {
                t->chunk = s->requeue[--s->nrequeue];
            } else {
                t->chunk = s->next++;
                s->offered++;
            }
            push(pick(in), t);
            in->chunks++;
            live++;
            n++;
        }
    }
    if (n) pthread_cond_broadcast(&cv);
    return n;
}

static double next_wake(struct gen *g, double now) {
    double t = now + POLL;
    for (int i = 0; i < nsec; i++) {
        struct section *s = &secs[i];
        for (struct task *r = g->in[i].retries; r; r = r->next)
            if (r->due < t) t = r->due;
        if (s->rate > 0 && s->next < s->nchunks) {
            /* A chunk already due waits for a free task slot, whose end (serve) wakes the engine. */
            double due = t_start + s->offered / s->rate;
            if (due > now && due < t) t = due;
        }
    }
    return t;
}

static long outstanding(struct gen *g) {
    long n = 0;
    for (int i = 0; i < nsec; i++) {
        n += g->in[i].inflight + g->in[i].nretries;
        for (int w = 0; w < g->in[i].nex; w++) n += g->in[i].ex[w].qlen;
    }
    return n;
}

/* Gives back the resident pages of a chunk after a flush of it (read again
 * from the file for a retry), as Fluent Bit keeps chunks waiting for a retry
 * on disk. */
static void forget_chunk(struct section *s, int chunk) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = (uintptr_t)(s->file + s->off[chunk]) & ~(page - 1);
    uintptr_t to = ((uintptr_t)(s->file + s->off[chunk] + s->len[chunk]) + page - 1) & ~(page - 1);
    madvise((void *)from, to - from, MADV_DONTNEED);
}

static void complete(struct inst *in, struct task *t, int ret, double ms) {
    struct section *s = in->sec;
    in->flushes++;
    in->inflight--;
    if (ms > in->max_ms) in->max_ms = ms;
    if (ret == 1) {
        in->ok++;
    } else if (ret == 2) {
        in->retry++;
        if (s->retry_limit < 0 || t->tries < s->retry_limit) {
            t->tries++;
            t->due = now_s() + (draining ? 0 : backoff * (1 + drand48()));
            t->next = in->retries;
            in->retries = t;
            in->nretries++;
            return;
        }
        in->dropped++;
    } else {
        in->error++;
        in->dropped++;
    }
    total_done++;
    free(t);
}

/* ---- flushing ---- */
struct call { struct gen *g; struct inst *in; const void *data; size_t len; char *tag; int ret; };
static __thread struct call *co_cur;
static __thread ucontext_t co_caller;

static void co_main(void) {
    struct call *c = co_cur;
    if (c->g->plugin->cb_flush_ctx)
        c->ret = c->g->plugin->cb_flush_ctx(c->in->ctx->remote_context, c->data, c->len, c->tag);
    else
        c->ret = c->g->plugin->cb_flush(c->data, c->len, c->tag);
}

/* Revokes a chunk copy right after its flush: PROT_NONE and pages dropped at once, munmap
 * QUARANTINE flushes later, so a plugin that keeps `data` faults instead of reading a reused
 * mapping. */
static void release(void *data, size_t len) {
    static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
    static struct { void *p; size_t len; } q[QUARANTINE];
    static int next;
    mprotect(data, len, PROT_NONE);
    madvise(data, len, MADV_DONTNEED);
    pthread_mutex_lock(&qmu);
    if (q[next].p) munmap(q[next].p, q[next].len);
    q[next].p = data;
    q[next].len = len;
    next = (next + 1) % QUARANTINE;
    pthread_mutex_unlock(&qmu);
}

/* The bytes a flush of chunk gets: a read-only copy (revoked by release), or with
 * Chunk_Copy off the chunk in place in the read-only file mapping, as Fluent Bit
 * passes its own buffer. */
__attribute__((noinline)) static void *chunk_data(struct section *s, int chunk) {
    size_t len = s->len[chunk];
    if (s->in_place) return s->file + s->off[chunk];
    void *data = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) die(2, "mmap %zu bytes failed", len);
    memcpy(data, s->file + s->off[chunk], len);
    mprotect(data, len, PROT_READ);
    return data;
}

/* One flush of the chunk's bytes and a malloc'd tag, called on a coroutine stack. */
static int run_flush(struct gen *g, struct inst *in, struct task *t, double *ms) {
    struct section *s = in->sec;
    size_t len = s->len[t->chunk];
    void *data = chunk_data(s, t->chunk);
    struct call c = {g, in, data, len, strdup(s->tag), -1};
    ucontext_t co;
    char *stack = malloc(CO_STACK);
    getcontext(&co);
    co.uc_stack.ss_sp = stack;
    co.uc_stack.ss_size = CO_STACK;
    co.uc_link = &co_caller;
    makecontext(&co, co_main, 0);
    co_cur = &c;
    double t0 = now_s();
    swapcontext(&co_caller, &co);
    *ms = (now_s() - t0) * 1000;
    free(stack);
    memset(c.tag, '#', strlen(c.tag)); /* a kept tag reads as garbage */
    free(c.tag);
    if (!s->in_place) release(data, len);
    forget_chunk(s, t->chunk);
    if (!quiet)
        fprintf(stderr, "[host] %s chunk %d try %d: %zu bytes -> %d in %.2f ms\n", in->name, t->chunk,
                t->tries + 1, len, c.ret, *ms);
    return c.ret;
}

/* Pops and runs one task of e; called and returns with mu held. */
static void serve(struct gen *g, struct exec *e) {
    struct task *t = pop(e);
    double ms;
    e->in->inflight++;
    pthread_mutex_unlock(&mu);
    int ret = run_flush(g, e->in, t, &ms);
    pthread_mutex_lock(&mu);
    complete(e->in, t, ret, ms);
    if (g->quit && wd_deadline > 0) wd_deadline = now_s() + grace + 10; /* progress: not a hang */
    pthread_cond_broadcast(&cv);
}

static void *worker_main(void *arg) {
    struct exec *e = arg;
    struct gen *g = &gens[e->in->gen];
    pthread_mutex_lock(&mu);
    while (!g->quit) {
        double now = now_s();
        dispatch(g, now);
        if (e->head) serve(g, e);
        else wait_until(&cv, &mu, next_wake(g, now));
    }
    /* Stopped: as Fluent Bit's worker, run every task that reached this worker
     * before the stop message; nothing new comes (nobody dispatches after quit).
     * A retry asked for now is never scheduled (the engine is gone): abandoned. */
    while (e->head) serve(g, e);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Fluent Bit joins workers without a timeout; we only detect a hang: armed when
 * the engine stops (grace+10 s), pushed back by each flush that ends after that,
 * so a worker running a long queue of flushes is not a hang but one flush (or
 * Exit) stuck for grace+10 s is. */
static void *watchdog_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        if (wd_deadline > 0 && now_s() >= wd_deadline) {
            fprintf(stderr, "HANG: shutdown exceeded grace+10s without a flush ending\n");
            _exit(4);
        }
        wait_until(&ctl_cv, &mu, now_s() + POLL);
    }
    return NULL;
}

static void exit_instance(struct inst *in, int hot) {
    if (sym.pre_exit) sym.pre_exit(hot);
    if (sym.exit_ctx) sym.exit_ctx(in->ctx->remote_context);
    else if (sym.exit) sym.exit();
    memset(in->ctx, 0xA5, sizeof(*in->ctx));
    free(in->ctx);
    in->ctx = NULL;
}

/* The engine thread: Init, PreRun, workers, Workers-0 flushes, shutdown and Exit. */
static void *engine_main(void *arg) {
    struct gen *g = arg;
    struct flbgo_output_plugin *p = g->plugin;
    for (int i = 0; i < nsec; i++) {
        p->api = &api;
        p->o_ins = &g->in[i];
        p->context = g->in[i].ctx;
        if (p->cb_init(p) <= 0) {
            fprintf(stderr, "init failed: instance %d (%s)\n", i, g->in[i].name);
            /* Fluent Bit's shutdown exits every other instance, those never
             * initialised too: their remote context is NULL. */
            for (int j = 0; j < nsec; j++)
                if (j != i) exit_instance(&g->in[j], 0);
            fflush(NULL);
            _exit(3);
        }
    }
    for (int i = 0; i < nsec && sym.pre_run; i++)
        sym.pre_run(reload_after > 0); /* Fluent Bit passes config->enable_hot_reload */
    pthread_mutex_lock(&mu);
    if (!t_start) {
        for (double until = now_s() + start_delay; now_s() < until;)
            wait_until(&cv, &mu, until);
        t_start = now_s();
    }
    for (int i = 0; i < nsec; i++)
        for (int w = 0; g->in[i].sec->workers > 0 && w < g->in[i].nex; w++)
            pthread_create(&g->in[i].ex[w].th, NULL, worker_main, &g->in[i].ex[w]);
    double deadline = 0;
    int rr = 0;
    for (;;) {
        double now = now_s();
        if (got_sig && !stopping) {
            fprintf(stderr, "[host] caught signal %d, grace %.1fs\n", (int)got_sig, grace);
            stopping = draining = 1;
            deadline = now + grace;
        }
        if (!draining && !reload_done && reload_after > 0 && total_done >= reload_after) {
            fprintf(stderr, "[host] %ld chunks done: hot reload\n", total_done);
            reloading = draining = reload_req = 1;
            deadline = now + grace;
            pthread_cond_broadcast(&ctl_cv);
        }
        dispatch(g, now);
        if (total_done >= total_chunks || (draining && (!outstanding(g) || now >= deadline))) break;
        struct exec *e = NULL; /* Workers-0 instances share this thread */
        for (int k = 0; k < nsec && !e; k++) {
            struct inst *in = &g->in[(rr + k) % nsec];
            if (in->sec->workers <= 0 && in->ex[0].head) {
                e = &in->ex[0];
                rr = (rr + k + 1) % nsec;
            }
        }
        if (e) serve(g, e);
        else wait_until(&cv, &mu, next_wake(g, now));
    }
    g->quit = 1; /* workers run what is queued to them, then end */
    wd_deadline = now_s() + grace + 10; /* disarmed by main after Unregister */
    pthread_cond_broadcast(&cv);
    int hot = reloading;
    long queued = 0;
    for (int i = 0; i < nsec; i++)
        for (int w = 0; g->in[i].sec->workers > 0 && w < g->in[i].nex; w++) queued += g->in[i].ex[w].qlen;
    if (queued)
        fprintf(stderr, "[host] stopping: %ld task(s) queued to worker threads run before they are joined\n",
                queued);
    while (hot && !reload_registered) /* the new registration comes first */
        wait_until(&cv, &mu, now_s() + POLL);
    pthread_mutex_unlock(&mu);

    /* As flb_output_exit: an instance at a time, its workers joined, then its
     * Exit, while the later instances' workers run what is queued to them. */
    for (int i = 0; i < nsec; i++) {
        struct inst *in = &g->in[i];
        for (int w = 0; in->sec->workers > 0 && w < in->nex; w++)
            pthread_join(in->ex[w].th, NULL);
        pthread_mutex_lock(&mu);
        /* Leftovers (Workers 0 flushes the engine never started, retries not
         * run): back to storage on reload, else abandoned; Fluent Bit never
         * runs them. */
        struct task *t;
        for (int w = 0; w < in->nex; w++)
            while ((t = pop(&in->ex[w]))) {
                t->next = in->retries;
                in->retries = t;
            }
        while ((t = in->retries)) {
            in->retries = t->next;
            if (hot) {
                in->sec->requeue[in->sec->nrequeue++] = t->chunk;
                in->requeued++;
            } else {
                in->abandoned++;
            }
            free(t);
        }
        in->nretries = 0;
        if (in->abandoned + in->requeued)
            fprintf(stderr, "[host] %s: %ld dispatched chunk(s) never finished: %s\n", in->name,
                    in->abandoned + in->requeued, hot ? "requeued for the new instance" : "abandoned");
        pthread_mutex_unlock(&mu);
        exit_instance(in, hot);
    }

    pthread_mutex_lock(&mu);
    if (!hot) t_end = now_s();
    engine_done = 1;
    pthread_cond_broadcast(&ctl_cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void on_signal(int sig) { got_sig = sig; }

/* Fluent Bit's flb_signal_init: its handlers for the faults, installed with
 * signal() before the plugin loads and again on every SIGHUP (hot reload)
 * and SIGCONT. */
static void on_fault(int sig) {
    static const char msg[] = "[host] caught a fault signal: abort\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) abort();
    abort();
}

static void install_fault_handlers(void) {
    signal(SIGSEGV, on_fault);
    signal(SIGFPE, on_fault);
}

static void (*plugin_fault_handler)(int); /* SIGSEGV's once the plugin loaded: the Go runtime's */

/* fault_handler names the SIGSEGV handler in place: the host's, the one the
 * plugin installed when it loaded, or another. */
static const char *fault_handler(void) {
    struct sigaction sa;
    sigaction(SIGSEGV, NULL, &sa);
    return sa.sa_handler == on_fault ? "host" : sa.sa_handler == plugin_fault_handler ? "plugin" : "other";
}

static void usage(void) {
    fprintf(stderr,
            "usage: gokafka-host -p plugin.so -c host.conf [-g grace_s] [-b retry_backoff_ms]\n"
            "                    [-d start_delay_s] [-R reload_after_chunks] [-q]\n"
            "  -p  Go output plugin to dlopen (as Fluent Bit -e does)\n"
            "  -c  [OUTPUT] sections in Fluent Bit classic format; host-only keys:\n"
            "      Chunks <file> (u32 LE length + bytes, repeated), Tag <tag> (default test),\n"
            "      Rate <chunks/s> (default: as fast as possible),\n"
            "      Chunk_Copy off (pass each chunk in place in the file mapping instead of a\n"
            "      fresh read-only copy revoked after the flush; for benchmarks)\n"
            "  -g  shutdown grace in seconds (default 5)\n"
            "  -b  retry backoff base in ms, jittered 1x-2x (default 200)\n"
            "  -d  first flush this long after Init, as Fluent Bit's comes one Flush interval\n"
            "      after its start (default 0); wall_s starts then\n"
            "  -R  hot reload once after N chunks are done\n"
            "  -q  no per-flush lines on stderr\n"
            "Prints one JSON line per instance and a summary line on stdout; per instance\n"
            "chunks = ok + dropped + abandoned (never finished at shutdown) + requeued (hot reload).\n"
            "Exit: 0 ok, 1 usage, 2 config/load/register error, 3 init failed, 4 shutdown hang.\n");
    exit(1);
}

/* Peak resident memory of this process image (VmHWM). Not ru_maxrss: Linux
 * carries the parent's peak across execve into it, so a host started by a
 * large test binary would report the test binary's peak. */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    const char *plugin = NULL, *conf = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "p:c:g:b:d:R:qh")) != -1) {
        switch (opt) {
        case 'p': plugin = optarg; break;
        case 'c': conf = optarg; break;
        case 'g': grace = atof(optarg); break;
        case 'b': backoff = atof(optarg) / 1000; break;
        case 'd': start_delay = atof(optarg); break;
        case 'R': reload_after = atoi(optarg); break;
        case 'q': quiet = 1; break;
        default: usage();
        }
    }
    if (!plugin || !conf || optind != argc) usage();

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_cond_init(&ctl_cv, &ca);
    srand48(getpid());
    load_conf(conf);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_ONSTACK | SA_RESTART; /* SA_ONSTACK: required next to the Go runtime */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    install_fault_handlers();

    void *h = dlopen(plugin, RTLD_LAZY);
    if (!h) die(2, "dlopen %s: %s", plugin, dlerror());
    sym.reg = must_sym(h, "FLBPluginRegister", 1);
    sym.init = must_sym(h, "FLBPluginInit", 1);
    sym.flush_ctx = must_sym(h, "FLBPluginFlushCtx", 0);
    sym.flush = must_sym(h, "FLBPluginFlush", !sym.flush_ctx);
    sym.exit_ctx = must_sym(h, "FLBPluginExitCtx", 0);
    sym.exit = must_sym(h, "FLBPluginExit", 0);
    sym.pre_register = must_sym(h, "FLBPluginPreRegister", 0);
    sym.pre_run = must_sym(h, "FLBPluginOutputPreRun", 0);
    sym.pre_exit = must_sym(h, "FLBPluginOutputPreExit", 0);
    sym.unreg = must_sym(h, "FLBPluginUnregister", 0);

    pthread_t wd;
    pthread_create(&wd, NULL, watchdog_main, NULL);
    register_plugin(&gens[0], 0);
    ngen = 1;
    struct sigaction loaded;
    sigaction(SIGSEGV, NULL, &loaded);
    plugin_fault_handler = loaded.sa_handler;
    fprintf(stderr, "[host] loaded %s: plugin '%s', %d instance(s), %ld chunk(s)\n", plugin, reg_name, nsec,
            total_chunks);
    for (;;) {
        struct gen *g = &gens[ngen - 1];
        pthread_create(&g->engine, NULL, engine_main, g);
        pthread_mutex_lock(&mu);
        while (!reload_req && !engine_done) wait_until(&ctl_cv, &mu, now_s() + POLL);
        int rl = reload_req;
        pthread_mutex_unlock(&mu);
        if (!rl) {
            pthread_join(g->engine, NULL);
            break;
        }
        install_fault_handlers(); /* in Fluent Bit's SIGHUP handler */
        register_plugin(&gens[ngen], 1); /* Fluent Bit loads the new config before stopping the old */
        pthread_mutex_lock(&mu);
        ngen++;
        reload_registered = 1;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        pthread_join(g->engine, NULL);
        unregister_plugin(g);
        pthread_mutex_lock(&mu);
        reload_req = reload_registered = reloading = engine_done = 0;
        wd_deadline = 0;
        draining = stopping; /* a signal during the reload still stops the new engine */
        reload_done = 1;
        pthread_mutex_unlock(&mu);
    }
    unregister_plugin(&gens[ngen - 1]);
    pthread_mutex_lock(&mu);
    wd_deadline = 0;
    pthread_mutex_unlock(&mu);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    for (int g = 0; g < ngen; g++)
        for (int i = 0; i < nsec; i++) {
            struct inst *in = &gens[g].in[i];
            printf("{\"instance\":%d,\"gen\":%d,\"name\":\"%s\",\"chunks\":%ld,\"flushes\":%ld,\"ok\":%ld,"
                   "\"retry\":%ld,\"error\":%ld,\"dropped\":%ld,\"abandoned\":%ld,\"requeued\":%ld,"
                   "\"max_flush_ms\":%.3f}\n",
                   i, g, in->name, in->chunks, in->flushes, in->ok, in->retry, in->error, in->dropped,
                   in->abandoned, in->requeued, in->max_ms);
        }
    printf("{\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"wall_s\":%.3f,\"maxrss_kb\":%ld,\"fault_handler\":\"%s\","
           "\"exit\":\"ok\"}\n",
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
           t_end - t_start, peak_rss_kb(), fault_handler());
    fflush(NULL);
    _exit(0); /* never dlclose; skip atexit work racing the Go runtime's threads */
}
