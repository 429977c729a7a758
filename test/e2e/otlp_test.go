package e2e

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestOTLP: Format otlp_proto and otlp_json, read back as the OpenTelemetry
// Collector's Kafka receiver reads them: every record comes back once as one
// log record, field for field, with the resource and scope of its group.
func TestOTLP(t *testing.T) {
	bootstrap := kafkatest.Bootstrap(t)
	so := pluginSO(t)

	// Container logs through the kubernetes filter, with values of every
	// type; the body is the log line, the other fields attributes.
	t.Run("ContainerLogs", func(t *testing.T) {
		recs := containerLogs(t, "docker", 3000)
		want := make([]otlpLog, len(recs))
		for i := range recs {
			kube := []fixture.KV{{Key: "pod_name", Value: fmt.Sprintf("web-%d", i%7)}, {Key: "pod_id", Value: fmt.Sprintf("uid-%d", i)},
				{Key: "labels", Value: []fixture.KV{{Key: "app", Value: "web"}, {Key: "tier", Value: "front"}, {Key: "tier", Value: "back"}}}}
			recs[i].Body = append(recs[i].Body, fixture.KV{Key: "kubernetes", Value: kube},
				fixture.KV{Key: "values", Value: []any{int64(-i), []any{"a", nil, true, []any{1.5}}, []fixture.KV{{Key: "k", Value: "v"}}}},
				fixture.KV{Key: "bin", Value: []byte{0, 1, byte(i), 0xff}}, fixture.KV{Key: "ok", Value: i%2 == 0},
				fixture.KV{Key: "ratio", Value: float64(i) / 8}, fixture.KV{Key: "big", Value: uint64(math.MaxInt64) + uint64(i) + 1},
				fixture.KV{Key: "bad_utf8", Value: fmt.Sprintf("bad \xff\xfe %d", i)}, fixture.KV{Key: "none", Value: nil})
			// What the plugin sees after Remove_Keys $kubernetes['pod_id'].
			w := recs[i]
			w.Body = append([]fixture.KV{}, w.Body...)
			for j, kv := range w.Body {
				if kv.Key == "kubernetes" {
					w.Body[j].Value = []fixture.KV{kube[0], kube[2]}
				}
			}
			want[i] = wantOTLP(w, []string{"log", "message"}, true, "kube.web")
			want[i].Key = kube[0].Value.(string)
		}
		msgs := sendOTLP(t, bootstrap, so, recs, 64<<10, "Format", "otlp_proto", "Include_Tag_Key", "on", "Tag", "kube.web",
			"Remove_Keys", "$kubernetes['pod_id']", "Message_Key_Field", "$kubernetes['pod_name']", "Workers", "2")
		checkOTLP(t, want, msgs, (&plog.ProtoUnmarshaler{}).UnmarshalLogs)
	})

	// Records as Fluent Bit's OpenTelemetry input writes them: groups of a
	// resource and scope, OTLP fields in the metadata, the body under log
	// unless it was a map.
	t.Run("OTLPRecords", func(t *testing.T) {
		recs := otlpRecords()
		want := make([]otlpLog, len(recs))
		for i, r := range recs {
			want[i] = wantOTLP(r, []string{"log", "message"}, true, "")
		}
		msgs := sendOTLP(t, bootstrap, so, recs, 16<<10, "Format", "otlp_json", "Workers", "2")
		checkOTLP(t, want, msgs, (&plog.JSONUnmarshaler{}).UnmarshalLogs)

		// OTLP JSON, not protojson: ids in hex, camelCase names, as
		// plog's JSONMarshaler writes them.
		ids := 0
		for _, m := range msgs {
			var raw struct {
				ResourceLogs []struct {
					ScopeLogs []struct {
						LogRecords []struct{ TraceID, SpanID string }
					}
				}
			}
			logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(m.Value)
			if err != nil || json.Unmarshal(m.Value, &raw) != nil || len(raw.ResourceLogs) != 1 ||
				len(raw.ResourceLogs[0].ScopeLogs) != 1 || len(raw.ResourceLogs[0].ScopeLogs[0].LogRecords) != 1 {
				t.Fatalf("not one resourceLogs/scopeLogs/logRecords: %s", m.Value)
			}
			lr := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
			if lr.TraceID().IsEmpty() {
				continue
			}
			got := raw.ResourceLogs[0].ScopeLogs[0].LogRecords[0]
			if tid, sid := lr.TraceID(), lr.SpanID(); got.TraceID != hex.EncodeToString(tid[:]) || got.SpanID != hex.EncodeToString(sid[:]) {
				t.Fatalf("traceId %q spanId %q, want hex %x %x: %s", got.TraceID, got.SpanID, tid, sid, m.Value)
			}
			if ids++; ids == 1 {
				if b, _ := (&plog.JSONMarshaler{}).MarshalLogs(logs); string(b) != string(m.Value) {
					t.Errorf("not as plog's JSONMarshaler writes it:\ngot  %s\nwant %s", m.Value, b)
				}
			}
		}
		if ids == 0 {
			t.Fatal("no message with a trace id")
		}
	})

	// OTLP_Body_Key message, OTLP_Body_Key_Attributes off: the message is
	// the body and the other fields are left out; a record without a
	// message field is its body whole.
	t.Run("BodyKeyMessage", func(t *testing.T) {
		recs := containerLogs(t, "cri", 1000)
		want := make([]otlpLog, len(recs))
		for i := range recs {
			if i%10 == 3 {
				recs[i].Body = []fixture.KV{{Key: "log", Value: fmt.Sprint("no message ", i)}, {Key: "stream", Value: "stdout"}}
			}
			if i%3 == 0 {
				recs[i].Metadata = []fixture.KV{{Key: "otlp", Value: []fixture.KV{{Key: "attributes", Value: []fixture.KV{{Key: "seq", Value: int64(i)}}}}}}
			}
			want[i] = wantOTLP(recs[i], []string{"message"}, false, "")
		}
		msgs := sendOTLP(t, bootstrap, so, recs, 16<<10, "Format", "otlp_proto", "OTLP_Body_Key", "message", "OTLP_Body_Key_Attributes", "off")
		checkOTLP(t, want, msgs, (&plog.ProtoUnmarshaler{}).UnmarshalLogs)
	})

	// One OTLP message per record: not with Message_Mode batch.
	t.Run("Batch", func(t *testing.T) {
		for _, format := range []string{"otlp_proto", "otlp_json"} {
			res := hostrun.Run(t, hostrun.Options{Plugin: so, AllowFail: true, Instances: []hostrun.Instance{{
				Keys: keys("Brokers", "127.0.0.1:1", "Format", format, "Message_Mode", "batch"),
			}}})
			if res.ExitCode != 3 || !strings.Contains(res.Stderr, "configuration error: Format: ") {
				t.Errorf("%s with Message_Mode batch: exit %d, stderr:\n%s", format, res.ExitCode, hostrun.Tail(res.Stderr, 5))
			}
		}
	})
}

// otlpRecords builds records as Fluent Bit's OpenTelemetry input does: two
// resources of two scopes each (the first again later), a group of another
// schema, and records outside any group before and after.
func otlpRecords() []fixture.Record {
	group := func(res, scope int, body ...fixture.KV) *fixture.Group {
		return &fixture.Group{Metadata: []fixture.KV{{Key: "schema", Value: "otlp"}, {Key: "resource_id", Value: int64(res)}, {Key: "scope_id", Value: int64(scope)}}, Body: body}
	}
	kv := func(kv ...any) []fixture.KV {
		var out []fixture.KV
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, fixture.KV{Key: kv[i].(string), Value: kv[i+1]})
		}
		return out
	}
	res0 := fixture.KV{Key: "resource", Value: kv("attributes", kv("service.name", "checkout", "host.name", "node-1", "process.pid", int64(4242), "tags", []any{"a", "b"}),
		"dropped_attributes_count", int64(2), "schema_url", "https://opentelemetry.io/schemas/1.26.0")}
	res1 := fixture.KV{Key: "resource", Value: kv("attributes", kv("service.name", "frontend", "nested", kv("a", kv("b", 1.25))))}
	groups := []*fixture.Group{
		group(0, 0, res0, fixture.KV{Key: "scope", Value: kv("name", "io.opentelemetry.logback", "version", "2.1.0",
			"attributes", kv("scope.kind", "appender", "depth", int64(3)), "dropped_attributes_count", int64(1), "schema_url", "https://opentelemetry.io/schemas/1.21.0")}),
		group(0, 1, res0, fixture.KV{Key: "scope", Value: kv("name", "payments", "version", "0.9")}),
		group(1, 0, res1, fixture.KV{Key: "scope", Value: kv("attributes", kv("x", true))}),
		group(1, 1, res1), // no scope
		{Metadata: kv("schema", "other", "resource_id", int64(0)), Body: kv("resource", kv("attributes", kv("service.name", "ignored")))},
	}
	var seq []*fixture.Group
	for range 5 {
		seq = append(seq, nil)
	}
	for _, g := range groups {
		for range 150 {
			seq = append(seq, g)
		}
	}
	for range 20 {
		seq = append(seq, groups[0])
	}
	for range 5 {
		seq = append(seq, nil)
	}
	base := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	severities := []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	var recs []fixture.Record
	for i, g := range seq {
		r := fixture.Record{Time: base.Add(time.Duration(i)*time.Millisecond + time.Duration(i)), Metadata: []fixture.KV{}, Group: g}
		ns := r.Time.UnixNano()
		if i%5 != 4 { // the others have no OTLP metadata
			var o []fixture.KV
			if i%3 == 0 { // differs from the event time, and wins
				o = append(o, fixture.KV{Key: "timestamp", Value: ns - 1e6 + 7})
			}
			o = append(o, kv("observed_timestamp", ns+5e6, "severity_number", int64(i%24+1), "severity_text", severities[i%6])...)
			if i%7 != 0 {
				o = append(o, kv("attributes", kv("http.method", "GET", "http.status_code", int64(200+i%5), "seq", int64(i)))...)
			}
			if i%6 != 1 {
				o = append(o, kv("trace_id", []byte(fmt.Sprintf("trace-%010d", i)), "span_id", []byte(fmt.Sprintf("sp%06d", i)), "trace_flags", int64(1))...)
			}
			o = append(o, kv("dropped_attributes_count", int64(i%3))...)
			if i%4 == 0 {
				o = append(o, kv("event_name", "user.login")...)
			}
			r.Metadata = kv("otlp", o)
		}
		switch i % 6 {
		case 0:
			r.Body = kv("log", fmt.Sprint("line ", i))
		case 1:
			r.Body = kv("log", kv("msg", "structured", "n", int64(i), "tags", []any{"x", int64(i)}))
		case 2:
			r.Body = kv("log", []any{int64(i), "x", nil})
		case 3: // no body key: the map is the body
			r.Body = kv("event", "checkout", "seq", int64(i), "detail", kv("ok", true))
		case 4:
			r.Body = kv("message", fmt.Sprint("message ", i), "level", "info")
		case 5: // log comes first in OTLP_Body_Key
			r.Body = kv("message", "m", "log", fmt.Sprint("log ", i))
		}
		recs = append(recs, r)
	}
	return recs
}

// sendOTLP sends recs through the plugin, in v2 chunks of about chunkBytes,
// to a new topic, and reads back what it wrote.
func sendOTLP(t *testing.T, bootstrap, so string, recs []fixture.Record, chunkBytes int, kv ...string) []*kafka.Message {
	t.Helper()
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 2)
	res := hostrun.Run(t, hostrun.Options{Plugin: so, Instances: []hostrun.Instance{{
		Keys:   append(keys("Brokers", bootstrap, "Topics", topic), keys(kv...)...),
		Chunks: fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2, ChunkBytes: chunkBytes}),
	}}})
	if s := res.Instances[0]; s.OK != s.Chunks || s.Chunks < 2 || s.Retry+s.Error+s.Dropped != 0 {
		t.Fatalf("want every chunk acknowledged at once: %+v\n%s", s, hostrun.Tail(res.Stderr, 20))
	}
	return kafkatest.Consume(t, bootstrap, topic, len(recs), time.Minute)
}

// otlpLog is one message as text: its Kafka key and timestamp, and every
// field of its one log record, resource and scope. Values are written by
// otlpValue, or wantValue for what a record should give.
type otlpLog struct {
	Key                                 string
	KafkaTimeMS                         int64
	ResourceAttributes                  string
	ResourceDropped                     uint32
	ResourceSchemaURL                   string
	ScopeName, ScopeVersion, ScopeAttrs string
	ScopeDropped                        uint32
	ScopeSchemaURL                      string
	Timestamp, ObservedTimestamp        uint64
	SeverityNumber                      int32
	SeverityText                        string
	Body, Attributes                    string
	Dropped                             uint32
	TraceID, SpanID                     string
	Flags                               uint32
	EventName                           string
}

// checkOTLP checks that msgs hold exactly want, each once.
func checkOTLP(t *testing.T, want []otlpLog, msgs []*kafka.Message, decode func([]byte) (plog.Logs, error)) {
	t.Helper()
	left := map[otlpLog]int{}
	for _, w := range want {
		left[w]++
	}
	var extra []otlpLog
	for _, m := range msgs {
		logs, err := decode(m.Value)
		if err != nil || logs.ResourceLogs().Len() != 1 || logs.ResourceLogs().At(0).ScopeLogs().Len() != 1 ||
			logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().Len() != 1 {
			t.Fatalf("message %q: %v, or not one resource, scope and log record", m.Value, err)
		}
		rl := logs.ResourceLogs().At(0)
		sl := rl.ScopeLogs().At(0)
		lr := sl.LogRecords().At(0)
		res, scope, tid, sid := rl.Resource(), sl.Scope(), lr.TraceID(), lr.SpanID()
		got := otlpLog{string(m.Key), m.Timestamp.UnixMilli(),
			otlpMap(res.Attributes()), res.DroppedAttributesCount(), rl.SchemaUrl(),
			scope.Name(), scope.Version(), otlpMap(scope.Attributes()), scope.DroppedAttributesCount(), sl.SchemaUrl(),
			uint64(lr.Timestamp()), uint64(lr.ObservedTimestamp()), int32(lr.SeverityNumber()), lr.SeverityText(),
			otlpValue(lr.Body()), otlpMap(lr.Attributes()), lr.DroppedAttributesCount(),
			hex.EncodeToString(tid[:]), hex.EncodeToString(sid[:]), uint32(lr.Flags()), lr.EventName()}
		if left[got] == 0 {
			extra = append(extra, got)
			continue
		}
		left[got]--
	}
	missing := 0
	for _, n := range left {
		missing += n
	}
	t.Logf("%d records in, %d messages out, %d missing, %d unexpected or duplicated", len(want), len(msgs), missing, len(extra))
	for i, got := range extra[:min(3, len(extra))] {
		// Show the fields that differ from the closest record not seen.
		var diff []string
		for w, n := range left {
			if d := fieldDiff(got, w); n > 0 && (diff == nil || len(d) < len(diff)) {
				diff = d
			}
		}
		t.Errorf("unexpected message %d (%+v); against the closest missing record:\n%s", i, got, strings.Join(diff, "\n"))
	}
	if missing != 0 || len(extra) != 0 {
		t.FailNow()
	}
}

// fieldDiff lists the fields of got and want that differ.
func fieldDiff(got, want otlpLog) []string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	out := []string{}
	for i := range g.NumField() {
		if gf, wf := g.Field(i).Interface(), w.Field(i).Interface(); gf != wf {
			if _, ok := gf.(string); ok {
				gf, wf = strconv.Quote(gf.(string)), strconv.Quote(wf.(string))
			}
			out = append(out, fmt.Sprintf("  %s: got %v, want %v", g.Type().Field(i).Name, gf, wf))
		}
	}
	return out
}

// wantOTLP is the message the spec makes of r, after Remove_Keys, with the
// given OTLP_Body_Key list and OTLP_Body_Key_Attributes, and the tag as the
// last attribute unless empty.
func wantOTLP(r fixture.Record, bodyKeys []string, bodyAttrs bool, tag string) otlpLog {
	field := func(kvs any, key string) any {
		m, _ := kvs.([]fixture.KV)
		v, _ := fixture.Get(m, key)
		return v
	}
	str := func(v any) string { s, _ := v.(string); return s }
	u32 := func(v any) uint32 { n, _ := v.(int64); return uint32(n) }
	w := otlpLog{KafkaTimeMS: r.Time.UnixMilli(), ResourceAttributes: "{}", ScopeAttrs: "{}", Timestamp: uint64(r.Time.UnixNano())}
	if g := r.Group; g != nil && field(g.Metadata, "schema") == "otlp" {
		res, scope := field(g.Body, "resource"), field(g.Body, "scope")
		w.ResourceAttributes = wantValue(orEmpty(field(res, "attributes")))
		w.ResourceDropped, w.ResourceSchemaURL = u32(field(res, "dropped_attributes_count")), str(field(res, "schema_url"))
		w.ScopeName, w.ScopeVersion = str(field(scope, "name")), str(field(scope, "version"))
		w.ScopeAttrs = wantValue(orEmpty(field(scope, "attributes")))
		w.ScopeDropped, w.ScopeSchemaURL = u32(field(scope, "dropped_attributes_count")), str(field(scope, "schema_url"))
	}
	o := field(r.Metadata, "otlp")
	if ts, ok := field(o, "timestamp").(int64); ok {
		w.Timestamp = uint64(ts)
	}
	if ts, ok := field(o, "observed_timestamp").(int64); ok {
		w.ObservedTimestamp = uint64(ts)
	}
	sev, _ := field(o, "severity_number").(int64)
	w.SeverityNumber, w.SeverityText = int32(sev), str(field(o, "severity_text"))
	w.Dropped, w.Flags, w.EventName = u32(field(o, "dropped_attributes_count")), u32(field(o, "trace_flags")), str(field(o, "event_name"))
	tid, _ := field(o, "trace_id").([]byte)
	sid, _ := field(o, "span_id").([]byte)
	w.TraceID, w.SpanID = hex.EncodeToString(append(tid, make([]byte, 16-len(tid))...)), hex.EncodeToString(append(sid, make([]byte, 8-len(sid))...))
	attrs, _ := field(o, "attributes").([]fixture.KV)
	attrs = append([]fixture.KV{}, attrs...)
	w.Body = wantValue(r.Body)
	for _, k := range bodyKeys {
		if v, ok := fixture.Get(r.Body, k); ok {
			w.Body = wantValue(v)
			for _, kv := range r.Body {
				if kv.Key != k && bodyAttrs {
					attrs = append(attrs, kv)
				}
			}
			break
		}
	}
	if tag != "" {
		attrs = append(attrs, fixture.KV{Key: "tag", Value: tag})
	}
	w.Attributes = wantValue(attrs)
	return w
}

func orEmpty(v any) any {
	if v == nil {
		return []fixture.KV{}
	}
	return v
}

// wantValue writes a record's value as otlpValue writes the OTLP value the
// spec makes of it.
func wantValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "empty"
	case string:
		if !utf8.ValidString(x) {
			return "bytes:" + hex.EncodeToString([]byte(x))
		}
		return "str:" + strconv.Quote(x)
	case []byte:
		return "bytes:" + hex.EncodeToString(x)
	case int64:
		return "int:" + strconv.FormatInt(x, 10)
	case uint64: // above int64's max in these records
		return "str:" + strconv.Quote(strconv.FormatUint(x, 10))
	case float64:
		return "double:" + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "bool:" + strconv.FormatBool(x)
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, wantValue(e))
		}
		return "[" + strings.Join(out, ", ") + "]"
	case []fixture.KV:
		var out []string
		for i, kv := range x {
			if _, later := fixture.Get(x[i+1:], kv.Key); !later { // a repeated key keeps its last value
				out = append(out, strconv.Quote(kv.Key)+": "+wantValue(kv.Value))
			}
		}
		return "{" + strings.Join(out, ", ") + "}"
	}
	panic(fmt.Sprintf("unexpected %T", v))
}

// otlpValue writes an OTLP value with its type.
func otlpValue(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		return "empty"
	case pcommon.ValueTypeStr:
		return "str:" + strconv.Quote(v.Str())
	case pcommon.ValueTypeBytes:
		return "bytes:" + hex.EncodeToString(v.Bytes().AsRaw())
	case pcommon.ValueTypeInt:
		return "int:" + strconv.FormatInt(v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return "double:" + strconv.FormatFloat(v.Double(), 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return "bool:" + strconv.FormatBool(v.Bool())
	case pcommon.ValueTypeSlice:
		var out []string
		for _, e := range v.Slice().All() {
			out = append(out, otlpValue(e))
		}
		return "[" + strings.Join(out, ", ") + "]"
	case pcommon.ValueTypeMap:
		return otlpMap(v.Map())
	}
	return "unknown type " + v.Type().String()
}

func otlpMap(m pcommon.Map) string {
	var out []string
	for k, v := range m.All() {
		out = append(out, strconv.Quote(k)+": "+otlpValue(v))
	}
	return "{" + strings.Join(out, ", ") + "}"
}
