#!/usr/bin/env bash
# Generated clients as a test: generates a Python client (openapi-python-client)
# and a TypeScript client (@hey-api/openapi-ts, fetch) from openapi/openapi.json
# into .tools/clients (never into git), fails on any generator warning or any
# operation left out, type-checks the TypeScript quickstart with `tsc --strict`,
# starts `panoptes up` on a free loopback port with a fresh data dir and the
# detector on ONNX Runtime, and runs both quickstarts (tests/clients/*/quickstart.*)
# against it: sign-up to stored snapshots, with live results over SSE.
#   bash tests/clients/run.sh
# Uses $PANOPTES_BIN when set; otherwise builds target/debug/panoptes.
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"

OPENAPI_PYTHON_CLIENT=0.29.1
SPEC="$ROOT/openapi/openapi.json"
HERE="$ROOT/tests/clients"
WORK="$TOOLS/clients"
FRAME="$ROOT/workers/tests/fixtures/frames/vtest-200.jpg"
export NO_COLOR=1

# Every operationId in the document.
operation_ids() {
  python3 -c 'import json, sys
for item in json.load(open(sys.argv[1]))["paths"].values():
    for op in item.values():
        if isinstance(op, dict) and "operationId" in op:
            print(op["operationId"])' "$SPEC"
}

log "installing openapi-python-client $OPENAPI_PYTHON_CLIENT and ONNX Runtime into .tools/venv"
ensure_venv "openapi-python-client==$OPENAPI_PYTHON_CLIENT"
ensure_onnxruntime
export PATH="$TOOLS/venv/bin:$PATH" # the generator formats its output with ruff from there
mkdir -p "$WORK"

log "generating the Python client (openapi-python-client $OPENAPI_PYTHON_CLIENT)"
rm -rf "$WORK/python"
mkdir -p "$WORK/python"
if ! openapi-python-client generate --path "$SPEC" --config "$HERE/python/generator.yaml" \
  --meta none --output-path "$WORK/python/panoptes_client" --fail-on-warning > "$WORK/python/generate.log" 2>&1; then
  cat "$WORK/python/generate.log" >&2
  echo "openapi-python-client failed" >&2
  exit 1
fi
# Its only line on a clean run is "Generating <path>"; anything else is a warning.
if grep -qv -e '^Generating ' -e '^[[:space:]]*$' "$WORK/python/generate.log"; then
  cat "$WORK/python/generate.log" >&2
  echo "openapi-python-client printed warnings (above)" >&2
  exit 1
fi
missing=()
for id in $(operation_ids); do
  module="$(sed -E 's/([a-z0-9])([A-Z])/\1_\2/g' <<<"$id" | tr '[:upper:]' '[:lower:]')"
  compgen -G "$WORK/python/panoptes_client/api/*/$module.py" > /dev/null || missing+=("$id")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "the Python client lacks operations: ${missing[*]}" >&2
  exit 1
fi

ensure_node
log "installing @hey-api/openapi-ts and TypeScript (npm ci, package-lock.json)"
TS="$WORK/typescript"
mkdir -p "$TS"
cp "$HERE/typescript/package.json" "$HERE/typescript/package-lock.json" "$HERE/typescript/tsconfig.json" \
  "$HERE/typescript/quickstart.ts" "$TS/"
if ! cmp -s "$TS/package-lock.json" "$TS/node_modules/.installed-lock.json" 2> /dev/null; then
  (cd "$TS" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$TS/package-lock.json" "$TS/node_modules/.installed-lock.json"
fi

log "generating the TypeScript client ($(cd "$TS" && npx --no-install openapi-ts --version))"
rm -rf "$TS/generated" "$TS/dist"
# (A relative input path, so that the warning check below never matches a folder name.)
if ! (cd "$TS" && npx --no-install openapi-ts -i ../../../openapi/openapi.json -o generated \
  -c @hey-api/client-fetch --no-log-file) > "$TS/generate.log" 2>&1 || grep -qiE 'warn|error' "$TS/generate.log"; then
  cat "$TS/generate.log" >&2
  echo "openapi-ts failed or warned" >&2
  exit 1
fi
missing=()
for id in $(operation_ids); do
  grep -q "^export const $id = " "$TS/generated/sdk.gen.ts" || missing+=("$id")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "the TypeScript client lacks operations: ${missing[*]}" >&2
  exit 1
fi

log "tsc --strict (the quickstart against the generated types)"
(cd "$TS" && npx --no-install tsc --strict)

if [ -z "${PANOPTES_BIN:-}" ]; then
  log "cargo build --bin panoptes"
  cargo build --locked --bin panoptes
  PANOPTES_BIN="$ROOT/target/debug/panoptes"
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
data="$(mktemp -d)"
log "starting panoptes up on 127.0.0.1:$PORT (data in $data)"
# No demo camera; a loopback URL for the push devices (they are never dialled);
# a snapshot every second of capture time instead of every 10 s.
PANOPTES__EDGE__DEMO_CAMERA=false \
  PANOPTES__OUTBOUND__ALLOW_PRIVATE=true \
  PANOPTES__ANALYTICS__PERSIST_INTERVAL_MS=1000 \
  PANOPTES__LOG__FORMAT=json \
  PANOPTES__WORKER__METRICS_LISTEN="127.0.0.1:$(free_port)" \
  "$PANOPTES_BIN" up --listen "127.0.0.1:$PORT" --data-dir "$data" > "$data/panoptes.log" 2>&1 &
pid=$!
stop_platform() {
  kill "$pid" 2> /dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
}
trap 'stop_platform; rm -rf "$data"' EXIT

ready=""
for _ in $(seq 1 300); do
  kill -0 "$pid" 2> /dev/null || break
  if curl -sf --max-time 2 "$BASE/readyz" > /dev/null; then ready=1; break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "panoptes exited, or was not ready on $BASE within 30 s:" >&2
  tail -n 40 "$data/panoptes.log" >&2
  exit 1
fi

status=0
log "Python quickstart (generated client)"
PYTHONPATH="$WORK/python" "$TOOLS/venv/bin/python" "$HERE/python/quickstart.py" \
  --base-url "$BASE" --frame "$FRAME" --timeout 60 || status=1
log "TypeScript quickstart (generated client, Node $(node --version))"
(cd "$TS" && node dist/quickstart.js --base-url "$BASE" --frame "$FRAME" --timeout 60) || status=1

if [ "$status" != 0 ]; then
  echo "a quickstart failed; the platform's log ends with:" >&2
  tail -n 40 "$data/panoptes.log" >&2
fi
if grep -q '"level":"ERROR"' "$data/panoptes.log"; then
  echo "the platform logged errors during the quickstarts:" >&2
  grep '"level":"ERROR"' "$data/panoptes.log" | head -20 >&2
  status=1
fi
stop_platform
[ "$status" = 0 ] && log "generated clients: both quickstarts passed"
exit "$status"
