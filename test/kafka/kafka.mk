# Makefile fragment: a local Apache Kafka broker for `make run` and manual tests, run by
# test/kafka/kafka.sh (Java 17+ and Maven needed; see its header). Include it from the project
# Makefile with `include test/kafka/kafka.mk`. Its bootstrap address is $(KAFKA_BOOTSTRAP).
#
#   make kafka-fetch   resolve the broker's jars into the cache (~/.cache/gokafka)
#   make kafka-up      start the broker in $(KAFKA_DIR), data wiped (nothing if it already runs)
#   make kafka-down    stop it
#
# Go tests do not use this broker: they start their own on other ports, or use the cluster
# named by GOKAFKA_BROKERS.

KAFKA_SH := $(dir $(lastword $(MAKEFILE_LIST)))kafka.sh
KAFKA_DIR ?= build/kafka
KAFKA_PORT ?= 29092
KAFKA_CONTROLLER_PORT ?= 29093
KAFKA_BOOTSTRAP = 127.0.0.1:$(KAFKA_PORT)

.PHONY: kafka-fetch kafka-up kafka-down

kafka-fetch:
	bash $(KAFKA_SH) fetch

kafka-up:
	@if bash $(KAFKA_SH) status --dir $(KAFKA_DIR) >/dev/null; then \
		echo "kafka: already running at $(KAFKA_BOOTSTRAP) (in $(KAFKA_DIR))"; \
	else \
		bash $(KAFKA_SH) start --dir $(KAFKA_DIR) --port $(KAFKA_PORT) \
			--controller-port $(KAFKA_CONTROLLER_PORT) >/dev/null && \
		echo "kafka: running at $(KAFKA_BOOTSTRAP) (log: $(KAFKA_DIR)/kafka.log)"; \
	fi

kafka-down:
	bash $(KAFKA_SH) stop --dir $(KAFKA_DIR)
