package rdk

import "time"

// SetPartitionsMaxAge sets partitionsMaxAge for a test; the returned func
// restores it.
func SetPartitionsMaxAge(d time.Duration) (restore func()) {
	old := partitionsMaxAge
	partitionsMaxAge = d
	return func() { partitionsMaxAge = old }
}
