package kafkatest

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// BatchHeader is what a record batch of a partition's log says about who
// wrote it (Kafka's record batch format, magic 2).
type BatchHeader struct {
	BaseOffset, LastOffset int64
	LeaderEpoch            int32 // the partition leader epoch it was written in
	ProducerID             int64
	ProducerEpoch          int16
	BaseSequence           int32
}

// batchHeaderSize is the fixed part of a record batch before its records.
const batchHeaderSize = 61

// Batches reads the batch headers of partition of topic from the log
// segments of the broker (they are read as the broker left them on disk), in
// offset order.
func (b *Broker) Batches(topic string, partition int32) ([]BatchHeader, error) {
	segments, err := filepath.Glob(filepath.Join(b.Dir, "data", topic+"-"+strconv.Itoa(int(partition)), "*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(segments) // named by base offset, zero-padded
	var out []BatchHeader
	for _, path := range segments {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		pos := 0
		for pos+batchHeaderSize <= len(data) {
			h := data[pos:]
			length := int(binary.BigEndian.Uint32(h[8:]))
			if magic := h[16]; magic != 2 || length < batchHeaderSize-12 || pos+12+length > len(data) {
				return nil, fmt.Errorf("%s: no record batch at position %d (magic %d, length %d)", path, pos, magic, length)
			}
			base := int64(binary.BigEndian.Uint64(h))
			out = append(out, BatchHeader{
				BaseOffset:    base,
				LastOffset:    base + int64(int32(binary.BigEndian.Uint32(h[23:]))),
				LeaderEpoch:   int32(binary.BigEndian.Uint32(h[12:])),
				ProducerID:    int64(binary.BigEndian.Uint64(h[43:])),
				ProducerEpoch: int16(binary.BigEndian.Uint16(h[51:])),
				BaseSequence:  int32(binary.BigEndian.Uint32(h[53:])),
			})
			pos += 12 + length
		}
		if pos != len(data) {
			return nil, fmt.Errorf("%s: %d bytes after the last record batch", path, len(data)-pos)
		}
	}
	return out, nil
}

// BatchAt returns the batch of batches (in offset order) that holds offset.
func BatchAt(batches []BatchHeader, offset int64) (BatchHeader, bool) {
	i := sort.Search(len(batches), func(i int) bool { return batches[i].LastOffset >= offset })
	if i == len(batches) || batches[i].BaseOffset > offset {
		return BatchHeader{}, false
	}
	return batches[i], true
}
