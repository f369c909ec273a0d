//! `spawn_app()`: the real application on a free port, against real
//! PostgreSQL and Redis (or the embedded defaults), plus typed helpers.
//!
//! PostgreSQL: `PANOPTES_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); one fresh database per test
//! process. Redis: `PANOPTES_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`)
//! with a key prefix per app group, so runs never share counters. A missing
//! server fails the tests; nothing is skipped.

use std::sync::OnceLock;

use panoptes_gateway::Application;
use panoptes_gateway::state::AppState;
use panoptes_shared::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!!";

pub enum Backend {
    /// PostgreSQL + Redis: the distributed setup.
    Distributed,
    /// SQLite file + in-process limiter: `panoptes up` defaults.
    Embedded,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    shutdown: CancellationToken,
}

impl TestApp {
    /// Start this node's shutdown (as SIGTERM would).
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// Another node on the same store and bus serving `state` (this app's,
    /// with something swapped in, e.g. a scripted resolver).
    pub async fn with_state(&self, state: AppState) -> TestApp {
        TestApp {
            base: serve(state.clone()).await,
            client: reqwest::Client::new(),
            state,
            shutdown: self.shutdown.child_token(),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn field(&self) -> &str {
        self.body["error"]["details"]["field"]
            .as_str()
            .unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        let r = self.expect(status);
        assert_eq!(r.body["success"], false, "{}", r.body);
        assert_eq!(r.body["statusCode"], status, "{}", r.body);
        assert_eq!(r.code(), code, "{}", r.body);
        assert!(r.body["meta"]["requestId"].is_string(), "{}", r.body);
        r
    }

    /// A 400 VALIDATION_ERROR naming `field`.
    #[track_caller]
    pub fn expect_invalid(self, field: &str) -> Self {
        let r = self.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(r.field(), field, "{}", r.body);
        r
    }
}

fn postgres_admin_url() -> String {
    std::env::var("PANOPTES_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("PANOPTES_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// One fresh database per test process, created on first use.
pub async fn test_database() -> String {
    static DB: OnceLock<String> = OnceLock::new();
    static CREATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = CREATE.lock().await;
    if let Some(url) = DB.get() {
        return url.clone();
    }
    let admin_url = postgres_admin_url();
    let name = format!("panoptes_test_{}", uuid::Uuid::new_v4().simple());
    let admin = panoptes_infra::store::SqlStore::connect(&panoptes_infra::store::StoreOptions {
        url: admin_url.clone(),
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(10),
    })
    .await
    .expect("PostgreSQL must be running for these tests");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin.pool())
        .await
        .expect("create db");
    admin.close().await;
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("postgres url has a database path");
    let url = format!("{base}/{name}");
    let _ = DB.set(url.clone());
    url
}

pub fn config(backend: &Backend, redis_prefix: &str) -> Vec<(String, String)> {
    let data_dir = std::env::temp_dir().join(format!("panoptes-gw-{}", uuid::Uuid::new_v4()));
    let mut env = vec![
        (
            "PANOPTES__SERVER__LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "PANOPTES__SERVER__BODY_LIMIT_BYTES".to_owned(),
            "65536".to_owned(),
        ),
        (
            "PANOPTES__DATA__DIR".to_owned(),
            data_dir.display().to_string(),
        ),
        (
            "PANOPTES__AUTH__JWT_SECRET".to_owned(),
            JWT_SECRET.to_owned(),
        ),
        (
            "PANOPTES__AUTH__CREDENTIALS_KEY".to_owned(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
        ),
        // Test cameras are on loopback and the LAN ranges; `outbound.rs`
        // turns the guard back on.
        (
            "PANOPTES__OUTBOUND__ALLOW_PRIVATE".to_owned(),
            "true".to_owned(),
        ),
        // Test webhook receivers speak plain HTTP on loopback.
        (
            "PANOPTES__WEBHOOKS__ALLOW_HTTP".to_owned(),
            "true".to_owned(),
        ),
    ];
    // Every test client is 127.0.0.1: the per-client limits on the anonymous
    // endpoints are raised so tests that sign up many users are not refused
    // (tests/it/abuse.rs checks the limits themselves with their defaults).
    for (key, value) in [
        ("PANOPTES__AUTH__SIGNUPS_PER_CLIENT_PER_HOUR", "100000"),
        ("PANOPTES__AUTH__LOGINS_PER_CLIENT_PER_MINUTE", "100000"),
        ("PANOPTES__AUTH__PASSWORD_HASHES_PER_CLIENT", "256"),
        ("PANOPTES__AUTH__PASSWORD_HASH_QUEUE_MS", "30000"),
    ] {
        env.push((key.to_owned(), value.to_owned()));
    }
    if let Backend::Distributed = backend {
        env.push(("PANOPTES__REDIS__URL".to_owned(), redis_url()));
        env.push((
            "PANOPTES__REDIS__KEY_PREFIX".to_owned(),
            redis_prefix.to_owned(),
        ));
    }
    env
}

/// The distributed setup: PostgreSQL + Redis.
pub async fn spawn_app() -> TestApp {
    spawn_with(
        Backend::Distributed,
        &format!("panoptes-test:{}", uuid::Uuid::new_v4()),
    )
    .await
}

/// Two gateways sharing PostgreSQL and Redis (same key prefix): two replicas.
pub async fn spawn_replicas() -> (TestApp, TestApp) {
    let prefix = format!("panoptes-test:{}", uuid::Uuid::new_v4());
    (
        spawn_with(Backend::Distributed, &prefix).await,
        spawn_with(Backend::Distributed, &prefix).await,
    )
}

pub async fn spawn_with(backend: Backend, redis_prefix: &str) -> TestApp {
    spawn_with_env(backend, redis_prefix, &[]).await
}

/// Like [`spawn_with`], with extra `PANOPTES__...` settings.
pub async fn spawn_with_env(
    backend: Backend,
    redis_prefix: &str,
    extra: &[(&str, &str)],
) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        panoptes_shared::telemetry::init(panoptes_shared::config::LogFormat::Pretty, "debug");
    }
    let mut env = config(&backend, redis_prefix);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let store_given = extra.iter().any(|(k, _)| *k == "PANOPTES__STORE__URL");
    if let Backend::Distributed = backend
        && !store_given
    {
        env.insert(
            0,
            ("PANOPTES__STORE__URL".to_owned(), test_database().await),
        );
    }
    let cfg = Config::load_from(None, env).expect("test config is valid");
    let app = Application::build(&cfg).await.expect("application builds");
    let base = format!("http://{}", app.addr());
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
        shutdown,
    }
}

/// A signed-up user: their session token and id.
pub struct User {
    pub token: String,
    pub id: String,
    pub email: String,
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request reaches the server");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// A new user with a unique email.
    pub async fn signup(&self) -> User {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4());
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(json!({"email": email, "password": "correct horse"})),
            )
            .await
            .expect(201);
        User {
            token: r.data()["token"].as_str().unwrap().to_owned(),
            id: r.data()["user"]["id"].as_str().unwrap().to_owned(),
            email,
        }
    }

    /// Create an API key; returns (secret, id).
    pub async fn create_key(&self, session: &str, body: Value) -> (String, String) {
        let r = self
            .post("/api/v1/api-keys", session, body)
            .await
            .expect(201);
        (
            r.data()["key"].as_str().unwrap().to_owned(),
            r.data()["apiKey"]["id"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn create_device(&self, token: &str, extra: Value) -> Value {
        let mut body = json!({"name": "Entrance", "rtspUrl": "rtsp://127.0.0.1:554/stream1"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post("/api/v1/devices", token, body)
            .await
            .expect(201)
            .data()
            .clone()
    }

    pub async fn create_scene(&self, token: &str, device_id: &str) -> Value {
        self.post("/api/v1/scenes", token, scene_body(device_id))
            .await
            .expect(201)
            .data()
            .clone()
    }
}

pub fn square() -> Value {
    json!({"type": "polygon", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6], [0.1, 0.6]]})
}

pub fn scene_body(device_id: &str) -> Value {
    json!({
        "deviceId": device_id,
        "name": "Checkout line",
        "analysisType": "queue_analysis",
        "config": {"zones": {"queueZone": square()}}
    })
}

/// Serve `state` with the application's routes on a free port; returns the base URL.
pub async fn serve(state: AppState) -> String {
    use poem::listener::{Acceptor, Listener, TcpListener};
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let routes = panoptes_gateway::app::routes(state, 65536);
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(routes));
    format!("http://{addr}")
}
