package rdk

import (
	"strings"
	"testing"
	"time"

	"github.com/gokafka/gokafka/conf"
)

func TestSecretProperty(t *testing.T) {
	for _, name := range []string{"sasl.password", "rdkafka.sasl.password", "SSL.Key.Password", "ssl.keystore.password",
		"ssl.key.pem", "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret", "sasl.jaas.config",
		"sasl.oauthbearer.assertion.private.key.passphrase", "sasl.oauthbearer.assertion.private.key.pem"} {
		if !SecretProperty(name) {
			t.Errorf("%s: not secret", name)
		}
	}
	for _, name := range []string{"sasl.username", "sasl.mechanism", "ssl.ca.location", "ssl.key.location",
		"ssl.certificate.pem", "sasl.oauthbearer.token.endpoint.url", "sasl.oauthbearer.client.id", "bootstrap.servers"} {
		if SecretProperty(name) {
			t.Errorf("%s: secret", name)
		}
	}
}

func TestRedact(t *testing.T) {
	r := newRedactor([]conf.Property{
		{Key: "sasl.username", Value: "alice"},
		{Key: "sasl.password", Value: "pw-Secret-1"},
		{Key: "sasl.oauthbearer.config", Value: `principal=svc clientSecret="s3cr3t-value" scope=ab`},
	})
	for in, want := range map[string]string{
		"SASL authentication error for alice with pw-Secret-1": "SASL authentication error for alice with [redacted]",
		// Every field of a secret made of fields is cut, down to minPiece bytes.
		"Unrecognized sasl.oauthbearer.config beginning at: clientSecret=\"s3cr3t-value\" scope=ab": "Unrecognized sasl.oauthbearer.config beginning at: [redacted] [redacted]",
		"principal svc":      "principal svc",
		"token s3cr3t-value": "token [redacted]",
	} {
		if got := r.apply(in); got != want {
			t.Errorf("apply(%q)\n got %q\nwant %q", in, got, want)
		}
	}
	// A whole value is always cut, however short.
	if got := newRedactor([]conf.Property{{Key: "ssl.key.password", Value: "k"}}).apply("key k"); got != "[redacted]ey [redacted]" {
		t.Errorf("short secret: %q", got)
	}
	if got := newRedactor(nil).apply("nothing secret"); got != "nothing secret" {
		t.Errorf("no secrets: %q", got)
	}
}

func TestCauseKey(t *testing.T) {
	same := [][2]string{
		{"_AUTHENTICATION: sasl_ssl://b-1.kafka:9096/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 312ms in state AUTH_REQ)",
			"_AUTHENTICATION: sasl_ssl://b-2.kafka:9096/2: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 310ms in state AUTH_REQ, 1 identical error(s) suppressed)"},
		{"_SSL: ssl://127.0.0.1:29360/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified (after 17ms in state SSL_HANDSHAKE)",
			"_TRANSPORT: ssl://127.0.0.1:29360/bootstrap: error:0A000086:SSL routines::certificate verify failed (after 12ms in state SSL_HANDSHAKE)"},
		{"_ALL_BROKERS_DOWN: 0/1 brokers are down", "_ALL_BROKERS_DOWN: 3/3 brokers are down"},
		{`OIDC: [thrd:background]: Failed to retrieve OIDC token from "https://idp/token": Failed to connect to idp port 443 after 0 ms`,
			`OIDC: [thrd:main]: Failed to retrieve OIDC token from "https://idp/token": Failed to connect to idp port 443 after 12 ms`},
	}
	for _, p := range same {
		if a, b := causeKey(1, p[0]), causeKey(1, p[1]); a != b {
			t.Errorf("want one cause:\n%s\n%s", a, b)
		}
	}
	if a, b := causeKey(1, "_TRANSPORT: ssl://h:1/1: Connection refused"), causeKey(1, "_TRANSPORT: ssl://h:1/1: Connection reset by peer"); a == b {
		t.Errorf("want two causes: %s", a)
	}
	if !strings.Contains(causeKey(1, "_AUTHENTICATION: sasl_ssl://b-1.kafka:9096/bootstrap: SASL authentication error"), "SASL authentication error") {
		t.Error("the reason is not in the key")
	}
}

// TestCausesLevel: a cause is logged at its level once per causeInterval,
// its repeats at debug level, and the first one after says how many there
// were; producers that share Causes share that.
func TestCausesLevel(t *testing.T) {
	shared, other := NewCauses(), NewCauses()
	now := time.Now()
	for i, step := range []struct {
		cs     *Causes
		key    string
		at     time.Duration
		level  int
		suffix string
	}{
		{shared, "auth", 0, 1, ""},
		{shared, "auth", time.Second, 4, ""}, // another producer, the same cause
		{shared, "tls", time.Second, 1, ""},
		{other, "auth", time.Second, 1, ""},
		{shared, "auth", causeInterval + time.Second, 1, " (and 1 times more since " + now.Format(time.TimeOnly) + ")"},
	} {
		level, suffix := step.cs.level(step.key, 1, now.Add(step.at))
		if level != step.level || suffix != step.suffix {
			t.Errorf("step %d: level %d %q, want %d %q", i, level, suffix, step.level, step.suffix)
		}
	}
}

// TestRedactOverlappingSecrets: a secret inside another is cut after the
// longer one, which is cut whole; the fields of a comma-separated value
// are cut too.
func TestRedactOverlappingSecrets(t *testing.T) {
	r := newRedactor([]conf.Property{
		{Key: "ssl.key.password", Value: "secr"},
		{Key: "sasl.password", Value: "mysecretvalue"},
		{Key: "sasl.oauthbearer.config", Value: "principal=svc,clientSecret=s3cr3tz"},
	})
	for in, want := range map[string]string{
		"login mysecretvalue": "login [redacted]",
		"key secr":            "key [redacted]",
		"got s3cr3tz":         "got [redacted]",
	} {
		if got := r.apply(in); got != want {
			t.Errorf("apply(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFatalErrorHint: a fatal error every new producer will hit again (the
// cluster refuses idempotence) says what to change; others do not.
func TestFatalErrorHint(t *testing.T) {
	for name, hint := range map[string]string{"CLUSTER_AUTHORIZATION_FAILED": "needs Write on a topic", "_UNSUPPORTED_FEATURE": "set rdkafka.enable.idempotence false",
		"OUT_OF_ORDER_SEQUENCE_NUMBER": ""} {
		err := fatalError(name, "refused")
		if hinted := err.Error() != name+": refused"; hinted != (hint != "") || !strings.Contains(err.Error(), hint) || !strings.HasPrefix(err.Error(), name+": refused") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
