#!/usr/bin/env bash
# Static checks of terraform/: every .tf file parses (python-hcl2), checkov
# finds no failed check (each skip is in the code next to its resource, with
# its reason), and `terraform fmt` is clean when a terraform binary exists.
# Talks to nothing but PyPI (pip); nothing here contacts AWS.
set -euo pipefail
source "$(dirname "$0")/../../.ci/lib.sh"

HCL2_VERSION=8.1.4
CHECKOV_VERSION=3.3.30
TF_DIR="$ROOT/terraform"
start=$SECONDS

# checkov pins many packages of its own: it gets its own virtualenv, so it
# cannot change what the other tools in .tools/venv run on. It also brings
# bc-python-hcl2, which installs the same `hcl2` module as python-hcl2:
# python-hcl2 goes into its own directory (PYTHONPATH) so neither replaces
# the other.
CHECKOV="$TOOLS/checkov/bin/checkov"
if [ ! -x "$CHECKOV" ] || [ "$("$CHECKOV" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  log "installing checkov $CHECKOV_VERSION into .tools/checkov"
  python3 -m venv "$TOOLS/checkov" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$TOOLS/checkov"; }
  "$TOOLS/checkov/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
HCL2_DIR="$TOOLS/python-hcl2-$HCL2_VERSION"
if [ ! -d "$HCL2_DIR/python_hcl2-$HCL2_VERSION.dist-info" ]; then
  log "installing python-hcl2 $HCL2_VERSION into .tools/python-hcl2-$HCL2_VERSION"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check --target "$HCL2_DIR" "python-hcl2==$HCL2_VERSION"
fi
hcl_parse() { PYTHONPATH="$HCL2_DIR" "$TOOLS/venv/bin/python" "$ROOT/tests/deploy/hcl_parse.py" "$@"; }

# 0. The syntax gate must reject a broken file (checked outside the repo).
log "syntax gate self-check: a broken .tf must be rejected"
bad="$(mktemp -d)"
trap 'rm -rf "$bad"' EXIT
cat > "$bad/broken.tf" <<'TF'
resource "aws_s3_bucket" "unterminated" {
  bucket = "panoptes-selfcheck"
TF
if hcl_parse "$bad" 2>"$bad/err"; then
  echo "FAIL: the syntax step accepted $bad/broken.tf" >&2
  exit 1
fi
grep -q "broken.tf" "$bad/err" || { echo "FAIL: the syntax step did not name the broken file" >&2; cat "$bad/err" >&2; exit 1; }
echo "ok: rejected ($(head -n 1 "$bad/err"))"

# 1. Syntax of every .tf file.
log "parsing every .tf file under terraform/ (python-hcl2 $HCL2_VERSION)"
hcl_parse "$TF_DIR"

# 1b. The configuration contract: every process gets every required name,
# secrets only through `secrets` (Secrets Manager), fixed values as agreed.
log "configuration contract of every role (panoptes config-reference)"
export_config_reference
PYTHONPATH="$HCL2_DIR" "$TOOLS/venv/bin/python" - "$TF_DIR" <<'PY'
import sys, pathlib, hcl2
tf = pathlib.Path(sys.argv[1]) / "modules"
def local_maps(path):
    out = {}
    for block in hcl2.load(open(path)).get("locals", []):
        out.update(block)
    return out
gw = local_maps(tf / "gateway/environment.tf")
wk = local_maps(tf / "workers/environment.tf")
gpu = local_maps(tf / "gpu_detectors/environment.tf")
roles = {"gateway": (gw["gateway_environment"], gw["gateway_secrets"]),
         "detect": (gpu["detect_environment"], gpu["detect_secrets"])}
for role in ("ingest", "analytics", "notify", "schedule"):
    roles[role] = (wk["worker_environment"][role], wk["worker_secrets"][role])
sys.path.insert(0, str(pathlib.Path(sys.argv[1]).parent / "tests" / "deploy"))
import contract
required = contract.required()
# Values the environment fixes (the rest only have to be there).
fixed = {"PANOPTES__BLOBS__BACKEND": "s3", "PANOPTES__LOG__FORMAT": "json",
         "PANOPTES__SERVER__LISTEN": "0.0.0.0:8080", "PANOPTES__WORKER__METRICS_LISTEN": "0.0.0.0:9464",
         "PANOPTES__DETECTOR__EXECUTION_PROVIDER": "cuda",
         "PANOPTES__DETECTOR__MODEL_PATH": "/opt/panoptes/models/nanodet-m-416.onnx",
         "PANOPTES__DETECTOR__ORT_LIBRARY": "/opt/panoptes/lib/libonnxruntime.so.1.31.1"}
if set(roles) != set(required):
    print(f"FAIL: Terraform deploys {sorted(roles)}, the binaries have {sorted(required)}", file=sys.stderr)
    sys.exit(1)
problems = []
for role, (env, sec) in sorted(roles.items()):
    for name, is_secret in sorted(required[role].items()):
        if is_secret:
            if name not in sec:
                problems.append(f"{role}: {name} missing from secrets")
            if name in env:
                problems.append(f"{role}: secret {name} in plain environment")
        elif name not in env:
            problems.append(f"{role}: {name} missing from environment")
        elif name in fixed and env[name].strip('"') != fixed[name]:
            problems.append(f"{role}: {name} = {env[name]}, expected {fixed[name]}")
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
print(f"contract: {len(roles)} roles checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
PY

# 1c. Module interfaces (terraform validate needs the providers, which this
# offline check cannot download): every argument of a local module call is
# a variable of that module, and every variable without a default is passed.
log "module calls match the modules' variables"
PYTHONPATH="$HCL2_DIR" "$TOOLS/venv/bin/python" - "$TF_DIR" <<'PY'
import sys, pathlib, hcl2
root = pathlib.Path(sys.argv[1])
meta = {"source", "count", "for_each", "depends_on", "providers", "version"}
label = lambda s: s.strip('"')
args = lambda body: {k for k in body if not k.startswith("__")}
def variables(directory):
    out = {}
    for f in directory.glob("*.tf"):
        for block in hcl2.load(open(f)).get("variable", []):
            for name, body in block.items():
                out[label(name)] = "default" in body
    return out
problems, calls = [], 0
for f in sorted(root.rglob("*.tf")):
    for block in hcl2.load(open(f)).get("module", []):
        for name, body in block.items():
            name = label(name)
            source = body["source"].strip('"')
            if not source.startswith("."):
                continue
            calls += 1
            declared = variables((f.parent / source).resolve())
            passed = args(body) - meta
            for arg in sorted(passed - set(declared)):
                problems.append(f"{f.relative_to(root)}: module.{name} passes unknown argument {arg}")
            for var, has_default in sorted(declared.items()):
                if not has_default and var not in passed:
                    problems.append(f"{f.relative_to(root)}: module.{name} misses required variable {var}")
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
print(f"module calls: {calls} checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
PY

# 2. checkov over the modules and the example environment: any failed check
# fails the script. Skips exist only as in-code #checkov:skip=CKV_...:reason
# comments; a second, JSON run lists them with their reasons and the counts.
log "checkov $CHECKOV_VERSION"
checkov=("$CHECKOV" -d "$TF_DIR" --framework terraform --skip-download --download-external-modules false)
"${checkov[@]}" --compact --quiet
report="$(mktemp)"
trap 'rm -rf "$bad" "$report"' EXIT
"${checkov[@]}" --output json > "$report" || true
"$TOOLS/venv/bin/python" - "$report" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
for r in reports:
    for key in totals:
        totals[key] += r.get("summary", {}).get(key, 0)
    for c in r.get("results", {}).get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment", "")
        print(f"  skipped {c['check_id']} {c['resource']}: {reason}")
        if len(reason.strip()) < 20:
            print(f"FAIL: {c['check_id']} on {c['resource']} is skipped without a real reason", file=sys.stderr)
            sys.exit(1)
print("checkov: {passed} passed, {failed} failed, {skipped} skipped, {parsing_errors} parsing errors".format(**totals))
sys.exit(1 if totals["failed"] or totals["parsing_errors"] else 0)
PY

# 3. Formatting, where terraform is installed (offline: fmt needs no provider).
if command -v terraform >/dev/null 2>&1; then
  log "terraform fmt -check -recursive terraform"
  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive "$TF_DIR"
else
  log "terraform not on PATH: fmt check skipped"
fi

log "terraform checks passed in $((SECONDS - start)) s"
