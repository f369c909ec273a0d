"""The Python onnxruntime pipeline on a folder of JPEG frames, for the detector
benchmark: Pillow decode and bilinear resize, numpy normalisation, one
onnxruntime session, numpy GFL decoding and NMS (workers/tests/fixtures/
reference.py, the same code the Rust detector is tested against). Prints one
JSON line like detect-bench.

usage: python detect_python.py FRAMES_DIR THREADS BATCH
"""
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workers" / "tests" / "fixtures"))
import reference  # noqa: E402

frames_dir, threads, batch = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
jpegs = [p.read_bytes() for p in sorted(frames_dir.glob("*.jpg"))]
sess = reference.session(threads)


def run(chunk):
    t0 = time.perf_counter()
    pre = [reference.preprocess(j) for j in chunk]
    x = np.stack([p[0] for p in pre])
    t1 = time.perf_counter()
    outs = sess.run(None, {"input_1:0": x})
    t2 = time.perf_counter()
    people = sum(len(reference.postprocess([o[i] for o in outs], w, h)) for i, (_, w, h) in enumerate(pre))
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, t3 - t0, people


chunks = [jpegs[i : i + batch] for i in range(0, len(jpegs), batch)]
for c in chunks[:3]:
    run(c)
per_frame, pre, infer, post, people = [], 0.0, 0.0, 0.0, 0
start = time.perf_counter()
for c in chunks:
    a, b, d, total, n = run(c)
    pre, infer, post, people = pre + a, infer + b, post + d, people + n
    per_frame += [total * 1000 / len(c)] * len(c)
wall = time.perf_counter() - start
per_frame.sort()
total = pre + infer + post
pct = lambda p: per_frame[round((len(per_frame) - 1) * p)]
print(json.dumps({
    "pipeline": "python", "provider": "Cpu", "batch": batch, "threads": threads, "frames": len(jpegs),
    "fps": len(jpegs) / wall, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
    "pre_share": pre / total, "infer_share": infer / total, "post_share": post / total, "people": people,
}))
