//! How far an answer is checked against the request's JSON Schema: it is an
//! object, every top-level field the schema `required`s is there, and every
//! top-level field the schema declares has one of its declared basic types
//! (`string`, `number`, `integer`, `boolean`, `object`, `array`, `null`) and,
//! where the schema lists an `enum`, one of its values. Nested schemas are
//! not walked: the provider's structured-output mode enforces the full
//! schema, this catches a server that ignores it or an answer cut short.

use serde_json::Value;

/// `Ok` when `answer` satisfies the top level of `schema`; otherwise what is
/// wrong, in words (field names only, never the answer's values).
pub fn check_answer(schema: &Value, answer: &Value) -> Result<(), String> {
    let Some(object) = answer.as_object() else {
        return Err(format!(
            "the answer is {}, not a JSON object",
            type_name(answer)
        ));
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default();
    for field in &required {
        if !object.contains_key(*field) {
            return Err(format!(
                "the answer has no `{field}` (required by the schema)"
            ));
        }
    }
    for (field, declared) in properties.into_iter().flatten() {
        let Some(value) = object.get(field) else {
            continue;
        };
        let types = declared_types(declared);
        if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
            return Err(format!(
                "`{field}` is {}, the schema wants {}",
                type_name(value),
                types.join(" or ")
            ));
        }
        if let Some(allowed) = declared.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            return Err(format!(
                "`{field}` is not one of the values the schema allows"
            ));
        }
    }
    Ok(())
}

/// The answer's `summary` on one line (runs of whitespace, line breaks
/// included, made one space), when the schema declares `summary` as a string
/// and the answer has a non-blank one.
pub fn one_line_summary(schema: &Value, answer: &Value) -> Option<String> {
    let declared = schema.get("properties")?.get("summary")?;
    if !declared_types(declared).contains(&"string") {
        return None;
    }
    let text = answer.get("summary")?.as_str()?;
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!line.is_empty()).then_some(line)
}

/// `"type": "string"` or `"type": ["string", "null"]`; none when absent.
fn declared_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn has_type(value: &Value, json_type: &str) -> bool {
    match json_type {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        // A type this checker does not know is not held against the answer.
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "summary": {"type": "string"},
                "severity": {"type": "string", "enum": ["low", "high"]},
                "people": {"type": "integer"},
                "note": {"type": ["string", "null"]},
                "causes": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["summary", "severity", "people"],
            "additionalProperties": false
        })
    }

    #[test]
    fn an_answer_with_the_required_fields_of_the_declared_types_passes() {
        let answer = json!({"summary": "a\n long  queue", "severity": "high", "people": 12.0,
                            "note": null, "causes": ["one till open"]});
        assert_eq!(check_answer(&schema(), &answer), Ok(()));
        assert_eq!(
            one_line_summary(&schema(), &answer).as_deref(),
            Some("a long queue")
        );
    }

    #[test]
    fn a_missing_field_a_wrong_type_or_a_value_outside_the_enum_is_named() {
        let cases = [
            (json!([1]), "an array, not a JSON object"),
            (json!({"summary": "s", "severity": "high"}), "no `people`"),
            (
                json!({"summary": "s", "severity": "high", "people": "12"}),
                "`people` is a string, the schema wants integer",
            ),
            (
                json!({"summary": "s", "severity": "high", "people": 1.5}),
                "`people` is a number",
            ),
            (
                json!({"summary": "s", "severity": "medium", "people": 1}),
                "`severity` is not one of",
            ),
            (
                json!({"summary": "s", "severity": "low", "people": 1, "note": 3}),
                "wants string or null",
            ),
        ];
        for (answer, expected) in cases {
            let err = check_answer(&schema(), &answer).unwrap_err();
            assert!(err.contains(expected), "{answer}: {err}");
        }
    }

    #[test]
    fn no_summary_without_a_declared_summary_string() {
        let schema = json!({"type": "object", "properties": {"summary": {"type": "array"}}});
        assert_eq!(one_line_summary(&schema, &json!({"summary": "x"})), None);
        assert_eq!(
            one_line_summary(&json!({"type": "object"}), &json!({"summary": "x"})),
            None
        );
        assert_eq!(
            one_line_summary(&super::tests::schema(), &json!({"summary": "  \n "})),
            None
        );
    }
}
