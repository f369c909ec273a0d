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

# checkov brings bc-python-hcl2, which installs the same `hcl2` module as
# python-hcl2: python-hcl2 goes into its own directory (PYTHONPATH) so
# neither replaces the other.
if [ ! -x "$TOOLS/venv/bin/checkov" ] || [ "$("$TOOLS/venv/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  log "installing checkov $CHECKOV_VERSION into .tools/venv"
  ensure_venv "checkov==$CHECKOV_VERSION"
fi
HCL2_DIR="$TOOLS/python-hcl2-$HCL2_VERSION"
if [ ! -d "$HCL2_DIR/python_hcl2-$HCL2_VERSION.dist-info" ]; then
  log "installing python-hcl2 $HCL2_VERSION into .tools/python-hcl2-$HCL2_VERSION"
  ensure_venv --upgrade pip >/dev/null 2>&1 || true
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

# 2. checkov over the modules and the example environment: any failed check
# fails the script. Skips exist only as in-code #checkov:skip=CKV_...:reason
# comments; a second, JSON run lists them with their reasons and the counts.
log "checkov $CHECKOV_VERSION"
checkov=("$TOOLS/venv/bin/checkov" -d "$TF_DIR" --framework terraform --skip-download --download-external-modules false)
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
  terraform fmt -check -recursive "$TF_DIR"
else
  log "terraform not on PATH: fmt check skipped"
fi

log "terraform checks passed in $((SECONDS - start)) s"
