//! Redis and PostgreSQL going away under a running gateway (through a proxy
//! the test controls): every request fails within its documented deadline,
//! `/readyz` says which dependency within a second, and the first request
//! after a dependency comes back succeeds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::fault_proxy::{FaultProxy, Mode};
use crate::helpers::{Backend, TestApp, redis_url, spawn_with_env, test_database};

fn upstream(url: &str, default_port: u16) -> SocketAddr {
    let u = url::Url::parse(url).unwrap();
    let host = u.host_str().unwrap_or("127.0.0.1");
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{}", u.port().unwrap_or(default_port))
        .parse()
        .unwrap()
}

/// A gateway whose Redis is reached through a proxy.
async fn behind_redis_proxy() -> (TestApp, FaultProxy) {
    let proxy = FaultProxy::start(upstream(&redis_url(), 6379)).await;
    let url = format!("redis://{}", proxy.addr());
    let prefix = format!("panoptes-test:{}", uuid::Uuid::new_v4());
    let app = spawn_with_env(
        Backend::Distributed,
        &prefix,
        &[("PANOPTES__REDIS__URL", &url)],
    )
    .await;
    (app, proxy)
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

#[tokio::test]
async fn a_stalled_redis_costs_a_request_about_a_second_not_nine() {
    let (app, proxy) = behind_redis_proxy().await;
    let user = app.signup().await;
    proxy.set(Mode::Stall);
    // Log-in and key management count against limits in Redis: they fail
    // open (logged) once the command deadline passes.
    let (r, took) = timed(app.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": user.email, "password": "correct horse"})),
    ))
    .await;
    r.expect(200);
    assert!(took < Duration::from_millis(2_500), "log-in took {took:?}");
    let (r, took) = timed(app.post(
        "/api/v1/api-keys",
        &user.token,
        json!({"name": "k", "type": "personal"}),
    ))
    .await;
    r.expect(201);
    assert!(
        took < Duration::from_millis(2_500),
        "key creation took {took:?}"
    );
    // A stream cannot take a slot: refused within about a second.
    let (r, took) = timed(
        app.client
            .get(format!("{}/api/v1/devices/analysis/stream/all", app.base))
            .bearer_auth(&user.token)
            .send(),
    )
    .await;
    assert_eq!(r.unwrap().status(), 503);
    assert!(
        took < Duration::from_millis(2_500),
        "stream open took {took:?}"
    );
    let (r, took) = timed(app.call(Method::GET, "/readyz", None, None)).await;
    let r = r.expect(503);
    assert!(took < Duration::from_millis(1_500), "/readyz took {took:?}");
    let deps = r.data()["dependencies"].as_array().unwrap().clone();
    let limiter = deps.iter().find(|d| d["name"] == "rateLimiter").unwrap();
    assert_eq!(limiter["status"], "unavailable");
    let store = deps.iter().find(|d| d["name"] == "store").unwrap();
    assert_eq!(store["status"], "ok");
    proxy.set(Mode::Pass);
}

#[tokio::test]
async fn the_first_request_after_redis_comes_back_succeeds() {
    let (app, proxy) = behind_redis_proxy().await;
    let user = app.signup().await;
    app.call(Method::GET, "/readyz", None, None)
        .await
        .expect(200);
    // Redis goes away (every connection cut, new ones refused)...
    proxy.set(Mode::Refuse);
    app.call(Method::GET, "/readyz", None, None)
        .await
        .expect(503);
    // ...and comes back: the very next request finds it, without a failure first.
    proxy.set(Mode::Pass);
    app.call(Method::GET, "/readyz", None, None)
        .await
        .expect(200);
    let r = app.get("/api/v1/api-keys", &user.token).await.expect(200);
    assert!(
        r.headers.contains_key("ratelimit"),
        "the limiter answered (it fails open without headers when Redis is away)"
    );
}

#[tokio::test]
async fn an_unreachable_store_fails_an_api_key_request_once_within_its_timeout() {
    let pg = test_database().await;
    let proxy = FaultProxy::start(upstream(&pg, 5432)).await;
    let mut through = url::Url::parse(&pg).unwrap();
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(proxy.addr().port())).unwrap();
    let prefix = format!("panoptes-test:{}", uuid::Uuid::new_v4());
    let app = spawn_with_env(
        Backend::Distributed,
        &prefix,
        &[
            ("PANOPTES__STORE__URL", through.as_str()),
            ("PANOPTES__STORE__ACQUIRE_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;
    let user = app.signup().await;
    let (key, _) = app
        .create_key(&user.token, json!({"name": "k", "type": "personal"}))
        .await;
    for mode in [Mode::Stall, Mode::Refuse] {
        proxy.set(mode);
        let (r, took) = timed(app.get("/api/v1/devices", &key)).await;
        r.expect_error(503, "SERVICE_UNAVAILABLE");
        assert!(
            took < Duration::from_millis(3_500),
            "{mode:?}: the store's 2 s timeout was spent more than once ({took:?})"
        );
        let (r, took) = timed(app.call(Method::GET, "/readyz", None, None)).await;
        r.expect(503);
        assert!(took < Duration::from_millis(1_500), "/readyz took {took:?}");
        proxy.set(Mode::Pass);
    }
    // Back: served again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if app.get("/api/v1/devices", &key).await.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the store did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
