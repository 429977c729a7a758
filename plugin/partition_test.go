package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/test/fixture"
)

func TestMurmur2MatchesJava(t *testing.T) {
	// Values from the Java client's UtilsTest.
	for key, want := range map[string]int32{"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107} {
		if got := Murmur2([]byte(key)); got != want {
			t.Errorf("Murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}

// noPartitions is a producer whose cluster answers a topic of 0 partitions.
type noPartitions struct{ fakeProducer }

func (p *noPartitions) Partitions(string, time.Time, bool) int { return 0 }

// TestZeroPartitionsIsUnknown: in batch mode a partition count of 0 is
// taken as unknown (the keyed records wait for the chunk's retry), not
// divided by.
func TestZeroPartitionsIsUnknown(t *testing.T) {
	in, sink := newInstance(t, &noPartitions{}, conf.MapGetter{"Message_Mode": "batch", "Message_Key_Field": "$k"})
	recs := []fixture.Record{{Time: time.Unix(1700000000, 0), Body: []fixture.KV{{Key: "log", Value: "a"}, {Key: "k", Value: "key"}}}}
	if got := in.Flush(fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2})[0], "t"); got != Retry ||
		!strings.Contains(sink.String(), "1 of 1 records not sent: their key's partition is not known") {
		t.Fatalf("Flush = %d; log:\n%s", got, sink)
	}
}
