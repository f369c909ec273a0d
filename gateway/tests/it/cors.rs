//! Browser pages on allowed origins (`server.cors_allowed_origins`) can call
//! the API and read ticketed streams; other origins get no CORS headers, and
//! with the default (no origins) nothing changes.

use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, spawn_app, spawn_with_env};
use crate::sse::{ids, publish};

const PAGE: &str = "http://127.0.0.1:5173";

async fn spawn_with_origins(origins: &str) -> TestApp {
    spawn_with_env(
        Backend::Distributed,
        &format!("panoptes-test:{}", Uuid::new_v4()),
        &[("PANOPTES__SERVER__CORS_ALLOWED_ORIGINS", origins)],
    )
    .await
}

async fn preflight(app: &TestApp, path: &str, origin: &str, headers: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}{path}", app.base))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn an_allowed_page_reads_a_ticketed_stream_and_resumes_it() {
    let app = spawn_with_origins(&format!("{PAGE},https://other.example")).await;
    let user = app.signup().await;
    let device = app.create_device(&user.token, json!({})).await;
    let device_id = device["id"].as_str().unwrap();
    let stream_path = format!("/api/v1/devices/{device_id}/analysis/stream");

    // Preflight: the stream accepts Last-Event-ID and Stream-Token from the page.
    let pre = preflight(&app, &stream_path, PAGE, "last-event-id, stream-token").await;
    assert_eq!(pre.status(), 204);
    assert_eq!(header(&pre, "access-control-allow-origin"), Some(PAGE));
    let allowed = header(&pre, "access-control-allow-headers").unwrap();
    for h in [
        "last-event-id",
        "stream-token",
        "authorization",
        "content-type",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert!(
        header(&pre, "access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
    assert!(header(&pre, "access-control-max-age").is_some());
    assert!(header(&pre, "access-control-allow-credentials").is_none());

    // A ticket minted with the page's bearer token (a cross-origin POST).
    let pre = preflight(&app, "/api/v1/sse/tickets", PAGE, "authorization").await;
    assert_eq!(pre.status(), 204);
    assert!(
        header(&pre, "access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    let t = app
        .client
        .post(format!("{}/api/v1/sse/tickets", app.base))
        .header("origin", PAGE)
        .bearer_auth(&user.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(t.status(), 200);
    assert_eq!(header(&t, "access-control-allow-origin"), Some(PAGE));
    assert!(
        header(&t, "access-control-expose-headers")
            .unwrap()
            .contains("x-request-id")
    );
    let ticket = t.json::<serde_json::Value>().await.unwrap()["data"]["ticket"]
        .as_str()
        .unwrap()
        .to_owned();

    // The stream itself, as EventSource opens it: Origin + ?ticket=.
    let (uid, did) = ids(&user, &device);
    let task = Uuid::new_v4();
    let resp = app
        .client
        .get(format!("{}{stream_path}?ticket={ticket}", app.base))
        .header("origin", PAGE)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(PAGE));
    assert!(
        header(&resp, "access-control-expose-headers")
            .unwrap()
            .contains("stream-token")
    );
    let sent = publish(&app, uid, did, task, 0..1).await;
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains(&sent[0].event_id()) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("the published event arrives within 10 s")
            .expect("the stream stays open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn other_origins_get_no_cors_headers_and_refused_preflights() {
    let app = spawn_with_origins(PAGE).await;
    let user = app.signup().await;
    let pre = preflight(
        &app,
        "/api/v1/devices",
        "http://127.0.0.1:6666",
        "authorization",
    )
    .await;
    assert_eq!(pre.status(), 403);
    assert!(header(&pre, "access-control-allow-origin").is_none());
    let body: serde_json::Value = pre.json().await.unwrap();
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    let r = app
        .client
        .get(format!("{}/api/v1/devices", app.base))
        .header("origin", "http://127.0.0.1:6666")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "served; the browser withholds it from the page"
    );
    assert!(header(&r, "access-control-allow-origin").is_none());
    assert!(
        header(&r, "vary")
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin")
    );
    // An error from an allowed origin is readable by the page.
    let r = app
        .client
        .get(format!("{}/api/v1/devices", app.base))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PAGE));
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors() {
    let app = spawn_app().await;
    let pre = preflight(&app, "/api/v1/devices", PAGE, "authorization").await;
    assert_eq!(pre.status(), 405);
    assert!(header(&pre, "access-control-allow-origin").is_none());
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_malformed_origin_setting_stops_start_up() {
    let mut env = crate::helpers::config(&Backend::Embedded, "unused");
    env.push((
        "PANOPTES__SERVER__CORS_ALLOWED_ORIGINS".into(),
        "https://app.example.com/path".into(),
    ));
    let cfg = panoptes_shared::config::Config::load_from(None, env).unwrap();
    let err = panoptes_gateway::Application::build(&cfg)
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("server.cors_allowed_origins"),
        "{err:#}"
    );
}
