//! Request rate limiting: at most `limit` admitted requests in any `window`.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{RateLimitInfo, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub info: RateLimitInfo,
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Count one request against `key` in the current `window` and decide.
    ///
    /// Atomic: concurrent callers sharing the backend (every gateway replica
    /// when it is Redis) never admit more than `limit` requests in any window.
    /// `reset_after` is the time until the next slot frees.
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision>;

    /// Decide as [`RateLimiter::hit`] would, without counting anything: for
    /// limits that count only some outcomes (failed log-ins), checked before
    /// the work and hit after it.
    async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision>;

    /// Whether the backend answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;
}
