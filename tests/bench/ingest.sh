#!/usr/bin/env bash
# Ingest benchmark: what one H.264 camera costs an ingest node, at 720p and
# 1080p (vtest.avi scaled, 25 fps, Constrained Baseline, GOP 25).
#  1. Decode throughput, one thread: OpenH264 (ours) vs FFmpeg's h264 decoder
#     (the reference, same file, same run), frames/s and CPU ms per frame.
#  2. The ingest role's real path: STREAMS concurrent RTSP sessions from the
#     GStreamer RTSP server in real time, every frame decoded, 2 frames/s
#     resized to 1280 wide and JPEG-encoded: CPU cores per stream, hence
#     cameras per 2-core node.
# Usage: ROUNDS=3 STREAMS=4 SECONDS_PER_RUN=20 bash tests/bench/ingest.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"; STREAMS="${STREAMS:-4}"; SECONDS_PER_RUN="${SECONDS_PER_RUN:-20}"
ensure_rust
ensure_rtsp --bench
cargo build --release --locked -q -p panoptes-bench --bin ingest-bench
BIN="$ROOT/target/release/ingest-bench"
MEDIA="$TOOLS/media"; OUT="$TOOLS/bench-ingest"; mkdir -p "$OUT"
PORT=18554
/usr/bin/python3 tests/rtsp/serve.py "$PORT" "720p=$MEDIA/vtest-720p.mp4" "1080p=$MEDIA/vtest-1080p.mp4" > "$OUT/rtsp.log" 2>&1 &
RTSP_PID=$!
trap 'kill $RTSP_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q ready "$OUT/rtsp.log" && break; sleep 0.1; done

for res in 720p 1080p; do
  h264="$OUT/vtest-$res.h264"
  [ -s "$h264" ] || ffmpeg -v error -y -i "$MEDIA/vtest-$res.mp4" -c:v copy -bsf:v h264_mp4toannexb -f h264 "$h264"
  for r in $(seq 1 "$ROUNDS"); do
    # Alternate the order so drift on this shared machine hits both alike.
    ours() { "$BIN" decode "$h264" | sed "s/^/{\"res\":\"$res\",\"round\":$r,\"who\":\"openh264\",\"r\":/; s/\$/}/"; }
    ref() {
      local line frames utime
      line="$(ffmpeg -hide_banner -benchmark -threads 1 -i "$h264" -f null - 2>&1)"
      frames="$(grep -Eo 'frame= *[0-9]+' <<<"$line" | tail -n 1 | grep -Eo '[0-9]+')"
      utime="$(grep -Eo 'utime=[0-9.]+' <<<"$line" | tail -n 1 | cut -d= -f2)"
      rtime="$(grep -Eo 'rtime=[0-9.]+' <<<"$line" | tail -n 1 | cut -d= -f2)"
      echo "{\"res\":\"$res\",\"round\":$r,\"who\":\"ffmpeg\",\"r\":{\"frames\":$frames,\"fps\":$(python3 -c "print($frames/$rtime)"),\"cpu_ms_per_frame\":$(python3 -c "print($utime*1000/$frames)")}}"
    }
    if [ $((r % 2)) = 1 ]; then ours; ref; else ref; ours; fi
  done
  for r in $(seq 1 "$ROUNDS"); do
    "$BIN" pull "rtsp://127.0.0.1:$PORT/$res" --streams "$STREAMS" --seconds "$SECONDS_PER_RUN" |
      sed "s/^/{\"res\":\"$res\",\"round\":$r,\"who\":\"pull\",\"r\":/; s/\$/}/"
  done
done | tee "$OUT/results.jsonl"

python3 - "$OUT/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = lambda xs: statistics.median(xs)
print("\n| res | decoder | frames/s (median) | CPU ms/frame | ratio vs ffmpeg |")
print("|---|---|---|---|---|")
for res in ("720p", "1080p"):
    o = [r["r"] for r in rows if r["res"] == res and r["who"] == "openh264"]
    f = [r["r"] for r in rows if r["res"] == res and r["who"] == "ffmpeg"]
    of, ff = med([x["fps"] for x in o]), med([x["fps"] for x in f])
    print(f"| {res} | OpenH264 (ingest) | {of:.0f} | {med([x['cpu_ms_per_frame'] for x in o]):.2f} | {of/ff:.2f}x |")
    print(f"| {res} | FFmpeg h264 (reference) | {ff:.0f} | {med([x['cpu_ms_per_frame'] for x in f]):.2f} | 1.00x |")
print("\n| res | streams | decoded fps/stream | sampled fps/stream | JPEG KiB | CPU cores/stream | cameras per 2-core node (100% / 80%) |")
print("|---|---|---|---|---|---|---|")
for res in ("720p", "1080p"):
    p = [r["r"] for r in rows if r["res"] == res and r["who"] == "pull"]
    cores = med([x["cpu_cores_per_stream"] for x in p])
    print(f"| {res} | {p[0]['streams']} | {med([x['decoded_fps_per_stream'] for x in p]):.1f} | "
          f"{med([x['sampled_fps_per_stream'] for x in p]):.2f} | {med([x['jpeg_kb'] for x in p]):.0f} | "
          f"{cores:.3f} | {2/cores:.0f} / {1.6/cores:.0f} |")
PY
