package encode

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
)

// ts is 2026-11-22T10:00:01.123456789Z.
var ts = time.Date(2026, 11, 22, 10, 0, 1, 123456789, time.UTC).UnixNano()

func mustEncoder(t testing.TB, format, key, tsFormat string) *Encoder {
	t.Helper()
	e, err := New(Options{Format: format, TimestampKey: key, TimestampFormat: tsFormat})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestJSONValues(t *testing.T) {
	m := msgp.AppendMapHeader(nil, 19)
	m = msgp.AppendString(msgp.AppendString(m, "log"), "héllo \"wörld\"\n\t\\ 日本 🚀\x01")
	m = msgp.AppendInt64(msgp.AppendString(m, "neg"), -42)
	m = msgp.AppendUint64(msgp.AppendString(m, "big"), math.MaxUint64)
	m = msgp.AppendFloat64(msgp.AppendString(m, "f"), 1.5)
	m = msgp.AppendFloat64(msgp.AppendString(m, "whole"), 1500000) // stays a float, as Fluent Bit writes it
	m = msgp.AppendFloat32(msgp.AppendString(m, "f32"), -2)
	m = msgp.AppendFloat64(msgp.AppendString(m, "huge"), 1e300)
	m = msgp.AppendFloat64(msgp.AppendString(m, "mid"), 1234567.5) // plain, as %.16g writes it
	m = msgp.AppendFloat64(msgp.AppendString(m, "tiny"), -0.00001)
	m = msgp.AppendFloat64(msgp.AppendString(m, "nan"), math.NaN())
	m = msgp.AppendFloat32(msgp.AppendString(m, "inf"), float32(math.Inf(1)))
	m = msgp.AppendBool(msgp.AppendString(m, "ok"), true)
	m = msgp.AppendNil(msgp.AppendString(m, "nil"))
	m = msgp.AppendBytes(msgp.AppendString(m, "bin"), []byte{0, 1, 2, 0xff})
	m = msgp.AppendArrayHeader(msgp.AppendString(m, "arr"), 2)
	m = msgp.AppendString(msgp.AppendMapHeader(msgp.AppendInt(m, 1), 1), "k")
	m = msgp.AppendString(m, "v")
	m = msgp.AppendStringFromBytes(msgp.AppendString(m, "bad"), []byte{'a', 0xff, 0xfe, 'b'})
	m = msgp.AppendString(msgp.AppendInt(m, 7), "int key")
	m = append(msgp.AppendString(m, "et"), 0xd7, 0, 0x65, 0x53, 0xf1, 0, 0, 0, 0, 5)       // EventTime 1700000000 s 5 ns
	m = append(msgp.AppendString(m, "carry"), 0xd7, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff) // 1 s 4294967295 ns

	got, err := mustEncoder(t, "json", "", "").Append(nil, &chunk.Record{Body: m}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"log":"héllo \"wörld\"\n\t\\ 日本 🚀\u0001","neg":-42,"big":18446744073709551615,"f":1.5,"whole":1500000.0,"f32":-2.0,"huge":1e+300,"mid":1234567.5,"tiny":-1e-05,` +
		`"nan":null,"inf":null,"ok":true,"nil":null,"bin":"\u0000\u0001\u0002` + "\ufffd" + `","arr":[1,{"k":"v"}],"bad":"a` + "\ufffd\ufffd" + `b","7":"int key","et":1700000000.000000005,"carry":5.294967295}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("invalid JSON")
	}
}

func TestTimestampFormats(t *testing.T) {
	body := msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), "x")
	for format, want := range map[string]string{
		"double":     `{"log":"x","ts":1795341601.123456789}`,
		"epoch_ms":   `{"log":"x","ts":1795341601123}`,
		"epoch_ns":   `{"log":"x","ts":1795341601123456789}`,
		"iso8601":    `{"log":"x","ts":"2026-11-22T10:00:01.123456Z"}`,
		"iso8601_ns": `{"log":"x","ts":"2026-11-22T10:00:01.123456789Z"}`,
	} {
		got, err := mustEncoder(t, "json", "ts", format).Append(nil, &chunk.Record{Time: ts, Body: body}, "")
		if err != nil || string(got) != want {
			t.Errorf("%s: got %s (%v), want %s", format, got, err, want)
		}
	}
	// A record that has the key keeps its own value; an empty map gets the field alone.
	own := msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "ts"), "mine")
	if got, _ := mustEncoder(t, "json", "ts", "epoch_ms").Append(nil, &chunk.Record{Time: ts, Body: own}, ""); string(got) != `{"ts":"mine"}` {
		t.Errorf("own key: %s", got)
	}
	if got, _ := mustEncoder(t, "json", "ts", "epoch_ms").Append(nil, &chunk.Record{Time: ts, Body: []byte{0x80}}, ""); string(got) != `{"ts":1795341601123}` {
		t.Errorf("empty map: %s", got)
	}
}

func TestISO8601MatchesTime(t *testing.T) {
	for _, ns := range []int64{0, -1, 951782400e9 + 5, 4102444799999999999, -6213559680e9, ts} {
		want := time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000000000Z")
		if got := string(AppendISO8601(nil, ns, 9)); got != want {
			t.Errorf("%d: got %s, want %s", ns, got, want)
		}
	}
}

func TestMsgpack(t *testing.T) {
	body := msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), "x")
	got, err := mustEncoder(t, "msgpack", "@timestamp", "epoch_ms").Append(nil, &chunk.Record{Time: ts, Body: body}, "")
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := msgp.ReadMapStrIntfBytes(got, nil)
	if err != nil || len(v) != 2 || v["log"] != "x" || v["@timestamp"] != int64(1795341601123) {
		t.Fatalf("decoded %v (%v)", v, err)
	}
	got, _ = mustEncoder(t, "msgpack", "", "").Append(nil, &chunk.Record{Time: ts, Body: body}, "")
	if !bytes.Equal(got, body) {
		t.Fatalf("without timestamp the body must pass as it is: %x", got)
	}
}

func TestErrorsLeaveDst(t *testing.T) {
	e := mustEncoder(t, "json", "ts", "epoch_ms")
	deep := bytes.Repeat([]byte{0x91}, maxDepth+2)
	for name, body := range map[string][]byte{"truncated": {0x82, 0xa1, 'a'}, "deep": append(deep, 0xc0), "bad": {0xc1}} {
		got, err := e.Append([]byte("prefix"), &chunk.Record{Body: body}, "")
		if err == nil || string(got) != "prefix" {
			t.Errorf("%s: got %q, %v", name, got, err)
		}
	}
}

func FuzzJSON(f *testing.F) {
	f.Add(msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), "x\xff"))
	f.Add([]byte{0x92, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0xd7, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(pack(nil, obj{{"a", 1}, {"b", obj{{"x", 1}, {bin("x"), 2}}}, {"a", 3}}))
	f.Add(pack(nil, wideObj()))
	e := mustEncoder(f, "json", "@timestamp", "iso8601_ns")
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &chunk.Record{Time: 1, Body: body}
		out, err := e.Append(nil, rec, "tag")
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON %q from %x", out, body)
		}
		checkCareful(t, e, rec)
	})
}

// checkCareful: the careful writing of a record that repeats a key writes
// what the quick one does for a record that does not.
func checkCareful(t *testing.T, e *Encoder, rec *chunk.Record) {
	quick, rest, err := e.appendValue(nil, rec, "tag", nil)
	d := getDedup()
	careful, rest2, err2 := e.appendValue(nil, rec, "tag", d)
	putDedup(d)
	if err == nil && (err2 != nil || string(quick) != string(careful) || len(rest) != len(rest2)) {
		t.Fatalf("quick %q, careful %q (%v) from %x", quick, careful, err2, rec.Body)
	}
	if err2 == errDup || err != nil && err != errDup && err2 == nil {
		t.Fatalf("quick: %v; careful: %v, from %x", err, err2, rec.Body)
	}
}

func BenchmarkJSON(b *testing.B) {
	m := msgp.AppendMapHeader(nil, 3)
	m = msgp.AppendString(msgp.AppendString(m, "log"), `10.0.3.7 - - "GET /api/v1/users HTTP/1.1" 200 5123 latency_ms=12 user_id=42 trace=4bf92f3577b34da6 café`+"\n")
	m = msgp.AppendString(msgp.AppendString(m, "stream"), "stdout")
	m = msgp.AppendString(msgp.AppendString(m, "time"), "2026-11-22T10:00:01.123456789Z")
	e := mustEncoder(b, "json", "@timestamp", "iso8601_ns")
	rec := &chunk.Record{Time: ts, Body: m}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = e.Append(buf[:0], rec, "kube.var.log")
	}
}

// kube is a record enriched as Fluent Bit's kubernetes filter does.
func kube() []byte {
	m := msgp.AppendMapHeader(nil, 3)
	m = msgp.AppendString(msgp.AppendString(m, "log"), "hello world")
	m = msgp.AppendString(msgp.AppendString(m, "stream"), "stdout")
	m = msgp.AppendMapHeader(msgp.AppendString(m, "kubernetes"), 3)
	m = msgp.AppendString(msgp.AppendString(m, "pod_name"), "web-1")
	m = msgp.AppendString(msgp.AppendString(m, "namespace_name"), "shop")
	m = msgp.AppendMapHeader(msgp.AppendString(m, "labels"), 2)
	m = msgp.AppendString(msgp.AppendString(m, "app"), "web")
	m = msgp.AppendInt(msgp.AppendString(m, "tier"), 2)
	return m
}

func paths(t testing.TB, ps ...string) []ra.Path {
	var out []ra.Path
	for _, p := range ps {
		path, err := ra.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, path)
	}
	return out
}

func TestShaping(t *testing.T) {
	rec := &chunk.Record{Time: ts, Body: kube()}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"json, tag and removals", Options{Format: "json", TimestampKey: "ts", TimestampFormat: "epoch_ns", TagKey: "tag",
			Remove: paths(t, "$stream", "$kubernetes['labels']['tier']", "$kubernetes['pod_name']")},
			`{"log":"hello world","kubernetes":{"namespace_name":"shop","labels":{"app":"web"}},"ts":1795341601123456789,"tag":"kube.x"}`},
		{"logfmt", Options{Format: "logfmt", TimestampKey: "time", TimestampFormat: "iso8601", TagKey: "tag"},
			`log="hello world" stream=stdout kubernetes.pod_name=web-1 kubernetes.namespace_name=shop kubernetes.labels.app=web kubernetes.labels.tier=2 time=2026-11-22T10:00:01.123456Z tag=kube.x`},
		{"raw string", Options{Format: "raw", RawKey: paths(t, "$log")[0]}, `hello world`},
		{"raw map as JSON", Options{Format: "raw", RawKey: paths(t, "$kubernetes['labels']")[0]}, `{"app":"web","tier":2}`},
	} {
		e, err := New(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Append([]byte("x"), rec, "kube.x")
		if err != nil || string(got) != "x"+tc.want {
			t.Errorf("%s:\ngot  %s (%v)\nwant x%s", tc.name, got, err, tc.want)
		}
	}
	e, _ := New(Options{Format: "raw", RawKey: paths(t, "$message")[0]})
	if _, err := e.Append(nil, rec, ""); err != ErrNoValueField {
		t.Errorf("raw without the field: %v", err)
	}
	nilLog := msgp.AppendNil(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "message"))
	if _, err := e.Append(nil, &chunk.Record{Time: ts, Body: nilLog}, ""); err != ErrNoValueField {
		t.Errorf("raw with the field nil: %v", err)
	}
}

// TestLogfmtValues: empty maps and arrays keep their key; binary values
// are text, quoted as strings are when not plain; keys are valid UTF-8.
func TestLogfmtValues(t *testing.T) {
	m := msgp.AppendMapHeader(nil, 5)
	m = msgp.AppendString(msgp.AppendString(m, "log"), "x")
	m = msgp.AppendMapHeader(msgp.AppendString(m, "labels"), 0)
	m = msgp.AppendArrayHeader(msgp.AppendString(m, "items"), 0)
	m = msgp.AppendBytes(msgp.AppendString(m, "bin"), []byte{0xfb, 0xff})
	m = msgp.AppendString(msgp.AppendString(m, "k\xffé"), "v") // keys too: invalid UTF-8 as U+FFFD
	got, err := mustEncoder(t, "logfmt", "", "").Append(nil, &chunk.Record{Body: m}, "")
	if want := `log=x labels={} items=[] bin="` + "\ufffd\ufffd" + `" k` + "\ufffdé" + `=v`; err != nil || string(got) != want {
		t.Fatalf("got  %s (%v)\nwant %s", got, err, want)
	}
}

// TestRemovedFieldLeavesRoomForExtra: removing a record's field of the
// Timestamp_Key's (or Tag_Key's) name lets the plugin add its own.
func TestRemovedFieldLeavesRoomForExtra(t *testing.T) {
	m := msgp.AppendMapHeader(nil, 3)
	m = msgp.AppendString(msgp.AppendString(m, "log"), "x")
	m = msgp.AppendString(msgp.AppendString(m, "ts"), "old")
	m = msgp.AppendString(msgp.AppendString(m, "tag"), "old")
	for format, want := range map[string]string{"json": `{"log":"x","ts":1795341601123,"tag":"kube.x"}`, "logfmt": "log=x ts=1795341601123 tag=kube.x"} {
		e, err := New(Options{Format: format, TimestampKey: "ts", TimestampFormat: "epoch_ms", TagKey: "tag", Remove: paths(t, "$ts", "$tag")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Append(nil, &chunk.Record{Time: ts, Body: m}, "kube.x")
		if err != nil || string(got) != want {
			t.Errorf("%s:\ngot  %s (%v)\nwant %s", format, got, err, want)
		}
	}
}

func TestMsgpackShaping(t *testing.T) {
	e, err := New(Options{Format: "msgpack", TagKey: "tag", Remove: paths(t, "$kubernetes['labels']", "$stream")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Append(nil, &chunk.Record{Time: ts, Body: kube()}, "kube.x")
	if err != nil {
		t.Fatal(err)
	}
	v, rest, err := msgp.ReadMapStrIntfBytes(got, nil)
	if err != nil || len(rest) != 0 {
		t.Fatal(err)
	}
	js, _ := json.Marshal(v)
	if string(js) != `{"kubernetes":{"namespace_name":"shop","pod_name":"web-1"},"log":"hello world","tag":"kube.x"}` {
		t.Fatalf("got %s", js)
	}
}

func FuzzLogfmtAndMsgpack(f *testing.F) {
	f.Add(kube())
	f.Add(pack(nil, obj{{"a", 1}, {"b", obj{{"x", 1}, {bin("x"), 2}}}, {"a", 3}, {"", 4}}))
	f.Add(pack(nil, wideObj()))
	rm := []ra.Path{{{Key: "kubernetes"}, {Key: "labels"}}, {{Key: "log"}}}
	lf, _ := New(Options{Format: "logfmt", TimestampKey: "t", TimestampFormat: "epoch_ms", Remove: rm})
	mp, _ := New(Options{Format: "msgpack", TimestampKey: "t", TimestampFormat: "iso8601", TagKey: "tag", Remove: rm})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &chunk.Record{Time: 1, Body: body}
		lf.Append(nil, rec, "tag")
		if msgp.NextType(body) == msgp.MapType {
			checkCareful(t, lf, rec)
		}
		if out, err := mp.Append(nil, rec, "tag"); err == nil {
			if rest, err := msgp.Skip(out); err != nil || len(rest) != 0 {
				t.Fatalf("msgpack output %x is not one value (%v)", out, err)
			}
		}
	})
}

// A map key that is a map is written as a string of its JSON text; keys
// nested in keys would double the output at every level without the bound.
func TestNestedMapKeysBounded(t *testing.T) {
	key := msgp.AppendString(nil, `"quoted"`)
	for range 16 { // each level doubles the escapes: 2^16 of them
		key = msgp.AppendNil(append(msgp.AppendMapHeader(nil, 1), key...))
	}
	body := msgp.AppendNil(append(msgp.AppendMapHeader(nil, 1), key...))
	for _, format := range []string{"json", "logfmt"} {
		e, err := New(Options{Format: format})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Append(nil, &chunk.Record{Time: 1, Body: body}, "tag"); !errors.Is(err, errKeyText) {
			t.Errorf("%s: got %v, want %v", format, err, errKeyText)
		}
	}
}

// Logfmt repeats a nested key path before every value inside it: a long
// key over many small values must not blow up the output.
func TestLogfmtKeyPathBounded(t *testing.T) {
	e := mustEncoder(t, "logfmt", "", "")
	long := string(bytes.Repeat([]byte{'k'}, 16<<10))
	m := msgp.AppendMapHeader(msgp.AppendString(msgp.AppendMapHeader(nil, 1), long), 5000)
	for i := range 5000 {
		m = msgp.AppendInt(msgp.AppendString(m, strconv.Itoa(i%10)), 1)
	}
	a := msgp.AppendArrayHeader(msgp.AppendString(msgp.AppendMapHeader(nil, 1), long), 5000)
	for range 5000 {
		a = msgp.AppendNil(a)
	}
	for name, body := range map[string][]byte{"map": m, "array": a} {
		got, err := e.Append(nil, &chunk.Record{Body: body}, "")
		if !errors.Is(err, errKeyPath) || len(got) > 4*len(body) {
			t.Errorf("%s: %d bytes from %d (%v), want %v", name, len(got), len(body), err, errKeyPath)
		}
	}
	// Up to the bound, and a long key over a single value, are written as before.
	edge := string(bytes.Repeat([]byte{'k'}, maxKeyPath-2))
	body := msgp.AppendMapHeader(nil, 2)
	body = msgp.AppendString(msgp.AppendMapHeader(msgp.AppendString(body, "a"), 1), edge)
	body = msgp.AppendInt(msgp.AppendArrayHeader(body, 1), 7)
	body = msgp.AppendString(msgp.AppendString(body, long), "v")
	want := "a." + edge + ".0=7 " + long + "=v"
	if got, err := e.Append(nil, &chunk.Record{Body: body}, ""); err != nil || string(got) != want {
		t.Errorf("within the bound: got %.40s... (%v)", got, err)
	}
}

// TestFlatValueBounded: many small values under a long key path, which
// logfmt and GELF repeat before each, fail their record once its value
// outgrows MaxValue, instead of growing hundreds of times the record.
func TestFlatValueBounded(t *testing.T) {
	long := string(bytes.Repeat([]byte{'k'}, maxKeyPath-2))
	const n = 64 << 10 // 1-byte values: a 64 KiB record
	array := msgp.AppendArrayHeader(msgp.AppendString(msgp.AppendMapHeader(nil, 2), long), n)
	m := msgp.AppendMapHeader(msgp.AppendString(msgp.AppendMapHeader(nil, 2), long), n)
	for i := range n {
		array = append(array, 0)
		m = msgp.AppendInt(msgp.AppendString(m, strconv.Itoa(i)), 0)
	}
	array = msgp.AppendString(msgp.AppendString(array, "log"), "x")
	m = msgp.AppendString(msgp.AppendString(m, "log"), "x")
	gelf := GELF{ShortMessage: ra.Path{{Key: "log"}}, Hostname: "h"}
	for _, tc := range []struct {
		o    Options
		body []byte
	}{
		{Options{Format: "logfmt"}, array},
		{Options{Format: "logfmt"}, m},
		{Options{Format: "gelf", GELF: gelf}, m},
	} {
		e, err := New(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		unbounded, err := e.Append(nil, &chunk.Record{Body: tc.body}, "")
		if err != nil || len(unbounded) < 16*len(tc.body) {
			t.Fatalf("%s: %d bytes from %d (%v): the input does not show the growth", tc.o.Format, len(unbounded), len(tc.body), err)
		}
		tc.o.MaxValue = 1e6
		if e, err = New(tc.o); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Append(nil, &chunk.Record{Body: tc.body}, ""); !errors.Is(err, errValueSize) {
			t.Errorf("%s with MaxValue 1e6: %v, want %v", tc.o.Format, err, errValueSize)
		}
		if got, err := e.Append(nil, &chunk.Record{Body: msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), "x")}, ""); err != nil || len(got) == 0 {
			t.Errorf("%s with MaxValue 1e6, a small record: %q, %v", tc.o.Format, got, err)
		}
	}
}

// Timestamp_Format double writes the sign and magnitude of the time, as
// msgpack's float does.
func TestDoubleNegative(t *testing.T) {
	body := msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), "x")
	for ns, want := range map[int64]string{
		-500_000_000:   "-0.500000000",
		-1_250_000_000: "-1.250000000",
		-1:             "-0.000000001",
		0:              "0.000000000",
		1_500_000_000:  "1.500000000",
		ts:             "1795341601.123456789",
		math.MinInt64:  "-9223372036.854775808",
		math.MaxInt64:  "9223372036.854775807",
	} {
		for format, text := range map[string]string{"json": `{"log":"x","ts":` + want + `}`, "logfmt": "log=x ts=" + want} {
			got, err := mustEncoder(t, format, "ts", "double").Append(nil, &chunk.Record{Time: ns, Body: body}, "")
			if err != nil || string(got) != text {
				t.Errorf("%s %d: got %s (%v), want %s", format, ns, got, err, text)
			}
		}
	}
}

// TestOverlappingRemoveKeys: a field and a field inside it, given in
// either order, remove the field whole, in every format that removes.
func TestOverlappingRemoveKeys(t *testing.T) {
	body := pack(nil, obj{{"log", "x"}, {"kubernetes", obj{{"pod", "p"}, {"labels", obj{{"app", "web"}}}}}, {"n", 1}})
	for _, rm := range [][]string{{"$kubernetes", "$kubernetes['labels']"}, {"$kubernetes['labels']", "$kubernetes"}, {"$kubernetes['labels']['app']", "$kubernetes"}} {
		for format, want := range map[string]string{"json": `{"log":"x","n":1}`, "logfmt": `log=x n=1`} {
			if got, err := encodeAll(t, Options{Format: format, Remove: paths(t, rm...)}, body); err != nil || got != want {
				t.Errorf("%s, Remove_Keys %v: got %s (%v), want %s", format, rm, got, err, want)
			}
		}
		e, err := New(Options{Format: "msgpack", Remove: paths(t, rm...)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Append(nil, &chunk.Record{Time: ts, Body: body}, "")
		if v, _, err2 := msgp.ReadMapStrIntfBytes(got, nil); err != nil || err2 != nil || len(v) != 2 || v["kubernetes"] != nil {
			t.Errorf("msgpack, Remove_Keys %v: got %v (%v, %v)", rm, v, err, err2)
		}
	}
}

// TestMsgpackNonMapBody: a body that is not a map passes as it is in
// msgpack, as Fluent Bit's msgpack.
func TestMsgpackNonMapBody(t *testing.T) {
	for _, body := range [][]byte{pack(nil, "text"), pack(nil, []any{1, "a"}), pack(nil, 7)} {
		e := mustEncoder(t, "msgpack", "@timestamp", "epoch_ms")
		if got, err := e.Append(nil, &chunk.Record{Time: ts, Body: body}, ""); err != nil || !bytes.Equal(got, body) {
			t.Errorf("%x: got %x (%v)", body, got, err)
		}
	}
}

// TestRawScalars: in raw format a bin field is its bytes, and a number
// its text, as for topics and keys.
func TestRawScalars(t *testing.T) {
	body := pack(nil, obj{{"b", bin("line\n")}, {"i", -7}, {"u", uint64(math.MaxUint64)}, {"f", 2.5}, {"t", true}})
	for key, want := range map[string]string{"$b": "line\n", "$i": "-7", "$u": "18446744073709551615", "$f": "2.5", "$t": "true"} {
		e, err := New(Options{Format: "raw", RawKey: paths(t, key)[0]})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := e.Append(nil, &chunk.Record{Body: body}, ""); err != nil || string(got) != want {
			t.Errorf("%s: got %q (%v), want %q", key, got, err, want)
		}
	}
}

// TestLogfmtSpecialBytes: '=' in a key becomes '_', and a value with '=',
// a quote or a backslash is quoted, so that every pair reads back as one
// key and one value.
func TestLogfmtSpecialBytes(t *testing.T) {
	body := pack(nil, obj{{"a=b", "v"}, {"eq", "x=y"}, {"path", `C:\tmp`}, {"q", `say "hi"`}, {"plain", "ok-1.2/x"}})
	want := `a_b=v eq="x=y" path="C:\\tmp" q="say \"hi\"" plain=ok-1.2/x`
	if got, err := encodeAll(t, Options{Format: "logfmt"}, body); err != nil || got != want {
		t.Errorf("got  %s (%v)\nwant %s", got, err, want)
	}
}

// TestJSONFloats: a float32 is written at its own precision; a whole float
// keeps its ".0" up to int64's range, also above 2^53.
func TestJSONFloats(t *testing.T) {
	m := msgp.AppendMapHeader(nil, 3)
	m = msgp.AppendFloat32(msgp.AppendString(m, "f32"), 0.1)
	m = msgp.AppendFloat64(msgp.AppendString(m, "big"), 9.1e15)
	m = msgp.AppendFloat64(msgp.AppendString(m, "bigger"), 1<<60)
	want := `{"f32":0.1,"big":9100000000000000.0,"bigger":1152921504606847000.0}`
	if got, err := mustEncoder(t, "json", "", "").Append(nil, &chunk.Record{Body: m}, ""); err != nil || string(got) != want {
		t.Errorf("got  %s (%v)\nwant %s", got, err, want)
	}
}
