"""Give a converted TF model with one NHWC image input an NCHW input named
`images` (a Transpose in front), the layout every Panoptes model adapter feeds.

usage: python nchw_input.py IN.onnx OUT.onnx   (onnx==1.23.2)
"""
import sys

import onnx
from onnx import TensorProto, helper


def main(src, dst):
    m = onnx.load(src)
    (old,) = m.graph.input
    dims = [d.dim_value for d in old.type.tensor_type.shape.dim]
    assert len(dims) == 4 and dims[3] == 3, f"expected [N,H,W,3], found {dims}"
    n, h, w, c = dims
    new = helper.make_tensor_value_info("images", TensorProto.FLOAT, [n, c, h, w])
    transpose = helper.make_node("Transpose", ["images"], [old.name], perm=[0, 2, 3, 1],
                                 name="images_nchw_to_nhwc")
    m.graph.node.insert(0, transpose)
    m.graph.input.remove(old)
    m.graph.input.append(new)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    print(f"{dst}: input images {[n, c, h, w]}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
