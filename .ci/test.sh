#!/usr/bin/env bash
# The full test suite on a fresh Debian machine: installs and starts what the
# tests need (PostgreSQL, Redis, an S3 protocol server, an RTSP server and its
# test clip, the Rust build tools, the OpenAPI validator), then runs format and lint checks, every test, and
# validates the spec.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_rust
ensure_postgres
ensure_redis
ensure_s3
ensure_venv "openapi-spec-validator==0.7.2" "schemathesis==4.32.5" "standardwebhooks==1.3.0"
ensure_onnxruntime
ensure_rtsp
ensure_promtool
drop_test_databases

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "OpenAPI document validates as OpenAPI 3"
"$TOOLS/venv/bin/openapi-spec-validator" openapi/openapi.json
log "OpenAPI document lints clean (@redocly/cli, openapi/redocly.yaml)"
ensure_redocly
REDOCLY_TELEMETRY=off "$REDOCLY" lint --config openapi/redocly.yaml openapi/openapi.json 2>&1 | grep -v "║\|╔\|╚"
[ "${PIPESTATUS[0]}" = 0 ]
log "cargo test"
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$TOOLS/test.log"
status=${PIPESTATUS[0]}
log "deployment: Dockerfiles against the CLI, Terraform (HCL parse, contract, checkov), Kubernetes (schemas, contract)"
python3 tests/deploy/dockerfiles.py --bin-dir target/debug
docker=$?
bash tests/deploy/terraform.sh
terraform=$?
bash tests/deploy/kubernetes.sh
kubernetes=$?
log "the local multi-process environment: quickstart through HAProxy, a stream surviving a stopped gateway"
PANOPTES_BIN="$ROOT/target/debug/panoptes" bash tests/deploy/local.sh
local_env=$?
log "fuzzing the API against its OpenAPI document (schemathesis)"
bash tests/fuzz/api.sh 30
fuzz=$?
log "generated OpenAPI clients (Python, TypeScript) run the quickstart"
bash tests/clients/run.sh
clients=$?
set -e
drop_test_databases
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$TOOLS/test.log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '^test result: .* ([0-9]+) failed' "$TOOLS/test.log" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
[ "$fuzz" = 0 ] || { echo "API fuzzing failed" >&2; failed=$((failed + 1)); }
[ "$clients" = 0 ] || { echo "generated-client quickstarts failed" >&2; failed=$((failed + 1)); }
deploy=0
for check in docker terraform kubernetes local_env; do
  [ "${!check}" = 0 ] || { echo "deployment check $check failed" >&2; failed=$((failed + 1)); deploy=1; }
done
[ "$status" = 0 ] && status=$fuzz
[ "$status" = 0 ] && status=$clients
[ "$status" = 0 ] && status=$deploy
echo "total: ${passed} passed, ${failed} failed"
exit "$status"
