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

// deadLetter is record j of a batch, refused for good, on its way to the
// dead-letter topic.
type deadLetter struct {
	j int
	w *Waiter
	f *Failure
}

// sendToDeadLetter copies the moved records of b into a ready batch for the
// dead-letter topic; their waiters keep them in flight until it is
// reported on. The batch is allocated past the memory budget if need be:
// it is small and must not wait. a.mu is held.
func (a *Accumulator) sendToDeadLetter(b *Batch, moved []deadLetter) {
	// The records as they go: value cut, the headers saying why after
	// their own; their encoding, then the cost of each (Cost).
	recs := make([]Rec, len(moved))
	var enc []byte
	capacity := 0
	for i, m := range moved {
		r := b.Recs[m.j]
		start := len(enc)
		rec := Rec{Off: uint32(start), Len: a.cut(r), KeyLen: r.KeyLen, TimeMs: r.TimeMs}
		enc = append(enc, b.Buf[r.Off:r.Off+rec.Len]...)
		enc = append(enc, b.Buf[r.Off+r.Len:r.Off+r.Size()]...)
		enc = AppendHeader(enc, []byte(HeaderError), []byte(m.f.Reason))
		enc = AppendHeader(enc, []byte(HeaderErrorCode), strconv.AppendInt(nil, int64(m.f.Err), 10))
		enc = AppendHeader(enc, []byte(HeaderTopic), []byte(b.Topic))
		if rec.Len < r.Len {
			enc = AppendHeader(enc, []byte(HeaderTruncated), strconv.AppendUint(nil, uint64(r.Len), 10))
		}
		rec.HdrLen = uint32(len(enc)-start) - rec.Len - rec.KeyLen
		recs[i] = rec
		capacity += Cost(rec, enc[start+int(rec.Len+rec.KeyLen):])
	}
	dl := &Batch{Topic: a.dlq, Partition: -1, Lane: b.Lane, DeadLetter: true, full: true, created: time.Now(), Buf: a.alloc.Alloc(capacity), Recs: recs}
	a.used += int64(capacity)
	dl.Buf = append(dl.Buf, enc...)
	dl.held = capacity - len(enc)
	for _, m := range moved {
		dl.idx = append(dl.idx, b.idx[m.j])
		dl.addSpan(m.w)
	}
	k := key{a.dlq, -1, b.Lane}
	a.deques[k] = append(a.deques[k], dl)
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
