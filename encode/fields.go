package encode

import (
	"fmt"

	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
)

// field is a field the Encoder adds at the end of a record's map, the time
// or the tag, unless the record has a key of that name already.
type field struct {
	key   string
	name  []byte // key, as bytes
	json  []byte // key as a JSON string, and the colon
	isTag bool   // the tag, else the time
}

func newField(key string, isTag bool) field {
	return field{key: key, name: []byte(key), json: append(appendString(nil, []byte(key)), ':'), isTag: isTag}
}

// extras are the added fields of one record: which of them the record has,
// and what their values are made of. The values are written straight into
// the output, in its format, where the map ends.
type extras struct {
	e    *Encoder
	seen [2]bool
	time int64
	tag  string
}

func (x *extras) len() int {
	if x == nil {
		return 0
	}
	return len(x.e.fields)
}

// field returns added field i.
func (x *extras) field(i int) *field { return &x.e.fields[i] }

// appendValue writes the value of added field i in the output format.
func (x *extras) appendValue(dst []byte, i int) []byte {
	if x.e.fields[i].isTag {
		return x.e.appendText(dst, x.tag)
	}
	return x.e.appendTime(dst, x.time)
}

// see marks the added field named k as present in the record.
func (x *extras) see(k []byte) {
	for i := 0; i < x.len(); i++ {
		if string(k) == x.e.fields[i].key {
			x.seen[i] = true
		}
	}
}

// missing counts the added fields the record lacks.
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

// textKey reads the text key (str or bin) at the start of b and looks it
// up among the removals; when drop, the entry's value is skipped too, so
// rest follows the whole entry, else the key is noted among the extras (a
// field removed leaves room for the extra field of its name) and in f, if
// not nil, which returns errDup for a key the map may have already.
func textKey(b []byte, x *extras, rm *removal, f *filter) (k []byte, sub *removal, drop bool, rest []byte, err error) {
	// readKey, with the fixstr of readString inline.
	if len(b) > 0 && b[0]&0xe0 == 0xa0 && 1+int(b[0]&0x1f) <= len(b) {
		end := 1 + int(b[0]&0x1f)
		k, b = b[1:end], b[end:]
	} else {
		if len(b) > 0 && b[0] >= 0xc4 && b[0] <= 0xc6 {
			k, b, err = msgp.ReadBytesZC(b)
		} else {
			k, b, err = readString(b)
		}
		if err != nil {
			return nil, nil, false, b, err
		}
	}
	if sub, drop = rm.child(k); drop {
		b, err = msgp.Skip(b)
		return k, sub, drop, b, err
	}
	x.see(k)
	if f != nil {
		if f.set != nil {
			return k, sub, drop, b, f.set.add(k)
		}
		err = f.note(k)
	}
	return k, sub, drop, b, err
}
