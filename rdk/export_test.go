package rdk

// LiveBatches counts the C batches allocated and not yet freed.
var LiveBatches = liveBatches

// FailAllocs makes the next n allocations of failure arrays in C fail.
var FailAllocs = failAllocs

// Permanent reports the librdkafka error codes that no retry can cure.
var Permanent = permanent

// Refusal reports why a record refused with a librdkafka error code was.
var Refusal = refusal

// Reason is the text logged for a record, with a key or without, that
// failed with a librdkafka error code.
var Reason = reason

// MallocInUse returns the bytes of C memory allocated now (main arena).
var MallocInUse = mallocInUse

// Asked reports whether p asked the cluster for topic's partition count.
func (p *Producer) Asked(topic string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.partitions[topic]
	return ok
}
