// The thin C path into librdkafka: a whole batch is produced in one call
// and delivery reports are counted in C, per batch.
#ifndef GOKAFKA_PRODUCER_H
#define GOKAFKA_PRODUCER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "rdkafka.h"

// The header is copied from the pinned confluent-kafka-go by `make`; it must
// match the librdkafka that module links.
_Static_assert(RD_KAFKA_VERSION == 0x020f00ff, "rdkafka.h is not librdkafka 2.15.0");

// One record of a batch, same layout as accumulator.Rec: value at off, then
// klen bytes of key (a null key unless keyed), then hlen bytes of headers.
typedef struct gk_rec {
	uint32_t off, len, klen, hlen;
	int64_t ts_ms;
	uint8_t keyed;
} gk_rec;

enum { gk_rec_keyed_offset = offsetof(gk_rec, keyed) };

// A produced batch, alive until its last delivery report.
typedef struct gk_batch {
	uint64_t id;
	int32_t remaining;         // reports still due (atomic)
	uint32_t turn;             // its topic's count of batches without a partition (rdk.go)
	int32_t partition;         // of its records without a key, -1 until the first (atomic)
	int32_t nfail, capfail;
	int32_t *fail_idx, *fail_err;
	// unrecorded is the error code of a failure that could not be recorded
	// (no memory for the arrays), 0 if none: then no record of the batch
	// may be taken for acknowledged (rdk.go fails them all for a retry).
	int32_t unrecorded;
	struct gk_batch *next_done;
	struct gk_batch *slots[];  // slots[i] = this; &slots[i] is message i's opaque
} gk_batch;

typedef struct gk_event {
	int level;                 // syslog level
	int err;
	char text[512];
} gk_event;

#define GK_MAX_EVENTS 64

// Per-producer state shared with librdkafka's callbacks.
typedef struct gk_ctx gk_ctx;

gk_ctx *gk_ctx_new(void);
void gk_ctx_free(gk_ctx *c);
// gk_conf_callbacks sets the callbacks; with send_at_once, a flush that
// waits makes librdkafka send at once rather than after linger.ms; with
// batch_partitions, records without a key go to one partition per batch.
void gk_conf_callbacks(rd_kafka_conf_t *conf, gk_ctx *c, int send_at_once, int batch_partitions);
// gk_conf_token_refresh makes librdkafka ask for OAUTHBEARER tokens:
// gk_token_wanted says, once, that it asked (the poll loop is woken).
void gk_conf_token_refresh(rd_kafka_conf_t *conf);
int gk_token_wanted(gk_ctx *c);
// gk_batch_new makes the state of a batch of n records; the caller sets its
// id and turn.
gk_batch *gk_batch_new(int32_t n);
void gk_batch_free(gk_batch *b);
// gk_fail_allocs makes the next n allocations of failure arrays fail, for
// tests.
void gk_fail_allocs(int n);
// gk_live_batches counts the batches allocated and not freed, for tests.
int64_t gk_live_batches(void);
void gk_produce(rd_kafka_t *rk, gk_ctx *c, rd_kafka_topic_t *rkt, int32_t partition,
		const char *base, const gk_rec *recs, gk_batch *b);
// gk_take moves up to max batches whose last report came to done and
// rearms the pipe of gk_start; it does not wait.
int gk_take(gk_ctx *c, gk_batch **done, int max);
// gk_wait waits up to timeout_ms for batches to complete and moves up to max
// of them to done; while a flush waits here, completions wake it alone.
int gk_wait(gk_ctx *c, int timeout_ms, gk_batch **done, int max);
// gk_wake ends the gk_wait in progress, or else the next one, at once.
void gk_wake(gk_ctx *c);
int gk_events(gk_ctx *c, gk_event *out, int max, int *dropped);
char *gk_properties(void);
char *gk_stats(gk_ctx *c); // a copy of the latest statistics JSON, or NULL
// gk_start starts the thread that serves librdkafka's callbacks and returns
// the read end of a pipe that gets a byte when batches complete with no flush
// in gk_wait, or when errors or logs come; -1 on failure.
int gk_start(gk_ctx *c, rd_kafka_t *rk);
// gk_stop stops that thread; callbacks after it are served by whoever polls
// (Close).
void gk_stop(gk_ctx *c);
// gk_partition_count asks the cluster how many partitions a topic has; -1
// when it cannot tell, -2 when it did not answer.
int gk_partition_count(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int timeout_ms);

#endif
