package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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
