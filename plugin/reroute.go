package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reroute says why a record went to the default topic.
type reroute int

const (
	routed        reroute = iota // it did not: its own, or Topic_Key is not set
	noTopicField                 // Topic_Key's field is missing or null
	notATopicName                // its value cannot name a topic (or, dynamic, names DLQ_Topic)
	notInTopics                  // it names a topic not in Topics, and Dynamic_Topic is off
	rerouteReasons
)

// rerouteLogInterval spaces the lines of rerouteLog.
const rerouteLogInterval = time.Minute

// rerouteLog logs the records sent to the default topic because Topic_Key
// had no value, or one that cannot name a topic, at most once per
// rerouteLogInterval, counting those since the last line. Missing values
// are a warning only when no record since had one (a misspelled Topic_Key);
// else they may be meant, and are logged at debug level.
type rerouteLog struct {
	withValue        atomic.Int64 // records that had a value, in every flush
	mu               sync.Mutex
	next             time.Time // no line before
	noField, badName int
	example          string // the first value that cannot name a topic
}

// note counts a flush's records by why they went where they did, and logs
// them with those before when a line is due.
func (r *rerouteLog) note(in *Instance, by *[rerouteReasons]int, example string) {
	if n := by[routed] + by[notATopicName] + by[notInTopics]; n > 0 && in.cfg.TopicKey != nil {
		r.withValue.Add(int64(n))
	}
	if by[noTopicField]+by[notATopicName] == 0 {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.noField += by[noTopicField]
	r.badName += by[notATopicName]
	if r.example == "" {
		r.example = example
	}
	if now.Before(r.next) {
		return
	}
	r.next = now.Add(rerouteLogInterval)
	r.report(in)
}

// report logs the records counted since the last line, if any; r.mu is
// held. Exit calls it for the last ones.
func (r *rerouteLog) report(in *Instance) {
	var why []string
	level := LevelDebug
	if withValue := r.withValue.Swap(0); r.noField > 0 {
		why = append(why, fmt.Sprintf("%d had no (or a null) %s", r.noField, in.cfg.TopicKey))
		if withValue == 0 {
			level = LevelWarn
		}
	}
	if r.badName > 0 {
		why = append(why, fmt.Sprintf("%d had a %s that cannot name a topic (the first: %s)", r.badName, in.cfg.TopicKey, r.example))
		level = LevelWarn
	}
	if len(why) > 0 {
		in.Log(level, "records sent to the default topic %s: %s (Topic_Key; logged at most once a minute, counting the records since the last line)",
			in.defaultTopic, strings.Join(why, ", "))
	}
	r.noField, r.badName, r.example = 0, 0, ""
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
