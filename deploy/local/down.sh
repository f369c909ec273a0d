#!/usr/bin/env bash
# Stops what deploy/local/up.sh started in DIR, by PID: SIGTERM, then SIGKILL
# after 10 s. Data (PostgreSQL database, bucket, logs) is kept.
#   bash deploy/local/down.sh [--dir .data/local]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.data/local"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    *) echo "unknown argument $1 (--dir DIR)" >&2; exit 2 ;;
  esac
done
[ -d "$DIR/pids" ] || exit 0
pids=()
for f in "$DIR"/pids/*.pid; do
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  if kill -0 "$pid" 2> /dev/null; then
    kill -TERM "$pid" 2> /dev/null || true
    pids+=("$pid")
  fi
  rm -f "$f"
done
for _ in $(seq 1 100); do
  alive=()
  for pid in "${pids[@]}"; do kill -0 "$pid" 2> /dev/null && alive+=("$pid"); done
  [ ${#alive[@]} -eq 0 ] && exit 0
  sleep 0.1
done
echo "killing ${alive[*]} (still running 10 s after SIGTERM)" >&2
kill -KILL "${alive[@]}" 2> /dev/null || true
