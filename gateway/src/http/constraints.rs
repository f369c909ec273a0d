//! The request-body constraints of the published OpenAPI document, enforced
//! as published: lengths, ranges, patterns and item counts are read from the
//! finished document (the one `/openapi.json` serves) and checked on every
//! JSON body before its handler runs, so what the document promises and
//! what the API does are one rule. A violation is a 400 naming the field by
//! its full path (`config.zones.queueZone.points`), as serde's errors do.
//! Handlers check only what a schema cannot say (a polygon that crosses
//! itself, an email's domain, ...).

use std::collections::HashMap;

use serde_json::{Map, Value};

/// The document's component schemas, with their patterns compiled.
pub struct Constraints {
    schemas: Map<String, Value>,
    patterns: HashMap<String, regex::Regex>,
}

/// A value outside its documented constraints.
#[derive(Debug, PartialEq)]
pub struct Violation {
    pub field: String,
    pub reason: String,
}

impl Constraints {
    /// From the finished document's JSON.
    pub fn from_document(json: &str) -> Self {
        let doc: Value = serde_json::from_str(json).unwrap_or_default();
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut patterns = HashMap::new();
        schemas
            .values()
            .for_each(|s| collect_patterns(s, &mut patterns));
        Self { schemas, patterns }
    }

    /// Check `value` against the component schema `name` (no such schema:
    /// nothing to check).
    pub fn check(&self, name: &str, value: &Value) -> Result<(), Violation> {
        match self.schemas.get(name) {
            Some(schema) => self.walk(schema, value, ""),
            None => Ok(()),
        }
    }

    fn walk(&self, schema: &Value, value: &Value, at: &str) -> Result<(), Violation> {
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            let name = target.rsplit('/').next().unwrap_or_default();
            return match self.schemas.get(name) {
                Some(s) => self.walk(s, value, at),
                None => Ok(()),
            };
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.walk(part, value, at)?;
        }
        let fail = |reason: String| {
            Err(Violation {
                field: if at.is_empty() {
                    "body".into()
                } else {
                    at.to_owned()
                },
                reason,
            })
        };
        let number = |key: &str| schema.get(key).and_then(Value::as_f64);
        let count = |key: &str| schema.get(key).and_then(Value::as_u64);
        match value {
            Value::String(s) => {
                let chars = s.chars().count() as u64;
                if let Some(min) = count("minLength")
                    && chars < min
                {
                    return fail(if min == 1 {
                        "must not be empty".into()
                    } else {
                        format!("must be at least {min} characters")
                    });
                }
                if let Some(max) = count("maxLength")
                    && chars > max
                {
                    return fail(format!("must be at most {max} characters"));
                }
                if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                    && let Some(re) = self.patterns.get(p)
                    && !re.is_match(s)
                {
                    return fail(format!("must match the pattern {p}"));
                }
            }
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or_default();
                let (min, max) = (number("minimum"), number("maximum"));
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    return fail(match (min, max) {
                        (Some(lo), Some(hi)) => format!("must be between {lo} and {hi}"),
                        (Some(lo), None) => format!("must be at least {lo}"),
                        (None, Some(hi)) => format!("must be at most {hi}"),
                        (None, None) => unreachable!("a bound was crossed"),
                    });
                }
            }
            Value::Array(items) => {
                let len = items.len() as u64;
                if let Some(min) = count("minItems")
                    && len < min
                {
                    return fail(format!("must have at least {min} items"));
                }
                if let Some(max) = count("maxItems")
                    && len > max
                {
                    return fail(format!("must have at most {max} items"));
                }
                if let Some(item) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.walk(item, v, &format!("{at}[{i}]"))?;
                    }
                }
            }
            Value::Object(fields) => {
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (name, v) in fields {
                        if let Some(p) = props.get(name) {
                            let path = if at.is_empty() {
                                name.clone()
                            } else {
                                format!("{at}.{name}")
                            };
                            self.walk(p, v, &path)?;
                        }
                    }
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
        Ok(())
    }
}

fn collect_patterns(value: &Value, out: &mut HashMap<String, regex::Regex>) {
    match value {
        Value::Object(map) => {
            if let Some(p) = map.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
            {
                out.insert(p.to_owned(), re);
            }
            map.values().for_each(|v| collect_patterns(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_patterns(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn constraints() -> Constraints {
        Constraints::from_document(
            &json!({"components": {"schemas": {
                "Req": {"type": "object", "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^[a-z]*$"},
                    "n": {"type": "number", "minimum": 1, "maximum": 60},
                    "inner": {"$ref": "#/components/schemas/Inner"}
                }},
                "Inner": {"type": "object", "properties": {
                    "points": {"type": "array", "minItems": 2, "maxItems": 3,
                               "items": {"type": "array", "items": {"type": "number", "minimum": 0}}}
                }}
            }}})
            .to_string(),
        )
    }

    fn violation(value: Value) -> Option<Violation> {
        constraints().check("Req", &value).err()
    }

    #[test]
    fn every_kind_of_constraint_is_enforced_with_the_full_path() {
        assert_eq!(
            violation(json!({"name": "ab", "n": 5, "inner": {"points": [[0], [1]]}})),
            None
        );
        let v = violation(json!({"name": ""})).unwrap();
        assert_eq!(
            (v.field.as_str(), v.reason.as_str()),
            ("name", "must not be empty")
        );
        assert_eq!(violation(json!({"name": "abcd"})).unwrap().field, "name");
        assert!(
            violation(json!({"name": "A"}))
                .unwrap()
                .reason
                .contains("pattern")
        );
        assert_eq!(
            violation(json!({"n": 0.5})).unwrap().reason,
            "must be between 1 and 60"
        );
        assert_eq!(violation(json!({"n": 61})).unwrap().field, "n");
        assert_eq!(
            violation(json!({"inner": {"points": [[0]]}}))
                .unwrap()
                .field,
            "inner.points"
        );
        assert_eq!(
            violation(json!({"inner": {"points": [[0], [0], [0], [0]]}}))
                .unwrap()
                .reason,
            "must have at most 3 items"
        );
        assert_eq!(
            violation(json!({"inner": {"points": [[0], [1, -1]]}}))
                .unwrap()
                .field,
            "inner.points[1][1]"
        );
        // Characters, not bytes.
        assert_eq!(
            violation(json!({"name": "ééé"}))
                .map(|v| v.reason)
                .filter(|r| r.contains("most")),
            None
        );
    }
}
