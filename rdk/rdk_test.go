package rdk

import (
	"slices"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/accumulator"
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
