// Package mskiam signs the SASL OAUTHBEARER tokens of Amazon MSK's IAM
// access control, with AWS's own signer and the AWS SDK's default
// credential chain.
package mskiam

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Signer signs tokens for one region.
type Signer struct {
	region string
	creds  aws.CredentialsProvider // an aws.CredentialsCache
	mu     sync.Mutex
	last   aws.Credentials // the last expiring ones retrieved, for when renewing them fails
}

// renewBefore is how long before they expire credentials are renewed: a
// token lives no longer than the credentials that signed it, and
// librdkafka asks for the next one when 80 % of its life has passed.
const renewBefore = 5 * time.Minute

// New finds the credentials of the default chain for region: environment,
// shared files (AWS_PROFILE), web identity (EKS), container (ECS, EKS Pod
// Identity), EC2 instance role. It reads files but asks no service.
func New(ctx context.Context, region string) (*Signer, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, err
	}
	return &Signer{region: region, creds: cfg.Credentials}, nil
}

// Token signs a token with the current credentials; it expires with them
// if they expire first. Its principal is their access key ID, which
// librdkafka shows in its logs; the broker takes its own from the
// signature.
func (s *Signer) Token(ctx context.Context) (value, principal string, expiry time.Time, err error) {
	creds, err := s.credentials(ctx)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("cannot get AWS credentials: %w", stable(err))
	}
	value, expiryMs, err := signer.GenerateAuthTokenFromCredentialsProvider(ctx, s.region, credentials.StaticCredentialsProvider{Value: creds})
	if err != nil {
		return "", "", time.Time{}, stable(err)
	}
	expiry = time.UnixMilli(expiryMs)
	if creds.CanExpire && creds.Expires.Before(expiry) {
		expiry = creds.Expires
	}
	return value, creds.AccessKeyID, expiry, nil
}

// credentials returns the cached credentials, or new ones if those expire
// within renewBefore; when getting new ones fails (the instance metadata
// service out of reach for a moment), the last ones while they last, and
// the next token asks again.
func (s *Signer) credentials(ctx context.Context) (aws.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	creds, err := s.retrieve(ctx)
	if cache, ok := s.creds.(*aws.CredentialsCache); ok && err == nil && creds.CanExpire && time.Until(creds.Expires) < renewBefore {
		cache.Invalidate()
		creds, err = s.retrieve(ctx)
	}
	if err != nil && time.Until(s.last.Expires) > 0 {
		return s.last, nil
	}
	return creds, err
}

// retrieve gets credentials, and keeps expiring ones as the last; s.mu is
// held.
func (s *Signer) retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := s.creds.Retrieve(ctx)
	if err == nil && creds.CanExpire {
		s.last = creds
	}
	return creds, err
}

// requestID matches the request ID an AWS service error names.
var requestID = regexp.MustCompile(`RequestID: [^,]*, `)

// stable is err without request IDs, so that a failure that keeps coming
// back reads the same each time and is logged as one cause.
func stable(err error) error {
	return errors.New(requestID.ReplaceAllString(err.Error(), ""))
}
