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
// with headers saying why, instead of dropping them; "" turns it off. A
// value larger than maxBytes (the producer's message size limit) is cut to
// fit, so that a record refused for its size still reaches the topic.
func (a *Accumulator) SetDeadLetterTopic(topic string, maxBytes int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dlq, a.dlqMaxBytes = topic, maxBytes
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
	var hdrs [][]byte
	size := 0
	for _, m := range moved {
		r := b.Recs[m.j]
		h := AppendHeader(nil, []byte(HeaderError), []byte(m.f.Reason))
		h = AppendHeader(h, []byte(HeaderErrorCode), strconv.AppendInt(nil, int64(m.f.Err), 10))
		h = AppendHeader(h, []byte(HeaderTopic), []byte(b.Topic))
		if a.cut(r) < r.Len {
			h = AppendHeader(h, []byte(HeaderTruncated), strconv.AppendUint(nil, uint64(r.Len), 10))
		}
		hdrs = append(hdrs, h)
		size += int(a.cut(r)+r.KeyLen+r.HdrLen) + len(h)
	}
	dl := &Batch{Topic: a.dlq, Partition: -1, Lane: b.Lane, DeadLetter: true, full: true, created: time.Now(), Buf: a.alloc.Alloc(size)}
	a.used += int64(size)
	for i, m := range moved {
		r := b.Recs[m.j]
		rec := r
		rec.Off, rec.Len = uint32(len(dl.Buf)), a.cut(r)
		rec.HdrLen += uint32(len(hdrs[i]))
		dl.Buf = append(dl.Buf, b.Buf[r.Off:r.Off+rec.Len]...)
		dl.Buf = append(dl.Buf, b.Buf[r.Off+r.Len:r.Off+r.Size()]...)
		dl.Buf = append(dl.Buf, hdrs[i]...)
		dl.Recs = append(dl.Recs, rec)
		dl.idx = append(dl.idx, b.idx[m.j])
		if n := len(dl.spans); n > 0 && dl.spans[n-1].w == m.w {
			dl.spans[n-1].n++
		} else {
			dl.spans = append(dl.spans, span{m.w, 1})
		}
	}
	k := key{a.dlq, -1, b.Lane}
	a.deques[k] = append(a.deques[k], dl)
	a.signal()
}

// cut is the length of r's value in the dead-letter topic.
func (a *Accumulator) cut(r Rec) uint32 {
	limit := a.dlqMaxBytes - int(r.KeyLen+r.HdrLen) - dlqMargin
	if int(r.Len) <= limit {
		return r.Len
	}
	return uint32(max(limit, 0))
}
