# gokafka: Kafka output plugin for Fluent Bit.
#   make build   out_gokafka.so
#   make test    every test: lint, unit, end to end against Kafka brokers the tests start, fuzzing
#   make run     the plugin end to end on sample container logs
#   make bench   benchmarks (make bench-fluent-bit FLUENT_BIT=...: against the built-in kafka output)
SHELL := /bin/bash
GO ?= go
SO := build/out_gokafka.so
# librdkafka and OpenSSL are linked in statically; keep their symbols private.
LDFLAGS := -ldflags=-extldflags=-Wl,--exclude-libs,ALL
# librdkafka's static TLS exceeds glibc's dlopen reserve (see README); added
# to the tunables already set.
override export GLIBC_TUNABLES := $(if $(GLIBC_TUNABLES),$(GLIBC_TUNABLES):)glibc.rtld.optional_static_tls=65536
CKG := github.com/confluentinc/confluent-kafka-go/v2

.PHONY: build test unit lint deps fuzz run bench bench-fluent-bit clean header docs

build: $(SO)

# rdkafka.h comes from the pinned confluent-kafka-go module (the librdkafka it
# links); it is copied, not committed.
header: rdk/rdkafka.h
# The module's directory is looked up once it is downloaded: make expands a
# recipe's lines before running the first.
rdk/rdkafka.h: go.mod
	$(GO) mod download $(CKG)
	install -m 644 "$$($(GO) list -m -f '{{.Dir}}' $(CKG))/kafka/librdkafka_vendor/rdkafka.h" $@

$(SO): rdk/rdkafka.h $(shell find . -name '*.go' -not -path './test/*') $(wildcard rdk/*.c rdk/*.h) go.mod go.sum
	@mkdir -p build
	$(GO) build -buildmode=c-shared -buildvcs=false $(LDFLAGS) -o $@ .

include test/kafka/kafka.mk

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The Go modules and the linter, fetched ahead (.ci/run tries again on a network error).
deps:
	$(GO) mod download
	$(GO) install $(STATICCHECK)

# Formatting, vet and staticcheck; fails on any finding.
lint: rdk/rdkafka.h
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Every test; the ones that need Kafka start their own broker from the jars
# (test/kafka/kafka.sh), or use $$GOKAFKA_BROKERS when it is set.
test: lint
	$(GO) test -p 1 -count=1 -timeout 30m ./...
	$(MAKE) fuzz FUZZTIME=300000x

# Tests that need neither Kafka nor the C host.
unit: rdk/rdkafka.h
	$(GO) test -count=1 ./conf ./ra ./chunk ./encode ./accumulator ./sender ./plugin ./metrics ./batch ./registry ./mskiam .

# Budgets count executions: a duration can end a run with a spurious
# "context deadline exceeded" failure in Go 1.26 (golang/go#75804).
FUZZTIME ?= 1000000x
# Every fuzz test in the repository's test files, as package:name; none
# found, or one that go test does not build, fails the run.
FUZZ_TARGETS = $(shell git ls-files '*_test.go' | xargs grep -o '^func Fuzz[A-Za-z0-9_]*' | sed 's|^|./|; s|/[^/]*:func |:|' | sort)
fuzz: rdk/rdkafka.h
	@targets="$(FUZZ_TARGETS)"; test -n "$$targets" || { echo "fuzz: no fuzz tests found"; exit 1; }; \
	for t in $$targets; do \
		echo "fuzz $$t for $(FUZZTIME)"; \
		out=$$($(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) 2>&1); rc=$$?; echo "$$out"; \
		case $$out in *"no fuzz tests to fuzz"*) echo "fuzz: $$t was not built"; exit 1;; esac; \
		test $$rc = 0 || exit 1; \
	done

# Micro-benchmarks with allocation counts, then the end-to-end benchmark
# (test/bench): 1M generated container log records through the C test host,
# Workers 0 and 2, and through two floors (confluent-kafka-go, the thin C
# path) into a local broker; its table also goes to build/bench/results.md.
# docs/performance.md explains the figures.
bench: rdk/rdkafka.h
	GOKAFKA_LOGGEN=$(abspath $(LOGGEN)) $(GO) test -run '^$$' -bench . -benchmem ./chunk ./encode ./accumulator ./plugin
	GOKAFKA_LOGGEN=$(abspath $(LOGGEN)) $(GO) test ./test/bench -run '^$$' -bench EndToEnd -benchtime 1x -timeout 30m

# gokafka against Fluent Bit's built-in kafka output, both in the real Fluent
# Bit named by FLUENT_BIT (never built here: bring one built with its kafka
# output): CPU, records/s and peak RSS on 1M container log lines, then what
# each delivers of records read while Kafka is down across a restart.
bench-fluent-bit: rdk/rdkafka.h
	@test -n "$(FLUENT_BIT)" || { echo "bench-fluent-bit: set FLUENT_BIT to a fluent-bit binary built with its kafka output"; exit 2; }
	GOKAFKA_FLUENT_BIT=$(abspath $(FLUENT_BIT)) GOKAFKA_LOGGEN=$(abspath $(LOGGEN)) $(GO) test ./test/bench -run '^$$' -bench FluentBit -benchtime 1x -timeout 30m

# The plugin end to end: a local broker, sample container logs through Fluent
# Bit when it is installed, else through the C test host, into a topic of
# this run's own; it fails unless every record comes back, and prints a few.
RUN_DIR := build/run
RUN_TOPIC ?= gokafka-demo
RUN_LINES ?= 5000
CONSUME = $(GO) run ./test/cmd/consume -brokers $(KAFKA_BOOTSTRAP) -n 3 -want $(RUN_LINES) -timeout 60s
run: build kafka-up
	@mkdir -p $(RUN_DIR)
	python3 $(LOGGEN) --format docker --lines $(RUN_LINES) > $(RUN_DIR)/sample.log
	@topic=$(RUN_TOPIC)-$$(date +%s); \
	if command -v fluent-bit >/dev/null; then \
		echo "run: through $$(command -v fluent-bit) into topic $$topic (its log: $(RUN_DIR)/fluent-bit.log)"; \
		SAMPLE_LOG=$(CURDIR)/$(RUN_DIR)/sample.log KAFKA_BROKERS=$(KAFKA_BOOTSTRAP) TOPIC=$$topic \
			fluent-bit -e $(CURDIR)/$(SO) -c examples/fluent-bit.conf > $(RUN_DIR)/fluent-bit.log 2>&1 & fb=$$!; \
		sleep 2; \
		if kill -0 $$fb 2>/dev/null; then $(CONSUME) -topic $$topic; rc=$$?; else rc=1; fi; \
		kill -TERM $$fb 2>/dev/null; wait $$fb; fbrc=$$?; \
		if [ $$rc -ne 0 ] || [ $$fbrc -ne 0 ]; then \
			echo "run: failed (Fluent Bit exited with $$fbrc); its log:"; tail -n 30 $(RUN_DIR)/fluent-bit.log; exit 1; \
		fi; \
		grep 'Kafka acknowledged' $(RUN_DIR)/fluent-bit.log; \
	else \
		echo "run: fluent-bit is not installed; through the C test host (test/host) into topic $$topic"; \
		$(GO) run ./test/cmd/mkchunks -in $(RUN_DIR)/sample.log -format docker -o $(RUN_DIR)/sample.chunks && \
		gcc -O2 -Wall -o $(RUN_DIR)/gokafka-host test/host/host.c -ldl -lpthread && \
		printf '[OUTPUT]\n    Name gokafka\n    Brokers %s\n    Topics %s\n    Chunks %s\n' \
			$(KAFKA_BOOTSTRAP) $$topic $(RUN_DIR)/sample.chunks > $(RUN_DIR)/host.conf && \
		$(RUN_DIR)/gokafka-host -q -p $(SO) -c $(RUN_DIR)/host.conf && \
		$(CONSUME) -topic $$topic; \
	fi

# docs/options.md from conf.Options.
docs:
	$(GO) run ./cmd/optdoc > docs/options.md

LOGGEN ?= $(or $(GOKAFKA_LOGGEN),../shared/data/gen-container-logs.py)

clean:
	rm -rf build rdk/rdkafka.h
