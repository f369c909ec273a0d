#!/usr/bin/env bash
# Alerts and webhooks benchmark: the notify role on PostgreSQL and Redis,
# delivering to a fast HTTP receiver on loopback (tests/bench/src/bin/notify_bench.rs).
#  - throughput: EVENTS platform events of USERS users through the outbox and
#    the deliverer, against bare POSTs to the same receiver (reference, same run);
#  - latency: DEVICES devices publishing at FPS, each crossing its rule's
#    threshold every CROSS_MS; capture time of the crossing result to the
#    alert_triggered webhook's arrival, against the bus alone (reference).
# Prints one JSON object per round; ROUNDS rounds (report the medians).
# Usage: ROUNDS=3 DEVICES=100 bash tests/bench/notify.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"; USERS="${USERS:-20}"; EVENTS="${EVENTS:-4000}"
DEVICES="${DEVICES:-100}"; FPS="${FPS:-5}"; CROSS_MS="${CROSS_MS:-3000}"; SECONDS_="${SECONDS_:-30}"
ensure_rust
ensure_postgres
ensure_redis
cargo build --release --locked -q -p panoptes-bench --bin notify-bench
for round in $(seq 1 "$ROUNDS"); do
  DB="panoptes_bench_notify_$round"
  psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $DB" -qc "CREATE DATABASE $DB" >/dev/null
  ./target/release/notify-bench --store-url "${PANOPTES_TEST_POSTGRES_URL%/*}/$DB" \
    --redis-url "$PANOPTES_TEST_REDIS_URL" --users "$USERS" --events "$EVENTS" \
    --devices "$DEVICES" --fps "$FPS" --cross-every-ms "$CROSS_MS" --seconds "$SECONDS_"
  psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
done
