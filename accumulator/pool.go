package accumulator

import "time"

// batchPool keeps sent batches for reuse, the last one back taken first.
// The batches that none took for a while leave it (dropIdle): the memory an
// outage's backlog took is given back once the backlog is sent, as a pool
// that only grew would keep all of Buffer_Memory for good.
type batchPool struct {
	free   []*Batch
	low    int       // the fewest batches free since looked: those at the bottom were not taken
	looked time.Time // when dropIdle last looked
}

func (p *batchPool) put(b *Batch) { p.free = append(p.free, b) }

// take returns the batch put last, nil if none.
func (p *batchPool) take() *Batch {
	if len(p.free) == 0 {
		return nil
	}
	b := p.free[len(p.free)-1]
	p.free[len(p.free)-1] = nil // a batch taken and then forgotten must not stay reachable from here
	p.free = p.free[:len(p.free)-1]
	p.low = min(p.low, len(p.free))
	return b
}

// dropIdle passes to drop, at most once per idle, the batches that none
// took since it last did, and returns how many.
func (p *batchPool) dropIdle(now time.Time, idle time.Duration, drop func(*Batch)) int {
	if now.Sub(p.looked) < idle {
		return 0
	}
	n := p.low
	for _, b := range p.free[:n] {
		drop(b)
	}
	p.free = append(p.free[:0], p.free[n:]...)
	clear(p.free[len(p.free):cap(p.free)]) // no batch stays reachable from the backing array
	p.low, p.looked = len(p.free), now
	return n
}
