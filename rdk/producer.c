#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "producer.h"

struct gk_ctx {
	pthread_mutex_t mu;
	pthread_cond_t done_cond; // signalled for flushes waiting in gk_wait
	gk_batch *done_head, *done_tail; // batches whose last report came
	int waiters;  // flushes in gk_wait
	int producing; // gk_produce calls in progress (atomic)
	unsigned produced, requested; // gk_produce calls ended, and as of the last request_send (atomic)
	int waited_out; // the last gk_wait ended with nothing completed
	int send_at_once; // a waiting flush makes librdkafka send without lingering
	int send_now;  // poll_main is to make librdkafka send without lingering (atomic)
	int in_flush;  // poll_main is in rd_kafka_flush for send_now (poll thread only)
	int kicked;   // gk_wake since the last gk_wait returned
	int notified; // the pipe was written and gk_take has not run since
	int wake_w;  // the pipe's write end (gk_start)
	gk_event events[GK_MAX_EVENTS];
	int nevents, dropped;
	char *stats; // librdkafka's latest statistics (JSON), malloc'd
	char *bootstrap; // bootstrap.servers, malloc'd
	int token_wanted; // librdkafka asks for an OAUTHBEARER token (c->mu)
	int readd;       // add bootstrap to the brokers again (poll thread only)
	time_t readded;  // when last, monotonic seconds (poll thread only)
	time_t throttle_said; // when a throttle was last passed on, monotonic seconds (poll thread only)
	rd_kafka_t *rk;
	rd_kafka_queue_t *mainq; // where delivery reports come, for poll_main
	pthread_t poller;
	int polling, stop;
};

gk_ctx *gk_ctx_new(void) {
	gk_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->done_cond, &attr);
	pthread_condattr_destroy(&attr);
	c->wake_w = -1;
	return c;
}

void gk_ctx_free(gk_ctx *c) {
	free(c->stats);
	free(c->bootstrap);
	pthread_cond_destroy(&c->done_cond);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

// wake_poll_loop writes one byte in the pipe, which wakes the Go poll loop,
// unless one is there that gk_take has not answered yet; c->mu is held.
static void wake_poll_loop(gk_ctx *c) {
	if (!c->notified && c->wake_w >= 0) {
		c->notified = 1;
		ssize_t n = write(c->wake_w, "e", 1);
		(void)n; // a full pipe is already readable
	}
}

// notify tells Go that batches completed or events came, and unlocks c->mu,
// which the caller holds. A flush waiting in gk_wait takes completed batches:
// it is woken after the unlock, so that it does not wake only to wait for
// the lock. Otherwise, and for events, the Go poll loop is woken.
static void notify(gk_ctx *c, int event) {
	int wake_waiters = !event && c->waiters > 0;
	if (!wake_waiters)
		wake_poll_loop(c);
	pthread_mutex_unlock(&c->mu);
	if (wake_waiters)
		pthread_cond_broadcast(&c->done_cond);
}

static int64_t live_batches; // allocated and not freed (atomic)

int64_t gk_live_batches(void) { return __atomic_load_n(&live_batches, __ATOMIC_SEQ_CST); }

gk_batch *gk_batch_new(int32_t n) {
	gk_batch *b = calloc(1, sizeof(*b) + (size_t)n * sizeof(gk_batch *));
	if (!b)
		return NULL;
	__atomic_add_fetch(&live_batches, 1, __ATOMIC_SEQ_CST);
	b->remaining = n;
	b->partition = -1;
	for (int32_t i = 0; i < n; i++)
		b->slots[i] = b;
	return b;
}

void gk_batch_free(gk_batch *b) {
	__atomic_sub_fetch(&live_batches, 1, __ATOMIC_SEQ_CST);
	free(b->fail_idx);
	free(b->fail_err);
	free(b);
}

static int fail_allocs; // failure-array allocations to fail, for tests (atomic)

void gk_fail_allocs(int n) { __atomic_store_n(&fail_allocs, n, __ATOMIC_SEQ_CST); }

// grow_failures makes room for one more failure in b's arrays; 0 when there
// is no memory for it. c->mu is held.
static int grow_failures(gk_batch *b) {
	if (b->nfail < b->capfail)
		return 1;
	int n = __atomic_load_n(&fail_allocs, __ATOMIC_SEQ_CST);
	while (n > 0 && !__atomic_compare_exchange_n(&fail_allocs, &n, n - 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	if (n > 0)
		return 0;
	int32_t cap = b->capfail ? b->capfail * 2 : 16;
	int32_t *fi = realloc(b->fail_idx, cap * sizeof(int32_t));
	if (!fi)
		return 0;
	b->fail_idx = fi;
	int32_t *fe = realloc(b->fail_err, cap * sizeof(int32_t));
	if (!fe)
		return 0;
	b->fail_err = fe;
	b->capfail = cap;
	return 1;
}

// settle counts one report for record idx of b; err 0 means delivered. A
// failure that cannot be recorded marks the batch (unrecorded), so that it
// never passes for an acknowledgement.
static void settle(gk_ctx *c, gk_batch *b, int32_t idx, int err) {
	if (err) {
		pthread_mutex_lock(&c->mu);
		if (grow_failures(b)) {
			b->fail_idx[b->nfail] = idx;
			b->fail_err[b->nfail] = err;
			b->nfail++;
		} else if (!b->unrecorded) {
			b->unrecorded = err;
		}
		pthread_mutex_unlock(&c->mu);
	}
	if (__atomic_sub_fetch(&b->remaining, 1, __ATOMIC_ACQ_REL) == 0) {
		pthread_mutex_lock(&c->mu);
		b->next_done = NULL;
		if (c->done_tail)
			c->done_tail->next_done = b;
		else
			c->done_head = b;
		c->done_tail = b;
		notify(c, 0);
	}
}

// on_delivery counts a record's report. During poll_main's rd_kafka_flush,
// the first report that comes while another flush is producing ends that
// call: by then the waiting flush's records have normally gone out, and
// librdkafka, while flushing, would send the producing flush's records in
// pieces as they come and, once a partition has a request in flight, poll
// its socket without sleeping (Workers 2: CPU -6 %, wall time -7 %).
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
	gk_batch **slot = m->_private;
	gk_batch *b = *slot;
	gk_ctx *c = opaque;
	settle(c, b, (int32_t)(slot - b->slots), m->err);
	if (c->in_flush && __atomic_load_n(&c->producing, __ATOMIC_SEQ_CST) > 0) {
		c->in_flush = 0;
		rd_kafka_yield(rk);
	}
}

static void add_event(gk_ctx *c, int level, int err, const char *text) {
	pthread_mutex_lock(&c->mu);
	if (c->nevents < GK_MAX_EVENTS) {
		gk_event *e = &c->events[c->nevents++];
		e->level = level;
		e->err = err;
		snprintf(e->text, sizeof(e->text), "%s", text);
	} else {
		c->dropped++;
	}
	notify(c, 1);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
	char buf[512];
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char fatal[400];
		err = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
		snprintf(buf, sizeof(buf), "fatal error: %s: %s", rd_kafka_err2name(err), fatal);
		add_event(opaque, 2, err, buf);
		return;
	}
	gk_ctx *c = opaque;
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		c->readd = 1; // by poll_main
	snprintf(buf, sizeof(buf), "%s: %s", rd_kafka_err2name(err), reason);
	add_event(c, 3, err, buf);
}

// readd_maybe adds bootstrap.servers to the brokers again after every broker
// was down: librdkafka 2.15 drops every broker it knows when a metadata
// response lists none (a single broker that its controller fenced for a
// moment sends one), and then does not always re-bootstrap by itself; the
// producer never sent again (seen in the freeze tests). At most every 30 s:
// each call adds to a list that librdkafka keeps, and walks at each of its
// own re-bootstraps, until the producer ends.
static void readd_maybe(gk_ctx *c) {
	if (!c->readd || !c->bootstrap)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (c->readded && now.tv_sec - c->readded < 30)
		return;
	rd_kafka_brokers_add(c->rk, c->bootstrap);
	c->readd = 0;
	c->readded = now.tv_sec > 0 ? now.tv_sec : 1;
	add_event(c, 7, 0, "every broker was down: bootstrap.servers added to the brokers again"); // debug: held back by the 30 s, it may come once the brokers are back
}

// on_throttle passes on, as a warning, that a broker throttles the producer
// (a client quota), at most every 10 s: each of its responses says so while
// it lasts. The log shows it once per cause and causeInterval (logCause).
static void on_throttle(rd_kafka_t *rk, const char *broker_name, int32_t broker_id, int throttle_time_ms, void *opaque) {
	(void)rk;
	gk_ctx *c = opaque;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (throttle_time_ms <= 0 || (c->throttle_said && now.tv_sec - c->throttle_said < 10))
		return;
	c->throttle_said = now.tv_sec > 0 ? now.tv_sec : 1;
	char buf[512];
	snprintf(buf, sizeof(buf),
		 "THROTTLE: broker %s/%d throttles this producer for %d ms: a client quota of the cluster (producer_byte_rate, "
		 "request_percentage) holds its requests back",
		 broker_name, (int)broker_id, throttle_time_ms);
	add_event(c, 4, 0, buf);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *msg) {
	char buf[512];
	snprintf(buf, sizeof(buf), "%s: %s", fac, msg);
	add_event(rd_kafka_opaque(rk), level, 0, buf);
}

static void on_token_refresh(rd_kafka_t *rk, const char *config, void *opaque) {
	(void)rk;
	(void)config;
	gk_ctx *c = opaque;
	pthread_mutex_lock(&c->mu);
	c->token_wanted = 1;
	wake_poll_loop(c);
	pthread_mutex_unlock(&c->mu);
}

void gk_conf_token_refresh(rd_kafka_conf_t *conf) { rd_kafka_conf_set_oauthbearer_token_refresh_cb(conf, on_token_refresh); }

int gk_token_wanted(gk_ctx *c) {
	pthread_mutex_lock(&c->mu);
	int wanted = c->token_wanted;
	c->token_wanted = 0;
	pthread_mutex_unlock(&c->mu);
	return wanted;
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
	(void)rk;
	gk_ctx *c = opaque;
	char *copy = malloc(len + 1);
	if (!copy)
		return 0;
	memcpy(copy, json, len);
	copy[len] = 0;
	pthread_mutex_lock(&c->mu);
	free(c->stats);
	c->stats = copy;
	pthread_mutex_unlock(&c->mu);
	return 0; // librdkafka frees json
}

// request_send asks poll_main to make librdkafka send what it lingers on,
// when a flush waits and no batch is being produced: the flush's records are
// all queued, and waiting out linger.ms would only delay its acknowledgement.
// librdkafka sends at once only during rd_kafka_flush; that call also serves
// delivery reports, so poll_main makes it. A flush waits once its batches are
// produced, so a batch is not sent in pieces unless another flush is
// producing at the same time. Each call wakes every broker thread, so it is
// made only when batches were produced since the last one, or when a flush
// waited a whole turn in vain (its records may have waited for a new topic's
// metadata or the producer ID, and missed the last call's 1 ms).
static void request_send(gk_ctx *c, int again) {
	if (!c->send_at_once)
		return;
	unsigned produced = __atomic_load_n(&c->produced, __ATOMIC_SEQ_CST);
	if (__atomic_exchange_n(&c->requested, produced, __ATOMIC_SEQ_CST) == produced && !again)
		return;
	__atomic_store_n(&c->send_now, 1, __ATOMIC_RELEASE);
	rd_kafka_queue_yield(c->mainq);
}

// poll_main serves librdkafka's callbacks (delivery reports, errors,
// statistics) on a C thread of the plugin's own, so that no Go thread blocks
// in librdkafka and a delivery report wakes only the flush waiting for it.
// gk_stop ends its wait at once (rd_kafka_queue_yield: rd_kafka_yield only
// ends a poll from a callback on the polling thread).
static void *poll_main(void *arg) {
	gk_ctx *c = arg;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		if (__atomic_exchange_n(&c->send_now, 0, __ATOMIC_ACQ_REL)) {
			rd_kafka_queue_poll_callback(c->mainq, 0); // reports already in, so none ends the call at once
			c->in_flush = 1;
			rd_kafka_flush(c->rk, 1); // linger ignored for up to 1 ms
			c->in_flush = 0;
		} else
			rd_kafka_queue_poll_callback(c->mainq, 1000);
		readd_maybe(c);
	}
	return NULL;
}

int gk_start(gk_ctx *c, rd_kafka_t *rk) {
	int fds[2];
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	c->wake_w = fds[1];
	c->rk = rk;
	c->mainq = rd_kafka_queue_get_main(rk);
	if (pthread_create(&c->poller, NULL, poll_main, c) != 0) {
		close(fds[0]);
		close(fds[1]);
		c->wake_w = -1;
		rd_kafka_queue_destroy(c->mainq);
		c->mainq = NULL;
		return -1;
	}
	c->polling = 1;
	return fds[0];
}

void gk_stop(gk_ctx *c) {
	if (c->polling) {
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
		rd_kafka_queue_yield(c->mainq);
		pthread_join(c->poller, NULL);
		rd_kafka_queue_destroy(c->mainq);
		c->polling = 0;
	}
	pthread_mutex_lock(&c->mu);
	if (c->wake_w >= 0)
		close(c->wake_w);
	c->wake_w = -1;
	pthread_mutex_unlock(&c->mu);
}

char *gk_stats(gk_ctx *c) {
	pthread_mutex_lock(&c->mu);
	char *s = c->stats ? strdup(c->stats) : NULL;
	pthread_mutex_unlock(&c->mu);
	return s;
}

// partition_by_batch is the partitioner with batch_partitions: a record with
// a key goes where murmur2_random (the Java client's default) puts it; those
// without one go to their batch's partition, chosen by its turn among the
// available partitions, so that a topic's consecutive batches take turns
// over them evenly (as the Java client's sticky partitioner moves on when a
// batch is complete, KIP-480), also while some partition has no leader.
// Two flushes' batches then go to different partitions: librdkafka's
// idempotent producer has one request in flight per partition. librdkafka's
// main thread may call it for a batch still being produced (records that
// waited for the topic's metadata), hence the atomics.
static int32_t partition_by_batch(const rd_kafka_topic_t *rkt, const void *key, size_t keylen, int32_t cnt,
				  void *topic_opaque, void *msg_opaque) {
	if (key)
		return rd_kafka_msg_partitioner_murmur2(rkt, key, keylen, cnt, topic_opaque, msg_opaque);
	gk_batch *b = *(gk_batch **)msg_opaque;
	int32_t p = __atomic_load_n(&b->partition, __ATOMIC_RELAXED);
	if (p >= 0 && p < cnt)
		return p;
	uint32_t available = 0;
	for (int32_t i = 0; i < cnt; i++)
		available += rd_kafka_topic_partition_available(rkt, i) != 0;
	p = (int32_t)(b->turn % (uint32_t)cnt); // none available: librdkafka holds the records
	if (available > 0) {
		uint32_t skip = b->turn % available;
		for (int32_t i = 0; i < cnt; i++) {
			if (rd_kafka_topic_partition_available(rkt, i) && skip-- == 0) {
				p = i;
				break;
			}
		}
	}
	__atomic_store_n(&b->partition, p, __ATOMIC_RELAXED);
	return p;
}

void gk_conf_callbacks(rd_kafka_conf_t *conf, gk_ctx *c, int send_at_once, int batch_partitions) {
	size_t size = 0;
	if (rd_kafka_conf_get(conf, "bootstrap.servers", NULL, &size) == RD_KAFKA_CONF_OK && size > 1 &&
	    (c->bootstrap = malloc(size)))
		rd_kafka_conf_get(conf, "bootstrap.servers", c->bootstrap, &size);
	char linger[32];
	size = sizeof(linger);
	c->send_at_once = send_at_once && rd_kafka_conf_get(conf, "linger.ms", linger, &size) == RD_KAFKA_CONF_OK &&
			  strtod(linger, NULL) > 0;
	rd_kafka_conf_set_stats_cb(conf, on_stats);
	rd_kafka_conf_set_opaque(conf, c);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);
	rd_kafka_conf_set_throttle_cb(conf, on_throttle);
	if (batch_partitions) {
		// Records without a key reach the partitioner only when librdkafka's own sticky one is off.
		rd_kafka_conf_set(conf, "sticky.partitioning.linger.ms", "0", NULL, 0);
		rd_kafka_topic_conf_t *tc = rd_kafka_conf_get_default_topic_conf(conf);
		if (!tc) {
			tc = rd_kafka_topic_conf_new();
			rd_kafka_conf_set_default_topic_conf(conf, tc);
		}
		rd_kafka_topic_conf_set_partitioner_cb(tc, partition_by_batch);
	}
}

// headers builds a record's headers from their encoding (accumulator.AppendHeader).
static rd_kafka_headers_t *headers(const unsigned char *p, uint32_t len) {
	const unsigned char *end = p + len;
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	while (end - p >= 6) {
		size_t nlen = p[0] | (size_t)p[1] << 8;
		const unsigned char *name = p + 2;
		if ((size_t)(end - name) < nlen + 4)
			break;
		p = name + nlen;
		size_t vlen = p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
		if ((size_t)(end - p - 4) < vlen)
			break;
		rd_kafka_header_add(h, (const char *)name, (ssize_t)nlen, p + 4, (ssize_t)vlen);
		p += 4 + vlen;
	}
	return h;
}

// gk_produce hands b's records to librdkafka. Once its queue is full (an
// operator may bound it), the rest of the batch fails too, for a retry, so
// that no later record of the batch gets in ahead of one refused.
//
// A timestamp ahead of the clock goes out as the clock's time: the broker
// refuses one too far ahead (log.message.timestamp.after.max.ms, an hour by
// default in Kafka 4) and with it every record of its request.
void gk_produce(rd_kafka_t *rk, gk_ctx *c, rd_kafka_topic_t *rkt, int32_t partition,
		const char *base, const gk_rec *recs, gk_batch *b) {
	int32_t n = b->remaining;
	rd_kafka_resp_err_t full = 0;
	struct timespec clock;
	clock_gettime(CLOCK_REALTIME, &clock);
	int64_t now_ms = (int64_t)clock.tv_sec * 1000 + clock.tv_nsec / 1000000;
	__atomic_add_fetch(&c->producing, 1, __ATOMIC_SEQ_CST);
	for (int32_t i = 0; i < n; i++) {
		if (full) {
			settle(c, b, i, full);
			continue;
		}
		const gk_rec *r = &recs[i];
		const char *value = base + r->off;
		void *key = r->keyed ? (void *)(value + r->len) : NULL; // an empty key is not a null one
		int64_t ts_ms = r->ts_ms < now_ms ? r->ts_ms : now_ms;
		rd_kafka_resp_err_t err;
		if (r->hlen) {
			rd_kafka_headers_t *h = headers((const unsigned char *)value + r->len + r->klen, r->hlen);
			err = rd_kafka_producev(
				rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
				RD_KAFKA_V_VALUE((void *)value, r->len), RD_KAFKA_V_KEY(key, r->klen),
				RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_TIMESTAMP(ts_ms),
				RD_KAFKA_V_OPAQUE(&b->slots[i]), RD_KAFKA_V_END);
			if (err)
				rd_kafka_headers_destroy(h); // not taken over on failure
		} else {
			err = rd_kafka_producev(
				rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
				RD_KAFKA_V_VALUE((void *)value, r->len), RD_KAFKA_V_KEY(key, r->klen),
				RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(&b->slots[i]), RD_KAFKA_V_END);
		}
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			full = err;
		if (err)
			settle(c, b, i, err);
	}
	__atomic_add_fetch(&c->produced, 1, __ATOMIC_SEQ_CST);
	if (__atomic_sub_fetch(&c->producing, 1, __ATOMIC_SEQ_CST) == 0 && __atomic_load_n(&c->waiters, __ATOMIC_SEQ_CST) > 0)
		request_send(c, 0);
}

// take moves up to max completed batches to done; c->mu is held. What it
// leaves, batches beyond max or events (or a token request) that came since
// the poll loop read them, wakes the poll loop again.
static int take(gk_ctx *c, gk_batch **done, int max) {
	int n = 0;
	while (n < max && c->done_head) {
		done[n++] = c->done_head;
		c->done_head = c->done_head->next_done;
	}
	if (!c->done_head)
		c->done_tail = NULL;
	if (c->done_head || c->nevents > 0 || c->token_wanted)
		wake_poll_loop(c);
	return n;
}

int gk_take(gk_ctx *c, gk_batch **done, int max) {
	pthread_mutex_lock(&c->mu);
	c->notified = 0;
	int n = take(c, done, max);
	pthread_mutex_unlock(&c->mu);
	return n;
}

int gk_wait(gk_ctx *c, int timeout_ms, gk_batch **done, int max) {
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->mu);
	if (__atomic_fetch_add(&c->waiters, 1, __ATOMIC_SEQ_CST) == 0 && __atomic_load_n(&c->producing, __ATOMIC_SEQ_CST) == 0)
		request_send(c, c->waited_out);
	while (!c->done_head && !c->kicked && pthread_cond_timedwait(&c->done_cond, &c->mu, &until) == 0)
		;
	__atomic_sub_fetch(&c->waiters, 1, __ATOMIC_SEQ_CST);
	c->waited_out = !c->done_head && !c->kicked;
	c->kicked = 0;
	int n = take(c, done, max);
	pthread_mutex_unlock(&c->mu);
	return n;
}

void gk_wake(gk_ctx *c) {
	pthread_mutex_lock(&c->mu);
	c->kicked = 1;
	int waiters = c->waiters;
	pthread_mutex_unlock(&c->mu);
	if (waiters)
		pthread_cond_broadcast(&c->done_cond);
}

int gk_events(gk_ctx *c, gk_event *out, int max, int *dropped) {
	pthread_mutex_lock(&c->mu);
	int n = c->nevents < max ? c->nevents : max;
	memcpy(out, c->events, n * sizeof(gk_event));
	memmove(c->events, c->events + n, (c->nevents - n) * sizeof(gk_event));
	c->nevents -= n;
	*dropped = c->dropped;
	c->dropped = 0;
	pthread_mutex_unlock(&c->mu);
	return n;
}

char *gk_properties(void) {
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (!f)
		return NULL;
	rd_kafka_conf_properties_show(f);
	fclose(f);
	return buf;
}

int gk_partition_count(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int timeout_ms) {
	const struct rd_kafka_metadata *md;
	if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -2;
	int n = -1;
	if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
		n = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}
