package rdk_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gokafka/gokafka/conf"
	"github.com/gokafka/gokafka/rdk"
	"github.com/gokafka/gokafka/test/logsink"
)

// TestTokens runs producers with AWS_MSK_IAM's settings, to no broker, with
// token sources of the test's: librdkafka asks at once and again as a
// token's life runs out; a failure (without the configuration's secrets),
// a panic, and a token librdkafka refuses, are logged; Close cancels a token being made, and says nothing
// of it.
func TestTokens(t *testing.T) {
	cfg, err := conf.Load(conf.MapGetter{"Brokers": "127.0.0.1:1", "AWS_MSK_IAM": "on", "rdkafka.security.protocol": "SASL_PLAINTEXT",
		"AWS_MSK_IAM_Cluster_ARN": "arn:aws:kafka:eu-west-1:123456789012:cluster/logs/0b1c2d3e", "rdkafka.sasl.password": "hunter2-secret"},
		[]string{"security.protocol", "sasl.password"})
	if err != nil {
		t.Fatal(err)
	}
	// start makes a producer whose poll loop runs until the test ends.
	start := func(t *testing.T, tokens rdk.TokenSource) (*rdk.Producer, *logsink.Sink) {
		sink := new(logsink.Sink)
		p, err := rdk.New(cfg.Rdkafka, sink.Log, rdk.NewCauses(), tokens)
		if err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			for !stop.Load() {
				p.Poll(50*time.Millisecond, nil)
			}
		}()
		t.Cleanup(func() {
			stop.Store(true)
			<-done
			p.Close()
		})
		return p, sink
	}
	logged := func(t *testing.T, sink *logsink.Sink, text string) {
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(sink.String(), text); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%q not logged:\n%s", text, sink)
			}
		}
	}

	t.Run("Refreshed", func(t *testing.T) {
		asked := make(chan time.Time, 10)
		_, sink := start(t, func(context.Context) (string, string, time.Time, error) {
			asked <- time.Now()
			return "dG9rZW4", "svc", time.Now().Add(2 * time.Second), nil
		})
		var first time.Time
		for i := range 2 {
			select {
			case at := <-asked:
				if i == 0 {
					first = at
				} else if at.Sub(first) < time.Second {
					t.Errorf("asked again after %v, before most of the token's 2 s life passed", at.Sub(first))
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("asked %d times", i)
			}
		}
		if strings.Contains(sink.String(), "OAUTHBEARER") {
			t.Errorf("a valid token refused:\n%s", sink)
		}
	})
	t.Run("Failed", func(t *testing.T) {
		_, sink := start(t, func(context.Context) (string, string, time.Time, error) {
			return "", "", time.Time{}, errors.New("no credentials here")
		})
		const failure = "librdkafka: _AUTHENTICATION: Failed to acquire SASL OAUTHBEARER token: no credentials here"
		logged(t, sink, "4 "+failure) // librdkafka's report comes after the plugin's
		if lines := sink.Matching(failure); len(lines) != 2 || lines[0] != "1 "+failure {
			t.Errorf("want the failure logged once as an error, then librdkafka's report at debug level: %q", lines)
		}
	})
	t.Run("Redacted", func(t *testing.T) {
		_, sink := start(t, func(context.Context) (string, string, time.Time, error) {
			return "", "", time.Time{}, errors.New("signer said hunter2-secret")
		})
		logged(t, sink, "4 librdkafka: _AUTHENTICATION: Failed to acquire SASL OAUTHBEARER token: signer said")
		if strings.Contains(sink.String(), "hunter2") {
			t.Errorf("a secret logged:\n%s", sink)
		}
	})
	t.Run("Panicked", func(t *testing.T) {
		_, sink := start(t, func(context.Context) (string, string, time.Time, error) {
			panic("no region")
		})
		logged(t, sink, "Failed to acquire SASL OAUTHBEARER token: internal error: no region")
	})
	t.Run("Refused", func(t *testing.T) {
		_, sink := start(t, func(context.Context) (string, string, time.Time, error) {
			return "dG9rZW4", "svc", time.Now().Add(-time.Minute), nil // expired
		})
		logged(t, sink, "Failed to acquire SASL OAUTHBEARER token: token refused: Must supply an unexpired token")
	})
	t.Run("Closed", func(t *testing.T) {
		asked, ended, sink := make(chan struct{}), make(chan error, 1), new(logsink.Sink)
		p, err := rdk.New(cfg.Rdkafka, sink.Log, rdk.NewCauses(), func(ctx context.Context) (string, string, time.Time, error) {
			close(asked)
			<-ctx.Done()
			ended <- ctx.Err()
			return "", "", time.Time{}, ctx.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		for polled := false; !polled; {
			p.Poll(50*time.Millisecond, nil)
			select {
			case <-asked:
				polled = true
			default:
			}
		}
		p.Close()
		select {
		case err := <-ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("token source ended with %v, want it cancelled", err)
			}
		default:
			t.Error("Close returned before the token being made was given up")
		}
		if strings.Contains(sink.String(), "OAUTHBEARER") {
			t.Errorf("a token given up by Close logged as a failure:\n%s", sink)
		}
	})
}
