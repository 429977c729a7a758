package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gokafka/gokafka/test/fixture"
	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
)

// TestSecurity runs the plugin against one broker with its SCRAM-SHA-512
// (SASL_PLAINTEXT) and SSL listeners: the right credentials deliver every
// record; a wrong password or an untrusted CA makes every flush return
// FLB_RETRY within Flush_Timeout, with the cause logged once; and no secret
// appears in anything the host printed, at any log level, nor in a
// configuration error.
func TestSecurity(t *testing.T) {
	user, password := "gokafka-scram", secret(t, "scram")
	b := kafkatest.StartBroker(t, kafkatest.Options{SASL: true, SSL: true,
		ScramUsers: map[string]string{user: password}})
	so := pluginSO(t)
	recs, chunks := securityChunks(t)
	scram := func(pw string) []string {
		return []string{"rdkafka.security.protocol", "SASL_PLAINTEXT", "rdkafka.sasl.mechanism", "SCRAM-SHA-512",
			"rdkafka.sasl.username", user, "rdkafka.sasl.password", pw}
	}
	ssl := func(ca string) []string {
		return []string{"rdkafka.security.protocol", "SSL", "rdkafka.ssl.ca.location", ca}
	}

	deliver := func(t *testing.T, bootstrap string, security []string, secrets ...string) {
		topic := kafkatest.UniqueTopic(t)
		kafkatest.CreateTopic(t, b.Bootstrap(), topic, 2)
		kv := append([]string{"Brokers", bootstrap, "Topics", topic, "Workers", "2", "Log_Level", "debug"}, security...)
		res := hostrun.Run(t, hostrun.Options{Plugin: so, StartDelay: time.Second, Instances: []hostrun.Instance{{Keys: keys(kv...), Chunks: chunks}}})
		if s := res.Instances[0]; s.OK != s.Chunks || s.Retry+s.Error+s.Dropped != 0 {
			t.Errorf("want every chunk acknowledged at once: %+v\n%s", s, hostrun.Tail(res.Stderr, 20))
		}
		noSecrets(t, res, secrets...)
		compare(t, topic, recs, kafkatest.Consume(t, b.Bootstrap(), topic, len(recs), time.Minute), decodeJSON)
	}
	t.Run("SCRAM", func(t *testing.T) { deliver(t, b.SASLBootstrap(), scram(password), password) })
	t.Run("SSL", func(t *testing.T) { deliver(t, b.SSLBootstrap(), ssl(b.CAFile())) })

	t.Run("WrongPassword", func(t *testing.T) {
		wrong := secret(t, "wrong")
		refused(t, so, chunks, nil, append([]string{"Brokers", b.SASLBootstrap()}, scram(wrong)...), regexp.MustCompile(`(?i)authentication fail`), wrong, password)
	})
	t.Run("WrongCA", func(t *testing.T) {
		refused(t, so, chunks, nil, append([]string{"Brokers", b.SSLBootstrap()}, ssl(otherCA(t))...), regexp.MustCompile(`(?i)certificate verify failed`))
	})

	// A configuration error next to secret properties names the bad key and
	// none of the secrets, at any log level.
	t.Run("ConfigError", func(t *testing.T) {
		sasl, key, pem := secret(t, "saslpw"), secret(t, "keypw"), secret(t, "pem")
		for _, bad := range [][3]string{ // key, value, what the error names
			{"rdkafka.acks", "sometimes", "rdkafka.acks: "},
			{"rdkafka.ssl.key.pem", pem, "ssl.key.pem failed"},
			{"Batch_Size", "lots", "Batch_Size: "},
			{"rdkafka.ssl.key.location", filepath.Join(t.TempDir(), "missing.key"), "ssl.key.location"},
			{"rdkafka.sasl.mechanism", "SCRAM-SHA-1024", "Unsupported hash function: SCRAM-SHA-1024"},
		} {
			for _, level := range []string{"info", "trace"} {
				kv := keys("Brokers", b.SASLBootstrap(), "Log_Level", level,
					"rdkafka.security.protocol", "SASL_SSL", "rdkafka.sasl.mechanism", "SCRAM-SHA-512",
					"rdkafka.sasl.username", user, "rdkafka.sasl.password", sasl, "rdkafka.ssl.key.password", key)
				kv = set(kv, bad[0], bad[1])
				res := hostrun.Run(t, hostrun.Options{Plugin: so, AllowFail: true, Instances: []hostrun.Instance{{Keys: kv}}})
				line := grep(res.Stderr, "configuration error: ")
				if res.ExitCode != 3 || !strings.Contains(line, bad[2]) {
					t.Errorf("%s: exit %d, want a configuration error naming %s; stderr:\n%s", bad[0], res.ExitCode, bad[2], hostrun.Tail(res.Stderr, 5))
				}
				if level == "info" {
					t.Logf("%s: %s", bad[0], line)
				}
				noSecrets(t, res, sasl, key, pem)
			}
		}
	})

	// librdkafka quotes sasl.oauthbearer.config when it cannot parse it: the
	// plugin cuts the secret out of that error.
	t.Run("OAuthConfigQuoted", func(t *testing.T) {
		s := secret(t, "oauth")
		for _, level := range []string{"info", "trace"} {
			// A flush keeps the producer polled until the token error came.
			res := hostrun.Run(t, hostrun.Options{Plugin: so, Grace: time.Second, Backoff: 100 * time.Millisecond,
				Instances: []hostrun.Instance{{Chunks: chunks[:1], Keys: keys(
					"Brokers", b.SASLBootstrap(), "Log_Level", level, "Topics", "refused",
					"Flush_Timeout", "1s", "Max_Block", "200ms", "Retry_Limit", "no_retries",
					"rdkafka.security.protocol", "SASL_PLAINTEXT", "rdkafka.sasl.mechanism", "OAUTHBEARER",
					"rdkafka.enable.sasl.oauthbearer.unsecure.jwt", "true",
					"rdkafka.sasl.oauthbearer.config", "principal=admin clientSecret="+s)}}})
			if !strings.Contains(res.Stderr, "Unrecognized sasl.oauthbearer.config") {
				t.Errorf("log level %s: the token error is not logged:\n%s", level, hostrun.Tail(res.Stderr, 10))
			}
			noSecrets(t, res, s)
		}
	})
}

// securityChunks are the records of the security tests, in chunks of 200
// KiB: at least 3, so that every flush of a refused run is checked.
func securityChunks(t *testing.T) ([]fixture.Record, [][]byte) {
	recs := containerLogs(t, "docker", 3000)
	chunks := fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: 2, ChunkBytes: 200 << 10})
	if len(chunks) < 3 {
		t.Fatalf("want at least 3 chunks, got %d", len(chunks))
	}
	return recs, chunks
}

// refused runs the host with settings (Brokers and credentials) the broker
// refuses, at the default log level and at trace, and env in its
// environment: every flush returns FLB_RETRY within Flush_Timeout, the
// cause is logged once as an error, and no secret appears in the output.
func refused(t *testing.T, so string, chunks [][]byte, env, settings []string, cause *regexp.Regexp, secrets ...string) {
	t.Helper()
	for _, level := range []string{"info", "trace"} {
		kv := append([]string{"Topics", "refused", "Flush_Timeout", "2s", "Max_Block", "500ms",
			"Retry_Limit", "1", "Workers", "2", "Log_Level", level}, settings...)
		if level == "trace" {
			kv = append(kv, "rdkafka.debug", "all") // librdkafka's own debug lines too
		}
		start := time.Now()
		res := hostrun.Run(t, hostrun.Options{Plugin: so, Backoff: 100 * time.Millisecond, Grace: 3 * time.Second, Env: env,
			Instances: []hostrun.Instance{{Keys: keys(kv...), Chunks: chunks}}})
		s := res.Instances[0]
		t.Logf("log level %s: %+v in %v", level, s, time.Since(start).Round(time.Millisecond))
		if s.OK != 0 || s.Error != 0 || s.Retry != s.Flushes || s.Retry != 2*s.Chunks || s.Dropped != s.Chunks {
			t.Errorf("log level %s: want every flush to return FLB_RETRY (each chunk retried once, then dropped): %+v", level, s)
		}
		if n := flushesTimedOut(res.Stderr, "2s"); n != int(s.Flushes) || s.MaxFlushMS > 20_000 { // a guard against a hang, not a measure
			t.Errorf("log level %s: %d of %d flushes ended at their time limit, the longest after %.0f ms", level, n, s.Flushes, s.MaxFlushMS)
		}
		var causes []string
		for _, line := range strings.Split(res.Stderr, "\n") {
			if cause.MatchString(line) && !strings.Contains(line, "[debug]") && !strings.Contains(line, "[trace]") {
				causes = append(causes, line)
			}
		}
		if len(causes) != 1 || !strings.Contains(causes[0], "[error]") {
			t.Errorf("log level %s: want the cause (%s) logged once, as an error, above debug level; got %d lines:\n%s\n--- log tail:\n%s",
				level, cause, len(causes), strings.Join(causes, "\n"), hostrun.Tail(res.Stderr, 30))
		}
		noSecrets(t, res, secrets...)
		if testing.Verbose() {
			t.Logf("log level %s: stderr:\n%s", level, hostrun.Tail(res.Stderr, 60))
		}
	}
}

// set replaces the value of key in kv, or appends it.
func set(kv [][2]string, key, value string) [][2]string {
	for i := range kv {
		if strings.EqualFold(kv[i][0], key) {
			kv[i][1] = value
			return kv
		}
	}
	return append(kv, [2]string{key, value})
}

// secret returns a distinctive random string to look for in the output.
func secret(t *testing.T, what string) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "Gk" + what + "-" + hex.EncodeToString(b)
}

// noSecrets fails the test if any of secrets occurs in the host's output.
func noSecrets(t *testing.T, res hostrun.Result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for name, out := range map[string]string{"stdout": res.Stdout, "stderr": res.Stderr} {
			if i := strings.Index(out, s); i >= 0 {
				line := out[strings.LastIndex(out[:i], "\n")+1:]
				if j := strings.IndexByte(line, '\n'); j >= 0 {
					line = line[:j]
				}
				t.Errorf("the secret %q appears in the host's %s: %s", s, name, line)
			}
		}
	}
}

func grep(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// otherCA makes a self-signed CA that did not sign the broker's certificate
// and returns its PEM file.
func otherCA(t *testing.T) string {
	dir := t.TempDir()
	ca := filepath.Join(dir, "other-ca.pem")
	cmd := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-days", "1", "-subj", "/CN=gokafka other test CA", "-keyout", filepath.Join(dir, "other-ca.key"), "-out", ca)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	if _, err := os.Stat(ca); err != nil {
		t.Fatal(err)
	}
	return ca
}
