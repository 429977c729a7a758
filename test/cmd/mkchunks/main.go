// Command mkchunks turns a container log file into a chunk file for the C
// test host:
//
//	mkchunks -in file.log -format docker|cri -layout 1|2 -time eventtime|int|float -o chunks.bin
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gokafka/gokafka/test/fixture"
)

func main() {
	in := flag.String("in", "", "container log file (from gen-container-logs.py)")
	format := flag.String("format", "docker", "log format: docker or cri")
	layout := flag.Int("layout", 2, "record layout: 1 = [ts, body], 2 = [[ts, metadata], body]")
	tf := flag.String("time", "eventtime", "timestamp encoding: eventtime, int or float")
	size := flag.Int("chunk-bytes", 256<<10, "close a chunk once it reaches this many bytes")
	markers := flag.Bool("markers", false, "wrap each chunk in group start/end markers (layout 2)")
	out := flag.String("o", "chunks.bin", "output chunk file")
	flag.Parse()
	times := map[string]fixture.TimeFormat{"eventtime": fixture.EventTime, "int": fixture.Int, "float": fixture.Float}
	t, ok := times[*tf]
	if *in == "" || !ok || (*layout != 1 && *layout != 2) || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	recs, err := fixture.ReadContainerLog(*in, *format)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkchunks:", err)
		os.Exit(1)
	}
	chunks := fixture.EncodeChunks(recs, fixture.ChunkOptions{Layout: *layout, Time: t, ChunkBytes: *size, GroupMarkers: *markers})
	if err := fixture.WriteChunkFile(*out, chunks); err != nil {
		fmt.Fprintln(os.Stderr, "mkchunks:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "mkchunks: %d records in %d chunks -> %s\n", len(recs), len(chunks), *out)
}
