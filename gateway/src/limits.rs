//! Per-endpoint rate limits (documented for the API-key endpoints, per user
//! per minute), the anonymous endpoints' limits per client address and per
//! email, and a per-client cap on password hashes in flight. Counted by the
//! configured limiter: in-process when embedded, Redis (shared by every
//! replica) otherwise; the in-flight cap is per node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes_shared::error::RateLimitInfo;

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
            Self::Probe => "devices:probe",
        }
    }

    /// Requests per minute.
    pub fn per_minute(self) -> u32 {
        match self {
            Self::KeyCreate | Self::KeyRevoke | Self::Probe => 10,
            Self::KeyRead => 60,
            Self::KeyUpdate => 20,
            Self::KeyRotate => 5,
        }
    }
}

impl AppState {
    /// Count a request of `subject` (a user id) against `bucket`.
    pub async fn rate_limit(&self, subject: &str, bucket: Bucket) -> Result<()> {
        let key = format!("{subject}:{}", bucket.name());
        self.limit(&key, bucket.per_minute(), Duration::from_secs(60))
            .await
    }

    /// Refuse when `key` already counts `limit` in `window`, counting nothing
    /// (see [`Self::record`]). Fails open like [`Self::limit`].
    pub async fn check_limit(&self, key: &str, limit: u32, window: Duration) -> Result<()> {
        match self.ask(key, self.limiter.peek(key, limit, window)).await {
            Some(d) if !d.allowed => {
                context::set_rate_limit(d.info);
                Err(Error::RateLimited(d.info))
            }
            _ => Ok(()),
        }
    }

    /// Count one event (a failed log-in) against `key`, whatever the outcome.
    pub async fn record(&self, key: &str, limit: u32, window: Duration) {
        self.ask(key, self.limiter.hit(key, limit, window)).await;
    }

    /// Count one request against `key`: at most `limit` per `window`.
    ///
    /// When the limiter's backend is down this fails open (logged): refusing
    /// every call because Redis blinked would be worse.
    pub async fn limit(&self, key: &str, limit: u32, window: Duration) -> Result<()> {
        let Some(d) = self.ask(key, self.limiter.hit(key, limit, window)).await else {
            return Ok(());
        };
        context::set_rate_limit(d.info);
        if d.allowed {
            Ok(())
        } else {
            Err(Error::RateLimited(d.info))
        }
    }

    /// One limiter call, failing open: `None` when the backend is down. The
    /// first failure is noted for the rest of the request, whose later calls
    /// then skip the backend instead of waiting out its deadline again.
    async fn ask(
        &self,
        key: &str,
        call: impl std::future::Future<Output = Result<panoptes_shared::ports::RateDecision>>,
    ) -> Option<panoptes_shared::ports::RateDecision> {
        if context::limiter_down() {
            return None;
        }
        match call.await {
            Ok(d) => Some(d),
            Err(e) => {
                context::set_limiter_down();
                tracing::warn!(error = %e, key, "rate limiter unavailable; failing open");
                None
            }
        }
    }
}

/// The limits on the anonymous endpoints (`auth.*` in the config).
#[derive(Debug, Clone, Copy)]
pub struct AuthLimits {
    pub signups_per_client_per_hour: u32,
    pub logins_per_client_per_minute: u32,
    pub login_failures_per_email_per_client: u32,
    pub login_failures_per_email: u32,
}

impl From<&panoptes_shared::config::AuthConfig> for AuthLimits {
    fn from(c: &panoptes_shared::config::AuthConfig) -> Self {
        Self {
            signups_per_client_per_hour: c.signups_per_client_per_hour,
            logins_per_client_per_minute: c.logins_per_client_per_minute,
            login_failures_per_email_per_client: c.login_failures_per_email_per_client,
            login_failures_per_email: c.login_failures_per_email,
        }
    }
}

/// At most `per_client` units of some expensive work (a password hash) in
/// flight per client address on this node, so one client cannot fill the
/// shared queue and everyone else still gets a turn.
pub struct ClientGate {
    per_client: usize,
    // std Mutex: a counter update, never held across an await.
    inflight: Mutex<HashMap<IpAddr, usize>>,
}

/// A unit of work admitted by [`ClientGate::enter`]; leaving is on drop.
pub struct GatePass {
    gate: Arc<ClientGate>,
    ip: IpAddr,
}

impl ClientGate {
    pub fn new(per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// Admit one unit for `ip`, or 429 when it already has `per_client`.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Result<GatePass> {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.per_client {
            let limit = u32::try_from(self.per_client).unwrap_or(u32::MAX);
            let info = RateLimitInfo {
                limit,
                remaining: 0,
                window: Duration::from_secs(1),
                reset_after: Duration::from_secs(1),
            };
            context::set_rate_limit(info);
            return Err(Error::RateLimited(info));
        }
        *n += 1;
        Ok(GatePass {
            gate: self.clone(),
            ip,
        })
    }

    /// Units in flight for `ip`.
    pub fn inflight(&self, ip: IpAddr) -> usize {
        let map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        let mut map = self.gate.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// An email as it appears in limiter keys and logs: a digest, never the address.
pub fn email_tag(email: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(email.as_bytes());
    hex::encode(&digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_caps_each_client_and_frees_on_drop() {
        let gate = ClientGate::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let p1 = gate.enter(a).unwrap();
        let _p2 = gate.enter(a).unwrap();
        assert!(matches!(gate.enter(a), Err(Error::RateLimited(_))));
        let _pb = gate.enter(b).expect("another client is not affected");
        drop(p1);
        let _p3 = gate.enter(a).expect("a finished unit frees its place");
        assert_eq!(gate.inflight(a), 2);
    }

    #[test]
    fn email_tags_hide_the_address() {
        let t = email_tag("ops@example.com");
        assert_eq!(t.len(), 24);
        assert!(!t.contains("ops"));
        assert_eq!(t, email_tag("ops@example.com"));
    }
}
