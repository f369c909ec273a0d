# Converts a TF.js graph model (model.json + weight shards, the old JSON
# encoding with bytes as int lists) into a frozen TensorFlow GraphDef, for
# tf2onnx. Used by convert_ssdlite.sh.
#   python tfjs_to_pb.py model.json out.pb   (tensorflow-cpu 2.15.1)
import json, sys, os, numpy as np
import tensorflow as tf
from google.protobuf import json_format
mj, out = sys.argv[1], sys.argv[2]
d = os.path.dirname(mj); j = json.load(open(mj))
gd = tf.compat.v1.GraphDef()
topo = dict(j['modelTopology']); topo.pop('library', None); topo.pop('versions', None)
import base64
def fix(o, parent_is_list=False):
    # old tfjs JSON: bytes fields as int lists, empty repeated fields everywhere
    if isinstance(o, dict):
        r = {}
        for k, v in o.items():
            if isinstance(v, list) and not v and k != 's':
                continue
            if k == 's' and isinstance(v, list) and (not v or isinstance(v[0], int)) and not parent_is_list:
                r[k] = base64.b64encode(bytes(v)).decode()
            elif k == 's' and isinstance(v, list):
                if not v: continue
                r[k] = [base64.b64encode(bytes(x)).decode() if isinstance(x, list) else x for x in v]
            elif isinstance(v, list) and not v:
                continue
            else:
                r[k] = fix(v, k == 'list')
        return r
    if isinstance(o, list): return [fix(x) for x in o]
    return o
topo = fix(topo)
json_format.ParseDict(topo, gd, ignore_unknown_fields=True)
buf = b''.join(open(os.path.join(d, p), 'rb').read() for g in j['weightsManifest'] for p in g['paths'])
W = {}; off = 0
for g in j['weightsManifest']:
    for w in g['weights']:
        assert 'quantization' not in w, w
        dt = {'float32': np.float32, 'int32': np.int32}[w['dtype']]
        n = int(np.prod(w['shape'])) if w['shape'] else 1
        W[w['name']] = np.frombuffer(buf, dt, n, off).reshape(w['shape']); off += n * 4
assert off == len(buf), (off, len(buf))
for node in gd.node:
    if node.op == 'Const' and node.name in W:
        node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(W[node.name]))
        node.attr['dtype'].type = node.attr['value'].tensor.dtype
    if node.op in ('Conv2D', 'DepthwiseConv2dNative', 'FusedBatchNorm', 'BiasAdd') and 'T' not in node.attr:
        node.attr['T'].type = tf.float32.as_datatype_enum
missing = [n.name for n in gd.node if n.op == 'Const' and not n.attr['value'].HasField('tensor')]
print('consts without value:', missing[:5], len(missing))
open(out, 'wb').write(gd.SerializeToString()); print('wrote', out, len(gd.node), 'nodes')
