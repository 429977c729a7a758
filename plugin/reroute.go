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
	noTopicField   reroute = iota // Topic_Key's field is missing or null
	notATopicName                 // its value cannot name a topic (or, dynamic, names DLQ_Topic)
	notInTopics                   // it names a topic not in Topics, and Dynamic_Topic is off
	pastTopicLimit                // it names a topic past Dynamic_Topic_Limit
	routed                        // it did not: its own, or Topic_Key is not set
)

// RerouteReasons name, for the metrics, why records went to the default
// topic: Stats.Rerouted's counters in turn.
var RerouteReasons = [routed]string{"no_field", "not_a_topic", "not_in_topics", "past_limit"}

// rerouteLogInterval spaces the lines of rerouteLog.
const rerouteLogInterval = time.Minute

// rerouteLog logs the records sent to the default topic because Topic_Key
// had no value, or one that cannot name a topic, or one past
// Dynamic_Topic_Limit, at most once per
// rerouteLogInterval, counting those since the last line. Missing values
// are a warning only when no record since had one (a misspelled Topic_Key);
// else they may be meant, and are logged at debug level.
type rerouteLog struct {
	withValue atomic.Int64 // records that had a value, in every flush
	mu        sync.Mutex
	next      time.Time // no line before
	count     [routed + 1]int
	first     [routed + 1]string // the first value, as badTopic describes it
}

// note counts a flush's records by why they went where they did, and logs
// them with those before when a line is due; first holds the first value
// of each reason, where there is one.
func (r *rerouteLog) note(in *Instance, by *[routed + 1]int, first *[routed + 1]string) {
	if n := by[routed] + by[notATopicName] + by[notInTopics] + by[pastTopicLimit]; n > 0 && in.cfg.TopicKey != nil { // had a value
		r.withValue.Add(int64(n))
	}
	if by[noTopicField]+by[notATopicName]+by[pastTopicLimit] == 0 {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, why := range []reroute{noTopicField, notATopicName, pastTopicLimit} {
		if r.count[why] += by[why]; r.first[why] == "" {
			r.first[why] = first[why]
		}
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
	if withValue := r.withValue.Swap(0); r.count[noTopicField] > 0 {
		why = append(why, fmt.Sprintf("%d had no (or a null) %s", r.count[noTopicField], in.cfg.TopicKey))
		if withValue == 0 {
			level = LevelWarn
		}
	}
	if n := r.count[notATopicName]; n > 0 {
		why = append(why, fmt.Sprintf("%d had a %s that cannot name a topic (the first: %s)", n, in.cfg.TopicKey, r.first[notATopicName]))
		level = LevelWarn
	}
	if n := r.count[pastTopicLimit]; n > 0 {
		why = append(why, fmt.Sprintf("%d named a topic past Dynamic_Topic_Limit's %d (the first: %s)", n, in.cfg.DynamicTopicLimit, r.first[pastTopicLimit]))
		level = LevelWarn
	}
	if len(why) > 0 {
		in.Log(level, "records sent to the default topic %s: %s (Topic_Key; logged at most once a minute, counting the records since the last line)",
			in.defaultTopic, strings.Join(why, ", "))
	}
	r.count, r.first = [routed + 1]int{}, [routed + 1]string{}
}

// dynamicTopics admits the topics outside Topics that records name with
// Dynamic_Topic on: the first limit names since Init. Flushes remember the
// names they saw admitted (flushState.admitted), so that most records find
// their topic without the lock.
type dynamicTopics struct {
	limit int
	mu    sync.Mutex
	names map[string]struct{}
}

// admit reports whether name is, or now becomes, one of the topics.
func (d *dynamicTopics) admit(st *flushState, name []byte) bool {
	if st.admitted[string(name)] {
		return true
	}
	d.mu.Lock()
	_, ok := d.names[string(name)]
	if !ok && len(d.names) < d.limit {
		d.names[string(name)], ok = struct{}{}, true
	}
	d.mu.Unlock()
	if ok {
		if st.admitted == nil {
			st.admitted = map[string]bool{}
		}
		st.admitted[string(name)] = true
	}
	return ok
}

// badTopic describes Topic_Key's value of the current record, which cannot
// name a topic, or names one past Dynamic_Topic_Limit.
func (st *flushState) badTopic() string {
	if !st.topicText {
		return "a map or an array"
	}
	if len(st.topic) > 64 {
		return strconv.Quote(string(st.topic[:64])) + "..."
	}
	return strconv.Quote(string(st.topic))
}
