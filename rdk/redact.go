package rdk

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gokafka/gokafka/conf"
)

// Redacted replaces a secret in a log line or an error message.
const Redacted = "[redacted]"

// SecretProperty reports whether the librdkafka property name holds a secret
// (a password, a client secret, a private key, a SASL configuration string):
// its value never appears in a log line or an error message of the plugin.
func SecretProperty(name string) bool {
	name = strings.TrimPrefix(strings.ToLower(name), conf.RdkafkaPrefix)
	switch name {
	case "sasl.jaas.config", // Java clients' name, in case an operator carries it over
		"sasl.oauthbearer.config",
		"sasl.oauthbearer.client.secret",
		"sasl.oauthbearer.assertion.private.key.pem",
		"ssl.key.pem",
		"ssl_key",
		"ssl.keystore.password",
		"ssl.key.password":
		return true
	}
	return strings.Contains(name, "password") || strings.Contains(name, "secret") ||
		strings.Contains(name, "passphrase") || strings.Contains(name, "private.key.pem")
}

// minPiece is the shortest part of a secret value that is cut on its own; a
// whole value is always cut.
const minPiece = 4

// redactor cuts the values of secret properties out of librdkafka's texts,
// which may quote a property (e.g. "Unrecognized sasl.oauthbearer.config
// beginning at: <the rest of it>").
type redactor []string // longest first

// newRedactor collects the secret values of props: each whole value, and for
// values made of several fields (sasl.oauthbearer.config, PEM text) each
// field and the value of each key=value field.
func newRedactor(props []conf.Property) redactor {
	seen := map[string]bool{}
	var r redactor
	add := func(s string, min int) {
		if len(s) >= min && !seen[s] {
			seen[s] = true
			r = append(r, s)
		}
	}
	for _, p := range props {
		if p.Value == "" || !SecretProperty(p.Key) {
			continue
		}
		add(p.Value, 1)
		for _, f := range strings.FieldsFunc(p.Value, func(c rune) bool {
			return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ';'
		}) {
			add(f, minPiece)
			if _, v, ok := strings.Cut(f, "="); ok {
				add(strings.Trim(v, `"'`), minPiece)
			}
		}
	}
	sort.Slice(r, func(i, j int) bool { return len(r[i]) > len(r[j]) })
	return r
}

// apply returns s with every secret replaced by Redacted.
func (r redactor) apply(s string) string {
	for _, secret := range r {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}

// causeInterval is how long a repeated librdkafka error is logged at debug
// level only: an authentication or certificate failure comes back at every
// reconnect, for every broker, as long as it lasts.
const causeInterval = 5 * time.Minute

// cause is one librdkafka error as logged.
type cause struct {
	logged  time.Time
	repeats int
}

// Causes remembers the librdkafka errors logged, by cause, for the
// producers that share it (an instance's producers, and those replacing
// them), so that a cause is logged once among them.
type Causes struct {
	mu sync.Mutex
	m  map[string]*cause
}

// NewCauses returns an empty Causes.
func NewCauses() *Causes { return &Causes{m: make(map[string]*cause)} }

// level returns the level to log an error of cause key at, now, and what to
// add to its text: a repeat within causeInterval is logged at debug level;
// the first one after is logged at level, saying how many were not.
func (cs *Causes) level(key string, level int, now time.Time) (int, string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.m[key]
	if c != nil && now.Sub(c.logged) < causeInterval {
		c.repeats++
		return max(level, 4), ""
	}
	suffix := ""
	if c != nil && c.repeats > 0 {
		suffix = fmt.Sprintf(" (and %d times more since %s)", c.repeats, c.logged.Format(time.TimeOnly))
	}
	if len(cs.m) >= 256 {
		clear(cs.m)
	}
	cs.m[key] = &cause{logged: now}
	return level, suffix
}

var (
	// The thread that logged: [thrd:main]: , [thrd:ssl://host:9093/1]: .
	thread = regexp.MustCompile(`\[thrd:[^\]]*\]: ?`)
	// Broker names: sasl_ssl://host:9092/1, ssl://10.0.0.1:9093/bootstrap.
	brokerName = regexp.MustCompile(`[a-z_]+://[^ ]*?/[^ :]*:? ?`)
	// librdkafka's variable suffix of broker errors.
	afterState = regexp.MustCompile(` \(after -?\d+ms in state [A-Z_]+(, \d+ identical error\(s\) suppressed)?\)`)
	// OpenSSL error codes: one TLS failure is reported with several texts
	// (_SSL "SSL handshake failed: error:0A000086:...", then _TRANSPORT
	// "error:0A000086:...").
	sslError = regexp.MustCompile(`error:[0-9A-Fa-f]{8}:`)
	number   = regexp.MustCompile(`\d+`)
)

// causeKey names the cause of librdkafka error err (0 for a log line)
// reported as text, the same for every broker, thread and repeat ("1/3
// brokers are down" and "2/3 brokers are down" are one cause).
func causeKey(err int, text string) string {
	if code := sslError.FindString(text); code != "" {
		return code
	}
	text = thread.ReplaceAllString(text, "")
	text = afterState.ReplaceAllString(text, "")
	text = brokerName.ReplaceAllString(text, "")
	return strconv.Itoa(err) + " " + number.ReplaceAllString(text, "#")
}
