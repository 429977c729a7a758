package encode

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// OTLP says how Format otlp_proto and otlp_json make a record into an
// OpenTelemetry log record: one LogsData (an ExportLogsServiceRequest on
// the wire) per message, as the OpenTelemetry Collector's Kafka receiver
// reads them.
//
// The resource and scope come from the record's group when Fluent Bit's
// OpenTelemetry input made it (metadata schema "otlp"); the log record's
// own OTLP fields from its metadata's "otlp" map. The body is the first of
// BodyKeys the record has, or the whole record when it has none of them.
type OTLP struct {
	BodyKeys []string
	// BodyAttributes: the record's other fields become attributes, when
	// one of BodyKeys is the body; else they are left out.
	BodyAttributes bool
}

// otlpLogs is a LogsData of one log record, reused from record to record
// (fewer allocations, half the time): blank holds the zero values that
// clear the last record's.
type otlpLogs struct {
	logs  plog.Logs
	rl    plog.ResourceLogs
	sl    plog.ScopeLogs
	lr    plog.LogRecord
	blank plog.ResourceLogs // with one scope and one record
}

var otlpPool = sync.Pool{New: func() any {
	l := &otlpLogs{logs: plog.NewLogs(), blank: plog.NewResourceLogs()}
	l.rl = l.logs.ResourceLogs().AppendEmpty()
	l.sl = l.rl.ScopeLogs().AppendEmpty()
	l.lr = l.sl.LogRecords().AppendEmpty()
	l.blank.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	return l
}}

// clear makes l's resource, scope and record empty again.
func (l *otlpLogs) clear() {
	bsl := l.blank.ScopeLogs().At(0)
	l.blank.Resource().MoveTo(l.rl.Resource())
	l.rl.SetSchemaUrl("")
	bsl.Scope().MoveTo(l.sl.Scope())
	l.sl.SetSchemaUrl("")
	bsl.LogRecords().At(0).MoveTo(l.lr)
}

// appendOTLP writes rec as an OTLP LogsData and returns what follows its
// body.
func (e *Encoder) appendOTLP(dst []byte, rec *chunk.Record, tag string) (out, rest []byte, err error) {
	l := otlpPool.Get().(*otlpLogs)
	defer otlpPool.Put(l)
	defer l.clear()
	rl, sl, lr := l.rl, l.sl, l.lr
	if schema, _ := ra.Field(rec.Group.Metadata, "schema"); isString(schema, "otlp") {
		if err := setGroup(rl, sl, rec.Group.Body); err != nil {
			return dst, rec.Body, fmt.Errorf("group: %w", err)
		}
	}
	lr.SetTimestamp(pcommon.Timestamp(max(rec.Time, 0)))
	if m, ok := ra.Field(rec.Metadata, "otlp"); ok && msgp.NextType(m) == msgp.MapType {
		if err := setRecordFields(lr, m); err != nil {
			return dst, rec.Body, fmt.Errorf("metadata: %w", err)
		}
	}
	if rest, err = e.setBody(lr, rec.Body); err != nil {
		return dst, rest, err
	}
	if e.o.TagKey != "" {
		lr.Attributes().PutStr(strings.ToValidUTF8(e.o.TagKey, "\uFFFD"), strings.ToValidUTF8(tag, "\uFFFD"))
	}
	b, err := e.otlp.MarshalLogs(l.logs)
	return append(dst, b...), rest, err
}

// maxKeys bounds the entries of an OTLP map: pdata looks each key up among
// those before it, so a map takes time in the square of its size. A larger
// map is sent as its JSON text, and attributes beyond it are counted as
// dropped, as OTLP counts those an SDK's limits leave out.
const maxKeys = 512

// mapSize reads the entry count of the msgpack map at the start of b.
func mapSize(b []byte) uint32 {
	n, _, _ := msgp.ReadMapHeaderBytes(b)
	return n
}

// setJSON sets v to the JSON text of the msgpack map at the start of b,
// leaving out what rm removes, and returns what follows the map.
func setJSON(v pcommon.Value, b []byte, depth int, rm *removal) (rest []byte, err error) {
	out, rest, err := withDedup(func(d *dedup) ([]byte, []byte, error) { return appendMap(nil, b, depth, nil, rm, d) })
	v.SetStr(string(out))
	return rest, err
}

// setBody sets lr's body, and perhaps attributes, from the record body b.
func (e *Encoder) setBody(lr plog.LogRecord, b []byte) (rest []byte, err error) {
	pv := pdataValues{maxValues}
	if msgp.NextType(b) != msgp.MapType {
		return pv.setValue(lr.Body(), b, 0, e.remove)
	}
	if mapSize(b) > maxKeys {
		return setJSON(lr.Body(), b, 0, e.remove)
	}
	bodyKey, found := "", false
	for _, k := range e.o.OTLP.BodyKeys {
		if _, found = ra.Field(b, k); found {
			bodyKey = k
			break
		}
	}
	if !found {
		rest, _, err = pv.setMap(lr.Body().SetEmptyMap(), b, 1, e.remove, nil)
		return rest, err
	}
	attrs := lr.Attributes() // at most maxKeys from the metadata, and maxKeys from b
	rest, _, err = pv.setMap(attrs, b, 1, e.remove, func(k []byte) (v pcommon.Value, keep bool) {
		if string(k) == bodyKey {
			return lr.Body(), true
		}
		if !e.o.OTLP.BodyAttributes {
			return pcommon.Value{}, false
		}
		return attrs.PutEmpty(text(k)), true
	})
	return rest, err
}

// maxValues bounds the values of a record's body, or of a group's or a
// record's metadata, made into pdata values: at about 100 bytes of heap
// each, a body of many small values would take a hundred times its size.
const maxValues = 16 << 10

var errValues = fmt.Errorf("more than %d values, which OTLP would hold in about 100 bytes each", maxValues)

// pdataValues counts the values of one body, or metadata map, made into
// pdata values, and refuses those beyond maxValues.
type pdataValues struct{ left int }

// setMap puts the entries of the msgpack map at the start of b into m,
// leaving out those rm removes, and returns what follows the map. to, when
// not nil, says where an entry's value goes and whether it is kept at all;
// else the entries beyond m's maxKeys are left out, and counted.
func (pv *pdataValues) setMap(m pcommon.Map, b []byte, depth int, rm *removal, to func(key []byte) (pcommon.Value, bool)) (rest []byte, dropped uint32, err error) {
	if depth > maxDepth {
		return b, 0, errDepth
	}
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return b, 0, err
	}
	var keyBuf []byte
	for range n {
		k, v, isText, err := ra.MapKey(b)
		if err != nil {
			return b, dropped, err
		}
		var sub *removal
		if isText {
			var drop bool
			if sub, drop = rm.child(k); drop {
				if b, err = msgp.Skip(v); err != nil {
					return b, dropped, err
				}
				continue
			}
		} else if keyBuf, err = AppendJSON(keyBuf[:0], b[:len(b)-len(v)]); err != nil {
			return b, dropped, err
		} else { // a key of another type is named by its JSON text
			k = keyBuf
		}
		val, keep := pcommon.Value{}, true
		switch {
		case to != nil:
			val, keep = to(k)
		case m.Len() >= maxKeys:
			keep = false
			dropped++
		default:
			val = m.PutEmpty(text(k))
		}
		if !keep {
			if b, err = msgp.Skip(v); err != nil {
				return b, dropped, err
			}
			continue
		}
		if b, err = pv.setValue(val, v, depth, sub); err != nil {
			return b, dropped, err
		}
	}
	return b, dropped, nil
}

// setValue sets v to the msgpack value at the start of b and returns what
// follows it; rm removes inside a map. It reads b as appendJSON does.
func (pv *pdataValues) setValue(v pcommon.Value, b []byte, depth int, rm *removal) (rest []byte, err error) {
	if len(b) == 0 {
		return b, msgp.ErrShortBytes
	}
	if pv.left--; pv.left < 0 {
		return b, errValues
	}
	switch lead := b[0]; {
	case lead <= 0x7f, lead >= 0xe0, lead >= 0xd0 && lead <= 0xd3: // int
		var x int64
		x, rest, err = msgp.ReadInt64Bytes(b)
		v.SetInt(x)
	case lead >= 0xcc && lead <= 0xcf: // uint 8-64
		var x uint64
		if x, rest, err = msgp.ReadUint64Bytes(b); x > math.MaxInt64 {
			v.SetStr(strconv.FormatUint(x, 10)) // OTLP has no unsigned integers
		} else {
			v.SetInt(int64(x))
		}
	case lead >= 0xa0 && lead <= 0xbf, lead == 0xd9, lead == 0xda, lead == 0xdb: // str
		var s []byte
		if s, rest, err = readString(b); utf8.Valid(s) {
			v.SetStr(string(s))
		} else { // an OTLP string is UTF-8: these bytes are kept as they are
			v.SetEmptyBytes().FromRaw(s)
		}
	case lead >= 0x80 && lead <= 0x8f, lead == 0xde, lead == 0xdf: // map
		if mapSize(b) > maxKeys {
			return setJSON(v, b, depth+1, rm)
		}
		rest, _, err = pv.setMap(v.SetEmptyMap(), b, depth+1, rm, nil)
	case lead >= 0x90 && lead <= 0x9f, lead == 0xdc, lead == 0xdd: // array
		if depth >= maxDepth {
			return b, errDepth
		}
		var n uint32
		if n, rest, err = msgp.ReadArrayHeaderBytes(b); err != nil {
			return b, err
		}
		s := v.SetEmptySlice()
		for range n {
			if rest, err = pv.setValue(s.AppendEmpty(), rest, depth+1, nil); err != nil {
				return rest, err
			}
		}
	case lead == 0xc0: // empty: a later copy of a key a map repeats may be null
		return b[1:], v.FromRaw(nil)
	case lead == 0xc2, lead == 0xc3:
		v.SetBool(lead == 0xc3)
		return b[1:], nil
	case lead == 0xca, lead == 0xcb:
		var x float64
		x, rest, err = msgp.ReadFloat64Bytes(b)
		v.SetDouble(x)
	case lead >= 0xc4 && lead <= 0xc6: // bin
		var s []byte
		s, rest, err = msgp.ReadBytesZC(b)
		v.SetEmptyBytes().FromRaw(s)
	case lead >= 0xd4 && lead <= 0xd8, lead >= 0xc7 && lead <= 0xc9: // ext: its data
		var data []byte
		_, data, rest, err = readExt(b)
		v.SetEmptyBytes().FromRaw(data)
	default:
		return b, msgp.InvalidPrefixError(lead)
	}
	return rest, err
}

// setGroup sets the resource and scope from a group's body, as Fluent
// Bit's OpenTelemetry input writes it.
func setGroup(rl plog.ResourceLogs, sl plog.ScopeLogs, body []byte) error {
	if r, ok := ra.Field(body, "resource"); ok {
		res := rl.Resource()
		dropped, err := setAttributes(res.Attributes(), r)
		if err != nil {
			return err
		}
		res.SetDroppedAttributesCount(dropped)
		rl.SetSchemaUrl(textField(r, "schema_url"))
	}
	if s, ok := ra.Field(body, "scope"); ok {
		scope := sl.Scope()
		scope.SetName(textField(s, "name"))
		scope.SetVersion(textField(s, "version"))
		dropped, err := setAttributes(scope.Attributes(), s)
		if err != nil {
			return err
		}
		scope.SetDroppedAttributesCount(dropped)
		sl.SetSchemaUrl(textField(s, "schema_url"))
	}
	return nil
}

// setRecordFields sets lr's OTLP fields from a record's "otlp" metadata.
func setRecordFields(lr plog.LogRecord, m []byte) error {
	if t := uintField(m, "timestamp"); t != 0 {
		lr.SetTimestamp(pcommon.Timestamp(t))
	}
	lr.SetObservedTimestamp(pcommon.Timestamp(uintField(m, "observed_timestamp")))
	lr.SetSeverityNumber(plog.SeverityNumber(min(uintField(m, "severity_number"), math.MaxInt32)))
	lr.SetSeverityText(textField(m, "severity_text"))
	lr.SetEventName(textField(m, "event_name"))
	lr.SetFlags(plog.LogRecordFlags(min(uintField(m, "trace_flags"), math.MaxUint32)))
	var trace pcommon.TraceID
	if readID(trace[:], m, "trace_id") {
		lr.SetTraceID(trace)
	}
	var span pcommon.SpanID
	if readID(span[:], m, "span_id") {
		lr.SetSpanID(span)
	}
	dropped, err := setAttributes(lr.Attributes(), m)
	lr.SetDroppedAttributesCount(dropped)
	return err
}

// setAttributes puts the "attributes" map of the msgpack map m, if it has
// one, into attrs, and returns m's dropped_attributes_count with the
// attributes beyond maxKeys added.
func setAttributes(attrs pcommon.Map, m []byte) (dropped uint32, err error) {
	count := uintField(m, "dropped_attributes_count")
	if a, ok := ra.Field(m, "attributes"); ok && msgp.NextType(a) == msgp.MapType {
		var over uint32
		pv := pdataValues{maxValues}
		_, over, err = pv.setMap(attrs, a, 1, nil, nil)
		count = min(count, math.MaxUint32) + uint64(over)
	}
	return uint32(min(count, math.MaxUint32)), err
}

// readID fills dst with the trace or span ID under key in the msgpack map
// m: its bytes, or their hex text; false if there is none of dst's length.
func readID(dst []byte, m []byte, key string) bool {
	v, ok := ra.Field(m, key)
	if !ok {
		return false
	}
	if b, _, err := msgp.ReadBytesZC(v); err == nil && len(b) == len(dst) {
		copy(dst, b)
		return true
	}
	s, _, err := msgp.ReadStringZC(v)
	if err != nil || len(s) != 2*len(dst) {
		return false
	}
	_, err = hex.Decode(dst, s)
	return err == nil
}

// uintField reads the non-negative integer under key in the msgpack map m;
// 0 if there is none.
func uintField(m []byte, key string) uint64 {
	v, ok := ra.Field(m, key)
	if !ok {
		return 0
	}
	switch msgp.NextType(v) {
	case msgp.UintType:
		u, _, _ := msgp.ReadUint64Bytes(v)
		return u
	case msgp.IntType:
		i, _, _ := msgp.ReadInt64Bytes(v)
		return uint64(max(i, 0))
	}
	return 0
}

// textField reads the string under key in the msgpack map m; "" if there
// is none.
func textField(m []byte, key string) string {
	v, _ := ra.Field(m, key)
	s, _, err := msgp.ReadStringZC(v)
	if err != nil {
		return ""
	}
	return text(s)
}

// isString reports whether the msgpack value v is the string s.
func isString(v []byte, s string) bool {
	b, _, err := msgp.ReadStringZC(v)
	return err == nil && string(b) == s
}

// text is b as a valid UTF-8 string, as OTLP's strings are.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
