package plugin

import "time"

// Murmur2 is the hash the Java client's default partitioner applies to
// keys (Utils.murmur2): a key's partition is (Murmur2(key) & 0x7fffffff) %
// partitions, in batch mode as in librdkafka's murmur2_random partitioner.
func Murmur2(data []byte) int32 {
	const m, r = 0x5bd1e995, 24
	h := uint32(0x9747b28c) ^ uint32(len(data))
	n := len(data) &^ 3
	for i := 0; i < n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h = h*m ^ k
	}
	switch len(data) & 3 {
	case 3:
		h ^= uint32(data[n+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[n+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[n])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// partitionOf returns the partition batch mode puts a record with a key
// (perhaps empty) in, as the Java client would; -1 when the topic's
// partitions are unknown. A lookup of the partitions waits until deadline
// at most.
func (in *Instance) partitionOf(st *flushState, topic, key []byte, deadline time.Time) int32 {
	n, ok := st.partitions[string(topic)]
	if !ok {
		n = st.lane.Partitions(string(topic), deadline, st.retry)
		st.partitions[string(topic)] = n
	}
	if n <= 0 {
		return -1
	}
	return (Murmur2(key) & 0x7fffffff) % int32(n)
}
