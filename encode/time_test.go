package encode

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestISO8601Random checks both fraction widths against time.Time's
// formatting over all of int64 (years 1677 to 2262), after other bytes in
// dst.
func TestISO8601Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		ns := int64(r.Uint64())
		if r.IntN(4) == 0 {
			ns -= ns % 1e9 // whole seconds: zero fractions
		}
		tm := time.Unix(0, ns).UTC()
		for digits, layout := range map[int]string{6: "2006-01-02T15:04:05.000000Z", 9: "2006-01-02T15:04:05.000000000Z"} {
			if got, want := string(AppendISO8601([]byte("x"), ns, digits)), "x"+tm.Format(layout); got != want {
				t.Fatalf("%d, %d digits: got %s, want %s", ns, digits, got, want)
			}
		}
	}
}
