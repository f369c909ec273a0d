//! One tracing set-up for every binary: `RUST_LOG` wins over the configured
//! level; JSON lines in production, human-readable locally.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Safe to call more than once (later calls
/// are no-ops), so tests can call it freely.
pub fn init(format: &str, level: &str) {
    // ONNX Runtime logs every graph transform at info: keep its warnings only,
    // unless the configured level names it.
    let default = if level.contains("ort") {
        level.to_owned()
    } else {
        format!("{level},ort=warn")
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
