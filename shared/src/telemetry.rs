//! One tracing set-up for every binary: `RUST_LOG` wins over the configured
//! level; JSON lines in production, human-readable locally; spans exported
//! over OTLP/HTTP when `telemetry.otlp_endpoint` is set.
//!
//! A frame's stages (ingest or edge push, detect, analytics publish) run in
//! different processes; each opens a span in one trace, whose context travels
//! with the frame as a W3C `traceparent` string ([`TraceParent`]): the
//! producer sets it with [`start_trace`] or [`traceparent`], every later
//! stage continues it with [`continue_trace`]. With export on, the spans are
//! linked parent to child in the collector; with it off, each span still
//! records the trace id in its `trace_id` field, so the JSON log lines of
//! every stage of a frame carry the same `trace_id`.

use std::fmt;
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::{Dispatch, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::TelemetryConfig;

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

/// Install the global subscriber, logs only. Safe to call more than once
/// (later calls are no-ops), so tests can call it freely.
pub fn init(format: LogFormat, level: &str) {
    let (dispatch, _) = dispatch(format, level, &TelemetryConfig::default(), "panoptes");
    let _ = dispatch.try_init();
}

/// Install the global subscriber: logs, and spans exported over OTLP when
/// `telemetry.otlp_endpoint` is set (`service` names them unless
/// `telemetry.service_name` does). Call from within the Tokio runtime (the
/// exporter sends on it), keep the returned [`Telemetry`] and
/// [`Telemetry::shutdown`] it before exiting so the last spans are sent.
pub fn init_with(
    format: LogFormat,
    level: &str,
    telemetry: &TelemetryConfig,
    service: &str,
) -> Telemetry {
    let (dispatch, guard) = dispatch(format, level, telemetry, service);
    if dispatch.try_init().is_ok() {
        if let Some(endpoint) = &guard.endpoint {
            tracing::info!(%endpoint, "exporting spans over OTLP");
        }
        if let Some(error) = &guard.failed {
            // Not fatal: the service runs, its spans are not exported.
            tracing::warn!(%error, "spans will not be exported");
        }
    }
    guard
}

/// The subscriber [`init_with`] installs, for a caller that scopes it itself
/// (`tracing::dispatcher::set_default`, e.g. a test) instead.
pub fn dispatch(
    format: LogFormat,
    level: &str,
    telemetry: &TelemetryConfig,
    service: &str,
) -> (Dispatch, Telemetry) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_directives(level)));
    let fmt = tracing_subscriber::fmt::layer().with_target(true);
    let fmt = if format == LogFormat::Json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let mut guard = Telemetry::default();
    let otel = if telemetry.otlp_endpoint.is_empty() {
        None
    } else {
        match provider(telemetry, service) {
            Ok((provider, endpoint)) => {
                let tracer = provider.tracer("panoptes");
                guard.provider = Some(provider);
                guard.endpoint = Some(endpoint);
                // Our own spans only (requests, frames), whatever the log level.
                let ours = Targets::new()
                    .with_target("panoptes", LevelFilter::INFO)
                    .with_default(LevelFilter::OFF);
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(ours)
                        .boxed(),
                )
            }
            Err(e) => {
                guard.failed = Some(e);
                None
            }
        }
    };
    let subscriber = Registry::default().with(fmt).with(otel);
    (Dispatch::new(subscriber), guard)
}

/// Where spans go: `<endpoint>/v1/traces` unless the endpoint has a path.
fn traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    match url::Url::parse(endpoint) {
        Ok(u) if u.path() != "/" && !u.path().is_empty() => endpoint.to_owned(),
        _ => format!("{trimmed}/v1/traces"),
    }
}

fn provider(
    telemetry: &TelemetryConfig,
    service: &str,
) -> Result<(SdkTracerProvider, String), String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "telemetry is set up outside the Tokio runtime".to_owned())?;
    let endpoint = traces_url(&telemetry.otlp_endpoint);
    let client = RuntimeClient {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?,
        runtime,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .with_http_client(client)
        .build()
        .map_err(|e| e.to_string())?;
    let name = if telemetry.service_name.is_empty() {
        service
    } else {
        &telemetry.service_name
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            telemetry.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(name.to_owned())
                .build(),
        )
        .build();
    Ok((provider, endpoint))
}

/// The OTLP exporter's HTTP client: the workspace's reqwest, run on the
/// process's Tokio runtime. The SDK exports from a thread of its own, where
/// an async client could not run by itself; this avoids a blocking client
/// (and a second reqwest).
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

/// A collector's answer is small; a larger one is refused.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        self.runtime
            .spawn(async move {
                let mut response = client.execute(request).await?;
                let status = response.status();
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err("the collector's response is too large".into());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(opentelemetry_http::Response::builder()
                    .status(status)
                    .body(opentelemetry_http::Bytes::from(body))?)
            })
            .await?
    }
}

/// Keeps the span exporter of [`init_with`]; [`Telemetry::shutdown`] sends
/// what is still buffered.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    endpoint: Option<String>,
    /// Why export is off although an endpoint was configured.
    failed: Option<String>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Send the spans still buffered and stop exporting. The export runs on
    /// the Tokio runtime, so this waits off it rather than blocking it.
    pub async fn shutdown(mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "the last spans were not exported");
        }
    }
}

/// W3C trace context (`00-<trace id>-<parent span id>-<flags>`), carried by a
/// frame from stage to stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl TraceParent {
    /// A `traceparent` header value; `None` unless well-formed (version 00,
    /// non-zero ids).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if parts.next().is_some()
            || version != "00"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        let tp = Self {
            trace_id: u128::from_str_radix(trace, 16).ok()?,
            span_id: u64::from_str_radix(span, 16).ok()?,
            sampled: u8::from_str_radix(flags, 16).ok()? & 1 == 1,
        };
        (tp.trace_id != 0 && tp.span_id != 0).then_some(tp)
    }

    /// A new trace (marked sampled: stages that export record it).
    pub fn random() -> Self {
        Self {
            trace_id: rand::random::<u128>().max(1),
            span_id: random_span_id(),
            sampled: true,
        }
    }

    /// The trace id as 32 lowercase hex digits (the `trace_id` log field).
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    fn from_span_context(sc: &SpanContext) -> Option<Self> {
        sc.is_valid().then(|| Self {
            trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
            sampled: sc.is_sampled(),
        })
    }

    fn remote_context(&self) -> opentelemetry::Context {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes(self.trace_id.to_be_bytes()),
            SpanId::from_bytes(self.span_id.to_be_bytes()),
            flags,
            true,
            TraceState::default(),
        ))
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

fn random_span_id() -> u64 {
    rand::random::<u64>().max(1)
}

/// `span` starts a trace (an HTTP request, an ingested frame): records its
/// `trace_id` field and returns its context, to hand to the next stage.
pub fn start_trace(span: &Span) -> TraceParent {
    let tp = otel_context(span).unwrap_or_else(TraceParent::random);
    remember(span, tp);
    tp
}

/// `span` continues the trace of a message's `traceparent` (a frame job, a
/// detection result): with export on it becomes the child of that context;
/// its `trace_id` field is recorded either way. Returns the context to hand
/// on. A missing or malformed `traceparent` starts a new trace.
pub fn continue_trace(span: &Span, traceparent: Option<&str>) -> TraceParent {
    let Some(parent) = traceparent.and_then(TraceParent::parse) else {
        return start_trace(span);
    };
    // Only possible before the span is first entered; then it is a no-op
    // (also without the OpenTelemetry layer).
    let _ = span.set_parent(parent.remote_context());
    let tp = otel_context(span).unwrap_or(TraceParent {
        span_id: random_span_id(),
        ..parent
    });
    remember(span, tp);
    tp
}

/// The context to hand to the next stage from within `span` (or the nearest
/// span above it that started or continued a trace); a new trace if none did.
pub fn traceparent(span: &Span) -> TraceParent {
    if let Some(tp) = otel_context(span) {
        return tp;
    }
    let mut found = None;
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<Registry>() {
            found = registry.span(id).and_then(|s| {
                s.scope()
                    .find_map(|s| s.extensions().get::<TraceParent>().copied())
            });
        }
    });
    found.unwrap_or_else(TraceParent::random)
}

fn otel_context(span: &Span) -> Option<TraceParent> {
    TraceParent::from_span_context(span.context().span().span_context())
}

/// Records `trace_id` and keeps the context with the span (for
/// [`traceparent`] when spans are not exported).
fn remember(span: &Span, tp: TraceParent) {
    span.record("trace_id", tp.trace_id_hex());
    span.with_subscriber(|(id, dispatch)| {
        if let Some(s) = dispatch.downcast_ref::<Registry>().and_then(|r| r.span(id)) {
            s.extensions_mut().replace(tp);
        }
    });
}

/// [`init`] as `cfg.log` says, then report what loading `cfg` warned about.
pub fn init_for(cfg: &crate::config::Config, service: &str) -> Telemetry {
    let telemetry = init_with(cfg.log.format, &cfg.log.level, &cfg.telemetry, service);
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    telemetry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip_and_bad_ones_are_refused() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(s).unwrap();
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id, 0x00f0_67aa_0ba9_02b7);
        assert!(tp.sampled);
        assert_eq!(tp.to_string(), s);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_endpoint_gets_the_traces_path_unless_it_has_one() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector/otlp/v1/traces"),
            "http://collector/otlp/v1/traces"
        );
    }

    #[test]
    fn without_export_stages_share_the_trace_id_through_the_traceparent() {
        let (dispatch, guard) =
            dispatch(LogFormat::Pretty, "info", &TelemetryConfig::default(), "t");
        assert!(!guard.exporting());
        tracing::dispatcher::with_default(&dispatch, || {
            let ingest = tracing::info_span!("frame.ingest", trace_id = tracing::field::Empty);
            let started = start_trace(&ingest);
            let inner = ingest.in_scope(|| tracing::info_span!("enqueue"));
            assert_eq!(traceparent(&inner), started, "found on the span above");
            let detect = tracing::info_span!("frame.detect", trace_id = tracing::field::Empty);
            let handed = continue_trace(&detect, Some(&started.to_string()));
            assert_eq!(handed.trace_id, started.trace_id);
            assert_ne!(handed.span_id, started.span_id);
            let publish = tracing::info_span!("frame.publish", trace_id = tracing::field::Empty);
            assert_eq!(
                continue_trace(&publish, Some(&handed.to_string())).trace_id,
                started.trace_id
            );
            // No traceparent (a job from before this field): a trace of its own.
            let old = tracing::info_span!("frame.detect", trace_id = tracing::field::Empty);
            assert_ne!(continue_trace(&old, None).trace_id, started.trace_id);
        });
        // A stage whose span nobody records (its level filtered out) still
        // hands the trace on.
        let parent = TraceParent::random();
        let handed = continue_trace(&Span::none(), Some(&parent.to_string()));
        assert_eq!(handed.trace_id, parent.trace_id);
        assert_ne!(handed.span_id, parent.span_id);
    }
}
