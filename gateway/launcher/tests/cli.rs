//! The `panoptes` binary's commands, run as a user would: the maintenance
//! commands, `up` with and without a detector, and `worker`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn panoptes(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panoptes"));
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("panoptes runs")
}

fn temp_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("panoptes-{what}-{}", uuid::Uuid::new_v4()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait (bounded) until `url` answers.
async fn answering(url: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while reqwest::get(url).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `panoptes <command> --listen <port> --data-dir <dir>`, to spawn.
fn serve(
    command: &str,
    dir: &Path,
    port: u16,
    env: &[(&str, &str)],
    log: Option<PathBuf>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_panoptes"));
    cmd.args([
        command,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(dir)
    .env("PANOPTES__WORKER__METRICS_LISTEN", "")
    .env("PANOPTES__LOG__LEVEL", "info,panoptes_gateway::http=warn")
    .stdout(log.map_or_else(Stdio::null, |f| std::fs::File::create(f).unwrap().into()))
    .stderr(Stdio::null())
    .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[tokio::test]
async fn create_admin_makes_an_account_that_can_use_admin_endpoints() {
    let dir = temp_dir("admin");
    let data = [("PANOPTES__DATA__DIR", dir.to_str().unwrap())];
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4());
    let out = panoptes(
        &["create-admin", "--email", &email],
        &[data[0], ("PANOPTES_ADMIN_PASSWORD", "admin password 1")],
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
    let port = free_port();
    let _gateway = serve(
        "gateway",
        &dir,
        port,
        &[("PANOPTES__AUTH__LOGINS_PER_CLIENT_PER_MINUTE", "1000")],
        None,
    )
    .spawn()
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    answering(&format!("{base}/healthz"), Duration::from_secs(30)).await;
    let client = reqwest::Client::new();
    let login = |email: String, password: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let r = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["data"].clone()
        }
    };
    let admin_get = |token: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .get(format!("{base}/api/v1/admin/users"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let admin = login(email, "admin password 1").await;
    assert_eq!(admin["user"]["role"], "admin");
    assert_eq!(
        admin_get(admin["token"].as_str().unwrap().into()).await,
        200
    );

    // Running it again for an existing user promotes, and a short password is refused.
    let user = format!("user-{}@example.com", uuid::Uuid::new_v4());
    let r = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": user, "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let out = panoptes(&["create-admin", "--email", &user], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let promoted = login(user, "a long password").await;
    assert_eq!(
        admin_get(promoted["token"].as_str().unwrap().into()).await,
        200
    );
    let out = panoptes(
        &["create-admin", "--email", "new-admin@example.com"],
        &[data[0], ("PANOPTES_ADMIN_PASSWORD", "short")],
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
    let dir = temp_dir("cli");
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

/// A worker role that cannot start is an error the process exits with.
#[test]
fn a_worker_whose_role_cannot_start_exits_non_zero_and_says_why() {
    let dir = temp_dir("worker");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panoptes"));
    cmd.args(["worker", "--role", "analytics", "--role", "detect"])
        .env("PANOPTES__DATA__DIR", &dir)
        .env("PANOPTES__WORKER__METRICS_LISTEN", "")
        .env("PANOPTES__DETECTOR__ORT_LIBRARY", "")
        .env_remove("ORT_DYLIB_PATH")
        .stdin(Stdio::null());
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot start the detect role") && err.contains("ONNX Runtime"),
        "{err}"
    );
    // The same under the former name: notify without its receivers' CA file.
    let out = Command::new(env!("CARGO_BIN_EXE_panoptes-worker"))
        .args(["--role", "notify"])
        .env("PANOPTES__DATA__DIR", &dir)
        .env(
            "PANOPTES__WEBHOOKS__TLS_CA_FILE",
            dir.join("missing-ca.pem"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("webhooks.tls_ca_file"), "{err}");
}

/// `panoptes up` without ONNX Runtime: the API serves, and `/readyz` says
/// the platform is degraded because the detector is unavailable, and why.
#[tokio::test]
async fn up_without_a_detector_serves_and_reports_itself_degraded() {
    let dir = temp_dir("up-nodet");
    let port = free_port();
    let _up = serve(
        "up",
        &dir,
        port,
        &[
            ("PANOPTES__EDGE__DEMO_CAMERA", "false"),
            ("PANOPTES__DETECTOR__ORT_LIBRARY", ""),
        ],
        None,
    )
    .env_remove("ORT_DYLIB_PATH")
    .spawn()
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    answering(&format!("{base}/healthz"), Duration::from_secs(30)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        if body["data"]["components"].as_array().unwrap().len() == 5 {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let data = &ready["data"];
    assert_eq!(data["ready"], true, "{ready}");
    assert_eq!(data["status"], "degraded", "{ready}");
    let detector = data["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "detector")
        .unwrap();
    assert_eq!(detector["status"], "unavailable");
    assert!(
        detector["reason"]
            .as_str()
            .unwrap()
            .contains("ONNX Runtime"),
        "{detector}"
    );
    assert!(
        data["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] != "detector")
            .all(|c| c["status"] == "ok"),
        "{ready}"
    );
}

/// `panoptes up` as a newcomer runs it: the demo camera pushes its clip
/// through the edge API, and the demo account sees live counts stored as
/// snapshots and rolling metrics, without any camera or service.
#[tokio::test]
async fn up_runs_a_demo_camera_whose_metrics_reach_the_data_query_api() {
    let dir = temp_dir("up");
    let port = free_port();
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../workers/models/nanodet-m-416.onnx"
    );
    let mut child = serve(
        "up",
        &dir,
        port,
        &[
            ("PANOPTES__ANALYTICS__PERSIST_INTERVAL_MS", "1000"),
            ("PANOPTES__EDGE__DEMO_FPS", "2"),
            ("PANOPTES__DETECTOR__MODEL_PATH", model),
        ],
        Some(dir.with_extension("log")),
    )
    .spawn()
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let wait = || async {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(250)).await;
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
            break r.json::<Value>().await.unwrap();
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
                .json::<Value>()
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
    // Every role runs: ready, not degraded.
    let ready: Value = reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["data"]["status"], "ready", "{ready}");
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
                "/../../workers/models/nanodet-m-416.onnx"
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

/// What a deployment uses: `check-config` names unknown settings,
/// `config-reference` lists what production must set, and `healthcheck`
/// asks the process on this host for `/healthz` (exit 0 only on a 200).
#[tokio::test]
async fn deployment_commands_check_config_list_the_reference_and_probe_health() {
    let dir = temp_dir("deploy");
    let data = ("PANOPTES__DATA__DIR", dir.to_str().unwrap());
    let out = panoptes(
        &["check-config"],
        &[data, ("PANOPTES__LOG__FORMAT", "json")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("config ok: store sqlite"));
    let out = panoptes(
        &["check-config"],
        &[data, ("PANOPTES__SERVER__LISTN", "0.0.0.0:1")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listn"));

    let out = panoptes(&["config-reference"], &[]);
    assert!(out.status.success());
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
    let required = reference["required"].as_array().unwrap();
    let store = required.iter().find(|r| r["key"] == "store.url").unwrap();
    assert_eq!(store["env"], "PANOPTES__STORE__URL");
    assert_eq!(store["secret"], true);
    assert_eq!(store["processes"].as_array().unwrap().len(), 6);
    // Every example value together is a configuration check-config accepts.
    let examples: Vec<(String, String)> = required
        .iter()
        .map(|r| {
            (
                r["env"].as_str().unwrap().to_owned(),
                r["example"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let env: Vec<(&str, &str)> = examples
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = panoptes(&["check-config"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("store postgres, shared state redis, blobs s3")
    );

    // A real worker answers its health check; nothing listening fails it.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let metrics = ("PANOPTES__WORKER__METRICS_LISTEN", listen.as_str());
    let out = panoptes(&["healthcheck"], &[data, metrics]);
    assert!(!out.status.success(), "nothing listens yet");
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .args(["worker", "--role", "schedule"])
        .env(data.0, data.1)
        .env(metrics.0, metrics.1)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    answering(&format!("http://{listen}/healthz"), Duration::from_secs(20)).await;
    let out = panoptes(&["healthcheck"], &[data, metrics]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `--gateway` asks server.listen instead, where nothing listens.
    let out = panoptes(
        &["healthcheck", "--gateway"],
        &[
            data,
            (
                "PANOPTES__SERVER__LISTEN",
                &format!("0.0.0.0:{}", free_port()),
            ),
        ],
    );
    assert!(!out.status.success());
    worker.kill().await.unwrap();
    // A listener that answers something else than 200 fails it too.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = busy.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    });
    let out = panoptes(
        &["healthcheck"],
        &[
            data,
            ("PANOPTES__WORKER__METRICS_LISTEN", busy_addr.as_str()),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("503"));
}
