// Command consume prints messages of a Kafka topic from its beginning, for
// `make run` and for looking at what the plugin wrote.
//
//	consume -brokers 127.0.0.1:29092 -topic gokafka-demo -n 3 [-want 5000]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:29092", "bootstrap servers")
	topic := flag.String("topic", "", "topic to read")
	n := flag.Int("n", 10, "messages to print")
	want := flag.Int("want", 0, "messages to wait for, printing the first n (0: n)")
	timeout := flag.Duration("timeout", 20*time.Second, "give up after")
	flag.Parse()
	if err := run(*brokers, *topic, *n, max(*want, *n), *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "consume:", err)
		os.Exit(1)
	}
}

func run(brokers, topic string, n, want int, timeout time.Duration) error {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  brokers,
		"group.id":           fmt.Sprintf("gokafka-consume-%d", time.Now().UnixNano()),
		"auto.offset.reset":  "earliest",
		"enable.auto.commit": false,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for got := 0; got < want; {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d messages after %v", got, want, timeout)
		}
		msg, err := c.ReadMessage(time.Second)
		if err != nil {
			if kerr, ok := err.(kafka.Error); ok && kerr.IsTimeout() {
				continue
			}
			return err
		}
		if got++; got > n {
			continue
		}
		fmt.Printf("%s [%d] @%d key=%q ts=%s\n%s\n", *msg.TopicPartition.Topic, msg.TopicPartition.Partition,
			msg.TopicPartition.Offset, msg.Key, msg.Timestamp.UTC().Format(time.RFC3339Nano), msg.Value)
	}
	if want > n {
		fmt.Printf("consume: %d messages read from %s\n", want, topic)
	}
	return nil
}
