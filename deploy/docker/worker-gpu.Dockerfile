# syntax=docker/dockerfile:1.7
# The detector on NVIDIA GPUs: the same `panoptes` launcher and model as
# worker.Dockerfile, with onnxruntime-gpu 1.31.1 (a CUDA 13 build) and the
# CUDA 13 / cuDNN 9 runtime libraries from NVIDIA's PyPI wheels, so no CUDA
# base image is needed: the host provides only the driver (NVIDIA Container
# Toolkit; ECS GPU-optimized AMI or the Kubernetes device plugin).
# Build from the repository root:
#   docker build -f deploy/docker/worker-gpu.Dockerfile -t panoptes-worker-gpu .

FROM rust:1.95-bookworm AS build
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
# The versions tests/bench/detect_gpu.sh measured on an H100.
RUN pip install --no-cache-dir --target /wheel onnxruntime-gpu==1.31.1 \
        "nvidia-cuda-runtime~=13.0" "nvidia-cublas~=13.0" "nvidia-curand~=10.0" \
        "nvidia-cufft~=12.0" "nvidia-cuda-nvrtc~=13.0" "nvidia-cudnn-cu13~=9.0" \
    && mkdir -p /out/cuda \
    && cp -a /wheel/onnxruntime/capi/libonnxruntime.so.1.31.1 \
        /wheel/onnxruntime/capi/libonnxruntime_providers_shared.so \
        /wheel/onnxruntime/capi/libonnxruntime_providers_cuda.so /out/ \
    && find /wheel/nvidia -path '*/lib/*.so*' -exec cp -a {} /out/cuda/ \;

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/panoptes --create-home panoptes
COPY --from=build /out/panoptes /usr/local/bin/panoptes
# The CUDA provider is loaded from next to libonnxruntime; its CUDA, cuBLAS
# and cuDNN dependencies from /opt/panoptes/lib/cuda.
COPY --from=onnxruntime /out/ /opt/panoptes/lib/
COPY workers/models/nanodet-m-416.onnx \
     workers/models/nanodet-m-416.calibration.json \
     workers/models/nanodet-m-416.448x576.calibration.json \
     workers/models/LICENSE-nanodet-Apache-2.0.txt \
     /opt/panoptes/models/
USER 10001:10001
ENV LD_LIBRARY_PATH=/opt/panoptes/lib/cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PANOPTES__WORKER__METRICS_LISTEN=0.0.0.0:9464 \
    PANOPTES__DATA__DIR=/var/lib/panoptes \
    PANOPTES__LOG__FORMAT=json \
    PANOPTES__DETECTOR__EXECUTION_PROVIDER=cuda \
    PANOPTES__DETECTOR__CONCURRENCY=2 \
    PANOPTES__DETECTOR__MODEL_PATH=/opt/panoptes/models/nanodet-m-416.onnx \
    PANOPTES__DETECTOR__ORT_LIBRARY=/opt/panoptes/lib/libonnxruntime.so.1.31.1
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/panoptes", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/panoptes"]
CMD ["worker", "--role", "detect"]
