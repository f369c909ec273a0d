//! The outbound guard on camera URLs and connections, and where camera
//! credentials may go: non-public targets refused when configured and when
//! connecting (DNS rebinding included), probes that never echo a target's
//! bytes, credentials that do not follow a URL to another host or port, and
//! Basic auth never sent in clear without the device's opt-in. Every target
//! here is on loopback; names resolve through an in-memory resolver.

use std::sync::{Arc, Mutex};

use panoptes_infra::camera::{Dialer, RtspProbe, Tls};
use panoptes_infra::resolver::MemoryResolver;
use panoptes_shared::domain::device::RtspUrl;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::outbound::OutboundGuard;
use serde_json::{Value, json};

use crate::fake_rtsp::{FakeCamera, Reply};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_with_env};

const DIGEST: &str = r#"Digest realm="panoptes-test", nonce="0123456789abcdef""#;
const BASIC: &str = r#"Basic realm="panoptes-test""#;

/// A gateway with the guard on (the default config), and a second node on
/// the same store whose guard resolves names through `resolver`.
async fn guarded(resolver: Arc<MemoryResolver>) -> (TestApp, TestApp) {
    let app = spawn_with_env(
        Backend::Distributed,
        &format!("panoptes-test:{}", uuid::Uuid::new_v4()),
        &[("PANOPTES__OUTBOUND__ALLOW_PRIVATE", "false")],
    )
    .await;
    let mut state = app.state.clone();
    let guard = Arc::new(OutboundGuard::new(resolver, false));
    state.outbound = guard.clone();
    state.camera_probe = Arc::new(RtspProbe::new(
        state.cipher.clone(),
        Dialer::new(guard, Tls::system()),
    ));
    let scripted = app.with_state(state).await;
    (app, scripted)
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn probe(app: &TestApp, token: &str, device: &str) -> Value {
    app.post(&format!("/api/v1/devices/{device}/probe"), token, json!({}))
        .await
        .expect(200)
        .data()
        .clone()
}

#[tokio::test]
async fn camera_urls_aimed_at_non_public_addresses_are_refused_on_create_and_update() {
    let (app, scripted) = guarded(Arc::new(MemoryResolver::new())).await;
    let user = app.signup().await;
    let t = &user.token;
    let refused = [
        "rtsp://127.0.0.1/",
        "rtsp://localhost/",
        "rtsp://cam.localhost:8554/live",
        "rtsp://10.0.0.5/",
        "rtsp://192.168.1.100:554/stream1",
        "rtsp://169.254.169.254/",
        "rtsp://[::1]/",
        "rtsp://[::ffff:127.0.0.1]/",
        "rtsp://[fe80::1]/",
        "rtsp://100.64.0.1/",
        "rtsp://2130706433/",
        "rtsp://0x7f.1/",
        "rtsp://0177.0.0.1/",
        "rtsp://admin:secret@127.0.0.1:8554/live",
        "rtsps://127.0.0.1/",
    ];
    for url in refused {
        let r = app
            .post("/api/v1/devices", t, json!({"name": "cam", "rtspUrl": url}))
            .await;
        assert!(!r.body.to_string().contains("secret"), "{url}: {}", r.body);
        r.expect_invalid("rtspUrl");
    }

    // A name that does not resolve now is accepted (connecting checks again);
    // moving it to a non-public address is not.
    let d = id(&scripted
        .create_device(t, json!({"rtspUrl": "rtsp://camera.invalid/live"}))
        .await);
    for url in refused {
        scripted
            .patch(&format!("/api/v1/devices/{d}"), t, json!({"rtspUrl": url}))
            .await
            .expect_invalid("rtspUrl");
    }
    let device = app
        .get(&format!("/api/v1/devices/{d}"), t)
        .await
        .expect(200);
    assert_eq!(device.data()["rtspUrl"], "rtsp://camera.invalid/live");
    assert_eq!(device.data()["allowPlainBasicAuth"], false);
}

#[tokio::test]
async fn a_name_rebound_to_loopback_after_creation_is_refused_at_connect_time() {
    // A port the test owns: any connection to it would be seen.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Unknown when the device is created, loopback when it is probed.
    let resolver = Arc::new(MemoryResolver::new());
    let (_app, scripted) = guarded(resolver.clone()).await;
    let user = scripted.signup().await;
    let d = id(&scripted
        .create_device(
            &user.token,
            json!({"rtspUrl": format!("rtsp://camera.rebind.test:{port}/live")}),
        )
        .await);
    assert_eq!(resolver.lookups(), 1);
    resolver.set("camera.rebind.test", &["127.0.0.1".parse().unwrap()]);

    let p = probe(&scripted, &user.token, &d).await;

    assert_eq!(resolver.lookups(), 2);
    assert_eq!(p["error"], "blocked_address", "{p}");
    assert_eq!(p["reachable"], false);
    assert_eq!(p["status"], "error");
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the guarded port was connected to: {accepted:?}"
    );
}

/// Log lines, as the default filter at `info` lets them through.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_probe_of_something_that_is_not_rtsp_echoes_none_of_its_bytes() {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Captured::default();
    let sink = logs.clone();
    // tracing caches each call site's interest process-wide; while a single
    // dispatcher is registered, a call site first hit on another test's
    // thread (which has none) would be cached as "never". A second one makes
    // tracing ask every registered dispatcher.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // This thread runs the app too (current-thread runtime); `log` records
    // (retina's) are captured as well.
    let _capture = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            panoptes_shared::telemetry::default_directives("info"),
        ))
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish()
        .set_default();
    let redis_like = FakeCamera::start(Reply::Garbage(
        b"-ERR unknown command 'DESCRIBE', panoptes-canary \x01\x02\xfe\r\n",
    ))
    .await;
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = id(&app
        .create_device(&user.token, json!({"rtspUrl": redis_like.url()}))
        .await);

    let p = probe(&app, &user.token, &d).await;

    assert_eq!(p["error"], "not_rtsp", "{p}");
    assert_eq!(p["status"], "error");
    assert_eq!(redis_like.requests().len(), 1, "one DESCRIBE reached it");
    let events = app
        .state
        .store
        .list_events(
            UserId(user.id.parse().unwrap()),
            Some(DeviceId(d.parse().unwrap())),
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(!events.items.is_empty(), "the status change is recorded");
    let stored: Vec<&Value> = events.items.iter().map(|e| &e.data).collect();
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("device probed"),
        "logs were captured: {logged}"
    );
    for (place, text) in [
        ("response", p.to_string()),
        ("stored status", format!("{stored:?}")),
        ("logs", logged),
    ] {
        for needle in [
            "canary",
            "-ERR",
            "DESCRIBE'",
            "70616e6f707465732d63616e617279",
            "70 61 6e 6f",
            "2d 45 52 52",
            "2d455252",
        ] {
            assert!(!text.contains(needle), "{place} echoes {needle:?}: {text}");
        }
    }
}

#[tokio::test]
async fn a_new_host_or_port_drops_stored_credentials_unless_new_ones_come_with_it() {
    let (first, second, third) = (
        FakeCamera::start(Reply::Challenge(DIGEST)).await,
        FakeCamera::start(Reply::Challenge(DIGEST)).await,
        FakeCamera::start(Reply::Challenge(DIGEST)).await,
    );
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let d = id(&app
        .create_device(
            t,
            json!({"rtspUrl": first.url(), "rtspUsername": "old-user", "rtspPassword": "old-secret"}),
        )
        .await);
    let path = format!("/api/v1/devices/{d}");
    // Another path on the same host and port keeps them.
    let same = format!("rtsp://127.0.0.1:{}/other", first.port);
    let r = app
        .patch(&path, t, json!({"rtspUrl": same}))
        .await
        .expect(200);
    assert_eq!(r.data()["hasCredentials"], true);
    probe(&app, t, &d).await;
    assert!(first.authorizations()[0].contains(r#"username="old-user""#));

    // Another port, no credentials: the stored ones stay behind.
    let r = app
        .patch(&path, t, json!({"rtspUrl": second.url()}))
        .await
        .expect(200);
    assert_eq!(r.data()["hasCredentials"], false);
    let p = probe(&app, t, &d).await;
    assert_eq!(p["error"], "unauthorized", "{p}");
    assert!(!second.requests().is_empty());
    assert_eq!(second.authorizations(), Vec::<String>::new());

    // New credentials with the move: those are used.
    let r = app
        .patch(
            &path,
            t,
            json!({"rtspUrl": third.url(), "rtspUsername": "new-user", "rtspPassword": "new-secret"}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["hasCredentials"], true);
    probe(&app, t, &d).await;
    let sent = third.authorizations();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("Digest ") && sent[0].contains(r#"username="new-user""#));
}

#[tokio::test]
async fn credentials_are_not_sent_to_another_address_even_if_the_stored_url_changes() {
    let (given_for, other) = (
        FakeCamera::start(Reply::Challenge(DIGEST)).await,
        FakeCamera::start(Reply::Challenge(DIGEST)).await,
    );
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = id(&app
        .create_device(
            &user.token,
            json!({"rtspUrl": given_for.url(), "rtspUsername": "cam-user", "rtspPassword": "cam-pass"}),
        )
        .await);
    // The row is moved behind the API's back (a bug, a restore, a migration).
    let (owner, device) = (
        UserId(user.id.parse().unwrap()),
        DeviceId(d.parse().unwrap()),
    );
    let mut row = app
        .state
        .store
        .get_device(owner, device)
        .await
        .unwrap()
        .unwrap();
    row.rtsp_url = RtspUrl::parse(&other.url()).unwrap().0;
    assert!(app.state.store.update_device(owner, &row).await.unwrap());

    let p = probe(&app, &user.token, &d).await;

    assert_eq!(p["error"], "unauthorized", "{p}");
    assert!(!other.requests().is_empty());
    assert_eq!(other.authorizations(), Vec::<String>::new());
}

#[tokio::test]
async fn basic_auth_goes_over_plain_rtsp_only_with_the_devices_opt_in() {
    let basic_only = FakeCamera::start(Reply::Challenge(BASIC)).await;
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let d = id(&app
        .create_device(
            t,
            json!({"rtspUrl": basic_only.url(), "rtspUsername": "cam-user", "rtspPassword": "cam-pass"}),
        )
        .await);

    let p = probe(&app, t, &d).await;

    assert_eq!(p["error"], "insecure_auth_refused", "{p}");
    assert_eq!(p["status"], "error");
    assert!(!basic_only.requests().is_empty());
    assert_eq!(basic_only.authorizations(), Vec::<String>::new());
    assert!(
        !basic_only
            .requests()
            .concat()
            .contains("Y2FtLXVzZXI6Y2FtLXBhc3M="),
        "the password left the process"
    );

    // With the opt-in, Basic is answered.
    let r = app
        .patch(
            &format!("/api/v1/devices/{d}"),
            t,
            json!({"allowPlainBasicAuth": true}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["allowPlainBasicAuth"], true);
    let p = probe(&app, t, &d).await;
    assert_eq!(p["error"], "unauthorized", "{p}");
    assert_eq!(
        basic_only.authorizations(),
        vec!["Basic Y2FtLXVzZXI6Y2FtLXBhc3M=".to_owned()]
    );
}

#[tokio::test]
async fn a_digest_challenge_is_answered_without_the_opt_in() {
    let digest = FakeCamera::start(Reply::Challenge(DIGEST)).await;
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = id(&app
        .create_device(
            &user.token,
            json!({"rtspUrl": digest.url(), "rtspUsername": "cam-user", "rtspPassword": "cam-pass"}),
        )
        .await);

    let p = probe(&app, &user.token, &d).await;

    assert_eq!(p["error"], "unauthorized", "{p}");
    let sent = digest.authorizations();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("Digest ") && sent[0].contains(r#"username="cam-user""#));
    assert!(!sent[0].contains("cam-pass"));
}
