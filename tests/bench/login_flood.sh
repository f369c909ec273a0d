#!/usr/bin/env bash
# Benchmark: memory and owner latency under a flood of concurrent anonymous
# log-ins (finding 1 of the security review: 320 log-ins took a gateway to
# 6.7 GB). Target: 1,000 concurrent anonymous log-ins leave RSS under 300 MB
# and a legitimate log-in still succeeds within 2 s.
#
# Each round, against one release gateway (SQLite, in-process limiter: the
# node's own memory is what is measured):
#   reference  1,000 concurrent GET /healthz (the same connections, no hashing)
#   flood-1    1,000 concurrent log-ins for unknown emails from one address
#   flood-50   1,000 concurrent log-ins spread over 50 addresses
# while an owner logs in from another address. Figures are medians of ROUNDS.
#
#   bash tests/bench/login_flood.sh            # ROUNDS=3 REQUESTS=1000
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"
REQUESTS="${REQUESTS:-1000}"
PORT="${PORT:-18191}"

ensure_rust
log "building release binaries"
cargo build --release --locked -q --bin panoptes -p panoptes-launcher
cargo build --release --locked -q -p panoptes-bench --bin login-flood

out="$TOOLS/bench/login-flood"; rm -rf "$out"; mkdir -p "$out"
: > "$out/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  # A fresh gateway per round, so each round starts from the same memory.
  PANOPTES__DATA__DIR="$out/data-$round" PANOPTES__EDGE__DEMO_CAMERA=false \
    ./target/release/panoptes gateway --listen "127.0.0.1:$PORT" > "$out/gateway-$round.log" 2>&1 &
  gw=$!
  trap 'kill $gw 2>/dev/null || true' EXIT
  base="http://127.0.0.1:$PORT"
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  email="owner-$round@example.com"
  curl -sf --interface 127.0.3.1 -XPOST "$base/api/v1/auth/signup" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"owner password\"}" > /dev/null
  flood() { ./target/release/login-flood --base "$base" --pid "$gw" --requests "$REQUESTS" \
    --owner-email "$email" --owner-password "owner password" "$@" >> "$out/runs.jsonl"; }
  log "round $round/$ROUNDS"
  flood --label reference --path /healthz --addresses 1
  flood --label flood-1 --addresses 1
  flood --label flood-50 --addresses 50
  kill $gw; wait $gw 2>/dev/null || true
done

python3 - "$out/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in runs:
    by.setdefault(r["label"], []).append(r)
med = lambda label, k: statistics.median(r[k] for r in by[label])
print(f"\nLog-in flood (median of {len(by['reference'])} rounds; {runs[0]['requests']} concurrent requests; client and gateway share this machine)")
print("| run | RSS before MB | RSS peak MB | RSS 3 s after MB | owner log-in ms | owner status | flood statuses (last round) |")
print("|---|---|---|---|---|---|---|")
for label in ["reference", "flood-1", "flood-50"]:
    last = by[label][-1]
    print(f"| {label} | {med(label,'rss_before_mb'):.0f} | {med(label,'rss_peak_mb'):.0f} | {med(label,'rss_after_mb'):.0f} "
          f"| {med(label,'owner_ms'):.0f} | {last['owner_status']} | {last['statuses']} |")
PY
