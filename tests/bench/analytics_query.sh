#!/usr/bin/env bash
# Data-query benchmark: the stored-analytics queries of the API on
# PostgreSQL at the volume the indexes are for, 30 days x one row per 10 s
# per scene (259,200 snapshots and 777,600 rolling rows per scene; SCENES
# scenes of one tenant), with the migrations' indexes, then without them (the
# reference, same data, same run). Tables are vacuumed after loading, as
# autovacuum keeps them. Median of ROUNDS executions of each statement the API
# runs (EXPLAIN ANALYZE execution time).
# Usage: SCENES=3 ROUNDS=5 bash tests/bench/analytics_query.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
SCENES="${SCENES:-3}"; ROUNDS="${ROUNDS:-5}"
ensure_rust
ensure_postgres
DB="panoptes_bench_analytics"
psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $DB" -qc "CREATE DATABASE $DB" >/dev/null
URL="${PANOPTES_TEST_POSTGRES_URL%/*}/$DB"
cargo build --release --locked -q --bin panoptes
PANOPTES__STORE__URL="$URL" ./target/release/panoptes migrate
Q() { psql "$URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
log "loading $SCENES scenes x 30 days of rows"
Q <<SQL
INSERT INTO users (id, email, password_hash, role, created_at) VALUES ('u', 'bench@example.com', 'x', 'user', 0);
INSERT INTO scene_analytics_snapshots
SELECT 's' || s || '-' || i, 'u', 'scene-' || s, 'd' || s, 't', (1e12 + i::bigint * 10000)::bigint - 10000,
       (1e12 + i::bigint * 10000)::bigint, i % 7, i % 3, 2.5, 6, 1.1, 3, 'node-a', (1e12 + i::bigint * 10000)::bigint
FROM generate_series(1, $SCENES) s, generate_series(1, 259200) i;
INSERT INTO scene_analytics_rolling
SELECT 'r' || s || '-' || w || '-' || i, 'u', 'scene-' || s, 'd' || s, 't', w, (1e12)::bigint,
       (1e12 + i::bigint * 10000)::bigint, '{"avgInQueue":2.5,"maxInQueue":6,"avgInService":1.1,"arrivals":40,"departures":38,"avgWaitSeconds":61.2,"medianWaitSeconds":55.0,"p90WaitSeconds":120.0,"waitSamples":38,"estimatedWaitSeconds":64.0}',
       'node-a', (1e12 + i::bigint * 10000)::bigint
FROM generate_series(1, $SCENES) s, unnest(ARRAY['rolling5Min','rolling30Min','total']) w, generate_series(1, 259200) i;
VACUUM ANALYZE scene_analytics_snapshots;
VACUUM ANALYZE scene_analytics_rolling;
SQL
# The API's statements (infra/src/store/metrics_history.rs), scene 2, last day / deep page.
END_MS=$((1000000000000 + 259200 * 10000)); DAY_START=$((END_MS - 86400000))
declare -A SQLS=(
  [snapshots_page1]="SELECT * FROM scene_analytics_snapshots WHERE scene_id = 'scene-2' AND user_id = 'u' AND window_end >= -9223372036854775808 AND window_end <= 9223372036854775807 ORDER BY window_end DESC, id DESC LIMIT 20 OFFSET 0"
  [snapshots_count]="SELECT COUNT(*) FROM scene_analytics_snapshots WHERE scene_id = 'scene-2' AND user_id = 'u' AND window_end >= -9223372036854775808 AND window_end <= 9223372036854775807"
  [snapshots_day_page5]="SELECT * FROM scene_analytics_snapshots WHERE scene_id = 'scene-2' AND user_id = 'u' AND window_end >= $DAY_START AND window_end <= $END_MS ORDER BY window_end DESC, id DESC LIMIT 100 OFFSET 400"
  [snapshots_day_count]="SELECT COUNT(*) FROM scene_analytics_snapshots WHERE scene_id = 'scene-2' AND user_id = 'u' AND window_end >= $DAY_START AND window_end <= $END_MS"
  [snapshot_latest]="SELECT * FROM scene_analytics_snapshots WHERE scene_id = 'scene-2' AND user_id = 'u' ORDER BY window_end DESC, id DESC LIMIT 1"
  [rolling_window_day]="SELECT * FROM scene_analytics_rolling WHERE scene_id = 'scene-2' AND user_id = 'u' AND window_end >= $DAY_START AND window_end <= $END_MS AND (window_name = 'rolling5Min' OR 'rolling5Min' = '') ORDER BY window_end DESC, id DESC LIMIT 20 OFFSET 0"
  [rolling_latest_5min]="SELECT * FROM scene_analytics_rolling WHERE scene_id = 'scene-2' AND window_name = 'rolling5Min' AND user_id = 'u' ORDER BY window_end DESC, id DESC LIMIT 1"
)
measure() { # label
  for name in $(printf '%s\n' "${!SQLS[@]}" | sort); do
    times=()
    for _ in $(seq 1 "$ROUNDS"); do
      times+=("$(Q -c "EXPLAIN (ANALYZE, FORMAT JSON) ${SQLS[$name]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])')")
    done
    printf '%s %s %s\n' "$1" "$name" "$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
  done
}
measure indexed | tee /tmp/analytics-query.txt
Q -c "DROP INDEX snapshots_scene_end, snapshots_end, rolling_scene_window_end, rolling_scene_end, rolling_end"
measure no_index | tee -a /tmp/analytics-query.txt
python3 - /tmp/analytics-query.txt <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
d = {(a, b): float(c) for a, b, c in rows}
print("\n| statement | indexed ms (median) | without the indexes ms | speed-up |")
print("|---|---|---|---|")
for name in sorted({b for _, b in d}):
    i, n = d[("indexed", name)], d[("no_index", name)]
    print(f"| {name} | {i:.2f} | {n:.1f} | {n / i:.0f}x |")
PY
psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $DB"
