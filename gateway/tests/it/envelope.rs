//! The envelope, request ids and transport-level failures.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn request_id_is_honoured_or_generated_and_echoed() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc.123");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["meta"]["requestId"], "trace-abc.123");
    assert_eq!(body["success"], true);
    assert_eq!(body["statusCode"], 200);
    assert!(body["meta"]["timestamp"].as_str().unwrap().ends_with('Z'));

    let bad = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "has spaces / slashes")
        .send()
        .await
        .unwrap();
    let generated = bad.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["meta"]["requestId"], generated.as_str());
}

#[tokio::test]
async fn errors_carry_the_request_id_too() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/api/v1/devices", app.base))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["meta"]["requestId"], "req-42");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert_eq!(body["data"], serde_json::Value::Null);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_or_without_content_length() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let big = json!({"name": "x".repeat(70_000), "rtspUrl": "rtsp://cam/1"});
    app.post("/api/v1/devices", &user.token, big.clone())
        .await
        .expect_error(413, "PAYLOAD_TOO_LARGE");
    // Chunked: no Content-Length, the limit applies while reading.
    let bytes = serde_json::to_vec(&big).unwrap();
    let stream = futures::stream::iter(
        bytes
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let r = app
        .client
        .post(format!("{}/api/v1/devices", app.base))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn malformed_bodies_and_wrong_media_types_are_clear_errors() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let send = |ct: &'static str, body: &'static str| {
        app.client
            .post(format!("{}/api/v1/devices", app.base))
            .bearer_auth(&user.token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = send("application/json", "{\"name\": ").await.unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (
            b["error"]["code"].as_str(),
            b["error"]["details"]["field"].as_str()
        ),
        (Some("VALIDATION_ERROR"), Some("body"))
    );
    let r = send("application/json", "").await.unwrap();
    assert_eq!(r.status(), 400);
    let r = send("application/json", "[1,2]").await.unwrap();
    assert_eq!(r.status(), 400);
    let r = send("text/plain", "name=x").await.unwrap();
    assert_eq!(r.status(), 415);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = spawn_app().await;
    app.call(Method::GET, "/api/v1/nothing-here", None, None)
        .await
        .expect_error(404, "NOT_FOUND");
    app.call(Method::PUT, "/api/v1/devices", None, None)
        .await
        .expect_error(405, "METHOD_NOT_ALLOWED");
}
