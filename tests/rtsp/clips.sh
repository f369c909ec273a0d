#!/usr/bin/env bash
# Test and benchmark footage: the OpenCV sample clip `vtest.avi` (Debian
# opencv-doc; pedestrians, 768x576, 10 fps, 795 frames) re-encoded to H.264
# (Constrained Baseline, a key frame every second, no B frames: what IP
# cameras send) as MP4 for the RTSP server, plus 720p and 1080p versions at
# 25 fps for the ingest benchmark (with --bench): played 2.5x faster so every
# frame is a real one (duplicated frames would decode unrealistically cheaply).
# Idempotent; writes into .tools/media.
set -euo pipefail
OUT="$(cd "$(dirname "$0")/../.." && pwd)/.tools/media"
SRC=/usr/share/doc/opencv-doc/examples/data/vtest.avi
mkdir -p "$OUT"
encode() { # name scale-filter fps
  local out="$OUT/$1.mp4"
  [ -s "$out" ] && return 0
  ffmpeg -v error -y -i "$SRC" -vf "$2" -r "$3" -c:v libx264 -profile:v baseline -preset veryfast \
    -tune zerolatency -g "$3" -bf 0 -pix_fmt yuv420p -an "$out.tmp.mp4"
  mv "$out.tmp.mp4" "$out"
}
encode vtest "null" 10
if [ "${1:-}" = --bench ]; then
  encode vtest-720p "setpts=PTS/2.5,scale=1280:720" 25
  encode vtest-1080p "setpts=PTS/2.5,scale=1920:1080" 25
fi
