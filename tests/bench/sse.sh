#!/usr/bin/env bash
# SSE benchmark: our gateway (auth, tenancy and Redis fan-out in the path)
# against Nchan (Debian nginx-light + libnginx-mod-nchan; memory store and
# Redis store) and Pushpin (Debian pushpin, with zurl and a GRIP backend),
# measured in the same run with the same probe (tests/bench `sse-probe`, which
# timestamps each event in its payload and parses SSE across chunk
# boundaries). Client and servers share this machine's cores.
#
# Prints, per server: KB per idle stream at IDLE_STREAMS (server RSS, all its
# processes) and the time to open them; publish->client p50/p99 at
# STEADY_RATE deliveries/s over STEADY_STREAMS streams, 10 per channel, and
# again with BROADCAST_STREAMS per channel; the time for all of them to
# reconnect and resume after being dropped at once, and what was lost or
# duplicated; deliveries/s by step on 1k streams on 10 channels until
# p99 > 50 ms or an event is lost.
#   TARGETS="ours nchan nchan-redis pushpin" IDLE_STREAMS="5000 10000" bash tests/bench/sse.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
TARGETS="${TARGETS:-ours nchan nchan-redis pushpin}"
IDLE_STREAMS="${IDLE_STREAMS:-5000 10000}"
STEADY_STREAMS="${STEADY_STREAMS:-10000}"
STEADY_RATE="${STEADY_RATE:-10000}"
# Streams per channel in the steady and resume runs: 10, the product's
# per-user stream limit (a channel is a user). BROADCAST_STREAMS repeats the
# steady run with that many streams per channel (one publish, a burst of
# deliveries), which measures fan-out bursts rather than delivery latency.
STREAMS_PER_CHANNEL="${STREAMS_PER_CHANNEL:-10}"
BROADCAST_STREAMS="${BROADCAST_STREAMS:-1000}"
STEPS="${STEPS:-20000 40000 80000 120000 150000 180000 210000 240000 270000 300000}"
OURS_PORT=18601 NCHAN_PORT=18602 PUSHPIN_PORT=18603 GRIP_PORT=18604 NCHAN_REDIS_PORT=18605
PUSHPIN_PUBLISH_PORT=5561
ensure_rust
ensure_postgres
ensure_redis
apt_install nginx-light libnginx-mod-nchan pushpin zurl
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -q --bin panoptes -p panoptes-launcher
cargo build --release --locked -q -p panoptes-bench
probe=./target/release/sse-probe
work="$TOOLS/sse-bench"; rm -rf "$work"; mkdir -p "$work"
pids=()
stop_all() {
  kill "${pids[@]}" 2>/dev/null || true
  for c in nchan nchan-redis grip; do
    [ -f "$work/$c.conf" ] && nginx -c "$work/$c.conf" -p "$work" -s stop 2>/dev/null || true
  done
}
trap stop_all EXIT

# A process and all its descendants.
tree() { local p; for p in "$@"; do echo "$p"; tree $(pgrep -P "$p" | tr '\n' ' '); done; }
rss_kb() { ps -o rss= -p "$(echo "$@" | tr ' \n' ',,' | sed 's/,*$//')" | awk '{s+=$1} END {print s+0}'; }

# --- Our gateway on PostgreSQL + Redis; the per-user stream limit and the
# per-client connection cap are lifted so that 10 users can hold thousands of
# streams (channels = users) from the one probe address.
db_url=$(fresh_database panoptes_sse_bench)
prefix="panoptes-ssebench:$$"
PANOPTES__STORE__URL="$db_url" PANOPTES__REDIS__URL="$PANOPTES_TEST_REDIS_URL" \
PANOPTES__REDIS__KEY_PREFIX="$prefix" PANOPTES__DATA__DIR="$work/data" PANOPTES__LOG__LEVEL=warn \
PANOPTES__SSE__MAX_STREAMS_PER_USER=1000000 PANOPTES__SERVER__MAX_CONNECTIONS_PER_CLIENT=1000000 PANOPTES__STORE__MAX_CONNECTIONS=32 \
  ./target/release/panoptes gateway --listen "127.0.0.1:$OURS_PORT" > "$work/gateway.log" 2>&1 &
ours_pid=$!; pids+=("$ours_pid")
wait_port "$OURS_PORT"
STEADY_CHANNELS=$(( STEADY_STREAMS / STREAMS_PER_CHANNEL ))
log "signing up $STEADY_CHANNELS users (one channel each)"
seq 1 "$STEADY_CHANNELS" | xargs -P 8 -I{} curl -sf -X POST "http://127.0.0.1:$OURS_PORT/api/v1/auth/signup" \
  -H 'content-type: application/json' -d "{\"email\":\"sse-$$-{}@example.com\",\"password\":\"bench password\"}" -o "$work/signup-{}.json"
cat "$work"/signup-*.json | python3 -c '
import json, sys
for line in sys.stdin.read().replace("}{", "}\n{").splitlines():
    d = json.loads(line)["data"]; print(d["user"]["id"], d["token"])' > "$work/users"
[ "$(wc -l < "$work/users")" -eq "$STEADY_CHANNELS" ] || { echo "signups failed" >&2; exit 1; }

# --- Nchan, memory store and Redis store (one nginx each).
redis_hostport="${PANOPTES_TEST_REDIS_URL#redis://}"
sed -e "s#@PORT@#$NCHAN_PORT#; s#@DIR@#$work#g; s#@NAME@#nchan#g; s#@STORE@##; s#@USE_REDIS@##" \
  tests/bench/nchan.conf.in > "$work/nchan.conf"
sed -e "s#@PORT@#$NCHAN_REDIS_PORT#; s#@DIR@#$work#g; s#@NAME@#nchan-redis#g" \
  -e "s#@STORE@#upstream nchan_redis { nchan_redis_server \"redis://$redis_hostport\"; } nchan_redis_namespace \"nchanbench$$\";#" \
  -e "s#@USE_REDIS@#nchan_redis_pass nchan_redis;#" tests/bench/nchan.conf.in > "$work/nchan-redis.conf"
nginx -c "$work/nchan.conf" -p "$work"
nginx -c "$work/nchan-redis.conf" -p "$work"
wait_port "$NCHAN_PORT"; wait_port "$NCHAN_REDIS_PORT"

# --- Pushpin: Debian's runner does not start zurl (the proxy's HTTP client;
# without it subscribes hang), so it runs here on the sockets the packaged
# internal.conf names. message_rate is lifted (Debian ships a 2500/s
# throttle). The GRIP backend is a tiny nginx that answers each subscribe
# with Grip-Hold: stream on the channel in the path.
as_root mkdir -p /var/run/zurl && as_root chown "$(id -u)" /var/run/zurl
mkdir -p "$work/pushpin/run" "$work/pushpin/log"
cat > "$work/pushpin/zurl.conf" <<EOF
[General]
in_spec=ipc:///var/run/zurl/zurl-in
in_stream_spec=ipc:///var/run/zurl/zurl-in-stream
out_spec=ipc:///var/run/zurl/zurl-out
defpolicy=allow
max_open_requests=200000
buffer_size=200000
timeout=600
in_hwm=100000
out_hwm=100000
EOF
sed -e "s#^rundir=.*#rundir=$work/pushpin/run#; s#^logdir=.*#logdir=$work/pushpin/log#" \
  -e "s#^http_port=.*#http_port=$PUSHPIN_PORT#; s#^push_in_http_port=.*#push_in_http_port=$PUSHPIN_PUBLISH_PORT#" \
  -e "s#^message_rate=.*#message_rate=-1#; s#^client_maxconn=.*#client_maxconn=200000#; s#^log_level=.*#log_level=1#" \
  /etc/pushpin/pushpin.conf > "$work/pushpin/pushpin.conf"
echo "* 127.0.0.1:$GRIP_PORT" > "$work/pushpin/routes"
cat > "$work/grip.conf" <<EOF
pid $work/grip.pid;
error_log $work/grip-error.log warn;
worker_processes 1;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$GRIP_PORT;
    location ~ ^/sub/(\w+)\$ {
      add_header Grip-Hold stream;
      add_header Grip-Channel \$1;
      add_header Grip-Keep-Alive ":\\\\n\\\\n; format=cstring; timeout=15";
      default_type text/event-stream;
      return 200 "";
    }
  }
}
EOF
nginx -c "$work/grip.conf" -p "$work"
zurl --config="$work/pushpin/zurl.conf" > "$work/pushpin/log/zurl.out" 2>&1 &
zurl_pid=$!; pids+=("$zurl_pid")
pushpin --config "$work/pushpin/pushpin.conf" > "$work/pushpin/log/pushpin.out" 2>&1 &
pushpin_pid=$!; pids+=("$pushpin_pid")
wait_port "$PUSHPIN_PORT"; wait_port "$PUSHPIN_PUBLISH_PORT"

target_args() {
  case "$1" in
    ours) echo "--target ours --base http://127.0.0.1:$OURS_PORT --users $work/users --redis $PANOPTES_TEST_REDIS_URL --prefix $prefix" ;;
    nchan) echo "--target nchan --base http://127.0.0.1:$NCHAN_PORT" ;;
    nchan-redis) echo "--target nchan --base http://127.0.0.1:$NCHAN_REDIS_PORT" ;;
    pushpin) echo "--target pushpin --base http://127.0.0.1:$PUSHPIN_PORT --publish-url http://127.0.0.1:$PUSHPIN_PUBLISH_PORT/publish/" ;;
  esac
}
target_pids() {
  case "$1" in
    ours) echo "$ours_pid" ;;
    nchan|nchan-redis) tree "$(cat "$work/$1.pid")" ;;
    pushpin) tree "$pushpin_pid" "$zurl_pid" ;;
  esac
}

: > "$work/results.jsonl"
tag() { python3 -c "import json,sys; r=json.load(sys.stdin); r.update(json.loads(sys.argv[1])); print(json.dumps(r))" "$1" >> "$work/results.jsonl"; }
idle() { # target streams
  local before after ready="$work/ready-$1-$2"
  before=$(rss_kb $(target_pids "$1"))
  # shellcheck disable=SC2046
  $probe $(target_args "$1") --channels $(( $2 / STREAMS_PER_CHANNEL )) --connections "$2" --seconds 6 --ready-file "$ready" > "$work/idle-$1-$2.json" &
  local p=$!
  for _ in $(seq 1 1200); do [ -f "$ready" ] && break; sleep 0.1; done
  sleep 3
  after=$(rss_kb $(target_pids "$1"))
  wait "$p"
  tag "{\"kind\": \"idle\", \"target\": \"$1\", \"streams\": $2, \"kbPerStream\": $(python3 -c "print(round(($after - $before) / $2, 1))")}" < "$work/idle-$1-$2.json"
}
run() { # target streams channels deliveries/s seconds kind [probe args...]
  local t=$1 n=$2 ch=$3 d=$4 s=$5 kind=$6; shift 6
  local rate=$(( d * ch / n )); [ "$rate" -lt 1 ] && rate=1
  # shellcheck disable=SC2046
  $probe $(target_args "$t") --channels "$ch" --connections "$n" --publish-rate "$rate" --seconds "$s" \
    --server-pids "$(target_pids "$t" | tr '\n ' ',,' | sed 's/,*$//')" "$@" |
    tag "{\"kind\": \"$kind\", \"target\": \"$t\", \"targetRate\": $d, \"channels\": $ch}"
}
ok_step() { tail -1 "$work/results.jsonl" | python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if r["p99ms"] <= 50 and r["gaps"] == 0 and r["deliveries"] >= r["expectedDeliveries"] else 1)'; }

# Between runs, wait until the server has let the previous run's streams go.
settle() {
  if [ "$1" = ours ]; then
    for _ in $(seq 1 600); do
      curl -sf "http://127.0.0.1:$OURS_PORT/metrics" | grep -q '^panoptes_sse_streams 0$' && return 0
      sleep 0.1
    done
    echo "ours: streams still open after 60 s" >&2
  fi
}

for t in $TARGETS; do
  for n in $IDLE_STREAMS; do log "$t: $n idle streams"; idle "$t" "$n"; settle "$t"; done
  log "$t: $STEADY_STREAMS streams on $STEADY_CHANNELS channels at $STEADY_RATE deliveries/s"
  run "$t" "$STEADY_STREAMS" "$STEADY_CHANNELS" "$STEADY_RATE" 10 steady; settle "$t"
  bc=$(( STEADY_STREAMS / BROADCAST_STREAMS ))
  log "$t: $STEADY_STREAMS streams on $bc channels at $STEADY_RATE deliveries/s"
  run "$t" "$STEADY_STREAMS" "$bc" "$STEADY_RATE" 10 broadcast; settle "$t"
  if [ "$t" != pushpin ]; then # Pushpin keeps no history: resuming is its backend's job.
    log "$t: $STEADY_STREAMS streams dropped at once and resumed"
    run "$t" "$STEADY_STREAMS" "$STEADY_CHANNELS" "$STEADY_RATE" 35 resume --resume-at 5; settle "$t"
  fi
  for d in $STEPS; do
    log "$t: 1000 streams on 10 channels at $d deliveries/s"; run "$t" 1000 10 "$d" 5 step; settle "$t"
    ok_step || break
  done
done

python3 tests/bench/sse_report.py "$work/results.jsonl" $TARGETS
