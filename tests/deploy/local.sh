#!/usr/bin/env bash
# The local multi-process environment as a test: deploy/local/up.sh starts two
# gateways and the five worker roles as separate processes on PostgreSQL,
# Redis and the S3 server, behind HAProxy; the README quickstart (the
# generated Python client's, tests/clients/python/quickstart.py) runs through
# the balancer; a live stream survives its gateway being stopped
# (tests/deploy/failover.py); deploy/local/down.sh stops everything by PID.
#   bash tests/deploy/local.sh
# Uses $PANOPTES_BIN when set; otherwise builds target/debug/panoptes.
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"

OPENAPI_PYTHON_CLIENT=0.29.1
CLIENT="$TOOLS/clients/python"
ensure_venv "openapi-python-client==$OPENAPI_PYTHON_CLIENT"
if [ ! -d "$CLIENT/panoptes_client" ]; then
  log "generating the Python client"
  PATH="$TOOLS/venv/bin:$PATH" openapi-python-client generate --path openapi/openapi.json \
    --config tests/clients/python/generator.yaml --meta none \
    --output-path "$CLIENT/panoptes_client" > /dev/null
fi
if [ -z "${PANOPTES_BIN:-}" ]; then
  cargo build --locked --bin panoptes
  PANOPTES_BIN="$ROOT/target/debug/panoptes"
fi
export PANOPTES_BIN

# A base port with the 26 above it free (balancer, gateways, worker metrics).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
for _ in $(seq 1 50); do
  base=$((20000 + RANDOM % 20000))
  ok=1
  for p in $(seq "$base" $((base + 26))); do port_free "$p" || { ok=0; break; }; done
  [ "$ok" = 1 ] && break
done
dir="$(mktemp -d)"
db="panoptes_test_local_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
trap 'bash "$ROOT/deploy/local/down.sh" --dir "$dir"' EXIT

url="$(bash deploy/local/up.sh --gateways 2 --port "$base" --dir "$dir" --db "$db" | tail -n 1)"
status=0
log "README quickstart through the balancer ($url)"
PYTHONPATH="$CLIENT" "$TOOLS/venv/bin/python" tests/clients/python/quickstart.py \
  --base-url "$url" --frame workers/tests/fixtures/frames/vtest-200.jpg --timeout 90 || status=1
log "a live stream survives its gateway being stopped"
"$TOOLS/venv/bin/python" tests/deploy/failover.py --base-url "$url" --dir "$dir" \
  --panoptes "$PANOPTES_BIN" || status=1
if grep -h '"level":"ERROR"' "$dir"/logs/*.log | grep -v 'shutting down' | head -20 | grep .; then
  echo "a process logged errors (above)" >&2
  status=1
fi
if grep -h '"message":"frame failed"' "$dir"/logs/*.log | head -5 | grep .; then
  echo "the detector failed frames (above): snapshots, results or the queue are misconfigured" >&2
  status=1
fi
if [ "$status" != 0 ]; then
  for f in "$dir"/logs/*.log; do echo "== $f" >&2; tail -n 15 "$f" >&2; done
fi
bash deploy/local/down.sh --dir "$dir"
left="$(compgen -G "$dir/pids/*.pid" || true)"
[ -z "$left" ] || { echo "down.sh left pid files: $left" >&2; status=1; }
[ "$status" = 0 ] && log "local environment: quickstart and failover passed"
exit "$status"
