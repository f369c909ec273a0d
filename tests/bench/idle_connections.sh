#!/usr/bin/env bash
# Idle-connection bursts against the gateway (PostgreSQL + Redis, default
# connection limits): RSS before, while BURST idle connections are held
# (spread over client addresses 127.0.0.2.., PER_ADDRESS each, under the
# per-client cap), after they are closed, and after a second identical burst
# (memory that is reused, not leaked, does not grow again); /healthz latency
# while they are held; then a flood of FLOOD connections from one address,
# of which only `server.max_connections_per_client` are kept.
#   BURST=10000 FLOOD=5000 PROFILE=release bash tests/bench/idle_connections.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
BURST="${BURST:-10000}"
PER_ADDRESS="${PER_ADDRESS:-1000}"
FLOOD="${FLOOD:-5000}"
PROFILE="${PROFILE:-release}"
PORT="${PORT:-18641}"
ensure_rust
ensure_postgres
ensure_redis
ulimit -n "$(ulimit -Hn)"
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -q --bin panoptes -p panoptes-launcher
else
  cargo build --locked -q --bin panoptes -p panoptes-launcher
fi
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/$PROFILE/panoptes"
work="$TOOLS/idle-bench"; rm -rf "$work"; mkdir -p "$work"

PANOPTES__STORE__URL="$(fresh_database panoptes_idle_bench)" PANOPTES__REDIS__URL="$PANOPTES_TEST_REDIS_URL" \
PANOPTES__REDIS__KEY_PREFIX="panoptes-idlebench:$$" PANOPTES__DATA__DIR="$work/data" PANOPTES__LOG__LEVEL=warn \
  "$bin" gateway --listen "127.0.0.1:$PORT" > "$work/gateway.log" 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null || true' EXIT
wait_port "$PORT"

python3 - "$gw" "$PORT" "$BURST" "$PER_ADDRESS" "$FLOOD" <<'PY'
import re, socket, sys, time

pid, port, burst, per_address, flood = (int(a) for a in sys.argv[1:])

def rss_kb():
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))

def get(path, source="127.0.0.250"):
    """One request on its own connection from `source` (not a flooding address)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode().split("\r\n\r\n", 1)[1]

def metric(name):
    return float(re.search(rf"^{re.escape(name)} (\S+)$", get("/metrics"), re.M).group(1))

OPEN = 'panoptes_http_connections_open{budget="ordinary"}'

def until(what, ok, limit=60):
    start = time.monotonic()
    while not ok():
        if time.monotonic() - start > limit:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.05)

def healthz_ms():
    start = time.monotonic()
    get("/healthz")
    return (time.monotonic() - start) * 1000

def open_from(address, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((address, 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks

def burst_round():
    socks, start = [], time.monotonic()
    for i in range(0, burst, per_address):
        socks += open_from(f"127.0.0.{2 + i // per_address}", min(per_address, burst - i))
    # The /metrics request's own connection is one of the open ones.
    until("the burst to be accepted", lambda: metric(OPEN) >= burst + 1)
    opened_s = time.monotonic() - start
    held, health = rss_kb(), healthz_ms()
    for s in socks:
        s.close()
    until("the burst to be closed", lambda: metric(OPEN) <= 1)
    time.sleep(1)  # let the allocator settle before reading RSS
    return opened_s, held, health, rss_kb()

metric(OPEN)
base_kb = rss_kb()
opened_s, held1, health1, after1 = burst_round()
_, held2, health2, after2 = burst_round()
print(f"\nIdle connection bursts: {burst} connections from {(burst + per_address - 1) // per_address} addresses")
print(f"  opened and accepted in      {opened_s:.2f} s")
print(f"  RSS before                  {base_kb / 1024:.1f} MB")
print(f"  RSS holding burst 1 / 2     {held1 / 1024:.1f} / {held2 / 1024:.1f} MB "
      f"({(held1 - base_kb) / burst:.2f} KB per idle connection)")
print(f"  /healthz while held         {health1:.1f} / {health2:.1f} ms")
print(f"  RSS after burst 1 / 2       {after1 / 1024:.1f} / {after2 / 1024:.1f} MB "
      f"(retained over baseline: {(after1 - base_kb) / 1024:.1f} / {(after2 - base_kb) / 1024:.1f} MB)")

refused_before = metric('panoptes_http_connections_closed_total{reason="per_client"}')
socks = []
for _ in range(flood):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        s.connect(("127.0.0.1", port))
        socks.append(s)
    except OSError:
        s.close()
PER_CLIENT = 'panoptes_http_connections_closed_total{reason="per_client"}'
until("the flood to be accepted or refused",
      lambda: metric(PER_CLIENT) - refused_before + metric(OPEN) - 1 >= len(socks))
health = healthz_ms()
refused = metric(PER_CLIENT) - refused_before
held = metric(OPEN)
for s in socks:
    s.close()
print(f"\nFlood from one address: {flood} connections")
print(f"  held by the gateway         {held - 1:.0f}")
print(f"  refused (429, closed)       {refused:.0f}")
print(f"  /healthz from another address {health:.1f} ms")
PY
