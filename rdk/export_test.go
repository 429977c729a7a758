package rdk

import "time"

// SetPartitionsMaxAge sets partitionsMaxAge for a test; the returned func
// restores it.
func SetPartitionsMaxAge(d time.Duration) (restore func()) {
	old := partitionsMaxAge
	partitionsMaxAge = d
	return func() { partitionsMaxAge = old }
}

// LiveBatches counts the C batches allocated and not yet freed.
var LiveBatches = liveBatches
