#!/usr/bin/env python3
"""The README quickstart in Python, on a client generated from the OpenAPI document.

It signs up, creates a personal API key, registers a push camera (an edge
device that sends its own JPEG frames) with a queue-analysis scene and an alert
rule, creates the camera's device key and sends a heartbeat, starts analysis,
pushes frames, reads live results from the Server-Sent Events stream, reads the
stored snapshots, acknowledges the alert the rule fired, reads the scene's
latest state, and stops analysis.

Generate the client (openapi-python-client 0.29.1) next to this file, then run it
against a platform
(`PANOPTES__OUTBOUND__ALLOW_PRIVATE=true bash .ci/up.sh --listen 127.0.0.1:8080 --data-dir .data`),
from the repository root:

    pip install openapi-python-client==0.29.1   # also brings httpx and attrs, which the client uses
    openapi-python-client generate --path openapi/openapi.json --meta none \
        --config tests/clients/python/generator.yaml --output-path tests/clients/python/panoptes_client
    python tests/clients/python/quickstart.py --base-url http://127.0.0.1:8080

A push device still needs an `rtspUrl`, though it is never dialled: the default
is on loopback, which the platform accepts only with `outbound.allow_private`
(tests/clients/run.sh sets it); `--rtsp-url` gives another.

Every wait has a deadline; any failure exits with status 1 and says what failed.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import httpx

from panoptes_client import AuthenticatedClient, Client
from panoptes_client.api.alerts import acknowledge_alert, create_alert_rule, list_alerts
from panoptes_client.api.analytics import get_scene_latest, list_snapshots
from panoptes_client.api.api_keys import create_api_key
from panoptes_client.api.auth import signup
from panoptes_client.api.devices import create_device, start_analysis, stop_analysis
from panoptes_client.api.edge import device_heartbeat, push_frame
from panoptes_client.api.scenes import create_scene
from panoptes_client.models import (
    AnalysisResult,
    AnalysisType,
    CreateApiKeyRequest,
    CreateDeviceRequest,
    CreateRuleRequest,
    CreateSceneRequest,
    DetectClass,
    DeviceType,
    ErrorResponse,
    KeyType,
    Operator,
    QueueMetrics,
    SceneConfigDto,
    SignupRequest,
    StartAnalysisRequest,
    StreamTokenEvent,
    ZoneDto,
    ZonesDto,
    ZoneType,
)
from panoptes_client.types import File, Response

REPO = Path(__file__).resolve().parents[3]
DEFAULT_FRAME = REPO / "workers/tests/fixtures/frames/vtest-200.jpg"
# The fields every `analysis_result` event carries (the AnalysisResult schema's `required`).
REQUIRED_RESULT_FIELDS = (
    "deviceId",
    "analysisId",
    "sceneId",
    "timestamp",
    "detections",
    "computeNodeId",
    "processingMs",
)

T = TypeVar("T")


class QuickstartError(Exception):
    """A step failed; the message says which and why."""


def ok(response: Response[T | ErrorResponse], expected: HTTPStatus, what: str) -> T:
    """The parsed body of a call that answered `expected`, or a QuickstartError
    with the API's error code, message and request id."""
    body = response.parsed
    if response.status_code == expected and body is not None and not isinstance(body, ErrorResponse):
        return body
    if isinstance(body, ErrorResponse):
        why = f"{body.error.code} {body.message!r} (request id {body.meta.request_id})"
    else:
        why = response.content[:300].decode("utf-8", "replace")
    raise QuickstartError(f"{what}: HTTP {int(response.status_code)} {why}")


class Steps:
    """Prints each step with the time it took."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()

    def done(self, message: str) -> None:
        now = time.monotonic()
        print(f"[python] {now - self.start:6.2f}s (+{now - self.last:5.2f}s) {message}", flush=True)
        self.last = now


class FramePusher(threading.Thread):
    """An edge camera: pushes one JPEG about `fps` times a second until stopped,
    waiting out `Retry-After` when the platform says 429."""

    def __init__(self, device: AuthenticatedClient, device_id: uuid.UUID, jpeg: bytes, fps: float) -> None:
        super().__init__(name="frame-pusher", daemon=True)
        self.device, self.device_id, self.jpeg, self.interval = device, device_id, jpeg, 1.0 / fps
        self.stopped = threading.Event()
        self.accepted = 0
        self.error: str | None = None

    def run(self) -> None:
        while not self.stopped.is_set():
            frame = File(payload=io.BytesIO(self.jpeg), file_name="frame.jpg", mime_type="image/jpeg")
            try:
                response = push_frame.sync_detailed(self.device_id, client=self.device, body=frame)
            except httpx.HTTPError as e:
                self.error = f"push a frame: {e!r}"
                return
            if response.status_code == HTTPStatus.ACCEPTED:
                self.accepted += 1
                pause = self.interval
            elif response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
                pause = min(float(response.headers.get("retry-after", "1")), 5.0)
            else:
                try:
                    ok(response, HTTPStatus.ACCEPTED, "push a frame")
                except QuickstartError as e:
                    self.error = str(e)
                return
            self.stopped.wait(pause)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def sse_events(lines: Iterator[str], deadline: float) -> Iterator[tuple[str, str]]:
    """(event name, data) of each event of a text/event-stream; TimeoutError once
    `deadline` (time.monotonic()) has passed. Comments (keep-alives) and
    `retry:`/`id:` are skipped."""
    name = "message"
    data: list[str] = []
    for line in lines:
        if time.monotonic() > deadline:
            raise TimeoutError
        if line == "":  # a blank line ends an event
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    raise QuickstartError("the event stream ended")


def check_result(data: str, device_id: uuid.UUID, scene_id: uuid.UUID) -> AnalysisResult:
    """Parse an `analysis_result` event's data into the generated model and check it."""
    raw: dict[str, Any] = json.loads(data)
    missing = [f for f in REQUIRED_RESULT_FIELDS if f not in raw]
    if missing:
        raise QuickstartError(f"analysis_result lacks {missing}: {data[:300]}")
    try:
        result = AnalysisResult.from_dict(raw)
    except (KeyError, TypeError, ValueError) as e:
        raise QuickstartError(f"analysis_result is not an AnalysisResult ({e!r}): {data[:300]}") from None
    if result.device_id != device_id or result.scene_id != scene_id:
        raise QuickstartError(f"analysis_result for another device or scene: {data[:300]}")
    # The scene has a queue zone, so every frame is measured. (The generated
    # parser hands back the raw value when it is not a QueueMetrics.)
    if not isinstance(result.metrics, QueueMetrics):
        raise QuickstartError(f"analysis_result metrics are not QueueMetrics: {raw.get('metrics')}")
    if not (isinstance(result.metrics.in_queue, int) and isinstance(result.metrics.in_service, int)):
        raise QuickstartError(f"analysis_result metrics are not counts: {raw['metrics']}")
    for d in result.detections:
        if not (isinstance(d.type_, DetectClass) and 0.0 <= d.confidence <= 1.0):
            raise QuickstartError(f"analysis_result detection malformed: {d.to_dict()}")
    # The model writes back what it read: nothing lost or changed on the way
    # (the timestamp compared as a time: its text may differ, e.g. `Z`/`+00:00`).
    written = result.to_dict()
    read_back = datetime.datetime.fromisoformat(written.pop("timestamp"))
    rest = {k: v for k, v in raw.items() if k != "timestamp"}
    if written != rest or read_back != datetime.datetime.fromisoformat(raw["timestamp"]):
        raise QuickstartError(f"analysis_result does not round-trip: {raw} -> {result.to_dict()}")
    return result


def quickstart(base_url: str, frame: Path, rtsp_url: str, timeout_s: float) -> None:
    steps = Steps()
    jpeg = frame.read_bytes()
    timeout = httpx.Timeout(10.0)

    # 1. An account; the session token manages API keys.
    anonymous = Client(base_url=base_url, timeout=timeout)
    email = f"quickstart-{uuid.uuid4().hex[:12]}@example.com"
    session = ok(
        signup.sync_detailed(client=anonymous, body=SignupRequest(email=email, password="a long password")),
        HTTPStatus.CREATED,
        "sign up",
    ).data
    owner = AuthenticatedClient(base_url=base_url, token=session.token, timeout=timeout)
    steps.done(f"signed up as {session.user.email}")

    # 2. A personal API key (the secret is shown once) for everything else.
    personal = ok(
        create_api_key.sync_detailed(client=owner, body=CreateApiKeyRequest(name="quickstart", type_=KeyType.PERSONAL)),
        HTTPStatus.CREATED,
        "create a personal API key",
    ).data
    api = AuthenticatedClient(base_url=base_url, token=personal.key, timeout=timeout)
    steps.done(f"personal API key {personal.api_key.id} ({len(personal.api_key.scopes)} scopes)")

    # 3. A push camera: it sends its own frames, so its RTSP URL is never dialled
    #    (the platform still wants one).
    device = ok(
        create_device.sync_detailed(
            client=api,
            body=CreateDeviceRequest(name="Entrance (push)", rtsp_url=rtsp_url, type_=DeviceType.USB_CAMERA),
        ),
        HTTPStatus.CREATED,
        "create a push device",
    ).data
    steps.done(f"device {device.id} ({device.type_}, push {device.push_enabled}, {device.status})")

    # 4. A queue-analysis scene with a queue zone (frame fractions).
    queue_zone = ZoneDto(type_=ZoneType.POLYGON, points=[[0.1, 0.2], [0.6, 0.2], [0.6, 0.9], [0.1, 0.9]])
    scene = ok(
        create_scene.sync_detailed(
            client=api,
            body=CreateSceneRequest(
                device_id=device.id,
                name="Checkout line",
                analysis_type=AnalysisType.QUEUE_ANALYSIS,
                config=SceneConfigDto(zones=ZonesDto(queue_zone=queue_zone)),
            ),
        ),
        HTTPStatus.CREATED,
        "create a scene",
    ).data
    steps.done(f"scene {scene.id} ({scene.analysis_type})")

    # 4b. An alert rule on the scene's metrics (here one that holds at once,
    #     so the quickstart sees an alert: at least 0 people queued).
    rule = ok(
        create_alert_rule.sync_detailed(
            client=api,
            body=CreateRuleRequest(
                scene_id=scene.id,
                name="Anyone queuing",
                metric_path="current.inQueue",
                operator=Operator.GTE,
                threshold=0,
            ),
        ),
        HTTPStatus.CREATED,
        "create an alert rule",
    ).data
    steps.done(f"alert rule {rule.id}: {rule.metric_path} {rule.operator} {rule.threshold:g}")

    # 5. The camera's own key (scopes device:read, device:heartbeat, device:sync,
    #    task:read; it reaches this device only). A heartbeat brings it online.
    device_key = ok(
        create_api_key.sync_detailed(
            client=owner, body=CreateApiKeyRequest(name="edge box", type_=KeyType.DEVICE, device_id=device.id)
        ),
        HTTPStatus.CREATED,
        "create a device key",
    ).data
    camera = AuthenticatedClient(base_url=base_url, token=device_key.key, timeout=timeout)
    beat = ok(device_heartbeat.sync_detailed(device.id, client=camera), HTTPStatus.OK, "heartbeat").data
    steps.done(f"device key {device_key.api_key.id}; heartbeat: device {beat.status}, max {beat.max_fps} fps")

    # 6. Start analysis.
    started_at = datetime.datetime.now(datetime.UTC)
    task = ok(
        start_analysis.sync_detailed(device.id, client=api, body=StartAnalysisRequest(scene_id=scene.id)),
        HTTPStatus.CREATED,
        "start analysis",
    ).data
    steps.done(f"analysis task {task.id} {task.status}")

    # 7. Live results: open the stream, then push frames as the camera would.
    pusher = FramePusher(camera, device.id, jpeg, fps=min(4.0, float(beat.max_fps)))
    try:
        deadline = time.monotonic() + timeout_s
        with api.get_httpx_client().stream(
            "GET",
            f"/api/v1/devices/{device.id}/analysis/stream",
            headers={"accept": "text/event-stream"},
            timeout=httpx.Timeout(10.0, read=min(timeout_s, 20.0)),  # keep-alives come every 15 s
        ) as stream:
            if stream.status_code != HTTPStatus.OK:
                stream.read()
                raise QuickstartError(f"open the event stream: HTTP {stream.status_code} {stream.text[:300]}")
            events = sse_events(stream.iter_lines(), deadline)
            name, data = next(events)
            if name != "stream_token":
                raise QuickstartError(f"the stream's first event is {name!r}, not stream_token")
            token = StreamTokenEvent.from_dict(json.loads(data))  # for reconnecting; kept secret
            steps.done(f"event stream open (stream token: {len(token.stream_token)} characters)")
            pusher.start()
            try:
                for name, data in events:
                    if pusher.error:
                        raise QuickstartError(pusher.error)
                    if name == "analysis_result":
                        result = check_result(data, device.id, scene.id)
                        break
            except (TimeoutError, httpx.ReadTimeout):
                raise QuickstartError(
                    pusher.error or f"no analysis_result within {timeout_s:.0f}s ({pusher.accepted} frames accepted)"
                ) from None
        assert isinstance(result.metrics, QueueMetrics)  # checked by check_result
        steps.done(
            f"analysis_result after {pusher.accepted} frames: {len(result.detections)} detections "
            f"in {result.processing_ms:.0f} ms on {result.compute_node_id}, "
            f"inQueue {result.metrics.in_queue}, inService {result.metrics.in_service}"
        )

        # 8. Stored metrics: a snapshot every analytics.persist_interval_ms of capture time.
        snapshots = None
        while not snapshots or not snapshots.data:
            if pusher.error:
                raise QuickstartError(pusher.error)
            if time.monotonic() > deadline:
                raise QuickstartError(f"no stored snapshot within {timeout_s:.0f}s")
            if snapshots is not None:
                time.sleep(0.5)
            snapshots = ok(
                list_snapshots.sync_detailed(
                    client=api,
                    scene_id=scene.id,
                    start_date=started_at - datetime.timedelta(minutes=1),
                    limit=50,
                ),
                HTTPStatus.OK,
                "list snapshots",
            )
    finally:
        pusher.stop()
    newest = snapshots.data[0]
    total = snapshots.meta.pagination.total if snapshots.meta.pagination else len(snapshots.data)
    steps.done(
        f"{total} snapshot(s); newest {newest.window_end.isoformat()}: "
        f"inQueue {newest.current_metrics.in_queue}, avg {newest.current_metrics.avg_in_queue:.2f}"
    )
    # 9. The rule fired on the first result (the notify role): one alert, acknowledged here.
    alerts = ok(list_alerts.sync_detailed(client=api, scene_id=scene.id), HTTPStatus.OK, "list alerts")
    while not alerts.data:
        if time.monotonic() > deadline:
            raise QuickstartError(f"no alert within {timeout_s:.0f}s")
        time.sleep(0.5)
        alerts = ok(list_alerts.sync_detailed(client=api, scene_id=scene.id), HTTPStatus.OK, "list alerts")
    alert = alerts.data[0]
    acked = ok(acknowledge_alert.sync_detailed(alert.id, client=api), HTTPStatus.OK, "acknowledge").data
    steps.done(f"alert {alert.id}: {alert.metric_path} = {alert.value:g} ({alert.severity}); {acked.status}")

    latest = ok(get_scene_latest.sync_detailed(scene.id, client=api), HTTPStatus.OK, "scene latest").data
    if not latest.analyzing or not latest.snapshot:
        raise QuickstartError(f"scene latest: analyzing {latest.analyzing}, snapshot {latest.snapshot}")
    steps.done(f"scene latest: analyzing {latest.analyzing}, snapshot {latest.snapshot.id}")

    stopped = ok(stop_analysis.sync_detailed(device.id, client=api), HTTPStatus.OK, "stop analysis").data
    steps.done(f"analysis {stopped.status} ({stopped.stop_reason}); {pusher.accepted} frames pushed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-url", default=os.environ.get("PANOPTES_BASE_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--frame", type=Path, default=DEFAULT_FRAME, help="a JPEG the camera pushes")
    parser.add_argument("--rtsp-url", default="rtsp://127.0.0.1:554/unused", help="the push device's RTSP URL")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for results")
    args = parser.parse_args()
    try:
        quickstart(args.base_url.rstrip("/"), args.frame, args.rtsp_url, args.timeout)
    except (QuickstartError, httpx.HTTPError, OSError) as e:
        print(f"[python] quickstart FAILED ({args.base_url}): {e}", file=sys.stderr)
        return 1
    print("[python] quickstart OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
