#!/usr/bin/env bash
# Run the whole platform in one process on embedded defaults (SQLite in the
# data dir, in-process bus, queue and rate limits, snapshots in the data dir;
# no Redis, PostgreSQL or S3 needed), with the detector on ONNX Runtime (CPU).
# Arguments go to `panoptes up`: --listen 127.0.0.1:8080 --data-dir .data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_rust
ensure_onnxruntime
cargo build --release --locked --bin panoptes
exec ./target/release/panoptes up "$@"
