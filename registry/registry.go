// Package registry fetches Format avro's schema from a Confluent Schema
// Registry, through hamba/avro's client.
package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"
)

// Config says where the schema is and how to ask for it.
type Config struct {
	URLs        []string // tried in turn
	Subject     string   // "" fetches the schema of ID
	Version     string   // of Subject: "latest" or a number
	ID          int
	User        string // basic authentication, when set
	Password    string
	BearerToken string // else a bearer token, when set
}

// Enabled reports whether c names a registry.
func (c *Config) Enabled() bool { return len(c.URLs) > 0 }

// timeout bounds one request: a registry that does not answer leaves time
// for the next within the caller's deadline.
const timeout = 3 * time.Second

// Fetch returns the schema and its ID from the first URL that answers. An
// error wraps ErrRefused when a registry answered, and will answer the
// same again: an error status below 500 other than 408 or 429, a
// certificate it cannot be trusted with, or a schema that is not Avro.
func Fetch(ctx context.Context, c *Config) (avro.Schema, int, error) {
	t := transport{hosts: map[string]bool{}, next: http.DefaultTransport}
	if c.BearerToken != "" && c.User == "" {
		t.token = c.BearerToken
	}
	for _, u := range c.URLs {
		if p, err := url.Parse(u); err == nil {
			t.hosts[p.Host] = true
		}
	}
	client := &http.Client{Timeout: timeout, Transport: t}
	var refused, last error
	for _, u := range c.URLs {
		opts := []registry.ClientFunc{registry.WithHTTPClient(client)}
		if c.User != "" {
			opts = append(opts, registry.WithBasicAuth(c.User, c.Password))
		}
		rc, err := registry.NewClient(u, opts...)
		if err == nil {
			var s avro.Schema
			var id int
			if s, id, err = fetch(ctx, rc, c); err == nil {
				return s, id, nil
			}
		}
		if p, perr := url.Parse(u); perr == nil {
			u = p.Redacted()
		}
		last = fmt.Errorf("%s: %w", u, err)
		var status registry.Error
		if errors.As(err, &status) && (status.StatusCode >= 500 || status.StatusCode == http.StatusRequestTimeout || status.StatusCode == http.StatusTooManyRequests) {
			continue
		}
		var netErr interface{ Timeout() bool }
		var certErr *tls.CertificateVerificationError
		if refused == nil && (!errors.As(err, &netErr) || errors.As(err, &certErr)) && ctx.Err() == nil {
			refused = fmt.Errorf("%w: %w", ErrRefused, last)
		}
	}
	if refused != nil {
		return nil, 0, refused
	}
	return nil, 0, last
}

// ErrRefused marks an answer that asking again will not change.
var ErrRefused = errors.New("refused")

func fetch(ctx context.Context, rc *registry.Client, c *Config) (avro.Schema, int, error) {
	if c.Subject == "" {
		s, err := rc.GetSchema(ctx, c.ID)
		return s, c.ID, err
	}
	subject := url.PathEscape(c.Subject) // hamba's client joins it into the path as it is
	var info registry.SchemaInfo
	var err error
	if c.Version == "latest" {
		info, err = rc.GetLatestSchemaInfo(ctx, subject)
	} else {
		v, _ := strconv.Atoi(c.Version)
		info, err = rc.GetSchemaInfo(ctx, subject, v)
	}
	if err == nil && (info.ID <= 0 || info.ID > math.MaxUint32) { // the framing holds 4 bytes
		err = fmt.Errorf("schema ID %d in the answer", info.ID)
	}
	return info.Schema, info.ID, err
}

// maxAnswer bounds a registry's answer.
const maxAnswer = 16 << 20

// transport reads each answer whole, so that one cut or stalled midway is a
// failed request, which asking again may cure, not an answer that does not
// decode; and it adds the bearer token, if any, to requests to the
// registries' hosts only, not to another a redirect names.
type transport struct {
	token string
	hosts map[string]bool
	next  http.RoundTripper
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.token != "" && t.hosts[r.URL.Host] {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
