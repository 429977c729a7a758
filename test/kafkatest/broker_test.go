package kafkatest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/test/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// The tests run one at a time, in this order, so that at most one broker or cluster of
// this package runs at any time: the shared broker of Bootstrap starts in the last test.

// A three-node cluster; a producer with acks=all and idempotence keeps sending while the
// leader of partition 0 is stopped and started again. Every message must be there.
func TestClusterNodeBounce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	c := kafkatest.StartCluster(t)
	bootstrap := c.Bootstrap()
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 3)
	victim := leader(t, bootstrap, topic, 0)

	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          5,
		"message.timeout.ms": 120000,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var failed []string
	reports := sync.WaitGroup{}
	reports.Add(1)
	go func() {
		defer reports.Done()
		for e := range p.Events() {
			if m, ok := e.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", m.Value, m.TopicPartition.Error))
			}
		}
	}()

	// About 4,000 messages a second until stop is closed.
	stop := make(chan struct{})
	sent := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sent <- n
				return
			case <-tick.C:
			}
			for range 20 {
				msg := &kafka.Message{
					TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
					Value:          fmt.Appendf(nil, "%06d", n),
				}
				for p.Produce(msg, nil) != nil { // queue full
					time.Sleep(time.Millisecond)
				}
				n++
			}
		}
	}()

	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	c.StopNode(victim)
	t.Logf("node %d (leader of partition 0) stopped in %v", victim, time.Since(start))
	time.Sleep(time.Second)
	start = time.Now()
	c.StartNode(victim)
	t.Logf("node %d started again in %v", victim, time.Since(start))
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	n := <-sent
	for left := p.Flush(1000); left > 0; left = p.Flush(1000) {
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("%d messages still undelivered", left)
		}
	}
	p.Close()
	reports.Wait()
	if len(failed) > 0 {
		t.Errorf("%d of %d deliveries failed, first: %s", len(failed), n, failed[0])
	}

	msgs := kafkatest.ConsumeAll(t, bootstrap, topic, time.Minute)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[string(m.Value)]++
	}
	var missing []int
	for i := 0; i < n; i++ {
		if seen[fmt.Sprintf("%06d", i)] == 0 {
			missing = append(missing, i)
		}
	}
	t.Logf("sent %d, read %d, distinct %d, duplicates %d", n, len(msgs), len(seen), len(msgs)-len(seen))
	if len(missing) > 0 {
		t.Errorf("%d of %d messages lost, first: %v", len(missing), n, missing[:min(10, len(missing))])
	}
	if len(seen) != n {
		t.Errorf("%d distinct values read, want %d", len(seen), n)
	}
}

// The leader of a partition of topic.
func leader(t *testing.T, bootstrap, topic string, partition int32) int {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// The broker that answers may not have applied the topic's records of the
	// cluster's metadata log yet: ask again until it has.
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := admin.GetMetadata(&topic, false, 10000)
		if err == nil {
			for _, p := range md.Topics[topic].Partitions {
				if p.ID == partition && p.Leader >= 0 {
					return int(p.Leader)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader of partition %d in %s (%v)", partition, topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// SASL/SCRAM and SSL listeners, a wrong password, and a broker killed, started again and
// frozen for a moment: its data stays.
func TestSecurityAndRestart(t *testing.T) {
	b := kafkatest.StartBroker(t, kafkatest.Options{SASL: true, SSL: true,
		ScramUsers: map[string]string{"alice": "alice-secret"}})
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, b.Bootstrap(), topic, 1)

	sasl := func(user, password string) kafka.ConfigMap {
		return kafka.ConfigMap{"bootstrap.servers": b.SASLBootstrap(), "security.protocol": "SASL_PLAINTEXT",
			"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}
	}
	ssl := kafka.ConfigMap{"bootstrap.servers": b.SSLBootstrap(), "security.protocol": "SSL",
		"ssl.ca.location": b.CAFile()}
	for name, conf := range map[string]kafka.ConfigMap{
		"plaintext": {"bootstrap.servers": b.Bootstrap()},
		"admin":     sasl(kafkatest.SASLUser, kafkatest.SASLPassword),
		"alice":     sasl("alice", "alice-secret"),
		"ssl":       ssl,
	} {
		if err := produce(conf, topic, name, ""); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := produce(sasl("alice", "wrong"), topic, "wrong", ""); err == nil {
		t.Error("a wrong SCRAM password was accepted")
	} else {
		t.Logf("wrong password: %v", err)
	}

	b.Kill()
	start := time.Now()
	b.Start()
	t.Logf("started again after a kill in %v", time.Since(start))
	b.Freeze()
	time.Sleep(500 * time.Millisecond)
	b.Thaw()
	if got := kafkatest.Consume(t, b.Bootstrap(), topic, 4, 30*time.Second); len(got) != 4 {
		t.Errorf("read %d messages, want 4", len(got))
	}

	// The log on disk: four batches of one message, each of its own
	// idempotent producer, the first of its sequence.
	batches, err := b.Batches(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int64]bool{}
	for i, h := range batches {
		pids[h.ProducerID] = true
		if h.BaseOffset != int64(i) || h.LastOffset != int64(i) || h.ProducerID < 0 || h.ProducerEpoch != 0 || h.BaseSequence != 0 || h.LeaderEpoch < 0 {
			t.Errorf("batch %d: %+v", i, h)
		}
		if at, ok := kafkatest.BatchAt(batches, int64(i)); !ok || at != h {
			t.Errorf("BatchAt(%d) = %+v, %v", i, at, ok)
		}
	}
	if _, ok := kafkatest.BatchAt(batches, 4); len(batches) != 4 || len(pids) != 4 || ok {
		t.Errorf("batches %+v; want 4, of 4 producers, none at offset 4", batches)
	}
}

// AWS MSK IAM on the SASL listener: tokens made by aws-msk-iam-sasl-signer-go with the known
// key are accepted, with or without a session token (the broker cannot check that one, only that
// it is signed); one signed with a wrong secret, one of an unknown key, one with a tampered
// parameter, an expired one and one dated in the future are refused, each for its own reason.
func TestMSKIAM(t *testing.T) {
	const region, keyID, secret = "eu-west-1", "AKIAGOKAFKATEST00001", "gokafka/MSK+iam/secret0"
	b := kafkatest.StartBroker(t, kafkatest.Options{MSKIAMUsers: map[string]string{keyID: secret}})
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, b.Bootstrap(), topic, 1)
	conf := func() kafka.ConfigMap {
		return kafka.ConfigMap{"bootstrap.servers": b.SASLBootstrap(),
			"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER"}
	}
	brokerLog := filepath.Join(b.Dir, "kafka.log")
	logSize := func() int {
		fi, err := os.Stat(brokerLog)
		if err != nil {
			t.Fatal(err)
		}
		return int(fi.Size())
	}
	logSince := func(offset int) string {
		data, err := os.ReadFile(brokerLog)
		if err != nil {
			t.Fatal(err)
		}
		return string(data[offset:])
	}
	token := func(id, key, session string) string {
		tok, _, err := signer.GenerateAuthTokenFromCredentialsProvider(context.Background(), region,
			credentials.NewStaticCredentialsProvider(id, key, session))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	good := token(keyID, secret, "")
	accepted := []struct{ name, token string }{
		{"signer", good},
		{"signer with a session token", token(keyID, secret, "IQoJb3JpZ2luX2VjE/gokafka+session==")},
		{"presigned now", presign(t, region, keyID, secret, time.Now())},
	}
	for _, tc := range accepted {
		offset := logSize()
		if err := produce(conf(), topic, tc.name, tc.token); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if want := "MSK IAM token accepted: access key id " + keyID; !strings.Contains(logSince(offset), want) {
			t.Errorf("%s: the broker did not log %q", tc.name, want)
		}
	}
	msgs := kafkatest.Consume(t, b.Bootstrap(), topic, len(accepted), 30*time.Second)
	if len(msgs) != len(accepted) {
		t.Errorf("read %d messages, want %d", len(msgs), len(accepted))
	}
	for i, m := range msgs {
		if i < len(accepted) && string(m.Value) != accepted[i].name {
			t.Errorf("message %d is %q, want %q", i, m.Value, accepted[i].name)
		}
	}

	url, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil || !strings.Contains(string(url), "&X-Amz-Expires=900&") {
		t.Fatalf("token %s: %q, %v", good, url, err)
	}
	tampered := base64.RawURLEncoding.EncodeToString(
		[]byte(strings.Replace(string(url), "&X-Amz-Expires=900&", "&X-Amz-Expires=3600&", 1)))
	for _, tc := range []struct{ name, token, reason string }{ // reason: a regular expression
		{"wrong secret", token(keyID, "wrong-secret", ""), "signature mismatch"},
		{"unknown key", token("AKIAGOKAFKAUNKNOWN01", secret, ""), "unknown access key id AKIAGOKAFKAUNKNOWN01"},
		{"tampered", tampered, "signature mismatch"},
		{"expired", presign(t, region, keyID, secret, time.Now().Add(-20*time.Minute)), "expired at"},
		{"future", presign(t, region, keyID, secret, time.Now().Add(10*time.Minute)), `X-Amz-Date \d{8}T\d{6}Z is in the future`},
	} {
		offset := logSize()
		err := produce(conf(), topic, tc.name, tc.token)
		var kerr kafka.Error
		if !errors.As(err, &kerr) || kerr.Code() != kafka.ErrAuthentication {
			t.Errorf("%s: %v, want an authentication failure", tc.name, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
		if want := "MSK IAM token refused: " + tc.reason; !regexp.MustCompile(want).MatchString(logSince(offset)) {
			t.Errorf("%s: the broker did not log %q", tc.name, want)
		}
	}
}

// presign makes an MSK IAM token as aws-msk-iam-sasl-signer-go does, but signed at a time of
// the caller's choosing.
func presign(t *testing.T, region, keyID, secret string, at time.Time) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet,
		"https://kafka."+region+".amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Expires=900", nil)
	if err != nil {
		t.Fatal(err)
	}
	empty := sha256.Sum256(nil)
	url, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, req,
		hex.EncodeToString(empty[:]), "kafka-cluster", region, at.UTC())
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(url + "&User-Agent=gokafka-test"))
}

// produce sends one message and waits for its delivery report; errors reported by the
// client (such as a failed authentication) end it early. A token, if not "", is the
// SASL/OAUTHBEARER token, set at the start and on every refresh request.
func produce(conf kafka.ConfigMap, topic, value, token string) error {
	conf["message.timeout.ms"] = 10000
	conf["enable.idempotence"] = true
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		return err
	}
	defer p.Close()
	setToken := func() error {
		return p.SetOAuthBearerToken(kafka.OAuthBearerToken{TokenValue: token,
			Expiration: time.Now().Add(10 * time.Minute), Principal: "msk-iam"})
	}
	if token != "" {
		if err := setToken(); err != nil {
			return err
		}
	}
	if err := p.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Value:          []byte(value),
	}, nil); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		select {
		case e := <-p.Events():
			switch e := e.(type) {
			case *kafka.Message:
				return e.TopicPartition.Error
			case kafka.Error:
				return e
			case kafka.OAuthBearerTokenRefresh:
				if err := setToken(); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// 10,000 messages through the test binary's broker (or $GOKAFKA_BROKERS), read back exactly.
func TestProduceConsume10k(t *testing.T) {
	const n = 10000
	bootstrap := kafkatest.Bootstrap(t)
	topic := kafkatest.UniqueTopic(t)
	kafkatest.CreateTopic(t, bootstrap, topic, 3)

	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "linger.ms": 5})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	delivered := make(chan kafka.Event, n)
	for i := 0; i < n; i++ {
		err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Value:          fmt.Appendf(nil, "value-%05d", i),
		}, delivered)
		if err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case e := <-delivered:
			if m := e.(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatalf("delivery of %s: %v", m.Value, m.TopicPartition.Error)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d delivery reports after 30 s", i, n)
		}
	}

	msgs := kafkatest.ConsumeAll(t, bootstrap, topic, 30*time.Second)
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[string(m.Value)] = true
	}
	if len(msgs) != n || len(seen) != n {
		t.Fatalf("read %d messages, %d distinct, want %d", len(msgs), len(seen), n)
	}
	for i := 0; i < n; i++ {
		if v := fmt.Sprintf("value-%05d", i); !seen[v] {
			t.Fatalf("%s not read", v)
		}
	}
}
