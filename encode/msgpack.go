package encode

import "github.com/tinylib/msgp/msgp"

// appendMsgpackMap copies a msgpack map, leaving out the keys rm removes and
// adding the extra fields the map lacks; untouched maps are copied whole.
// Keys a map repeats stay as they are, every copy (Remove_Keys removes them
// all), as Fluent Bit passes its msgpack on.
func appendMsgpackMap(dst, b []byte, depth int, x *extras, rm *removal) ([]byte, []byte, error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	n, entries, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return dst, b, err
	}
	// First pass: which keys are there, and how many entries stay.
	kept := n
	p := entries
	for i := uint32(0); i < n; i++ {
		var drop bool
		if isText(p) {
			if _, _, drop, p, err = textKey(p, x, rm, nil); err != nil {
				return dst, b, err
			}
		} else if p, err = msgp.Skip(p); err != nil {
			return dst, b, err
		}
		if drop {
			kept--
		} else if p, err = msgp.Skip(p); err != nil {
			return dst, b, err
		}
	}
	rest := p
	whole := entries[:len(entries)-len(rest)]
	if rm == nil {
		dst = msgp.AppendMapHeader(dst, n+x.missing())
		dst = append(dst, whole...)
	} else {
		dst = msgp.AppendMapHeader(dst, kept+x.missing())
		for p = whole; len(p) > 0; {
			start := p
			var sub *removal
			var drop bool
			if isText(p) {
				var k []byte
				k, p, _ = readKey(p)
				sub, drop = rm.child(k)
			} else {
				p, _ = msgp.Skip(p)
			}
			key := start[:len(start)-len(p)]
			valStart := p
			p, _ = msgp.Skip(p)
			switch {
			case drop:
			case sub != nil && msgp.NextType(valStart) == msgp.MapType:
				dst = append(dst, key...)
				if dst, _, err = appendMsgpackMap(dst, valStart, depth+1, nil, sub); err != nil {
					return dst, b, err
				}
			default:
				dst = append(dst, start[:len(start)-len(p)]...)
			}
		}
	}
	for i := 0; i < x.len(); i++ {
		if !x.seen[i] {
			dst = msgp.AppendString(dst, x.field(i).key)
			dst = x.appendValue(dst, i)
		}
	}
	return dst, rest, nil
}
