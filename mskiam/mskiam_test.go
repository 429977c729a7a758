package mskiam

import (
	"context"
	"encoding/base64"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
	if _, _, _, err := s.Token(ctx); err == nil || !strings.HasPrefix(err.Error(), "no AWS credentials: ") {
		t.Fatalf("error %v, want one saying there are no credentials", err)
	}
}
