// Package batch reads the messages gokafka writes in batch mode: each value
// is an LZ4 frame of records, newline-delimited (JSON, logfmt, raw) or a
// msgpack stream, as the message's content-type header says. JSON and logfmt
// records hold no newline; a raw record keeps those inside its text, so it
// reads as several lines, and the gokafka.records header counts records,
// not lines.
package batch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
	"github.com/tinylib/msgp/msgp"
)

// Headers of a batch message.
const (
	ContentTypeHeader     = "content-type"     // how records are separated: a content type below
	ContentEncodingHeader = "content-encoding" // lz4
	RecordsHeader         = "gokafka.records"
	FirstTimeHeader       = "gokafka.first_time" // earliest event time of its records, in TimeLayout
	LastTimeHeader        = "gokafka.last_time"  // latest
)

// TimeLayout is the layout of the time headers: RFC 3339 in UTC to the
// millisecond, of one width from year 0 to 9999, so that times sort as text.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Headers names the headers the plugin itself sets on every batch message.
var Headers = []string{ContentTypeHeader, ContentEncodingHeader, RecordsHeader, FirstTimeHeader, LastTimeHeader}

// Content types of batch messages.
const (
	NDJSON  = "application/x-ndjson" // JSON records, one per line
	Msgpack = "application/msgpack"  // msgpack records, one after another
	Text    = "text/plain"           // logfmt or raw records, newline-terminated
)

// MaxRecord bounds the size of a record Read returns, against a value
// that decompresses to more than any record plausibly holds.
const MaxRecord = 64 << 20

// Records calls fn with each record of a batch message's value (Read): a
// record is valid only during fn's call.
func Records(value []byte, contentType string, fn func(record []byte) error) error {
	return Read(bytes.NewReader(value), contentType, fn)
}

// Read calls fn with each record of the batch message values read from r,
// one value or values one after another (as a consumer writes them to a
// file), decompressing as it goes: memory stays within a record's size.
// A record is valid only during fn's call. A malformed msgpack record is
// reported with its offset in the decompressed stream.
func Read(r io.Reader, contentType string, fn func(record []byte) error) error {
	return read(r, contentType, MaxRecord, fn)
}

func read(r io.Reader, contentType string, maxRecord int, fn func(record []byte) error) error {
	const bufSize = 64 << 10
	if contentType == Msgpack {
		return readMsgpack(msgp.NewReaderSize(lz4.NewReader(r), bufSize), maxRecord, fn)
	}
	br := bufio.NewReaderSize(lz4.NewReader(r), bufSize)
	var long []byte // a record longer than br's buffer
	for {
		line, err := br.ReadSlice('\n')
		if len(long)+len(line) > maxRecord+1 {
			return fmt.Errorf("record longer than %d bytes", maxRecord)
		}
		switch err {
		case nil:
		case bufio.ErrBufferFull:
			long = append(long, line...)
			continue
		case io.EOF:
			if len(long)+len(line) > 0 {
				return errors.New("last record has no newline")
			}
			return nil
		default:
			return fmt.Errorf("lz4 frame: %w", err)
		}
		if len(long) > 0 {
			line = append(long, line...)
			long = line[:0]
		}
		if err := fn(line[:len(line)-1]); err != nil {
			return err
		}
	}
}

func readMsgpack(rd *msgp.Reader, maxRecord int, fn func(record []byte) error) error {
	var rec bytes.Buffer
	for off := int64(0); ; {
		if _, err := rd.R.Peek(1); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("lz4 frame: %w", err)
		}
		rec.Reset()
		n, err := rd.CopyNext(&limitedWriter{&rec, maxRecord})
		if err != nil {
			return fmt.Errorf("msgpack record at byte %d: %w", off, err)
		}
		if err := fn(rec.Bytes()); err != nil {
			return err
		}
		off += n
	}
}

// limitedWriter writes to w up to n bytes in all, then fails.
type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("record longer than %d bytes", l.w.Len()+l.n)
	}
	l.n -= len(p)
	return l.w.Write(p)
}
