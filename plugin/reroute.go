package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// reroute says why a record went to the default topic.
type reroute int

const (
	routed        reroute = iota // it did not: its own, or Topic_Key is not set
	noTopicField                 // Topic_Key's field is missing or null
	notATopicName                // its value cannot name a topic
	notInTopics                  // it names a topic not in Topics, and Dynamic_Topic is off
	reroutes                     // how many there are
)

// rerouteLogInterval spaces the lines of rerouteLog.
const rerouteLogInterval = time.Minute

// rerouteLog logs the records sent to the default topic because Topic_Key
// had no value, or one that is no topic name (a misspelled Topic_Key sends
// every record there), at most once per rerouteLogInterval, counting those
// since the last line.
type rerouteLog struct {
	mu               sync.Mutex
	next             time.Time // no line before
	noField, badName int
	example          string // the first value that is no topic name
}

func (r *rerouteLog) note(in *Instance, noField, badName int, example string, now time.Time) {
	if noField+badName == 0 {
		return
	}
	r.mu.Lock()
	r.noField += noField
	r.badName += badName
	if r.example == "" {
		r.example = example
	}
	if now.Before(r.next) {
		r.mu.Unlock()
		return
	}
	noField, badName, example = r.noField, r.badName, r.example
	r.noField, r.badName, r.example, r.next = 0, 0, "", now.Add(rerouteLogInterval)
	r.mu.Unlock()
	var why []string
	if noField > 0 {
		why = append(why, fmt.Sprintf("%d had no (or a null) %s", noField, in.cfg.TopicKey))
	}
	if badName > 0 {
		why = append(why, fmt.Sprintf("%d had a %s that cannot name a topic (the first: %s)", badName, in.cfg.TopicKey, example))
	}
	in.Log(LevelWarn, "records sent to the default topic %s: %s (Topic_Key; logged at most once a minute, counting the records since the last line)",
		in.defaultTopic, strings.Join(why, ", "))
}

// badTopic describes Topic_Key's value of the current record, which cannot
// name a topic.
func (st *flushState) badTopic() string {
	if !st.topicText {
		return "a map or an array"
	}
	if len(st.topic) > 64 {
		return strconv.Quote(string(st.topic[:64])) + "..."
	}
	return strconv.Quote(string(st.topic))
}
