package mskiam

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// isolate keeps the machine's AWS settings out: no shared files, no
// instance metadata, no role to assume; credentials only as the test sets.
func isolate(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_PROFILE": "", "AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""} {
		t.Setenv(k, v)
	}
}

func TestToken(t *testing.T) {
	isolate(t)
	const key, secret, session = "AKIAGOKAFKATEST00001", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "FwoGZXIvYXdzEXAMPLE"
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", session)
	s, err := New(context.Background(), "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	value, principal, expiry, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if principal != key {
		t.Errorf("principal %q, want the access key ID", principal)
	}
	if d := time.Until(expiry); d < 14*time.Minute || d > 15*time.Minute {
		t.Errorf("expires in %v, want 15 minutes", d)
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		t.Fatalf("token is not unpadded base64url: %v", err)
	}
	if strings.Contains(string(raw), secret) || strings.Contains(value, secret) {
		t.Fatal("the token holds the secret key")
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{"Action": "kafka-cluster:Connect", "X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Expires": "900",
		"X-Amz-Security-Token": session, "X-Amz-SignedHeaders": "host"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q (%s)", k, q.Get(k), v, raw)
		}
	}
	if u.Scheme != "https" || u.Host != "kafka.eu-west-1.amazonaws.com" {
		t.Errorf("signed for %s://%s", u.Scheme, u.Host)
	}
	if cred := q.Get("X-Amz-Credential"); !regexp.MustCompile(`^` + key + `/\d{8}/eu-west-1/kafka-cluster/aws4_request$`).MatchString(cred) {
		t.Errorf("credential scope %q", cred)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(q.Get("X-Amz-Signature")) {
		t.Errorf("signature %q", q.Get("X-Amz-Signature"))
	}
}

func TestNoCredentials(t *testing.T) {
	isolate(t)
	s, err := New(context.Background(), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, _, err := s.Token(ctx); err == nil || !strings.HasPrefix(err.Error(), "cannot get AWS credentials: ") {
		t.Fatalf("error %v, want one saying there are no credentials", err)
	}
}

// TestExpiringCredentials gets credentials from a credential_process of
// the shared config file: credentials with an hour left are used for two
// tokens, which live 15 minutes; credentials with 3 minutes left (within
// renewBefore) are fetched again for each token, which expires with them.
func TestExpiringCredentials(t *testing.T) {
	for _, tc := range []struct {
		life  time.Duration
		calls int
	}{{time.Hour, 1}, {3 * time.Minute, 3}} {
		isolate(t)
		dir := t.TempDir()
		expires := time.Now().Add(tc.life).UTC().Truncate(time.Second)
		script, calls, config := filepath.Join(dir, "creds.sh"), filepath.Join(dir, "calls"), filepath.Join(dir, "config")
		writeFile(t, script, 0o755, fmt.Sprintf("#!/bin/sh\necho >> %s\n"+
			`echo '{"Version": 1, "AccessKeyId": "ASIAGOKAFKATEST00002", "SecretAccessKey": "c2VjcmV0", "SessionToken": "dG9rZW4", "Expiration": "%s"}'`+"\n",
			calls, expires.Format(time.RFC3339)))
		writeFile(t, config, 0o644, "[default]\ncredential_process = "+script+"\n")
		t.Setenv("AWS_CONFIG_FILE", config)
		s, err := New(context.Background(), "eu-west-1")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			_, principal, expiry, err := s.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := expires
			if tc.life > 15*time.Minute {
				want = time.Now().Add(15 * time.Minute)
			}
			if d := expiry.Sub(want).Abs(); principal != "ASIAGOKAFKATEST00002" || d > 2*time.Second {
				t.Errorf("credentials with %v left: principal %s, expiry %v, want %v", tc.life, principal, expiry, want)
			}
		}
		if b, err := os.ReadFile(calls); err != nil || len(b) != tc.calls {
			t.Errorf("credentials with %v left: credential_process ran %d times (%v), want %d", tc.life, len(b), err, tc.calls)
		}
	}
}

// TestStableErrors: a failure names no request ID, so that the same
// failure reads the same each time.
func TestStableErrors(t *testing.T) {
	n := 0
	s := &Signer{region: "eu-west-1", creds: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		n++
		return aws.Credentials{}, fmt.Errorf("operation error STS: AssumeRoleWithWebIdentity, https response error StatusCode: 403, "+
			"RequestID: 5b6c7d8e-0000-4000-8000-%012d, api error AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity", n)
	})}
	_, _, _, err1 := s.Token(context.Background())
	_, _, _, err2 := s.Token(context.Background())
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() || strings.Contains(err1.Error(), "RequestID") || !strings.Contains(err1.Error(), "AccessDenied") {
		t.Errorf("errors %q and %q, want the same one, without the request ID", err1, err2)
	}
}

func writeFile(t *testing.T, name string, perm os.FileMode, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
}

// TestRenewalFails: credentials about to expire whose renewal fails (the
// instance metadata service out of reach for a moment) still sign, until
// they expire.
func TestRenewalFails(t *testing.T) {
	calls := 0
	expires := time.Now().Add(4 * time.Minute) // within renewBefore
	s := &Signer{region: "eu-west-1", creds: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		if calls++; calls == 1 {
			return aws.Credentials{AccessKeyID: "ASIAGOKAFKATEST00003", SecretAccessKey: "c2VjcmV0", SessionToken: "dG9rZW4", CanExpire: true, Expires: expires}, nil
		}
		return aws.Credentials{}, errors.New("dial tcp 169.254.169.254:80: i/o timeout")
	}))}
	for range 2 {
		_, principal, expiry, err := s.Token(context.Background())
		if err != nil || principal != "ASIAGOKAFKATEST00003" || expiry.Sub(expires).Abs() > time.Second {
			t.Fatalf("principal %q, expiry %v (%v), err %v; want the old credentials' token", principal, expiry, expires, err)
		}
	}
	if calls != 3 { // the first, then a renewal asked for each token
		t.Errorf("%d calls for credentials, want 3", calls)
	}
}
