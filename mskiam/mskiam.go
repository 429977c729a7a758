// Package mskiam signs the SASL OAUTHBEARER tokens of Amazon MSK's IAM
// access control, with AWS's own signer and the AWS SDK's default
// credential chain.
package mskiam

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Signer signs tokens for one region.
type Signer struct {
	region string
	creds  aws.CredentialsProvider // cached: refreshed before they expire
}

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

// Token signs a token with the current credentials. Its principal is their
// access key ID, which librdkafka shows in its logs; the broker takes its
// own from the signature.
func (s *Signer) Token(ctx context.Context) (value, principal string, expiry time.Time, err error) {
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("no AWS credentials: %w", err)
	}
	value, expiryMs, err := signer.GenerateAuthTokenFromCredentialsProvider(ctx, s.region, credentials.StaticCredentialsProvider{Value: creds})
	if err != nil {
		return "", "", time.Time{}, err
	}
	return value, creds.AccessKeyID, time.UnixMilli(expiryMs), nil
}
