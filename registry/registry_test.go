package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

const schema = `{"type":"record","name":"L","fields":[{"name":"log","type":"string"}]}`

// fakeRegistry answers as a Confluent Schema Registry to bearer token "t":
// subject s has versions 1 (ID 7) and 2 (ID 8, the latest); ID 9 is not
// Avro; /down/ answers 503.
func fakeRegistry(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer t" {
		http.Error(w, `{"error_code":40101,"message":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/subjects/s/versions/latest", "/subjects/s/versions/2", "/subjects/a/b%/versions/latest":
		fmt.Fprintf(w, `{"id":8,"version":2,"schema":%q}`, schema)
	case "/subjects/s/versions/1":
		fmt.Fprintf(w, `{"id":7,"version":1,"schema":%q}`, schema)
	case "/schemas/ids/7":
		fmt.Fprintf(w, `{"schema":%q}`, schema)
	case "/schemas/ids/9":
		fmt.Fprint(w, `{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; message L { string log = 1; }"}`)
	default:
		if len(r.URL.Path) > 5 && r.URL.Path[:6] == "/down/" {
			http.Error(w, `{"error_code":50001,"message":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		http.Error(w, `{"error_code":40401,"message":"not found"}`, http.StatusNotFound)
	}
}

func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(fakeRegistry))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, c := range []struct {
		name string
		cfg  Config
		id   int
		err  string // "refused: ..." when it wraps ErrRefused
	}{
		{"latest", Config{URLs: []string{srv.URL}, Subject: "s", Version: "latest"}, 8, ""},
		{"version", Config{URLs: []string{srv.URL}, Subject: "s", Version: "1"}, 7, ""},
		{"subject escaped", Config{URLs: []string{srv.URL}, Subject: "a/b%", Version: "latest"}, 8, ""},
		{"by ID", Config{URLs: []string{srv.URL}, ID: 7}, 7, ""},
		{"after one down", Config{URLs: []string{closed.URL, srv.URL + "/down", srv.URL}, Subject: "s", Version: "latest"}, 8, ""},
		{"all down", Config{URLs: []string{closed.URL, srv.URL + "/down"}, Subject: "s", Version: "latest"}, 0, srv.URL + "/down: busy"},
		{"unknown subject", Config{URLs: []string{srv.URL}, Subject: "x", Version: "latest"}, 0, "refused: " + srv.URL + ": not found"},
		{"refused, then down", Config{URLs: []string{srv.URL, closed.URL}, Subject: "x", Version: "latest"}, 0, "refused: " + srv.URL + ": not found"},
		{"not Avro", Config{URLs: []string{srv.URL}, ID: 9}, 0, "refused: " + srv.URL + ": avro: unknown type: syntax = \"proto3\"; message L { string log = 1; }"},
	} {
		c.cfg.BearerToken = "t"
		s, id, err := Fetch(context.Background(), &c.cfg)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.err || strings.HasPrefix(c.err, "refused: ") != errors.Is(err, ErrRefused) || id != c.id || (err == nil) != (s != nil) {
			t.Errorf("%s: %v, %d, %q; want %d, %q", c.name, s, id, got, c.id, c.err)
		}
	}
	// Without the token.
	if _, _, err := Fetch(context.Background(), &Config{URLs: []string{srv.URL}, ID: 7}); !errors.Is(err, ErrRefused) {
		t.Errorf("no token: %v", err)
	}
}

// TestAnswersChecked: an answer cut midway is a failure that asking again
// may cure, not a refusal; a schema ID the framing cannot hold is refused;
// the bearer token does not follow a redirect to another host.
func TestAnswersChecked(t *testing.T) {
	var elsewhere atomic.Value // the Authorization header the other host got
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Store(r.Header.Get("Authorization"))
		fmt.Fprintf(w, `{"id":8,"version":2,"schema":%q}`, schema)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved/subjects/s/versions/latest":
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/subjects/s/versions/latest", http.StatusTemporaryRedirect)
		case "/cut/subjects/s/versions/latest":
			w.Header().Set("Content-Length", "1000")
			fmt.Fprint(w, `{"id":8,"version":2,`)
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case "/bigid/subjects/s/versions/latest":
			fmt.Fprintf(w, `{"id":4294967304,"version":2,"schema":%q}`, schema)
		case "/noid/subjects/s/versions/latest":
			fmt.Fprintf(w, `{"version":2,"schema":%q}`, schema)
		}
	}))
	defer srv.Close()
	for _, c := range []struct {
		base, err string
		refused   bool
	}{
		{"/cut", "reading the answer: unexpected EOF", false},
		{"/bigid", "schema ID 4294967304 in the answer", true},
		{"/noid", "schema ID 0 in the answer", true},
	} {
		_, _, err := Fetch(context.Background(), &Config{URLs: []string{srv.URL + c.base}, Subject: "s", Version: "latest"})
		if err == nil || !strings.Contains(err.Error(), c.err) || errors.Is(err, ErrRefused) != c.refused {
			t.Errorf("%s: %v, want %q (refused %v)", c.base, err, c.err, c.refused)
		}
	}
	if _, id, err := Fetch(context.Background(), &Config{URLs: []string{srv.URL + "/moved"}, Subject: "s", Version: "latest", BearerToken: "t"}); err != nil || id != 8 {
		t.Fatalf("redirected: %d, %v", id, err)
	}
	if got := elsewhere.Load(); got != "" {
		t.Errorf("the other host got Authorization %q", got)
	}
}

// TestBasicAuthWinsOverToken: with a user, basic authentication is sent,
// and the bearer token is not.
func TestBasicAuthWinsOverToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "pw" {
			http.Error(w, `{"error_code":40101,"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"id":8,"version":2,"schema":%q}`, schema)
	}))
	defer srv.Close()
	_, id, err := Fetch(context.Background(), &Config{URLs: []string{srv.URL}, Subject: "s", Version: "latest", User: "u", Password: "pw", BearerToken: "t"})
	if err != nil || id != 8 {
		t.Errorf("%d, %v; want 8", id, err)
	}
}

// TestTransientStatusesRetried: 500, 408 and 429, like 503, are answers
// that asking again may change: not refusals.
func TestTransientStatusesRetried(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error_code":1,"message":"later"}`, status)
		}))
		_, _, err := Fetch(context.Background(), &Config{URLs: []string{srv.URL}, Subject: "s", Version: "latest"})
		if err == nil || errors.Is(err, ErrRefused) {
			t.Errorf("status %d: %v, want an error that is not a refusal", status, err)
		}
		srv.Close()
	}
}

// TestErrorHidesURLPassword: an error names the registry without the
// password of its URL.
func TestErrorHidesURLPassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(fakeRegistry))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://user:S3CRET@", 1)
	_, _, err := Fetch(context.Background(), &Config{URLs: []string{u}, Subject: "x", Version: "latest", BearerToken: "t"})
	if err == nil || strings.Contains(err.Error(), "S3CRET") || !strings.Contains(err.Error(), "user:xxxxx@") {
		t.Errorf("%v", err)
	}
}

// TestUntrustedCertificateRefused: a registry whose certificate cannot be
// verified answers the same every time: a refusal.
func TestUntrustedCertificateRefused(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(fakeRegistry))
	defer srv.Close()
	_, _, err := Fetch(context.Background(), &Config{URLs: []string{srv.URL}, Subject: "s", Version: "latest", BearerToken: "t"})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("%v, want a refusal for the certificate", err)
	}
}
