package plugin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/encode"
	"github.com/gokafka/gokafka/registry"
)

// schemaTimeout bounds one fetch of Format avro's schema, at Init or later.
const schemaTimeout = 10 * time.Second

// schemaWait bounds how long a flush without the schema waits for the
// fetch it starts (or finds running): a registry back since the last
// flush answers within it, and the flush goes on. Only one flush waits in
// vain for each fetch: with Workers 0 a waiting flush holds all of Fluent
// Bit, and a registry that does not answer keeps a fetch up to
// schemaTimeout.
const schemaWait = time.Second

// schemaLoader fetches Format avro's schema from the Schema Registry: at
// Init, then, while none has come, again from each flush, in the
// background, one fetch at a time.
type schemaLoader struct {
	ctx     context.Context // canceled by Exit
	cancel  context.CancelFunc
	mu      sync.Mutex
	wait    time.Duration // schemaWait
	done    chan struct{} // closed when the fetch in the background ends; nil before the first
	waited  chan struct{} // the done of the last fetch a flush waited for in vain
	running bool
	err     error          // the last fetch's
	fetches sync.WaitGroup // the one in the background, for stop
}

// stop cancels the fetches and waits for the one in the background, if
// any: it would log through the instance after Exit.
func (l *schemaLoader) stop() {
	l.mu.Lock()
	l.cancel() // under l.mu: no fetch starts after it
	l.mu.Unlock()
	l.fetches.Wait()
}

// loadSchema fetches the schema and makes the instance's encoder of it. An
// error wraps registry.ErrRefused when asking again will not help.
func (in *Instance) loadSchema(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, schemaTimeout)
	defer cancel()
	s, id, err := registry.Fetch(ctx, &in.cfg.Registry)
	if err != nil {
		return err
	}
	enc, err := newEncoder(in.cfg, encode.Avro{Schema: s, SchemaID: uint32(id)})
	if err != nil {
		return fmt.Errorf("%w: schema %d: %w", registry.ErrRefused, id, err)
	}
	in.enc.Store(enc)
	in.Log(LevelInfo, "loaded Avro schema %d from Schema_Registry_URL", id)
	return nil
}

// awaitSchema starts a fetch of the schema unless one runs, and waits up to
// schemaWait for it to end. It returns the encoder, nil if none came.
func (in *Instance) awaitSchema() *encode.Encoder {
	l := in.schema
	l.mu.Lock()
	if !l.running && in.enc.Load() == nil && l.ctx.Err() == nil { // not come since the flush looked, not stopped
		l.running, l.done = true, make(chan struct{})
		l.fetches.Add(1)
		go func() {
			defer l.fetches.Done()
			err := in.loadSchema(l.ctx)
			l.mu.Lock()
			l.running, l.err = false, err
			close(l.done)
			l.mu.Unlock()
		}()
	}
	done := l.done
	if done == l.waited {
		done = nil
	}
	l.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(l.wait):
			l.mu.Lock()
			l.waited = done
			l.mu.Unlock()
		}
	}
	return in.enc.Load()
}

// noSchema hands a chunk back while the schema has not come.
func (in *Instance) noSchema(data []byte, tag string) int {
	l := in.schema
	l.mu.Lock()
	last := l.err
	l.mu.Unlock()
	n := chunk.Count(data)
	in.Stats.Retried.Add(int64(n))
	level := LevelWarn
	if errors.Is(last, registry.ErrRefused) { // the registry's answer, or its schema, needs an operator
		level = LevelError
	}
	in.logChunk(tag, level, "%d records not sent: no Avro schema from Schema_Registry_URL yet (%v); chunk will be retried", n, last)
	return Retry
}
