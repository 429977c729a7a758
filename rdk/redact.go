package rdk

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
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
