//! Health, readiness and metrics.

use std::sync::Arc;

use panoptes_infra::store::SqlStore;
use reqwest::Method;

use crate::helpers::{serve, spawn_app};
use crate::promtool::promtool_check;

#[tokio::test]
async fn health_and_readiness_report_each_dependency() {
    let app = spawn_app().await;
    app.call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    let r = app
        .call(Method::GET, "/readyz", None, None)
        .await
        .expect(200);
    assert_eq!(r.data()["ready"], true);
    let deps = r.data()["dependencies"].as_array().unwrap();
    assert_eq!(deps[0]["backend"], "postgres");
    assert_eq!(deps[1]["backend"], "redis");
    assert!(deps.iter().all(|d| d["status"] == "ok"));
}

#[tokio::test]
async fn readiness_fails_when_the_store_is_gone() {
    let app = spawn_app().await;
    // The same gateway over a store whose pool is closed: every query fails.
    let store = SqlStore::lazy("postgres://postgres@127.0.0.1:1/nowhere").unwrap();
    store.close().await;
    let mut state = app.state.clone();
    state.store = Arc::new(store);
    let base = serve(state).await;
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"]["ready"], false);
    assert_eq!(body["data"]["dependencies"][0]["status"], "unavailable");
    assert_eq!(body["data"]["dependencies"][1]["status"], "ok");
    // API calls fail with the documented 503, not a bare 500.
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/devices"))
        .bearer_auth("syncai_pat_x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert!(
        !body.to_string().contains("postgres"),
        "no internals in the body: {body}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_operation_and_status() {
    let app = spawn_app().await;
    let user = app.signup().await;
    app.get("/api/v1/devices", &user.token).await.expect(200);
    app.get("/api/v1/devices", "bogus").await.expect(401);
    let text = app.metrics().await;
    assert!(text.contains("panoptes_http_requests_total{operation=\"listDevices\",method=\"GET\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("panoptes_http_requests_total{operation=\"listDevices\",method=\"GET\",status=\"401\"} 1"), "{text}");
    assert!(
        text.contains("panoptes_http_request_duration_seconds_bucket{operation=\"signup\""),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_pass_promtool_after_traffic() {
    let app = spawn_app().await;
    let user = app.signup().await;
    app.get("/api/v1/devices", &user.token).await.expect(200);
    app.get("/api/v1/devices", "bogus").await.expect(401);
    app.get("/api/v1/no-such-route", &user.token)
        .await
        .expect(404);
    let text = app.metrics().await;
    for name in [
        "panoptes_http_request_duration_seconds_bucket{",
        "panoptes_http_connections_open{",
        "panoptes_sse_streams ",
        "panoptes_build_info{version=\"",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
    ] {
        let linux_only = name.starts_with("process_") && !cfg!(target_os = "linux");
        assert!(linux_only || text.contains(name), "{name} in {text}");
    }
    promtool_check(&text);
}
