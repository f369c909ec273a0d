# Shared set-up for the run, test and bench scripts. Sourced, not executed.
# Installs what is missing (Debian packages), starts PostgreSQL and Redis when
# they are not already answering, and never touches services that are.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
export PANOPTES_TEST_POSTGRES_URL="${PANOPTES_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:${PG_PORT}/postgres}"
export PANOPTES_TEST_REDIS_URL="${PANOPTES_TEST_REDIS_URL:-redis://127.0.0.1:${REDIS_PORT}}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  # nasm: libjpeg-turbo's SIMD decoder (mozjpeg-sys builds it from source).
  apt_install ca-certificates build-essential pkg-config curl nasm
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    log "installing the Rust toolchain from Debian (cargo, rustc)"
    apt_install cargo rustc
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

ensure_postgres() {
  if ! port_open "$PG_PORT"; then
    apt_install postgresql postgresql-client
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster "$version" main start
    wait_port "$PG_PORT"
  fi
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  # Fresh Debian clusters use password auth on TCP: give `postgres` the password
  # the tests use (harmless where trust auth is configured).
  if ! psql "$PANOPTES_TEST_POSTGRES_URL" -qAtc 'select 1' >/dev/null 2>&1; then
    log "setting the postgres role's password for local tests"
    as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  fi
  psql "$PANOPTES_TEST_POSTGRES_URL" -qAtc 'select 1' >/dev/null
}

ensure_redis() {
  if ! port_open "$REDIS_PORT"; then
    apt_install redis-server
    log "starting Redis on $REDIS_PORT"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --logfile "/tmp/panoptes-redis-$REDIS_PORT.log"
    wait_port "$REDIS_PORT"
  fi
}

# A new, empty PostgreSQL database for a script's gateway; prints its URL.
fresh_database() {
  psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $1" >/dev/null
  psql "$PANOPTES_TEST_POSTGRES_URL" -qc "CREATE DATABASE $1" >/dev/null
  echo "${PANOPTES_TEST_POSTGRES_URL%/*}/$1"
}

# An S3-compatible server for the blob-store tests: s3s-fs (built from
# crates.io once into .tools; 0.14.1 is the last that builds on rustc 1.95).
S3_PORT="${S3_PORT:-8014}"
export PANOPTES_TEST_S3_ENDPOINT="${PANOPTES_TEST_S3_ENDPOINT:-http://127.0.0.1:${S3_PORT}}"
export PANOPTES_TEST_S3_ACCESS_KEY="${PANOPTES_TEST_S3_ACCESS_KEY:-panoptes-test}"
export PANOPTES_TEST_S3_SECRET_KEY="${PANOPTES_TEST_S3_SECRET_KEY:-panoptes-test-secret}"
ensure_s3() {
  if ! port_open "$S3_PORT"; then
    if [ ! -x "$TOOLS/s3s/bin/s3s-fs" ]; then
      log "building s3s-fs 0.14.1 (once, into .tools)"
      cargo install s3s-fs@0.14.1 --locked --features binary --root "$TOOLS/s3s" -q
    fi
    mkdir -p "$TOOLS/s3data"
    log "starting s3s-fs on $S3_PORT"
    nohup "$TOOLS/s3s/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" \
      --access-key "$PANOPTES_TEST_S3_ACCESS_KEY" --secret-key "$PANOPTES_TEST_S3_SECRET_KEY" \
      "$TOOLS/s3data" > "/tmp/panoptes-s3s-$S3_PORT.log" 2>&1 &
    wait_port "$S3_PORT"
  fi
}

# A Python virtualenv under .tools for PyPI tools (validators, load tools).
ensure_venv() {
  if [ ! -x "$TOOLS/venv/bin/python" ]; then
    python3 -m venv "$TOOLS/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$TOOLS/venv"; }
  fi
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "$@"
}

# Remove databases left behind by earlier test runs.
drop_test_databases() {
  psql "$PANOPTES_TEST_POSTGRES_URL" -qAtc "select datname from pg_database where datname like 'panoptes_test_%'" |
    while read -r db; do psql "$PANOPTES_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null || true; done
}

# ONNX Runtime for the detector: the onnxruntime 1.31.1 wheel's shared library
# (ort loads it at run time; nothing is downloaded at build time), plus what the
# Python reference pipeline and the model scripts use. Exports ORT_DYLIB_PATH.
ORT_VERSION=1.31.1
ensure_onnxruntime() {
  local lib="$TOOLS/venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION"
  if [ ! -f "$lib" ]; then
    log "installing onnxruntime $ORT_VERSION (Python wheel) into .tools/venv"
    ensure_venv "onnxruntime==$ORT_VERSION" "numpy==2.4.6" "pillow==13.0.0" "onnx==1.23.2"
  fi
  lib="$(ls "$TOOLS"/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so."$ORT_VERSION" | head -n 1)"
  export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$lib}"
}

# A real RTSP server for the ingest tests (GStreamer's RTSP server through
# Debian's python3-gi) and the H.264 test clip it serves (vtest.avi from
# opencv-doc, re-encoded by ffmpeg). `--bench` also makes 720p and 1080p clips.
ensure_rtsp() {
  apt_install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad glib-networking ffmpeg opencv-doc openssl
  bash "$ROOT/tests/rtsp/clips.sh" "$@"
  export PANOPTES_TEST_CLIP="${PANOPTES_TEST_CLIP:-$TOOLS/media/vtest.mp4}"
}

# @redocly/cli (npm) into .tools/redocly, for linting the OpenAPI document.
REDOCLY_VERSION=2.77.0
# Node.js and npm (the machine's, else Debian's) for the npm-based tools.
ensure_node() {
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
}

ensure_redocly() {
  ensure_node
  local bin="$TOOLS/redocly/node_modules/.bin/redocly"
  if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "$REDOCLY_VERSION" ]; then
    log "installing @redocly/cli $REDOCLY_VERSION into .tools/redocly"
    mkdir -p "$TOOLS/redocly"
    npm install --prefix "$TOOLS/redocly" --no-audit --no-fund --loglevel=error "@redocly/cli@$REDOCLY_VERSION" >/dev/null
  fi
  REDOCLY="$bin"
}

# promtool (from Debian's `prometheus` package) for the tests that check each
# `/metrics` with `promtool check metrics`; they fail without it unless
# PANOPTES_TEST_SKIP_PROMTOOL=1.
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 || apt_install prometheus
}

# The settings production requires of each process (`panoptes
# config-reference`), into a file named by PANOPTES_CONFIG_REFERENCE, for the
# deployment checks (tests/deploy/contract.py reads it). Builds the launcher
# when $PANOPTES_BIN is not set and target/debug/panoptes is missing.
export_config_reference() {
  local bin="${PANOPTES_BIN:-$ROOT/target/debug/panoptes}"
  if [ ! -x "$bin" ]; then
    log "cargo build --bin panoptes (for config-reference)"
    cargo build -q --locked --bin panoptes
    bin="$ROOT/target/debug/panoptes"
  fi
  PANOPTES_CONFIG_REFERENCE="$(mktemp)"
  "$bin" config-reference > "$PANOPTES_CONFIG_REFERENCE"
  export PANOPTES_CONFIG_REFERENCE
}
