#!/usr/bin/env bash
# Detector benchmark: our detect pipeline (tests/bench detect-bench: the
# decode, pre-processing, ONNX Runtime session and post-processing the detect
# role runs) against the Python onnxruntime pipeline (tests/bench/
# detect_python.py: Pillow, numpy, onnxruntime), same model (NanoDet-m 416),
# same 200 frames of vtest.avi, same intra-op thread count, same machine,
# alternating runs. Prints medians over ROUNDS: frames/s and ms/frame
# p50/p99 for each, the ratio, our pre+post share, and frames/s by batch size.
#   ROUNDS=3 THREADS=2 BATCHES="1 2 4 8" bash tests/bench/detect.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
BATCHES="${BATCHES:-1 2 4 8}"
ensure_rust
ensure_onnxruntime
apt_install ffmpeg opencv-doc
frames="$TOOLS/bench/frames"
if [ "$(ls "$frames"/*.jpg 2>/dev/null | wc -l)" != 200 ]; then
  log "extracting 200 frames of vtest.avi (every 3rd)"
  rm -rf "$frames"; mkdir -p "$frames"
  ffmpeg -v error -y -i /usr/share/doc/opencv-doc/examples/data/vtest.avi \
    -vf "select='not(mod(n\,3))'" -vsync vfr -frames:v 200 -q:v 3 "$frames/f_%03d.jpg"
fi
cargo build --release --locked -q -p panoptes-bench --bin detect-bench
out="$TOOLS/bench/detect.jsonl"; : > "$out"
for round in $(seq 1 "$ROUNDS"); do
  for b in $BATCHES; do
    log "round $round/$ROUNDS, batch $b: python, ours"
    "$TOOLS/venv/bin/python" tests/bench/detect_python.py "$frames" "$THREADS" "$b" | tee -a "$out"
    ./target/release/detect-bench --frames "$frames" --threads "$THREADS" --batch "$b" | tee -a "$out"
  done
done
"$TOOLS/venv/bin/python" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(p, b, k):
    return statistics.median(r[k] for r in rows if r["pipeline"] == p and r["batch"] == b)
batches = sorted({r["batch"] for r in rows})
print(f"\nmedians of {len(rows) // (2 * len(batches))} rounds; {rows[0]['frames']} frames, {rows[0]['threads']} intra-op threads")
print("| batch | python frames/s | ours frames/s | ratio | python p50 / p99 ms | ours p50 / p99 ms | ours pre+post share | python pre+post share |")
print("|---|---|---|---|---|---|---|---|")
for b in batches:
    py, rs = med("python", b, "fps"), med("rust", b, "fps")
    print(f"| {b} | {py:.1f} | {rs:.1f} | {rs / py:.2f}x | {med('python', b, 'p50_ms'):.1f} / {med('python', b, 'p99_ms'):.1f} "
          f"| {med('rust', b, 'p50_ms'):.1f} / {med('rust', b, 'p99_ms'):.1f} "
          f"| {100 * (med('rust', b, 'pre_share') + med('rust', b, 'post_share')):.1f} % "
          f"| {100 * (med('python', b, 'pre_share') + med('python', b, 'post_share')):.1f} % |")
people = {(r["pipeline"], r["batch"]): r["people"] for r in rows}
print("people found (python, ours):", sorted(set(people.values())))
PY
