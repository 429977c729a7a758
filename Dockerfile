# Fluent Bit with the gokafka output plugin.
#
#   docker build -t fluent-bit-gokafka .
#   docker run --rm -v "$PWD/my.conf:/fluent-bit/etc/fluent-bit.conf:ro" fluent-bit-gokafka
#
# The configuration loads the plugin with a plugins file: the image's
# /fluent-bit/etc/plugins.conf (named by the stock fluent-bit.conf as
# `plugins_file plugins.conf`) or /fluent-bit/plugins/plugins.conf, which stays
# visible when a volume replaces /fluent-bit/etc. See the README, "Container
# image and Kubernetes".

# The Fluent Bit release whose plugin contract the project's test host follows.
ARG FLUENT_BIT_VERSION=5.1.1

# ---- build: the .so, made exactly as the README and CI make it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build \
	&& printf '[PLUGINS]\n    Path /fluent-bit/plugins/out_gokafka.so\n' > build/plugins.conf

# ---- the official Fluent Bit image (distroless: no shell), plus the plugin.
FROM fluent/fluent-bit:${FLUENT_BIT_VERSION}
LABEL org.opencontainers.image.title="fluent-bit-gokafka" \
	org.opencontainers.image.description="Fluent Bit with the gokafka Kafka output plugin (at-least-once delivery)"
COPY --from=build /src/build/out_gokafka.so /fluent-bit/plugins/out_gokafka.so
COPY --from=build /src/build/plugins.conf /fluent-bit/plugins/plugins.conf
COPY --from=build /src/build/plugins.conf /fluent-bit/etc/plugins.conf
# The .so links librdkafka and OpenSSL statically; their initial-exec TLS is
# more than glibc reserves for dlopen. Read by glibc at process start.
ENV GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536
# 2020: Fluent Bit's HTTP server; 2021: gokafka's Metrics_Listen in deploy/.
EXPOSE 2020 2021
# ENTRYPOINT and CMD are the base image's: fluent-bit -c /fluent-bit/etc/fluent-bit.conf
