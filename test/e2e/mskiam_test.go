package e2e

import (
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/gokafka/gokafka/test/hostrun"
	"github.com/gokafka/gokafka/test/kafkatest"
)

// TestMSKIAM runs the plugin with AWS_MSK_IAM against a broker whose
// OAUTHBEARER listener checks tokens as Amazon MSK does
// (test/kafka/MskIamValidator.java: the SigV4 signature against the access
// key's secret, the action, the cluster's region and expiry). Credentials in
// the host's environment deliver every record, field for field; a wrong
// secret key, an ARN of another region, and no credentials at all, make
// every flush retry, with the cause logged once as an error. The secret key
// appears in no output.
func TestMSKIAM(t *testing.T) {
	const keyID = "AKIAGOKAFKAE2ETEST01"
	secretKey := secret(t, "aws")
	b := kafkatest.StartBroker(t, kafkatest.Options{MSKIAMUsers: map[string]string{keyID: secretKey}, MSKIAMRegion: "eu-west-1"})
	so := pluginSO(t)
	recs, chunks := securityChunks(t)
	// iam are the settings for the test broker and a cluster of region.
	iam := func(region string) []string {
		return []string{"Brokers", b.SASLBootstrap(), "AWS_MSK_IAM", "on", "rdkafka.security.protocol", "SASL_PLAINTEXT",
			"AWS_MSK_IAM_Cluster_ARN", "arn:aws:kafka:" + region + ":123456789012:cluster/gokafka/5e0f4a4c-2b61-4c1e-9d3c-0a1b2c3d4e5f-2"}
	}
	// env gives the host these credentials and keeps the machine's own AWS
	// settings out.
	env := func(keyID, secretKey string) []string {
		none := filepath.Join(t.TempDir(), "none")
		return []string{"AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=" + secretKey, "AWS_SESSION_TOKEN=",
			"AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none, "AWS_EC2_METADATA_DISABLED=true", "AWS_PROFILE=",
			"AWS_ROLE_ARN=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="}
	}

	t.Run("Delivered", func(t *testing.T) {
		topic := kafkatest.UniqueTopic(t)
		kafkatest.CreateTopic(t, b.Bootstrap(), topic, 2)
		kv := append([]string{"Topics", topic, "Workers", "2", "Log_Level", "debug"}, iam("eu-west-1")...)
		res := hostrun.Run(t, hostrun.Options{Plugin: so, StartDelay: time.Second, Env: env(keyID, secretKey),
			Instances: []hostrun.Instance{{Keys: keys(kv...), Chunks: chunks}}})
		if s := res.Instances[0]; s.OK != s.Chunks || s.Retry+s.Error+s.Dropped != 0 {
			t.Errorf("want every chunk acknowledged at once: %+v\n%s", s, hostrun.Tail(res.Stderr, 20))
		}
		noSecrets(t, res, secretKey)
		compare(t, topic, recs, kafkatest.Consume(t, b.Bootstrap(), topic, len(recs), time.Minute), decodeJSON)
	})
	t.Run("WrongSecret", func(t *testing.T) {
		wrong := secret(t, "wrong")
		refused(t, so, chunks, env(keyID, wrong), iam("eu-west-1"), regexp.MustCompile(`SASL authentication error: \{"status":"invalid_token"`), wrong, secretKey)
	})
	t.Run("WrongRegion", func(t *testing.T) {
		refused(t, so, chunks, env(keyID, secretKey), iam("us-east-1"), regexp.MustCompile(`SASL authentication error: \{"status":"invalid_token", "scope":"signed for region us-east-1`), secretKey)
	})
	t.Run("NoCredentials", func(t *testing.T) {
		refused(t, so, chunks, env("", ""), iam("eu-west-1"), regexp.MustCompile(`Failed to acquire SASL OAUTHBEARER token: cannot get AWS credentials: `), secretKey)
	})
}
