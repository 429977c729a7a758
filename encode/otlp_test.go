package encode

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/ra"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/pdata/plog"
)

// otlpRecord wraps the OTLP JSON of one log record, resource and scope as
// a LogsData.
func otlpRecord(resource, scope, record string) string {
	return `{"resourceLogs":[{"resource":{` + resource + `},"scopeLogs":[{"scope":{` + scope + `},"logRecords":[{` + record + `}]` +
		`}]}]}`
}

// otlpBoth encodes rec as otlp_json and as otlp_proto; the proto, read
// back as the OpenTelemetry Collector reads it, must be the same logs.
func otlpBoth(t *testing.T, o Options, rec *chunk.Record) (string, error) {
	t.Helper()
	o.Format = "otlp_json"
	js, err := encodeRecord(t, o, rec)
	o.Format = "otlp_proto"
	pb, err2 := encodeRecord(t, o, rec)
	if (err == nil) != (err2 == nil) {
		t.Fatalf("otlp_json: %v; otlp_proto: %v", err, err2)
	}
	if err != nil {
		return "", err
	}
	logs, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(pb)
	if err != nil {
		t.Fatalf("otlp_proto does not decode: %v", err)
	}
	again, _ := (&plog.JSONMarshaler{}).MarshalLogs(logs)
	if !bytes.Equal(again, js) {
		t.Fatalf("otlp_proto decodes to\n%s\notlp_json is\n%s", again, js)
	}
	return string(js), nil
}

// encodeRecord encodes rec with Append and with AppendOpen, which must
// agree.
func encodeRecord(t *testing.T, o Options, rec *chunk.Record) ([]byte, error) {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Append(nil, rec, "kube.x")
	open := *rec
	open.Body = append(rec.Body[:len(rec.Body):len(rec.Body)], 0xc0)
	got2, n, err2 := e.AppendOpen(nil, &open, "kube.x")
	if !bytes.Equal(got, got2) || (err == nil) != (err2 == nil) || err == nil && n != len(rec.Body) {
		t.Fatalf("Append %q, %v; AppendOpen %q, %d, %v", got, err, got2, n, err2)
	}
	return got, err
}

func TestOTLP(t *testing.T) {
	const at = `"timeUnixNano":"1795341601123456789",`
	logBody := OTLP{BodyKeys: []string{"log", "message"}, BodyAttributes: true}
	for _, tc := range []struct {
		name string
		o    Options
		body any
		want string
	}{
		{"container log: the rest as attributes, removals, the tag", Options{OTLP: logBody, TagKey: "tag", Remove: paths(t, "$kubernetes['labels']")},
			obj{{"stream", "stdout"}, {"log", "hello"}, {"kubernetes", obj{{"pod", "web-1"}, {"labels", obj{{"app", "web"}}}}}},
			otlpRecord(``, ``, at+`"body":{"stringValue":"hello"},"attributes":[{"key":"stream","value":{"stringValue":"stdout"}},`+
				`{"key":"kubernetes","value":{"kvlistValue":{"values":[{"key":"pod","value":{"stringValue":"web-1"}}]}}},`+
				`{"key":"tag","value":{"stringValue":"kube.x"}}]`)},
		{"every type", Options{OTLP: logBody},
			obj{{"log", []any{nil, true, -3, uint64(math.MaxUint64), 1.5, "\xffx", bin("\x00\x01"), obj{{"a", 1}}}}},
			otlpRecord(``, ``, at+`"body":{"arrayValue":{"values":[{},{"boolValue":true},{"intValue":"-3"},{"stringValue":"18446744073709551615"},`+
				`{"doubleValue":1.5},{"bytesValue":"/3g="},{"bytesValue":"AAE="},{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"1"}}]}}]}}`)},
		{"message when there is no log", Options{OTLP: logBody},
			obj{{"message", "m"}, {"n", 2}},
			otlpRecord(``, ``, at+`"body":{"stringValue":"m"},"attributes":[{"key":"n","value":{"intValue":"2"}}]`)},
		{"no body field: the record is the body", Options{OTLP: logBody},
			obj{{"msg", "x"}, {7, "seven"}, {"msg", "y"}},
			otlpRecord(``, ``, at+`"body":{"kvlistValue":{"values":[{"key":"msg","value":{"stringValue":"y"}},{"key":"7","value":{"stringValue":"seven"}}]}}`)},
		{"the others left out", Options{OTLP: OTLP{BodyKeys: []string{"log"}}},
			obj{{"log", "hello"}, {"stream", "stdout"}},
			otlpRecord(``, ``, at+`"body":{"stringValue":"hello"}`)},
		{"a removed body field is no body", Options{OTLP: logBody, Remove: paths(t, "$log")},
			obj{{"log", "hello"}, {"message", "m"}},
			otlpRecord(``, ``, at+`"body":{"stringValue":"m"}`)},
		{"a body that is not a map", Options{OTLP: logBody}, "just text",
			otlpRecord(``, ``, at+`"body":{"stringValue":"just text"}`)},
	} {
		got, err := otlpBoth(t, tc.o, &chunk.Record{Time: ts, Body: pack(nil, tc.body)})
		if err != nil || got != tc.want {
			t.Errorf("%s:\ngot  %s (%v)\nwant %s", tc.name, got, err, tc.want)
		}
	}
}

// TestOTLPGroups: a record from Fluent Bit's OpenTelemetry input gets its
// resource and scope from its group, and its own OTLP fields from its
// metadata; a group of another schema is none.
func TestOTLPGroups(t *testing.T) {
	groupBody := pack(nil, obj{
		{"resource", obj{{"attributes", obj{{"service.name", "api"}}}, {"dropped_attributes_count", 2}, {"schema_url", "https://r"}}},
		{"scope", obj{{"name", "lib"}, {"version", "1.2"}, {"attributes", obj{{"k", "v"}}}, {"dropped_attributes_count", 1}, {"schema_url", "https://s"}}},
	})
	otlpGroup := chunk.Group{Metadata: pack(nil, obj{{"schema", "otlp"}, {"resource_id", 0}, {"scope_id", 0}}), Body: groupBody}
	otherGroup := chunk.Group{Metadata: pack(nil, obj{{"schema", "fixture"}}), Body: groupBody}
	metadata := pack(nil, obj{{"otlp", obj{
		{"timestamp", uint64(1795341601000000007)}, {"observed_timestamp", uint64(1795341602000000000)},
		{"severity_number", 9}, {"severity_text", "INFO"}, {"attributes", obj{{"http.method", "GET"}}}, {"dropped_attributes_count", 3},
		{"trace_id", bin("0123456789abcdef")}, {"span_id", "3031323334353637"}, {"trace_flags", 1}, {"event_name", "login"},
	}}})
	body := pack(nil, obj{{"log", "hi"}, {"user", "u"}})
	const resource = `"attributes":[{"key":"service.name","value":{"stringValue":"api"}}],"droppedAttributesCount":2`
	const scope = `"name":"lib","version":"1.2","attributes":[{"key":"k","value":{"stringValue":"v"}}],"droppedAttributesCount":1`
	const fields = `"timeUnixNano":"1795341601000000007","observedTimeUnixNano":"1795341602000000000","severityNumber":9,"severityText":"INFO",` +
		`"body":{"stringValue":"hi"},"attributes":[{"key":"http.method","value":{"stringValue":"GET"}},{"key":"user","value":{"stringValue":"u"}}],` +
		`"droppedAttributesCount":3,"flags":1,"traceId":"30313233343536373839616263646566","spanId":"3031323334353637","eventName":"login"`
	for _, tc := range []struct {
		name string
		rec  chunk.Record
		want string
	}{
		{"OTLP group and metadata", chunk.Record{Time: ts, Group: otlpGroup, Metadata: metadata, Body: body},
			strings.Replace(otlpRecord(resource, scope, fields), `}]}]}]}`, `}],"schemaUrl":"https://s"}],"schemaUrl":"https://r"}]}`, 1)},
		{"another schema's group", chunk.Record{Time: ts, Group: otherGroup, Body: body},
			otlpRecord(``, ``, `"timeUnixNano":"1795341601123456789","body":{"stringValue":"hi"},"attributes":[{"key":"user","value":{"stringValue":"u"}}]`)},
	} {
		got, err := otlpBoth(t, Options{OTLP: OTLP{BodyKeys: []string{"log"}, BodyAttributes: true}}, &tc.rec)
		if err != nil || got != tc.want {
			t.Errorf("%s:\ngot  %s (%v)\nwant %s", tc.name, got, err, tc.want)
		}
	}
}

// TestOTLPDepth: a record nested too deep is refused, as in JSON.
func TestOTLPDepth(t *testing.T) {
	var deep []byte
	for range maxDepth + 1 {
		deep = msgp.AppendArrayHeader(deep, 1)
	}
	deep = msgp.AppendNil(deep)
	_, err := otlpBoth(t, Options{}, &chunk.Record{Time: ts, Body: append(pack(nil, obj{{"log", "x"}})[:5:5], deep...)})
	if !errors.Is(err, errDepth) {
		t.Errorf("got %v, want %v", err, errDepth)
	}
}

// FuzzOTLP: any body (read open, as the plugin reads it, running on into
// the chunk), metadata and group make OTLP that the Collector's decoders
// read, the same in protobuf and JSON; or an error.
func FuzzOTLP(f *testing.F) {
	f.Add(kube(), pack(nil, obj{{"otlp", obj{{"trace_id", "0123456789abcdef0123456789abcdef"}, {"attributes", obj{{"a", 1}}}}}}),
		pack(nil, obj{{"resource", obj{{"attributes", obj{{"service.name", "x"}}}}}, {"scope", obj{{"name", "s"}}}}))
	f.Add(pack(nil, obj{{"message", []any{1.5, nil, bin("\xff")}}, {7, obj{{"\xfe", true}}}}), []byte{0x80}, []byte{0xc0})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'x', 0xc0}, []byte{0x81, 0xa4, 'o', 't', 'l', 'p', 0xdd, 0xff, 0xff, 0xff, 0xff}, []byte{})
	var es []*Encoder
	for _, format := range []string{"otlp_proto", "otlp_json"} {
		e, err := New(Options{Format: format, TagKey: "tag", Remove: []ra.Path{{{Key: "stream"}}}, OTLP: OTLP{BodyKeys: []string{"log", "message"}, BodyAttributes: true}})
		if err != nil {
			f.Fatal(err)
		}
		es = append(es, e)
	}
	f.Fuzz(func(t *testing.T, body, metadata, group []byte) {
		rec := &chunk.Record{Time: 1, Metadata: metadata, Body: body,
			Group: chunk.Group{Metadata: pack(nil, obj{{"schema", "otlp"}}), Body: group}}
		pb, n, err := es[0].AppendOpen(nil, rec, "tag")
		js, n2, err2 := es[1].AppendOpen(nil, rec, "tag")
		if (err == nil) != (err2 == nil) || n != n2 || n > len(body) {
			t.Fatalf("otlp_proto: %d, %v; otlp_json: %d, %v", n, err, n2, err2)
		}
		if err != nil {
			return
		}
		fromProto, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(pb)
		if err != nil {
			t.Fatalf("otlp_proto from %x: %v", body, err)
		}
		fromJSON, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(js)
		if err != nil {
			t.Fatalf("%s from %x: %v", js, body, err)
		}
		if again, _ := (&plog.JSONMarshaler{}).MarshalLogs(fromProto); !bytes.Equal(again, js) {
			t.Fatalf("from %x: otlp_proto decodes to\n%s\notlp_json is\n%s", body, again, js)
		}
		if fromJSON.LogRecordCount() != 1 {
			t.Fatalf("%s: %d log records", js, fromJSON.LogRecordCount())
		}
	})
}

// TestOTLPLargeMaps: a map of more than maxKeys entries is sent as its JSON
// text, attributes beyond maxKeys are counted as dropped, and a map or array
// whose header claims more than the record holds is refused at once.
func TestOTLPLargeMaps(t *testing.T) {
	big := func(n int, value any) obj {
		m := obj{}
		for i := range n {
			m = append(m, kv{strconv.Itoa(i), value})
		}
		return m
	}
	o := Options{Format: "otlp_json", OTLP: OTLP{BodyKeys: []string{"log"}, BodyAttributes: true}}
	for _, tc := range []struct {
		name string
		rec  chunk.Record
		want string // a part of the JSON
	}{
		{"a large map in the body", chunk.Record{Time: ts, Body: pack(nil, obj{{"log", big(maxKeys+1, 1)}})},
			`"body":{"stringValue":"{\"0\":1,\"1\":1,`},
		{"a large record", chunk.Record{Time: ts, Body: pack(nil, append(big(maxKeys, true), kv{"log", "x"}))},
			`"body":{"stringValue":"{\"0\":true,`},
		{"a map of maxKeys entries stays a map", chunk.Record{Time: ts, Body: pack(nil, obj{{"log", big(maxKeys, 1)}})},
			`"body":{"kvlistValue":{"values":[{"key":"0","value":{"intValue":"1"}}`},
		{"attributes beyond maxKeys", chunk.Record{Time: ts, Body: pack(nil, obj{{"log", "x"}}),
			Metadata: pack(nil, obj{{"otlp", obj{{"attributes", big(maxKeys+3, 1)}, {"dropped_attributes_count", 2}}}})},
			`"droppedAttributesCount":5`},
	} {
		got, err := encodeRecord(t, o, &tc.rec)
		if err != nil || !strings.Contains(string(got), tc.want) {
			t.Errorf("%s: %v, want %s in\n%.300s", tc.name, err, tc.want, got)
		}
		if logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(got); err == nil && tc.name == "attributes beyond maxKeys" {
			if n := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Len(); n != maxKeys {
				t.Errorf("%s: %d attributes, want %d", tc.name, n, maxKeys)
			}
		}
	}
	// A body, or metadata attributes, of more than maxValues values (an
	// array counts, and each of its elements): an error, rather than a
	// hundred times their size in pdata values.
	many := make([]any, maxValues)
	for _, tc := range []struct {
		name string
		rec  chunk.Record
		err  error
	}{
		{"maxValues values in the body", chunk.Record{Time: ts, Body: pack(nil, obj{{"log", many[1:]}})}, nil},
		{"maxValues+1 values in the body", chunk.Record{Time: ts, Body: pack(nil, obj{{"log", many}})}, errValues},
		{"a body of maxValues values", chunk.Record{Time: ts, Body: pack(nil, many[1:])}, nil},
		{"a body of maxValues+1 values", chunk.Record{Time: ts, Body: pack(nil, many)}, errValues},
		{"maxValues values in the attributes", chunk.Record{Time: ts, Body: pack(nil, obj{{"log", "x"}}),
			Metadata: pack(nil, obj{{"otlp", obj{{"attributes", obj{{"a", many[1:]}}}}}})}, nil},
		{"maxValues+1 values in the attributes", chunk.Record{Time: ts, Body: pack(nil, obj{{"log", "x"}}),
			Metadata: pack(nil, obj{{"otlp", obj{{"attributes", obj{{"a", many}}}}}})}, errValues},
	} {
		if _, err := encodeRecord(t, o, &tc.rec); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	// Headers that claim 4 Gi entries: an error, not an allocation of them.
	for _, body := range [][]byte{{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'x', 0xc0}, {0x81, 0xa3, 'l', 'o', 'g', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}} {
		if _, err := encodeRecord(t, o, &chunk.Record{Time: ts, Body: body}); err == nil {
			t.Errorf("%x: no error", body)
		}
	}
}

// TestOTLPTagKeyAndRanges: the tag's attribute is named Tag_Key; a time before 1970
// is none rather than one in 2554; severity and the other numbers of the
// metadata stay within their types.
func TestOTLPTagKeyAndRanges(t *testing.T) {
	o := Options{OTLP: OTLP{BodyKeys: []string{"log"}}, TagKey: "fluent.tag"}
	got, err := otlpBoth(t, o, &chunk.Record{Time: -5, Body: pack(nil, obj{{"log", "x"}})})
	if want := otlpRecord(``, ``, `"body":{"stringValue":"x"},"attributes":[{"key":"fluent.tag","value":{"stringValue":"kube.x"}}]`); err != nil || got != want {
		t.Errorf("got  %s (%v)\nwant %s", got, err, want)
	}
	metadata := pack(nil, obj{{"otlp", obj{{"severity_number", uint64(1<<32 + 9)}, {"observed_timestamp", -1}, {"trace_flags", -1}}}})
	got, err = otlpBoth(t, Options{OTLP: OTLP{BodyKeys: []string{"log"}}}, &chunk.Record{Time: ts, Metadata: metadata, Body: pack(nil, obj{{"log", "x"}})})
	if want := otlpRecord(``, ``, `"timeUnixNano":"1795341601123456789","severityNumber":2147483647,"body":{"stringValue":"x"}`); err != nil || got != want {
		t.Errorf("got  %s (%v)\nwant %s", got, err, want)
	}
}
