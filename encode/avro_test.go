package encode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gokafka/gokafka/chunk"
	"github.com/hamba/avro/v2"
	"github.com/tinylib/msgp/msgp"
)

// logSchema has a field of every kind a log record fills.
const logSchema = `{"type":"record","name":"Log","namespace":"test","fields":[
	{"name":"log","type":"string"},
	{"name":"stream","type":{"type":"enum","name":"Stream","symbols":["stdout","stderr"]}},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"tag","type":["null","string"]},
	{"name":"level","type":["null","string"],"default":null},
	{"name":"code","type":"int","default":7},
	{"name":"ratio","type":"double"},
	{"name":"sizes","type":{"type":"array","items":"long"}},
	{"name":"labels","type":{"type":"map","values":"string"}},
	{"name":"kube","type":["null",{"type":"record","name":"Kube","fields":[
		{"name":"pod","type":"string"},
		{"name":"ns","type":"string","aliases":["namespace_name"]}]}]},
	{"name":"raw","type":"bytes"},
	{"name":"id","type":{"type":"fixed","name":"ID","size":4}},
	{"name":"ok","type":"boolean"},
	{"name":"n","type":["null","long","string"]}]}`

// avroOf encodes body with o (Format avro) through Append and AppendOpen,
// which must agree, and decodes the value after checking its framing.
func avroOf(t *testing.T, o Options, body map[string]any) (map[string]any, error) {
	t.Helper()
	o.Format = "avro"
	if o.Avro.Schema == nil {
		o.Avro.Schema = avro.MustParse(logSchema)
	}
	o.Avro.SchemaID = 258
	raw, err := msgp.AppendIntf(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	rec := &chunk.Record{Time: 1700000000123456789, Body: raw}
	v, err := encodeRecord(t, o, rec)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(v, []byte{0, 0, 0, 1, 2}) {
		t.Fatalf("framing: % x", v[:min(5, len(v))])
	}
	var got map[string]any
	if err := avro.Unmarshal(o.Avro.Schema, v[5:], &got); err != nil {
		t.Fatalf("does not decode: %v", err)
	}
	return got, nil
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fullRecord() map[string]any {
	return map[string]any{
		"log": "GET /index.html 200", "stream": "stderr", "ratio": 0.25, "sizes": []any{int64(1), uint64(2), int64(-3)},
		"labels": map[string]any{"app": "web", "tier": "front"},
		"kube":   map[string]any{"pod": "web-1", "namespace_name": "prod", "extra": true},
		"raw":    []byte{0, 1, 2}, "id": "abcd", "ok": true, "n": int64(-5), "unknown": "left out",
	}
}

func TestAvro(t *testing.T) {
	o := Options{TimestampKey: "ts", TimestampFormat: "iso8601", TagKey: "tag"}
	got, err := avroOf(t, o, fullRecord())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"code":7,"id":[97,98,99,100],"kube":{"test.Kube":{"ns":"prod","pod":"web-1"}},"labels":{"app":"web","tier":"front"},` +
		`"level":null,"log":"GET /index.html 200","n":-5,"ok":true,"ratio":0.25,"raw":"AAEC","sizes":[1,2,-3],` +
		`"stream":"stderr","tag":"kube.x","ts":"2023-11-14T22:13:20.123456Z"}`
	if s := jsonText(t, got); s != want {
		t.Fatalf("got  %s\nwant %s", s, want)
	}
}

// TestAvroFields changes one field of fullRecord at a time.
func TestAvroFields(t *testing.T) {
	for _, c := range []struct {
		name  string
		field string
		value any // nil deletes the field; null sets it nil
		want  string
	}{
		{"union long", "n", uint64(9), `9`},
		{"union string", "n", "nine", `"nine"`},
		{"union null", "n", null{}, `null`},
		{"union missing", "n", nil, `null`},
		{"union of a converted kind", "n", 2.5, "error: n: float64 value for type union"},
		{"default when missing", "code", nil, `7`},
		{"default when nil", "code", null{}, `7`},
		{"int", "code", int64(-2147483648), `-2147483648`},
		{"int out of range", "code", int64(2147483648), "error: code: 2147483648 is out of an int's range"},
		{"long from an unsigned too large", "sizes", []any{uint64(1 << 63)}, "error: sizes: [0]: msgp: 9223372036854775808 overflows uint64"},
		{"double from an int", "ratio", int64(3), `3`},
		{"double from a float32", "ratio", float32(0.5), `0.5`},
		{"double from text", "ratio", "0.5", "error: ratio: str value for type double"},
		{"string from bin", "log", []byte("bin"), `"bin"`},
		{"invalid UTF-8", "log", "a\xffb", "\"a\uFFFDb\""},
		{"string from an int", "log", int64(1), "error: log: int value for type string"},
		{"required missing", "log", nil, "error: log: missing, and the schema gives no default"},
		{"required nil", "ratio", null{}, "error: ratio: missing, and the schema gives no default"},
		{"enum", "stream", "stdout", `"stdout"`},
		{"enum unknown", "stream", "stdin", `error: stream: "stdin" is not a symbol of enum test.Stream`},
		{"fixed wrong size", "id", "abc", "error: id: 3 bytes for fixed test.ID of 4"},
		{"bytes from text", "raw", "xyz", `"eHl6"`},
		{"empty array", "sizes", []any{}, `[]`},
		{"array item wrong", "sizes", []any{int64(1), "two"}, "error: sizes: [1]: str value for type long"},
		{"map nil value left out", "labels", map[string]any{"a": "x", "b": nil}, `{"a":"x"}`},
		{"map value wrong", "labels", map[string]any{"a": int64(1)}, `error: labels: "a": int value for type string`},
		{"map key quoted", "labels", map[string]any{"a\n[forged]": int64(1)}, `error: labels: "a\n[forged]": int value for type string`}, // a log line of its own
		{"empty map", "labels", map[string]any{}, `{}`},
		{"nested record missing field", "kube", map[string]any{"pod": "p"}, "error: kube: ns: missing, and the schema gives no default"},
		{"nested record not a map", "kube", "p", "error: kube: str value for type union"},
		{"tag from the record", "tag", "own", `"own"`},
		{"time from the record", "ts", int64(5), `"1970-01-01T00:00:00.000005Z"`},
		{"boolean wrong", "ok", "true", "error: ok: str value for type boolean"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := fullRecord()
			switch v := c.value.(type) {
			case nil:
				delete(body, c.field)
			case null:
				body[c.field] = nil
			default:
				body[c.field] = v
			}
			got, err := avroOf(t, Options{TimestampKey: "ts", TimestampFormat: "iso8601", TagKey: "tag"}, body)
			s := ""
			if err != nil {
				s = "error: " + err.Error()
			} else {
				s = jsonText(t, got[c.field])
			}
			if s != c.want {
				t.Fatalf("got %s, want %s", s, c.want)
			}
		})
	}
}

// null stands for a nil field in TestAvroFields.
type null struct{}

func TestAvroTime(t *testing.T) {
	const ns = -1500000 // 1969-12-31T23:59:59.9985Z
	for _, c := range []struct {
		typ, format, want string
	}{
		{`{"type":"long","logicalType":"timestamp-millis"}`, "iso8601", `"1969-12-31T23:59:59.998Z"`},
		{`{"type":"long","logicalType":"local-timestamp-micros"}`, "double", `"1969-12-31T23:59:59.9985Z"`},
		{`"long"`, "epoch_ms", `-2`},
		{`"long"`, "epoch", `-1`},
		{`"int"`, "epoch", `-1`},
		{`"long"`, "iso8601", `error: field t, for Timestamp_Key: a long takes the time with logicalType timestamp-millis, timestamp-micros or timestamp-nanos, or with Timestamp_Format epoch, epoch_ms or epoch_ns`},
		{`"double"`, "double", `-0.0015`},
		{`"float"`, "epoch_ns", `-1500000`},
		{`"double"`, "iso8601", `error: field t, for Timestamp_Key: a double takes the time with Timestamp_Format double, epoch, epoch_ms or epoch_ns`},
		{`"string"`, "java_sql_timestamp", `"1969-12-31 23:59:59.998500"`},
		{`["null","string"]`, "epoch", `"-1"`},
		{`["null","long"]`, "iso8601", `error: field t, for Timestamp_Key: a long takes the time with logicalType timestamp-millis, timestamp-micros or timestamp-nanos, or with Timestamp_Format epoch, epoch_ms or epoch_ns`},
		{`{"type":"long","logicalType":"timestamp-nanos"}`, "epoch_ms", `-1500000`},
		{`{"type":"int","logicalType":"date"}`, "epoch", `error: field t, for Timestamp_Key: a date is not a timestamp`},
		{`"boolean"`, "epoch", `error: field t, for Timestamp_Key: the time cannot be a boolean`},
	} {
		schema := avro.MustParse(`{"type":"record","name":"T","fields":[{"name":"t","type":` + c.typ + `}]}`)
		o := Options{Format: "avro", Avro: Avro{Schema: schema}, TimestampKey: "t", TimestampFormat: c.format}
		e, err := New(o)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			v, err := e.Append(nil, &chunk.Record{Time: ns, Body: []byte{0x80}}, "x")
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := avro.Unmarshal(schema, v[5:], &m); err != nil {
				t.Fatal(err)
			}
			got = jsonText(t, m["t"])
		}
		if got != c.want {
			t.Errorf("%s with %s: got %s, want %s", c.typ, c.format, got, c.want)
		}
	}
	// An int holds times in seconds, not today's in milliseconds: refused
	// at the start, not at every record.
	schema := avro.MustParse(`{"type":"record","name":"T","fields":[{"name":"t","type":"int"}]}`)
	_, err := New(Options{Format: "avro", Avro: Avro{Schema: schema}, TimestampKey: "t", TimestampFormat: "epoch_ms"})
	if err == nil || !strings.Contains(err.Error(), "field t, for Timestamp_Key: time ") || !strings.Contains(err.Error(), "is out of an int's range") {
		t.Errorf("int with epoch_ms: %v", err)
	}
}

func TestAvroSchemas(t *testing.T) {
	for _, c := range []struct {
		name, schema string
		o            Options
		body         any
		want         string
	}{
		{"not a record", `"string"`, Options{}, map[string]any{}, "error: avro schema is string, not a record"},
		{"tag not text", `{"type":"record","name":"R","fields":[{"name":"tag","type":"long"}]}`, Options{TagKey: "tag"}, map[string]any{},
			"error: field tag, for Tag_Key: the tag cannot be a long"},
		{"tag to bytes", `{"type":"record","name":"R","fields":[{"name":"tag","type":["null","bytes"]}]}`, Options{TagKey: "tag"},
			map[string]any{}, `{"tag":"a3ViZS54"}`},
		{"not a map", `{"type":"record","name":"R","fields":[]}`, Options{}, "text", "error: avro needs a map body"},
		{"union default", `{"type":"record","name":"R","fields":[{"name":"a","type":["string","null"],"default":"none"}]}`, Options{},
			map[string]any{}, `{"a":"none"}`},
		{"record default", `{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]},"default":{"x":3}}]}`, Options{},
			map[string]any{}, `{"a":{"x":3}}`},
		{"defaults", `{"type":"record","name":"R","fields":[
			{"name":"a","type":[{"type":"record","name":"A","fields":[{"name":"x","type":["null","string"]},{"name":"y","type":"long","default":4}]},"null"],"default":{"x":null}},
			{"name":"b","type":"bytes","default":"\u00ff"},{"name":"e","type":{"type":"enum","name":"E","symbols":["P","Q"]},"default":"Q"},
			{"name":"m","type":{"type":"map","values":"int"},"default":{"k":1,"j":2}},{"name":"l","type":{"type":"array","items":"double"},"default":[1.5]},
			{"name":"t","type":[{"type":"long","logicalType":"timestamp-millis"},"null"],"default":0},{"name":"f","type":"float","default":2}]}`, Options{},
			map[string]any{}, `{"a":{"A":{"x":null,"y":4}},"b":"/w==","e":"Q","f":2,"l":[1.5],"m":{"j":2,"k":1},"t":"1970-01-01T00:00:00Z"}`},
		{"defaults of fixed and decimal", `{"type":"record","name":"R","fields":[
			{"name":"f","type":{"type":"fixed","name":"F","size":2},"default":"\u00ff\u0001"},
			{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2},"default":"\u0001\u0002"},
			{"name":"u","type":[{"type":"fixed","name":"G","size":1},"null"],"default":"\u00ee"}]}`, Options{},
			map[string]any{}, `{"d":"129/50","f":[255,1],"u":{"G":[238]}}`},
		{"a long default below 2^53", `{"type":"record","name":"R","fields":[{"name":"a","type":"long","default":-9007199254740991}]}`, Options{},
			map[string]any{}, `{"a":-9007199254740991}`},
		{"a long default of 2^53+1, read as 2^53", `{"type":"record","name":"R","fields":[{"name":"a","type":"long","default":9007199254740993}]}`, Options{},
			map[string]any{}, "error: default of field a: default 9007199254740992 for type long: not an integer within ±(2^53-1), the most the schema's parser reads exactly"},
		{"a long default the parser reads inexactly", `{"type":"record","name":"R","fields":[{"name":"a","type":"long","default":9223372036854775807}]}`, Options{},
			map[string]any{}, "error: default of field a: default -9223372036854775808 for type long: not an integer within ±(2^53-1), the most the schema's parser reads exactly"},
		{"an int default beyond int", `{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":2147483648}]}`, Options{},
			map[string]any{}, "error: default of field a: default 2147483648 for type int: out of its range"},
		{"alias does not hide a name", `{"type":"record","name":"R","fields":[{"name":"b","type":"long"},{"name":"a","type":"long","aliases":["b"],"default":0}]}`, Options{},
			map[string]any{"b": int64(1)}, `{"a":0,"b":1}`},
		{"decimal from text", `{"type":"record","name":"R","fields":[{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}}]}`, Options{},
			map[string]any{"d": "12.5"}, "error: d: text for a decimal bytes"},
		{"a map in a union goes to its first branch of maps", `{"type":"record","name":"N","fields":[{"name":"c","type":["null","N",{"type":"map","values":"N"}]},{"name":"x","type":"int"}]}`, Options{},
			deep(40), "error: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: c: x: missing, and the schema gives no default"},
		{"recursive", `{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]}]}`, Options{},
			map[string]any{"v": int64(1), "next": map[string]any{"v": int64(2), "next": map[string]any{"v": int64(3)}}},
			`{"next":{"L":{"next":{"L":{"next":null,"v":3}},"v":2}},"v":1}`},
		{"removed", `{"type":"record","name":"R","fields":[{"name":"a","type":["null","string"]},{"name":"m","type":{"type":"map","values":"long"}},{"name":"r","type":{"type":"record","name":"S","fields":[{"name":"x","type":"long","default":0}]}}]}`,
			Options{Remove: paths(t, "a", "$m['b']", "$r['x']")},
			map[string]any{"a": "x", "m": map[string]any{"a": int64(1), "b": int64(2)}, "r": map[string]any{"x": int64(5)}},
			`{"a":null,"m":{"a":1},"r":{"x":0}}`},
		{"map keys of other types", `{"type":"record","name":"R","fields":[{"name":"m","type":{"type":"map","values":"long"}}]}`, Options{},
			map[int64]any{}, ""}, // replaced below
	} {
		t.Run(c.name, func(t *testing.T) {
			schema, err := avro.Parse(c.schema)
			if err != nil {
				t.Fatal(err)
			}
			c.o.Format, c.o.Avro.Schema = "avro", schema
			body, _ := msgp.AppendIntf(nil, c.body)
			if c.name == "map keys of other types" { // {"m": {1: 2}}
				body = []byte{0x81, 0xa1, 'm', 0x81, 0x01, 0x02}
				c.want = `{"m":{"1":2}}`
			}
			got := ""
			e, err := New(c.o)
			if err == nil {
				var v []byte
				if v, err = e.Append(nil, &chunk.Record{Body: body}, "kube.x"); err == nil {
					var m map[string]any
					if err := avro.Unmarshal(schema, v[5:], &m); err != nil {
						t.Fatal(err)
					}
					got = jsonText(t, m)
				}
			}
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// FuzzAvro checks that what the encoder writes decodes against its schema,
// to its last byte: followed by a long, it decodes as a record of both.
func FuzzAvro(f *testing.F) {
	full, _ := msgp.AppendIntf(nil, fullRecord())
	f.Add(full)
	f.Add(kube())
	f.Add([]byte{0x81, 0xa4, 'k', 'u', 'b', 'e', 0x81, 0xa3, 'p', 'o', 'd', 0xc4, 0x01, 0xff})
	schema := avro.MustParse(logSchema)
	wrapped := avro.MustParse(`{"type":"record","name":"W","fields":[{"name":"r","type":` + logSchema + `},{"name":"s","type":"long"}]}`)
	e, err := New(Options{Format: "avro", Avro: Avro{Schema: schema}, TagKey: "tag", TimestampKey: "ts", TimestampFormat: "iso8601",
		Remove: paths(f, "$labels['x']")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &chunk.Record{Time: 1, Body: body}
		v, n, err := e.AppendOpen(nil, rec, "tag")
		if err != nil {
			return
		}
		if n > len(body) {
			t.Fatalf("body of %d bytes read as %d", len(body), n)
		}
		var m struct {
			R map[string]any `avro:"r"`
			S int64          `avro:"s"`
		}
		if err := avro.Unmarshal(wrapped, binary.AppendVarint(v[5:], 12345), &m); err != nil || m.S != 12345 {
			t.Fatalf("from %x: %x does not decode: %v, %+v", body, v, err, m)
		}
	})
}

// deep returns {"c": {"c": ... {}}}, n deep.
func deep(n int) map[string]any {
	m := map[string]any{}
	for range n {
		m = map[string]any{"c": m}
	}
	return m
}

// TestAvroUnionsAndNullableMaps: a value goes to the union branch of its
// own kind before one it converts to, whatever the schema's order; a map
// whose values may be null keeps its nil values as null.
func TestAvroUnionsAndNullableMaps(t *testing.T) {
	schema := avro.MustParse(`{"type":"record","name":"U","fields":[
		{"name":"n","type":["null","double","long"]},
		{"name":"s","type":["null","bytes","string"]},
		{"name":"m","type":{"type":"map","values":["null","string"]}}]}`)
	got, err := avroOf(t, Options{Avro: Avro{Schema: schema}}, map[string]any{"n": int64(5), "s": "text", "m": map[string]any{"a": nil, "b": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if s, want := jsonText(t, got), `{"m":{"a":null,"b":"x"},"n":5,"s":"text"}`; s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	// The branches, as written: long (2) and string (2).
	e, err := New(Options{Format: "avro", Avro: Avro{Schema: schema, SchemaID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.Append(nil, &chunk.Record{Body: pack(nil, obj{{"n", 5}, {"s", "t"}, {"m", obj{}}})}, "")
	if want := []byte{0, 0, 0, 0, 1, 4, 10, 4, 2, 't', 0}; err != nil || !bytes.Equal(v, want) {
		t.Errorf("got % x (%v), want % x", v, err, want)
	}
}
