// Package plugin is one gokafka output instance: it decodes a chunk, encodes
// its records, appends them to the accumulator and waits until Kafka has
// acknowledged them, or until Flush_Timeout.
package plugin

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/encode"
	"github.com/gokafka/gokafka/sender"
)

// Fluent Bit's flush return codes.
const (
	Error = 0 // chunk dropped
	OK    = 1
	Retry = 2 // same bytes flushed again later
)

// Log levels of Fluent Bit's logger.
const (
	LevelError = 1
	LevelWarn  = 2
	LevelInfo  = 3
	LevelDebug = 4
)

// Logger writes one message at a level, prefixed with the instance's name.
type Logger func(level int, msg string)

// Instance is one [OUTPUT] section's state.
type Instance struct {
	Name   string
	cfg    *conf.Config
	log    Logger
	enc    *encode.Encoder
	acc    *accumulator.Accumulator
	snd    *sender.Sender
	key    []byte
	states sync.Pool // *flushState
}

// flushState is the reusable scratch space of one flush.
type flushState struct {
	reader chunk.Reader
	staged accumulator.Staged
}

// New starts an instance that produces through prod.
func New(name string, cfg *conf.Config, prod sender.Producer, alloc accumulator.Allocator, log Logger) (*Instance, error) {
	enc, err := encode.New(cfg.Format, cfg.TimestampKey, cfg.TimestampFormat)
	if err != nil {
		return nil, err
	}
	in := &Instance{Name: name, cfg: cfg, log: log, enc: enc, key: []byte(cfg.MessageKey)}
	in.acc = accumulator.New(int(cfg.BatchSize), cfg.BufferMemory, cfg.Linger, alloc)
	in.snd = sender.Start(in.acc, prod)
	in.states.New = func() any { return new(flushState) }
	return in, nil
}

// Logger returns the instance's logger.
func (in *Instance) Logger() Logger { return in.log }

// Log formats a message for the instance's logger.
func (in *Instance) Log(level int, format string, args ...any) {
	in.log(level, fmt.Sprintf(format, args...))
}

// Flush ships every record of data and returns OK once Kafka acknowledged
// them all; Retry when some failed for now or the timeout passed; Error for
// a malformed chunk, after shipping the records before the fault.
func (in *Instance) Flush(data []byte, tag string) int {
	start := time.Now()
	deadline := start.Add(in.cfg.FlushTimeout)
	st := in.states.Get().(*flushState)
	defer in.states.Put(st)
	st.staged.Reset()
	st.reader.Reset(data)

	records, skipped := 0, 0
	var rec chunk.Record
	var decodeErr error
	for {
		more, err := st.reader.Next(&rec)
		if !more {
			decodeErr = err
			break
		}
		records++
		valueStart := len(st.staged.Buf)
		if st.staged.Buf, err = in.enc.Append(st.staged.Buf, &rec); err != nil {
			skipped++
			in.Log(LevelError, "record %d of chunk (tag %s) cannot be encoded, dropped: %v", records-1, tag, err)
			continue
		}
		st.staged.Add(valueStart, in.key, max(rec.Time/1e6, 0))
	}

	w := accumulator.NewWaiter()
	topic := in.cfg.Topics[0]
	appendDeadline := start.Add(min(in.cfg.MaxBlock, in.cfg.FlushTimeout))
	var appendErr error
	for s := st.staged; len(s.Recs) > 0; {
		n, err := in.acc.Append(topic, -1, &s, w, appendDeadline)
		s.Recs = s.Recs[n:]
		if errors.Is(err, accumulator.ErrTooLarge) {
			in.Log(LevelError, "record of %d bytes for topic %s is larger than Buffer_Memory, dropped", s.Recs[0].Len, topic)
			skipped++
			s.Recs = s.Recs[1:]
		} else if err != nil {
			appendErr = fmt.Errorf("%v after %v: %d of %d records not buffered", err, time.Since(start).Round(time.Millisecond), len(s.Recs), records)
			break
		}
	}
	res, acked := in.acc.Wait(w, deadline)
	in.logFailures(res)

	switch {
	case decodeErr != nil:
		in.Log(LevelError, "%v; the %d records before it were sent (%d acknowledged), the chunk is dropped", decodeErr, records, res.Delivered)
		return Error
	case appendErr != nil:
		in.Log(LevelWarn, "%v; chunk will be retried", appendErr)
		return Retry
	case !acked:
		in.Log(LevelWarn, "flush timed out after %v: %d of %d records acknowledged; chunk will be retried", in.cfg.FlushTimeout, res.Delivered, records)
		return Retry
	case res.Retriable > 0:
		in.Log(LevelWarn, "%d of %d records not delivered for now; chunk will be retried", res.Retriable, records)
		return Retry
	}
	if res.Permanent+skipped > 0 {
		in.Log(LevelError, "%d of %d records of the chunk can never be delivered and were dropped; %d delivered", res.Permanent+skipped, records, res.Delivered)
	}
	in.Log(LevelDebug, "flushed %d records in %v", res.Delivered, time.Since(start).Round(time.Microsecond))
	return OK
}

func (in *Instance) logFailures(res accumulator.Result) {
	for _, f := range res.Examples {
		if f.Permanent {
			in.Log(LevelError, "record of %d bytes for topic %s dropped: %s", f.Size, f.Topic, f.Reason)
		} else {
			in.Log(LevelWarn, "record of %d bytes for topic %s not delivered: %s", f.Size, f.Topic, f.Reason)
		}
	}
}

// Exit sends what is buffered, waits up to Flush_Timeout for Kafka, and
// stops the producer.
func (in *Instance) Exit() {
	in.snd.Close(time.Now().Add(in.cfg.FlushTimeout))
	in.Log(LevelDebug, "stopped")
}
