//! Per-request context, carried in a task-local by the request middleware:
//! the request id (echoed as `X-Request-Id` and `meta.requestId`) and the
//! rate-limit state an endpoint checked (sent back as `RateLimit` headers).

use std::sync::Mutex;

use panoptes_shared::error::RateLimitInfo;

use super::envelope::Meta;

pub struct RequestContext {
    pub request_id: String,
    // std Mutex: set once by a handler, read once by the middleware; never held across an await.
    pub rate_limit: Mutex<Option<RateLimitInfo>>,
}

tokio::task_local! {
    pub static CONTEXT: RequestContext;
}

/// The current request id (a fresh one outside a request, e.g. in unit tests).
pub fn request_id() -> String {
    CONTEXT
        .try_with(|c| c.request_id.clone())
        .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string())
}

/// Record the rate limit this request was checked against.
pub fn set_rate_limit(info: RateLimitInfo) {
    let _ =
        CONTEXT.try_with(|c| *c.rate_limit.lock().unwrap_or_else(|p| p.into_inner()) = Some(info));
}

/// `meta` for an envelope built now.
pub fn meta() -> Meta {
    Meta {
        timestamp: panoptes_shared::time::rfc3339(chrono::Utc::now()),
        request_id: request_id(),
        pagination: None,
    }
}
