//! Which methods each path accepts, from the OpenAPI document, for the
//! `Allow` header that a 405 must carry (RFC 9110 §15.5.6).

use std::collections::BTreeSet;

pub struct AllowTable {
    routes: Vec<(Vec<String>, BTreeSet<String>)>,
}

impl AllowTable {
    /// From the generated document (`paths` with `{param}` segments).
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let routes = spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| {
                        let segments = path.split('/').map(str::to_owned).collect();
                        let methods = item
                            .as_object()
                            .map(|m| m.keys().map(|k| k.to_uppercase()).collect())
                            .unwrap_or_default();
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { routes }
    }

    /// The routes whose template matches `path`.
    fn matching<'a>(
        &'a self,
        path: &'a str,
    ) -> impl Iterator<Item = &'a (Vec<String>, BTreeSet<String>)> + 'a {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes.iter().filter(move |(segments, _)| {
            segments.len() == parts.len()
                && segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| s.starts_with('{') || s == p)
        })
    }

    /// `GET, PATCH, ...` for `path`, if any route matches it.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let methods: BTreeSet<&str> = self
            .matching(path)
            .flat_map(|(_, m)| m.iter().map(String::as_str))
            .collect();
        (!methods.is_empty()).then(|| methods.into_iter().collect::<Vec<_>>().join(", "))
    }

    /// The documented route `path` is an instance of (`/api/v1/devices/{id}`
    /// for `/api/v1/devices/6f1...`); the most literal one when several match.
    pub fn template(&self, path: &str) -> Option<String> {
        self.matching(path)
            .max_by_key(|(segments, _)| segments.iter().filter(|s| !s.starts_with('{')).count())
            .map(|(segments, _)| segments.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_concrete_paths() {
        let t = AllowTable::from_spec(
            r#"{"paths": {"/api/v1/devices/{id}": {"get": {}, "patch": {}, "delete": {}}, "/api/v1/devices": {"get": {}, "post": {}}}}"#,
        );
        assert_eq!(
            t.allowed("/api/v1/devices/abc").as_deref(),
            Some("DELETE, GET, PATCH")
        );
        assert_eq!(t.allowed("/api/v1/devices").as_deref(), Some("GET, POST"));
        assert_eq!(t.allowed("/api/v1/nope"), None);
        assert_eq!(
            t.template("/api/v1/devices/abc").as_deref(),
            Some("/api/v1/devices/{id}")
        );
        assert_eq!(
            t.template("/api/v1/devices").as_deref(),
            Some("/api/v1/devices")
        );
        assert_eq!(t.template("/api/v1/nope"), None);
    }
}
