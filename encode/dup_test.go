package encode

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/gokafka/gokafka/chunk"
	"github.com/hamba/avro/v2"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Records as Go values for pack: obj is a map in order, bin a msgpack bin
// (as a key too), []any an array.
type (
	obj []kv
	kv  struct {
		k any // string or bin
		v any
	}
	bin string
)

func pack(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return msgp.AppendNil(dst)
	case string:
		return msgp.AppendString(dst, v)
	case bin:
		return msgp.AppendBytes(dst, []byte(v))
	case int:
		return msgp.AppendInt(dst, v)
	case bool:
		return msgp.AppendBool(dst, v)
	case uint64:
		return msgp.AppendUint64(dst, v)
	case float64:
		return msgp.AppendFloat64(dst, v)
	case obj:
		dst = msgp.AppendMapHeader(dst, uint32(len(v)))
		for _, e := range v {
			dst = pack(pack(dst, e.k), e.v)
		}
		return dst
	case []any:
		dst = msgp.AppendArrayHeader(dst, uint32(len(v)))
		for _, e := range v {
			dst = pack(dst, e)
		}
		return dst
	}
	panic(v)
}

// encodeAll writes body with o, through Append and AppendOpen, which must
// agree.
func encodeAll(t *testing.T, o Options, body []byte) (string, error) {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	rec := &chunk.Record{Time: ts, Body: body}
	got, err := e.Append([]byte("pre"), rec, "kube.x")
	open, n, err2 := e.AppendOpen([]byte("pre"), &chunk.Record{Time: ts, Body: append(body[:len(body):len(body)], 0xc0)}, "kube.x")
	if string(got) != string(open) || (err == nil) != (err2 == nil) || err == nil && n != len(body) {
		t.Fatalf("Append %q, %v; AppendOpen %q, %d, %v", got, err, open, n, err2)
	}
	return strings.TrimPrefix(string(got), "pre"), err
}

// TestDuplicateKeys: the last copy of a repeated key is written, where it
// is, in every map at any depth, in JSON and logfmt, as Fluent Bit's JSON
// does; str and bin keys are alike.
func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		name        string
		body        obj
		json, lfmt  string
		o           Options // Format set by the test
		nameInError bool
	}{
		{name: "top level", body: obj{{"topic", "a"}, {"log", "x"}, {"topic", "b"}},
			json: `{"log":"x","topic":"b"}`, lfmt: `log=x topic=b`},
		{name: "first and last", body: obj{{"a", 1}, {"b", 2}, {"a", 3}, {"c", 4}, {"b", 5}},
			json: `{"a":3,"c":4,"b":5}`, lfmt: `a=3 c=4 b=5`},
		{name: "three copies", body: obj{{"a", 1}, {"a", 2}, {"a", 3}},
			json: `{"a":3}`, lfmt: `a=3`},
		{name: "str and bin alike", body: obj{{bin("a"), 1}, {"b", 2}, {"a", 3}, {"b", bin("x")}, {bin("b"), 4}},
			json: `{"a":3,"b":4}`, lfmt: `a=3 b=4`},
		{name: "nested", body: obj{{"k", obj{{"x", 1}, {"y", 2}, {"x", obj{{"z", 1}, {"z", 2}}}}}, {"log", "x"}},
			json: `{"k":{"y":2,"x":{"z":2}},"log":"x"}`, lfmt: `k.y=2 k.x.z=2 log=x`},
		{name: "map replaced by a later copy", body: obj{{"k", obj{{"x", 1}}}, {"log", "x"}, {"k", "flat"}},
			json: `{"log":"x","k":"flat"}`, lfmt: `log=x k=flat`},
		{name: "in arrays", body: obj{{"items", []any{obj{{"a", 1}, {"a", 2}}, obj{{"b", 1}, {"c", 2}, {"b", 3}}}}},
			json: `{"items":[{"a":2},{"c":2,"b":3}]}`, lfmt: `items.0.a=2 items.1.c=2 items.1.b=3`},
		{name: "keys of other types are not compared", body: obj{{7, "int"}, {"7", "str"}, {7, "int again"}},
			json: `{"7":"int","7":"str","7":"int again"}`, lfmt: `7=int 7=str 7="int again"`},
		{name: "keys of other types beside a repeated one", body: obj{{7, "int"}, {"a", 1}, {"7", "str"}, {7, "int again"}, {"a", 2}},
			json: `{"7":"int","7":"str","7":"int again","a":2}`, lfmt: `7=int 7=str 7="int again" a=2`},
		{name: "with the time field", body: obj{{"ts", "a"}, {"log", "x"}, {"ts", "b"}},
			o:    Options{TimestampKey: "ts", TimestampFormat: "epoch_ms", TagKey: "tag"},
			json: `{"log":"x","ts":"b","tag":"kube.x"}`, lfmt: `log=x ts=b tag=kube.x`},
		{name: "removed, every copy", body: obj{{"ts", "a"}, {"log", "x"}, {"k", obj{{"a", 1}, {"b", 2}, {"a", 3}}}, {"ts", "b"}},
			o:    Options{TimestampKey: "ts", TimestampFormat: "epoch_ms", Remove: paths(t, "$ts", "$k['a']")},
			json: `{"log":"x","k":{"b":2},"ts":1795341601123}`, lfmt: `log=x k.b=2 ts=1795341601123`},
		{name: "removed inside the last copy", body: obj{{"k", obj{{"a", 1}, {"b", 2}}}, {"k", obj{{"a", 3}, {"c", 4}}}},
			o:    Options{Remove: paths(t, "$k['a']")},
			json: `{"k":{"c":4}}`, lfmt: `k.c=4`},
	} {
		for _, format := range []string{"json", "logfmt"} {
			o := tc.o
			o.Format = format
			want := tc.json
			if format == "logfmt" {
				want = tc.lfmt
			}
			got, err := encodeAll(t, o, pack(nil, tc.body))
			if err != nil || got != want {
				t.Errorf("%s, %s:\ngot  %s (%v)\nwant %s", tc.name, format, got, err, want)
			}
		}
	}
}

// TestDuplicateKeysLastNull: in OTLP and Avro too, the last copy of a key
// counts when it is null: the OTLP body is empty, and an Avro field takes
// its default, as JSON writes null and lookups find the field null.
func TestDuplicateKeysLastNull(t *testing.T) {
	body := pack(nil, obj{{"log", "first"}, {"level", "warn"}, {"log", nil}, {"level", nil}})
	o, err := New(Options{Format: "otlp_proto", OTLP: OTLP{BodyKeys: []string{"log"}, BodyAttributes: true}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := o.Append(nil, &chunk.Record{Time: 1, Body: body}, "")
	if err != nil {
		t.Fatal(err)
	}
	logs, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(v)
	if err != nil {
		t.Fatal(err)
	}
	lr := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if b, level := lr.Body().AsRaw(), lr.Attributes().AsRaw()["level"]; b != nil || level != nil {
		t.Errorf("otlp: body %#v, level %#v, want none", b, level)
	}
	schema := avro.MustParse(`{"type":"record","name":"R","fields":[{"name":"level","type":["null","string"],"default":null}]}`)
	a, err := New(Options{Format: "avro", Avro: Avro{Schema: schema, SchemaID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err = a.Append(nil, &chunk.Record{Body: body}, ""); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := avro.Unmarshal(schema, v[5:], &got); err != nil || got["level"] != nil {
		t.Errorf("avro: %v, %v; want level null", got, err)
	}
}

// TestDuplicateKeysMany: maps of many entries, with and without repeated
// keys, at several depths, match a plain reference writer, in JSON and
// logfmt; so do those whose keys share a filter bit without repeating.
func TestDuplicateKeysMany(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	je, _ := New(Options{Format: "json"})
	le, _ := New(Options{Format: "logfmt"})
	for i := range 3000 {
		keys := 2 + r.IntN(6) // few keys: repeats
		if i%3 == 0 {
			keys = 1000 // many: few repeats, many filter matches
		}
		v := randObj(r, keys, 3)
		body := pack(nil, v)
		got, err := je.Append(nil, &chunk.Record{Body: body}, "")
		if want := refJSON(nil, v); err != nil || string(got) != string(want) {
			t.Fatalf("json:\ngot  %s (%v)\nwant %s", got, err, want)
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %s", got)
		}
		got, err = le.Append(nil, &chunk.Record{Body: body}, "")
		if want := refLogfmt(nil, "", v, true); err != nil || string(got) != strings.TrimPrefix(string(want), " ") {
			t.Fatalf("logfmt:\ngot  %s (%v)\nwant %s", got, err, want)
		}
	}
}

func randObj(r *rand.Rand, keys, depth int) obj {
	n := r.IntN(40)
	if r.IntN(4) == 0 {
		n = r.IntN(4)
	}
	o := make(obj, n)
	for i := range o {
		k := "k" + strconv.Itoa(r.IntN(keys))
		if r.IntN(5) == 0 {
			o[i].k = bin(k)
		} else {
			o[i].k = k
		}
		o[i].v = randValue(r, keys, depth)
	}
	return o
}

func randValue(r *rand.Rand, keys, depth int) any {
	switch c := r.IntN(10); {
	case c < 2 && depth > 0:
		return randObj(r, keys, depth-1)
	case c < 3 && depth > 0:
		a := make([]any, r.IntN(3))
		for i := range a {
			a[i] = randValue(r, keys, depth-1)
		}
		return a
	case c < 5:
		return "v" + strconv.Itoa(r.IntN(100))
	case c < 6:
		return bin("b" + strconv.Itoa(r.IntN(100)))
	case c < 7:
		return nil
	}
	return r.IntN(1000)
}

// live reports the entries of o that are written: not followed by another
// of their key.
func live(o obj) []bool {
	keep := make([]bool, len(o))
	seen := map[string]bool{}
	for i := len(o) - 1; i >= 0; i-- {
		k := keyText(o[i].k)
		keep[i] = !seen[k]
		seen[k] = true
	}
	return keep
}

func keyText(k any) string {
	if b, ok := k.(bin); ok {
		return string(b)
	}
	return k.(string)
}

func refJSON(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendStringSimple(dst, []byte(v))
	case bin:
		return appendStringSimple(dst, []byte(v))
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	case obj:
		dst = append(dst, '{')
		first := true
		for i, keep := range live(v) {
			if keep {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = refJSON(append(appendStringSimple(dst, []byte(keyText(v[i].k))), ':'), v[i].v)
			}
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = refJSON(dst, e)
		}
		return append(dst, ']')
	}
	panic(v)
}

// refLogfmt writes v's pairs, each after a space.
func refLogfmt(dst []byte, path string, v any, top bool) []byte {
	switch v := v.(type) {
	case obj:
		if !top && len(v) == 0 {
			return append(dst, " "+path+"={}"...)
		}
		for i, keep := range live(v) {
			if keep {
				p := keyText(v[i].k)
				if !top {
					p = path + "." + p
				}
				dst = refLogfmt(dst, p, v[i].v, false)
			}
		}
		return dst
	case []any:
		if len(v) == 0 {
			return append(dst, " "+path+"=[]"...)
		}
		for i, e := range v {
			dst = refLogfmt(dst, path+"."+strconv.Itoa(i), e, false)
		}
		return dst
	case nil:
		return append(dst, " "+path+"="...)
	case string:
		return appendLogfmtValue(append(dst, " "+path+"="...), []byte(v))
	case bin:
		return appendLogfmtValue(append(dst, " "+path+"="...), []byte(v))
	case int:
		return strconv.AppendInt(append(dst, " "+path+"="...), int64(v), 10)
	}
	panic(v)
}

// TestBinKeys: a bin key is a key like a str one: Remove_Keys removes it,
// and the time and tag fields are not added beside one of their name.
func TestBinKeys(t *testing.T) {
	body := pack(nil, obj{{bin("@timestamp"), "mine"}, {"log", "x"}, {bin("tag"), "own"}, {bin("drop"), 1},
		{"k", obj{{bin("a"), 1}, {bin("b"), 2}}}})
	o := Options{TimestampKey: "@timestamp", TimestampFormat: "epoch_ms", TagKey: "tag", Remove: paths(t, "$drop", "$k['a']")}
	for format, want := range map[string]string{
		"json":   `{"@timestamp":"mine","log":"x","tag":"own","k":{"b":2}}`,
		"logfmt": `@timestamp=mine log=x tag=own k.b=2`,
	} {
		o.Format = format
		if got, err := encodeAll(t, o, body); err != nil || got != want {
			t.Errorf("%s:\ngot  %s (%v)\nwant %s", format, got, err, want)
		}
	}
	o.Format = "msgpack"
	got, err := encodeAll(t, o, body)
	if err != nil {
		t.Fatal(err)
	}
	want := pack(nil, obj{{bin("@timestamp"), "mine"}, {"log", "x"}, {bin("tag"), "own"}, {"k", obj{{bin("b"), 2}}}})
	if got != string(want) {
		t.Errorf("msgpack: got %x, want %x", got, want)
	}
	// Removed, a bin key leaves room for the field of its name.
	o = Options{Format: "json", TimestampKey: "@timestamp", TimestampFormat: "epoch_ms", Remove: paths(t, "$@timestamp")}
	if got, err := encodeAll(t, o, body); err != nil || !strings.HasSuffix(got, `"@timestamp":1795341601123}`) || strings.Count(got, "@timestamp") != 1 {
		t.Errorf("removed: got %s (%v)", got, err)
	}
}

// TestBinValues: bin values are text, escaped as str values are, in JSON
// and logfmt, as Fluent Bit writes them.
func TestBinValues(t *testing.T) {
	body := pack(nil, obj{{"a", bin("plain")}, {"b", bin("say \"hi\"\n\x00 日本 a\xffb")}, {"c", bin("")},
		{"d", []any{bin("x y")}}, {bin("k"), bin("v")}})
	for format, want := range map[string]string{
		"json":   `{"a":"plain","b":"say \"hi\"\n\u0000 日本 a` + "\ufffd" + `b","c":"","d":["x y"],"k":"v"}`,
		"logfmt": `a=plain b="say \"hi\"\n\u0000 日本 a` + "\ufffd" + `b" c="" d.0="x y" k=v`,
	} {
		if got, err := encodeAll(t, Options{Format: format}, body); err != nil || got != want {
			t.Errorf("%s:\ngot  %s (%v)\nwant %s", format, got, err, want)
		}
	}
}

// TestLogfmtKeys: a top-level key "" has no logfmt form and is left out
// (under it, keys start with a dot); a map Remove_Keys empties stays, as
// {}, as JSON keeps it.
func TestLogfmtKeys(t *testing.T) {
	for _, tc := range []struct {
		body obj
		rm   []string
		want string
	}{
		{obj{{"", "v"}, {"a", 1}}, nil, `a=1`},
		{obj{{"a", 1}, {"", obj{}}}, nil, `a=1`},
		{obj{{"a", 1}, {"", []any{}}}, nil, `a=1`},
		{obj{{"a", 1}, {"", nil}}, nil, `a=1`},
		{obj{{"", obj{{"x", 1}, {"", 2}}}, {"a", 1}}, nil, `.x=1 .=2 a=1`},
		{obj{{"", []any{3}}}, nil, `.0=3`},
		{obj{{"k", obj{{"", 1}}}}, nil, `k.=1`},
		{obj{{"k", obj{{"labels", obj{{"app", "web"}}}, {"n", 1}}}}, []string{"$k['labels']['app']"}, `k.labels={} k.n=1`},
		{obj{{"labels", obj{{"app", "web"}}}, {"log", "x"}}, []string{"$labels['app']"}, `labels={} log=x`},
	} {
		o := Options{Format: "logfmt"}
		if tc.rm != nil {
			o.Remove = paths(t, tc.rm...)
		}
		if got, err := encodeAll(t, o, pack(nil, tc.body)); err != nil || got != tc.want {
			t.Errorf("%v: got %s (%v), want %s", tc.body, got, err, tc.want)
		}
	}
}

// TestTimestampFormatsMore: epoch (whole seconds) and java_sql_timestamp
// (Fluent Bit's "%Y-%m-%d %H:%M:%S" and microseconds) in each format.
func TestTimestampFormatsMore(t *testing.T) {
	body := pack(nil, obj{{"log", "x"}})
	for _, tc := range []struct {
		format string
		ns     int64
		json   string
		lfmt   string
		mp     any
	}{
		{"epoch", ts, `1795341601`, `1795341601`, int64(1795341601)},
		{"epoch", -1, `-1`, `-1`, int64(-1)},
		{"java_sql_timestamp", ts, `"2026-11-22 10:00:01.123456"`, `"2026-11-22 10:00:01.123456"`, "2026-11-22 10:00:01.123456"},
		{"java_sql_timestamp", 0, `"1970-01-01 00:00:00.000000"`, `"1970-01-01 00:00:00.000000"`, "1970-01-01 00:00:00.000000"},
	} {
		e, err := New(Options{Format: "json", TimestampKey: "ts", TimestampFormat: tc.format})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := e.Append(nil, &chunk.Record{Time: tc.ns, Body: body}, ""); err != nil || string(got) != `{"log":"x","ts":`+tc.json+`}` {
			t.Errorf("%s json: got %s (%v)", tc.format, got, err)
		}
		e, _ = New(Options{Format: "logfmt", TimestampKey: "ts", TimestampFormat: tc.format})
		if got, err := e.Append(nil, &chunk.Record{Time: tc.ns, Body: body}, ""); err != nil || string(got) != `log=x ts=`+tc.lfmt {
			t.Errorf("%s logfmt: got %s (%v)", tc.format, got, err)
		}
		e, _ = New(Options{Format: "msgpack", TimestampKey: "ts", TimestampFormat: tc.format})
		got, err := e.Append(nil, &chunk.Record{Time: tc.ns, Body: body}, "")
		if err != nil {
			t.Fatal(err)
		}
		if v, _, err := msgp.ReadMapStrIntfBytes(got, nil); err != nil || v["ts"] != tc.mp {
			t.Errorf("%s msgpack: got %#v (%v), want %#v", tc.format, v["ts"], err, tc.mp)
		}
	}
}

// TestDuplicateKeysAllocs: a record without repeated keys takes no
// allocation; one with them, or with a large map, none either once the
// pools have their state.
func TestDuplicateKeysAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector empties sync.Pools at random")
	}
	dup := pack(nil, obj{{"topic", "a"}, {"log", "x"}, {"k", obj{{"a", 1}, {"a", 2}}}, {"topic", "b"}})
	for _, format := range []string{"json", "logfmt"} {
		e := mustEncoder(t, format, "@timestamp", "iso8601_ns")
		buf := make([]byte, 0, 4096)
		for name, body := range map[string][]byte{"unique": kube(), "repeated": dup, "large": pack(nil, wideObj()[:19])} {
			rec := &chunk.Record{Time: ts, Body: body}
			if n := testing.AllocsPerRun(100, func() { buf, _ = e.Append(buf[:0], rec, "tag") }); n > 0 && (name == "unique" || n >= 0.5) {
				t.Errorf("%s, %s: %v allocations", format, name, n)
			}
		}
	}
}

// TestDuplicateKeysWideHeaders: maps in the long forms (map 16, map 32),
// whatever their size, as the short.
func TestDuplicateKeysWideHeaders(t *testing.T) {
	a1, a2 := pack(nil, obj{{"a", 1}})[1:], pack(nil, obj{{"a", 2}})[1:]
	for _, tc := range []struct {
		body       []byte
		json, lfmt string
	}{
		{[]byte{0xde, 0, 0}, `{}`, ``},
		{[]byte{0xdf, 0, 0, 0, 0}, `{}`, ``},
		{append([]byte{0xde, 0, 1}, a1...), `{"a":1}`, `a=1`},
		{append(append([]byte{0xdf, 0, 0, 0, 2}, a1...), a2...), `{"a":2}`, `a=2`},
		{append(append([]byte{0x81, 0xa1, 'k', 0xde, 0, 2}, a2...), a1...), `{"k":{"a":1}}`, `k.a=1`},
		{[]byte{0x81, 0xa1, 'k', 0xde, 0, 0}, `{"k":{}}`, `k={}`},
	} {
		for format, want := range map[string]string{"json": tc.json, "logfmt": tc.lfmt} {
			if got, err := encodeAll(t, Options{Format: format}, tc.body); err != nil || got != want {
				t.Errorf("%x %s: got %s (%v), want %s", tc.body, format, got, err, want)
			}
		}
	}
}

// TestDuplicateKeysHard: maps too large for the quick writing's table, and
// keys its hash cannot tell apart, are written as the reference writes
// them.
func TestDuplicateKeysHard(t *testing.T) {
	var big, alike, alikeSmall obj
	for i := range 5000 {
		big = append(big, kv{"k" + strconv.Itoa(i), i})
		// Keys alike in length and in their first and last 8 bytes.
		alike = append(alike, kv{"abcdefgh" + strconv.Itoa(1000+i%200) + "stuvwxyz", i})
	}
	big = append(big, kv{"k7", "last"})
	for i := range 15 {
		alikeSmall = append(alikeSmall, kv{"abcdefgh" + strconv.Itoa(10+i) + "stuvwxyz", i})
	}
	for _, v := range []obj{big, big[:4000], alike, alike[:200], alikeSmall} {
		body := pack(nil, v)
		got, err := encodeAll(t, Options{Format: "json"}, body)
		if want := refJSON(nil, v); err != nil || got != string(want) {
			t.Errorf("json, %d entries:\ngot  %.200s (%v)\nwant %.200s", len(v), got, err, want)
		}
		got, err = encodeAll(t, Options{Format: "logfmt"}, body)
		if want := refLogfmt(nil, "", v, true); err != nil || got != strings.TrimPrefix(string(want), " ") {
			t.Errorf("logfmt, %d entries:\ngot  %.200s (%v)\nwant %.200s", len(v), got, err, want)
		}
	}
}

// wideObj is a map of 20 entries, a map 16, one key repeated.
func wideObj() obj {
	var o obj
	for i := range 19 {
		o = append(o, kv{"key" + strconv.Itoa(i), i})
	}
	return append(o, kv{"key7", obj{{"a", 1}, {"a", 2}}})
}
