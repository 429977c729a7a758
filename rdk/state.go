package rdk

/*
#include <dlfcn.h>
#include "producer.h"

// gk_malloc_in_use returns the bytes glibc's malloc has handed out and not
// taken back (its main arena's, with the chunks it mapped), or -1 without
// mallinfo2 (glibc < 2.33), which is looked up at run time so that the
// plugin does not require it; for tests.
static long long gk_malloc_in_use(void) {
	struct info { size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost; };
	struct info (*mallinfo2)(void) = (struct info (*)(void))dlsym(RTLD_DEFAULT, "mallinfo2");
	if (!mallinfo2)
		return -1;
	struct info m = mallinfo2();
	return (long long)(m.uordblks + m.hblkhd);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Fatal returns librdkafka's fatal error (an idempotent producer fenced or
// out of sequence, for example), after which this producer can send no more.
func (p *Producer) Fatal() error {
	var buf [256]C.char
	if err := C.rd_kafka_fatal_error(p.rk, &buf[0], C.size_t(len(buf))); err != 0 {
		return fatalError(C.GoString(C.rd_kafka_err2name(err)), p.redact.apply(C.GoString(&buf[0])))
	}
	return nil
}

// fatalError is librdkafka's fatal error, by name, with its text; when
// the cluster refused the idempotent producer an ID, as it will every new
// one, with what that needs.
func fatalError(name, text string) error {
	switch name {
	case "CLUSTER_AUTHORIZATION_FAILED":
		text += " (an idempotent producer's principal needs Write on a topic, or before Kafka 2.8 IdempotentWrite on the cluster; " +
			"with AWS_MSK_IAM, kafka-cluster:WriteDataIdempotently)"
	case "_UNSUPPORTED_FEATURE":
		text += " (the brokers cannot take an idempotent producer: set rdkafka.enable.idempotence false)"
	}
	return fmt.Errorf("%s: %s", name, text)
}

// InjectFatal raises a fatal error in librdkafka, as a fenced idempotent
// producer would; for tests.
func (p *Producer) InjectFatal(reason string) {
	r := C.CString(reason)
	defer C.free(unsafe.Pointer(r))
	C.rd_kafka_test_fatal_error(p.rk, C.RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, r)
}

// Statistics returns librdkafka's latest statistics (JSON, emitted every
// statistics.interval.ms), or nil before the first.
func (p *Producer) Statistics() []byte {
	s := C.gk_stats(p.ctx)
	if s == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(s))
	return []byte(C.GoString(s))
}

// liveBatches counts the C batches allocated and not yet freed; for tests.
func liveBatches() int { return int(C.gk_live_batches()) }

// failAllocs makes the next n allocations of a batch's failure arrays in C
// fail, as when memory runs out; for tests.
func failAllocs(n int) { C.gk_fail_allocs(C.int(n)) }

// mallocInUse returns the bytes of C memory allocated now, as glibc's main
// arena counts them (run with GLIBC_TUNABLES=glibc.malloc.arena_max=1 to
// count every thread's), or -1 when it cannot tell; for tests.
func mallocInUse() int { return int(C.gk_malloc_in_use()) }
