// Package kafkatest gives tests a real Apache Kafka broker, run by test/kafka/kafka.sh from the
// Apache Kafka jars (Java 17+ and Maven needed; see that script), and a few helpers around
// confluent-kafka-go.
//
// Bootstrap(t) is the usual entry point: it returns $GOKAFKA_BROKERS when that is set (an
// existing cluster), or else starts one broker, on first use, shared by the whole test binary.
// A package that calls Bootstrap stops that broker when its tests end with
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// Without it a watchdog still kills the broker about a second after the test binary exits, but
// leaves its temporary directory behind.
//
// StartBroker and StartCluster start brokers of the test's own, for tests that stop, kill, freeze
// or restart them, or that need the SASL and SSL listeners; they are killed when the test ends.
//
// Brokers listen on 127.0.0.1 at random free ports in 29100-29999 (GOKAFKA_PORT_RANGE="lo-hi"
// narrows that); 29092 and 29093 are left to `make kafka-up`. The functions and methods here call
// t.Fatal, so call them from the test's goroutine.
package kafkatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// The SCRAM-SHA-512 user that Options.SASL creates.
const (
	SASLUser     = "admin"
	SASLPassword = "admin-secret"
)

const (
	startTimeout = 5 * time.Minute // the first start resolves the jars with Maven
	stopTimeout  = time.Minute
)

// Options selects the extra listeners of a broker started by StartBroker.
type Options struct {
	SASL       bool              // a SASL_PLAINTEXT listener, SCRAM-SHA-512, user SASLUser
	SSL        bool              // an SSL listener; clients trust CAFile()
	ScramUsers map[string]string // more SCRAM-SHA-512 users: name → password
	// MSKIAMUsers (access key id → secret access key) implies SASL and makes that listener
	// take OAUTHBEARER with AWS MSK IAM tokens, as aws-msk-iam-sasl-signer-go makes them,
	// signed with one of these keys; the principal is the access key id.
	// test/kafka/MskIamValidator.java checks them (a JDK is needed: javac).
	MSKIAMUsers map[string]string
	// MSKIAMRegion, when set, is the only region MSKIAMUsers' tokens may be signed for.
	MSKIAMRegion string
}

// Broker is one broker (combined KRaft broker and controller) in Dir.
type Broker struct {
	Dir                                 string
	Port, ControllerPort                int
	SASLPort, SSLPort                   int // 0 when not enabled
	t                                   testing.TB
	saslBootstrap, sslBootstrap, caFile string
}

// Bootstrap is the PLAINTEXT bootstrap address.
func (b *Broker) Bootstrap() string { return addr(b.Port) }

// SASLBootstrap is the SASL_PLAINTEXT (SCRAM-SHA-512, and OAUTHBEARER with
// Options.MSKIAMUsers) address, "" without Options.SASL or Options.MSKIAMUsers.
func (b *Broker) SASLBootstrap() string { return b.saslBootstrap }

// SSLBootstrap is the SSL address, "" without Options.SSL.
func (b *Broker) SSLBootstrap() string { return b.sslBootstrap }

// CAFile is the PEM file of the CA that signed the SSL listener's certificate.
func (b *Broker) CAFile() string { return b.caFile }

// Stop stops the broker cleanly (SIGTERM; SIGKILL if it does not exit within 20 s).
func (b *Broker) Stop() { b.t.Helper(); b.do(stopTimeout, "stop", "--dir", b.Dir) }

// Kill kills the broker with SIGKILL.
func (b *Broker) Kill() { b.t.Helper(); b.do(stopTimeout, "kill", "--dir", b.Dir) }

// Start starts a stopped or killed broker again, same ports and data, and waits until it is
// ready. After a kill that takes about 5 s more (the old broker session has to expire).
func (b *Broker) Start() {
	b.t.Helper()
	b.do(startTimeout, "resume", "--dir", b.Dir, "--owner-pid", strconv.Itoa(os.Getpid()))
}

// Freeze suspends the broker process (SIGSTOP): connections stay open, nothing answers.
func (b *Broker) Freeze() { b.t.Helper(); b.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen broker (SIGCONT).
func (b *Broker) Thaw() { b.t.Helper(); b.signal(syscall.SIGCONT) }

// LogTail returns the last n lines of the broker's log.
func (b *Broker) LogTail(n int) string { return logTail(b.Dir, n) }

func (b *Broker) do(timeout time.Duration, args ...string) {
	b.t.Helper()
	if err := run(timeout, args...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *Broker) signal(sig syscall.Signal) {
	b.t.Helper()
	data, err := os.ReadFile(filepath.Join(b.Dir, "kafka.pid"))
	if err != nil {
		b.t.Fatalf("kafkatest: the broker does not run: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err == nil {
		err = syscall.Kill(pid, sig)
	}
	if err != nil {
		b.t.Fatalf("kafkatest: %v to the broker: %v", sig, err)
	}
}

// StartBroker starts a broker of the test's own in a temporary directory. It is killed when the
// test ends; if the test failed, the tail of its log is logged first.
func StartBroker(t testing.TB, opts Options) *Broker {
	t.Helper()
	b, err := startBroker(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	b.t = t
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kafkatest: last lines of %s/kafka.log:\n%s", b.Dir, b.LogTail(30))
		}
		if err := run(stopTimeout, "kill", "--dir", b.Dir); err != nil {
			t.Error(err)
		}
	})
	return b
}

func startBroker(dir string, opts Options) (*Broker, error) {
	var err error
	opts.SASL = opts.SASL || len(opts.MSKIAMUsers) > 0
	for attempt := 0; attempt < 3; attempt++ { // again if a port was taken meanwhile
		n := 2
		if opts.SASL {
			n++
		}
		if opts.SSL {
			n++
		}
		var ports []int
		if ports, err = freePorts(n); err != nil {
			return nil, err
		}
		b := &Broker{Dir: dir, Port: ports[0], ControllerPort: ports[1]}
		args := []string{"start", "--dir", dir, "--port", strconv.Itoa(b.Port),
			"--controller-port", strconv.Itoa(b.ControllerPort), "--owner-pid", strconv.Itoa(os.Getpid())}
		ports = ports[2:]
		if opts.SASL {
			b.SASLPort, ports = ports[0], ports[1:]
			b.saslBootstrap = addr(b.SASLPort)
			args = append(args, "--sasl-port", strconv.Itoa(b.SASLPort))
			for name, password := range opts.ScramUsers {
				args = append(args, "--scram-user", name+"="+password)
			}
			for id, secret := range opts.MSKIAMUsers {
				args = append(args, "--msk-iam-user", id+"="+secret)
			}
			if opts.MSKIAMRegion != "" {
				args = append(args, "--msk-iam-region", opts.MSKIAMRegion)
			}
		}
		if opts.SSL {
			b.SSLPort = ports[0]
			b.sslBootstrap = addr(b.SSLPort)
			b.caFile = filepath.Join(dir, "ca.pem")
			args = append(args, "--ssl-port", strconv.Itoa(b.SSLPort))
		}
		if err = run(startTimeout, args...); err == nil {
			return b, nil
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, err
}

// Cluster is three brokers (node ids 1, 2, 3, each also a KRaft controller) in Dir/node1..3:
// replication factor 3, min.insync.replicas 2.
type Cluster struct {
	Dir             string
	Ports           []int // PLAINTEXT port of node i at index i-1
	ControllerPorts []int
	t               testing.TB
}

// StartCluster starts a three-node cluster of the test's own, killed when the test ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{Dir: t.TempDir(), t: t}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(6); err != nil {
			break
		}
		c.Ports, c.ControllerPorts = ports[:3], ports[3:]
		err = run(startTimeout, "cluster-start", "--dir", c.Dir, "--ports", join(c.Ports),
			"--controller-ports", join(c.ControllerPorts), "--owner-pid", strconv.Itoa(os.Getpid()))
		if err == nil || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
		_ = run(stopTimeout, "kill", "--dir", c.Dir)
	}
	if err != nil {
		_ = run(stopTimeout, "kill", "--dir", c.Dir)
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for id := 1; id <= 3; id++ {
				t.Logf("kafkatest: last lines of node %d's log:\n%s", id, c.LogTail(id, 20))
			}
		}
		if err := run(stopTimeout, "kill", "--dir", c.Dir); err != nil {
			t.Error(err)
		}
	})
	return c
}

// Bootstrap lists the three PLAINTEXT addresses.
func (c *Cluster) Bootstrap() string {
	s := make([]string, len(c.Ports))
	for i, p := range c.Ports {
		s[i] = addr(p)
	}
	return strings.Join(s, ",")
}

// Addr is node id's (1..3) PLAINTEXT address.
func (c *Cluster) Addr(id int) string { return addr(c.Ports[id-1]) }

// StopNode stops node id (1..3) cleanly (controlled shutdown).
func (c *Cluster) StopNode(id int) {
	c.t.Helper()
	if err := run(stopTimeout, "node-stop", "--dir", c.Dir, "--node", strconv.Itoa(id)); err != nil {
		c.t.Fatal(err)
	}
}

// StartNode starts a stopped node again and waits until it serves metadata that lists it.
func (c *Cluster) StartNode(id int) {
	c.t.Helper()
	if err := run(startTimeout, "node-start", "--dir", c.Dir, "--node", strconv.Itoa(id),
		"--owner-pid", strconv.Itoa(os.Getpid())); err != nil {
		c.t.Fatal(err)
	}
}

// LogTail returns the last n lines of node id's log.
func (c *Cluster) LogTail(id, n int) string {
	return logTail(filepath.Join(c.Dir, fmt.Sprintf("node%d", id)), n)
}

var shared struct {
	once   sync.Once
	dir    string
	broker *Broker
	err    error
}

// Bootstrap returns the bootstrap servers the tests use: $GOKAFKA_BROKERS if set, else the
// address of a broker started on first use and shared by the test binary (see Main).
func Bootstrap(t testing.TB) string {
	t.Helper()
	if s := os.Getenv("GOKAFKA_BROKERS"); s != "" {
		return s
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "kafkatest-")
		if shared.err == nil {
			shared.broker, shared.err = startBroker(shared.dir, Options{})
		}
	})
	if shared.err != nil {
		t.Fatalf("kafkatest: starting the shared broker: %v", shared.err)
	}
	return shared.broker.Bootstrap()
}

// Main runs the tests, then kills the broker Bootstrap started, if any, and exits. Call it from
// TestMain: func TestMain(m *testing.M) { kafkatest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		if err := run(stopTimeout, "kill", "--dir", shared.dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// CreateTopic creates topic with the broker's default replication factor and waits until
// every partition has a leader. An existing topic is fine.
func CreateTopic(t testing.TB, bootstrap, topic string, partitions int) {
	t.Helper()
	CreateTopicReplicas(t, bootstrap, topic, partitions, 0)
}

// CreateTopicReplicas is CreateTopic with replicas copies of each partition (0: the
// broker's default).
func CreateTopicReplicas(t testing.TB, bootstrap, topic string, partitions, replicas int) {
	t.Helper()
	createTopic(t, bootstrap, kafka.TopicSpecification{Topic: topic, NumPartitions: partitions, ReplicationFactor: replicas})
}

// CreateTopicConfig is CreateTopic with topic-level configuration, such as
// message.timestamp.before.max.ms.
func CreateTopicConfig(t testing.TB, bootstrap, topic string, partitions int, config map[string]string) {
	t.Helper()
	createTopic(t, bootstrap, kafka.TopicSpecification{Topic: topic, NumPartitions: partitions, Config: config})
}

func createTopic(t testing.TB, bootstrap string, spec kafka.TopicSpecification) {
	t.Helper()
	topic, partitions := spec.Topic, spec.NumPartitions
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{spec},
			kafka.SetAdminOperationTimeout(10*time.Second))
		cancel()
		if err == nil {
			err = res[0].Error
			if c := res[0].Error.Code(); c == kafka.ErrNoError || c == kafka.ErrTopicAlreadyExists {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: creating topic %s on %s: %v", topic, bootstrap, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitLeaders(t, admin, bootstrap, topic, partitions, deadline)
}

// AddPartitions grows topic to total partitions and waits until each has a leader.
func AddPartitions(t testing.TB, bootstrap, topic string, total int) {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreatePartitions(ctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: total}})
	if err == nil && res[0].Error.Code() != kafka.ErrNoError {
		err = res[0].Error
	}
	if err != nil {
		t.Fatalf("kafkatest: growing topic %s on %s to %d partitions: %v", topic, bootstrap, total, err)
	}
	waitLeaders(t, admin, bootstrap, topic, total, time.Now().Add(time.Minute))
}

// DeleteTopic deletes topic; the cluster has deleted it when it returns.
func DeleteTopic(t testing.TB, bootstrap, topic string) {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.DeleteTopics(ctx, []string{topic}, kafka.SetAdminOperationTimeout(30*time.Second))
	if err == nil && res[0].Error.Code() != kafka.ErrNoError {
		err = res[0].Error
	}
	if err != nil {
		t.Fatalf("kafkatest: deleting topic %s on %s: %v", topic, bootstrap, err)
	}
}

// SetProducerQuota limits what the clients with client.id clientID may
// produce to the cluster at bootstrap to bytesPerSec, until the test ends.
func SetProducerQuota(t testing.TB, bootstrap, clientID string, bytesPerSec int) {
	t.Helper()
	quota := []string{"quota", "--bootstrap", bootstrap, "--client-id", clientID}
	if err := run(time.Minute, append(quota, "--producer-byte-rate", strconv.Itoa(bytesPerSec))...); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(func() {
		if err := run(time.Minute, quota...); err != nil {
			t.Errorf("kafkatest: %v", err)
		}
	})
}

// newAdmin returns an admin client of bootstrap; the caller closes it.
func newAdmin(t testing.TB, bootstrap string) *kafka.AdminClient {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return admin
}

// waitLeaders waits until deadline for topic to have partitions partitions,
// each with a leader.
func waitLeaders(t testing.TB, admin *kafka.AdminClient, bootstrap, topic string, partitions int, deadline time.Time) {
	t.Helper()
	for {
		err := topicReady(admin, topic, partitions)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: topic %s on %s: %v", topic, bootstrap, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Leaderless returns how many of topic's partitions have no leader in the metadata that
// bootstrap (one broker's address, for its own view) gives.
func Leaderless(t testing.TB, bootstrap, topic string) int {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	md, err := admin.GetMetadata(&topic, false, 5000)
	if err != nil {
		t.Fatalf("kafkatest: metadata of %s from %s: %v", topic, bootstrap, err)
	}
	n := 0
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader < 0 {
			n++
		}
	}
	return n
}

func topicReady(admin *kafka.AdminClient, topic string, partitions int) error {
	md, err := admin.GetMetadata(&topic, false, 5000)
	if err != nil {
		return err
	}
	tm := md.Topics[topic]
	if tm.Error.Code() != kafka.ErrNoError {
		return tm.Error
	}
	if len(tm.Partitions) != partitions {
		return fmt.Errorf("%d partitions, want %d", len(tm.Partitions), partitions)
	}
	for _, p := range tm.Partitions {
		if p.Error.Code() != kafka.ErrNoError || p.Leader < 0 {
			return fmt.Errorf("partition %d: leader %d, %v", p.ID, p.Leader, p.Error)
		}
	}
	return nil
}

// Produce writes one message with value to partition of topic, and returns
// where Kafka put it.
func Produce(t testing.TB, bootstrap, topic string, partition int32, value []byte, headers ...kafka.Header) kafka.TopicPartition {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	delivered := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition}, Value: value, Headers: headers}, delivered); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-delivered:
		m := e.(*kafka.Message)
		if m.TopicPartition.Error != nil {
			t.Fatal(m.TopicPartition.Error)
		}
		return m.TopicPartition
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery report in 30 s")
	}
	return kafka.TopicPartition{}
}

// Consume reads topic from the beginning of all its partitions until it has want messages and
// then on to the end of every partition, or until timeout passes, and returns what it read,
// duplicates and messages beyond want included, for the caller to check.
func Consume(t testing.TB, bootstrap, topic string, want int, timeout time.Duration) []*kafka.Message {
	t.Helper()
	return consume(t, bootstrap, topic, want, timeout)
}

// ConsumeAll reads topic from the beginning to the end of every partition and returns every
// message, duplicates included. Running out of time is a test error.
func ConsumeAll(t testing.TB, bootstrap, topic string, timeout time.Duration) []*kafka.Message {
	t.Helper()
	return consume(t, bootstrap, topic, -1, timeout)
}

func consume(t testing.TB, bootstrap, topic string, want int, timeout time.Duration) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":    bootstrap,
		"group.id":             fmt.Sprintf("kafkatest-%x", rand.Uint64()),
		"enable.auto.commit":   false,
		"auto.offset.reset":    "earliest",
		"enable.partition.eof": true,
	})
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatalf("kafkatest: metadata of %s: %v", topic, err)
	}
	var assign []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
	}
	if len(assign) == 0 {
		t.Fatalf("kafkatest: topic %s has no partitions (%v)", topic, md.Topics[topic].Error)
	}
	if err := c.Assign(assign); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	var msgs []*kafka.Message
	atEnd := map[int32]bool{}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				t.Logf("kafkatest: consuming %s: %v", topic, e.TopicPartition.Error)
				continue
			}
			msgs = append(msgs, e)
			delete(atEnd, e.TopicPartition.Partition)
		case kafka.PartitionEOF:
			atEnd[e.Partition] = true
			if len(atEnd) == len(assign) && len(msgs) >= want {
				return msgs
			}
		case kafka.Error:
			t.Logf("kafkatest: consuming %s: %v", topic, e)
		}
	}
	if want < 0 {
		t.Errorf("kafkatest: reached the end of %d of %d partitions of %s in %v (%d messages)",
			len(atEnd), len(assign), topic, timeout, len(msgs))
	}
	return msgs
}

var notTopicChar = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// UniqueTopic returns a new topic name made from the test's name.
func UniqueTopic(t testing.TB) string {
	name := notTopicChar.ReplaceAllString(t.Name(), "_")
	if len(name) > 200 {
		name = name[:200]
	}
	return fmt.Sprintf("%s-%08x", name, rand.Uint32())
}

// run runs kafka.sh with args; an error includes its stderr, which holds the tail of the
// broker log when a start failed.
func run(timeout time.Duration, args ...string) error {
	sh, err := script()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{sh}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kafka.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// script finds test/kafka/kafka.sh above the working directory (a package directory when
// testing), or else next to this source file.
func script() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "test", "kafka", "kafka.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "kafka", "kafka.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("kafkatest: test/kafka/kafka.sh not found above " + wd)
}

// FreeAddr returns a 127.0.0.1 address with a port of GOKAFKA_PORT_RANGE that
// nothing listens on now: outside the ephemeral range, so no outgoing
// connection takes it before the test binds it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return addr(ports[0])
}

// freePorts returns n distinct ports of GOKAFKA_PORT_RANGE that nothing listens on now.
func freePorts(n int) ([]int, error) {
	lo, hi := 29100, 29999
	if r := os.Getenv("GOKAFKA_PORT_RANGE"); r != "" {
		a, b, _ := strings.Cut(r, "-")
		var err1, err2 error
		lo, err1 = strconv.Atoi(a)
		hi, err2 = strconv.Atoi(b)
		if err1 != nil || err2 != nil || lo > hi {
			return nil, fmt.Errorf("kafkatest: GOKAFKA_PORT_RANGE=%q is not lo-hi", r)
		}
	}
	var ports []int
	seen := map[int]bool{29092: true, 29093: true} // make kafka-up's
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		p := lo + rand.IntN(hi-lo+1)
		if seen[p] {
			continue
		}
		seen[p] = true
		l, err := net.Listen("tcp", addr(p))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("kafkatest: no %d free ports in %d-%d", n, lo, hi)
	}
	return ports, nil
}

func logTail(dir string, n int) string {
	data, err := os.ReadFile(filepath.Join(dir, "kafka.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func join(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}
