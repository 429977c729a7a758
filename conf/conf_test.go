package conf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rdkafkaMap is c.Rdkafka as librdkafka sees it: a later setting of a
// property wins.
func rdkafkaMap(c *Config) map[string]string {
	m := map[string]string{}
	for _, p := range c.Rdkafka {
		m[p.Key] = p.Value
	}
	return m
}

func TestDefaults(t *testing.T) {
	c, err := Load(MapGetter{"brokers": "127.0.0.1:9092"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Topics[0] != "fluent-bit" || c.Format != "json" || c.TimestampKey != "@timestamp" ||
		c.TimestampFormat != "iso8601_ns" || c.BatchSize != 1<<20 || c.BufferMemory != 64<<20 ||
		c.Linger != 5*time.Millisecond || c.MaxBlock != 2*time.Second || c.FlushTimeout != 4*time.Second ||
		c.Compression != "lz4" || c.ClientID != "fluent-bit" || c.Producers != 2 || c.DynamicTopicLimit != 1000 {
		t.Fatalf("defaults: %+v", c)
	}
	want := map[string]string{"bootstrap.servers": "127.0.0.1:9092", "enable.idempotence": "true", "acks": "all", "compression.type": "lz4"}
	for _, p := range c.Rdkafka {
		if v, ok := want[p.Key]; ok && v != p.Value {
			t.Errorf("%s = %s, want %s", p.Key, p.Value, v)
		}
		delete(want, p.Key)
	}
	if len(want) > 0 {
		t.Errorf("missing librdkafka settings %v", want)
	}
	// Nothing else is added to a record, nor read from it: one message per record.
	if c.DynamicTopic || c.IncludeTagKey || c.MetadataHeaders || c.TopicKey != nil || c.MessageKeyField != nil || c.MessageKey != "" ||
		c.MessageMode != "record" || c.KafkaTimestamp != "event" || c.TagKey != "tag" || c.DLQTopic != "" || c.MetricsListen != "" ||
		c.Registry.Enabled() || c.MSKIAMRegion != "" || len(c.Headers) != 0 || len(c.RemoveKeys) != 0 || len(c.Warnings) != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(MapGetter{
		"BROKERS": "a:1,b:2", "topics": " logs , audit ", "format": "MsgPack", "timestamp_key": "off",
		"Batch_Size": "512K", "buffer_memory": "1G", "linger": "20ms", "max_block": "500ms",
		"flush_timeout": "3s", "compression": "zstd", "rdkafka.linger.ms": "50", "rdkafka.acks": "1",
	}, []string{"linger.ms", "acks", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Topics) != 2 || c.Topics[1] != "audit" || c.Format != "msgpack" || c.TimestampKey != "" ||
		c.BatchSize != 512e3 || c.BufferMemory != 1e9 || c.Linger != 20*time.Millisecond ||
		c.MaxBlock != 500*time.Millisecond || c.FlushTimeout != 3*time.Second || c.Compression != "zstd" {
		t.Fatalf("values: %+v", c)
	}
	// The operator's rdkafka keys come last, so they override the plugin's.
	n := len(c.Rdkafka)
	if c.Rdkafka[n-2] != (Property{"linger.ms", "50", true}) || c.Rdkafka[n-1] != (Property{"acks", "1", true}) {
		t.Fatalf("rdkafka overrides: %v", c.Rdkafka[n-2:])
	}
}

// freeForm are the options that take any text.
var freeForm = map[string]bool{"Timestamp_Key": true, "Tag_Key": true, "Message_Key": true, "Client_ID": true,
	"Schema_Str": true, "Schema_Registry_HTTP_User": true, "Schema_Registry_HTTP_Passwd": true, "Schema_Registry_Bearer_Token": true}

func TestInvalidValuesNameTheKey(t *testing.T) {
	invalid := map[string]string{
		"Brokers": "a:1,,b:2", "Topics": "bad topic", "Format": "xml", "Timestamp_Format": "rfc822", "Batch_Size": "huge",
		"Linger": "5", "Buffer_Memory": "12", "Max_Block": "-1s", "Flush_Timeout": "1ms", "Compression": "brotli",
		"Topic_Key": "$a[", "Dynamic_Topic": "maybe", "Dynamic_Topic_Limit": "many", "Message_Key_Field": "$", "Kafka_Timestamp": "now",
		"Header": "env", "Header_Key": "nopath", "Remove_Keys": "$a, $b['c", "Raw_Log_Key": "a b]", "Include_Tag_Key": "2",
		"Metadata_Headers": "yes please", "DLQ_Topic": "dead letters", "Metrics_Listen": "2021", "Message_Mode": "stream", "Producers": "17",
		"Gelf_Short_Message_Key": "$log[", "Gelf_Full_Message_Key": "$", "Gelf_Host_Key": "$k['host", "Gelf_Level_Key": "a'b",
		"AWS_MSK_IAM": "iam", "AWS_MSK_IAM_Cluster_ARN": "arn:aws:s3:::bucket", "OTLP_Body_Key_Attributes": "sometimes", "OTLP_Body_Key": "log, $message",
		"Schema_ID":           "-1",
		"Schema_Registry_URL": "http://r:8081, registry:8081", "Schema_Registry_Version": "v2",
		"Schema_Registry_Subject": "..", "Metrics_Instance": "node\xff",
	}
	for _, o := range Options {
		value, ok := invalid[o.Name]
		if !ok {
			if !freeForm[o.Name] {
				t.Errorf("option %s has no invalid value tested", o.Name)
			}
			continue
		}
		_, err := Load(MapGetter{"Brokers": "x:1", o.Name: value}, nil)
		echoed := o.Name == "Schema_Registry_URL" || strings.Contains(fmt.Sprint(err), strconv.Quote(value)) // URLs by number
		if err == nil || !strings.HasPrefix(err.Error(), o.Name+": ") || !echoed {
			t.Errorf("%s=%q: error %v, want one naming the key and value", o.Name, value, err)
		}
	}
	// Other values refused.
	for _, kv := range [][2]string{
		{"Brokers", "a:1 b:2"},     // blank-separated, not comma-separated
		{"Brokers", "a:1,b :2"},    // a blank inside a broker
		{"Brokers", "a:1,b:65537"}, // librdkafka would take port 1
		{"Brokers", "b:abc"},       // and port 0
		{"Brokers", "b:9092x"},     // and port 9092
		{"Brokers", "b:0"},
		{"Brokers", ":9092"},
		{"Brokers", "[::1]:"},
		{"Brokers", "ftp://b:9092"},
		{"Brokers", "SSL://b:9093"},      // not security.protocol's
		{"Topics", " , "},                // no topic at all: there would be no default topic
		{"Metrics_Listen", "127.0.0.1:"}, // no port: it would listen on a random one
		{"Schema_Registry_URL", "http://"},
		{"Schema_Registry_Version", "0"},
		{"Schema_Registry_Subject", "."},
		{"Include_Tag_Key", "maybe"},
		{"DLQ_Topic", "fluent-bit"}, // the default topic
	} {
		if _, err := Load(MapGetter{"Brokers": "x:1", kv[0]: kv[1]}, nil); err == nil || !strings.HasPrefix(err.Error(), kv[0]+": ") {
			t.Errorf("%s %q: %v, want an error naming %s", kv[0], kv[1], err, kv[0])
		}
	}
	// A URL's password is not repeated.
	for _, urls := range []string{"https://u:S3CRET@reg:8081, ftp://reg2", "https://u:SE/CRET@reg:8081, reg2",
		"htps://u:SE@CRET@reg:8081", "https://u:SE,CRET@reg:8081", "ftp://u:SE CRET@reg:8081", "https://reg2, ftp://u:SE@CRET@reg:8081",
		"u:SECRET@reg:8081", "https:/u:SECRET@reg:8081"} {
		_, err := Load(MapGetter{"Brokers": "x:1", "Schema_Registry_URL": urls}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "Schema_Registry_URL: ") || strings.Contains(err.Error(), "CRET") || !strings.Contains(err.Error(), "URL ") {
			t.Errorf("Schema_Registry_URL=%q: %v", urls, err)
		}
	}
	if _, err := Load(MapGetter{}, nil); err == nil || !strings.HasPrefix(err.Error(), "Brokers: required") {
		t.Errorf("missing Brokers: %v", err)
	}
	if _, err := Load(MapGetter{"Brokers": "x:1", "Batch_Size": "128M", "Buffer_Memory": "64M"}, nil); err == nil || !strings.HasPrefix(err.Error(), "Batch_Size") {
		t.Errorf("batch larger than memory: %v", err)
	}
	if _, err := Load(MapGetter{"Brokers": "x:1", "Format": "raw"}, nil); err == nil || !strings.HasPrefix(err.Error(), "Raw_Log_Key: required") {
		t.Errorf("raw without Raw_Log_Key: %v", err)
	}
	if _, err := Load(MapGetter{"Brokers": "x:1", "Max_Block": "10s"}, nil); err == nil || !strings.HasPrefix(err.Error(), "Max_Block") {
		t.Errorf("Max_Block over Flush_Timeout: %v", err)
	}
	for key, value := range map[string]string{"DLQ_Topic": "dead", "Header_Key": "app $app", "Metadata_Headers": "on"} {
		if _, err := Load(MapGetter{"Brokers": "x:1", key: value, "Message_Mode": "batch"}, nil); err == nil || !strings.HasPrefix(err.Error(), key+": not supported") {
			t.Errorf("%s in batch mode: %v", key, err)
		}
	}
	for value, want := range map[string]string{"zstd": `Compression: invalid value "zstd": with Message_Mode batch every message is an LZ4 frame`, "none": `Compression: invalid value "none": with Message_Mode batch every message is an LZ4 frame`, "lz4": ""} {
		_, err := Load(MapGetter{"Brokers": "x:1", "Compression": value, "Message_Mode": "batch"}, nil)
		if got := fmt.Sprint(err); err != nil && got != want || err == nil && want != "" {
			t.Errorf("Compression %s in batch mode: %v", value, err)
		}
	}
	// Batch mode sets these headers itself, and compresses itself.
	for _, header := range []string{"Content-Type text/plain", "gokafka.records 7"} {
		if _, err := Load(MapGetter{"Brokers": "x:1", "Header": "env prod, " + header, "Message_Mode": "batch"}, nil); err == nil || !strings.HasPrefix(err.Error(), "Header: ") {
			t.Errorf("Header %s in batch mode: %v", header, err)
		}
		if _, err := Load(MapGetter{"Brokers": "x:1", "Header": header}, nil); err != nil {
			t.Errorf("Header %s in record mode: %v", header, err)
		}
	}
	codecs := []string{"compression.type", "compression.codec"}
	for _, key := range codecs {
		if _, err := Load(MapGetter{"Brokers": "x:1", RdkafkaPrefix + key: "gzip", "Message_Mode": "batch"}, codecs); err == nil || !strings.HasPrefix(err.Error(), RdkafkaPrefix+key+": ") {
			t.Errorf("%s gzip in batch mode: %v", key, err)
		}
		for _, mode := range []string{"batch", "record"} {
			value := map[string]string{"batch": "none", "record": "gzip"}[mode]
			if _, err := Load(MapGetter{"Brokers": "x:1", RdkafkaPrefix + key: value, "Message_Mode": mode}, codecs); err != nil {
				t.Errorf("%s %s in %s mode: %v", key, value, mode, err)
			}
		}
	}
	if _, err := Load(MapGetter{"Brokers": "x:1", "Remove_Keys": "$a, $b[0]"}, nil); err == nil || err.Error() != `Remove_Keys: invalid value "$a, $b[0]": $b[0]: removing array elements is not supported` {
		t.Errorf("Remove_Keys with an index: %v", err)
	}
	if _, err := Load(MapGetter{"Brokers": "x:1", "Include_Tag_Key": "on", "Tag_Key": "@timestamp"}, nil); err == nil || !strings.HasPrefix(err.Error(), "Tag_Key") {
		t.Errorf("Tag_Key the same as Timestamp_Key: %v", err)
	}
	if _, err := Load(MapGetter{"Brokers": "x:1", "Tag_Key": "@timestamp"}, nil); err != nil {
		t.Errorf("Tag_Key without Include_Tag_Key: %v", err)
	}
	// Brokers as librdkafka reads them; a protocol must be security.protocol's.
	for _, keys := range []MapGetter{
		{"Brokers": "kafka"},
		{"Brokers": "kafka:9092, [::1]:9092, ::1, 10.0.0.1:1"},
		{"Brokers": "ssl://kafka:9093/path", "rdkafka.security.protocol": "SSL"},
	} {
		if _, err := Load(keys, []string{"security.protocol"}); err != nil {
			t.Errorf("%v: %v", keys, err)
		}
	}
	// librdkafka properties the plugin depends on.
	props := []string{"delivery.report.only.error", "transactional.id", "internal.termination.signal", "acks"}
	for _, kv := range [][2]string{{"delivery.report.only.error", "true"}, {"delivery.report.only.error", "tRue"},
		{"delivery.report.only.error", "T"}, {"delivery.report.only.error", "1"}, {"transactional.id", "tx-1"},
		{"internal.termination.signal", "15"}} {
		key, value := kv[0], kv[1] // librdkafka reads booleans in any case
		_, err := Load(MapGetter{"Brokers": "x:1", RdkafkaPrefix + key: value}, props)
		if err == nil || !strings.HasPrefix(err.Error(), RdkafkaPrefix+key+": ") || !strings.Contains(err.Error(), value) {
			t.Errorf("rdkafka.%s=%s: error %v, want one naming the key and value", key, value, err)
		}
	}
	if c, err := Load(MapGetter{"Brokers": "x:1", "rdkafka.delivery.report.only.error": "false", "rdkafka.acks": "all"}, props); err != nil {
		t.Errorf("rdkafka.delivery.report.only.error false: %v", err)
	} else if len(c.Warnings) != 0 {
		t.Errorf("acks all: warnings %q", c.Warnings)
	}
}

// TestWarnings: librdkafka settings that weaken delivery or the metrics, or
// slow every flush, are accepted, each with a warning naming it.
func TestWarnings(t *testing.T) {
	props := []string{"acks", "request.required.acks", "enable.idempotence", "statistics.interval.ms", "partitioner",
		"queue.buffering.max.messages", "queue.buffering.max.kbytes", "linger.ms", "queue.buffering.max.ms"}
	for _, tc := range []struct {
		keys map[string]string
		want []string // each warning's start
	}{
		{map[string]string{"rdkafka.acks": "0", "rdkafka.enable.idempotence": "false"}, []string{"rdkafka.acks 0: ", "rdkafka.enable.idempotence false: "}},
		{map[string]string{"rdkafka.request.required.acks": "0"}, []string{"rdkafka.request.required.acks 0: ", "rdkafka.request.required.acks 0, which librdkafka's idempotence cannot have: enable.idempotence is turned off"}},
		{map[string]string{"rdkafka.enable.idempotence": "fAlse"}, []string{"rdkafka.enable.idempotence fAlse: "}},
		{map[string]string{"rdkafka.enable.idempotence": "f"}, []string{"rdkafka.enable.idempotence f: "}},
		{map[string]string{"rdkafka.statistics.interval.ms": "0", "Metrics_Listen": "127.0.0.1:2021"}, []string{"rdkafka.statistics.interval.ms 0: "}},
		{map[string]string{"rdkafka.statistics.interval.ms": "0"}, nil}, // no metrics to lose
		{map[string]string{"rdkafka.acks": "all", "rdkafka.enable.idempotence": "true"}, nil},
		{map[string]string{"rdkafka.acks": "1", "rdkafka.enable.idempotence": "false"}, []string{"rdkafka.acks 1: ", "rdkafka.enable.idempotence false: "}},
		{map[string]string{"rdkafka.partitioner": "random"}, []string{"rdkafka.partitioner random: "}},
		{map[string]string{"rdkafka.partitioner": "random", "Message_Mode": "batch"}, nil}, // keyed records placed by the plugin
		{map[string]string{"rdkafka.partitioner": "consistent_random"}, nil},
		{map[string]string{"rdkafka.queue.buffering.max.messages": "100000"}, []string{"rdkafka.queue.buffering.max.messages 100000: "}},
		{map[string]string{"rdkafka.queue.buffering.max.kbytes": "1024"}, []string{"rdkafka.queue.buffering.max.kbytes 1024: "}},
		{map[string]string{"rdkafka.enable.idempotence": "0"}, []string{"rdkafka.enable.idempotence 0: "}},
		{map[string]string{"rdkafka.enable.idempotence": "F"}, []string{"rdkafka.enable.idempotence F: "}},
		{map[string]string{"rdkafka.linger.ms": "500"}, []string{"rdkafka.linger.ms 500: records wait this long before they are sent, and so does every flush"}},
		{map[string]string{"rdkafka.queue.buffering.max.ms": "4000"}, []string{"rdkafka.queue.buffering.max.ms 4000: records wait this long before they are sent, not less than Flush_Timeout (4s)"}},
		{map[string]string{"rdkafka.linger.ms": "0.5"}, nil},
		{map[string]string{"rdkafka.linger.ms": "5"}, nil},
		// Keys the other settings leave without effect.
		{map[string]string{"Schema_Registry_URL": "http://reg:8081", "Schema_Registry_Subject": "logs-value"},
			[]string{"Schema_Registry_URL is not used with Format json: only Format avro", "Schema_Registry_Subject is not used with Format json"}},
		{map[string]string{"Schema_Str": `{"type":"record"}`, "Schema_ID": "7", "Format": "msgpack"},
			[]string{"Schema_Str is not used with Format msgpack", "Schema_ID is not used with Format msgpack"}},
		{map[string]string{"Raw_Log_Key": "$log"}, []string{"Raw_Log_Key is not used with Format json"}},
		{map[string]string{"Format": "raw", "Raw_Log_Key": "$log", "Include_Tag_Key": "on", "Timestamp_Key": "ts", "Remove_Keys": "$a"},
			[]string{"Timestamp_Key is not used with Format raw", "Remove_Keys is not used with Format raw", "Include_Tag_Key is not used with Format raw"}},
		{map[string]string{"Dynamic_Topic": "on"}, []string{"Dynamic_Topic is not used without Topic_Key"}},
		{map[string]string{"Dynamic_Topic": "on", "Topic_Key": "$ns", "Dynamic_Topic_Limit": "10"}, nil},
		{map[string]string{"Topic_Key": "$ns", "Dynamic_Topic_Limit": "10"}, []string{"Dynamic_Topic_Limit is not used with Dynamic_Topic off"}},
		{map[string]string{"Dynamic_Topic": "off", "Format": "raw", "Raw_Log_Key": "$log", "Include_Tag_Key": "off"}, nil}, // defaults restated
	} {
		tc.keys["Brokers"] = "x:1"
		c, err := Load(MapGetter(tc.keys), props)
		if err != nil {
			t.Fatalf("%v: %v", tc.keys, err)
		}
		if len(c.Warnings) != len(tc.want) {
			t.Errorf("%v: warnings %q, want %d", tc.keys, c.Warnings, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(c.Warnings[i], w) {
				t.Errorf("%v: warning %q, want it to start %q", tc.keys, c.Warnings[i], w)
			}
		}
		if c.Format != "avro" && (c.Registry.Enabled() || c.SchemaID != 0) {
			t.Errorf("%v: Avro settings kept for Format %s: %+v, ID %d", tc.keys, c.Format, c.Registry, c.SchemaID)
		}
	}
}

// TestIdempotenceOffForItsConflicts: a setting librdkafka's idempotence
// cannot have turns it off, with a warning, unless the operator set
// enable.idempotence, or enable.gapless.guarantee, which needs it (then
// librdkafka's refusal names the keys).
func TestIdempotenceOffForItsConflicts(t *testing.T) {
	props := []string{"acks", "request.required.acks", "enable.idempotence", "max.in.flight", "max.in.flight.requests.per.connection",
		"retries", "message.send.max.retries", "enable.gapless.guarantee"}
	for _, tc := range []struct {
		keys    map[string]string
		want    string // enable.idempotence
		warning string // the start of the idempotence warning, if one
	}{
		{map[string]string{"rdkafka.acks": "1"}, "false", "rdkafka.acks 1, which librdkafka's idempotence cannot have: enable.idempotence is turned off"},
		{map[string]string{"rdkafka.acks": "ALL"}, "true", ""},
		{map[string]string{"rdkafka.request.required.acks": "-1"}, "true", ""},
		{map[string]string{"rdkafka.max.in.flight": "6"}, "false", "rdkafka.max.in.flight 6, which librdkafka's idempotence cannot have: enable.idempotence is turned off"},
		{map[string]string{"rdkafka.max.in.flight.requests.per.connection": "5"}, "true", ""},
		{map[string]string{"rdkafka.retries": "0", "rdkafka.max.in.flight": "10"}, "false", "rdkafka.max.in.flight 10, which librdkafka's idempotence cannot have: enable.idempotence is turned off"},
		{map[string]string{"rdkafka.message.send.max.retries": "0"}, "false", "rdkafka.message.send.max.retries 0, which librdkafka's idempotence cannot have: enable.idempotence is turned off"},
		{map[string]string{"rdkafka.retries": "3"}, "true", ""},
		{map[string]string{"rdkafka.acks": "1", "rdkafka.enable.idempotence": "true"}, "true", ""},
		{map[string]string{"rdkafka.acks": "1", "rdkafka.enable.gapless.guarantee": "true"}, "true", ""},
		{map[string]string{"rdkafka.acks": "1", "rdkafka.enable.gapless.guarantee": "false"}, "false", "rdkafka.acks 1, "},
		// Numbers as librdkafka reads them: strtol, base 0.
		{map[string]string{"rdkafka.acks": "-01"}, "true", ""},
		{map[string]string{"rdkafka.max.in.flight": "0x10"}, "false", "rdkafka.max.in.flight 0x10, "},
		{map[string]string{"rdkafka.retries": "00"}, "false", "rdkafka.retries 00, "},
	} {
		tc.keys["Brokers"] = "x:1"
		c, err := Load(MapGetter(tc.keys), props)
		if err != nil {
			t.Fatalf("%v: %v", tc.keys, err)
		}
		if got := rdkafkaMap(c)["enable.idempotence"]; got != tc.want {
			t.Errorf("%v: enable.idempotence %s, want %s", tc.keys, got, tc.want)
		}
		var warned []string
		for _, w := range c.Warnings {
			if strings.Contains(w, "enable.idempotence is turned off") {
				warned = append(warned, w)
			}
		}
		if tc.warning == "" && len(warned) != 0 || tc.warning != "" && (len(warned) != 1 || !strings.HasPrefix(warned[0], tc.warning)) {
			t.Errorf("%v: warnings %q, want one starting %q", tc.keys, c.Warnings, tc.warning)
		}
	}
}

// TestMaxBlockFitsFlushTimeout: Max_Block's default shrinks to a shorter
// Flush_Timeout; a Max_Block given longer is refused, naming both.
func TestMaxBlockFitsFlushTimeout(t *testing.T) {
	if c, err := Load(MapGetter{"Brokers": "x:1", "Flush_Timeout": "1s"}, nil); err != nil {
		t.Errorf("Flush_Timeout 1s alone: %v", err)
	} else if c.MaxBlock != time.Second {
		t.Errorf("Flush_Timeout 1s alone: Max_Block %v, want 1s", c.MaxBlock)
	}
	if _, err := Load(MapGetter{"Brokers": "x:1", "Flush_Timeout": "1s", "Max_Block": "1500ms"}, nil); err == nil ||
		!strings.HasPrefix(err.Error(), `Max_Block: invalid value "1500ms"`) || !strings.Contains(err.Error(), "Flush_Timeout (1s)") {
		t.Errorf("Max_Block over Flush_Timeout: %v", err)
	}
}

// TestBatchSizeOverBufferMemory: a Batch_Size larger than Buffer_Memory is
// refused, naming both, and so is the default, saying it is the default.
func TestBatchSizeOverBufferMemory(t *testing.T) {
	for _, tc := range []struct{ batchSize, want string }{
		{"", "Batch_Size: the default, 1048576 bytes, is larger than Buffer_Memory (1000000 bytes)"},
		{"2M", `Batch_Size: invalid value "2M": larger than Buffer_Memory (1000000 bytes)`},
	} {
		g := MapGetter{"Brokers": "x:1", "Buffer_Memory": "1M"}
		if tc.batchSize != "" {
			g["Batch_Size"] = tc.batchSize
		}
		if _, err := Load(g, nil); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Batch_Size %q: %v, want %q", tc.batchSize, err, tc.want)
		}
	}
	// Batch mode's default fits message.max.bytes first, and then Buffer_Memory.
	if c, err := Load(MapGetter{"Brokers": "x:1", "Buffer_Memory": "1000000", "Message_Mode": "batch"}, nil); err != nil || c.BatchSize >= 1000000 {
		t.Errorf("batch mode, Buffer_Memory 1000000: %v", err)
	}
}

// TestTimestampKeyOff: off, none and "" leave the timestamp out, in any case.
func TestTimestampKeyOff(t *testing.T) {
	for _, v := range []string{"off", "Off", "OFF", "none", "None", `""`} {
		if c, err := Load(MapGetter{"Brokers": "x:1", "Timestamp_Key": v}, nil); err != nil {
			t.Errorf("Timestamp_Key %s: %v", v, err)
		} else if c.TimestampKey != "" {
			t.Errorf("Timestamp_Key %s: %q, want none", v, c.TimestampKey)
		}
	}
}

func TestUnits(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100": 100, "1k": 1000, "64M": 64e6, "1.5M": 1.5e6, "2 MiB": 2 << 20, "1G": 1e9,
		"10KB": 10e3, "64MB": 64e6, "1GB": 1e9, "1.5MB": 1.5e6, "2mb": 2e6, "512KiB": 512 << 10, "1gib": 1 << 30, "7B": 7} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "-1", "1T", "99999999999G", "1e3", "0x10", "NaN", "Inf", "1_000"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	for in, want := range map[string]time.Duration{"0": 0, "5ms": 5 * time.Millisecond, "2s": 2 * time.Second, "1m30s": 90 * time.Second} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseDuration("5"); err == nil {
		t.Error("a bare number was accepted as a duration")
	}
	for n, want := range map[int64]string{64 << 20: "64MiB", 1 << 10: "1KiB", 64e6: "64M", 1000: "1K", 1001: "1001", 1 << 30: "1GiB", 2e9: "2G"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %s, want %s", n, got, want)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestValidTopic(t *testing.T) {
	for topic, want := range map[string]bool{"logs": true, "a.b_c-D9": true, "": false, ".": false, "..": false,
		"with space": false, "ünï": false, strings.Repeat("x", 249): true, strings.Repeat("x", 250): false} {
		if ValidTopic(topic) != want {
			t.Errorf("ValidTopic(%q) != %v", topic, want)
		}
	}
}

func TestShapingKeys(t *testing.T) {
	c, err := Load(MapGetter{"Brokers": "x:1", "Topic_Key": "$kubernetes['namespace_name']", "Dynamic_Topic": "On",
		"Header": "env prod, team  core team", "Header_Key": "app $kubernetes['labels']['app']", "Remove_Keys": "$a, $b['c']",
		"Message_Key_Field": "pod"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TopicKey.String() != "$kubernetes['namespace_name']" || !c.DynamicTopic || len(c.Headers) != 2 ||
		c.Headers[1] != (Header{"team", "core team"}) || c.HeaderKeys[0].Name != "app" || len(c.RemoveKeys) != 2 ||
		c.MessageKeyField.String() != "$pod" || c.KafkaTimestamp != "event" {
		t.Fatalf("%+v", c)
	}
}

// TestGELF: the GELF fields default to GELF's own names.
func TestGELF(t *testing.T) {
	c, err := Load(MapGetter{"Brokers": "x:1", "Format": "GELF", "Gelf_Short_Message_Key": "log", "Gelf_Host_Key": "$kubernetes['host']",
		"Include_Tag_Key": "on", "Tag_Key": "@timestamp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != "gelf" || c.GELF.ShortMessage.String() != "$log" || c.GELF.Host.String() != "$kubernetes['host']" ||
		c.GELF.FullMessage.String() != "$full_message" || c.GELF.Level.String() != "$level" || c.TimestampKey != "" {
		t.Fatalf("%+v", c)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %q", c.Warnings)
	}
}

// TestOTLP: the body is log or message by default, the other fields
// attributes.
func TestOTLP(t *testing.T) {
	c, err := Load(MapGetter{"Brokers": "x:1", "Format": "OTLP_Proto"}, nil)
	if err != nil || c.Format != "otlp_proto" || !slices.Equal(c.OTLP.BodyKeys, []string{"log", "message"}) || !c.OTLP.BodyAttributes {
		t.Fatalf("%v, %+v", err, c)
	}
	c, err = Load(MapGetter{"Brokers": "x:1", "Format": "otlp_json", "OTLP_Body_Key": "msg, text", "OTLP_Body_Key_Attributes": "off"}, nil)
	if err != nil || c.Format != "otlp_json" || !slices.Equal(c.OTLP.BodyKeys, []string{"msg", "text"}) || c.OTLP.BodyAttributes {
		t.Fatalf("%v, %+v", err, c)
	}
}

// TestOwnTimestamp: GELF's and OTLP's timestamp is the event time, so the
// keys that shape another one are ignored, with a warning; their consumers
// cannot read batch mode's messages.
func TestOwnTimestamp(t *testing.T) {
	for _, format := range []string{"gelf", "otlp_proto", "otlp_json"} {
		for key, value := range map[string]string{"Timestamp_Key": "ts", "Timestamp_Format": "epoch", "timestamp_key": "off"} {
			c, err := Load(MapGetter{"Brokers": "x:1", "Format": format, key: value}, nil)
			if warned := err == nil && len(c.Warnings) == 1 && strings.Contains(c.Warnings[0], "not used with Format "+format); err != nil || c.TimestampKey != "" || warned != (value != "off") {
				t.Errorf("%s %s with Format %s: %v, %+v", key, value, format, err, c)
			}
		}
		if _, err := Load(MapGetter{"Brokers": "x:1", "Format": format, "Message_Mode": "batch"}, nil); err == nil ||
			!strings.HasPrefix(err.Error(), `Format: invalid value "`+format+`": not supported with Message_Mode batch`) {
			t.Errorf("%s in batch mode: %v", format, err)
		}
	}
}

func TestBatchModeFitsMessages(t *testing.T) {
	c, err := Load(MapGetter{"Brokers": "x:1", "Message_Mode": "batch"}, nil)
	if err != nil || c.BatchSize > 1000000-4096 || c.compression() != "none" {
		t.Fatalf("default batch size %d, compression %s (%v)", c.BatchSize, c.compression(), err)
	}
	_, err = Load(MapGetter{"Brokers": "x:1", "Message_Mode": "batch", "Batch_Size": "4M", "rdkafka.message.max.bytes": "2000000"}, []string{"message.max.bytes"})
	if err == nil || !strings.HasPrefix(err.Error(), "Batch_Size: ") || !strings.Contains(err.Error(), "for rdkafka.message.max.bytes 2000000") {
		t.Fatalf("a batch larger than a message: %v", err)
	}
	// The limit read as librdkafka reads it: 0x200000 is 2 MiB.
	c, err = Load(MapGetter{"Brokers": "x:1", "Message_Mode": "batch", "Batch_Size": "2000000", "rdkafka.message.max.bytes": "0x200000"}, []string{"message.max.bytes"})
	if err != nil || c.MaxMessageBytes() != 2<<20 {
		t.Fatalf("message.max.bytes 0x200000: limit %d (%v)", c.MaxMessageBytes(), err)
	}
	// The operator's headers take room from the records.
	mmb := []string{"message.max.bytes"}
	header := MapGetter{"Brokers": "x:1", "Message_Mode": "batch", "rdkafka.message.max.bytes": "10000", "Header": "big " + strings.Repeat("h", 4000)}
	if c, err = Load(header, mmb); err != nil || c.BatchSize > 10000-4096-4000 || c.BatchSize < 1000 {
		t.Fatalf("a 4000-byte header: batch size %d (%v)", c.BatchSize, err)
	}
	header["Batch_Size"] = "5000"
	if _, err = Load(header, mmb); err == nil || !strings.HasSuffix(err.Error(), "for rdkafka.message.max.bytes 10000 beside the Header pairs") {
		t.Fatalf("Batch_Size 5000 with a 4000-byte header: %v", err)
	}
	delete(header, "Batch_Size")
	header["Header"] = "big " + strings.Repeat("h", 5000)
	if _, err = Load(header, mmb); err == nil || !strings.HasPrefix(err.Error(), "rdkafka.message.max.bytes: ") || !strings.Contains(err.Error(), "beside the Header pairs") {
		t.Fatalf("a 5000-byte header: %v", err)
	}
	// A message.max.bytes too small for a batch of Batch_Size's minimum.
	for _, v := range []string{"1000", "4000", "4096", "5000"} {
		_, err = Load(MapGetter{"Brokers": "x:1", "Message_Mode": "batch", "rdkafka.message.max.bytes": v}, []string{"message.max.bytes"})
		if err == nil || !strings.HasPrefix(err.Error(), "rdkafka.message.max.bytes: ") || !strings.Contains(err.Error(), v) {
			t.Errorf("message.max.bytes %s: %v", v, err)
		}
	}
}

func TestMSKIAM(t *testing.T) {
	const arn = "arn:aws:kafka:eu-west-1:123456789012:cluster/logs/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0-2"
	msk := "b-1.logs.a1b2c3.c2.kafka.us-east-2.amazonaws.com:9098,b-2.logs.a1b2c3.c2.kafka.us-east-2.amazonaws.com:9098"
	for _, tc := range []struct {
		keys          MapGetter
		region, proto string
	}{
		{MapGetter{"Brokers": "x:1", "AWS_MSK_IAM": "on", "AWS_MSK_IAM_Cluster_ARN": arn}, "eu-west-1", "SASL_SSL"},
		{MapGetter{"Brokers": msk, "AWS_MSK_IAM": "on"}, "us-east-2", "SASL_SSL"},
		{MapGetter{"Brokers": "boot-x1y2.c3.kafka-serverless.ap-south-1.amazonaws.com:9098", "AWS_MSK_IAM": "true"}, "ap-south-1", "SASL_SSL"},
		{MapGetter{"Brokers": "b-1.logs.d4e5f6.c2.kafka.cn-north-1.amazonaws.com.cn:9098", "AWS_MSK_IAM": "on"}, "cn-north-1", "SASL_SSL"},
		{MapGetter{"Brokers": "x:1", "AWS_MSK_IAM": "on", "AWS_MSK_IAM_Cluster_ARN": "arn:aws-us-gov:kafka:us-gov-west-1:123456789012:cluster/logs/0b1c"}, "us-gov-west-1", "SASL_SSL"},
		{MapGetter{"Brokers": "127.0.0.1:9092", "AWS_MSK_IAM": "on", "AWS_MSK_IAM_Cluster_ARN": arn,
			"rdkafka.security.protocol": "sasl_ssl", "rdkafka.sasl.mechanism": "OAUTHBEARER"}, "eu-west-1", "sasl_ssl"},
	} {
		c, err := Load(tc.keys, []string{"security.protocol", "sasl.mechanism"})
		if err != nil {
			t.Errorf("%v: %v", tc.keys, err)
			continue
		}
		props := rdkafkaMap(c)
		if c.MSKIAMRegion != tc.region || props["security.protocol"] != tc.proto || !strings.EqualFold(props["sasl.mechanism"], "OAUTHBEARER") || len(c.Warnings) != 0 {
			t.Errorf("%v: region %q, properties %v, warnings %q", tc.keys, c.MSKIAMRegion, props, c.Warnings)
		}
	}

	c, err := Load(MapGetter{"Brokers": "127.0.0.1:9092", "AWS_MSK_IAM": "on", "AWS_MSK_IAM_Cluster_ARN": arn,
		"rdkafka.security.protocol": "sasl_plaintext"}, []string{"security.protocol"})
	if err != nil || rdkafkaMap(c)["security.protocol"] != "sasl_plaintext" || len(c.Warnings) != 1 ||
		!strings.HasPrefix(c.Warnings[0], "rdkafka.security.protocol sasl_plaintext: the signed tokens cross the network unencrypted") {
		t.Errorf("AWS_MSK_IAM over SASL_PLAINTEXT: %v, %+v", err, c)
	}
	c, err = Load(MapGetter{"Brokers": msk, "AWS_MSK_IAM": "on", "AWS_MSK_IAM_Cluster_ARN": arn}, nil)
	if err != nil || c.MSKIAMRegion != "eu-west-1" || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "names region eu-west-1, the brokers us-east-2") {
		t.Errorf("ARN and brokers of different regions: %v, %+v", err, c)
	}
	c, err = Load(MapGetter{"Brokers": msk, "AWS_MSK_IAM_Cluster_ARN": arn}, nil)
	if err != nil || c.MSKIAMRegion != "" || rdkafkaMap(c)["sasl.mechanism"] != "" || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "not used with AWS_MSK_IAM off") {
		t.Errorf("ARN with AWS_MSK_IAM off: %v, %+v", err, c)
	}
	for _, brokers := range []string{"127.0.0.1:9092", msk + ",b-3.logs.a1b2c3.c2.kafka.us-west-1.amazonaws.com:9098", "kafka.us-east-1.example.com:9092"} {
		if _, err := Load(MapGetter{"Brokers": brokers, "AWS_MSK_IAM": "on"}, nil); err == nil || !strings.HasPrefix(err.Error(), "AWS_MSK_IAM_Cluster_ARN: required with AWS_MSK_IAM on") {
			t.Errorf("brokers %s without an ARN: %v", brokers, err)
		}
	}
	for _, kv := range [][2]string{{"security.protocol", "SSL"}, {"security.protocol", "plaintext"}, {"sasl.mechanism", "SCRAM-SHA-512"},
		{"sasl.mechanisms", "PLAIN"}, {"sasl.mechanism", "oauthbearer"}, {"sasl.oauthbearer.method", "oidc"}, {"enable.sasl.oauthbearer.unsecure.jwt", "true"}} {
		key, value := kv[0], kv[1]
		_, err := Load(MapGetter{"Brokers": msk, "AWS_MSK_IAM": "on", "rdkafka." + key: value}, []string{key})
		if err == nil || !strings.HasPrefix(err.Error(), "rdkafka."+key+": ") || !strings.Contains(err.Error(), "AWS_MSK_IAM on") {
			t.Errorf("rdkafka.%s %s with AWS_MSK_IAM: %v", key, value, err)
		}
		if _, err := Load(MapGetter{"Brokers": msk, "rdkafka." + key: value}, []string{key}); err != nil {
			t.Errorf("rdkafka.%s %s without AWS_MSK_IAM: %v", key, value, err)
		}
	}
}

func TestAvro(t *testing.T) {
	const schema = `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`
	for _, c := range []struct {
		keys MapGetter
		want string // the error, or the warning, or "registry" when the schema is to be fetched
	}{
		{MapGetter{"Schema_Str": schema, "Schema_ID": "3"}, ""},
		{MapGetter{"Schema_Str": "strin", "Schema_ID": "3"}, `Schema_Str: invalid value "strin": avro: unknown type: strin`},
		{MapGetter{"Schema_Str": schema, "Schema_ID": "3", "Schema_Registry_URL": "http://r:1"}, "warning: Schema_Registry_URL is not used: Schema_Str and Schema_ID are given"},
		{MapGetter{"Schema_Str": schema}, "Schema_ID: required with Schema_Str: the ID written before each value, that consumers look the schema up by"},
		{MapGetter{}, `Format: invalid value "avro": needs Schema_Str and Schema_ID, or Schema_Registry_URL`},
		{MapGetter{"Schema_Registry_URL": "http://r:1"}, "Schema_Registry_Subject: required with Schema_Registry_URL, unless Schema_ID names the schema"},
		{MapGetter{"Schema_Registry_URL": "http://r:1", "Schema_ID": "4"}, "registry"},
		{MapGetter{"Schema_Registry_URL": "http://r:1", "Schema_ID": "4", "Schema_Registry_Subject": "s"}, "registry; warning: Schema_ID is not used: the ID comes with Schema_Registry_Subject's schema"},
		{MapGetter{"Schema_Registry_URL": "http://r:1, https://s", "Schema_Registry_Subject": "logs-value", "Schema_Str": schema}, "registry; warning: Schema_Str is not used: the schema comes from Schema_Registry_URL"},
		// Credentials over http, but not to this machine.
		{MapGetter{"Schema_Registry_URL": "https://r:1, http://u:p@s:2, http://LocalHost:3", "Schema_ID": "4"},
			"registry; warning: Schema_Registry_URL 2 is http: the registry's credentials cross the network unencrypted (use https)"},
		{MapGetter{"Schema_Registry_URL": "http://r:1,http://[::1]:2,http://127.0.0.2:3", "Schema_ID": "4", "Schema_Registry_Bearer_Token": "t"},
			"registry; warning: Schema_Registry_URL 1 is http: the registry's credentials cross the network unencrypted (use https)"},
		{MapGetter{"Schema_Registry_URL": "http://r:1", "Schema_ID": "4", "Schema_Registry_HTTP_User": "u", "Schema_Str": schema},
			"warning: Schema_Registry_URL is not used: Schema_Str and Schema_ID are given"}, // no registry asked
		{MapGetter{"Schema_Str": schema, "Schema_ID": "3", "Message_Mode": "batch"}, `Format: invalid value "avro": not supported with Message_Mode batch: Avro deserializers read one record per Kafka message, not an LZ4 frame of them`},
	} {
		c.keys["Brokers"], c.keys["Format"] = "x:1", "avro"
		cfg, err := Load(c.keys, nil)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			if cfg.Schema == nil {
				got = "registry"
				if r := cfg.Registry; r.ID != cfg.SchemaID || r.Version != "latest" {
					t.Errorf("%v: registry %+v", c.keys, r)
				}
			} else if cfg.Registry.Enabled() {
				t.Errorf("%v: a schema and a registry", c.keys)
			}
			for _, w := range cfg.Warnings {
				got = strings.TrimPrefix(got+"; warning: "+w, "; ")
			}
		}
		if got != c.want {
			t.Errorf("%v:\ngot  %s\nwant %s", c.keys, got, c.want)
		}
	}
}

// TestProducerSettingsByMode: the librdkafka settings the plugin derives,
// in record mode and in batch mode (whose messages are LZ4 frames already,
// sent at once), and statistics only with Metrics_Listen.
func TestProducerSettingsByMode(t *testing.T) {
	record := map[string]string{
		"bootstrap.servers": "a:1,b:2", "client.id": "fb-7", "compression.type": "zstd", "enable.idempotence": "true",
		"acks": "all", "linger.ms": "1", "partitioner": "murmur2_random",
		"queue.buffering.max.messages": "2147483647", "queue.buffering.max.kbytes": "2147483647",
		"topic.metadata.propagation.max.ms": "2000",
	}
	for _, tc := range []struct {
		keys MapGetter
		want map[string]string // "" for a property that must not be set
	}{
		{MapGetter{"Compression": "zstd"}, record},
		{MapGetter{"Message_Mode": "batch"}, map[string]string{"compression.type": "none", "linger.ms": "0", "partitioner": "murmur2_random"}},
		{MapGetter{"Compression": "zstd"}, map[string]string{"statistics.interval.ms": ""}},
		{MapGetter{"Compression": "zstd", "Metrics_Listen": "127.0.0.1:2021"}, map[string]string{"statistics.interval.ms": "5000"}},
	} {
		tc.keys["Brokers"], tc.keys["Client_ID"] = "a:1,b:2", "fb-7"
		c, err := Load(tc.keys, nil)
		if err != nil {
			t.Fatalf("%v: %v", tc.keys, err)
		}
		got := rdkafkaMap(c)
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%v: %s = %q, want %q", tc.keys, k, got[k], v)
			}
		}
	}
}

// TestBoundsInclusive: every bound a key's error states is itself
// accepted, and the value just past it refused, naming the key.
func TestBoundsInclusive(t *testing.T) {
	for _, tc := range []struct {
		key, ok, bad string
		also         MapGetter // other keys the value needs
	}{
		{"Schema_ID", "2147483647", "2147483648", nil}, // the framing's ID is 4 bytes; beyond, it would wrap
		{"Schema_ID", "0", "-1", nil},
		{"Producers", "16", "17", nil},
		{"Dynamic_Topic_Limit", "1", "0", MapGetter{"Dynamic_Topic": "on", "Topic_Key": "$t"}},
		{"Dynamic_Topic_Limit", "1000000", "1000001", MapGetter{"Dynamic_Topic": "on", "Topic_Key": "$t"}},
		{"Producers", "1", "0", nil},
		{"Flush_Timeout", "100ms", "99ms", MapGetter{"Max_Block": "0"}},
		{"Flush_Timeout", "1h", "61m", nil},
		{"Max_Block", "1h", "61m", MapGetter{"Flush_Timeout": "1h"}},
		{"Linger", "1m", "61s", nil},
		{"Linger", "0", "-1ms", nil},
		{"Batch_Size", "1000", "999", nil},
		{"Batch_Size", "1GiB", "1073741825", MapGetter{"Buffer_Memory": "4GiB"}},
		{"Buffer_Memory", "1M", "999999", MapGetter{"Batch_Size": "1000"}},
	} {
		for _, v := range []string{tc.ok, tc.bad} {
			g := MapGetter{"Brokers": "x:1", tc.key: v}
			for k, x := range tc.also {
				g[k] = x
			}
			_, err := Load(g, nil)
			if v == tc.ok && err != nil {
				t.Errorf("%s %s, at its bound: %v", tc.key, v, err)
			}
			if v == tc.bad && (err == nil || !strings.HasPrefix(err.Error(), tc.key+": ")) {
				t.Errorf("%s %s, past its bound: %v, want an error naming %s", tc.key, v, err, tc.key)
			}
		}
	}
	// A Batch_Size of all Buffer_Memory is allowed ("at most Buffer_Memory").
	if _, err := Load(MapGetter{"Brokers": "x:1", "Batch_Size": "2M", "Buffer_Memory": "2M"}, nil); err != nil {
		t.Errorf("Batch_Size equal to Buffer_Memory: %v", err)
	}
}

// TestBooleanForms: the words read as on and as off.
func TestBooleanForms(t *testing.T) {
	for v, want := range map[string]bool{"on": true, "On": true, "true": true, "yes": true, "YES": true, "1": true,
		"off": false, "OFF": false, "false": false, "no": false, "No": false, "0": false} {
		c, err := Load(MapGetter{"Brokers": "x:1", "Include_Tag_Key": v, "Dynamic_Topic": v}, nil)
		if err != nil || c.IncludeTagKey != want || c.DynamicTopic != want {
			t.Errorf("%q: %v, Include_Tag_Key %v, Dynamic_Topic %v; want %v", v, err, c != nil && c.IncludeTagKey, c != nil && c.DynamicTopic, want)
		}
	}
}

// TestRegistrySettingsKept: the Schema Registry keys reach the registry
// configuration.
func TestRegistrySettingsKept(t *testing.T) {
	c, err := Load(MapGetter{"Brokers": "x:1", "Format": "avro", "Schema_Registry_URL": "https://r:8081", "Schema_Registry_Subject": "logs-value",
		"Schema_Registry_Version": "3", "Schema_Registry_HTTP_User": "u", "Schema_Registry_HTTP_Passwd": "p", "Schema_Registry_Bearer_Token": "tok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Registry
	if len(r.URLs) != 1 || r.URLs[0] != "https://r:8081" || r.Subject != "logs-value" || r.Version != "3" || r.User != "u" || r.Password != "p" || r.BearerToken != "tok" {
		t.Errorf("registry %+v", r)
	}
}

// TestEveryBatchHeaderRefused: in batch mode a static Header may not take
// the name of any header the plugin sets on a batch message (as README
// lists them), in any case.
func TestEveryBatchHeaderRefused(t *testing.T) {
	for _, name := range []string{"content-type", "content-encoding", "gokafka.records", "gokafka.first_time", "gokafka.last_time", "GoKafka.First_Time"} {
		if _, err := Load(MapGetter{"Brokers": "x:1", "Message_Mode": "batch", "Header": name + " x"}, nil); err == nil || !strings.HasPrefix(err.Error(), "Header: ") {
			t.Errorf("Header %s in batch mode: %v", name, err)
		}
	}
}

// TestNoRdkafkaKeysNoUserProperties: the rdkafka.* keys asked for but not
// given add no property: the plugin's settings stand.
func TestNoRdkafkaKeysNoUserProperties(t *testing.T) {
	c, err := Load(MapGetter{"Brokers": "x:1", "rdkafka.debug": "broker"}, []string{"acks", "linger.ms", "compression.type", "debug", "message.max.bytes"})
	if err != nil {
		t.Fatal(err)
	}
	var user []Property
	for _, p := range c.Rdkafka {
		if p.FromUser {
			user = append(user, p)
		}
	}
	if len(user) != 1 || user[0] != (Property{"debug", "broker", true}) || rdkafkaMap(c)["acks"] != "all" {
		t.Errorf("operator's properties %v, acks %q", user, rdkafkaMap(c)["acks"])
	}
}
