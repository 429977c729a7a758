package rdk

import (
	"slices"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/accumulator"
	"github.com/gokafka/gokafka/conf"
)

// TestSyslogLevels: librdkafka's syslog levels as Fluent Bit's.
func TestSyslogLevels(t *testing.T) {
	for level, want := range []int{1, 1, 1, 1, 2, 3, 3, 4} {
		if got := syslogToFluentBit(level); got != want {
			t.Errorf("syslog level %d: %d, want %d", level, got, want)
		}
	}
}

// TestFailUnrecorded: the records without a recorded report fail, each
// once; those with one keep it.
func TestFailUnrecorded(t *testing.T) {
	got := failUnrecorded([]accumulator.Failure{{Index: 1, Err: 5, Permanent: true}}, 4, int(kafka.ErrMsgTimedOut))
	var idx []int
	for _, f := range got {
		idx = append(idx, f.Index)
		if f.Index != 1 && (f.Err != int(kafka.ErrMsgTimedOut) || f.Permanent || !strings.HasPrefix(f.Reason, "delivery report not recorded")) {
			t.Errorf("%+v", f)
		}
	}
	if !slices.Equal(idx, []int{1, 0, 2, 3}) || !got[0].Permanent || got[0].Err != 5 {
		t.Errorf("%+v", got)
	}
}

// TestCulprits: the operator's properties an error names by key (or its
// alias), else by value, whole words only; never by a secret's value.
func TestCulprits(t *testing.T) {
	props := []conf.Property{
		{Key: "linger.ms", Value: "20", FromUser: true},
		{Key: "sasl.mechanisms", Value: "FOO", FromUser: true},
		{Key: "sasl.password", Value: "FOO", FromUser: true},
		{Key: "client.id", Value: "fluent-bit"}, // the plugin's own
		{Key: "socket.keepalive.enable", Value: "true", FromUser: true},
		{Key: "request.required.acks", Value: "1", FromUser: true},
	}
	for text, want := range map[string]string{
		"`message.timeout.ms` must be greater than `linger.ms`": "rdkafka.linger.ms",
		"Unsupported SASL mechanism: FOO":                       "rdkafka.sasl.mechanisms",
		"sticky.partitioning.linger.ms is bad":                  "rdkafka",
		"mechanism FOOBAR; linger.msx":                          "rdkafka",
		"client.id fluent-bit refused":                          "rdkafka",
		"linger.ms and sasl.mechanisms":                         "rdkafka.linger.ms, rdkafka.sasl.mechanisms",
		// By a key's alias; by value only when no key is named.
		"`acks` must be set to `all` when `enable.idempotence` is true": "rdkafka.request.required.acks",
		"true and FOO": "rdkafka.sasl.mechanisms, rdkafka.socket.keepalive.enable",
	} {
		if got := culprits(props, text); got != want {
			t.Errorf("%q: %q, want %q", text, got, want)
		}
	}
}
