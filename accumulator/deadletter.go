package accumulator

import (
	"strconv"
	"time"
)

// Headers on a dead-lettered record, beside its own.
const (
	HeaderError     = "gokafka.error"      // why Kafka refused the record
	HeaderErrorCode = "gokafka.error.code" // librdkafka's error code
	HeaderTopic     = "gokafka.topic"      // the topic it was meant for
	// HeaderTruncated holds the value's original size when the value was cut
	// to fit maxBytes.
	HeaderTruncated = "gokafka.truncated"
)

// dlqMargin is room left under the message size limit for headers, key and
// framing when a dead-lettered value is cut.
const dlqMargin = 4096

// SetDeadLetterTopic sends records that Kafka refuses for good to topic,
// with headers saying why, instead of dropping them; "" turns it off.
// maxBytes is the producer's message size limit (message.max.bytes), also
// without a dead-letter topic: a dead-lettered value larger is cut to fit,
// so that a record refused for its size still reaches the topic, and in
// batch mode a batch is closed before its message would pass it.
func (a *Accumulator) SetDeadLetterTopic(topic string, maxBytes int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dlq, a.maxMessage = topic, maxBytes
	a.frameLimits()
}

// moved is record j of a batch, refused by Kafka, on its way to its topic
// again or to the dead-letter topic.
type moved struct {
	j   int
	w   *Waiter
	f   *Failure
	how resendHow
}

// resend copies the moved records of b into a ready batch, in their order;
// their waiters keep them in flight until it is reported on. To the
// dead-letter topic (all toDeadLetter), with their value cut to fit and
// headers saying why after their own; else to b's topic and partition
// again, each restamped or as it was. The batch is allocated past the
// memory budget if need be: it must not wait. a.mu is held.
func (a *Accumulator) resend(b *Batch, recs []moved) {
	deadLetter := recs[0].how == toDeadLetter
	out := make([]Rec, len(recs))
	var enc []byte
	capacity := 0
	for i, m := range recs {
		r := b.Recs[m.j]
		start := len(enc)
		rec := Rec{Off: uint32(start), Len: r.Len, KeyLen: r.KeyLen, TimeMs: r.TimeMs, Keyed: r.Keyed}
		switch m.how {
		case toDeadLetter:
			rec.Len = a.cut(r)
		case restamped:
			rec.TimeMs = 0
			m.w.Restamped++
		}
		enc = append(enc, b.Buf[r.Off:r.Off+rec.Len]...)
		enc = append(enc, b.Buf[r.Off+r.Len:r.Off+r.Size()]...)
		if deadLetter {
			enc = AppendHeader(enc, []byte(HeaderError), []byte(m.f.Reason))
			enc = AppendHeader(enc, []byte(HeaderErrorCode), strconv.AppendInt(nil, int64(m.f.Err), 10))
			enc = AppendHeader(enc, []byte(HeaderTopic), []byte(b.Topic))
			if rec.Len < r.Len {
				enc = AppendHeader(enc, []byte(HeaderTruncated), strconv.AppendUint(nil, uint64(r.Len), 10))
			}
		}
		rec.HdrLen = uint32(len(enc)-start) - rec.Len - rec.KeyLen
		out[i] = rec
		capacity += Cost(rec, enc[start+int(rec.Len+rec.KeyLen):])
	}
	nb := &Batch{Topic: b.Topic, Partition: b.Partition, Lane: b.Lane, DeadLetter: b.DeadLetter, resent: true, full: true, created: time.Now(), Buf: a.alloc.Alloc(capacity), Recs: out}
	if deadLetter { // may go again once, to the dead-letter topic
		nb.Topic, nb.Partition, nb.DeadLetter, nb.resent = a.dlq, -1, true, false
	}
	a.used += int64(capacity)
	nb.Buf = append(nb.Buf, enc...)
	nb.held = capacity - len(enc)
	for _, m := range recs {
		nb.idx = append(nb.idx, b.idx[m.j])
		nb.addSpan(m.w)
	}
	if !deadLetter {
		a.requeue(nb)
		return
	}
	k := key{nb.Topic, nb.Partition, nb.Lane}
	a.deques[k] = append(a.deques[k], nb)
	a.signal()
}

// cut is the length of r's value in the dead-letter topic.
func (a *Accumulator) cut(r Rec) uint32 {
	limit := a.maxMessage - int(r.KeyLen+r.HdrLen) - dlqMargin
	if int(r.Len) <= limit {
		return r.Len
	}
	return uint32(max(limit, 0))
}
