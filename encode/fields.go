package encode

import (
	"fmt"

	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
)

// extras are fields added at the end of a record's map (the time, the tag)
// unless the record already has a key of that name. Values are already in
// the output format, kept in the struct so that building them allocates
// nothing.
type extras struct {
	n    int
	key  [2]string
	seen [2]bool
	off  [2][2]int // value i is buf[off[i][0]:off[i][1]] ...
	big  [2][]byte // ... or big[i] when buf was too small
	used int
	buf  [160]byte
}

func (x *extras) add(key string, val []byte) {
	i := x.n
	x.n++
	x.key[i] = key
	if x.used+len(val) > len(x.buf) {
		x.big[i] = append([]byte(nil), val...)
		return
	}
	copy(x.buf[x.used:], val)
	x.off[i] = [2]int{x.used, x.used + len(val)}
	x.used += len(val)
}

func (x *extras) val(i int) []byte {
	if x.big[i] != nil {
		return x.big[i]
	}
	return x.buf[x.off[i][0]:x.off[i][1]]
}

func (x *extras) len() int {
	if x == nil {
		return 0
	}
	return x.n
}

// see marks the extra field named k as present in the record.
func (x *extras) see(k []byte) {
	for i := 0; i < x.len(); i++ {
		if string(k) == x.key[i] {
			x.seen[i] = true
		}
	}
}

// missing counts the extra fields the record lacks.
func (x *extras) missing() uint32 {
	n := uint32(0)
	for i := 0; i < x.len(); i++ {
		if !x.seen[i] {
			n++
		}
	}
	return n
}

// removal is a tree of map keys to leave out of the output: a node without
// children removes its key and value, one with children removes inside it.
type removal struct {
	children map[string]*removal
}

func newRemoval(paths []ra.Path) (*removal, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	root := &removal{children: map[string]*removal{}}
	for _, p := range paths {
		node := root
		for i, s := range p {
			if s.IsIndex {
				return nil, fmt.Errorf("%s: removing array elements is not supported", p)
			}
			next, ok := node.children[s.Key]
			if ok && next.children == nil {
				break // a parent is removed whole already
			}
			if !ok {
				next = &removal{}
				if i < len(p)-1 {
					next.children = map[string]*removal{}
				}
				node.children[s.Key] = next
			} else if i == len(p)-1 {
				next.children = nil // remove whole
			}
			node = next
		}
	}
	return root, nil
}

// child looks key up: drop means leave the whole entry out; sub, when not
// nil, is the removal inside its value.
func (r *removal) child(key []byte) (sub *removal, drop bool) {
	if r == nil {
		return nil, false
	}
	c, ok := r.children[string(key)]
	if !ok {
		return nil, false
	}
	return c, c.children == nil
}

// stringKey reads the string key at the start of b, notes it among the
// extras and looks it up among the removals; when drop, the entry's value is
// skipped too, so rest follows the whole entry.
func stringKey(b []byte, x *extras, rm *removal) (k []byte, sub *removal, drop bool, rest []byte, err error) {
	if k, b, err = msgp.ReadStringZC(b); err != nil {
		return nil, nil, false, b, err
	}
	x.see(k)
	if sub, drop = rm.child(k); drop {
		b, err = msgp.Skip(b)
	}
	return k, sub, drop, b, err
}
