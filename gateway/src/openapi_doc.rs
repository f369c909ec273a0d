//! The OpenAPI document, generated from the code: poem-openapi renders the
//! operations and request/response types, then [`finish`] adds what it
//! cannot express and reshapes what generators reject. The gateway serves
//! the result (`/openapi.json`, `/openapi.yaml`); `panoptes openapi --out
//! openapi` writes it, and a test fails when the committed files differ.
//!
//! What `finish` does, each a rule for the whole document:
//! - the stream events' schemas come from the types the pipeline serialises
//!   (`panoptes_shared::domain::stream_events`), so they cannot drift;
//! - a property that refers to another schema is a plain `$ref`
//!   (poem-openapi writes `allOf: [$ref, {description}]`, which
//!   openapi-python-client refuses for enums); its description moves to the
//!   owning schema's description;
//! - operations without credentials say so (`security: []`);
//! - the headers every response carries (`X-Request-Id`), rate-limited
//!   responses carry (`RateLimit`, `RateLimit-Policy`) and refusals carry
//!   (`Retry-After`) are declared once under `components.headers`.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::state::AppState;

/// The finished document, as JSON and as YAML.
pub struct Document {
    pub json: String,
    pub yaml: String,
}

/// Render the document. Building it needs no running dependency.
pub fn render(state: AppState) -> Document {
    finished(&crate::api::service(state).spec())
}

/// The finished document from poem-openapi's rendering (`spec`).
pub fn finished(spec: &str) -> Document {
    let mut doc: Value = serde_json::from_str(spec).expect("poem-openapi renders valid JSON");
    finish(&mut doc);
    let mut json = serde_json::to_string_pretty(&doc).expect("a JSON value serialises");
    json.push('\n');
    let yaml = serde_yaml::to_string(&doc).expect("a JSON value serialises as YAML");
    Document { json, yaml }
}

pub fn write(dir: &Path, state: AppState) -> std::io::Result<()> {
    let doc = render(state);
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("openapi.json"), doc.json)?;
    std::fs::write(dir.join("openapi.yaml"), doc.yaml)
}

/// Apply the document-wide rules (see the module docs).
pub fn finish(doc: &mut Value) {
    stream_events_are_one_of_the_event_types(doc);
    add_stream_event_schemas(doc);
    plain_refs(doc);
    public_security(doc);
    response_headers(doc);
}

fn schemas(doc: &mut Value) -> &mut Map<String, Value> {
    doc.pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas")
}

fn add_stream_event_schemas(doc: &mut Value) {
    let target = schemas(doc);
    for (name, schema) in panoptes_shared::domain::stream_events::schemas() {
        match target.get(&name) {
            // A type both sides know (an enum such as `DetectClass`) must be
            // spelled the same on both.
            Some(existing) if existing.get("enum").is_some() => assert_eq!(
                existing.get("enum"),
                schema.get("enum"),
                "schema {name} differs between the API and the stream events"
            ),
            // New, or the stand-in the stream responses registered.
            _ => {
                target.insert(name, schema);
            }
        }
    }
}

/// A stream's `text/event-stream` content: each event's `data` is one
/// object, an `AnalysisResult` or (first) the `StreamTokenEvent`.
fn stream_events_are_one_of_the_event_types(doc: &mut Value) {
    let event = format!("#/components/schemas/{}", crate::sse::body::EVENT_SCHEMA);
    for op in operations(doc) {
        let Some(content) = op
            .get_mut("responses")
            .and_then(|r| r.get_mut("200"))
            .and_then(|r| r.get_mut("content"))
            .and_then(|c| c.get_mut("text/event-stream"))
        else {
            continue;
        };
        if content.pointer("/schema/$ref").and_then(Value::as_str) == Some(event.as_str()) {
            content["schema"] = json!({
                "oneOf": [
                    { "$ref": event },
                    { "$ref": "#/components/schemas/StreamTokenEvent" }
                ]
            });
        }
    }
}

/// `{allOf: [{$ref}, {description}]}` and `{$ref, description}`
/// properties become `{$ref}` (a `$ref`'s siblings are ignored in OpenAPI
/// 3.0); the description joins the parent's.
fn plain_refs(doc: &mut Value) {
    for schema in schemas(doc).values_mut() {
        let mut moved = Vec::new();
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            for (name, prop) in props.iter_mut() {
                let Some(target) = single_ref(prop) else {
                    continue;
                };
                if let Some(text) = prop.get("description").and_then(Value::as_str) {
                    moved.push(format!("- `{name}`: {text}"));
                }
                *prop = json!({ "$ref": target });
            }
        }
        if !moved.is_empty() {
            let obj = schema
                .as_object_mut()
                .expect("a schema with properties is an object");
            let mut text = obj
                .get("description")
                .and_then(Value::as_str)
                .map(|d| format!("{d}\n\n"))
                .unwrap_or_default();
            text.push_str(&moved.join("\n"));
            obj.insert("description".into(), Value::String(text));
        }
    }
}

/// The `$ref` of a property that only wraps one reference (`$ref` with
/// a sibling description, or an `allOf` of it).
fn single_ref(prop: &Value) -> Option<String> {
    let obj = prop.as_object()?;
    if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
        let prose = obj.keys().all(|k| k == "$ref" || k == "description");
        return (prose && obj.len() > 1).then(|| target.to_owned());
    }
    let parts = prop.get("allOf")?.as_array()?;
    let target = parts.first()?.get("$ref")?.as_str()?.to_owned();
    let rest_is_prose = parts[1..].iter().all(|p| {
        p.as_object()
            .is_some_and(|o| o.keys().all(|k| k == "description"))
    });
    let siblings_are_prose = prop
        .as_object()?
        .keys()
        .all(|k| k == "allOf" || k == "description");
    (rest_is_prose && siblings_are_prose).then_some(target)
}

fn operations(doc: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
}

fn public_security(doc: &mut Value) {
    for op in operations(doc) {
        op.entry("security").or_insert_with(|| json!([]));
    }
}

const REQUEST_ID: &str = "X-Request-Id";
const RATE_LIMIT: &str = "RateLimit";
const RATE_LIMIT_POLICY: &str = "RateLimit-Policy";
const RETRY_AFTER: &str = "Retry-After";

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

fn response_headers(doc: &mut Value) {
    let components = doc
        .get_mut("components")
        .and_then(Value::as_object_mut)
        .expect("the document has components");
    components.insert(
        "headers".into(),
        json!({
            REQUEST_ID: {
                "description": "This request's id: the one sent (up to 128 characters of \
                    `A-Z a-z 0-9 - _ . :`), or a generated UUID. Also `meta.requestId`.",
                "required": true,
                "schema": { "type": "string", "maxLength": 128 }
            },
            RATE_LIMIT_POLICY: {
                "description": "The limit that applies to this request: `<limit>;w=<window seconds>` \
                    (IETF httpapi RateLimit headers draft). Sent when a rate limit was checked.",
                "schema": { "type": "string" }
            },
            RATE_LIMIT: {
                "description": "`limit=<n>, remaining=<n>, reset=<seconds>`. Sent when a rate limit \
                    was checked.",
                "schema": { "type": "string" }
            },
            RETRY_AFTER: {
                "description": "Seconds to wait before retrying.",
                "schema": { "type": "integer", "minimum": 0 }
            }
        }),
    );
    for op in operations(doc) {
        let limited = op
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty())
            || op
                .get("operationId")
                .and_then(Value::as_str)
                .is_some_and(|id| id == "login" || id == "signup");
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let Some(response) = response.as_object_mut() else {
                continue;
            };
            let headers = response
                .entry("headers")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("response headers are an object");
            headers.insert(REQUEST_ID.into(), header_ref(REQUEST_ID));
            if limited {
                headers.insert(RATE_LIMIT_POLICY.into(), header_ref(RATE_LIMIT_POLICY));
                headers.insert(RATE_LIMIT.into(), header_ref(RATE_LIMIT));
            }
            if status == "429" || status == "503" {
                headers.insert(RETRY_AFTER.into(), header_ref(RETRY_AFTER));
            }
        }
    }
}
