//! Live analysis results over SSE: tenancy, resume across replicas, the
//! cluster-wide stream limit, tickets, idle close and slow consumers.

use std::time::Duration;

use panoptes_gateway::sse::demo;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::ports::{BusEvent, Publication};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, User, spawn_app, spawn_with_env};
use crate::sse_client::{open, open_with};

/// Test timings: keep-alive and lease renewal every 100 ms.
const FAST: &[(&str, &str)] = &[
    ("PANOPTES__SSE__KEEP_ALIVE_MS", "100"),
    ("PANOPTES__SSE__LEASE_TTL_MS", "1000"),
];

async fn replicas() -> (TestApp, TestApp) {
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    (
        spawn_with_env(Backend::Distributed, &prefix, FAST).await,
        spawn_with_env(Backend::Distributed, &prefix, FAST).await,
    )
}

/// Reconnect to `app` after `last` (replacing the stream whose token is
/// `replaces`, if given) and expect exactly `missed` next, in order. The
/// stream stays open (holding its slot) while the caller keeps it.
async fn resume_and_expect(
    app: &TestApp,
    user: &User,
    last: &str,
    replaces: Option<&str>,
    missed: &[BusEvent],
) -> crate::sse_client::SseClient {
    let mut resumed = open_with(&all_url(app), Some(&user.token), Some(last), replaces)
        .await
        .stream();
    for want in missed {
        assert_eq!(
            resumed.next_result().await.unwrap().id.unwrap(),
            want.event_id()
        );
    }
    resumed
}

/// A new user with one device.
pub(crate) async fn user_with_device(app: &TestApp) -> (User, UserId, DeviceId) {
    let user = app.signup().await;
    let device = app.create_device(&user.token, json!({})).await;
    let (uid, did) = ids(&user, &device);
    (user, uid, did)
}

pub(crate) fn ids(user: &User, device: &serde_json::Value) -> (UserId, DeviceId) {
    (
        user.id.parse().unwrap(),
        device["id"].as_str().unwrap().parse().unwrap(),
    )
}

pub(crate) async fn publish(
    app: &TestApp,
    user: UserId,
    device: DeviceId,
    task: Uuid,
    range: std::ops::Range<u64>,
) -> Vec<BusEvent> {
    demo::publish(app.state.bus.as_ref(), user, device, task, range)
        .await
        .unwrap()
}

pub(crate) fn all_url(app: &TestApp) -> String {
    format!("{}/api/v1/devices/analysis/stream/all", app.base)
}

#[tokio::test]
async fn device_streams_carry_only_their_device_and_all_streams_only_their_user() {
    let app = spawn_app().await;
    let (alice, bob) = (app.signup().await, app.signup().await);
    let (d1, d2) = (
        app.create_device(&alice.token, json!({})).await,
        app.create_device(&alice.token, json!({})).await,
    );
    let d3 = app.create_device(&bob.token, json!({})).await;
    let mut one = open(
        &format!(
            "{}/api/v1/devices/{}/analysis/stream",
            app.base,
            d1["id"].as_str().unwrap()
        ),
        Some(&alice.token),
        None,
    )
    .await
    .stream();
    let mut all = open(&all_url(&app), Some(&alice.token), None)
        .await
        .stream();
    let mut bobs = open(&all_url(&app), Some(&bob.token), None).await.stream();
    assert_eq!(one.headers["content-type"], "text/event-stream");
    assert_eq!(one.headers["cache-control"], "no-cache");
    assert_eq!(one.headers["x-accel-buffering"], "no");
    assert_eq!(
        one.next().await.unwrap().retry,
        Some(3000),
        "retry comes first"
    );

    let task = Uuid::new_v4();
    let (a, dev1) = ids(&alice, &d1);
    let (_, dev2) = ids(&alice, &d2);
    let (b, dev3) = ids(&bob, &d3);
    let e1 = publish(&app, a, dev1, task, 0..2).await;
    let e2 = publish(&app, a, dev2, Uuid::new_v4(), 0..2).await;
    let e3 = publish(&app, b, dev3, Uuid::new_v4(), 0..1).await;

    for expected in &e1 {
        let got = one.next_result().await.unwrap();
        assert_eq!(got.id.as_deref(), Some(expected.event_id().as_str()));
        assert_eq!(got.json()["deviceId"], d1["id"]);
    }
    for expected in e1.iter().chain(&e2) {
        let got = all.next_result().await.unwrap();
        assert_eq!(got.id.as_deref(), Some(expected.event_id().as_str()));
        let data = got.json();
        assert!(
            data["detections"].is_array() && data["metrics"]["inQueue"].is_number(),
            "{data}"
        );
    }
    assert_eq!(
        bobs.next_result().await.unwrap().id.unwrap(),
        e3[0].event_id(),
        "bob sees only his own"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("panoptes_sse_streams 3\n"), "{metrics}");
    assert!(
        metrics.contains("panoptes_sse_subscribed_users 2\n"),
        "one bus subscription per user: {metrics}"
    );
    // The id is `<taskId>-<epochMillis>`.
    assert_eq!(e1[0].event_id(), format!("{task}-{}", e1[0].offset.ms));
}

#[tokio::test]
async fn a_client_resumes_on_another_replica_without_loss_or_duplicates() {
    let (a, b) = replicas().await;
    let (user, uid, did) = user_with_device(&a).await;
    let task = Uuid::new_v4();
    let mut first = open(&all_url(&a), Some(&user.token), None).await.stream();
    let sent = publish(&a, uid, did, task, 0..3).await;
    let mut last = String::new();
    for e in &sent {
        last = first.next_result().await.unwrap().id.unwrap();
        assert_eq!(last, e.event_id());
    }
    // The first replica goes away with the client's connection.
    drop(first);
    drop(a);
    let missed = publish(&b, uid, did, task, 3..6).await;
    let mut second = open(&all_url(&b), Some(&user.token), Some(&last))
        .await
        .stream();
    for e in &missed {
        assert_eq!(
            second.next_result().await.unwrap().id.unwrap(),
            e.event_id(),
            "replayed in order"
        );
    }
    let live = publish(&b, uid, did, task, 6..7).await;
    assert_eq!(
        second.next_result().await.unwrap().id.unwrap(),
        live[0].event_id(),
        "then live, no duplicate"
    );

    // A first connect can pass the id as a query parameter (browsers cannot set headers).
    let url = format!("{}?lastEventId={}", all_url(&b), missed[1].event_id());
    let mut third = open(&url, Some(&user.token), None).await.stream();
    assert_eq!(
        third.next_result().await.unwrap().id.unwrap(),
        missed[2].event_id()
    );
}

#[tokio::test]
async fn the_eleventh_stream_is_refused_across_replicas_until_one_closes() {
    let (a, b) = replicas().await;
    let user = a.signup().await;
    let mut streams = Vec::new();
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        streams.push(open(&all_url(app), Some(&user.token), None).await.stream());
    }
    let (status, headers, body) = open(&all_url(&a), Some(&user.token), None).await.refused();
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "SSE_CONNECTION_LIMIT");
    assert!(headers.contains_key("retry-after"));
    open(&all_url(&b), Some(&user.token), None).await.refused();
    // Another user is unaffected.
    let other = a.signup().await;
    open(&all_url(&a), Some(&other.token), None).await.stream();

    // A client leaves: its server notices at the next keep-alive write and frees the slot.
    drop(streams.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match open(&all_url(&b), Some(&user.token), None).await {
            crate::sse_client::Opened::Stream(s) => {
                streams.push(s);
                break;
            }
            crate::sse_client::Opened::Refused { status, .. } => {
                assert_eq!(status, 429);
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the slot was not freed within 5 s"
                );
                // Each refused attempt is itself a round trip; the keep-alive is 100 ms.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn tickets_open_streams_and_expired_or_foreign_tickets_are_refused() {
    let app = spawn_app().await;
    let (alice, bob) = (app.signup().await, app.signup().await);
    let device = app.create_device(&alice.token, json!({})).await;
    let (reader, _) = app
        .create_key(
            &alice.token,
            json!({"name": "r", "type": "service", "scopes": ["device:read"]}),
        )
        .await;
    let t = app
        .post("/api/v1/sse/tickets", &reader, json!({}))
        .await
        .expect(200);
    assert_eq!(t.data()["scopes"], json!(["device:read"]));
    let ticket = t.data()["ticket"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v1/devices/{}/analysis/stream?ticket={ticket}",
        app.base,
        device["id"].as_str().unwrap()
    );
    let mut s = open(&url, None, None).await.stream();
    let (uid, did) = ids(&alice, &device);
    let sent = publish(&app, uid, did, Uuid::new_v4(), 0..1).await;
    assert_eq!(
        s.next_result().await.unwrap().id.unwrap(),
        sent[0].event_id()
    );

    // Bob's ticket on Alice's device: not found. Forged and expired tickets: unauthorized.
    let bobs = app
        .post("/api/v1/sse/tickets", &bob.token, json!({}))
        .await
        .expect(200)
        .data()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = open(&url.replace(&ticket, &bobs), None, None)
        .await
        .refused();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let forged =
        panoptes_gateway::auth::session::SessionTokens::new(b"another-secret-another-secret-123!")
            .issue_ticket(
                uid,
                &[panoptes_shared::domain::api_key::Scope::DeviceRead],
                None,
                Duration::from_secs(60),
            )
            .unwrap()
            .0;
    assert_eq!(
        open(&url.replace(&ticket, &forged), None, None)
            .await
            .refused()
            .0,
        401
    );
    let expired = app
        .state
        .sessions
        .issue_ticket(
            uid,
            &[panoptes_shared::domain::api_key::Scope::DeviceRead],
            None,
            Duration::ZERO,
        )
        .unwrap()
        .0;
    assert_eq!(
        open(&url.replace(&ticket, &expired), None, None)
            .await
            .refused()
            .0,
        401
    );
    // A ticket is not a bearer token for the rest of the API.
    app.get("/api/v1/devices", &ticket)
        .await
        .expect_error(401, "UNAUTHORIZED");
    // Minting needs a read scope.
    let (writer, _) = app
        .create_key(
            &alice.token,
            json!({"name": "w", "type": "service", "scopes": ["scene:write"]}),
        )
        .await;
    app.post("/api/v1/sse/tickets", &writer, json!({}))
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
}

#[tokio::test]
async fn streams_check_credentials_scope_and_tenancy() {
    let app = spawn_app().await;
    let (alice, bob) = (app.signup().await, app.signup().await);
    let device = app.create_device(&alice.token, json!({})).await;
    let url = format!(
        "{}/api/v1/devices/{}/analysis/stream",
        app.base,
        device["id"].as_str().unwrap()
    );
    assert_eq!(open(&url, None, None).await.refused().0, 401);
    assert_eq!(
        open(&url, Some("syncai_pat_nope"), None).await.refused().0,
        401
    );
    assert_eq!(open(&url, Some(&bob.token), None).await.refused().0, 404);
    let (hooks, _) = app
        .create_key(
            &alice.token,
            json!({"name": "h", "type": "service", "scopes": ["webhook:read"]}),
        )
        .await;
    let (status, _, body) = open(&url, Some(&hooks), None).await.refused();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN_SCOPE"))
    );
    let (analytics, _) = app
        .create_key(
            &alice.token,
            json!({"name": "a", "type": "service", "scopes": ["analytics:read"]}),
        )
        .await;
    open(&url, Some(&analytics), None).await.stream();
}

#[tokio::test]
async fn an_idle_stream_is_closed_after_the_configured_inactivity() {
    let app = spawn_with_env(
        Backend::Distributed,
        &format!("panoptes-test:{}", Uuid::new_v4()),
        &[("PANOPTES__SSE__IDLE_TIMEOUT_MS", "300")],
    )
    .await;
    let user = app.signup().await;
    let mut s = open(&all_url(&app), Some(&user.token), None).await.stream();
    assert_eq!(s.next().await.unwrap().retry, Some(3000));
    assert_eq!(
        s.next().await.unwrap().event.as_deref(),
        Some("stream_token"),
        "then the stream's token, which is no data event"
    );
    assert_eq!(
        s.next_within(Duration::from_secs(3)).await,
        None,
        "closed after 300 ms without data"
    );
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_while_a_fast_one_keeps_receiving() {
    let app = spawn_with_env(
        Backend::Distributed,
        &format!("panoptes-test:{}", Uuid::new_v4()),
        &[("PANOPTES__SSE__QUEUE_EVENTS", "8")],
    )
    .await;
    let user = app.signup().await;
    let device = app.create_device(&user.token, json!({})).await;
    let (uid, did) = ids(&user, &device);
    let mut slow = open(&all_url(&app), Some(&user.token), None).await.stream();
    let mut fast = open(&all_url(&app), Some(&user.token), None).await.stream();
    let total = 600;
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < total {
            match fast.next_within(Duration::from_secs(10)).await {
                Some(e) if e.event.as_deref() == Some("analysis_result") => n += 1,
                Some(_) => {}
                None => break,
            }
        }
        n
    });
    // 600 events of 32 KiB: far more than socket buffers hold for the slow client.
    let padding = "x".repeat(32 * 1024);
    let task = panoptes_shared::ids::TaskId::new();
    for n in 0..total {
        let data = json!({"deviceId": device["id"], "n": n, "padding": padding}).to_string();
        app.state
            .bus
            .publish(&Publication {
                user: uid,
                device: did,
                task,
                data,
            })
            .await
            .unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(
        reader.await.unwrap(),
        total,
        "the fast consumer got every event"
    );
    let mut slow_got = 0;
    while let Some(e) = slow.next_within(Duration::from_secs(10)).await {
        if e.event.as_deref() == Some("analysis_result") {
            slow_got += 1;
        }
    }
    assert!(
        slow_got < total,
        "the slow consumer was disconnected ({slow_got} events reached it)"
    );
}

#[tokio::test]
async fn shutting_down_ends_streams_so_clients_resume_on_another_replica() {
    let (a, b) = replicas().await;
    let (user, uid, did) = user_with_device(&a).await;
    let task = Uuid::new_v4();
    let mut s = open(&all_url(&a), Some(&user.token), None).await.stream();
    publish(&a, uid, did, task, 0..1).await;
    let last = s.next_result().await.unwrap().id.unwrap();
    a.stop();
    assert_eq!(
        s.next_within(Duration::from_secs(3)).await,
        None,
        "the stream ends when its node shuts down, not after the grace period"
    );
    let missed = publish(&b, uid, did, task, 1..3).await;
    resume_and_expect(&b, &user, &last, None, &missed).await;
}

/// Read from `socket` until `needle` has arrived; everything read so far.
async fn read_until(socket: &mut tokio::net::TcpStream, seen: &mut Vec<u8>, needle: &str) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(seen).contains(needle) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, socket.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{needle:?} within 5 s; got {}",
                    String::from_utf8_lossy(seen)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "connection closed before {needle:?}: {}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_stream_is_served_on_a_fresh_connection_and_on_a_kept_alive_one() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let (user, uid, did) = user_with_device(&app).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let stream_req = format!(
        "GET /api/v1/devices/analysis/stream/all HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        user.token
    );
    // Fresh: the stream is the connection's first request (the direct path).
    let mut fresh = tokio::net::TcpStream::connect(&addr).await.unwrap();
    fresh.write_all(stream_req.as_bytes()).await.unwrap();
    // Kept alive: a plain request first, then the stream on the same connection (hyper).
    let mut reused = tokio::net::TcpStream::connect(&addr).await.unwrap();
    reused
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n{stream_req}").as_bytes())
        .await
        .unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    read_until(&mut fresh, &mut a, "retry: 3000").await;
    read_until(&mut reused, &mut b, "retry: 3000").await;
    let head = String::from_utf8_lossy(&a).to_lowercase();
    for h in [
        "http/1.1 200 ok\r\n",
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "x-accel-buffering: no",
        "transfer-encoding: chunked",
        "x-request-id: ",
        "\r\ndate: ",
    ] {
        assert!(head.contains(h), "{h:?} in {head}");
    }
    let sent = publish(&app, uid, did, Uuid::new_v4(), 0..2).await;
    for e in &sent {
        let id = format!("id: {}\n", e.event_id());
        read_until(&mut fresh, &mut a, &id).await;
        read_until(&mut reused, &mut b, &id).await;
    }
    assert_eq!(app.state.hub.active_streams(), 2);
    // A client that closes its side is noticed at once, not at the next keep-alive (15 s).
    drop(fresh);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while app.state.hub.active_streams() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream was not dropped"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_refused_direct_stream_gets_the_envelope_and_the_connection_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /api/v1/devices/analysis/stream/all HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&all);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
    assert!(head.to_lowercase().contains("connection: close"), "{head}");
    assert!(
        head.to_lowercase()
            .contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["code"], "UNAUTHORIZED", "{v}");
}

/// A gateway replica as its own process, so that it can be killed outright.
struct ChildReplica {
    child: std::process::Child,
    base: String,
}

impl Drop for ChildReplica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn spawn_child_replica(prefix: &str, extra: &[(&str, &str)]) -> ChildReplica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_panoptes-gateway"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in crate::helpers::config(&Backend::Distributed, prefix) {
        cmd.env(k, v);
    }
    cmd.env(
        "PANOPTES__STORE__URL",
        crate::helpers::test_database().await,
    );
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let replica = ChildReplica {
        child: cmd.spawn().expect("the panoptes-gateway binary starts"),
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{}/healthz", replica.base))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replica
}

#[tokio::test]
async fn a_killed_replicas_slots_lapse_and_its_clients_resume_on_another() {
    // Leases renewed every 100 ms and lapsing after 3 s without renewal.
    let timing = [
        ("PANOPTES__SSE__KEEP_ALIVE_MS", "100"),
        ("PANOPTES__SSE__LEASE_TTL_MS", "3000"),
    ];
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let doomed = spawn_child_replica(&prefix, &timing).await;
    let b = spawn_with_env(Backend::Distributed, &prefix, &timing).await;
    let (user, uid, did) = user_with_device(&b).await;
    let doomed_url = format!("{}/api/v1/devices/analysis/stream/all", doomed.base);
    let mut streams = Vec::new();
    for _ in 0..10 {
        streams.push(open(&doomed_url, Some(&user.token), None).await.stream());
    }
    let task = Uuid::new_v4();
    publish(&b, uid, did, task, 0..1).await;
    let last = streams[0].next_result().await.unwrap().id.unwrap();
    let token = streams[0].stream_token();
    // SIGKILL: nothing is released, the ten leases stay until they lapse.
    drop(doomed);
    let killed_at = tokio::time::Instant::now();
    let (status, headers, body) = open(&all_url(&b), Some(&user.token), None).await.refused();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("SSE_CONNECTION_LIMIT"))
    );
    assert!(headers.contains_key("retry-after"));
    // The client that holds its stream's token takes over its own stale slot
    // at once and gets what it missed.
    let missed = publish(&b, uid, did, task, 1..3).await;
    let _resumed = resume_and_expect(&b, &user, &last, Some(&token), &missed).await;
    // A fresh client is admitted once the dead replica's leases lapse.
    loop {
        match open(&all_url(&b), Some(&user.token), None).await {
            crate::sse_client::Opened::Stream(_) => break,
            crate::sse_client::Opened::Refused { status, .. } => {
                assert_eq!(status, 429);
                assert!(
                    killed_at.elapsed() < Duration::from_secs(10),
                    "the dead replica's slots did not lapse"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(
        killed_at.elapsed() >= Duration::from_millis(2500),
        "admitted before the leases could lapse ({:?})",
        killed_at.elapsed()
    );
}
