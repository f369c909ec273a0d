//! Analysis control (`/devices/{id}/analysis/start|stop|status`), edge push
//! (`/devices/{id}/frames`, `/heartbeat`) and the RTSP probe, over real HTTP.

use panoptes_shared::domain::event::EventKind;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::ids::{DeviceId, UserId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, spawn_app};
use crate::rtsp::RtspServer;

fn frame_jpeg() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../workers/tests/fixtures/frames/vtest-200.jpg"
    );
    std::fs::read(path).expect("fixture frame")
}

impl TestApp {
    async fn push_frame(&self, key: &str, device: &str, body: Vec<u8>, content_type: &str) -> Resp {
        let resp = self
            .client
            .post(format!("{}/api/v1/devices/{device}/frames", self.base))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Resp {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn events(&self, user: &str, device: &str) -> Vec<EventKind> {
        let user = UserId(user.parse().unwrap());
        let device = DeviceId(device.parse().unwrap());
        let mut kinds: Vec<EventKind> = self
            .state
            .store
            .list_events(
                user,
                Some(device),
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .items
            .iter()
            .map(|e| e.kind)
            .collect();
        kinds.reverse(); // oldest first
        kinds
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn analysis_starts_only_when_every_check_passes_and_stops_once() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let device = app.create_device(t, json!({"pushEnabled": true})).await;
    let d = id(&device);
    assert_eq!(device["pushEnabled"], true);
    let scene = app.create_scene(t, &d).await;
    let s = id(&scene);
    let start = |body: Value| {
        let path = format!("/api/v1/devices/{d}/analysis/start");
        let app = &app;
        async move { app.post(&path, t, body).await }
    };

    // Offline: refused, with the device's status in the details.
    let r = start(json!({"sceneId": s}))
        .await
        .expect_error(409, "DEVICE_OFFLINE");
    assert_eq!(r.body["error"]["details"]["deviceStatus"], "offline");
    // A heartbeat (device key) brings a push device online, once.
    let (device_key, _) = app
        .create_key(
            t,
            json!({"name": "edge box", "type": "device", "deviceId": d}),
        )
        .await;
    let hb = app
        .post(
            &format!("/api/v1/devices/{d}/heartbeat"),
            &device_key,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(hb.data()["status"], "online");
    assert_eq!(hb.data()["analysisRunning"], false);
    app.post(
        &format!("/api/v1/devices/{d}/heartbeat"),
        &device_key,
        json!({}),
    )
    .await
    .expect(200);
    assert_eq!(app.events(&user.id, &d).await, [EventKind::DeviceOnline]);

    // Scene checks: unknown, another device's, inactive.
    start(json!({"sceneId": uuid::Uuid::new_v4()}))
        .await
        .expect_error(404, "NOT_FOUND");
    let other = app.create_device(t, json!({})).await;
    let other_scene = app.create_scene(t, &id(&other)).await;
    start(json!({"sceneId": id(&other_scene)}))
        .await
        .expect_invalid("sceneId");
    app.patch(
        &format!("/api/v1/scenes/{s}"),
        t,
        json!({"status": "inactive"}),
    )
    .await
    .expect(200);
    start(json!({"sceneId": s}))
        .await
        .expect_error(409, "SCENE_INACTIVE");
    app.patch(
        &format!("/api/v1/scenes/{s}"),
        t,
        json!({"status": "active"}),
    )
    .await
    .expect(200);
    // Plan: VLM needs level_02.
    let r = start(json!({"sceneId": s, "enabledCapabilities": ["vlm"]}))
        .await
        .expect_error(403, "PLAN_REQUIRED");
    assert!(r.body["message"].as_str().unwrap().contains("level_02"));
    start(json!({"sceneId": s, "enabledCapabilities": ["telepathy"]}))
        .await
        .expect_invalid("enabledCapabilities[0]");
    // Quota: a disabled device cannot start.
    app.patch(
        &format!("/api/v1/devices/{d}/quota"),
        t,
        json!({"isDisabled": true}),
    )
    .await
    .expect(200);
    start(json!({"sceneId": s}))
        .await
        .expect_error(429, "QUOTA_EXCEEDED");
    app.patch(
        &format!("/api/v1/devices/{d}/quota"),
        t,
        json!({"isDisabled": false}),
    )
    .await
    .expect(200);
    // Scope: task:write.
    let path = format!("/api/v1/devices/{d}/analysis/start");
    app.post(&path, &device_key, json!({"sceneId": s}))
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");

    // Everything passes: a task; a second start conflicts.
    let task = start(json!({"sceneId": s}))
        .await
        .expect(201)
        .data()
        .clone();
    assert_eq!(task["status"], "running");
    assert_eq!(task["trigger"], "api");
    assert_eq!(task["sceneId"], s.as_str());
    start(json!({"sceneId": s}))
        .await
        .expect_error(409, "CONFLICT");
    let status = app
        .get(&format!("/api/v1/devices/{d}/analysis/status"), t)
        .await
        .expect(200);
    assert_eq!(status.data()["running"], true);
    assert_eq!(status.data()["task"]["id"], task["id"]);
    assert_eq!(status.data()["deviceStatus"], "online");
    assert_eq!(status.data()["quotaSeconds"], 150 * 3600);

    // Another tenant sees none of it.
    let stranger = app.signup().await;
    app.get(
        &format!("/api/v1/devices/{d}/analysis/status"),
        &stranger.token,
    )
    .await
    .expect_error(404, "NOT_FOUND");
    app.post(
        &format!("/api/v1/devices/{d}/analysis/stop"),
        &stranger.token,
        json!({}),
    )
    .await
    .expect_error(404, "NOT_FOUND");

    // Stop once; then there is nothing to stop.
    let stopped = app
        .post(&format!("/api/v1/devices/{d}/analysis/stop"), t, json!({}))
        .await
        .expect(200);
    assert_eq!(stopped.data()["status"], "stopped");
    assert_eq!(stopped.data()["stopReason"], "user");
    assert!(stopped.data()["stoppedAt"].is_string());
    app.post(&format!("/api/v1/devices/{d}/analysis/stop"), t, json!({}))
        .await
        .expect_error(409, "CONFLICT");
    let status = app
        .get(&format!("/api/v1/devices/{d}/analysis/status"), t)
        .await
        .expect(200);
    assert_eq!(status.data()["running"], false);
    assert_eq!(status.data()["task"]["status"], "stopped");
    assert_eq!(
        app.events(&user.id, &d).await,
        [
            EventKind::DeviceOnline,
            EventKind::AnalysisStarted,
            EventKind::AnalysisStopped
        ]
    );
    // Deleting the scene of a running task stops it (scene_unavailable).
    start(json!({"sceneId": s})).await.expect(201);
    app.delete(&format!("/api/v1/scenes/{s}"), t)
        .await
        .expect(200);
    let status = app
        .get(&format!("/api/v1/devices/{d}/analysis/status"), t)
        .await
        .expect(200);
    assert_eq!(status.data()["running"], false);
    assert_eq!(status.data()["task"]["stopReason"], "scene_unavailable");
}

#[tokio::test]
async fn edge_frames_become_frame_jobs_of_the_running_task_within_limits() {
    let app = crate::helpers::spawn_with_env(
        crate::helpers::Backend::Distributed,
        &format!("panoptes-test:{}", uuid::Uuid::new_v4()),
        &[
            ("PANOPTES__EDGE__MAX_FPS", "3"),
            ("PANOPTES__EDGE__MAX_FRAME_BYTES", "200000"),
        ],
    )
    .await;
    let user = app.signup().await;
    let t = &user.token;
    let d = id(&app.create_device(t, json!({"type": "usb_camera"})).await);
    let s = id(&app.create_scene(t, &d).await);
    let (key, _) = app
        .create_key(
            t,
            json!({"name": "edge box", "type": "device", "deviceId": d}),
        )
        .await;
    let jpeg = frame_jpeg();

    // Media type, content and size are checked; a frame wakes the device up.
    app.push_frame(&key, &d, jpeg.clone(), "application/octet-stream")
        .await
        .expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    app.push_frame(&key, &d, b"GIF89a not a jpeg".to_vec(), "image/jpeg")
        .await
        .expect_invalid("body");
    app.push_frame(&key, &d, vec![0xFF; 200_001], "image/jpeg")
        .await
        .expect_error(413, "PAYLOAD_TOO_LARGE");
    // No running task yet: refused, but the device is online now.
    let r = app
        .push_frame(&key, &d, jpeg.clone(), "image/jpeg")
        .await
        .expect_error(409, "CONFLICT");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("start it first")
    );
    let device = app
        .get(&format!("/api/v1/devices/{d}"), t)
        .await
        .expect(200);
    assert_eq!(device.data()["status"], "online");
    assert!(device.data()["lastSeenAt"].is_string());

    let task = app
        .post(
            &format!("/api/v1/devices/{d}/analysis/start"),
            t,
            json!({"sceneId": s}),
        )
        .await
        .expect(201)
        .data()
        .clone();
    // Rate limit: the 3-per-second window may already hold refused frames;
    // push until one is refused, every accepted one is a job.
    let mut accepted = Vec::new();
    let refused = loop {
        let r = app.push_frame(&key, &d, jpeg.clone(), "image/jpeg").await;
        if r.status != StatusCode::ACCEPTED {
            break r;
        }
        accepted.push(r.data().clone());
        assert!(accepted.len() <= 3, "more than edge.max_fps accepted");
    };
    let refused = refused.expect_error(429, "RATE_LIMITED");
    assert!(refused.headers.get("retry-after").is_some());
    assert!(!accepted.is_empty());
    let jobs = &app.state.backends.jobs;
    for a in &accepted {
        assert_eq!(a["taskId"], task["id"]);
        assert_eq!(a["sceneId"], s.as_str());
        assert_eq!(a["bytes"], jpeg.len());
    }
    let mut claimed = Vec::new();
    while claimed.len() < accepted.len() {
        let got = jobs
            .pull(
                "test-consumer",
                accepted.len(),
                std::time::Duration::from_secs(2),
            )
            .await
            .unwrap();
        assert!(!got.is_empty(), "accepted frames are in the queue");
        claimed.extend(got);
    }
    assert_eq!(claimed.len(), accepted.len());
    for c in &claimed {
        assert_eq!(c.job.jpeg, jpeg, "the frame's bytes, unchanged");
        assert_eq!(c.job.task.to_string(), task["id"].as_str().unwrap());
        assert_eq!(c.job.device.to_string(), d);
    }
    // X-Captured-At in the future is refused.
    let resp = app
        .client
        .post(format!("{}/api/v1/devices/{d}/frames", app.base))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .header("x-captured-at", "2099-01-01T00:00:00Z")
        .body(jpeg.clone())
        .send()
        .await
        .unwrap();
    assert!(
        matches!(resp.status().as_u16(), 400 | 429),
        "{}",
        resp.status()
    );

    // An RTSP (pulled) device does not take pushed frames (not even with its
    // own device key); another device's key gets 404; other tenants 404.
    let pulled = id(&app.create_device(t, json!({})).await);
    let (pulled_key, _) = app
        .create_key(
            t,
            json!({"name": "pulled", "type": "device", "deviceId": pulled}),
        )
        .await;
    app.push_frame(&pulled_key, &pulled, jpeg.clone(), "image/jpeg")
        .await
        .expect_error(409, "CONFLICT");
    app.push_frame(&key, &pulled, jpeg.clone(), "image/jpeg")
        .await
        .expect_error(404, "NOT_FOUND");
    let stranger = app.signup().await;
    let theirs = id(&app
        .create_device(&stranger.token, json!({"type": "usb_camera"}))
        .await);
    let (stranger_key, _) = app
        .create_key(
            &stranger.token,
            json!({"name": "x", "type": "device", "deviceId": theirs}),
        )
        .await;
    app.push_frame(&stranger_key, &d, jpeg.clone(), "image/jpeg")
        .await
        .expect_error(404, "NOT_FOUND");
    // A personal key without device:sync may not push.
    let (personal, _) = app
        .create_key(
            t,
            json!({"name": "p", "type": "personal", "scopes": ["device:read"]}),
        )
        .await;
    app.push_frame(&personal, &d, jpeg, "image/jpeg")
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
}

/// Pushed frames are marked for describing people (attributes) only when
/// the running task has the `attributes` capability on a level_02 device:
/// the detector reads clothing colours from those frames alone.
#[tokio::test]
async fn edge_frames_are_marked_for_attributes_only_for_level_02_tasks_with_the_capability() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let jobs = &app.state.backends.jobs;
    for (plan, caps, marked) in [
        ("level_02", json!(["attributes"]), true),
        ("level_02", json!([]), false),
        ("level_01", json!([]), false),
    ] {
        let d = id(&app
            .create_device(t, json!({"type": "usb_camera", "plan": plan}))
            .await);
        let s = id(&app.create_scene(t, &d).await);
        let (key, _) = app
            .create_key(t, json!({"name": "edge", "type": "device", "deviceId": d}))
            .await;
        // A first frame, before any task, brings the device online.
        app.push_frame(&key, &d, frame_jpeg(), "image/jpeg")
            .await
            .expect_error(409, "CONFLICT");
        app.post(
            &format!("/api/v1/devices/{d}/analysis/start"),
            t,
            json!({"sceneId": s, "enabledCapabilities": caps}),
        )
        .await
        .expect(201);
        let pushed = app
            .push_frame(&key, &d, frame_jpeg(), "image/jpeg")
            .await
            .expect(202)
            .data()
            .clone();
        let got = jobs
            .pull("test-consumer", 1, std::time::Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].job.id.to_string(), pushed["jobId"].as_str().unwrap());
        assert_eq!(got[0].job.attributes, marked, "{plan} {caps}");
        jobs.ack(&got[0].receipt).await.unwrap();
    }
}

#[tokio::test]
async fn a_probe_decodes_a_frame_and_sets_the_device_status() {
    let server = RtspServer::start().await;
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let d = id(&app
        .create_device(
            t,
            json!({"rtspUrl": server.url("vtest"), "rtspUsername": "cam", "rtspPassword": "secret-pass"}),
        )
        .await);
    let r = app
        .post(&format!("/api/v1/devices/{d}/probe"), t, json!({}))
        .await
        .expect(200);
    let p = r.data();
    assert_eq!(p["reachable"], true, "{p}");
    assert_eq!(p["status"], "online");
    assert!(p["codec"].as_str().unwrap().starts_with("avc1.42"), "{p}");
    assert_eq!(
        (p["width"].as_u64(), p["height"].as_u64()),
        (Some(768), Some(576))
    );
    assert!(p["firstFrameMs"].as_u64().unwrap() < 10_000);
    let device = app
        .get(&format!("/api/v1/devices/{d}"), t)
        .await
        .expect(200);
    assert_eq!(device.data()["status"], "online");

    // The camera goes away: `offline`, and the events follow.
    server.stop().await;
    let r = app
        .post(&format!("/api/v1/devices/{d}/probe"), t, json!({}))
        .await
        .expect(200);
    assert_eq!(r.data()["reachable"], false);
    assert_eq!(r.data()["status"], "offline");
    assert_eq!(r.data()["error"], "unreachable", "{}", r.body);
    assert_eq!(
        app.events(&user.id, &d).await,
        [EventKind::DeviceOnline, EventKind::DeviceOffline]
    );
    // Credentials never come back, even in errors.
    assert!(!r.body.to_string().contains("secret-pass"));
}

#[tokio::test]
async fn an_rtsps_camera_is_probed_over_tls_verified_against_the_configured_ca() {
    let server = RtspServer::start_tls().await;
    let ca = server.ca.clone().unwrap();
    let trusting = crate::helpers::spawn_with_env(
        crate::helpers::Backend::Distributed,
        &format!("panoptes-test:{}", uuid::Uuid::new_v4()),
        &[("PANOPTES__INGEST__TLS_CA_FILE", ca.to_str().unwrap())],
    )
    .await;
    let user = trusting.signup().await;
    let t = &user.token;
    let url = server.url("vtest");
    assert!(url.starts_with("rtsps://"));
    let d = id(&trusting.create_device(t, json!({"rtspUrl": url})).await);
    let r = trusting
        .post(&format!("/api/v1/devices/{d}/probe"), t, json!({}))
        .await
        .expect(200);
    assert_eq!(r.data()["reachable"], true, "{}", r.body);
    assert_eq!(r.data()["status"], "online");
    assert_eq!(r.data()["width"], 768);

    // A platform that does not trust that CA refuses the camera's
    // certificate: the device is in `error`, and says why.
    let strict = spawn_app().await;
    let user = strict.signup().await;
    let d = id(&strict
        .create_device(&user.token, json!({"rtspUrl": server.url("vtest")}))
        .await);
    let r = strict
        .post(
            &format!("/api/v1/devices/{d}/probe"),
            &user.token,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["reachable"], false);
    assert_eq!(r.data()["status"], "error");
    assert_eq!(r.data()["error"], "tls_failed", "{}", r.body);
}
