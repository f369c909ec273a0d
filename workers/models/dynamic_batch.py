"""Free the batch dimension of a converted TF.js detector (and, with
--any-size, its picture height and width).

tf2onnx turns the TF.js head reshapes into `Reshape(x, [1, -1, C])` with the
target computed in the graph: a batch of N frames would come out as one frame
with N times the anchors. Each such target is evaluated once (onnxruntime, on a
batch of 1) and replaced by a constant `[0, -1, C]` (0 = keep the input's batch
dimension); the nodes that computed it are pruned; the outputs get a symbolic
batch dimension. Then it checks that a batch of 3 equals 3 single runs.

--any-size: the input's height and width and the outputs' cell counts become
symbolic too, for a fully convolutional detector whose head reshapes keep
only the channel count (NanoDet: `[0, C, -1]`): it then runs at any multiple
of its largest stride, for example 448x576 for 4:3 cameras. Checked: at the
native size the outputs are unchanged, and at 448x576 every output has the
cells of that grid.

usage: python dynamic_batch.py [--any-size] IN.onnx OUT.onnx   (needs onnx, onnxruntime, numpy)
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

args = [a for a in sys.argv[1:] if a != "--any-size"]
any_size = "--any-size" in sys.argv[1:]
src, dst = args[0], args[1]
model = onnx.load(src)
graph = model.graph
inits = {t.name for t in graph.initializer}
targets = sorted({n.input[1] for n in graph.node if n.op_type == "Reshape" and n.input[1] not in inits})

# Evaluate each computed reshape target on a batch of one.
probe = onnx.load(src)
for name in targets:
    probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.INT64, None))
session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
inp = session.get_inputs()[0]
x = np.zeros([1] + list(inp.shape[1:]), np.float32)
values = dict(zip(targets, session.run(targets, {inp.name: x})))

for name, value in values.items():
    assert value[0] == 1, f"{name} = {value}: batch dimension not leading"
    fixed = np.array([0] + list(value[1:]), np.int64)
    graph.initializer.append(numpy_helper.from_array(fixed, name + "_batched"))
    for n in graph.node:
        if n.op_type == "Reshape" and n.input[1] == name:
            n.input[1] = name + "_batched"
    print(f"reshape target {list(value)} -> {list(fixed)}")

# Prune what no longer feeds an output.
needed = {o.name for o in graph.output}
keep = []
for n in reversed(list(graph.node)):
    if any(o in needed for o in n.output):
        keep.append(n)
        needed.update(i for i in n.input if i)
del graph.node[:]
graph.node.extend(reversed(keep))
live = [t for t in graph.initializer if t.name in needed]
del graph.initializer[:]
graph.initializer.extend(live)
graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
for o in graph.output:
    o.type.tensor_type.shape.dim[0].dim_param = "batch"
if any_size:
    graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    graph.input[0].type.tensor_type.shape.dim[3].dim_param = "width"
    for o in graph.output:
        o.type.tensor_type.shape.dim[1].dim_param = "cells"
onnx.checker.check_model(model)
onnx.save(model, dst)

# A batch of three must equal three single frames.
check = ort.InferenceSession(dst, providers=["CPUExecutionProvider"])
xs = np.random.default_rng(0).standard_normal([3] + list(inp.shape[1:])).astype(np.float32)
batched = check.run(None, {inp.name: xs})
for i in range(3):
    single = check.run(None, {inp.name: xs[i : i + 1]})
    worst = max(float(np.abs(b[i] - s[0]).max()) for b, s in zip(batched, single))
    assert worst < 1e-4, f"frame {i}: batched differs by {worst}"
original = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
for i in range(3):
    same = max(
        float(np.abs(a - b).max())
        for a, b in zip(original.run(None, {inp.name: xs[i : i + 1]}), check.run(None, {inp.name: xs[i : i + 1]}))
    )
    assert same == 0.0, f"frame {i}: differs from the unpatched model by {same}"
print("batch of 3 == 3 single frames == unpatched model:", [tuple(b.shape) for b in batched])

if any_size:
    h, w = 448, 576
    outs = check.run(None, {inp.name: np.zeros([1, 3, h, w], np.float32)})
    grids = sorted({o.shape[1] for o in outs})
    want = sorted({(h // s) * (w // s) for s in (8, 16, 32)})
    assert grids == want, f"cells at {h}x{w}: {grids}, expected {want}"
    print(f"runs at {h}x{w}: cells {grids}")
