package encode

import (
	"bytes"
	"testing"

	"github.com/gokafka/gokafka/chunk"
	"github.com/gokafka/gokafka/ra"
	"github.com/gokafka/gokafka/test/benchdata"
	"github.com/hamba/avro/v2"
	"github.com/tinylib/msgp/msgp"
)

// readBoth reads data with Next and Append, and with NextOpen, AppendOpen
// and EndBody or SkipBody, and fails on any difference: records, values,
// errors.
func readBoth(t *testing.T, e *Encoder, data []byte) {
	t.Helper()
	r1, r2 := chunk.NewReader(data), chunk.NewReader(data)
	for i := 0; ; i++ {
		var rec1, rec2 chunk.Record
		more1, err1 := r1.Next(&rec1)
		more2, err2 := r2.NextOpen(&rec2)
		var out1, out2 []byte
		var encErr1, encErr2 error
		if more2 {
			var n int
			out2, n, encErr2 = e.AppendOpen([]byte("pre"), &rec2, "tag")
			if encErr2 == nil {
				r2.EndBody(&rec2, n)
			} else if err := r2.SkipBody(&rec2); err != nil {
				more2, err2 = false, err
			}
		}
		if more1 {
			out1, encErr1 = e.Append([]byte("pre"), &rec1, "tag")
		}
		if more1 != more2 || (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("record %d: Next %v, %v; NextOpen %v, %v", i, more1, err1, more2, err2)
		}
		if !more1 {
			return
		}
		if rec1.Time != rec2.Time || !bytes.Equal(rec1.Metadata, rec2.Metadata) || !bytes.Equal(rec1.Body, rec2.Body) {
			t.Fatalf("record %d: %+v, open %+v", i, rec1, rec2)
		}
		if !bytes.Equal(out1, out2) || (encErr1 == nil) != (encErr2 == nil) {
			t.Fatalf("record %d: Append %q, %v; AppendOpen %q, %v", i, out1, encErr1, out2, encErr2)
		}
	}
}

func openEncoders(t testing.TB) []*Encoder {
	var es []*Encoder
	for _, o := range []Options{
		{Format: "json", TimestampKey: "@timestamp", TimestampFormat: "iso8601_ns"},
		{Format: "msgpack", TimestampKey: "t", TimestampFormat: "epoch_ms", TagKey: "tag"},
		{Format: "logfmt", TagKey: "tag"},
		{Format: "raw", RawKey: ra.Path{{Key: "log"}}},
		{Format: "otlp_proto", TagKey: "tag", OTLP: OTLP{BodyKeys: []string{"log"}, BodyAttributes: true}},
		{Format: "avro", TagKey: "tag", TimestampKey: "t", TimestampFormat: "iso8601", Avro: Avro{Schema: avro.MustParse(`{"type":"record","name":"C","fields":[
			{"name":"log","type":"string"},{"name":"stream","type":{"type":"enum","name":"S","symbols":["stdout","stderr"]}},
			{"name":"time","type":["null","string"]},{"name":"tag","type":"string"},{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}`)}},
	} {
		e, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

func TestOpenMatchesNext(t *testing.T) {
	data := benchdata.Chunk(t, 1000)
	for _, e := range openEncoders(t) {
		readBoth(t, e, data)
		readBoth(t, e, data[:len(data)-5]) // the last body cut short
	}
}

// entry appends a [[EventTime, {}], body] entry.
func entry(b, body []byte) []byte {
	b = append(b, 0x92, 0x92, 0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0x80)
	return append(b, body...)
}

func FuzzOpen(f *testing.F) {
	f.Add(entry(entry(nil, kube()), []byte{0x81, 0xa1, 'a', 0xc0}), []byte{0x92, 0x01, 0xc1})
	f.Add(entry(nil, msgp.AppendString(nil, "not a map")), []byte{0x92, 0x01})
	f.Add([]byte{}, entry(nil, []byte{0x91, 0x91, 0x91}))
	es := openEncoders(f)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		data := append(entry(nil, kube()), a...)
		data = append(data, b...)
		for _, e := range es {
			readBoth(t, e, data)
		}
	})
}
