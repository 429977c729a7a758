# gokafka: Kafka output plugin for Fluent Bit.
#   make build   out_gokafka.so
#   make test    every test, against a local Kafka broker started for the run
#   make run     the plugin end to end on sample container logs
#   make bench   benchmarks
SHELL := /bin/bash
GO ?= go
SO := build/out_gokafka.so
# librdkafka and OpenSSL are linked in statically; keep their symbols private.
LDFLAGS := -ldflags=-extldflags=-Wl,--exclude-libs,ALL
# librdkafka's static TLS exceeds glibc's dlopen reserve (see README).
export GLIBC_TUNABLES := glibc.rtld.optional_static_tls=65536
CKG_DIR = $(shell $(GO) list -m -f '{{.Dir}}' github.com/confluentinc/confluent-kafka-go/v2)

.PHONY: build test lint run bench clean header

build: $(SO)

# rdkafka.h comes from the pinned confluent-kafka-go module (the librdkafka it
# links); it is copied, not committed.
header: rdk/rdkafka.h
rdk/rdkafka.h: go.mod
	$(GO) mod download github.com/confluentinc/confluent-kafka-go/v2
	install -m 644 $(CKG_DIR)/kafka/librdkafka_vendor/rdkafka.h $@

$(SO): rdk/rdkafka.h $(shell find . -name '*.go' -not -path './test/*') $(wildcard rdk/*.c rdk/*.h) go.mod go.sum
	@mkdir -p build
	$(GO) build -buildmode=c-shared $(LDFLAGS) -o $@ .

-include test/kafka/kafka.mk
