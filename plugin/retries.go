package plugin

import (
	"hash/maphash"
	"sync"

	"github.com/gokafka/gokafka/accumulator"
)

// retryMemory remembers the waiters of chunks whose flush returned Retry,
// keyed by a hash of the chunk's bytes (Fluent Bit retries the same bytes),
// so that the retry skips what Kafka took, waits for what is still in
// flight, and sends only the rest. It holds at most max chunks; beyond that
// the oldest is forgotten and its retry sends every record again.
type retryMemory struct {
	seed  maphash.Seed
	max   int
	mu    sync.Mutex
	byKey map[uint64]remembered
	order []remembered // in the order put; entries taken or put again since are stale
	seq   uint64
}

type remembered struct {
	key, seq uint64
	w        *accumulator.Waiter
	lane     int // where the chunk's records were sent
}

func newRetryMemory(max int) *retryMemory {
	return &retryMemory{seed: maphash.MakeSeed(), max: max, byKey: make(map[uint64]remembered)}
}

func (m *retryMemory) key(data []byte) uint64 { return maphash.Bytes(m.seed, data) }

// empty reports whether no chunk is remembered, so most flushes skip hashing.
func (m *retryMemory) empty() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byKey) == 0
}

// take removes and returns the waiter of the chunk with key and its lane,
// if any; else nil and -1.
func (m *retryMemory) take(key uint64) (*accumulator.Waiter, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byKey[key]
	if !ok {
		return nil, -1
	}
	delete(m.byKey, key)
	return r.w, r.lane
}

// put remembers w for the chunk with key, sent through lane, forgetting
// the oldest chunks beyond max.
func (m *retryMemory) put(key uint64, w *accumulator.Waiter, lane int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	r := remembered{key, m.seq, w, lane}
	m.byKey[key] = r
	m.order = append(m.order, r)
	for len(m.byKey) > m.max {
		if old := m.order[0]; m.byKey[old.key].seq == old.seq {
			delete(m.byKey, old.key)
		}
		m.order = m.order[1:]
	}
	if len(m.order) > 2*m.max+16 { // drop stale entries
		live := m.order[:0]
		for _, o := range m.order {
			if m.byKey[o.key].seq == o.seq {
				live = append(live, o)
			}
		}
		m.order = live
	}
}

// len is the number of chunks remembered.
func (m *retryMemory) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byKey)
}
