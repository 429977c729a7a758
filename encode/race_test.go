//go:build race

package encode

// raceEnabled: the race detector drops sync.Pool items on purpose, so
// pooled buffers are allocated again.
const raceEnabled = true
