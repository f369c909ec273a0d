#!/usr/bin/env bash
# Detector accuracy report on the labelled evaluation set (tests/accuracy):
# precision, recall, AP@0.5 and the per-frame count error in the frame and in
# the queue zone, by confidence threshold, raw and calibrated, for every
# shipped model side by side (NanoDet-m at its own 416x416, the CPU default, and
# at 448x576, the GPU default), with frames/s on the same frames; then counting
# from confirmed tracks against counting boxes over the whole of vtest.avi.
#   bash tests/bench/accuracy.sh                 held-out (test) split
#   SPLIT=all bash tests/bench/accuracy.sh       every labelled image
#   FIT=1 bash tests/bench/accuracy.sh           refit each model's calibration
#                                                on the fit split first
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
ensure_rust
ensure_onnxruntime
apt_install ffmpeg opencv-doc
cargo build --release --locked -q -p panoptes-bench --bin accuracy-report
args=(--split "${SPLIT:-test}" --threads "${THREADS:-2}"
  --model nanodet=workers/models/nanodet-m-416.onnx
  --model nanodet@448x576=workers/models/nanodet-m-416.onnx
  --model ssd=workers/models/ssdlite-mobilenet-v2-coco.onnx
  --sequence /usr/share/doc/opencv-doc/examples/data/vtest.avi
  --json "$TOOLS/bench/accuracy.json")
[ -n "${FIT:-}" ] && args+=(--fit)
mkdir -p "$TOOLS/bench"
./target/release/accuracy-report "${args[@]}"
