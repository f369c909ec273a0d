#!/usr/bin/env bash
# A local multi-process Panoptes, laid out like the cloud deployment: N
# gateways and each worker role (ingest, detect, analytics, notify, schedule)
# as separate processes on PostgreSQL, Redis and an S3 server on loopback,
# behind HAProxy configured like the cloud load balancer (SSE-friendly
# timeouts, health checks on /readyz). Every process gets the settings
# production requires (`panoptes config-reference`). Stop it all with
# deploy/local/down.sh --dir DIR.
#
#   bash deploy/local/up.sh [--gateways 2] [--port 8080] [--dir .data/local] [--db panoptes_local]
#
# Uses $PANOPTES_BIN when set; otherwise builds target/release/panoptes.
# Prints the balancer's URL when every process is ready.
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"

GATEWAYS=2
PORT=8080
DIR="$ROOT/.data/local"
DB=panoptes_local
while [ $# -gt 0 ]; do
  case "$1" in
    --gateways) GATEWAYS="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    --db) DB="$2"; shift 2 ;;
    *) echo "unknown argument $1 (--gateways N --port P --dir DIR --db NAME)" >&2; exit 2 ;;
  esac
done
[[ "$GATEWAYS" =~ ^[1-9][0-9]?$ ]] || { echo "--gateways must be 1-99" >&2; exit 2; }
[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "--db must be a plain lower-case name" >&2; exit 2; }
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
if compgen -G "$DIR/pids/*.pid" > /dev/null; then
  echo "$DIR already has running processes: bash deploy/local/down.sh --dir $DIR" >&2
  exit 1
fi
mkdir -p "$DIR/pids" "$DIR/logs" "$DIR/data"

ensure_postgres
ensure_redis
ensure_s3
ensure_onnxruntime
apt_install haproxy
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
if [ -z "${PANOPTES_BIN:-}" ]; then
  log "cargo build --release --bin panoptes"
  cargo build --release --locked --bin panoptes
  PANOPTES_BIN="$ROOT/target/release/panoptes"
fi

# Secrets, once per environment (as Secrets Manager would hold them).
if [ ! -f "$DIR/secrets.env" ]; then
  umask 077
  {
    echo "PANOPTES__AUTH__JWT_SECRET=$(head -c 48 /dev/urandom | base64 -w0)"
    echo "PANOPTES__AUTH__CREDENTIALS_KEY=$(head -c 32 /dev/urandom | base64 -w0)"
  } > "$DIR/secrets.env"
  umask 022
fi
set -a
# shellcheck disable=SC1091
source "$DIR/secrets.env"
set +a
name="$(basename "$DIR" | tr -c 'a-zA-Z0-9\n' '-' | tr 'A-Z' 'a-z')"
psql "$PANOPTES_TEST_POSTGRES_URL" -qAtc "select 1 from pg_database where datname = '$DB'" | grep -q 1 \
  || psql "$PANOPTES_TEST_POSTGRES_URL" -qc "CREATE DATABASE $DB" > /dev/null
export PANOPTES__STORE__URL="${PANOPTES_TEST_POSTGRES_URL%/*}/$DB"
export PANOPTES__REDIS__URL="$PANOPTES_TEST_REDIS_URL"
export PANOPTES__REDIS__KEY_PREFIX="panoptes:local:$DB"
export PANOPTES__BLOBS__BACKEND=s3
# Short: s3s-fs keeps each object under a file name that includes the bucket's.
export PANOPTES__BLOBS__S3_BUCKET="pl-$(printf %s "$DB" | md5sum | head -c 12)"
export PANOPTES__BLOBS__S3_REGION=us-east-1
export PANOPTES__BLOBS__S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
export PANOPTES__BLOBS__S3_PATH_STYLE=true
export PANOPTES__BLOBS__S3_ACCESS_KEY="$PANOPTES_TEST_S3_ACCESS_KEY"
export PANOPTES__BLOBS__S3_SECRET_KEY="$PANOPTES_TEST_S3_SECRET_KEY"
export PANOPTES__LOG__FORMAT=json
# Cameras and webhooks on this machine (loopback) are allowed here.
export PANOPTES__OUTBOUND__ALLOW_PRIVATE=true
export PANOPTES__DETECTOR__ORT_LIBRARY="$ORT_DYLIB_PATH"
export PANOPTES__DETECTOR__MODEL_PATH="$ROOT/workers/models/nanodet-m-416.onnx"
export PANOPTES__DETECTOR__EXECUTION_PROVIDER=cpu

# The settings every process shares, for operators' own commands against
# this environment: set -a; source DIR/env; set +a; panoptes create-admin ...
env | grep '^PANOPTES__' | grep -v -e JWT_SECRET -e CREDENTIALS_KEY | sort > "$DIR/env"
echo "source $DIR/secrets.env" >> "$DIR/env"

# start NAME ARGS...: one process, its pid in pids/NAME.pid, its log in logs/NAME.log.
start() {
  local name="$1"; shift
  mkdir -p "$DIR/data/$name"
  PANOPTES__DATA__DIR="$DIR/data/$name" nohup "$@" > "$DIR/logs/$name.log" 2>&1 &
  echo $! > "$DIR/pids/$name.pid"
}

# wait_ok NAME URL: until URL answers 200, or fail with the process's log.
wait_ok() {
  local name="$1" url="$2" pid
  pid="$(cat "$DIR/pids/$name.pid")"
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2> /dev/null; then
      echo "$name exited; its log ends with:" >&2
      tail -n 30 "$DIR/logs/$name.log" >&2
      bash "$ROOT/deploy/local/down.sh" --dir "$DIR" >&2
      exit 1
    fi
    curl -sf --max-time 2 -o /dev/null "$url" && return 0
    sleep 0.1
  done
  echo "$name was not ready at $url within 60 s" >&2
  bash "$ROOT/deploy/local/down.sh" --dir "$DIR" >&2
  exit 1
}

log "migrating $DB"
PANOPTES__DATA__DIR="$DIR/data" "$PANOPTES_BIN" migrate > "$DIR/logs/migrate.log" 2>&1 \
  || { cat "$DIR/logs/migrate.log" >&2; exit 1; }

servers=""
for i in $(seq 1 "$GATEWAYS"); do
  port=$((PORT + i))
  log "gateway-$i on 127.0.0.1:$port"
  PANOPTES__SERVER__LISTEN="127.0.0.1:$port" PANOPTES__SERVER__TRUSTED_PROXIES=127.0.0.1/32 \
    start "gateway-$i" "$PANOPTES_BIN" gateway
  servers+="    server gateway-$i 127.0.0.1:$port check"$'\n'
done
n=0
for role in ingest detect analytics notify schedule; do
  n=$((n + 1))
  port=$((PORT + 20 + n))
  log "worker $role (/metrics on 127.0.0.1:$port)"
  PANOPTES__WORKER__METRICS_LISTEN="127.0.0.1:$port" PANOPTES__WORKER__NODE_ID="$role-$name" \
    start "worker-$role" "$PANOPTES_BIN" worker --role "$role"
done
for i in $(seq 1 "$GATEWAYS"); do wait_ok "gateway-$i" "http://127.0.0.1:$((PORT + i))/readyz"; done
n=0
for role in ingest detect analytics notify schedule; do
  n=$((n + 1))
  wait_ok "worker-$role" "http://127.0.0.1:$((PORT + 20 + n))/healthz"
done

# The balancer, like the cloud one: idle timeout 120 s (8 keep-alives of an
# SSE stream), streams spread by least connections, a gateway taken out after
# two failed /readyz checks 1 s apart, X-Forwarded-For added (the gateways
# trust 127.0.0.1), and which gateway answered in X-Panoptes-Gateway.
sed -e "s|@PORT@|$PORT|" "$ROOT/deploy/local/haproxy.cfg.in" > "$DIR/haproxy.cfg"
printf '%s' "$servers" >> "$DIR/haproxy.cfg"
"$HAPROXY" -c -q -f "$DIR/haproxy.cfg"
log "haproxy on 127.0.0.1:$PORT"
start haproxy "$HAPROXY" -db -f "$DIR/haproxy.cfg"
wait_ok haproxy "http://127.0.0.1:$PORT/readyz"
log "ready: $GATEWAYS gateways and 5 worker roles behind http://127.0.0.1:$PORT (logs in $DIR/logs)"
echo "http://127.0.0.1:$PORT"
