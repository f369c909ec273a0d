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
    let doc = panoptes_gateway::openapi_doc::render(panoptes_gateway::app::spec_state());
    let (json, yaml) = (doc.json, doc.yaml);
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
    let doc = panoptes_gateway::openapi_doc::render(panoptes_gateway::app::spec_state());
    serde_json::from_str(&doc.json).unwrap()
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
                if path.ends_with("/signup") || path.ends_with("/login") {
                    assert_eq!(op["security"], serde_json::json!([]), "{name} is public");
                } else {
                    assert!(
                        responses.contains_key("401")
                            && op["security"].as_array().is_some_and(|s| !s.is_empty()),
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
    let yaml = app
        .client
        .get(format!("{}/openapi.yaml", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(yaml.status(), 200);
    assert!(
        yaml.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("yaml"),
        "{:?}",
        yaml.headers()
    );
    let parsed: Value = serde_yaml::from_str(&yaml.text().await.unwrap()).unwrap();
    assert_eq!(parsed, spec());
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
    assert!(
        html.contains("StreamTokenEvent") && html.contains("\"security\": []"),
        "the UI shows the finished document"
    );
    let slash = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(slash.status(), 200, "/docs/ serves the same page");
}

#[tokio::test]
async fn public_operations_declare_no_security_and_ops_endpoints_are_public() {
    let spec = spec();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["security"].is_array(),
                "{method} {path}: no security key"
            );
        }
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            spec["paths"][path]["get"]["security"],
            serde_json::json!([]),
            "{path}"
        );
    }
}

/// Generators (openapi-python-client) refuse `allOf: [$ref, {description}]`
/// for enums: every property that names another schema is a plain `$ref`.
#[tokio::test]
async fn properties_refer_to_schemas_with_plain_refs() {
    let spec = spec();
    let text = spec.to_string();
    assert!(!text.contains("\"allOf\""), "the document uses allOf");
    // The moved descriptions are kept, on the owning schema.
    let status = spec["components"]["schemas"]["AnalysisStatusDto"]["description"]
        .as_str()
        .unwrap();
    assert!(status.contains("- `task`:"), "{status}");
}

#[tokio::test]
async fn every_response_declares_its_headers() {
    let spec = spec();
    let headers = &spec["components"]["headers"];
    for h in [
        "X-Request-Id",
        "RateLimit",
        "RateLimit-Policy",
        "Retry-After",
    ] {
        assert!(headers[h]["schema"].is_object(), "{h} not declared");
    }
    assert_eq!(headers["X-Request-Id"]["required"], true);
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, r) in op["responses"].as_object().unwrap() {
                let name = format!("{method} {path} {status}");
                assert!(
                    r["headers"]["X-Request-Id"].is_object(),
                    "{name}: X-Request-Id"
                );
                if status == "429" {
                    assert!(
                        r["headers"]["Retry-After"].is_object(),
                        "{name}: Retry-After"
                    );
                }
                let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
                if secured {
                    assert!(r["headers"]["RateLimit"].is_object(), "{name}: RateLimit");
                }
            }
        }
    }
}

/// The stream's 200 is one event object whose schema comes from the type
/// analytics serialises, every field documented.
#[tokio::test]
async fn stream_events_are_documented_as_one_object_each() {
    let spec = spec();
    for path in [
        "/api/v1/devices/{id}/analysis/stream",
        "/api/v1/devices/analysis/stream/all",
    ] {
        let ok = &spec["paths"][path]["get"]["responses"]["200"];
        assert_eq!(
            ok["content"]["text/event-stream"]["schema"],
            serde_json::json!({"oneOf": [
                {"$ref": "#/components/schemas/AnalysisResult"},
                {"$ref": "#/components/schemas/StreamTokenEvent"}
            ]}),
            "{path}"
        );
        assert!(ok["headers"]["Stream-Token"].is_object(), "{path}");
    }
    let schemas = &spec["components"]["schemas"];
    let event = &schemas["AnalysisResult"];
    let required: Vec<&str> = event["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in [
        "deviceId",
        "analysisId",
        "sceneId",
        "timestamp",
        "detections",
        "computeNodeId",
        "processingMs",
    ] {
        assert!(
            required.contains(&field),
            "{field} not required: {required:?}"
        );
    }
    for field in ["metrics", "snapshotUrl"] {
        assert!(
            event["properties"][field].is_object(),
            "{field} undocumented"
        );
        assert!(!required.contains(&field), "{field} is optional");
    }
    assert_eq!(
        schemas["DetectClass"]["enum"],
        serde_json::json!(["person", "vehicle"])
    );
    assert_eq!(
        schemas["Zone"]["enum"],
        serde_json::json!(["queue", "checkout"])
    );
    for (name, schema) in schemas.as_object().unwrap() {
        for (field, prop) in schema["properties"].as_object().into_iter().flatten() {
            if [
                "AnalysisResult",
                "DetectedObject",
                "QueueMetrics",
                "WindowMetrics",
                "BoundingBox",
                "StreamTokenEvent",
            ]
            .contains(&name.as_str())
                && !prop["$ref"].is_string()
            {
                assert!(
                    prop["description"].is_string(),
                    "{name}.{field} undocumented"
                );
            }
        }
    }
}

#[tokio::test]
async fn data_queries_require_their_scene() {
    let spec = spec();
    for path in [
        "/api/v1/analytics/snapshots",
        "/api/v1/analytics/snapshots/latest",
        "/api/v1/analytics/rolling",
        "/api/v1/analytics/rolling/latest",
    ] {
        let params = spec["paths"][path]["get"]["parameters"].as_array().unwrap();
        let scene = params.iter().find(|p| p["name"] == "sceneId").unwrap();
        assert_eq!(scene["required"], true, "{path}");
    }
}
