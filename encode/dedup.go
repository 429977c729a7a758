package encode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"

	"github.com/tinylib/msgp/msgp"
)

// Duplicate map keys. In JSON and logfmt a key that a map repeats is
// written once, with its last value, where its last copy is, in every map
// at any depth, as Fluent Bit's JSON does (src/flb_pack.c, msgpack2json);
// str and bin keys are alike, keys of other types are never duplicates.
//
// Records seldom repeat a key, so a record is first written as if none
// did, quickly, each map noting its text keys: a map of up to 15 entries
// (a fixmap) in a 128-bit filter, a key whose bits are set already compared
// with the map's earlier keys; a larger map in a hash table of their
// hashes. Only when a key is there already (or its hash is, or the table's
// probes keep matching) is the record written again from the start,
// carefully: each map's entries noted with where their output lies, and
// in a hash table by a seeded hash of the key, an earlier copy of a key
// marked dead, and the dead ones cut out of the output when the map ends.
// Both ways take time linear in the record, at each depth.

// errDup stops the quick writing of a record that repeats a key (or may):
// the record is to be written again with a dedup.
var errDup = errors.New("encode: a map repeats a key")

// filter notes the text keys of one map in the quick writing (textKey
// fills it): a small map's in keys, with one bit of each key's quick hash
// in x and one in y (a partitioned Bloom filter, which a map of n keys
// matches falsely with a chance of about (n/64)², for the n+1th), a larger
// map's in set.
type filter struct {
	entries []byte // the map's
	x, y    uint64
	keys    [15][]byte
	n       int
	set     *keySet
}

// openMap reads the header of the map at the start of b, whose entries are
// to be written: carefully with d, else quickly, noting their keys in f
// (fp is f, or nil with d). Release f when done.
func openMap(b []byte, d *dedup, f *filter) (n uint32, rest []byte, fp *filter, err error) {
	wide := wideMap(b)
	if n, b, err = msgp.ReadMapHeaderBytes(b); err != nil {
		return 0, b, nil, err
	}
	f.entries = b
	if d != nil {
		d.open(n, b)
		return n, b, nil, nil
	}
	if wide {
		f.set = getKeySet(n, len(b))
	}
	return n, b, f, nil
}

// release gives back the key set of a large map's filter.
func (f *filter) release() {
	if f.set != nil {
		keySets.Put(f.set)
	}
}

// note adds the text key k of a small map, reporting errDup when an earlier
// key equals it.
func (f *filter) note(k []byte) error {
	// Bits of a quick hash of k's length and first and last bytes.
	h := uint64(len(k)) << 16
	if len(k) > 0 {
		h |= uint64(k[0]) | uint64(k[len(k)-1])<<8
	}
	h *= 0x9e3779b97f4a7c15
	kx, ky := uint64(1)<<(h>>58), uint64(1)<<(h>>52&63)
	if f.x&kx != 0 && f.y&ky != 0 {
		for _, e := range f.keys[:f.n] {
			if bytes.Equal(e, k) {
				return errDup
			}
		}
	}
	if f.n == len(f.keys) {
		return errDup // a guard: only fixmaps, of at most 15 keys, are noted
	}
	f.x, f.y = f.x|kx, f.y|ky
	f.keys[f.n] = k
	f.n++
	return nil
}

// keySet is an open-addressing hash table of the quick hashes of a large
// map's text keys.
type keySet struct {
	slots []uint64 // the hash, its lowest bit set; 0 is free
	n     int
	shift uint // the hash's bits above it index slots
}

// Bounds of a keySet: a larger map, or a key whose hash has too many
// others like it, is written carefully.
const (
	maxKeySlots = 1 << 12
	maxProbes   = 8
)

var keySets = sync.Pool{New: func() any { return new(keySet) }}

// getKeySet returns an empty keySet for a map of n entries in size bytes.
func getKeySet(n uint32, size int) *keySet {
	s := keySets.Get().(*keySet)
	n = max(4, min(n, uint32(size/2), maxKeySlots/2)) // an entry takes 2 bytes at least
	slots := 1 << bits.Len32(2*n-1)
	if cap(s.slots) < slots {
		s.slots = make([]uint64, slots)
	}
	s.slots = s.slots[:slots]
	clear(s.slots)
	s.n, s.shift = 0, uint(64-bits.TrailingZeros(uint(slots)))
	return s
}

// add puts k in s, or reports errDup: s has its hash, or it cannot go
// in. The hash, from k's length and its first and last 8 bytes (all of a
// key of up to 16), is not seeded: for the quick writing only, which no
// number of collisions makes slower than linear.
func (s *keySet) add(k []byte) error {
	if 2*(s.n+1) > len(s.slots) {
		return errDup
	}
	n := len(k)
	var h uint64
	if n >= 8 {
		h = binary.LittleEndian.Uint64(k) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[n-8:]), 29)
	} else if n >= 4 {
		h = uint64(binary.LittleEndian.Uint32(k)) | uint64(binary.LittleEndian.Uint32(k[n-4:]))<<32
	} else if n > 0 {
		h = uint64(k[0]) | uint64(k[n>>1])<<8 | uint64(k[n-1])<<16
	}
	h = (h ^ uint64(n)<<56) * 0x9e3779b97f4a7c15
	mask := uint64(len(s.slots) - 1)
	v, i := h|1, h>>s.shift
	for range maxProbes {
		slot := &s.slots[i&mask]
		if *slot == 0 {
			*slot = v
			s.n++
			return nil
		}
		if *slot == v {
			return errDup
		}
		i++
	}
	return errDup
}

// wideMap reports a map in the long forms (map 16 or map 32) at the start
// of b, whatever its count: not a fixmap.
func wideMap(b []byte) bool {
	return len(b) > 0 && (b[0] == 0xde || b[0] == 0xdf)
}

// isText reports a msgpack str or bin at the start of b: a map key that is
// text.
func isText(b []byte) bool {
	return isStr(b) || len(b) > 0 && b[0] >= 0xc4 && b[0] <= 0xc6
}

// readKey reads the str or bin at the start of b.
func readKey(b []byte) (k, rest []byte, err error) {
	if len(b) > 0 && b[0] >= 0xc4 && b[0] <= 0xc6 {
		return msgp.ReadBytesZC(b)
	}
	return readString(b)
}

// dedup is the state of the careful writing of one record: the maps being
// written, innermost last, their entries and their hash tables.
type dedup struct {
	maps  []dedupMap
	ents  []dedupEntry
	table []int32 // per map, index+1 of its entry by key hash; 0 is free
	seed  maphash.Seed
}

// dedupEntry is an entry written: its key, if text, at entries[key:key+n]
// of its map's entries (n is -1 if not), and its output, dst[start:end],
// after a separator that starts at sep.
type dedupEntry struct {
	key, n          int
	sep, start, end int
	dead            bool
}

// dedupMap is one map being written carefully.
type dedupMap struct {
	entries []byte
	base    int // its entries are d.ents[base:]
	tbase   int // its hash table is d.table[tbase:], the last: the maps in it are closed
	keys    int // in its table
	dead    int // its first dead entry, as index into d.ents; -1 for none
}

var dedups = sync.Pool{New: func() any { return &dedup{seed: maphash.MakeSeed()} }}

// withDedup writes a record quickly, write given no dedup; if a map
// repeats a key (errDup), it writes it again, carefully, with one.
func withDedup(write func(d *dedup) (out, rest []byte, err error)) (out, rest []byte, err error) {
	out, rest, err = write(nil)
	if err == errDup {
		d := getDedup()
		out, rest, err = write(d)
		putDedup(d)
	}
	return out, rest, err
}

func getDedup() *dedup { return dedups.Get().(*dedup) }

// putDedup returns d to the pool, keeping no reference to the record.
func putDedup(d *dedup) {
	clear(d.maps)
	d.maps, d.ents, d.table = d.maps[:0], d.ents[:0], d.table[:0]
	dedups.Put(d)
}

// open starts a map of n entries, in entries.
func (d *dedup) open(n uint32, entries []byte) {
	m := dedupMap{entries: entries, base: len(d.ents), tbase: len(d.table), dead: -1}
	// A table for n keys, within bounds: an entry takes 2 bytes at least,
	// and a larger map grows its table.
	n = max(4, min(n, uint32(len(entries)/2), 512))
	size := 1 << bits.Len32(2*n-1)
	d.table = slices.Grow(d.table, size)[:m.tbase+size]
	clear(d.table[m.tbase:])
	d.maps = append(d.maps, m)
}

// add notes an entry of the innermost map that was written to
// dst[start:end] after a separator from sep, with the key of n bytes at
// key in the map's entries, if text (key -1 if not); an earlier entry of
// the key dies.
func (d *dedup) add(key, n, sep, start, end int) {
	if key < 0 {
		n = -1
	}
	m := &d.maps[len(d.maps)-1]
	i := len(d.ents) - m.base
	d.ents = append(d.ents, dedupEntry{key: key, n: n, sep: sep, start: start, end: end})
	if n < 0 {
		return
	}
	if 2*(m.keys+1) > len(d.table)-m.tbase { // at most half full: grown
		size := 2 * (len(d.table) - m.tbase)
		d.table = slices.Grow(d.table[:m.tbase], size)[:m.tbase+size]
		clear(d.table[m.tbase:])
		m.keys = 0
		for j, e := range d.ents[m.base : len(d.ents)-1] {
			if e.n >= 0 && !e.dead {
				d.insert(m, j)
			}
		}
	}
	d.insert(m, i)
}

// insert puts entry i of m (an index from m.base) in its table; an earlier
// entry of its key dies, and leaves its place to i.
func (d *dedup) insert(m *dedupMap, i int) {
	table := d.table[m.tbase:]
	mask := uint64(len(table) - 1)
	e := &d.ents[m.base+i]
	key := m.entries[e.key : e.key+e.n]
	for h := maphash.Bytes(d.seed, key); ; h++ {
		slot := &table[h&mask]
		if *slot == 0 {
			*slot = int32(i + 1)
			m.keys++
			return
		}
		old := &d.ents[m.base+int(*slot)-1]
		if old.n == e.n && bytes.Equal(m.entries[old.key:old.key+old.n], key) {
			old.dead = true
			if j := m.base + int(*slot) - 1; m.dead < 0 || j < m.dead {
				m.dead = j
			}
			*slot = int32(i + 1)
			return
		}
	}
}

// close ends the innermost map: the output of its dead entries is cut out
// of dst, the live ones after them moved up, each after the separator sep
// when anything comes before it from first on. It returns dst.
func (d *dedup) close(dst []byte, first int, sep byte) []byte {
	m := d.maps[len(d.maps)-1]
	if m.dead >= 0 {
		w := d.ents[m.dead].sep
		for _, e := range d.ents[m.dead:] {
			if e.dead || e.start == e.end {
				continue
			}
			if w > first {
				dst[w] = sep
				w++
			}
			w += copy(dst[w:], dst[e.start:e.end])
		}
		dst = dst[:w]
	}
	d.maps[len(d.maps)-1] = dedupMap{}
	d.maps, d.ents, d.table = d.maps[:len(d.maps)-1], d.ents[:m.base], d.table[:m.tbase]
	return dst
}
