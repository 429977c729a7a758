package encode

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/gokafka/gokafka/ra"
	"github.com/hamba/avro/v2"
	"github.com/tinylib/msgp/msgp"
)

// Avro says how Format avro writes a record: the Avro binary encoding of
// the record against Schema, a record schema, after Confluent's framing (a
// zero byte and SchemaID, 4 bytes big-endian), as Confluent's serializers
// write it and the Schema Registry's deserializers read it.
//
// Schema fields are taken from the record's fields of the same name; its
// other fields are left out. A field the record lacks, or has as nil, gets
// the schema's default, else null if its type allows it; else the record
// cannot be encoded. The time and the tag go into the top-level fields
// named Timestamp_Key and Tag_Key, when the schema has them and the record
// does not.
type Avro struct {
	Schema   avro.Schema
	SchemaID uint32
}

// avroNode is a schema compiled for writing from msgpack.
type avroNode struct {
	typ     avro.Type
	logical avro.LogicalType // of a primitive or fixed
	name    string           // of a named type, or its type
	fields  []avroField      // record
	index   map[string]int   // record: field by name or alias
	items   *avroNode        // array items, map values
	symbols map[string]int   // enum
	size    int              // fixed
	// union: its branches, its null branch (-1 for none), and which
	// branches take a msgpack type, in the order they are tried
	branches []*avroNode
	null     int
	takes    map[msgp.Type][]int
}

type avroField struct {
	name string
	node *avroNode
	dflt []byte // the default, encoded; nil for none
	// added, for a top-level field: 't' the time, 'g' the tag, 0 neither
	added byte
}

// avroWriter writes records against a compiled schema.
type avroWriter struct {
	root   *avroNode
	prefix [5]byte
	time   string // Timestamp_Format, for the time field
}

// newAvroWriter compiles o's schema and checks that the time and the tag
// fit the fields o names for them.
func newAvroWriter(o Options) (*avroWriter, error) {
	if o.Avro.Schema == nil {
		return nil, errors.New("avro format needs a schema")
	}
	root, err := compileAvro(o.Avro.Schema, map[string]*avroNode{})
	if err != nil {
		return nil, err
	}
	if root.typ != avro.Record {
		return nil, fmt.Errorf("avro schema is %s, not a record", root.name)
	}
	w := &avroWriter{root: root, time: o.TimestampFormat}
	binary.BigEndian.PutUint32(w.prefix[1:], o.Avro.SchemaID)
	// The added fields are compiled for the top level only: a recursive
	// schema's nested records must not get them.
	top := *root
	top.fields = append([]avroField(nil), root.fields...)
	for i := range top.fields {
		f := &top.fields[i]
		switch f.name {
		case o.TimestampKey:
			f.added = 't'
			if _, err := w.appendTime(nil, f.node, time.Now().UnixNano()); err != nil { // an int holds no epoch_ms of today
				return nil, fmt.Errorf("field %s, for Timestamp_Key: %w", f.name, err)
			}
		case o.TagKey:
			f.added = 'g'
			if t := f.node.typ; t != avro.String && t != avro.Bytes && t != avro.Enum && t != avro.Fixed && len(f.node.takes[msgp.StrType]) == 0 {
				return nil, fmt.Errorf("field %s, for Tag_Key: the tag cannot be a %s", f.name, f.node.name)
			}
		}
	}
	w.root = &top
	return w, nil
}

// compileAvro compiles s; named holds the named types compiled so far, so
// a recursive schema refers to itself.
func compileAvro(s avro.Schema, named map[string]*avroNode) (*avroNode, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	n := &avroNode{typ: s.Type(), name: string(s.Type()), null: -1}
	if ns, ok := s.(avro.NamedSchema); ok {
		if done := named[ns.FullName()]; done != nil {
			return done, nil
		}
		n.name = ns.FullName()
		named[n.name] = n
	}
	var err error
	switch s := s.(type) {
	case *avro.PrimitiveSchema:
		if l, ok := s.Prop("logicalType").(string); ok { // hamba reads no *-nanos
			n.logical = avro.LogicalType(l)
		}
		if l := s.Logical(); l != nil {
			n.logical = l.Type()
		}
	case *avro.RecordSchema:
		n.index = map[string]int{}
		for i, f := range s.Fields() {
			af := avroField{name: f.Name()}
			if af.node, err = compileAvro(f.Type(), named); err != nil {
				return nil, err
			}
			if f.HasDefault() {
				if af.dflt, err = appendDefault([]byte{}, af.node, f.Default()); err != nil {
					return nil, fmt.Errorf("default of field %s: %w", f.Name(), err)
				}
			}
			n.fields = append(n.fields, af)
			n.index[f.Name()] = i
		}
		for i, f := range s.Fields() { // an alias does not hide a field's name
			for _, alias := range f.Aliases() {
				if _, taken := n.index[alias]; !taken {
					n.index[alias] = i
				}
			}
		}
	case *avro.ArraySchema:
		n.items, err = compileAvro(s.Items(), named)
	case *avro.MapSchema:
		n.items, err = compileAvro(s.Values(), named)
	case *avro.EnumSchema:
		n.symbols = map[string]int{}
		for i, sym := range s.Symbols() {
			n.symbols[sym] = i
		}
	case *avro.FixedSchema:
		n.size = s.Size()
		if l := s.Logical(); l != nil {
			n.logical = l.Type()
		}
	case *avro.UnionSchema:
		n.takes = map[msgp.Type][]int{}
		for i, b := range s.Types() {
			bn, err := compileAvro(b, named)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, bn)
			if bn.typ == avro.Null {
				n.null = i
			}
		}
		// A value goes to a branch of its own kind before one it
		// converts to, each in the schema's order.
		for _, t := range []msgp.Type{msgp.NilType, msgp.BoolType, msgp.IntType, msgp.UintType, msgp.Float32Type, msgp.Float64Type, msgp.StrType, msgp.BinType, msgp.ArrayType, msgp.MapType} {
			for _, pass := range [][]avro.Type{ownTypes(t), convertedTypes(t)} {
				for i, bn := range n.branches {
					if slices.Contains(pass, bn.typ) {
						n.takes[t] = append(n.takes[t], i)
					}
				}
			}
		}
	}
	return n, err
}

// ownTypes are the Avro types of a msgpack type's own kind.
func ownTypes(t msgp.Type) []avro.Type {
	switch t {
	case msgp.NilType:
		return []avro.Type{avro.Null}
	case msgp.BoolType:
		return []avro.Type{avro.Boolean}
	case msgp.IntType, msgp.UintType:
		return []avro.Type{avro.Int, avro.Long}
	case msgp.Float32Type, msgp.Float64Type:
		return []avro.Type{avro.Float, avro.Double}
	case msgp.StrType:
		return []avro.Type{avro.String, avro.Enum}
	case msgp.BinType:
		return []avro.Type{avro.Bytes, avro.Fixed}
	case msgp.ArrayType:
		return []avro.Type{avro.Array}
	case msgp.MapType:
		return []avro.Type{avro.Record, avro.Map}
	}
	return nil
}

// convertedTypes are the other Avro types a msgpack type is written as.
func convertedTypes(t msgp.Type) []avro.Type {
	switch t {
	case msgp.IntType, msgp.UintType:
		return []avro.Type{avro.Float, avro.Double}
	case msgp.StrType:
		return []avro.Type{avro.Bytes, avro.Fixed}
	case msgp.BinType:
		return []avro.Type{avro.String}
	}
	return nil
}

// appendAvro writes the record body b framed, with x's time and tag, and
// returns what follows the body.
func (w *avroWriter) appendAvro(dst, b []byte, x *extras, rm *removal) (out, rest []byte, err error) {
	if msgp.NextType(b) != msgp.MapType {
		return dst, b, errors.New("avro needs a map body")
	}
	return w.appendRecord(append(dst, w.prefix[:]...), w.root, b, 0, rm, x)
}

// appendRecord writes the msgpack map at the start of b as record n: its
// fields in the schema's order, each from the map's entry of its name.
func (w *avroWriter) appendRecord(dst []byte, n *avroNode, b []byte, depth int, rm *removal, x *extras) (out, rest []byte, err error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	count, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return dst, b, err
	}
	// Each field's value in the map, and what to remove inside it.
	type fieldValue struct {
		v   []byte
		sub *removal
	}
	var small [16]fieldValue
	vals := small[:]
	if len(n.fields) > len(small) {
		vals = make([]fieldValue, len(n.fields))
	}
	vals = vals[:len(n.fields)]
	for range count {
		k, v, isText, err := ra.MapKey(b)
		if err != nil {
			return dst, b, err
		}
		i, found := n.index[string(k)]
		var sub *removal
		if isText && found {
			var drop bool
			if sub, drop = rm.child(k); drop {
				found = false
			}
		}
		if b, err = msgp.Skip(v); err != nil {
			return dst, b, err
		}
		if isText && found { // the last copy of a key the map repeats
			vals[i].v, vals[i].sub = v, sub
			if msgp.NextType(v) == msgp.NilType {
				vals[i].v = nil // as if missing
			}
		}
	}
	for i := range n.fields {
		f := &n.fields[i]
		if v := vals[i].v; v != nil {
			if dst, _, err = w.appendValue(dst, f.node, v, depth+1, vals[i].sub); err != nil {
				return dst, b, fmt.Errorf("%s: %w", f.name, err)
			}
			continue
		}
		switch {
		case f.added == 't' && x != nil:
			dst, err = w.appendTime(dst, f.node, x.time)
		case f.added == 'g' && x != nil:
			dst, err = appendAvroText(dst, f.node, []byte(x.tag))
		case f.dflt != nil:
			dst = append(dst, f.dflt...)
		case f.node.typ == avro.Null:
		case f.node.null >= 0:
			dst = binary.AppendVarint(dst, int64(f.node.null))
		default:
			err = errors.New("missing, and the schema gives no default")
		}
		if err != nil {
			return dst, b, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return dst, b, nil
}

// appendValue writes the msgpack value at the start of b as n and returns
// what follows it.
func (w *avroWriter) appendValue(dst []byte, n *avroNode, b []byte, depth int, rm *removal) (out, rest []byte, err error) {
	t := msgp.NextType(b)
	switch n.typ {
	case avro.Union:
		return w.appendUnion(dst, n, b, depth, rm)
	case avro.Record:
		if t == msgp.MapType {
			return w.appendRecord(dst, n, b, depth, rm, nil)
		}
	case avro.Map:
		if t == msgp.MapType {
			return w.appendMap(dst, n, b, depth, rm)
		}
	case avro.Array:
		if t == msgp.ArrayType {
			return w.appendArray(dst, n, b, depth)
		}
	case avro.Null:
		if t == msgp.NilType {
			return dst, b[1:], nil
		}
	case avro.Boolean:
		if t == msgp.BoolType {
			v, rest, err := msgp.ReadBoolBytes(b)
			if v {
				return append(dst, 1), rest, err
			}
			return append(dst, 0), rest, err
		}
	case avro.Int, avro.Long:
		if t == msgp.IntType || t == msgp.UintType {
			v, rest, err := msgp.ReadInt64Bytes(b)
			if err != nil {
				return dst, b, err
			}
			if n.typ == avro.Int && (v < math.MinInt32 || v > math.MaxInt32) {
				return dst, b, fmt.Errorf("%d is out of an int's range", v)
			}
			return binary.AppendVarint(dst, v), rest, nil
		}
	case avro.Float, avro.Double:
		var f float64
		switch t {
		case msgp.UintType:
			var u uint64
			u, rest, err = msgp.ReadUint64Bytes(b)
			f = float64(u)
		case msgp.IntType:
			var i int64
			i, rest, err = msgp.ReadInt64Bytes(b)
			f = float64(i)
		case msgp.Float32Type, msgp.Float64Type:
			f, rest, err = msgp.ReadFloat64Bytes(b)
		default:
			return dst, b, typeError(n, t)
		}
		if err != nil {
			return dst, b, err
		}
		return appendReal(dst, n.typ, f), rest, nil
	case avro.String, avro.Bytes, avro.Enum, avro.Fixed:
		var v []byte
		switch t {
		case msgp.StrType:
			v, rest, err = msgp.ReadStringZC(b)
		case msgp.BinType:
			v, rest, err = msgp.ReadBytesZC(b)
		default:
			return dst, b, typeError(n, t)
		}
		if err != nil {
			return dst, b, err
		}
		out, err := appendAvroText(dst, n, v)
		return out, rest, err
	}
	return dst, b, typeError(n, t)
}

// appendReal writes f as a float or a double, by typ.
func appendReal(dst []byte, typ avro.Type, f float64) []byte {
	if typ == avro.Float {
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f)))
	}
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func typeError(n *avroNode, t msgp.Type) error {
	return fmt.Errorf("%s value for type %s", t, n.name)
}

// appendAvroText writes text v as n: a string (made valid UTF-8), bytes, an
// enum symbol, fixed bytes of n's size, or a union's first branch of those.
func appendAvroText(dst []byte, n *avroNode, v []byte) ([]byte, error) {
	if n.logical == avro.Decimal {
		return dst, fmt.Errorf("text for a decimal %s", n.name)
	}
	switch n.typ {
	case avro.String:
		if !utf8.Valid(v) {
			v = bytes.ToValidUTF8(v, []byte("\uFFFD"))
		}
		return append(binary.AppendVarint(dst, int64(len(v))), v...), nil
	case avro.Bytes:
		return append(binary.AppendVarint(dst, int64(len(v))), v...), nil
	case avro.Enum:
		i, ok := n.symbols[string(v)]
		if !ok {
			return dst, fmt.Errorf("%q is not a symbol of enum %s", v, n.name)
		}
		return binary.AppendVarint(dst, int64(i)), nil
	case avro.Fixed:
		if len(v) != n.size {
			return dst, fmt.Errorf("%d bytes for fixed %s of %d", len(v), n.name, n.size)
		}
		return append(dst, v...), nil
	case avro.Union:
		var first error
		for _, i := range n.takes[msgp.StrType] {
			out, err := appendAvroText(binary.AppendVarint(dst, int64(i)), n.branches[i], v)
			if err == nil {
				return out, nil
			}
			first = cmp.Or(first, err)
		}
		if first != nil {
			return dst, first
		}
	}
	return dst, fmt.Errorf("text for type %s", n.name)
}

// appendUnion writes b as the first branch of union n that takes it. A map
// or an array goes to the first branch of its kind: trying the others after
// a failure deep inside would take time exponential in its depth.
func (w *avroWriter) appendUnion(dst []byte, n *avroNode, b []byte, depth int, rm *removal) (out, rest []byte, err error) {
	t := msgp.NextType(b)
	takes := n.takes[t]
	if len(takes) > 1 && (t == msgp.MapType || t == msgp.ArrayType) {
		takes = takes[:1]
	}
	var first error
	for _, i := range takes {
		out, rest, err := w.appendValue(binary.AppendVarint(dst, int64(i)), n.branches[i], b, depth, rm)
		if err == nil {
			return out, rest, nil
		}
		first = cmp.Or(first, err)
	}
	if first != nil {
		return dst, b, first
	}
	return dst, b, typeError(n, t)
}

// appendArray writes the msgpack array at the start of b as Avro array n,
// in one block.
func (w *avroWriter) appendArray(dst []byte, n *avroNode, b []byte, depth int) (out, rest []byte, err error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	count, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return dst, b, err
	}
	if count > 0 {
		dst = binary.AppendVarint(dst, int64(count))
	}
	for i := range count {
		if dst, b, err = w.appendValue(dst, n.items, b, depth+1, nil); err != nil {
			return dst, b, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return append(dst, 0), b, nil
}

// appendMap writes the msgpack map at the start of b as Avro map n, in one
// block, keys as text. Entries that rm removes are left out, and so are
// nil values where n's values cannot be null.
func (w *avroWriter) appendMap(dst []byte, n *avroNode, b []byte, depth int, rm *removal) (out, rest []byte, err error) {
	if depth > maxDepth {
		return dst, b, errDepth
	}
	count, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return dst, b, err
	}
	keep := func(k, v []byte, isText bool) (sub *removal, ok bool) {
		if msgp.NextType(v) == msgp.NilType && n.items.typ != avro.Null && n.items.null < 0 {
			return nil, false
		}
		if !isText {
			return nil, true
		}
		sub, drop := rm.child(k)
		return sub, !drop
	}
	kept, p := uint32(0), b
	for range count {
		k, v, isText, err := ra.MapKey(p)
		if err != nil {
			return dst, p, err
		}
		if _, ok := keep(k, v, isText); ok {
			kept++
		}
		if p, err = msgp.Skip(v); err != nil {
			return dst, p, err
		}
	}
	if kept > 0 {
		dst = binary.AppendVarint(dst, int64(kept))
	}
	var keyBuf []byte
	for range count {
		k, v, isText, _ := ra.MapKey(b) // read once already
		sub, ok := keep(k, v, isText)
		if !ok {
			b, _ = msgp.Skip(v)
			continue
		}
		if !isText {
			if keyBuf, err = AppendJSON(keyBuf[:0], b[:len(b)-len(v)]); err != nil {
				return dst, b, err
			}
			k = keyBuf
		}
		dst, _ = appendAvroText(dst, stringNode, k)
		if dst, b, err = w.appendValue(dst, n.items, v, depth+1, sub); err != nil {
			return dst, b, fmt.Errorf("%q: %w", k, err)
		}
	}
	return append(dst, 0), b, nil
}

// stringNode is Avro's string, for map keys.
var stringNode = &avroNode{typ: avro.String, name: "string", null: -1}

// appendTime writes the record time ns as n: a long (or int) in the unit
// of its logicalType timestamp-millis, -micros or -nanos, or else of
// Timestamp_Format epoch, epoch_ms or epoch_ns; a double (or float) in
// Timestamp_Format double or epoch*; a string in any Timestamp_Format; or a
// union's first branch of those.
func (w *avroWriter) appendTime(dst []byte, n *avroNode, ns int64) ([]byte, error) {
	switch n.typ {
	case avro.Long, avro.Int:
		var v int64
		switch n.logical {
		case avro.TimestampMillis, avro.LocalTimestampMillis:
			v, _ = divmod(ns, 1e6)
		case avro.TimestampMicros, avro.LocalTimestampMicros:
			v, _ = divmod(ns, 1e3)
		case "timestamp-nanos", "local-timestamp-nanos":
			v = ns
		case avro.Date, avro.TimeMillis, avro.TimeMicros:
			return dst, fmt.Errorf("a %s is not a timestamp", n.logical)
		default:
			if !isEpoch(w.time) {
				return dst, fmt.Errorf("a %s takes the time with logicalType timestamp-millis, timestamp-micros or timestamp-nanos, or with Timestamp_Format epoch, epoch_ms or epoch_ns", n.typ)
			}
			v = epoch(ns, w.time)
		}
		if n.typ == avro.Int && (v < math.MinInt32 || v > math.MaxInt32) {
			return dst, fmt.Errorf("time %d is out of an int's range", v)
		}
		return binary.AppendVarint(dst, v), nil
	case avro.Double, avro.Float:
		var f float64
		switch {
		case w.time == "double":
			f = float64(ns) / 1e9
		case isEpoch(w.time):
			f = float64(epoch(ns, w.time))
		default:
			return dst, fmt.Errorf("a %s takes the time with Timestamp_Format double, epoch, epoch_ms or epoch_ns", n.typ)
		}
		return appendReal(dst, n.typ, f), nil
	case avro.String:
		var buf [40]byte
		return appendAvroText(dst, n, appendTimeText(buf[:0], ns, w.time))
	case avro.Union:
		var first error
		for i, b := range n.branches {
			if b.typ == avro.Null {
				continue
			}
			out, err := w.appendTime(binary.AppendVarint(dst, int64(i)), b, ns)
			if err == nil {
				return out, nil
			}
			first = cmp.Or(first, err)
		}
		if first != nil {
			return dst, first
		}
	}
	return dst, fmt.Errorf("the time cannot be a %s", n.name)
}

func isEpoch(format string) bool {
	return format == "epoch" || format == "epoch_ms" || format == "epoch_ns"
}

// defaultNumber reads a number default as hamba gives it: an integer, or a
// float, read from the schema as a float64 (so an integer is exact only
// below 2^53: 2^53 may have been 2^53+1).
func defaultNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// appendDefault writes a field's default v, as hamba/avro read it from the
// schema, as n (a union's as its first branch).
func appendDefault(dst []byte, n *avroNode, v any) ([]byte, error) {
	if j, err := json.Marshal(v); err == nil && string(j) == "null" {
		v = nil // hamba's null inside a default is a type of its own
	}
	switch n.typ {
	case avro.Union:
		return appendDefault(binary.AppendVarint(dst, 0), n.branches[0], v)
	case avro.Null:
		if v == nil {
			return dst, nil
		}
	case avro.Boolean:
		if b, ok := v.(bool); ok && b {
			return append(dst, 1), nil
		} else if ok {
			return append(dst, 0), nil
		}
	case avro.Int, avro.Long:
		f, ok := defaultNumber(v)
		switch {
		case !ok || f != math.Trunc(f) || math.Abs(f) >= 1<<53:
			return dst, fmt.Errorf("default %v for type %s: not an integer within ±(2^53-1), the most the schema's parser reads exactly", v, n.name)
		case n.typ == avro.Int && (f < math.MinInt32 || f > math.MaxInt32):
			return dst, fmt.Errorf("default %v for type int: out of its range", v)
		}
		return binary.AppendVarint(dst, int64(f)), nil
	case avro.Float, avro.Double:
		f, ok := defaultNumber(v)
		if !ok {
			return dst, fmt.Errorf("default %v for type %s", v, n.name)
		}
		return appendReal(dst, n.typ, f), nil
	case avro.String, avro.Enum:
		if x, ok := v.(string); ok {
			return appendAvroText(dst, n, []byte(x))
		}
	case avro.Bytes: // a decimal's default is its encoding too
		if x, ok := v.([]byte); ok {
			return append(binary.AppendVarint(dst, int64(len(x))), x...), nil
		}
	case avro.Fixed: // hamba gives a [size]byte
		if x := reflect.ValueOf(v); x.Kind() == reflect.Array && x.Type().Elem().Kind() == reflect.Uint8 && x.Len() == n.size {
			start := len(dst)
			dst = append(dst, make([]byte, n.size)...)
			reflect.Copy(reflect.ValueOf(dst[start:]), x)
			return dst, nil
		}
	case avro.Array:
		if items, ok := v.([]any); ok {
			if len(items) > 0 {
				dst = binary.AppendVarint(dst, int64(len(items)))
			}
			for _, item := range items {
				var err error
				if dst, err = appendDefault(dst, n.items, item); err != nil {
					return dst, err
				}
			}
			return append(dst, 0), nil
		}
	case avro.Map, avro.Record:
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		if n.typ == avro.Record {
			for _, f := range n.fields {
				var err error
				if x, ok := m[f.name]; ok {
					dst, err = appendDefault(dst, f.node, x)
				} else if f.dflt != nil {
					dst = append(dst, f.dflt...)
				} else {
					err = fmt.Errorf("default for record %s has no %s", n.name, f.name)
				}
				if err != nil {
					return dst, err
				}
			}
			return dst, nil
		}
		if len(m) > 0 {
			dst = binary.AppendVarint(dst, int64(len(m)))
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			var err error
			if dst, err = appendDefault(append(binary.AppendVarint(dst, int64(len(k))), k...), n.items, m[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, 0), nil
	}
	return dst, fmt.Errorf("default %v for type %s", v, n.name)
}
