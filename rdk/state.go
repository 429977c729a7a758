package rdk

/*
#include "producer.h"
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
		return fmt.Errorf("%s: %s", C.GoString(C.rd_kafka_err2name(err)), p.redact.apply(C.GoString(&buf[0])))
	}
	return nil
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
