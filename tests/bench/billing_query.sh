#!/usr/bin/env bash
# Billing-query benchmark: the billing dashboard's statements on PostgreSQL
# over 12 months x DEVICES devices of one tenant's usage ledger (per device
# and day: MINUTES analysis minutes, 5 alerts, and 3 VLM requests on half the
# devices), read from the aggregates the ledger keeps (usage_daily,
# usage_monthly), against the same answers computed from the events alone
# (the reference: same data, same run, on the events' own index). Tables are
# vacuumed after loading. p50 and p99 of ROUNDS executions of each statement
# (EXPLAIN ANALYZE execution time), the two kinds alternating.
# Usage: DEVICES=100 MINUTES=60 ROUNDS=101 bash tests/bench/billing_query.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
DEVICES="${DEVICES:-100}"; MINUTES="${MINUTES:-60}"; ROUNDS="${ROUNDS:-101}"
ensure_postgres
DB="panoptes_bench_billing"
psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $DB" -qc "CREATE DATABASE $DB" >/dev/null
URL="${PANOPTES_TEST_POSTGRES_URL%/*}/$DB"
Q() { psql "$URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
for f in infra/migrations/postgres/*.sql; do Q -f "$f"; done
log "loading $DEVICES devices x 365 days of usage ($MINUTES analysis minutes a day each)"
# 2025-12-01 00:00 UTC, in epoch milliseconds.
T0=1764547200000
Q <<SQL
INSERT INTO users (id, email, password_hash, role, created_at) VALUES ('u', 'bench@example.com', 'x', 'user', 0);
INSERT INTO users (id, email, password_hash, role, created_at) VALUES ('v', 'other@example.com', 'x', 'user', 0);
INSERT INTO usage_events (id, user_id, device_id, feature, quantity, occurred_at, period, day, source)
SELECT 'analysis:' || d || ':' || day || ':' || m, CASE WHEN d % 10 = 0 THEN 'v' ELSE 'u' END, 'dev-' || d,
       'analysisSeconds', 60, $T0 + day::bigint * 86400000 + (8 * 60 + m)::bigint * 60000,
       to_char(to_timestamp(($T0 + day::bigint * 86400000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM'),
       to_char(to_timestamp(($T0 + day::bigint * 86400000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '{}'
FROM generate_series(1, $DEVICES) d, generate_series(0, 364) day, generate_series(1, $MINUTES) m;
INSERT INTO usage_events (id, user_id, device_id, feature, quantity, occurred_at, period, day, source)
SELECT 'alert:' || d || ':' || day || ':' || k, CASE WHEN d % 10 = 0 THEN 'v' ELSE 'u' END, 'dev-' || d,
       'alertCount', 1, $T0 + day::bigint * 86400000 + k::bigint * 3600000,
       to_char(to_timestamp(($T0 + day::bigint * 86400000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM'),
       to_char(to_timestamp(($T0 + day::bigint * 86400000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '{}'
FROM generate_series(1, $DEVICES) d, generate_series(0, 364) day, generate_series(1, 5) k;
INSERT INTO usage_events (id, user_id, device_id, feature, quantity, occurred_at, period, day, source)
SELECT 'vlm:' || d || ':' || day || ':' || k, CASE WHEN d % 10 = 0 THEN 'v' ELSE 'u' END, 'dev-' || d,
       'vlmTokens', 1500, $T0 + day::bigint * 86400000 + k::bigint * 7200000,
       to_char(to_timestamp(($T0 + day::bigint * 86400000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM'),
       to_char(to_timestamp(($T0 + day::bigint * 86400000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '{}'
FROM generate_series(1, $DEVICES) d, generate_series(0, 364) day, generate_series(1, 3) k WHERE d % 2 = 0;
-- The aggregates the ledger keeps as it writes (built here in one go).
INSERT INTO usage_daily (user_id, device_id, day, feature, quantity)
SELECT user_id, device_id, day, feature, SUM(quantity) FROM usage_events GROUP BY 1, 2, 3, 4;
INSERT INTO usage_monthly (user_id, device_id, period, feature, quantity)
SELECT user_id, device_id, period, feature, SUM(quantity) FROM usage_events GROUP BY 1, 2, 3, 4;
VACUUM ANALYZE usage_events;
VACUUM ANALYZE usage_daily;
VACUUM ANALYZE usage_monthly;
SQL
echo "events: $(Q -c 'SELECT COUNT(*) FROM usage_events'), daily rows: $(Q -c 'SELECT COUNT(*) FROM usage_daily'), monthly rows: $(Q -c 'SELECT COUNT(*) FROM usage_monthly')"
# June 2026: the summary and by-device month; the trend: 30 days, and 12 months.
P0=$((T0 + 182 * 86400000)); P1=$((T0 + 212 * 86400000))
D0=$((T0 + 335 * 86400000)); D1=$((T0 + 365 * 86400000))
declare -A SQLS=(
  # infra/src/store/usage.rs: usage_totals, usage_by_device, usage_daily, usage_monthly.
  [summary.aggregates]="SELECT feature, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_monthly WHERE user_id = 'u' AND period = '2026-06' GROUP BY feature"
  [summary.events]="SELECT feature, SUM(quantity) FROM usage_events WHERE user_id = 'u' AND occurred_at >= $P0 AND occurred_at < $P1 GROUP BY feature"
  [by_device.aggregates]="SELECT device_id, feature, quantity FROM usage_monthly WHERE user_id = 'u' AND period = '2026-06' ORDER BY device_id"
  [by_device.events]="SELECT device_id, feature, SUM(quantity) FROM usage_events WHERE user_id = 'u' AND occurred_at >= $P0 AND occurred_at < $P1 GROUP BY device_id, feature ORDER BY device_id"
  [trend_30_days.aggregates]="SELECT day, feature, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_daily WHERE user_id = 'u' AND (device_id = '' OR '' = '') AND day >= '2026-11-01' AND day <= '2026-11-30' GROUP BY day, feature"
  [trend_30_days.events]="SELECT day, feature, SUM(quantity) FROM usage_events WHERE user_id = 'u' AND occurred_at >= $D0 AND occurred_at < $D1 GROUP BY day, feature"
  [trend_12_months.aggregates]="SELECT period, feature, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_monthly WHERE user_id = 'u' AND (device_id = '' OR '' = '') AND period >= '2025-12' AND period <= '2026-11' GROUP BY period, feature"
  [trend_12_months.events]="SELECT period, feature, SUM(quantity) FROM usage_events WHERE user_id = 'u' GROUP BY period, feature"
)
: > /tmp/billing-query.txt
for name in summary by_device trend_30_days trend_12_months; do
  for _ in $(seq 1 "$ROUNDS"); do
    for kind in aggregates events; do
      printf '%s %s %s\n' "$name" "$kind" "$(Q -c "EXPLAIN (ANALYZE, FORMAT JSON) ${SQLS[$name.$kind]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])')" >> /tmp/billing-query.txt
    done
  done
done
python3 - /tmp/billing-query.txt <<'PY'
import sys
from collections import defaultdict
t = defaultdict(list)
for line in open(sys.argv[1]):
    name, kind, ms = line.split()
    t[(name, kind)].append(float(ms))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print("\n| query | aggregates p50 ms | p99 ms | events only p50 ms | p99 ms | speed-up (p50) |")
print("|---|---|---|---|---|---|")
for name in ["summary", "by_device", "trend_30_days", "trend_12_months"]:
    a, e = t[(name, "aggregates")], t[(name, "events")]
    print(f"| {name} | {pct(a, 50):.3f} | {pct(a, 99):.3f} | {pct(e, 50):.1f} | {pct(e, 99):.1f} | {pct(e, 50) / pct(a, 50):.0f}x |")
PY
psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $DB"
