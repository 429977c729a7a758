// Package batch reads the messages gokafka writes in batch mode: each value
// is an LZ4 frame of records, newline-delimited (JSON, logfmt, raw) or a
// msgpack stream, as the message's content-type header says. JSON and logfmt
// records hold no newline; a raw record keeps those inside its text, so it
// reads as several lines, and the gokafka.records header counts records,
// not lines.
package batch

import (
	"bytes"
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
	FirstTimeHeader       = "gokafka.first_time" // earliest event time of its records, RFC 3339
	LastTimeHeader        = "gokafka.last_time"  // latest
)

// Headers names every header of a batch message.
var Headers = []string{ContentTypeHeader, ContentEncodingHeader, RecordsHeader, FirstTimeHeader, LastTimeHeader}

// Content types of batch messages.
const (
	NDJSON  = "application/x-ndjson" // JSON records, one per line
	Msgpack = "application/msgpack"  // msgpack records, one after another
	Text    = "text/plain"           // logfmt or raw records, newline-terminated
)

// Records calls fn with each record of a batch message's value; records
// are slices of the value decompressed for this call alone, so fn may keep
// them. A malformed msgpack record is reported with its offset in the
// decompressed value.
func Records(value []byte, contentType string, fn func(record []byte) error) error {
	raw, err := io.ReadAll(lz4.NewReader(bytes.NewReader(value)))
	if err != nil {
		return fmt.Errorf("lz4 frame: %w", err)
	}
	if contentType == Msgpack {
		for off := 0; off < len(raw); {
			rest, err := msgp.Skip(raw[off:])
			if err != nil {
				return fmt.Errorf("msgpack record at byte %d: %w", off, err)
			}
			end := len(raw) - len(rest)
			if err := fn(raw[off:end]); err != nil {
				return err
			}
			off = end
		}
		return nil
	}
	for len(raw) > 0 {
		line, rest, found := bytes.Cut(raw, []byte{'\n'})
		if !found {
			return fmt.Errorf("last record has no newline")
		}
		if err := fn(line); err != nil {
			return err
		}
		raw = rest
	}
	return nil
}
