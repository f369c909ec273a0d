#!/usr/bin/env bash
# Benchmark: authenticated `GET /api/v1/devices/{id}` (API key, PostgreSQL,
# Redis) against a reference measured in the same run on the same server:
# `GET /healthz` (same HTTP stack and middleware, no auth, no store).
# Target: p99 <= 5 ms at 2,000 req/s. Each figure is the median of ROUNDS runs.
#
#   bash tests/bench/api_read.sh            # ROUNDS=3 DURATION=10 RATE=2000
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
RATE="${RATE:-2000}"
PORT="${PORT:-18181}"

ensure_rust
ensure_postgres
ensure_redis
log "building release binaries"
cargo build --release --locked -q --bin panoptes -p panoptes-launcher
cargo build --release --locked -q -p panoptes-bench

db_url=$(fresh_database panoptes_bench)
out="$TOOLS/bench"; mkdir -p "$out"
export PANOPTES__STORE__URL="$db_url"
export PANOPTES__REDIS__URL="$PANOPTES_TEST_REDIS_URL"
export PANOPTES__REDIS__KEY_PREFIX="panoptes-bench:$$"
export PANOPTES__DATA__DIR="$out/data"
# Loopback placeholder camera URLs (never connected to) and one client
# address for every load user: open the guard and the per-address limits.
export PANOPTES__OUTBOUND__ALLOW_PRIVATE=true
export PANOPTES__AUTH__SIGNUPS_PER_CLIENT_PER_HOUR=100000
export PANOPTES__SERVER__MAX_CONNECTIONS_PER_CLIENT=100000
export PANOPTES__LOG__FORMAT=json
./target/release/panoptes gateway --listen "127.0.0.1:$PORT" > "$out/gateway.log" 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null || true' EXIT
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
session=$(curl -sf -XPOST "$base/api/v1/auth/signup" -H 'content-type: application/json' \
  -d "{\"email\":\"bench-$$@example.com\",\"password\":\"bench password\"}" | json "d['data']['token']")
key=$(curl -sf -XPOST "$base/api/v1/api-keys" -H "authorization: Bearer $session" -H 'content-type: application/json' \
  -d '{"name":"bench","type":"personal"}' | json "d['data']['key']")
device=$(curl -sf -XPOST "$base/api/v1/devices" -H "authorization: Bearer $key" -H 'content-type: application/json' \
  -d '{"name":"Bench cam","rtspUrl":"rtsp://cam:pw@127.0.0.1:554/live","tags":["bench"]}' | json "d['data']['id']")

bench=./target/release/panoptes-bench
: > "$out/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  log "round $round/$ROUNDS: reference /healthz and GET /devices/{id} at $RATE req/s, ${DURATION}s each"
  $bench --label reference --url "$base/healthz" --rate "$RATE" --duration "$DURATION" >> "$out/runs.jsonl"
  $bench --label getDevice --url "$base/api/v1/devices/$device" --bearer "$key" --rate "$RATE" --duration "$DURATION" >> "$out/runs.jsonl"
  $bench --label reference-max --url "$base/healthz" --rate 0 --connections 64 --duration 5 --warmup 1 >> "$out/runs.jsonl"
  $bench --label getDevice-max --url "$base/api/v1/devices/$device" --bearer "$key" --rate 0 --connections 64 --duration 5 --warmup 1 >> "$out/runs.jsonl"
done

python3 - "$out/runs.jsonl" "$RATE" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in runs:
    by.setdefault(r["label"], []).append(r)
med = lambda label, k: statistics.median(r[k] for r in by[label])
print(f"\nAPI read benchmark (median of {len(by['getDevice'])} rounds; client and server share this machine)")
print(f"{'run':<16}{'req/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'errors':>8}")
for label in ["reference", "getDevice", "reference-max", "getDevice-max"]:
    print(f"{label:<16}{med(label,'achievedRate'):>10.0f}{med(label,'p50ms'):>9.2f}{med(label,'p90ms'):>9.2f}"
          f"{med(label,'p99ms'):>9.2f}{med(label,'p999ms'):>10.2f}{sum(r['errors'] for r in by[label]):>8}")
p99 = med("getDevice", "p99ms")
ratio = p99 / med("reference", "p99ms")
print(f"\ngetDevice p99 at {sys.argv[2]} req/s: {p99:.2f} ms (target <= 5 ms: {'met' if p99 <= 5 else 'NOT met'}); "
      f"{ratio:.1f}x the reference p99; max throughput {med('getDevice-max','achievedRate'):.0f} req/s "
      f"= {med('getDevice-max','achievedRate')/med('reference-max','achievedRate'):.2f} of the reference")
PY
