//! The error table and the error response. Every failure leaves the gateway
//! as the documented envelope with `success: false`, a stable UPPER_SNAKE
//! `error.code` and, for validation errors, the field at fault.
//!
//! Domain errors map to codes in ONE exhaustive match (`From<Error>`); 5xx
//! bodies never carry internal text: the cause chain is logged once by the
//! request middleware.

use std::marker::PhantomData;

use panoptes_shared::Error;
use panoptes_shared::error::RateLimitInfo;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Enum, Object};
use serde_json::{Value, json};

use super::context;
use super::envelope::Meta;

/// Every error code the API returns. This enum is published in the OpenAPI
/// document and the README; codes are stable: add, never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: the request is malformed or a field is invalid (`error.details.field` names it).
    ValidationError,
    /// 401: credentials are missing, invalid, expired or revoked.
    Unauthorized,
    /// 403: authenticated, but this operation needs another kind of credential or role.
    Forbidden,
    /// 403: the API key lacks the scope named in `error.details.requiredScope`.
    ForbiddenScope,
    /// 404: no such resource for this user (another tenant's resource is also 404).
    NotFound,
    /// 405: the path exists but not with this method.
    MethodNotAllowed,
    /// 409: the resource already exists or the change conflicts with its state.
    Conflict,
    /// 413: the request body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the body's media type is not the one the endpoint takes (`application/json`, or `image/jpeg` for frames).
    UnsupportedMediaType,
    /// 429: too many requests; retry after `Retry-After` seconds.
    RateLimited,
    /// 429: the monthly quota of a metered feature is used up.
    QuotaExceeded,
    /// 403: the device's plan does not include this capability.
    PlanRequired,
    /// 409: the device is offline.
    DeviceOffline,
    /// 409: the scene is inactive.
    SceneInactive,
    /// 429: the user already holds the maximum number of SSE streams.
    SseConnectionLimit,
    /// 409: a per-account cap is reached (`error.details.limit`), e.g. devices per user.
    ResourceLimit,
    /// 500: an unexpected error; the request id identifies it in the logs.
    InternalError,
    /// 501: the endpoint exists but its capability is not available yet.
    NotImplemented,
    /// 503: a dependency (store, Redis) is unavailable; retry later.
    ServiceUnavailable,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            ValidationError => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden | ForbiddenScope | PlanRequired => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict | DeviceOffline | SceneInactive | ResourceLimit => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RateLimited | QuotaExceeded | SseConnectionLimit => StatusCode::TOO_MANY_REQUESTS,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            ValidationError => "VALIDATION_ERROR",
            Unauthorized => "UNAUTHORIZED",
            Forbidden => "FORBIDDEN",
            ForbiddenScope => "FORBIDDEN_SCOPE",
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Conflict => "CONFLICT",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            RateLimited => "RATE_LIMITED",
            QuotaExceeded => "QUOTA_EXCEEDED",
            PlanRequired => "PLAN_REQUIRED",
            DeviceOffline => "DEVICE_OFFLINE",
            SceneInactive => "SCENE_INACTIVE",
            SseConnectionLimit => "SSE_CONNECTION_LIMIT",
            ResourceLimit => "RESOURCE_LIMIT",
            InternalError => "INTERNAL_ERROR",
            NotImplemented => "NOT_IMPLEMENTED",
            ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// One line on what the code means, for the published table.
    pub fn meaning(self) -> &'static str {
        use ErrorCode::*;
        match self {
            ValidationError => {
                "malformed or invalid request; `error.details.field` names the field"
            }
            Unauthorized => "credentials missing, invalid, expired or revoked",
            Forbidden => "this credential kind or role may not do this",
            ForbiddenScope => "the API key lacks `error.details.requiredScope`",
            NotFound => "no such resource for this user (other tenants' resources included)",
            MethodNotAllowed => "the path does not accept this method",
            Conflict => "already exists, or conflicts with the resource's state",
            PayloadTooLarge => "body larger than the configured limit",
            UnsupportedMediaType => {
                "wrong body media type (application/json; image/jpeg for frames)"
            }
            RateLimited => "too many requests; honour `Retry-After`",
            QuotaExceeded => "monthly quota used up",
            PlanRequired => "the device's plan lacks this capability",
            DeviceOffline => "the device is offline",
            SceneInactive => "the scene is inactive",
            SseConnectionLimit => "too many open SSE streams for this user",
            ResourceLimit => "a per-account cap is reached (`error.details.limit`)",
            InternalError => "unexpected error; quote `meta.requestId`",
            NotImplemented => "capability not available yet",
            ServiceUnavailable => "a dependency is down; retry later",
        }
    }

    /// Every code, for the published table.
    pub fn all() -> &'static [ErrorCode] {
        use ErrorCode::*;
        &[
            ValidationError,
            Unauthorized,
            Forbidden,
            ForbiddenScope,
            NotFound,
            MethodNotAllowed,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            RateLimited,
            QuotaExceeded,
            PlanRequired,
            DeviceOffline,
            SceneInactive,
            SseConnectionLimit,
            ResourceLimit,
            InternalError,
            NotImplemented,
            ServiceUnavailable,
        ]
    }
}

/// `error` in a failed envelope.
#[derive(Debug, Clone, Object)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    /// Machine-readable specifics: `{field, reason}` for validation errors,
    /// `{requiredScope}` for scope errors, `{retryAfterSeconds}` for limits.
    pub details: Option<Value>,
}

/// The envelope of every error response.
#[derive(Debug, Clone, Object)]
#[oai(rename = "ErrorResponse")]
pub struct ErrorBody {
    pub success: bool,
    #[oai(rename = "statusCode")]
    pub status_code: u16,
    pub message: String,
    pub data: Option<Value>,
    pub error: ErrorInfo,
    pub meta: Meta,
}

/// Which error statuses an operation can return, for its OpenAPI entry.
pub trait StatusSet: Send + Sync + 'static {
    const STATUSES: &'static [u16];
}

macro_rules! status_sets {
    ($($(#[$doc:meta])* $name:ident = [$($s:literal),+];)+) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl StatusSet for $name {
            const STATUSES: &'static [u16] = &[$($s),+];
        }
    )+};
}

status_sets! {
    /// Sign-up.
    SignupErrors = [400, 409, 413, 415, 429, 500, 503];
    /// Log-in.
    LoginErrors = [400, 401, 413, 415, 429, 500, 503];
    /// Authenticated reads.
    ReadErrors = [400, 401, 403, 404, 500, 503];
    /// Authenticated writes with a JSON body.
    WriteErrors = [400, 401, 403, 404, 409, 413, 415, 500, 503];
    /// API-key management: session only, rate limited.
    KeyErrors = [400, 401, 403, 404, 409, 413, 415, 429, 500, 503];
    /// SSE streams: authenticated reads that can also hit the stream limit.
    StreamErrors = [400, 401, 403, 404, 429, 500, 503];
    /// Starting analysis: also device offline / scene inactive (409), plan (403), quota (429).
    ControlErrors = [400, 401, 403, 404, 409, 413, 415, 429, 500, 503];
    /// Reads with a JSON body (searches).
    QueryErrors = [400, 401, 403, 413, 415, 500, 503];
    /// Edge push: also frame too large (413), wrong media type (415), too fast (429).
    PushErrors = [400, 401, 403, 404, 409, 413, 415, 429, 500, 503];
}

/// The content of an error response, independent of the operation.
#[derive(Debug, Clone)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    pub rate_limit: Option<RateLimitInfo>,
    /// Seconds for a `Retry-After` header (besides rate limits).
    pub retry_after: Option<u64>,
    /// The domain error behind a 5xx, logged by the middleware, never sent.
    pub cause: Option<String>,
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ErrorReply {}

impl ErrorReply {
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            success: false,
            status_code: self.code.status().as_u16(),
            message: self.message.clone(),
            data: None,
            error: ErrorInfo {
                code: self.code,
                details: self.details.clone(),
            },
            meta: context::meta(),
        }
    }
}

impl poem::error::ResponseError for ErrorReply {
    fn status(&self) -> StatusCode {
        self.code.status()
    }

    fn as_response(&self) -> Response {
        let mut resp = poem::web::Json(self.body().to_json())
            .with_status(self.code.status())
            .into_response();
        if let Some(info) = self.rate_limit {
            super::middleware::set_rate_limit_headers(resp.headers_mut(), &info, true);
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", poem::http::HeaderValue::from(secs));
        }
        resp
    }
}

/// An error response; `S` lists the statuses the operation documents.
pub struct ApiError<S = ReadErrors> {
    /// Boxed: handlers return `Result<_, ApiError>` and the happy path should stay small.
    pub reply: Box<ErrorReply>,
    _statuses: PhantomData<S>,
}

impl<S> std::fmt::Debug for ApiError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.reply.fmt(f)
    }
}

impl<S> ApiError<S> {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            reply: Box::new(ErrorReply {
                code,
                message: message.into(),
                details: None,
                rate_limit: None,
                retry_after: None,
                cause: None,
            }),
            _statuses: PhantomData,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.reply.details = Some(details);
        self
    }

    /// The same error, documented under another status set.
    pub fn cast<T>(self) -> ApiError<T> {
        ApiError {
            reply: self.reply,
            _statuses: PhantomData,
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(ErrorCode::ValidationError, format!("{field}: {message}"))
            .with_details(json!({ "field": field, "reason": message }))
    }
}

impl<S> From<ApiError<S>> for poem::Error {
    fn from(e: ApiError<S>) -> Self {
        poem::Error::from(*e.reply)
    }
}

impl<S> From<Error> for ApiError<S> {
    fn from(e: Error) -> Self {
        use ErrorCode as C;
        match e {
            Error::Validation(f) => Self::validation(&f.field, f.message),
            Error::NotFound(what) => Self::new(C::NotFound, format!("{what} not found")),
            Error::Conflict(m) => Self::new(C::Conflict, m),
            Error::Unauthorized(why) => Self::new(C::Unauthorized, why.message()),
            Error::ForbiddenScope(scope) => Self::new(
                C::ForbiddenScope,
                format!("this operation needs the `{scope}` scope"),
            )
            .with_details(json!({ "requiredScope": scope.as_str() })),
            Error::Forbidden(why) => Self::new(C::Forbidden, why),
            Error::RateLimited(info) => {
                let retry = info.reset_after.as_secs().max(1);
                let mut err = Self::new(
                    C::RateLimited,
                    format!(
                        "rate limit of {} requests per {} s reached; retry in {retry} s",
                        info.limit,
                        info.window.as_secs()
                    ),
                )
                .with_details(json!({ "retryAfterSeconds": retry, "limit": info.limit }));
                err.reply.rate_limit = Some(info);
                err
            }
            Error::StreamLimit { limit, retry_after } => {
                let retry = retry_after.as_secs().max(1);
                let mut err = Self::new(
                    C::SseConnectionLimit,
                    format!(
                        "at most {limit} streams per user are open; close one or retry in {retry} s"
                    ),
                )
                .with_details(json!({ "limit": limit, "retryAfterSeconds": retry }));
                err.reply.retry_after = Some(retry);
                err
            }
            Error::DeviceOffline { status, hint } => {
                Self::new(C::DeviceOffline, format!("the device is {status}: {hint}"))
                    .with_details(json!({ "deviceStatus": status }))
            }
            Error::SceneInactive => Self::new(
                C::SceneInactive,
                "the scene is inactive; set its status to `active` first",
            ),
            Error::QuotaExceeded(m) => Self::new(C::QuotaExceeded, m),
            Error::PlanRequired(m) => Self::new(C::PlanRequired, m),
            Error::NotImplemented(what) => {
                Self::new(C::NotImplemented, format!("{what} is not available yet"))
            }
            Error::Busy { what, retry_after } => {
                let retry = retry_after.as_secs().max(1);
                let mut err = Self::new(
                    C::ServiceUnavailable,
                    format!("the server is busy with {what}; retry in {retry} s"),
                )
                .with_details(json!({ "retryAfterSeconds": retry }));
                err.reply.retry_after = Some(retry);
                err
            }
            Error::LimitReached { what, limit } => Self::new(
                C::ResourceLimit,
                format!("at most {limit} {what} per account; delete one first"),
            )
            .with_details(json!({ "limit": limit, "resource": what })),
            e @ Error::Unavailable { .. } => {
                let mut err = Self::new(C::ServiceUnavailable, format!("{e}; retry later"));
                err.reply.cause = Some(chain(&e));
                err
            }
            e @ Error::Internal(_) => {
                let mut err = Self::new(
                    C::InternalError,
                    "internal error; quote the request id when reporting it",
                );
                err.reply.cause = Some(chain(&e));
                err
            }
        }
    }
}

impl<S> From<panoptes_shared::error::FieldError> for ApiError<S> {
    fn from(e: panoptes_shared::error::FieldError) -> Self {
        Self::validation(&e.field, e.message)
    }
}

/// The error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn status_description(status: u16) -> &'static str {
    match status {
        400 => {
            "Validation error: malformed JSON, wrong type, unknown enum value or out-of-range field (VALIDATION_ERROR)"
        }
        401 => "Missing, invalid, expired or revoked credentials (UNAUTHORIZED)",
        403 => {
            "Missing scope (FORBIDDEN_SCOPE), wrong credential kind / role (FORBIDDEN) or plan (PLAN_REQUIRED)"
        }
        404 => "Not found for this user (NOT_FOUND)",
        409 => {
            "Conflict with the resource's state (CONFLICT, DEVICE_OFFLINE, SCENE_INACTIVE) or a per-account cap (RESOURCE_LIMIT)"
        }
        413 => "Body too large (PAYLOAD_TOO_LARGE)",
        415 => "Wrong body media type (UNSUPPORTED_MEDIA_TYPE)",
        429 => {
            "Rate limited (RATE_LIMITED; see Retry-After and RateLimit headers) or quota used up (QUOTA_EXCEEDED)"
        }
        500 => "Internal error (INTERNAL_ERROR)",
        501 => "Not implemented yet (NOT_IMPLEMENTED)",
        503 => {
            "A dependency is unavailable, or the node is saturated (SERVICE_UNAVAILABLE; see Retry-After)"
        }
        _ => "Error",
    }
}

impl<S: StatusSet> ApiResponse for ApiError<S> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: S::STATUSES
                .iter()
                .map(|&status| MetaResponse {
                    description: status_description(status),
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorBody::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

/// Result type of every handler.
pub type ApiResult<T, S = ReadErrors> = Result<T, ApiError<S>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_strings_match_the_published_enum() {
        for code in ErrorCode::all() {
            assert_eq!(
                code.to_json(),
                Some(Value::String(code.as_str().to_owned()))
            );
        }
    }
}
