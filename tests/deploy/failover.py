#!/usr/bin/env python3
"""A live stream survives a gateway being stopped, through the balancer.

Against deploy/local/up.sh's environment (DIR): signs up through the balancer,
opens the all-devices stream, has `panoptes publish-demo` publish results on
the bus while it reads, stops (SIGTERM) the gateway holding the stream once
ten have arrived, reconnects through the balancer with `Last-Event-ID` and
its `Stream-Token`, and checks that another gateway answered and that every
published event arrived exactly once, in order.

    python tests/deploy/failover.py --base-url http://127.0.0.1:8080 --dir .data/local --panoptes target/debug/panoptes
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

COUNT = 60


def fail(message: str) -> None:
    print(f"failover: {message}", file=sys.stderr)
    sys.exit(1)


def environment(directory: Path) -> dict[str, str]:
    """The settings deploy/local/up.sh gave its processes (DIR/env, DIR/secrets.env)."""
    env = dict(os.environ)
    for name in ("env", "secrets.env"):
        for line in (directory / name).read_text().splitlines():
            if "=" in line and not line.startswith("source "):
                key, value = line.split("=", 1)
                env[key] = value
    return env


def events(response: httpx.Response, deadline: float):
    """(id, event, data) of each event of an open stream, until it ends."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            fail("timed out reading the stream")
        if line == "":
            if "data" in fields:
                yield fields.get("id"), fields.get("event", "message"), fields["data"]
            fields = {}
        elif not line.startswith(":") and ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value[1:] if value.startswith(" ") else value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--panoptes", required=True)
    args = parser.parse_args()
    api = f"{args.base_url}/api/v1"
    http = httpx.Client(timeout=10)

    email = f"failover-{uuid.uuid4().hex[:12]}@example.com"
    r = http.post(f"{api}/auth/signup", json={"email": email, "password": "a long password"})
    if r.status_code != 201:
        fail(f"sign-up: {r.status_code} {r.text}")
    session = r.json()["data"]["token"]
    r = http.post(
        f"{api}/api-keys",
        headers={"authorization": f"Bearer {session}"},
        json={"name": "failover", "type": "personal"},
    )
    key = r.json()["data"]["key"]
    auth = {"authorization": f"Bearer {key}"}
    r = http.post(
        f"{api}/devices",
        headers=auth,
        json={
            "name": "Failover",
            "rtspUrl": "rtsp://127.0.0.1:9/none",
            "plan": "level_01",
            "utcOffset": "UTC+0",
        },
    )
    if r.status_code != 201:
        fail(f"device: {r.status_code} {r.text}")
    device = r.json()["data"]["id"]

    stream_url = f"{api}/devices/analysis/stream/all"
    timeout = httpx.Timeout(10, read=30)
    deadline = time.monotonic() + 90
    received: list[str] = []
    first = http.stream("GET", stream_url, headers=auth, timeout=timeout)
    response = first.__enter__()
    if response.status_code != 200:
        fail(f"stream: {response.status_code} {response.read()!r}")
    served_by = response.headers.get("x-panoptes-gateway")
    token = response.headers.get("stream-token")
    if not served_by or not token:
        fail(f"the balancer or gateway headers are missing: {dict(response.headers)}")
    print(f"failover: stream opened on {served_by}")

    publisher = subprocess.Popen(
        [args.panoptes, "publish-demo", "--email", email, "--device", device,
         "--count", str(COUNT), "--interval-ms", "100"],
        env=environment(args.dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stopped = False
    try:
        for event_id, kind, _ in events(response, deadline):
            if kind != "analysis_result":
                continue
            received.append(event_id)
            if len(received) == 10:
                pid = int((args.dir / "pids" / f"{served_by}.pid").read_text())
                print(f"failover: stopping {served_by} (pid {pid}) after 10 events")
                os.kill(pid, signal.SIGTERM)
                stopped = True
    except httpx.HTTPError as e:
        print(f"failover: the stream broke: {type(e).__name__}")
    finally:
        first.__exit__(None, None, None)
    if not stopped:
        fail(f"the stream ended after {len(received)} events, before the gateway was stopped")

    # Resume through the balancer: another gateway, from the last id seen.
    headers = {**auth, "last-event-id": received[-1], "stream-token": token}
    with http.stream("GET", stream_url, headers=headers, timeout=timeout) as response:
        if response.status_code != 200:
            fail(f"resume: {response.status_code} {response.read()!r}")
        resumed_on = response.headers.get("x-panoptes-gateway")
        if resumed_on == served_by:
            fail(f"resumed on the stopped gateway {served_by}")
        print(f"failover: resumed on {resumed_on} after event {received[-1]}")
        for event_id, kind, _ in events(response, deadline):
            if kind == "analysis_result":
                received.append(event_id)
            if len(received) >= COUNT:
                break
    out, err = publisher.communicate(timeout=60)
    if publisher.returncode != 0:
        fail(f"publish-demo failed: {err}")
    # `<event id> <n>` per event (its log lines are JSON objects).
    published = [m.group(1) for m in map(re.compile(r"^(\S+-\d+) \d+$").match, out.splitlines()) if m]
    if len(published) != COUNT:
        fail(f"publish-demo printed {len(published)} ids, not {COUNT}")
    if received != published:
        missing = [i for i in published if i not in received]
        extra = len(received) - len(set(received))
        fail(f"received {len(received)} events, {len(missing)} missing, {extra} duplicated")
    print(f"failover: all {COUNT} events arrived once, in order, across the stop")


if __name__ == "__main__":
    main()
