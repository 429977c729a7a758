package encode

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
)

func gelfOptions(t *testing.T, short string) Options {
	p := paths(t, short, "full_message", "host", "level")
	return Options{Format: "gelf", GELF: GELF{ShortMessage: p[0], FullMessage: p[1], Host: p[2], Level: p[3], Hostname: "node-1"}}
}

func TestGELF(t *testing.T) {
	const head = `{"version":"1.1","host":"node-1","short_message":"hello"`
	const at = `,"timestamp":1795341601.123`
	for _, tc := range []struct {
		name string
		body obj
		want string
	}{
		{"plain", obj{{"log", "hello"}, {"stream", "stdout"}, {"n", -3}},
			head + at + `,"_stream":"stdout","_n":-3}`},
		{"own host, full message and level", obj{{"host", "web-1"}, {"log", "hello"}, {"full_message", obj{{"a", 1}}}, {"level", "WARN"}},
			`{"version":"1.1","host":"web-1","short_message":"hello","full_message":"{\"a\":1}"` + at + `,"level":4}`},
		{"level as a digit", obj{{"log", "hello"}, {"level", "7"}}, head + at + `,"level":7}`},
		{"level as a number", obj{{"log", "hello"}, {"level", 3}}, head + at + `,"level":3}`},
		{"level not a syslog level stays a field", obj{{"log", "hello"}, {"level", "TRACE"}}, head + at + `,"_level_":"TRACE"}`},
		{"level out of range", obj{{"log", "hello"}, {"level", 8}}, head + at + `,"_level_":8}`},
		{"nested maps flattened, arrays as JSON text", obj{{"log", "hello"}, {"kubernetes", obj{{"pod name", "web-1"}, {"labels", obj{{"app.kubernetes.io/name", "web"}}}}}, {"tags", []any{"a", 1, obj{{"b", true}}}}},
			head + at + `,"_kubernetes_pod_name":"web-1","_kubernetes_labels_app.kubernetes.io_name":"web","_tags":"[\"a\",1,{\"b\":true}]"}`},
		{"booleans as text, null left out, bin as text", obj{{"log", "hello"}, {"ok", false}, {"none", nil}, {"raw", bin("x\n")}},
			head + at + `,"_ok":"false","_raw":"x\n"}`},
		{"names Graylog keeps", obj{{"log", "hello"}, {"id", 5}, {"x", obj{{"id", 6}}}, {"message", "m"}, {"source", "s"}, {"short_message", "x"}, {"_id", 7}, {"_source", 8}},
			head + at + `,"_id_":5,"_x_id":6,"_message_":"m","_source_":"s","_short_message_":"x","__id_":7,"__source_":8}`},
		{"blank host", obj{{"log", "hello"}, {"host", " \t"}}, head + at + `}`},
		{"blank host, as Java tells", obj{{"log", "hello"}, {"host", "\u3000\u2003\x1c\u2028"}}, head + at + `}`},
		{"a non-breaking space is not blank to Java", obj{{"log", "hello"}, {"host", "\u00a0"}},
			`{"version":"1.1","host":"` + "\u00a0" + `","short_message":"hello"` + at + `}`},
		{"non-ASCII key bytes", obj{{"log", "hello"}, {"ключ", "v"}}, head + at + `,"_________":"v"}`},
		{"number as short message", obj{{"log", 42}}, `{"version":"1.1","host":"node-1","short_message":"42"` + at + `}`},
		{"a key that is not text", obj{{"log", "hello"}, {7, "seven"}}, head + at + `,"_7":"seven"}`},
	} {
		got, err := encodeAll(t, gelfOptions(t, "log"), pack(nil, tc.body))
		if err != nil || got != tc.want {
			t.Errorf("%s:\ngot  %s (%v)\nwant %s", tc.name, got, err, tc.want)
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Errorf("%s: not JSON: %v", tc.name, err)
		}
	}
}

// TestGELFShaping: Remove_Keys and the tag apply; a GELF field taken from
// a nested field is not repeated as an additional field; a record of its
// own timestamp field keeps it as one.
func TestGELFShaping(t *testing.T) {
	o := gelfOptions(t, "$msg['text']")
	o.GELF.Host = paths(t, "$kubernetes['host']")[0]
	o.TagKey, o.TimestampKey, o.TimestampFormat = "tag", "@timestamp", "iso8601"
	o.Remove = paths(t, "$kubernetes['labels']")
	body := obj{{"msg", obj{{"text", "hi"}, {"len", 2}}}, {"timestamp", "yesterday"}, {"kubernetes", obj{{"host", "node-7"}, {"labels", obj{{"a", "b"}}}}}}
	got, err := encodeAll(t, o, pack(nil, body))
	want := `{"version":"1.1","host":"node-7","short_message":"hi","timestamp":1795341601.123,"_msg_len":2,"_timestamp_":"yesterday","_tag":"kube.x"}`
	if err != nil || got != want {
		t.Errorf("got  %s (%v)\nwant %s", got, err, want)
	}
}

// TestGELFNoShortMessage: a record without a short message, or with it
// null or empty, is one GELF cannot carry; so is a body that is not a map.
func TestGELFNoShortMessage(t *testing.T) {
	e, err := New(gelfOptions(t, "log"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"missing":    pack(nil, obj{{"message", "x"}}),
		"null":       pack(nil, obj{{"log", nil}}),
		"empty":      pack(nil, obj{{"log", ""}}),
		"empty str8": append(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), 0xd9, 0),
		"empty bin":  pack(nil, obj{{"log", bin("")}}),
		"blank":      pack(nil, obj{{"log", " \n"}}),
	} {
		if out, err := e.Append([]byte("x"), &chunk.Record{Time: ts, Body: body}, ""); !errors.Is(err, ErrNoValueField) || string(out) != "x" {
			t.Errorf("%s: got %q, %v", name, out, err)
		}
	}
	if _, err := e.Append(nil, &chunk.Record{Time: ts, Body: pack(nil, "text")}, ""); err == nil || errors.Is(err, ErrNoValueField) {
		t.Errorf("a string body: %v", err)
	}
	if _, err := New(Options{Format: "gelf"}); err == nil {
		t.Error("New without a short message field")
	}
}

// TestGELFFieldsInArrays: a GELF field taken from an array element stays
// in the array's text too; the tag's name is kept from Graylog's like the
// record's own.
func TestGELFFieldsInArrays(t *testing.T) {
	o := gelfOptions(t, "$lines[0]")
	o.GELF.Level = paths(t, "$levels[1]")[0]
	o.TagKey = "id"
	got, err := encodeAll(t, o, pack(nil, obj{{"lines", []any{"a", "b"}}, {"levels", []any{"x", "info"}}}))
	want := `{"version":"1.1","host":"node-1","short_message":"a","timestamp":1795341601.123,"level":6,"_lines":"[\"a\",\"b\"]","_levels":"[\"x\",\"info\"]","_id_":"kube.x"}`
	if err != nil || got != want {
		t.Errorf("got  %s (%v)\nwant %s", got, err, want)
	}
}

// TestGELFTextFields: a host or message that is not text is sent as its
// JSON text, an ext value (base64) as it is.
func TestGELFTextFields(t *testing.T) {
	body := msgp.AppendString(msgp.AppendMapHeader(nil, 3), "log")
	body = msgp.AppendString(msgp.AppendMapHeader(body, 1), "a")
	body = msgp.AppendString(msgp.AppendInt(body, 1), "host")
	body = append(body, 0xc7, 3, 1, 1, 2, 3) // ext 1, 3 bytes
	body = msgp.AppendBool(msgp.AppendString(body, "full_message"), true)
	got, err := encodeAll(t, gelfOptions(t, "log"), body)
	want := `{"version":"1.1","host":"AQID","short_message":"{\"a\":1}","full_message":"true","timestamp":1795341601.123}`
	if err != nil || got != want {
		t.Errorf("got  %s (%v)\nwant %s", got, err, want)
	}
}

// TestGELFTimestamp: seconds with milliseconds, rounded down.
func TestGELFTimestamp(t *testing.T) {
	body := pack(nil, obj{{"log", "x"}})
	e, err := New(gelfOptions(t, "log"))
	if err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[int64]string{0: "0.000", 1_999_999: "0.001", -1_500_000: "-0.002", -1_000_000_000: "-1.000", ts: "1795341601.123"} {
		got, err := e.Append(nil, &chunk.Record{Time: ns, Body: body}, "")
		if err != nil || !strings.Contains(string(got), `"timestamp":`+want+"}") {
			t.Errorf("%d: got %s (%v), want %s", ns, got, err, want)
		}
	}
}

// A level given by name costs no allocation.
func TestGELFLevelAllocs(t *testing.T) {
	e, err := New(gelfOptions(t, "log"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &chunk.Record{Body: pack(nil, obj{{"log", "x"}, {"level", "Info"}})}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf, _ = e.Append(buf[:0], rec, "") }); n != 0 || !strings.Contains(string(buf), `"level":6`) {
		t.Errorf("%v allocations, %s", n, buf)
	}
}

// A map nested under a long key is bounded as in logfmt.
func TestGELFKeyPathBounded(t *testing.T) {
	long := strings.Repeat("k", maxKeyPath)
	body := pack(nil, obj{{"log", "x"}, {long, obj{{"a", 1}}}})
	if _, err := encodeAll(t, gelfOptions(t, "log"), body); !errors.Is(err, errKeyPath) {
		t.Errorf("got %v, want %v", err, errKeyPath)
	}
}

// gelfName matches GELF's field names and additional field names.
var gelfName = regexp.MustCompile(`^(version|host|short_message|full_message|timestamp|level|_[\w.\-]*)$`)

func FuzzGELF(f *testing.F) {
	f.Add(kube())
	f.Add(pack(nil, obj{{"log", "x"}, {"level", "err"}, {"a", obj{{"x", 1}, {bin("x"), []any{obj{{"y", 1}, {"y", 2}}}}}}, {"a", 3}, {"", 4}}))
	f.Add(pack(nil, wideObj()))
	e, err := New(Options{Format: "gelf", TagKey: "tag", Remove: []ra.Path{{{Key: "stream"}}},
		GELF: GELF{ShortMessage: ra.Path{{Key: "log"}}, Level: ra.Path{{Key: "level"}}, Host: ra.Path{{Key: "kubernetes"}, {Key: "pod_name"}}, Hostname: "h"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := e.Append(nil, &chunk.Record{Time: 1, Body: body}, "tag")
		if err != nil {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s from %x: %v", out, body, err)
		}
		for _, k := range []string{"version", "host", "short_message"} {
			if s, ok := v[k].(string); !ok || strings.TrimSpace(s) == "" {
				t.Fatalf("%s from %x: no %s", out, body, k)
			}
		}
		for k, x := range v {
			switch x.(type) {
			case string, float64:
			default:
				t.Fatalf("%s from %x: %s is %T", out, body, k, x)
			}
			if !gelfName.MatchString(k) || slices.Contains(graylogFields, k[1:]) {
				t.Fatalf("%s from %x: field name %q", out, body, k)
			}
		}
	})
}

// TestGELFSyslogLevels: every syslog severity name, and the numbers 0 to 7,
// become GELF's level.
func TestGELFSyslogLevels(t *testing.T) {
	levels := map[any]byte{
		"emerg": 0, "panic": 0, "emergency": 0, "alert": 1, "crit": 2, "critical": 2, "err": 3, "error": 3,
		"warning": 4, "warn": 4, "notice": 5, "info": 6, "informational": 6, "debug": 7, "DEBUG": 7, "Error": 3,
		0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, uint64(7): 7, "0": 0, "7": 7,
	}
	for v, level := range levels {
		got, err := encodeAll(t, gelfOptions(t, "log"), pack(nil, obj{{"log", "x"}, {"level", v}}))
		if want := `"level":` + string('0'+rune(level)) + `}`; err != nil || !strings.HasSuffix(got, want) {
			t.Errorf("level %#v: got %s (%v), want it to end %s", v, got, err, want)
		}
	}
}
