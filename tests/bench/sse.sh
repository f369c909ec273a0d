#!/usr/bin/env bash
# SSE benchmark: our gateway (auth, tenancy and Redis fan-out in the path)
# against Nchan (Debian nginx-light + libnginx-mod-nchan, memory store) as the
# reference, measured in the same run with the same probe (tests/bench
# `sse-probe`, which timestamps each event in its payload and parses SSE
# across chunk boundaries). Client and servers share this machine's cores.
#
# Prints: KB per idle stream at IDLE_STREAMS (server RSS, all processes),
# publish->client p50/p99 at STEADY_RATE deliveries/s over STEADY_STREAMS
# streams on 10 channels, the time to open them, and deliveries/s by step on
# 1k streams until p99 > 50 ms or an event is lost.
#   IDLE_STREAMS="5000 10000" STEADY_STREAMS=10000 bash tests/bench/sse.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
IDLE_STREAMS="${IDLE_STREAMS:-5000 10000}"
STEADY_STREAMS="${STEADY_STREAMS:-10000}"
STEADY_RATE="${STEADY_RATE:-10000}"
STEPS="${STEPS:-5000 10000 20000 40000 80000}"
OURS_PORT=18601
NCHAN_PORT=18602
ensure_rust
ensure_postgres
ensure_redis
apt_install nginx-light libnginx-mod-nchan
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -q --bin panoptes -p panoptes-gateway
cargo build --release --locked -q -p panoptes-bench
probe=./target/release/sse-probe
work="$TOOLS/sse-bench"; rm -rf "$work"; mkdir -p "$work"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; nginx -c "$work/nginx.conf" -p "$work" -s stop 2>/dev/null || true' EXIT

# Our gateway on PostgreSQL + Redis; the per-user stream limit is lifted so
# that 10 users can hold thousands of streams (channels = users).
db=panoptes_sse_bench
psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
psql "$PANOPTES_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
prefix="panoptes-ssebench:$$"
PANOPTES__STORE__URL="${PANOPTES_TEST_POSTGRES_URL%/*}/$db" PANOPTES__REDIS__URL="$PANOPTES_TEST_REDIS_URL" \
PANOPTES__REDIS__KEY_PREFIX="$prefix" PANOPTES__DATA__DIR="$work/data" PANOPTES__LOG__LEVEL=warn \
PANOPTES__SSE__MAX_STREAMS_PER_USER=1000000 PANOPTES__STORE__MAX_CONNECTIONS=32 \
  ./target/release/panoptes gateway --listen "127.0.0.1:$OURS_PORT" > "$work/gateway.log" 2>&1 &
ours_pid=$!; pids+=("$ours_pid")
wait_port "$OURS_PORT"
: > "$work/users"
for u in $(seq 1 10); do
  curl -sf -X POST "http://127.0.0.1:$OURS_PORT/api/v1/auth/signup" -H 'content-type: application/json' \
    -d "{\"email\":\"sse-$$-$u@example.com\",\"password\":\"bench password\"}" |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d["user"]["id"], d["token"])' >> "$work/users"
done

sed -e "s#@PORT@#$NCHAN_PORT#; s#@DIR@#$work#; s#@STORE@##; s#@USE_REDIS@##" tests/bench/nchan.conf.in > "$work/nginx.conf"
nginx -c "$work/nginx.conf" -p "$work"
wait_port "$NCHAN_PORT"
nchan_pids() { local m; m=$(cat "$work/nginx.pid"); echo "$m $(pgrep -P "$m" | tr '\n' ' ')"; }

rss_kb() { ps -o rss= -p "$(echo "$@" | tr ' ' ',')" | awk '{s+=$1} END {print s+0}'; }

target_args() {
  case "$1" in
    ours) echo "--target ours --base http://127.0.0.1:$OURS_PORT --users $work/users --redis $PANOPTES_TEST_REDIS_URL --prefix $prefix" ;;
    nchan) echo "--target nchan --base http://127.0.0.1:$NCHAN_PORT --channels 10" ;;
  esac
}
target_pids() { if [ "$1" = ours ]; then echo "$ours_pid"; else nchan_pids; fi; }

: > "$work/results.jsonl"
idle() { # target streams
  local before after ready="$work/ready-$1-$2"
  before=$(rss_kb $(target_pids "$1"))
  # shellcheck disable=SC2046
  $probe $(target_args "$1") --connections "$2" --seconds 6 --ready-file "$ready" > "$work/idle-$1-$2.json" &
  local p=$!
  for _ in $(seq 1 1200); do [ -f "$ready" ] && break; sleep 0.1; done
  sleep 3
  after=$(rss_kb $(target_pids "$1"))
  wait "$p"
  python3 - "$1" "$2" "$before" "$after" "$work/idle-$1-$2.json" >> "$work/results.jsonl" <<'PY'
import json, sys
t, n, before, after, f = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
r = json.load(open(f))
print(json.dumps({"kind": "idle", "target": t, "streams": n, "opened": r["opened"], "kbPerStream": round((after - before) / n, 1), "connectSeconds": round(r["connectSeconds"], 1)}))
PY
}
steady() { # target streams deliveries/s seconds kind
  local rate=$(( $3 * 10 / $2 )); [ "$rate" -lt 1 ] && rate=1
  # shellcheck disable=SC2046
  $probe $(target_args "$1") --connections "$2" --publish-rate "$rate" --seconds "$4" |
    python3 -c "import json,sys; r=json.load(sys.stdin); r.update(kind='$5', target='$1', targetRate=$3); print(json.dumps(r))" >> "$work/results.jsonl"
}

# Between runs, wait until the server has dropped the previous run's streams:
# a vanished client is noticed on the next keep-alive write (15 s), and its
# stream would otherwise still be served during the next measurement.
settle() {
  if [ "$1" = ours ]; then
    for _ in $(seq 1 600); do
      curl -sf "http://127.0.0.1:$OURS_PORT/metrics" | grep -q '^panoptes_sse_streams 0$' && return 0
      sleep 0.1
    done
    echo "ours: streams still open after 60 s" >&2
  fi
}

for t in ours nchan; do
  for n in $IDLE_STREAMS; do log "$t: $n idle streams"; idle "$t" "$n"; settle "$t"; done
  log "$t: $STEADY_STREAMS streams at $STEADY_RATE deliveries/s"; steady "$t" "$STEADY_STREAMS" "$STEADY_RATE" 10 steady; settle "$t"
  for d in $STEPS; do log "$t: 1000 streams at $d deliveries/s"; steady "$t" 1000 "$d" 5 step; settle "$t"; done
done

python3 - "$work/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def pick(kind, target, **kv):
    return [r for r in rows if r["kind"] == kind and r["target"] == target and all(r.get(k) == v for k, v in kv.items())]
print("\nSSE benchmark (same machine, same probe; client and server share the cores)")
print(f"{'':<34}{'ours':>14}{'nchan':>14}")
for r in [x for x in rows if x["kind"] == "idle" and x["target"] == "ours"]:
    n = r["streams"]; o = pick("idle", "nchan", streams=n)
    print(f"{'KB per idle stream @ %d' % n:<34}{r['kbPerStream']:>14}{(o[0]['kbPerStream'] if o else float('nan')):>14}")
for t in ["ours", "nchan"]:
    pass
s = {t: pick("steady", t) for t in ["ours", "nchan"]}
if s["ours"] and s["nchan"]:
    for k, label in [("p50ms", "p50 ms @ steady rate"), ("p99ms", "p99 ms @ steady rate"), ("connectSeconds", "seconds to open the streams"), ("gaps", "events lost @ steady rate")]:
        print(f"{label:<34}{s['ours'][0][k]:>14.2f}{s['nchan'][0][k]:>14.2f}")
for t in ["ours", "nchan"]:
    ok = [r for r in pick("step", t) if r["p99ms"] <= 50 and r["gaps"] == 0 and r["deliveries"] >= r["expectedDeliveries"]]
    best = max((r["deliveriesPerSecond"] for r in ok), default=0)
    print(f"{t}: max deliveries/s with p99 <= 50 ms and no loss (1k streams): {best:.0f}")
    for r in pick("step", t):
        print(f"   step {r['targetRate']:>6}/s: got {r['deliveriesPerSecond']:>7.0f}/s p50 {r['p50ms']:.2f} p99 {r['p99ms']:.2f} ms lost {r['expectedDeliveries'] - r['deliveries']}")
PY
