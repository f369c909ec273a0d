//! Per-endpoint rate limits (documented for the API-key endpoints, per user
//! per minute) and login throttling (per email). Counted by the configured
//! limiter: in-process when embedded, Redis (shared by every replica) otherwise.

use std::time::Duration;

use panoptes_shared::{Error, Result};

use crate::http::context;
use crate::state::AppState;

#[derive(Debug, Clone, Copy)]
pub enum Bucket {
    KeyCreate,
    KeyRead,
    KeyUpdate,
    KeyRevoke,
    KeyRotate,
    Login,
    Probe,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Self::KeyCreate => "api-keys:create",
            Self::KeyRead => "api-keys:read",
            Self::KeyUpdate => "api-keys:update",
            Self::KeyRevoke => "api-keys:revoke",
            Self::KeyRotate => "api-keys:rotate",
            Self::Login => "auth:login",
            Self::Probe => "devices:probe",
        }
    }

    /// Requests per minute.
    pub fn per_minute(self) -> u32 {
        match self {
            Self::KeyCreate | Self::KeyRevoke | Self::Login | Self::Probe => 10,
            Self::KeyRead => 60,
            Self::KeyUpdate => 20,
            Self::KeyRotate => 5,
        }
    }
}

impl AppState {
    /// Count a request of `subject` (a user id, an email) against `bucket`.
    pub async fn rate_limit(&self, subject: &str, bucket: Bucket) -> Result<()> {
        let key = format!("{subject}:{}", bucket.name());
        self.limit(&key, bucket.per_minute(), Duration::from_secs(60))
            .await
    }

    /// Count one request against `key`: at most `limit` per `window`.
    ///
    /// When the limiter's backend is down this fails open (logged): refusing
    /// every call because Redis blinked would be worse.
    pub async fn limit(&self, key: &str, limit: u32, window: Duration) -> Result<()> {
        match self.limiter.hit(key, limit, window).await {
            Ok(d) => {
                context::set_rate_limit(d.info);
                if d.allowed {
                    Ok(())
                } else {
                    Err(Error::RateLimited(d.info))
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, key, "rate limiter unavailable; allowing request");
                Ok(())
            }
        }
    }
}
