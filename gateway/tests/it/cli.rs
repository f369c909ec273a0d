//! The `panoptes` binary's maintenance commands, run as a user would.

use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, test_database};

fn panoptes(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panoptes"));
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("panoptes runs")
}

#[tokio::test]
async fn create_admin_makes_an_account_that_can_use_admin_endpoints() {
    let app = spawn_app().await;
    let db = test_database().await;
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4());
    let out = panoptes(
        &["create-admin", "--email", &email],
        &[
            ("PANOPTES__STORE__URL", &db),
            ("PANOPTES_ADMIN_PASSWORD", "admin password 1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("admin password 1"),
        "password never printed"
    );
    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": "admin password 1"})),
        )
        .await
        .expect(200);
    assert_eq!(login.data()["user"]["role"], "admin");
    app.get(
        "/api/v1/admin/users",
        login.data()["token"].as_str().unwrap(),
    )
    .await
    .expect(200);

    // Running it again for an existing user promotes, and a short password is refused.
    let user = app.signup().await;
    let out = panoptes(
        &["create-admin", "--email", &user.email],
        &[("PANOPTES__STORE__URL", &db)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.get("/api/v1/admin/users", &user.token)
        .await
        .expect(200);
    let out = panoptes(
        &["create-admin", "--email", "new-admin@example.com"],
        &[
            ("PANOPTES__STORE__URL", &db),
            ("PANOPTES_ADMIN_PASSWORD", "short"),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
}

#[test]
fn bad_configuration_is_refused_with_the_key_named() {
    let out = panoptes(&["migrate"], &[("PANOPTES__STORE__URL", "mysql://nope")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("store.url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = panoptes(
        &["migrate"],
        &[
            ("PANOPTES__AUTH__JWT_SECRET", "too-short"),
            ("PANOPTES__DATA__DIR", "/tmp/panoptes-cli-x"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auth.jwt_secret") && !err.contains("too-short"),
        "{err}"
    );
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = std::env::temp_dir().join(format!("panoptes-cli-{}", uuid::Uuid::new_v4()));
    let out = panoptes(
        &["migrate"],
        &[("PANOPTES__DATA__DIR", dir.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sqlite"));
    assert!(dir.join("panoptes.db").exists());
    // Idempotent.
    assert!(
        panoptes(
            &["migrate"],
            &[("PANOPTES__DATA__DIR", dir.to_str().unwrap())]
        )
        .status
        .success()
    );
}

/// `panoptes up` as a newcomer runs it: the demo camera pushes its clip
/// through the edge API, and the demo account sees live counts stored as
/// snapshots and rolling metrics, without any camera or service.
#[tokio::test]
async fn up_runs_a_demo_camera_whose_metrics_reach_the_data_query_api() {
    let dir = std::env::temp_dir().join(format!("panoptes-up-{}", uuid::Uuid::new_v4()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&dir)
        .env("PANOPTES__ANALYTICS__PERSIST_INTERVAL_MS", "1000")
        .env("PANOPTES__WORKER__METRICS_LISTEN", "")
        .env("PANOPTES__EDGE__DEMO_FPS", "2")
        .env(
            "PANOPTES__DETECTOR__MODEL_PATH",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../workers/models/nanodet-m-416.onnx"
            ),
        )
        .env("PANOPTES__LOG__LEVEL", "info,panoptes_gateway::http=warn")
        .stdout(std::fs::File::create(dir.with_extension("log")).unwrap())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    let wait = || async {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    // The demo account's password is in the data dir, not in the logs.
    let account = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("demo-account.txt")) {
            break text;
        }
        wait().await;
    };
    let password = account
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    let login = loop {
        if let Ok(r) = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": "demo@panoptes.local", "password": password}))
            .send()
            .await
            && r.status() == 200
        {
            break r.json::<serde_json::Value>().await.unwrap();
        }
        wait().await;
    };
    let token = login["data"]["token"].as_str().unwrap().to_owned();
    let get = |path: String| {
        let (client, token, base) = (client.clone(), token.clone(), base.clone());
        async move {
            client
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let devices = get("/api/v1/devices".into()).await;
    let device = &devices["data"][0];
    assert_eq!(device["type"], "usb_camera");
    let device_id = device["id"].as_str().unwrap().to_owned();
    let scenes = get(format!("/api/v1/devices/{device_id}/scenes")).await;
    let scene = scenes["data"][0]["id"].as_str().unwrap().to_owned();
    // Frames flow: detection, tracking and metrics land in the store.
    let latest = loop {
        let l = get(format!("/api/v1/analytics/scenes/{scene}/latest")).await;
        if l["data"]["snapshot"].is_object() && l["data"]["rolling"]["total"].is_object() {
            break l;
        }
        wait().await;
    };
    assert_eq!(latest["data"]["analyzing"], true);
    assert_eq!(latest["data"]["task"]["trigger"], "edge");
    assert!(latest["data"]["snapshot"]["currentMetrics"]["inQueue"].is_u64());
    let status = get(format!("/api/v1/devices/{device_id}/analysis/status")).await;
    assert_eq!(status["data"]["deviceStatus"], "online");
    assert_eq!(status["data"]["running"], true);
    child.kill().await.unwrap();
}

/// (content type, body) of each POST a [`Collector`] received.
type Posts = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A stand-in OTLP/HTTP collector on loopback: keeps what is POSTed to
/// `/v1/traces`, answers 200.
struct Collector {
    addr: std::net::SocketAddr,
    posts: Posts,
}

impl Collector {
    async fn start() -> Self {
        use poem::listener::{Acceptor, Listener};
        let posts = Posts::default();
        let kept = posts.clone();
        let app = poem::Route::new().at(
            "/v1/traces",
            poem::post(poem::endpoint::make(move |req: poem::Request| {
                let kept = kept.clone();
                async move {
                    let content_type = req.content_type().unwrap_or_default().to_owned();
                    let body = req.into_body().into_vec().await.unwrap_or_default();
                    kept.lock().unwrap().push((content_type, body));
                    poem::Response::builder()
                        .content_type("application/x-protobuf")
                        .body(Vec::<u8>::new())
                }
            })),
        );
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        Self { addr, posts }
    }

    /// Every span received: (trace id, span id, parent span id, name,
    /// attributes as text), after checking each POST is OTLP protobuf from
    /// the named service.
    fn spans(&self, service: &str) -> Vec<ExportedSpan> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        use prost::Message;
        let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
            .as_ref()
            .and_then(|v| v.value.as_ref())
        {
            Some(Value::StringValue(s)) => s.clone(),
            Some(Value::IntValue(i)) => i.to_string(),
            Some(Value::BoolValue(b)) => b.to_string(),
            other => format!("{other:?}"),
        };
        let mut spans = Vec::new();
        for (content_type, body) in self.posts.lock().unwrap().iter() {
            assert_eq!(content_type, "application/x-protobuf");
            let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            for rs in request.resource_spans {
                let resource = rs.resource.unwrap_or_default();
                assert!(
                    resource
                        .attributes
                        .iter()
                        .any(|a| a.key == "service.name" && text(&a.value) == service),
                    "{:?}",
                    resource.attributes
                );
                for s in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                    spans.push(ExportedSpan {
                        trace_id: hex::encode(&s.trace_id),
                        span_id: hex::encode(&s.span_id),
                        parent: hex::encode(&s.parent_span_id),
                        name: s.name,
                        attributes: s
                            .attributes
                            .iter()
                            .map(|a| (a.key.clone(), text(&a.value)))
                            .collect(),
                    });
                }
            }
        }
        spans
    }
}

#[derive(Debug, Clone)]
struct ExportedSpan {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    attributes: std::collections::BTreeMap<String, String>,
}

/// With `telemetry.otlp_endpoint` set, `panoptes up` exports its spans over
/// OTLP/HTTP: each frame the demo camera pushes is one trace, from the edge
/// push request through detect to the analytics publish, each span the child
/// of the one before; and what is still buffered is sent on SIGTERM (the
/// periodic export is pushed beyond the test, so that flush is the only one).
#[tokio::test]
async fn up_exports_one_trace_per_frame_from_edge_push_to_publish() {
    let collector = Collector::start().await;
    let dir = std::env::temp_dir().join(format!("panoptes-otlp-{}", uuid::Uuid::new_v4()));
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, worker_port) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&dir)
        .env(
            "PANOPTES__TELEMETRY__OTLP_ENDPOINT",
            format!("http://{}", collector.addr),
        )
        .env("PANOPTES__TELEMETRY__SERVICE_NAME", "panoptes-otlp-test")
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env(
            "PANOPTES__WORKER__METRICS_LISTEN",
            format!("127.0.0.1:{worker_port}"),
        )
        .env("PANOPTES__EDGE__DEMO_FPS", "4")
        .env(
            "PANOPTES__DETECTOR__MODEL_PATH",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../workers/models/nanodet-m-416.onnx"
            ),
        )
        .env("PANOPTES__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Frames flow until analytics has published a few.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let published = async {
            let text = reqwest::get(format!("http://127.0.0.1:{worker_port}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("panoptes_analytics_published_total "))?
                .parse::<u64>()
                .ok()
        };
        if published.await.unwrap_or(0) >= 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no published frames"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .expect("panoptes stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");

    let spans = collector.spans("panoptes-otlp-test");
    let by_id: std::collections::HashMap<&str, &ExportedSpan> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let parent_of = |s: &ExportedSpan| {
        let p = by_id
            .get(s.parent.as_str())
            .unwrap_or_else(|| panic!("the parent of {s:?} was exported"));
        assert_eq!(p.trace_id, s.trace_id, "one trace: {s:?} {p:?}");
        *p
    };
    let publishes: Vec<&ExportedSpan> =
        spans.iter().filter(|s| s.name == "frame.publish").collect();
    assert!(publishes.len() >= 3, "{spans:#?}");
    for publish in publishes {
        let detect = parent_of(publish);
        assert_eq!(detect.name, "frame.detect");
        let push = parent_of(detect);
        assert_eq!(push.name, "POST /api/v1/devices/{id}/frames");
        assert_eq!(push.parent, "", "the push request starts the trace");
        assert_eq!(push.attributes["route"], "/api/v1/devices/{id}/frames");
        assert_eq!(push.attributes["status"], "202");
        assert_eq!(push.attributes["method"], "POST");
        assert!(push.attributes.contains_key("request_id"), "{push:?}");
        for s in [publish, detect, push] {
            assert_eq!(s.attributes["trace_id"], s.trace_id, "{s:?}");
        }
    }
}
