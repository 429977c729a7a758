package plugin

import (
	"sync/atomic"
	"time"
)

// Stats counts records over the instance's life.
type Stats struct {
	Retried      atomic.Int64         // in chunks handed back to Fluent Bit for a retry
	Failed       atomic.Int64         // dropped: Kafka can never take them, they cannot be encoded, their timestamp cannot be read, or they are larger than Buffer_Memory (in batch mode, than a message may be)
	DeadLettered atomic.Int64         // refused by Kafka for good and sent to DLQ_Topic
	Rerouted     [routed]atomic.Int64 // sent to the default topic because Topic_Key gave no allowed topic, by reason (RerouteReasons)
	Restamped    atomic.Int64         // sent again with the produce time, Kafka having refused them for their timestamp or named them invalid
	Skipped      atomic.Int64         // raw and gelf records without their value field (see encode.ErrNoValueField)
	Flushes      Histogram            // flush durations, seconds
}

// FlushBuckets are the upper bounds, in seconds, of the flush duration
// histogram.
var FlushBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Histogram counts flush durations into FlushBuckets without locks.
type Histogram struct {
	counts [len(FlushBuckets) + 1]atomic.Uint64 // one per bucket, then +Inf
	sumNs  atomic.Int64
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(FlushBuckets) && s > FlushBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// Snapshot returns the cumulative count per bucket of FlushBuckets, the
// total count and the sum of the durations in seconds.
func (h *Histogram) Snapshot() (cumulative []uint64, count uint64, sum float64) {
	cumulative = make([]uint64, len(FlushBuckets))
	for i := range h.counts {
		count += h.counts[i].Load()
		if i < len(FlushBuckets) {
			cumulative[i] = count
		}
	}
	return cumulative, count, float64(h.sumNs.Load()) / float64(time.Second)
}
