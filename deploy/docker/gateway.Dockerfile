# syntax=docker/dockerfile:1.7
# The HTTP gateway alone (`panoptes-gateway`): no ONNX Runtime, no video
# codecs. Build from the repository root:
#   docker build -f deploy/docker/gateway.Dockerfile -t panoptes-gateway .
# Configured by PANOPTES__SECTION__KEY variables only (see `panoptes
# config-reference` for what production must set).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY shared shared
COPY infra infra
COPY gateway gateway
COPY workers workers
COPY tests/bench tests/bench
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p panoptes-gateway --bin panoptes-gateway \
    && install -D -m 0755 target/release/panoptes-gateway /out/panoptes-gateway

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/panoptes --create-home panoptes
COPY --from=build /out/panoptes-gateway /usr/local/bin/panoptes-gateway
USER 10001:10001
ENV PANOPTES__SERVER__LISTEN=0.0.0.0:8080 \
    PANOPTES__DATA__DIR=/var/lib/panoptes \
    PANOPTES__LOG__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/panoptes-gateway", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/panoptes-gateway"]
