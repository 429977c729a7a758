// Package conf reads and validates the plugin's [OUTPUT] keys.
//
// Every key lives in one table (Options) with its type, default and a one-line
// doc; Load reads them through a Getter so tests can use a map.
package conf

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/encode"
	"github.com/gokafka/gokafka/ra"
	"github.com/gokafka/gokafka/registry"
	"github.com/hamba/avro/v2"
)

// Getter looks a configuration key up, case-insensitively; "" means unset.
type Getter interface {
	Get(key string) string
}

// MapGetter is a Getter over a map, for tests and tools.
type MapGetter map[string]string

// Get returns the value whose key matches case-insensitively.
func (m MapGetter) Get(key string) string {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// RdkafkaPrefix starts every key passed through to librdkafka.
const RdkafkaPrefix = "rdkafka."

// Config is one instance's validated configuration.
type Config struct {
	Brokers           string
	Topics            []string // Topics[0] is the default topic
	TopicKey          ra.Path  // nil: every record goes to the default topic
	DynamicTopic      bool     // TopicKey may name topics outside Topics
	DynamicTopicLimit int      // with DynamicTopic: how many names outside Topics it may name
	Format            string   // json, msgpack, raw, logfmt, gelf, otlp_proto, otlp_json or avro
	RawLogKey         ra.Path
	GELF              GELFKeys
	OTLP              encode.OTLP
	Schema            avro.Schema // Format avro: Schema_Str's, nil to fetch it from Registry
	SchemaID          int
	Registry          registry.Config
	TimestampKey      string // "" leaves the timestamp out
	TimestampFormat   string
	KafkaTimestamp    string // event or produce
	IncludeTagKey     bool
	TagKey            string
	RemoveKeys        []ra.Path
	MessageKey        string
	MessageKeyField   ra.Path
	Headers           []Header // static
	HeaderKeys        []HeaderKey
	MetadataHeaders   bool
	DLQTopic          string // "" drops records Kafka refuses for good
	MessageMode       string // record or batch
	MetricsListen     string // host:port of the Prometheus endpoint, "" for none
	MetricsInstance   string // the instance's name in logs and metrics, "" for the plugin's
	BatchSize         int64
	Linger            time.Duration
	BufferMemory      int64
	MaxBlock          time.Duration
	FlushTimeout      time.Duration
	Compression       string
	ClientID          string
	Producers         int
	// MSKIAMRegion is the AWS region that signs Amazon MSK IAM tokens, ""
	// when AWS_MSK_IAM is off.
	MSKIAMRegion string
	// Rdkafka holds librdkafka properties: the plugin's own settings first,
	// then the operator's rdkafka.* keys, which win.
	Rdkafka []Property
	// Warnings are Init's log lines about settings accepted: unused,
	// overridden, or weakening delivery or metrics.
	Warnings []string

	schemaStr    string // Schema_Str, read with Format avro
	mskIAM       bool   // AWS_MSK_IAM
	mskARNRegion string // of AWS_MSK_IAM_Cluster_ARN
}

// IsOTLP reports an OpenTelemetry format, otlp_proto or otlp_json.
func (c *Config) IsOTLP() bool { return c.Format == "otlp_proto" || c.Format == "otlp_json" }

// GELFKeys are the fields Format gelf takes GELF's own from.
type GELFKeys struct {
	ShortMessage, FullMessage, Host, Level ra.Path
}

// Header is a static Kafka header.
type Header struct{ Name, Value string }

// HeaderKey is a Kafka header taken from a record field.
type HeaderKey struct {
	Name string
	Path ra.Path
}

// Property is one librdkafka configuration property.
type Property struct {
	Key, Value string
	FromUser   bool // given as an rdkafka.* key
}

// Option describes one [OUTPUT] key.
type Option struct {
	Name    string
	Type    string
	Default string
	Doc     string
	set     func(c *Config, v string) error
}

// Options is the table of every key the plugin reads, in documentation order.
var Options = []Option{
	{"Brokers", "string", "", "Comma-separated bootstrap brokers, host:port (required); the port defaults to 9092, and a protocol:// prefix must name rdkafka.security.protocol's.",
		func(c *Config, v string) error {
			if v == "" {
				return nil // required: checked after every option
			}
			for _, b := range strings.Split(v, ",") {
				if b = strings.TrimSpace(b); b == "" || strings.ContainsAny(b, " \t") {
					return fmt.Errorf("want host:port[,host:port...]")
				}
				if _, err := checkBroker(b); err != nil {
					return err
				}
			}
			c.Brokers = v
			return nil
		}},
	{"Topics", "list", "fluent-bit", "Comma-separated topics; the first is the default topic.",
		func(c *Config, v string) error { c.Topics = splitList(v); return checkTopics(c.Topics) }},
	{"Topic_Key", "record accessor", "", "Field whose value names the record's topic, e.g. $kubernetes['namespace_name']; a record without it (or with a value that cannot name a topic) goes to the first topic, counted and logged at most once a minute (missing values at debug level while other records have it).",
		path(func(c *Config) *ra.Path { return &c.TopicKey })},
	{"Dynamic_Topic", "bool", "off", "Let Topic_Key name any valid topic but DLQ_Topic, up to Dynamic_Topic_Limit of them outside Topics; off keeps it to the Topics list. Other values go to the first topic. On, a record names the topic: limit which with the producer's ACLs.",
		boolean(func(c *Config) *bool { return &c.DynamicTopic })},
	{"Dynamic_Topic_Limit", "integer", "1000", "With Dynamic_Topic on: how many topics outside Topics records may name (each keeps a librdkafka topic handle and metrics); records naming another go to the first topic, counted and logged at most once a minute.",
		integer(func(c *Config) *int { return &c.DynamicTopicLimit }, 1, 1_000_000)},
	{"Format", "enum", "json", "Message value format: json, msgpack, logfmt, gelf (GELF 1.1 JSON, for Graylog), otlp_proto or otlp_json (an OpenTelemetry log record, as the OpenTelemetry Collector's Kafka receiver reads it), avro (Confluent-framed Avro, of Schema_Str or from Schema_Registry_URL), or raw (the bytes of Raw_Log_Key). gelf, otlp_* and avro are not for Message_Mode batch.",
		enum(func(c *Config) *string { return &c.Format }, "json", "msgpack", "logfmt", "gelf", "otlp_proto", "otlp_json", "avro", "raw")},
	{"Raw_Log_Key", "record accessor", "", "Field sent as the whole value in raw format; records without it (or with it null) are skipped and counted.",
		path(func(c *Config) *ra.Path { return &c.RawLogKey })},
	{"Gelf_Short_Message_Key", "record accessor", "short_message", "Field sent as GELF's short_message (text; a map or array as its JSON); records without it (or with it null or blank) are skipped and counted.",
		path(func(c *Config) *ra.Path { return &c.GELF.ShortMessage })},
	{"Gelf_Full_Message_Key", "record accessor", "full_message", "Field sent as GELF's full_message.",
		path(func(c *Config) *ra.Path { return &c.GELF.FullMessage })},
	{"Gelf_Host_Key", "record accessor", "host", "Field sent as GELF's host, e.g. $kubernetes['host']; records without it (or with it null or blank) get the machine's host name.",
		path(func(c *Config) *ra.Path { return &c.GELF.Host })},
	{"Gelf_Level_Key", "record accessor", "level", "Field sent as GELF's level when it holds a syslog severity, 0-7 or its name (err, error, warn, info, ...); else it stays an additional field.",
		path(func(c *Config) *ra.Path { return &c.GELF.Level })},
	{"OTLP_Body_Key", "list", "log,message", "With Format otlp_*: names of top-level fields tried in turn for the log record's body (not record accessors); a record with none of them is the body whole.",
		func(c *Config, v string) error {
			c.OTLP.BodyKeys = splitList(v)
			if i := slices.IndexFunc(c.OTLP.BodyKeys, func(k string) bool { return strings.HasPrefix(k, "$") }); i >= 0 {
				return fmt.Errorf("%s: a top-level field's name, without $", c.OTLP.BodyKeys[i])
			}
			return nil
		}},
	{"OTLP_Body_Key_Attributes", "bool", "on", "With Format otlp_*: when a field of OTLP_Body_Key is the body, the record's other fields become log attributes; off leaves them out, as Fluent Bit's kafka output does.",
		boolean(func(c *Config) *bool { return &c.OTLP.BodyAttributes })},
	{"Schema_Str", "string", "", "With Format avro: the Avro schema (JSON, a record) the records are written in; with Schema_ID, no registry is asked.",
		func(c *Config, v string) error { c.schemaStr = v; return nil }},
	{"Schema_ID", "integer", "0", "With Format avro: the schema's ID in the Schema Registry, written before each value (Confluent's framing); with Schema_Registry_URL and no subject, the schema fetched.",
		integer(func(c *Config) *int { return &c.SchemaID }, 0, math.MaxInt32)},
	{"Schema_Registry_URL", "list", "", "With Format avro: Confluent Schema Registry base URLs (http or https), tried in turn for the schema at Init; until one answers, chunks are retried, a flush asking again and waiting up to 1 s for the answer.",
		func(c *Config, v string) error {
			c.Registry.URLs = splitList(v)
			for i, u := range c.Registry.URLs { // by number: a URL may hold a password
				if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
					return fmt.Errorf("URL %d: want http://host:port or https://host:port", i+1)
				}
			}
			return nil
		}},
	{"Schema_Registry_Subject", "string", "", "With Schema_Registry_URL: the subject whose schema (and its ID) is fetched, e.g. logs-value.",
		func(c *Config, v string) error {
			if v == "." || v == ".." { // the registry's URL path would lose it
				return errors.New("not a subject")
			}
			c.Registry.Subject = v
			return nil
		}},
	{"Schema_Registry_Version", "string", "latest", "With Schema_Registry_Subject: the version fetched, latest or a number; fetched once (at Init, or by later flushes until the registry answers), never refreshed.",
		func(c *Config, v string) error {
			if n, err := strconv.Atoi(v); v != "latest" && (err != nil || n < 1) {
				return fmt.Errorf("want latest or a version number")
			}
			c.Registry.Version = v
			return nil
		}},
	{"Schema_Registry_HTTP_User", "string", "", "With Schema_Registry_URL: the user of HTTP basic authentication.",
		func(c *Config, v string) error { c.Registry.User = v; return nil }},
	{"Schema_Registry_HTTP_Passwd", "string", "", "With Schema_Registry_HTTP_User: its password.",
		func(c *Config, v string) error { c.Registry.Password = v; return nil }},
	{"Schema_Registry_Bearer_Token", "string", "", "With Schema_Registry_URL: a bearer token, sent when no user is set.",
		func(c *Config, v string) error { c.Registry.BearerToken = v; return nil }},
	{"Timestamp_Key", "string", "@timestamp", "Field that receives the record's time, unless the record has that field already; off (or none, or \"\") leaves it out.",
		func(c *Config, v string) error {
			c.TimestampKey = v
			switch strings.ToLower(v) {
			case "off", `""`, "none":
				c.TimestampKey = ""
			}
			return nil
		}},
	{"Timestamp_Format", "enum", "iso8601_ns", "Format of Timestamp_Key: double, epoch (s), epoch_ms, epoch_ns, iso8601 (µs), iso8601_ns or java_sql_timestamp (2006-01-02 15:04:05.000000).",
		enum(func(c *Config) *string { return &c.TimestampFormat }, "double", "epoch", "epoch_ms", "epoch_ns", "iso8601", "iso8601_ns", "java_sql_timestamp")},
	{"Kafka_Timestamp", "enum", "event", "Kafka message timestamp: the record's event time (in batch mode its records' latest; one ahead of the clock, or one the topic refuses as too old, goes out as the produce time), or the produce time.",
		enum(func(c *Config) *string { return &c.KafkaTimestamp }, "event", "produce")},
	{"Include_Tag_Key", "bool", "off", "Add the Fluent Bit tag to each record under Tag_Key.",
		boolean(func(c *Config) *bool { return &c.IncludeTagKey })},
	{"Tag_Key", "string", "tag", "Field that receives the tag when Include_Tag_Key is on, unless the record has that field already.",
		func(c *Config, v string) error { c.TagKey = v; return nil }},
	{"Remove_Keys", "list", "", "Record accessors of fields left out of the value, e.g. the routing fields: $topic, $kubernetes['labels'] (map fields; an array index is refused).",
		func(c *Config, v string) error {
			for _, p := range splitList(v) {
				path, err := ra.Parse(p)
				if err != nil {
					return err
				}
				if slices.ContainsFunc(path, func(s ra.Segment) bool { return s.IsIndex }) {
					return fmt.Errorf("%s: removing array elements is not supported", p)
				}
				c.RemoveKeys = append(c.RemoveKeys, path)
			}
			return nil
		}},
	{"Message_Key", "string", "", "Static key of every message, or the key when Message_Key_Field is missing; empty sends no key. With Message_Mode batch a key is not sent: it picks the record's partition (murmur2).",
		func(c *Config, v string) error { c.MessageKey = v; return nil }},
	{"Message_Key_Field", "record accessor", "", "Field whose value is the message key: text as it is (an empty string is an empty key, not a null one), numbers in decimal, booleans as true or false, maps and arrays as JSON; a missing or null field gives Message_Key. Keys are partitioned by murmur2 as the Java client does; with Message_Mode batch a key is not sent, it only picks the record's partition.",
		path(func(c *Config) *ra.Path { return &c.MessageKeyField })},
	{"Header", "list", "", "Static headers: comma-separated `name value` pairs, e.g. `env prod, team core`; in batch mode not named as a batch header.",
		func(c *Config, v string) error {
			return eachPair(v, "value", func(name, value string) error {
				c.Headers = append(c.Headers, Header{name, value})
				return nil
			})
		}},
	{"Header_Key", "list", "", "Headers from fields: comma-separated `name $path` pairs, the value rendered as Message_Key_Field's; a missing or null field sends no header. Not supported with Message_Mode batch.",
		func(c *Config, v string) error {
			return eachPair(v, "$path", func(name, value string) error {
				path, err := ra.Parse(value)
				if err == nil {
					c.HeaderKeys = append(c.HeaderKeys, HeaderKey{name, path})
				}
				return err
			})
		}},
	{"Metadata_Headers", "bool", "off", "Send each entry of the record's metadata map (Fluent Bit 2.1+) as a header. Not supported with Message_Mode batch.",
		boolean(func(c *Config) *bool { return &c.MetadataHeaders })},
	{"DLQ_Topic", "string", "", "Dead-letter topic for records Kafka refuses for good (too large, invalid), with headers saying why; empty drops them. Not supported with Message_Mode batch.",
		func(c *Config, v string) error {
			if v != "" && !ValidTopic(v) {
				return fmt.Errorf("not a valid Kafka topic name")
			}
			c.DLQTopic = v
			return nil
		}},
	{"Metrics_Listen", "host:port", "", "Serve Prometheus metrics at http://host:port/metrics (instances may share one); empty serves none.",
		func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
				return fmt.Errorf("want host:port, e.g. 0.0.0.0:2021")
			}
			c.MetricsListen = v
			return nil
		}},
	{"Metrics_Instance", "string", "", "The instance's name in its log lines and the instance label of its metrics; by default gokafka.N, N counting this plugin's instances in configuration order. Instances sharing a Metrics_Listen address need different names.",
		func(c *Config, v string) error {
			if !utf8.ValidString(v) { // Prometheus would refuse every scrape of the address
				return errors.New("not UTF-8")
			}
			c.MetricsInstance = v
			return nil
		}},
	{"Message_Mode", "enum", "record", "record: one Kafka message per record; batch: one per batch, an LZ4 frame of its records (NDJSON; with Format msgpack a msgpack stream; logfmt and raw, newline-terminated text).",
		enum(func(c *Config) *string { return &c.MessageMode }, "record", "batch")},
	{"Batch_Size", "size", "1MiB", "Bytes gathered per topic and producer (with Message_Mode batch, per topic and partition) before a batch is sent, counted as Buffer_Memory counts them; at most Buffer_Memory. With Message_Mode batch, a batch message's uncompressed bytes: at most what fits rdkafka.message.max.bytes beside the Header pairs (992013 bytes for its default, without them): the default shrinks to it, a larger value fails Init.",
		size(func(c *Config) *int64 { return &c.BatchSize }, minBatchSize, 1<<30)},
	{"Linger", "duration", "5ms", "Longest wait for a batch to fill; a waiting flush sends its batches at once.",
		duration(func(c *Config) *time.Duration { return &c.Linger }, 0, time.Minute)},
	{"Buffer_Memory", "size", "64MiB", "Bound on the instance's buffered records, sent or not yet acknowledged, with librdkafka's share: a record counts its bytes, its key and headers once more, and 232 bytes (with Message_Mode batch, its compressed bytes).",
		size(func(c *Config) *int64 { return &c.BufferMemory }, 1e6, 1<<40)},
	{"Max_Block", "duration", "2s", "Longest a flush waits for buffer memory before it returns a retry; at most Flush_Timeout (the default shrinks to it).",
		duration(func(c *Config) *time.Duration { return &c.MaxBlock }, 0, time.Hour)},
	{"Flush_Timeout", "duration", "4s", "Longest a flush waits for Kafka's acknowledgements before it returns a retry; 250ms at most while Kafka acknowledges nothing.",
		duration(func(c *Config) *time.Duration { return &c.FlushTimeout }, 100*time.Millisecond, time.Hour)},
	{"Compression", "enum", "lz4", "Compression codec: none, gzip, snappy, lz4 or zstd; batch mode's messages are LZ4 frames, and take only lz4.",
		enum(func(c *Config) *string { return &c.Compression }, "none", "gzip", "snappy", "lz4", "zstd")},
	{"Client_ID", "string", "fluent-bit", "Kafka client.id of the producer.",
		func(c *Config, v string) error { c.ClientID = v; return nil }},
	{"Producers", "integer", "2", "Most librdkafka producers: with Workers 2 or more, a flush that starts while others run gets its own (own connections and broker threads) until this many exist; a chunk's records go through one, in order; 1 keeps one set of connections.",
		integer(func(c *Config) *int { return &c.Producers }, 1, 16)},
	{"AWS_MSK_IAM", "bool", "off", "Authenticate to Amazon MSK with IAM: OAUTHBEARER tokens signed with the AWS credentials of the default chain (environment, shared files, EKS web identity or Pod Identity, ECS, EC2 instance role); sets rdkafka.security.protocol SASL_SSL and rdkafka.sasl.mechanism OAUTHBEARER.",
		boolean(func(c *Config) *bool { return &c.mskIAM })},
	{"AWS_MSK_IAM_Cluster_ARN", "string", "", "ARN of the MSK cluster, whose region signs the tokens; without it, the region of the brokers' MSK host names (b-1.NAME.ID.c2.kafka.REGION.amazonaws.com).",
		func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			if c.mskARNRegion = regionOfARN(v); c.mskARNRegion == "" {
				return fmt.Errorf("want arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/ID")
			}
			return nil
		}},
}

// mskARN matches an MSK cluster ARN; its group is the region.
var mskARN = regexp.MustCompile(`^arn:[a-z-]+:kafka:([a-z0-9-]+):[0-9]*:cluster/.+`)

// mskHost matches an MSK broker's host:port (provisioned or serverless);
// its group is the region.
var mskHost = regexp.MustCompile(`\.kafka(?:-serverless)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::[0-9]+)?$`)

func regionOfARN(arn string) string {
	if m := mskARN.FindStringSubmatch(arn); m != nil {
		return m[1]
	}
	return ""
}

// regionOfBrokers returns the region every broker's MSK host name names,
// or "".
func regionOfBrokers(brokers string) string {
	region := ""
	for _, b := range splitList(brokers) {
		m := mskHost.FindStringSubmatch(strings.ToLower(b))
		if m == nil || region != "" && m[1] != region {
			return ""
		}
		region = m[1]
	}
	return region
}

// minBatchSize is Batch_Size's lower bound.
const minBatchSize = 1000

// Error names the key whose value was refused.
type Error struct {
	Key, Value, Reason string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Key, e.Reason)
	}
	return fmt.Sprintf("%s: invalid value %q: %s", e.Key, e.Value, e.Reason)
}

// Load reads every option from g, then the rdkafka.<name> key for each of
// rdkafkaProps (the plugin cannot list the keys it was given, so it asks for
// every property librdkafka knows).
func Load(g Getter, rdkafkaProps []string) (*Config, error) {
	c := &Config{}
	for _, o := range Options {
		v := strings.TrimSpace(g.Get(o.Name))
		user := v != ""
		if !user {
			v = o.Default
		}
		if err := o.set(c, v); err != nil {
			if !user {
				panic(fmt.Sprintf("conf: default of %s: %v", o.Name, err))
			}
			if o.Name == "Schema_Registry_URL" {
				v = "" // not repeated: a URL may hold a password
			}
			return nil, &Error{Key: o.Name, Value: v, Reason: err.Error()}
		}
	}
	if c.Brokers == "" {
		return nil, &Error{Key: "Brokers", Reason: "required, e.g. Brokers 127.0.0.1:9092"}
	}
	if slices.Contains(c.Topics, c.DLQTopic) {
		return nil, &Error{Key: "DLQ_Topic", Value: c.DLQTopic, Reason: "one of Topics: dead letters would mix with records"}
	}
	if c.Format == "raw" && c.RawLogKey == nil {
		return nil, &Error{Key: "Raw_Log_Key", Reason: "required with Format raw"}
	}
	c.warnUnused(g)
	if c.Format == "gelf" || c.IsOTLP() {
		if c.TimestampKey != "" && g.Get("Timestamp_Key") != "" || g.Get("Timestamp_Format") != "" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("Timestamp_Key and Timestamp_Format are not used with Format %s, which has a timestamp field of its own", c.Format))
		}
		c.TimestampKey = ""
	}
	if c.Format == "avro" {
		if err := c.checkAvro(); err != nil {
			return nil, err
		}
	}
	if c.IncludeTagKey && c.TagKey == c.TimestampKey {
		return nil, &Error{Key: "Tag_Key", Value: c.TagKey, Reason: "the same field as Timestamp_Key: one would hide the other"}
	}
	if c.MaxBlock > c.FlushTimeout {
		if g.Get("Max_Block") == "" { // its default shrinks to fit
			c.MaxBlock = c.FlushTimeout
		} else {
			return nil, &Error{Key: "Max_Block", Value: g.Get("Max_Block"), Reason: fmt.Sprintf("longer than Flush_Timeout (%v)", c.FlushTimeout)}
		}
	}
	if err := c.checkBatchMode(); err != nil {
		return nil, err
	}
	if err := c.setMSKIAMRegion(); err != nil {
		return nil, err
	}
	if err := c.loadRdkafka(g, rdkafkaProps); err != nil {
		return nil, err
	}
	if c.MessageMode == "batch" { // message.max.bytes may have changed the limit
		if err := c.checkBatchSize(g); err != nil {
			return nil, err
		}
	}
	if c.BatchSize > c.BufferMemory {
		reason := fmt.Sprintf("larger than Buffer_Memory (%d bytes)", c.BufferMemory)
		if g.Get("Batch_Size") == "" { // a Batch_Size of all Buffer_Memory would send one batch at a time
			reason = fmt.Sprintf("the default, %d bytes, is %s: set Batch_Size to a fraction of it", c.BatchSize, reason)
		}
		return nil, &Error{Key: "Batch_Size", Value: g.Get("Batch_Size"), Reason: reason}
	}
	if err := c.checkBrokerProtocols(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkBatchMode refuses, with Message_Mode batch, the settings a batch
// message cannot have.
func (c *Config) checkBatchMode() error {
	if c.MessageMode != "batch" {
		return nil
	}
	const many = "not supported with Message_Mode batch: a batch message holds records of many chunks"
	switch {
	case c.DLQTopic != "":
		return &Error{Key: "DLQ_Topic", Reason: many + " and Kafka refuses it whole"}
	case c.HeaderKeys != nil:
		return &Error{Key: "Header_Key", Reason: many + ", and its headers are the batch's (static Header pairs are sent)"}
	case c.MetadataHeaders:
		return &Error{Key: "Metadata_Headers", Reason: many + ", and its headers are the batch's (static Header pairs are sent)"}
	case c.Format == "gelf":
		return &Error{Key: "Format", Value: "gelf", Reason: "not supported with Message_Mode batch: Graylog reads one GELF message per Kafka message, not an LZ4 frame of them"}
	case c.IsOTLP():
		return &Error{Key: "Format", Value: c.Format, Reason: "not supported with Message_Mode batch: the OpenTelemetry Collector reads one OTLP message per Kafka message, not an LZ4 frame of them"}
	case c.Format == "avro":
		return &Error{Key: "Format", Value: c.Format, Reason: "not supported with Message_Mode batch: Avro deserializers read one record per Kafka message, not an LZ4 frame of them"}
	case c.Compression != "lz4":
		return &Error{Key: "Compression", Value: c.Compression, Reason: "with Message_Mode batch every message is an LZ4 frame"}
	}
	for _, h := range c.Headers {
		if slices.ContainsFunc(batch.Headers, func(name string) bool { return strings.EqualFold(name, h.Name) }) {
			return &Error{Key: "Header", Value: h.Name, Reason: "with Message_Mode batch the plugin sets this header on every batch message"}
		}
	}
	return nil
}

// setMSKIAMRegion sets the region AWS_MSK_IAM signs its tokens for.
func (c *Config) setMSKIAMRegion() error {
	if c.mskIAM {
		brokersRegion := regionOfBrokers(c.Brokers)
		if c.MSKIAMRegion = cmp.Or(c.mskARNRegion, brokersRegion); c.MSKIAMRegion == "" {
			return &Error{Key: "AWS_MSK_IAM_Cluster_ARN", Reason: "required with AWS_MSK_IAM on when the brokers are not MSK host names that name the region"}
		}
		if brokersRegion != "" && brokersRegion != c.MSKIAMRegion {
			c.Warnings = append(c.Warnings, fmt.Sprintf("AWS_MSK_IAM_Cluster_ARN names region %s, the brokers %s: tokens are signed for %s", c.MSKIAMRegion, brokersRegion, c.MSKIAMRegion))
		}
	} else if c.mskARNRegion != "" {
		c.Warnings = append(c.Warnings, "AWS_MSK_IAM_Cluster_ARN is not used with AWS_MSK_IAM off")
	}
	return nil
}

// loadRdkafka sets the producer's librdkafka properties: the plugin's
// defaults, then the rdkafka.<name> keys among props that g has.
func (c *Config) loadRdkafka(g Getter, props []string) error {
	c.Rdkafka = c.producerDefaults()
	idempotenceSet, conflict := false, "" // by the operator; a setting idempotence cannot have
	for _, p := range props {
		if v := g.Get(RdkafkaPrefix + p); v != "" {
			if reason := c.refused(p, v); reason != "" {
				return &Error{Key: RdkafkaPrefix + p, Value: v, Reason: reason}
			}
			if risk := c.weakens(p, v); risk != "" {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s%s %s: %s", RdkafkaPrefix, p, v, risk))
			}
			// The gapless guarantee needs idempotence: asking for it asks
			// for idempotence too.
			gapless, _ := rdkafkaBool(v)
			idempotenceSet = idempotenceSet || p == "enable.idempotence" || p == "enable.gapless.guarantee" && gapless
			if conflict == "" && conflictsWithIdempotence(p, v) {
				conflict = RdkafkaPrefix + p + " " + v
			}
			c.Rdkafka = append(c.Rdkafka, Property{Key: p, Value: v, FromUser: true})
		}
	}
	if conflict != "" && !idempotenceSet {
		// As the Java client does (KIP-679), rather than fail at Init.
		for i := range c.Rdkafka {
			if c.Rdkafka[i].Key == "enable.idempotence" {
				c.Rdkafka[i].Value = "false"
			}
		}
		c.Warnings = append(c.Warnings, conflict+", which librdkafka's idempotence cannot have: enable.idempotence is turned off, so "+
			idempotenceOff+" (rdkafka.enable.idempotence true refuses the setting instead)")
	}
	return nil
}

// warnUnused warns of keys that the other settings leave without effect (a
// switch when on), and drops the Avro settings of another format.
func (c *Config) warnUnused(g Getter) {
	unused := func(set bool, key, cond string) {
		if set {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s is not used %s", key, cond))
		}
	}
	if c.Format != "avro" {
		for _, k := range []string{"Schema_Str", "Schema_ID", "Schema_Registry_URL", "Schema_Registry_Subject", "Schema_Registry_Version",
			"Schema_Registry_HTTP_User", "Schema_Registry_HTTP_Passwd", "Schema_Registry_Bearer_Token"} {
			unused(g.Get(k) != "", k, "with Format "+c.Format+": only Format avro writes Avro")
		}
		c.schemaStr, c.SchemaID, c.Registry = "", 0, registry.Config{}
	}
	if c.Format == "raw" {
		const raw = "with Format raw, which sends Raw_Log_Key's value as it is"
		for _, k := range []string{"Timestamp_Key", "Timestamp_Format", "Tag_Key", "Remove_Keys"} {
			unused(g.Get(k) != "", k, raw)
		}
		unused(c.IncludeTagKey, "Include_Tag_Key", raw)
	}
	unused(c.Format != "raw" && c.RawLogKey != nil, "Raw_Log_Key", "with Format "+c.Format+": it is Format raw's value")
	unused(c.DynamicTopic && c.TopicKey == nil, "Dynamic_Topic", "without Topic_Key")
	unused(!c.DynamicTopic && g.Get("Dynamic_Topic_Limit") != "", "Dynamic_Topic_Limit", "with Dynamic_Topic off")
}

// checkBroker checks one bootstrap broker, [protocol://]host[:port] with
// an IPv6 host in brackets when a port follows, more strictly than
// librdkafka reads it: librdkafka would take a port it cannot read (abc,
// 65537, 9092/) for another one, and no host for localhost. It returns the
// protocol in lower case, "" for none.
func checkBroker(b string) (protocol string, err error) {
	host := b
	if p, rest, ok := strings.Cut(b, "://"); ok {
		if protocol = strings.ToLower(p); !slices.Contains([]string{"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"}, protocol) {
			return "", fmt.Errorf("%s: protocol %s: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", b, p)
		}
		host, _, _ = strings.Cut(rest, "/") // librdkafka ignores a path
	}
	if last := strings.LastIndexByte(host, ':'); last >= 0 && (strings.IndexByte(host, ':') == last || strings.HasSuffix(host[:last], "]")) {
		if port, err := strconv.Atoi(host[last+1:]); err != nil || port < 1 || port > 65535 {
			return "", fmt.Errorf("%s: want a port from 1 to 65535", b)
		}
		host = host[:last]
	}
	if host == "" {
		return "", fmt.Errorf("%s: no host", b)
	}
	return protocol, nil
}

// checkBrokerProtocols refuses a broker whose protocol is not
// security.protocol's: librdkafka would leave it out.
func (c *Config) checkBrokerProtocols() error {
	want := "plaintext"
	for _, p := range c.Rdkafka {
		if p.Key == "security.protocol" {
			want = strings.ToLower(p.Value)
		}
	}
	for _, b := range splitList(c.Brokers) {
		if protocol, _ := checkBroker(b); protocol != "" && protocol != want {
			return &Error{Key: "Brokers", Value: c.Brokers, Reason: fmt.Sprintf("%s: not the protocol of rdkafka.security.protocol (%s)", b, strings.ToUpper(want))}
		}
	}
	return nil
}

// checkAvro checks that Format avro has its schema and ID, or a registry
// to fetch them from.
func (c *Config) checkAvro() error {
	if c.schemaStr != "" {
		var err error
		if c.Schema, err = avro.ParseWithCache(c.schemaStr, "", &avro.SchemaCache{}); err != nil {
			return &Error{Key: "Schema_Str", Value: c.schemaStr, Reason: err.Error()}
		}
	}
	switch {
	case c.Schema != nil && c.SchemaID > 0:
		if c.Registry.Enabled() {
			c.Warnings = append(c.Warnings, "Schema_Registry_URL is not used: Schema_Str and Schema_ID are given")
			c.Registry = registry.Config{}
		}
		return nil
	case !c.Registry.Enabled():
		if c.Schema != nil {
			return &Error{Key: "Schema_ID", Reason: "required with Schema_Str: the ID written before each value, that consumers look the schema up by"}
		}
		return &Error{Key: "Format", Value: "avro", Reason: "needs Schema_Str and Schema_ID, or Schema_Registry_URL"}
	case c.Registry.Subject == "" && c.SchemaID == 0:
		return &Error{Key: "Schema_Registry_Subject", Reason: "required with Schema_Registry_URL, unless Schema_ID names the schema"}
	}
	if c.Schema != nil {
		c.Warnings = append(c.Warnings, "Schema_Str is not used: the schema comes from Schema_Registry_URL")
		c.Schema = nil
	}
	if c.Registry.Subject != "" && c.SchemaID > 0 {
		c.Warnings = append(c.Warnings, "Schema_ID is not used: the ID comes with Schema_Registry_Subject's schema")
	}
	c.Registry.ID = c.SchemaID
	credentials := c.Registry.User != "" || c.Registry.BearerToken != ""
	for i, u := range c.Registry.URLs {
		if p, _ := url.Parse(u); p.Scheme == "http" && (credentials || p.User != nil) && !loopback(p.Hostname()) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("Schema_Registry_URL %d is http: the registry's credentials cross the network unencrypted (use https)", i+1))
		}
	}
	return nil
}

// loopback reports whether host names this machine, where plain http
// crosses no network.
func loopback(host string) bool {
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()
}

// refused says why librdkafka property key may not be set to v, or "": the
// plugin acknowledges a flush on each record's delivery report and produces
// outside transactions; batch mode compresses its messages itself.
func (c *Config) refused(key, v string) string {
	switch PropertyName(key) {
	case "compression.type":
		if c.MessageMode == "batch" && v != "none" {
			return "with Message_Mode batch every message is an LZ4 frame already; librdkafka's compression stays none"
		}
	case "delivery.report.only.error":
		if b, ok := rdkafkaBool(v); ok && b {
			return "the plugin acknowledges a flush on every record's delivery report"
		}
	case "transactional.id":
		return "the plugin does not produce in transactions"
	case "internal.termination.signal":
		if n, err := rdkafkaInt(v); err != nil || n != 0 {
			return "librdkafka would take this signal over from Fluent Bit (with a handler that does nothing)"
		}
	}
	if c.MSKIAMRegion != "" {
		const iam = "AWS_MSK_IAM on authenticates with the OAUTHBEARER tokens it signs"
		switch PropertyName(key) {
		case "security.protocol":
			if !strings.HasPrefix(strings.ToLower(v), "sasl_") {
				return iam + ": use SASL_SSL (or SASL_PLAINTEXT)"
			}
		case "sasl.mechanism":
			if v != "OAUTHBEARER" { // librdkafka reads it case-sensitively
				return iam
			}
		case "sasl.oauthbearer.method":
			if !strings.EqualFold(v, "default") {
				return iam
			}
		case "enable.sasl.oauthbearer.unsecure.jwt":
			if b, ok := rdkafkaBool(v); ok && b {
				return iam
			}
		}
	}
	return ""
}

// rdkafkaBool reads a boolean property value as librdkafka does: true, t
// or 1, false, f or 0, in any case; ok is false for anything else, which
// librdkafka refuses.
func rdkafkaBool(v string) (b, ok bool) {
	for _, t := range []string{"true", "t", "1"} {
		if strings.EqualFold(v, t) {
			return true, true
		}
	}
	for _, f := range []string{"false", "f", "0"} {
		if strings.EqualFold(v, f) {
			return false, true
		}
	}
	return false, false
}

// weakens says what setting librdkafka property key to v gives up of the
// plugin's delivery promise, its metrics or its flushes' speed, or "": such
// settings are accepted, and Init logs this.
func (c *Config) weakens(key, v string) string {
	switch PropertyName(key) {
	case "acks":
		switch v {
		case "0":
			return "the broker confirms nothing, so a flush is acknowledged once its records are sent, and records the broker loses are not retried"
		case "1":
			return "only the partition's leader confirms a record, so one it acknowledged is lost if it fails before its followers copied it"
		}
	case "partitioner":
		if v == "random" && c.MessageMode != "batch" { // batch mode places keyed records itself
			return "records of one key go to any partition, so their order is not kept"
		}
	case "queue.buffering.max.messages", "queue.buffering.max.kbytes":
		return "if Buffer_Memory holds more records than librdkafka's queue, the records beyond fail for a retry of their chunk, and a key's later records may overtake them"
	case "enable.idempotence":
		if b, ok := rdkafkaBool(v); ok && !b {
			return idempotenceOff
		}
	case "security.protocol":
		if c.MSKIAMRegion != "" && strings.EqualFold(v, "SASL_PLAINTEXT") {
			return "the signed tokens cross the network unencrypted, and anyone who reads one can act as this role until it expires (MSK's IAM listeners take only SASL_SSL)"
		}
	case "statistics.interval.ms":
		if v == "0" && c.MetricsListen != "" {
			return "the broker metrics of Metrics_Listen stay empty"
		}
	case "linger.ms":
		// Floats are allowed: 0.5 is half a millisecond. Up to librdkafka's
		// default, 5, is not worth a line.
		ms, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil || ms <= 5:
		case time.Duration(ms*float64(time.Millisecond)) >= c.FlushTimeout:
			return fmt.Sprintf("records wait this long before they are sent, not less than Flush_Timeout (%v): every flush times out, and its chunk is retried", c.FlushTimeout)
		default:
			return "records wait this long before they are sent, and so does every flush (with Workers 0, all of Fluent Bit); without it a waiting flush has its records sent at once"
		}
	}
	return ""
}

// checkBatchSize makes a batch mode frame fit the message size limit (LZ4
// may grow its input by 1/255, plus the batch headers, the operator's
// headers and framing): a Batch_Size left at its default shrinks to fit,
// one given too large is refused, and so is a limit that leaves less than
// Batch_Size's minimum.
func (c *Config) checkBatchSize(g Getter) error {
	room := c.MaxMessageBytes() - 4096
	for _, h := range c.Headers {
		room -= len(h.Name) + len(h.Value) + 10 // with their lengths as varints
	}
	limit := int64(room) * 255 / 256
	beside := ""
	if len(c.Headers) > 0 {
		beside = " beside the Header pairs"
	}
	switch {
	case limit < minBatchSize:
		return &Error{Key: RdkafkaPrefix + "message.max.bytes", Value: strconv.Itoa(c.MaxMessageBytes()), Reason: fmt.Sprintf(
			"with Message_Mode batch a batch is one message: room for %d bytes of records%s, below Batch_Size's minimum %s", max(limit, 0), beside, FormatSize(minBatchSize))}
	case g.Get("Batch_Size") == "":
		c.BatchSize = min(c.BatchSize, limit)
	case c.BatchSize > limit:
		return &Error{Key: "Batch_Size", Value: g.Get("Batch_Size"), Reason: fmt.Sprintf(
			"with Message_Mode batch a batch is one message: at most %d bytes for %smessage.max.bytes %d%s", limit, RdkafkaPrefix, c.MaxMessageBytes(), beside)}
	}
	return nil
}

// defaultMaxMessageBytes is librdkafka's default message.max.bytes.
const defaultMaxMessageBytes = 1000000

// MaxMessageBytes is the producer's message size limit: librdkafka's
// message.max.bytes as the operator set it, or its default.
func (c *Config) MaxMessageBytes() int {
	n := defaultMaxMessageBytes
	for _, p := range c.Rdkafka {
		if p.Key == "message.max.bytes" {
			if v, err := rdkafkaInt(p.Value); err == nil {
				n = int(v)
			}
		}
	}
	return n
}

// compression is librdkafka's codec: none in batch mode, whose messages are
// LZ4 frames already.
func (c *Config) compression() string {
	if c.MessageMode == "batch" {
		return "none"
	}
	return c.Compression
}

// lingerMs is librdkafka's linger: 1 ms, so that a batch's records, queued
// one by one, go out in one request; once its flush waits, librdkafka sends
// them at once (rdk). None in batch mode, whose messages are whole batches.
func (c *Config) lingerMs() string {
	if c.MessageMode == "batch" {
		return "0"
	}
	return "1"
}

// idempotenceOff is what a producer without idempotence risks.
const idempotenceOff = "a batch that is sent again can be written twice, and out of order (a key's records too)"

// rdkafkaInt reads an integer property value as librdkafka does (strtol,
// base 0: 0x20 is 32).
func rdkafkaInt(v string) (int64, error) { return strconv.ParseInt(v, 0, 32) }

// conflictsWithIdempotence reports whether librdkafka refuses property key
// set to v beside enable.idempotence true: idempotence needs acks all, at
// most 5 requests in flight per connection, and retries.
func conflictsWithIdempotence(key, v string) bool {
	n, err := rdkafkaInt(v)
	switch PropertyName(key) {
	case "acks":
		return !strings.EqualFold(v, "all") && (err != nil || n != -1)
	case "max.in.flight":
		return err == nil && n > 5
	case "retries":
		return err == nil && n < 1
	}
	return false
}

// propertyAliases maps the original name of each librdkafka property that
// has an alias (CONFIGURATION.md: "Alias for ...") and that the plugin looks
// at, or librdkafka's messages may name, to the alias, the name the plugin
// knows it by.
var propertyAliases = map[string]string{
	"request.required.acks": "acks", "max.in.flight.requests.per.connection": "max.in.flight",
	"message.send.max.retries": "retries", "queue.buffering.max.ms": "linger.ms",
	"compression.codec": "compression.type", "sasl.mechanisms": "sasl.mechanism",
	"metadata.broker.list": "bootstrap.servers",
}

// PropertyName returns the name the plugin knows librdkafka property key by:
// acks for request.required.acks, key itself when it has one name.
func PropertyName(key string) string {
	if name, ok := propertyAliases[key]; ok {
		return name
	}
	return key
}

// PropertyAlias returns the other name of librdkafka property key, or "".
func PropertyAlias(key string) string {
	if name, ok := propertyAliases[key]; ok {
		return name
	}
	for alias, name := range propertyAliases {
		if name == key {
			return alias
		}
	}
	return ""
}

// producerDefaults are the librdkafka settings the plugin derives from its
// own options; rdkafka.* keys given by the operator override them.
func (c *Config) producerDefaults() []Property {
	p := []Property{
		{Key: "bootstrap.servers", Value: c.Brokers},
		{Key: "client.id", Value: c.ClientID},
		{Key: "compression.type", Value: c.compression()},
		{Key: "enable.idempotence", Value: "true"},
		{Key: "acks", Value: "all"},
		{Key: "linger.ms", Value: c.lingerMs()},
		// Keyed records land where the Java client's default partitioner
		// puts them; rdk.New sends unkeyed ones to one partition per batch.
		{Key: "partitioner", Value: "murmur2_random"},
		// The plugin bounds its memory with Buffer_Memory; librdkafka's own
		// queue limits must never be the tighter bound.
		{Key: "queue.buffering.max.messages", Value: "2147483647"},
		{Key: "queue.buffering.max.kbytes", Value: "2147483647"},
		// A topic the cluster does not have fails its records (for a
		// retry, the log naming the topic) within the first flush, rather
		// than after librdkafka's 30 s, when Fluent Bit may have given the
		// chunk up (Retry_Limit) with nothing said.
		{Key: "topic.metadata.propagation.max.ms", Value: "2000"},
	}
	if c.MetricsListen != "" {
		p = append(p, Property{Key: "statistics.interval.ms", Value: "5000"})
	}
	if c.MSKIAMRegion != "" {
		p = append(p, Property{Key: "security.protocol", Value: "SASL_SSL"}, Property{Key: "sasl.mechanism", Value: "OAUTHBEARER"})
	}
	return p
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// eachPair calls fn with each `name value` pair of a comma-separated list;
// valueName names the value in the error for a pair without one.
func eachPair(v, valueName string, fn func(name, value string) error) error {
	for _, p := range splitList(v) {
		name, value, ok := strings.Cut(p, " ")
		if !ok {
			return fmt.Errorf("%q: want `name %s`", p, valueName)
		}
		if err := fn(name, strings.TrimSpace(value)); err != nil {
			return err
		}
	}
	return nil
}

func checkTopics(topics []string) error {
	if len(topics) == 0 {
		return fmt.Errorf("no topic given")
	}
	for _, t := range topics {
		if !ValidTopic(t) {
			return fmt.Errorf("%q is not a valid Kafka topic name (1-249 of [a-zA-Z0-9._-], not . or ..)", t)
		}
	}
	return nil
}

// ValidTopic applies Kafka's rules for topic names.
func ValidTopic[T string | []byte](t T) bool {
	if len(t) == 0 || len(t) > 249 || string(t) == "." || string(t) == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func path(field func(*Config) *ra.Path) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		p, err := ra.Parse(v)
		*field(c) = p
		return err
	}
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "on", "true", "yes", "1":
			*field(c) = true
		case "off", "false", "no", "0":
			*field(c) = false
		default:
			return fmt.Errorf("must be on or off")
		}
		return nil
	}
}

func enum(field func(*Config) *string, allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		for _, a := range allowed {
			if strings.EqualFold(v, a) {
				*field(c) = a
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func integer(field func(*Config) *int, min, max int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return fmt.Errorf("must be an integer from %d to %d", min, max)
		}
		*field(c) = n
		return nil
	}
}

func size(field func(*Config) *int64, min, max int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		if n < min || n > max {
			return fmt.Errorf("must be between %s and %s", FormatSize(min), FormatSize(max))
		}
		*field(c) = n
		return nil
	}
}

func duration(field func(*Config) *time.Duration, min, max time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := ParseDuration(v)
		if err != nil {
			return err
		}
		if d < min || d > max {
			return fmt.Errorf("must be between %v and %v", min, max)
		}
		*field(c) = d
		return nil
	}
}
