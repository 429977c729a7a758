package conf

import (
	"fmt"
	"strings"
)

// Markdown renders the option table as docs/options.md holds it.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# gokafka options\n\n")
	b.WriteString("Generated from `conf.Options` by `make docs`; a test fails when this file is stale.\n")
	b.WriteString("Sizes take K, M, G suffixes (powers of 1000, as Fluent Bit reads sizes) or KiB, MiB, GiB (powers of 1024), and decimals (`1.5M`); durations need a unit (`500ms`, `2s`).\n\n")
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, o := range Options {
		def := "`" + o.Default + "`"
		if o.Default == "" {
			def = ""
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", o.Name, o.Type, def, o.Doc)
	}
	fmt.Fprintf(&b, "| `%s<property>` | string | | Any librdkafka property, passed as it is; it overrides the plugin's own setting of that property. Refused: `delivery.report.only.error` true, `transactional.id`, an `internal.termination.signal` other than 0 (Fluent Bit's signals are its own), in batch mode a `compression.type` (or `compression.codec`) other than none, and with `AWS_MSK_IAM` a `security.protocol` other than SASL_SSL or SASL_PLAINTEXT (SASL_PLAINTEXT with a warning), a `sasl.mechanism` other than OAUTHBEARER, `sasl.oauthbearer.method` oidc and `enable.sasl.oauthbearer.unsecure.jwt` true. |\n", RdkafkaPrefix)
	b.WriteString("\nlibrdkafka settings the plugin makes unless an `rdkafka.` key overrides them:\n\n")
	for _, p := range (&Config{Brokers: "<Brokers>", ClientID: "<Client_ID>", Compression: "<Compression>"}).producerDefaults() {
		fmt.Fprintf(&b, "- `%s=%s`\n", p.Key, p.Value)
	}
	b.WriteString("\nWith `Metrics_Listen` also `statistics.interval.ms=5000`. With `AWS_MSK_IAM` also `security.protocol=SASL_SSL` and `sasl.mechanism=OAUTHBEARER`. In batch mode `linger.ms=0` and `compression.type=none`. In record mode a flush that waits " +
		"has librdkafka send its records at once rather than after `linger.ms`; an `rdkafka.linger.ms` " +
		"(or `rdkafka.queue.buffering.max.ms`) of your own turns that off, and every flush waits it out (above 5 ms, a warning at start). Records without a key go to one " +
		"partition per batch, the next batch to the next partition (as the Java client's sticky partitioner " +
		"does), rather than to librdkafka's sticky partition of the moment; an `rdkafka.partitioner` or " +
		"`rdkafka.sticky.partitioning.linger.ms` of your own turns that off. An `rdkafka.acks` other than all " +
		"(or -1), `rdkafka.max.in.flight` above 5 or `rdkafka.retries` 0 (or the same under their aliases), which " +
		"librdkafka's idempotence cannot have, turns `enable.idempotence` off with a warning, as the Java client " +
		"does, unless an `rdkafka.enable.idempotence` (or `rdkafka.enable.gapless.guarantee` true) of your own is set.\n")
	return b.String()
}
