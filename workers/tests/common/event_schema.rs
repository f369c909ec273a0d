//! The stream events, checked against the committed OpenAPI document (used
//! by the worker tests and, through `#[path]`, the gateway's).

/// Parse an `analysis_result` event's data and check it against the
/// committed OpenAPI document's `AnalysisResult` schema: types, formats,
/// enums, required fields, and no field the document does not name (every
/// object is held closed). Panics with the path of the first mismatch.
pub fn documented_event(data: &str) -> serde_json::Value {
    let doc = document();
    let event: serde_json::Value = serde_json::from_str(data).expect("event data is JSON");
    let schema = serde_json::json!({ "$ref": "#/components/schemas/AnalysisResult" });
    if let Err(e) = conforms(doc, &schema, &event, "event") {
        panic!("an emitted event does not match the document: {e}\nevent: {event}");
    }
    event
}

/// The committed document, read once per test binary.
fn document() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("openapi/openapi.json"))
            .find(|path| path.exists())
            .expect("openapi/openapi.json above the crate");
        let text = std::fs::read_to_string(path).expect("the committed OpenAPI document");
        serde_json::from_str(&text).expect("the document is JSON")
    })
}

/// OpenAPI 3.0 schema check, the subset the stream events use.
fn conforms(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .ok_or_else(|| format!("{at}: dangling {r}"))?;
        return conforms(doc, target, value, at);
    }
    if value.is_null() {
        return if schema.get("nullable") == Some(&Value::Bool(true)) {
            Ok(())
        } else {
            Err(format!("{at}: null where the document does not allow it"))
        };
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let ty = schema.get("type").and_then(Value::as_str);
    let ok = match ty {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("number") => value.is_number(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        None => true,
        Some(other) => return Err(format!("{at}: unknown type {other}")),
    };
    if !ok {
        return Err(format!("{at}: {value} is not of type {ty:?}"));
    }
    if let (Some(format), Some(s)) = (schema.get("format").and_then(Value::as_str), value.as_str())
    {
        let valid = match format {
            "uuid" => uuid::Uuid::parse_str(s).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            _ => true,
        };
        if !valid {
            return Err(format!("{at}: {s:?} is not a {format}"));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!("{at}: {n} < minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!("{at}: {n} > maximum {max}"));
        }
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            if !obj.contains_key(name) {
                return Err(format!("{at}.{name}: required but absent"));
            }
        }
        for (name, v) in obj {
            let Some(p) = props.and_then(|p| p.get(name)) else {
                return Err(format!("{at}.{name}: not in the document"));
            };
            conforms(doc, p, v, &format!("{at}.{name}"))?;
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            conforms(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
