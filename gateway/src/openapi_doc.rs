//! The committed OpenAPI document (`openapi/openapi.json` and `.yaml`) is
//! generated from the code: `panoptes openapi --out openapi` rewrites it, and
//! a test fails when the committed files differ from what the code produces.

use std::path::Path;

use crate::state::AppState;

/// The document as JSON and YAML. Building it needs no running dependency.
pub fn render(state: AppState) -> (String, String) {
    let svc = crate::api::service(state);
    let mut json = svc.spec();
    json.push('\n');
    (json, svc.spec_yaml())
}

pub fn write(dir: &Path, state: AppState) -> std::io::Result<()> {
    let (json, yaml) = render(state);
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("openapi.json"), json)?;
    std::fs::write(dir.join("openapi.yaml"), yaml)
}
