// Command gokafka-batch prints the records of gokafka's batch mode messages,
// one per line (msgpack records as JSON), read from a topic or from a file
// of concatenated message values. A message it cannot read, or that is not
// a batch message (its headers say so, and how many records it holds), is
// reported with its partition and offset, and skipped; the exit status is
// then 1.
//
//	gokafka-batch -brokers 127.0.0.1:29092 -topic logs [-n 10]
//	gokafka-batch -file values.lz4 [-type application/x-ndjson]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/gokafka/gokafka/batch"
	"github.com/gokafka/gokafka/encode"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:29092", "bootstrap servers")
	topic := flag.String("topic", "", "topic to read from its beginning")
	n := flag.Int("n", 0, "stop after n messages, or at the end of every partition if sooner (0: at the end)")
	file := flag.String("file", "", "read concatenated message values from this file instead")
	ctype := flag.String("type", batch.NDJSON, "content type of the file's records")
	flag.Parse()
	if *file == "" && *topic == "" || *ctype != batch.NDJSON && *ctype != batch.Msgpack && *ctype != batch.Text {
		fmt.Fprintf(os.Stderr, "gokafka-batch: give -topic or -file, and a -type of %s, %s or %s\n", batch.NDJSON, batch.Msgpack, batch.Text)
		flag.Usage()
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	print := func(contentType string) func([]byte) error {
		return func(rec []byte) error {
			if contentType == batch.Msgpack {
				js, err := encode.AppendJSON(nil, rec)
				if err != nil {
					return err
				}
				rec = js
			}
			out.Write(rec)
			return out.WriteByte('\n')
		}
	}
	var err error
	bad := 0 // messages that could not be read
	if *file != "" {
		var f *os.File
		if f, err = os.Open(*file); err == nil {
			err = batch.Read(f, *ctype, print(*ctype))
			f.Close()
		}
	} else {
		err = consume(*brokers, *topic, *n, func(m *kafka.Message) {
			if err := messageRecords(m, print); err != nil {
				out.Flush()
				fmt.Fprintf(os.Stderr, "gokafka-batch: message at partition %d offset %v: %v\n", m.TopicPartition.Partition, m.TopicPartition.Offset, err)
				bad++
			}
		})
	}
	out.Flush()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gokafka-batch:", err)
		os.Exit(1)
	}
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "gokafka-batch: %d messages could not be read\n", bad)
		os.Exit(1)
	}
}

// messageRecords calls the function print gives for m's content type with
// each record of batch message m, and checks that m holds as many as its
// headers say.
func messageRecords(m *kafka.Message, print func(contentType string) func([]byte) error) error {
	if header(m, batch.ContentEncodingHeader) != "lz4" {
		return fmt.Errorf("not a batch message: no %s lz4 header", batch.ContentEncodingHeader)
	}
	count := header(m, batch.RecordsHeader)
	want, err := strconv.Atoi(count)
	if err != nil || want < 1 {
		return fmt.Errorf("its %s header is missing or not a count of records: %q", batch.RecordsHeader, count)
	}
	contentType := header(m, batch.ContentTypeHeader)
	got, fn := 0, print(contentType)
	if err := batch.Records(m.Value, contentType, func(rec []byte) error { got++; return fn(rec) }); err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%d records, where its %s header says %d", got, batch.RecordsHeader, want)
	}
	return nil
}

func header(m *kafka.Message, name string) string {
	for _, h := range m.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

// consume reads topic from the beginning of every partition to its end, or
// n messages if n > 0 and sooner, and calls fn with each message.
func consume(brokers, topic string, n int, fn func(*kafka.Message)) error {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": brokers, "group.id": fmt.Sprintf("gokafka-batch-%d", time.Now().UnixNano()),
		"auto.offset.reset": "earliest", "enable.auto.commit": false, "enable.partition.eof": true,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return err
	}
	if err := md.Topics[topic].Error; err.Code() != kafka.ErrNoError {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	var parts []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partitions", topic)
	}
	if err := c.Assign(parts); err != nil {
		return err
	}
	eof := map[int32]bool{}
	lastErr := ""
	for got := 0; n == 0 || got < n; {
		switch e := c.Poll(1000).(type) {
		case *kafka.Message:
			got++
			delete(eof, e.TopicPartition.Partition)
			fn(e)
		case kafka.PartitionEOF:
			if eof[e.Partition] = true; len(eof) == len(parts) {
				return nil
			}
		case kafka.Error:
			if e.IsFatal() {
				return e
			}
			if e.String() != lastErr { // said once while it lasts: librdkafka repeats it at each reconnect
				lastErr = e.String()
				fmt.Fprintln(os.Stderr, "gokafka-batch:", e)
			}
		}
	}
	return nil
}
