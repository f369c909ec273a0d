# syntax=docker/dockerfile:1.7
# The pipeline roles (`panoptes worker --role ...`) on CPU: the `panoptes`
# launcher, the shipped NanoDet-m model with its calibration files, and
# ONNX Runtime 1.31.1's library from its PyPI wheel (loaded at run time).
# Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t panoptes-worker .
# Run one role per container: `docker run panoptes-worker worker --role detect`.

FROM rust:1.95-bookworm AS build
# nasm: libjpeg-turbo's SIMD code (mozjpeg-sys builds it from source).
RUN apt-get update \
    && apt-get install -y --no-install-recommends nasm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY shared shared
COPY infra infra
COPY gateway gateway
COPY workers workers
COPY tests/bench tests/bench
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p panoptes-launcher --bin panoptes \
    && install -D -m 0755 target/release/panoptes /out/panoptes

FROM python:3.11-slim-bookworm AS onnxruntime
RUN pip install --no-cache-dir --target /wheel onnxruntime==1.31.1 \
    && install -D -m 0644 /wheel/onnxruntime/capi/libonnxruntime.so.1.31.1 \
        /out/libonnxruntime.so.1.31.1

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/panoptes --create-home panoptes
COPY --from=build /out/panoptes /usr/local/bin/panoptes
COPY --from=onnxruntime /out/libonnxruntime.so.1.31.1 /opt/panoptes/lib/
COPY workers/models/nanodet-m-416.onnx \
     workers/models/nanodet-m-416.calibration.json \
     workers/models/nanodet-m-416.448x576.calibration.json \
     workers/models/LICENSE-nanodet-Apache-2.0.txt \
     /opt/panoptes/models/
USER 10001:10001
ENV PANOPTES__WORKER__METRICS_LISTEN=0.0.0.0:9464 \
    PANOPTES__DATA__DIR=/var/lib/panoptes \
    PANOPTES__LOG__FORMAT=json \
    PANOPTES__DETECTOR__EXECUTION_PROVIDER=cpu \
    PANOPTES__DETECTOR__MODEL_PATH=/opt/panoptes/models/nanodet-m-416.onnx \
    PANOPTES__DETECTOR__ORT_LIBRARY=/opt/panoptes/lib/libonnxruntime.so.1.31.1
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/panoptes", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/panoptes"]
CMD ["worker", "--role", "detect"]
