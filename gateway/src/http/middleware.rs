//! The request middleware, outermost on every route: assigns the request id,
//! turns every error (ours, poem's, poem-openapi's) into the documented
//! envelope, adds `X-Request-Id` and rate-limit headers, records metrics and
//! writes one log line per request (with the internal cause of any 5xx), all
//! in one span per request that starts a trace (see `request_span`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use panoptes_shared::error::RateLimitInfo;
use panoptes_shared::telemetry;
use poem::http::{HeaderMap, HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::OperationId;
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use tracing::{Instrument, Span};

use super::allow::AllowTable;
use super::body::BodyLimit;
use std::net::{IpAddr, Ipv4Addr};

use super::client_ip::TrustedProxies;
use super::context::{CONTEXT, RequestContext};
use super::error::{ApiError, ErrorCode, ErrorReply};
use super::jpeg::FrameLimit;
use super::metrics::HttpMetrics;

const REQUEST_ID: &str = "x-request-id";

pub struct RequestLayer {
    pub metrics: Arc<HttpMetrics>,
    /// JSON bodies.
    pub body_limit: usize,
    /// Frames pushed by edge devices.
    pub frame_limit: usize,
    pub allow: Arc<AllowTable>,
    pub proxies: Arc<TrustedProxies>,
}

impl<E: Endpoint> Middleware<E> for RequestLayer {
    type Output = RequestEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestEndpoint {
            inner,
            metrics: self.metrics.clone(),
            body_limit: self.body_limit,
            frame_limit: self.frame_limit,
            allow: self.allow.clone(),
            proxies: self.proxies.clone(),
        }
    }
}

pub struct RequestEndpoint<E> {
    inner: E,
    metrics: Arc<HttpMetrics>,
    body_limit: usize,
    frame_limit: usize,
    allow: Arc<AllowTable>,
    proxies: Arc<TrustedProxies>,
}

/// A client-sent id is kept if it is short and plain; otherwise a UUID is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The request's span: method, the documented route it matched (else its
/// path, never its query string, where tickets travel), request id, and the
/// status once known. Named `METHOD /route` for trace viewers; an unmatched
/// path does not go into the name, which must stay a small set.
fn request_span(req: &Request, id: &str, allow: &AllowTable) -> Span {
    let method = req.method().as_str();
    let span = tracing::info_span!(
        "request",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        method,
        route = tracing::field::Empty,
        request_id = id,
        status = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    // Nobody listens (logs above info, no export): no route lookup either.
    if !span.is_disabled() {
        let path = req.uri().path();
        let template = allow.template(path);
        // Before the span is first entered, the name still reaches the exporter.
        match &template {
            Some(t) => span.record("otel.name", format!("{method} {t}")),
            None => span.record("otel.name", method),
        };
        span.record("route", template.as_deref().unwrap_or(path));
    }
    span
}

impl<E: Endpoint> Endpoint for RequestEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let id = request_id(&req);
        let span = request_span(&req, &id, &self.allow);
        telemetry::start_trace(&span);
        self.respond(req, id).instrument(span).await
    }
}

impl<E: Endpoint> RequestEndpoint<E> {
    async fn respond(&self, mut req: Request, id: String) -> poem::Result<Response> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        req.set_data(BodyLimit(self.body_limit));
        req.set_data(FrameLimit(self.frame_limit));
        // Each extractor enforces its own limit; this refuses early what no
        // endpoint would take.
        let largest = self.body_limit.max(self.frame_limit);
        let too_large = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|len| len > largest);
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let client_ip = self.proxies.client_ip(
            peer,
            req.headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let ctx = RequestContext {
            request_id: id.clone(),
            client_ip,
            rate_limit: Mutex::new(None),
            key_check: Mutex::new(None),
            limiter_down: std::sync::atomic::AtomicBool::new(false),
        };
        let (mut resp, operation, cause) = CONTEXT
            .scope(ctx, async {
                let (mut resp, operation, cause) = if too_large {
                    let e = ApiError::<()>::new(
                        ErrorCode::PayloadTooLarge,
                        format!("request body is larger than {largest} bytes"),
                    );
                    (poem::Error::from(e).into_response(), None, None)
                } else {
                    match self.inner.call(req).await {
                        Ok(out) => {
                            let resp = out.into_response();
                            let op = resp.data::<OperationId>().map(|o| o.0);
                            (resp, op, None)
                        }
                        Err(err) => {
                            let op = err.data::<OperationId>().map(|o| o.0);
                            let cause = err
                                .downcast_ref::<ErrorReply>()
                                .and_then(|r| r.cause.clone());
                            (error_response(err), op, cause)
                        }
                    }
                };
                let rate =
                    CONTEXT.with(|c| *c.rate_limit.lock().unwrap_or_else(|p| p.into_inner()));
                if let Some(info) = rate {
                    let refused = resp.status() == StatusCode::TOO_MANY_REQUESTS;
                    set_rate_limit_headers(resp.headers_mut(), &info, refused);
                }
                (resp, operation, cause)
            })
            .await;
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(v) = self
                .allow
                .allowed(&path)
                .and_then(|a| HeaderValue::from_str(&a).ok())
        {
            resp.headers_mut().insert(poem::http::header::ALLOW, v);
        }
        let status = resp.status().as_u16();
        let span = Span::current();
        span.record("status", status);
        if status >= 500 {
            span.record("otel.status_code", "error");
        }
        let elapsed = started.elapsed();
        self.metrics.observe(
            operation.unwrap_or("unmatched"),
            method.as_str(),
            status,
            elapsed,
        );
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if let Some(cause) = cause {
            tracing::error!(request_id = %id, %method, %path, status, latency_ms, operation, %cause, "request failed");
        } else {
            tracing::info!(request_id = %id, %method, %path, status, latency_ms, operation, "request");
        }
        Ok(resp)
    }
}

/// Any error that escaped a handler (or never reached one), as an envelope.
fn error_response(err: poem::Error) -> Response {
    let api = |e: ApiError<()>| poem::Error::from(e).into_response();
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        return api(ApiError::validation(e.name, clean_param_reason(&e.reason)));
    }
    if let Some(e) = err.downcast_ref::<ParsePathError>() {
        // poem-openapi names path parameters `param0`, `param1`... internally;
        // every path parameter of this API is `{id}` (the OpenAPI test checks it).
        let name = if e.name.starts_with("param") {
            "id"
        } else {
            e.name
        };
        return api(ApiError::validation(name, clean_param_reason(&e.reason)));
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        return api(ApiError::validation("body", e.reason.clone()));
    }
    if err.is::<ContentTypeError>() {
        return api(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the request body must be application/json",
        ));
    }
    if err.is::<AuthorizationError>() {
        return api(ApiError::new(
            ErrorCode::Unauthorized,
            panoptes_shared::error::AuthFailure::Missing.message(),
        ));
    }
    if err.is::<ErrorReply>() {
        return err.into_response();
    }
    let status = err.status();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        s if s.is_client_error() => ErrorCode::ValidationError,
        _ => ErrorCode::InternalError,
    };
    let message = match code {
        ErrorCode::NotFound => "no such endpoint".to_owned(),
        ErrorCode::MethodNotAllowed => "this endpoint does not accept that method".to_owned(),
        ErrorCode::InternalError => {
            "internal error; quote the request id when reporting it".to_owned()
        }
        other => other.as_str().to_lowercase().replace('_', " "),
    };
    api(ApiError::new(code, message))
}

/// poem-openapi's parameter messages start with a type name; keep them short.
fn clean_param_reason(reason: &str) -> String {
    if reason.contains("expects an input value") {
        "is required".to_owned()
    } else if reason.contains("\"string(uuid)\"") {
        "must be a UUID".to_owned()
    } else if reason.contains("integer(") && reason.contains("failed to parse") {
        "must be a whole number".to_owned()
    } else if let Some(rule) = reason.strip_prefix("verification failed. ") {
        format!("out of range ({rule})")
    } else {
        reason.to_owned()
    }
}

/// `RateLimit-Policy` / `RateLimit` (IETF httpapi draft) and, when refused, `Retry-After`.
pub fn set_rate_limit_headers(headers: &mut HeaderMap, info: &RateLimitInfo, refused: bool) {
    let reset = info.reset_after.as_secs().max(1);
    let policy = format!("{};w={}", info.limit, info.window.as_secs());
    let current = format!(
        "limit={}, remaining={}, reset={reset}",
        info.limit, info.remaining
    );
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", current)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    if refused {
        headers.insert("retry-after", HeaderValue::from(reset));
    }
}
