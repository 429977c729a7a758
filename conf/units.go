package conf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// sizeUnits are the size suffixes: K, M and G count powers of 1000, as
// Fluent Bit's own sizes do (flb_utils_size_to_bytes); KiB, MiB and GiB
// powers of 1024.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"G", 1e9}, {"M", 1e6}, {"K", 1e3},
	{"B", 1},
}

// ParseSize reads a byte size: 1048576, 512K, 1.5M, 1G, 64MiB.
func ParseSize(v string) (int64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || !(n >= 0 && n*float64(mult) < 1<<62) || strings.ContainsAny(s, "EXPINF_") {
		return 0, fmt.Errorf("not a size (use bytes, or a K, M, G, KiB, MiB or GiB suffix, e.g. 64M)")
	}
	return int64(n * float64(mult)), nil
}

// FormatSize writes a size the way ParseSize reads it, in its largest
// whole unit.
func FormatSize(n int64) string {
	out, best := strconv.FormatInt(n, 10), n
	for _, u := range sizeUnits {
		if len(u.suffix) != 2 && n >= u.mult && n%u.mult == 0 && n/u.mult < best {
			best = n / u.mult
			out = strconv.FormatInt(best, 10) + strings.Replace(u.suffix, "IB", "iB", 1)
		}
	}
	return out
}

// ParseDuration reads a duration with a unit (5ms, 2s, 1m30s); a bare number
// is refused, except 0, so that no one guesses whether it meant ms or s.
func ParseDuration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration (give a unit, e.g. 500ms or 2s)")
	}
	return d, nil
}
