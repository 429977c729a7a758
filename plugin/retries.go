package plugin

import (
	"container/list"
	"hash/maphash"
	"sync"

	"github.com/gokafka/gokafka/accumulator"
)

// rememberedRecords bounds the records whose state the retry memory keeps,
// about a byte each: some 4 MiB, the records of hundreds of 2 MiB chunks.
// A chunk counts for chunkCost records more, the memory of its waiter and
// entries.
const (
	rememberedRecords = 4 << 20
	chunkCost         = 256
)

// retryMemory remembers the waiters of chunks whose flush returned Retry,
// keyed by a hash of the chunk's tag and bytes (Fluent Bit retries the same
// bytes), so that the retry skips what Kafka took, waits for what is still
// in flight, and sends only the rest. Beyond max records the oldest chunks
// are forgotten, and their retries send every record again. Two chunks of
// the same tag with the same bytes are one chunk to it: while one waits
// for its retry, the other is taken for that retry and sends only the
// records the first did not deliver.
type retryMemory struct {
	seed    maphash.Seed
	max     int
	mu      sync.Mutex
	byKey   map[chunkKey]*list.Element // of *remembered
	order   list.List                  // oldest first
	records int                        // of the chunks remembered, with chunkCost each
}

// chunkKey identifies a chunk: a hash of its tag and bytes, and its size.
type chunkKey struct {
	sum  uint64
	size int
}

type remembered struct {
	key  chunkKey
	w    *accumulator.Waiter
	lane int // where the chunk's records were sent
}

func newRetryMemory(max int) *retryMemory {
	return &retryMemory{seed: maphash.MakeSeed(), max: max, byKey: make(map[chunkKey]*list.Element)}
}

// key identifies the chunk data of tag.
func (m *retryMemory) key(tag string, data []byte) chunkKey {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(tag)
	h.WriteByte(0) // a tag is a C string: it has no 0 byte
	h.Write(data)
	return chunkKey{h.Sum64(), len(data)}
}

// empty reports whether no chunk is remembered, so most flushes skip hashing.
func (m *retryMemory) empty() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byKey) == 0
}

// take removes and returns the waiter of the chunk with key and its lane,
// if any; else nil and -1.
func (m *retryMemory) take(key chunkKey) (*accumulator.Waiter, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[key]
	if !ok {
		return nil, -1
	}
	r := m.remove(e)
	return r.w, r.lane
}

// put remembers w for the chunk with key, sent through lane, forgetting
// the oldest chunks beyond max records; it returns how many it forgot, and
// their records.
func (m *retryMemory) put(key chunkKey, w *accumulator.Waiter, lane int) (chunks, records int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byKey[key]; ok {
		m.remove(e)
	}
	m.byKey[key] = m.order.PushBack(&remembered{key, w, lane})
	m.records += w.Len() + chunkCost
	for m.records > m.max {
		chunks++
		records += m.remove(m.order.Front()).w.Len()
	}
	return chunks, records
}

// remove forgets the chunk of e; m.mu is held.
func (m *retryMemory) remove(e *list.Element) *remembered {
	r := m.order.Remove(e).(*remembered)
	delete(m.byKey, r.key)
	m.records -= r.w.Len() + chunkCost
	return r
}

// drain forgets every chunk and returns their waiters.
func (m *retryMemory) drain() []*accumulator.Waiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ws []*accumulator.Waiter
	for m.order.Len() > 0 {
		ws = append(ws, m.remove(m.order.Front()).w)
	}
	return ws
}
