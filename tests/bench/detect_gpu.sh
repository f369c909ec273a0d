#!/usr/bin/env bash
# Device check for a GPU machine: the detector on ONNX Runtime's CUDA
# execution provider (the onnxruntime-gpu 1.31.1 wheel, CUDA 13 builds, with
# its nvidia-* dependency wheels), frames/s by batch size on one GPU, and the
# same on the CPU for reference. Needs an NVIDIA driver with CUDA 13 support
# and PyPI (the wheels are about 1.5 GB). Fails if the CUDA provider does not
# load (no silent CPU fallback here: that is what this checks).
#   BATCHES="1 2 4 8 16 32" bash tests/bench/detect_gpu.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
BATCHES="${BATCHES:-1 2 4 8 16 32}"
ensure_rust
apt_install ffmpeg opencv-doc python3-venv
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
gpu="$TOOLS/gpu-venv"
if [ ! -x "$gpu/bin/python" ]; then
  python3 -m venv "$gpu"
  "$gpu/bin/pip" install -q "onnxruntime-gpu==$ORT_VERSION" numpy pillow \
    "nvidia-cuda-runtime~=13.0" "nvidia-cublas~=13.0" "nvidia-curand~=10.0" "nvidia-cufft~=12.0" \
    "nvidia-cuda-nvrtc~=13.0" "nvidia-cudnn-cu13~=9.0"
fi
site="$(ls -d "$gpu"/lib/python3*/site-packages)"
export ORT_DYLIB_PATH="$site/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION"
# The CUDA provider library sits next to libonnxruntime; its CUDA, cuBLAS and
# cuDNN dependencies come from the nvidia-* wheels.
LD_LIBRARY_PATH="$(find "$site/nvidia" -maxdepth 3 -type d -name lib | tr '\n' ':')${LD_LIBRARY_PATH:-}"
export LD_LIBRARY_PATH
frames="$TOOLS/bench/frames"
if [ "$(ls "$frames"/*.jpg 2>/dev/null | wc -l)" != 200 ]; then
  rm -rf "$frames"; mkdir -p "$frames"
  ffmpeg -v error -y -i /usr/share/doc/opencv-doc/examples/data/vtest.avi \
    -vf "select='not(mod(n\,3))'" -vsync vfr -frames:v 200 -q:v 3 "$frames/f_%03d.jpg"
fi
cargo build --release --locked -q -p panoptes-bench --bin detect-bench
for b in $BATCHES; do
  line="$(./target/release/detect-bench --frames "$frames" --provider cuda --batch "$b" --threads 0 --concurrency 2)"
  echo "$line"
  echo "$line" | grep -q '"provider":"Cuda' || { echo "the CUDA execution provider did not load" >&2; exit 1; }
done
for b in 1 8; do
  ./target/release/detect-bench --frames "$frames" --provider cpu --batch "$b" --threads 0
done
