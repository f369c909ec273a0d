//! One tracing set-up for every binary: `RUST_LOG` wins over the configured
//! level; JSON lines in production, human-readable locally.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter directives used when `RUST_LOG` is not set, for `level`.
pub fn default_directives(level: &str) -> String {
    // ONNX Runtime logs every graph transform at info: keep its warnings only,
    // unless the configured level names it. retina's warnings quote what
    // cameras (or whatever answers at a camera's address) sent, in hex: its
    // errors only, for the same reason probes never echo a target's bytes.
    let mut directives = level.to_owned();
    if !level.contains("ort") {
        directives.push_str(",ort=warn");
    }
    if !level.contains("retina") {
        directives.push_str(",retina=error");
    }
    directives
}

/// Install the global subscriber. Safe to call more than once (later calls
/// are no-ops), so tests can call it freely.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_directives(level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// [`init`] as `cfg.log` says, then report what loading `cfg` warned about.
pub fn init_for(cfg: &crate::config::Config) {
    init(cfg.log.format, &cfg.log.level);
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
}
