//! The committed OpenAPI document matches the code, and says what it must.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app;

fn committed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi")
}

#[tokio::test]
async fn committed_document_matches_the_code() {
    let (json, yaml) = panoptes_gateway::openapi_doc::render(panoptes_gateway::app::spec_state());
    let fix = "regenerate it with: cargo run -p panoptes-launcher --bin panoptes -- openapi --out openapi";
    let committed_json =
        std::fs::read_to_string(committed_dir().join("openapi.json")).unwrap_or_default();
    assert!(
        committed_json == json,
        "openapi/openapi.json is out of date; {fix}"
    );
    let committed_yaml =
        std::fs::read_to_string(committed_dir().join("openapi.yaml")).unwrap_or_default();
    assert!(
        committed_yaml == yaml,
        "openapi/openapi.yaml is out of date; {fix}"
    );
}

fn spec() -> Value {
    let (json, _) = panoptes_gateway::openapi_doc::render(panoptes_gateway::app::spec_state());
    serde_json::from_str(&json).unwrap()
}

#[tokio::test]
async fn every_operation_has_an_id_a_tag_a_summary_and_documented_errors() {
    let spec = spec();
    let mut ids = std::collections::HashSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no operationId"));
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{name} has no tag"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name} has no summary"
            );
            for p in op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
            {
                // The error middleware reports any path parameter as `id`.
                assert_eq!(p["name"], "id", "{name}: path parameters must be named id");
            }
            let responses = op["responses"].as_object().unwrap();
            if path.starts_with("/api/v1/") {
                assert!(
                    responses.contains_key("400") && responses.contains_key("500"),
                    "{name}: {responses:?}"
                );
                if !path.contains("/auth/") {
                    assert!(
                        responses.contains_key("401") && op["security"].is_array(),
                        "{name} must declare auth"
                    );
                }
                assert!(!responses.contains_key("501"), "{name} documents 501");
                assert!(
                    !responses.contains_key("429")
                        || path.contains("api-keys")
                        || path.ends_with("/login")
                        || path.ends_with("/signup")
                        || path.contains("/stream")
                        || path.ends_with("/probe")
                        || path.ends_with("/analysis/start")
                        || path.ends_with("/frames")
                        || path.ends_with("/heartbeat"),
                    "{name} documents 429"
                );
            }
        }
    }
    assert!(ids.len() >= 25, "{} operations", ids.len());
}

#[tokio::test]
async fn both_security_schemes_and_the_error_codes_are_published() {
    let spec = spec();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["SessionToken"]["scheme"], "bearer");
    assert_eq!(schemes["ApiKey"]["scheme"], "bearer");
    let codes: Vec<&str> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for code in [
        "VALIDATION_ERROR",
        "UNAUTHORIZED",
        "FORBIDDEN_SCOPE",
        "NOT_FOUND",
        "CONFLICT",
        "RATE_LIMITED",
        "QUOTA_EXCEEDED",
        "PLAN_REQUIRED",
        "DEVICE_OFFLINE",
        "SCENE_INACTIVE",
        "SSE_CONNECTION_LIMIT",
        "PAYLOAD_TOO_LARGE",
        "SERVICE_UNAVAILABLE",
        "INTERNAL_ERROR",
    ] {
        assert!(codes.contains(&code), "{code} missing");
        assert!(
            spec["info"]["description"]
                .as_str()
                .unwrap()
                .contains(&format!("`{code}`")),
            "{code} not in the table"
        );
    }
    // API-key management takes session tokens only.
    let create = &spec["paths"]["/api/v1/api-keys"]["post"];
    assert_eq!(
        create["security"],
        serde_json::json!([{"SessionToken": []}])
    );
}

#[tokio::test]
async fn the_server_serves_the_document_and_an_offline_ui() {
    let app = spawn_app().await;
    let served = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    assert_eq!(served.body, spec());
    let ui = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    let html = ui.text().await.unwrap();
    assert!(html.contains("swagger"), "swagger UI page");
    assert!(
        !html.contains("<script src=\"http"),
        "assets are embedded, no CDN"
    );
}
