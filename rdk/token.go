package rdk

/*
#include "producer.h"
*/
import "C"

import (
	"context"
	"fmt"
	"time"
	"unsafe"
)

// TokenSource makes a SASL OAUTHBEARER token: its value, the principal it
// names and when it expires.
type TokenSource func(ctx context.Context) (value, principal string, expiry time.Time, err error)

// tokenFailure starts librdkafka's error for a failure to make a token.
const tokenFailure = "_AUTHENTICATION: Failed to acquire SASL OAUTHBEARER token: "

// tokenTimeout bounds the making of one token; librdkafka asks again 10 s
// after a failure.
const tokenTimeout = 30 * time.Second

// refreshToken makes a token in the background and hands it to librdkafka,
// which asks again once 80 % of its life has passed; or it logs why there
// is none and tells librdkafka, which asks again 10 s later.
func (p *Producer) refreshToken() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.background.Add(1) // Close waits for it, having cancelled p.stopping
	go func() {
		defer p.background.Done()
		ctx, cancel := context.WithTimeout(p.stopping, tokenTimeout)
		defer cancel()
		value, principal, expiry, err := p.token(ctx)
		if err == nil {
			err = p.setToken(value, principal, expiry)
		}
		if err != nil && p.stopping.Err() != nil {
			return // Close cancelled it: no failure to tell
		}
		if err != nil {
			// librdkafka reports a failure only when its text changed:
			// one that lasts is logged here, as librdkafka would, once
			// per cause and causeInterval.
			p.logCause(int(C.RD_KAFKA_RESP_ERR__AUTHENTICATION), 1, tokenFailure+p.redact.apply(err.Error()), time.Now())
			text := C.CString(err.Error())
			C.rd_kafka_oauthbearer_set_token_failure(p.rk, text)
			C.free(unsafe.Pointer(text))
		}
	}()
}

// token makes a token with p.tokens; a panic there (the AWS SDK's, say) is
// a failure to make one rather than the end of Fluent Bit.
func (p *Producer) token(ctx context.Context) (value, principal string, expiry time.Time, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return p.tokens(ctx)
}

func (p *Producer) setToken(value, principal string, expiry time.Time) error {
	v, pr := C.CString(value), C.CString(principal)
	defer C.free(unsafe.Pointer(v))
	defer C.free(unsafe.Pointer(pr))
	var errstr [512]C.char
	if C.rd_kafka_oauthbearer_set_token(p.rk, v, C.int64_t(expiry.UnixMilli()), pr, nil, 0, &errstr[0], C.size_t(len(errstr))) != 0 {
		return fmt.Errorf("token refused: %s", C.GoString(&errstr[0]))
	}
	return nil
}
