//! Per-request context, carried in a task-local by the request middleware:
//! the request id (echoed as `X-Request-Id` and `meta.requestId`) and the
//! rate-limit state an endpoint checked (sent back as `RateLimit` headers).

use std::sync::Mutex;

use panoptes_shared::error::RateLimitInfo;

use super::envelope::Meta;

pub struct RequestContext {
    pub request_id: String,
    /// Where the request comes from (see [`super::client_ip`]).
    pub client_ip: std::net::IpAddr,
    // std Mutex: set once by a handler, read once by the middleware; never held across an await.
    pub rate_limit: Mutex<Option<RateLimitInfo>>,
    /// The outcome of checking an API key in this request (by key hash): an
    /// operation that accepts several credential kinds may check one token
    /// twice, and a store that is down must cost its timeout once, not twice.
    pub key_check: Mutex<Option<(String, KeyCheck)>>,
    /// Set once the rate limiter failed in this request: later checks of the
    /// same request fail open at once instead of waiting out its deadline again.
    pub limiter_down: std::sync::atomic::AtomicBool,
}

/// What checking an API key found, kept for the rest of the request.
#[derive(Debug, Clone)]
pub enum KeyCheck {
    Valid(crate::auth::Caller),
    Refused(panoptes_shared::error::AuthFailure),
    StoreUnavailable,
}

/// Whether the rate limiter already failed in this request.
pub fn limiter_down() -> bool {
    CONTEXT
        .try_with(|c| c.limiter_down.load(std::sync::atomic::Ordering::Relaxed))
        .unwrap_or(false)
}

/// Note that the rate limiter failed in this request.
pub fn set_limiter_down() {
    let _ = CONTEXT.try_with(|c| {
        c.limiter_down
            .store(true, std::sync::atomic::Ordering::Relaxed)
    });
}

/// The remembered outcome for the key with this hash, if it was checked.
pub fn key_check(hash: &str) -> Option<KeyCheck> {
    CONTEXT
        .try_with(|c| {
            let memo = c.key_check.lock().unwrap_or_else(|p| p.into_inner());
            memo.as_ref()
                .filter(|(h, _)| h == hash)
                .map(|(_, k)| k.clone())
        })
        .ok()
        .flatten()
}

/// Remember the outcome of checking the key with this hash.
pub fn set_key_check(hash: &str, check: KeyCheck) {
    let _ = CONTEXT.try_with(|c| {
        *c.key_check.lock().unwrap_or_else(|p| p.into_inner()) = Some((hash.to_owned(), check));
    });
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

/// The address the current request comes from (unspecified outside a request).
pub fn client_ip() -> std::net::IpAddr {
    CONTEXT
        .try_with(|c| c.client_ip)
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
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
