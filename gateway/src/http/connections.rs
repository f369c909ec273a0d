//! Admission of client connections: a global cap, a per-client cap and a
//! small budget reserved for health probes, counted from accept to close.
//!
//! Every accepted connection holds a [`Permit`] for its whole life (direct
//! event streams included), and dropping it is the only way a count goes
//! down, so no path (error, panic, shutdown) can leak a slot. The accept loop
//! takes room for the next connection *before* accepting it: while
//! `max + reserved` connections are open, new ones wait in the kernel's
//! backlog instead of costing a file descriptor each.
//!
//! - Past `max` ordinary connections, a connection is admitted on the
//!   reserved budget: it carries one request, and only `/healthz`, `/readyz`
//!   and `/metrics` are served on it (anything else: 503, then close). So a
//!   full gateway still answers its probes.
//! - A client (TCP peer address) that already holds `per_client` connections
//!   has the next one answered 429 and closed at once. Trusted proxies are
//!   not capped per client: every client behind them shares their address.

use super::client_ip::TrustedProxies;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes_shared::config::ServerConfig;
use poem_openapi::types::ToJSON;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ErrorCode, ErrorReply};
use super::metrics::{CloseReason, ConnectionMetrics, HttpMetrics};

/// The only routes a connection on the reserved budget may ask for.
pub fn is_health_path(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Is this TCP peer a trusted proxy?
pub type IsTrustedProxy = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The caps in force (see `server.*` in the config).
#[derive(Clone)]
pub struct ConnectionLimits {
    /// Ordinary connections open at once.
    pub max: usize,
    /// Connections one client address may hold at once.
    pub per_client: usize,
    /// Extra connections, beyond `max`, that may only reach the health routes.
    pub reserved: usize,
    /// How long a connection may go without a complete request head, from
    /// when it opened or its previous response was sent.
    pub idle_timeout: Duration,
    pub is_trusted_proxy: IsTrustedProxy,
}

impl ConnectionLimits {
    /// From `server.*`. Raises the process's soft open-file limit to its hard
    /// limit and lowers the caps where the limit cannot hold them next to the
    /// descriptors the rest of the process needs.
    pub fn from_config(cfg: &ServerConfig) -> anyhow::Result<Self> {
        let proxies = TrustedProxies::parse(&cfg.trusted_proxies).map_err(anyhow::Error::msg)?;
        let mut limits = Self {
            max: cfg.max_connections,
            per_client: cfg.max_connections_per_client,
            reserved: cfg.reserved_health_connections,
            idle_timeout: Duration::from_millis(cfg.idle_connection_timeout_ms),
            is_trusted_proxy: Arc::new(move |ip| proxies.contains(ip)),
        };
        let fds = raise_fd_limit();
        limits.fit_fds(fds);
        // `max_connections` below the configured value: the open-file limit
        // could not hold it next to the descriptors the rest of the process needs.
        tracing::info!(
            fd_limit = fds,
            configured = cfg.max_connections,
            max_connections = limits.max,
            per_client = limits.per_client,
            reserved = limits.reserved,
            idle_timeout_ms = cfg.idle_connection_timeout_ms,
            "connection limits"
        );
        Ok(limits)
    }

    /// Keep `max + reserved` under the open-file limit, leaving a margin.
    fn fit_fds(&mut self, fd_limit: u64) {
        let fds = usize::try_from(fd_limit).unwrap_or(usize::MAX);
        let budget = fds.saturating_sub(fd_margin(fds));
        self.reserved = self.reserved.min(budget / 4);
        self.max = self.max.min(budget.saturating_sub(self.reserved)).max(1);
    }
}

/// Descriptors kept for everything but client connections: the listener,
/// the store and Redis pools, snapshot files, and the workers of `panoptes up`.
fn fd_margin(fd_limit: usize) -> usize {
    (fd_limit / 8).clamp(64, 1024)
}

/// The soft open-file limit after raising it to the hard limit.
fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// Counts open connections and admits new ones.
pub struct Gate {
    limits: ConnectionLimits,
    /// `max + reserved` permits: room for one connection each.
    room: Arc<Semaphore>,
    // std Mutex: a few integer updates per accept and close, never held across an await.
    counts: Mutex<Counts>,
    metrics: Arc<HttpMetrics>,
}

#[derive(Default)]
struct Counts {
    open: usize,
    reserved: usize,
    /// Connections per client address (trusted proxies not counted); an
    /// address leaves the map with its last connection.
    by_client: HashMap<IpAddr, usize>,
}

/// The next connection's client already holds `per_client` connections.
#[derive(Debug)]
pub struct ClientAtCap;

/// One open connection's slot, given back when dropped.
pub struct Permit {
    gate: Arc<Gate>,
    client: Option<IpAddr>,
    reserved: bool,
    // Dropped after `Permit::drop` has updated the counts.
    _room: OwnedSemaphorePermit,
}

impl Permit {
    /// Admitted on the reserved budget: one request, health routes only.
    pub fn reserved(&self) -> bool {
        self.reserved
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release(self.client, self.reserved);
    }
}

impl Gate {
    pub fn new(limits: ConnectionLimits, metrics: Arc<HttpMetrics>) -> Arc<Self> {
        metrics.connections.set_max(limits.max);
        Arc::new(Self {
            room: Arc::new(Semaphore::new(limits.max.saturating_add(limits.reserved))),
            limits,
            counts: Mutex::default(),
            metrics,
        })
    }

    pub fn idle_timeout(&self) -> Duration {
        self.limits.idle_timeout
    }

    pub fn metrics(&self) -> &ConnectionMetrics {
        &self.metrics.connections
    }

    /// Room for one more connection; waits while `max + reserved` are open.
    /// `None` only if the gate was closed (it never is).
    pub async fn room(&self) -> Option<OwnedSemaphorePermit> {
        self.room.clone().acquire_owned().await.ok()
    }

    /// Admit a connection from `peer` into `room`.
    pub fn admit(
        self: &Arc<Self>,
        room: OwnedSemaphorePermit,
        peer: IpAddr,
    ) -> Result<Permit, ClientAtCap> {
        let peer = peer.to_canonical();
        let client = (!(self.limits.is_trusted_proxy)(peer)).then_some(peer);
        let mut c = self.lock();
        if let Some(ip) = client {
            if c.by_client.get(&ip).copied().unwrap_or(0) >= self.limits.per_client {
                drop(c);
                self.metrics.connections.count_close(CloseReason::PerClient);
                return Err(ClientAtCap);
            }
            *c.by_client.entry(ip).or_default() += 1;
        }
        // `room` bounds the total, so this never exceeds the reserved budget.
        let reserved = c.open - c.reserved >= self.limits.max;
        c.open += 1;
        c.reserved += usize::from(reserved);
        self.publish(&c);
        Ok(Permit {
            gate: self.clone(),
            client,
            reserved,
            _room: room,
        })
    }

    fn release(&self, client: Option<IpAddr>, reserved: bool) {
        let mut c = self.lock();
        c.open = c.open.saturating_sub(1);
        c.reserved = c.reserved.saturating_sub(usize::from(reserved));
        if let Some(ip) = client {
            if let Entry::Occupied(mut n) = c.by_client.entry(ip) {
                *n.get_mut() -= 1;
                if *n.get() == 0 {
                    n.remove();
                }
            }
            // After a burst from many addresses, give the table's memory back.
            if c.by_client.capacity() > 64 && c.by_client.len() * 4 < c.by_client.capacity() {
                c.by_client.shrink_to_fit();
            }
        }
        self.publish(&c);
    }

    fn publish(&self, c: &Counts) {
        self.metrics
            .connections
            .set_open(c.open, c.reserved, c.by_client.len());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The error envelope for a connection refused outside the endpoint tree,
/// as JSON, and its request id.
pub fn refusal_body(code: ErrorCode, message: &str) -> (String, String) {
    let body = ErrorReply {
        code,
        message: message.to_owned(),
        details: None,
        rate_limit: None,
        retry_after: None,
        cause: None,
    }
    .body();
    (body.to_json_string(), body.meta.request_id)
}

/// A whole 429 response (the documented envelope, `Connection: close`) for
/// a client over its connection cap, to write straight to the socket.
pub fn over_cap_response() -> Vec<u8> {
    let (json, request_id) = refusal_body(
        ErrorCode::RateLimited,
        "too many open connections from this client",
    );
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\nx-request-id: {request_id}\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(
        max: usize,
        per_client: usize,
        reserved: usize,
        trusted: &[&str],
    ) -> ConnectionLimits {
        let proxies =
            TrustedProxies::parse(&trusted.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        ConnectionLimits {
            max,
            per_client,
            reserved,
            idle_timeout: Duration::from_secs(1),
            is_trusted_proxy: Arc::new(move |ip| proxies.contains(ip)),
        }
    }

    async fn admit(gate: &Arc<Gate>, ip: &str) -> Result<Permit, ClientAtCap> {
        let room = gate.room().await.unwrap();
        gate.admit(room, ip.parse().unwrap())
    }

    #[tokio::test]
    async fn a_client_is_capped_and_its_slots_come_back_when_connections_close() {
        let metrics = Arc::new(HttpMetrics::default());
        let gate = Gate::new(limits(10, 2, 0, &[]), metrics.clone());
        let a = admit(&gate, "10.0.0.1").await.unwrap();
        let b = admit(&gate, "::ffff:10.0.0.1").await.unwrap();
        assert!(admit(&gate, "10.0.0.1").await.is_err());
        let other = admit(&gate, "10.0.0.2").await.unwrap();
        assert_eq!(
            (metrics.connections.open(), metrics.connections.clients()),
            (3, 2)
        );
        assert_eq!(metrics.connections.closes(CloseReason::PerClient), 1);
        drop(a);
        let c = admit(&gate, "10.0.0.1").await.unwrap();
        drop((b, c, other));
        assert_eq!(
            (metrics.connections.open(), metrics.connections.clients()),
            (0, 0)
        );
        assert_eq!(gate.room.available_permits(), 10);
    }

    #[tokio::test]
    async fn past_the_global_cap_connections_are_reserved_then_wait() {
        let metrics = Arc::new(HttpMetrics::default());
        let gate = Gate::new(limits(2, 10, 1, &[]), metrics.clone());
        let ordinary = [
            admit(&gate, "10.0.0.1").await.unwrap(),
            admit(&gate, "10.0.0.2").await.unwrap(),
        ];
        assert!(ordinary.iter().all(|p| !p.reserved()));
        let probe = admit(&gate, "10.0.0.3").await.unwrap();
        assert!(probe.reserved());
        assert_eq!(metrics.connections.open_reserved(), 1);
        // Full: no room until a connection closes.
        assert!(futures::FutureExt::now_or_never(gate.room()).is_none());
        drop(ordinary);
        let next = admit(&gate, "10.0.0.4").await.unwrap();
        assert!(!next.reserved(), "an ordinary slot is free again");
        drop((probe, next));
        assert_eq!(metrics.connections.open(), 0);
    }

    #[tokio::test]
    async fn trusted_proxies_are_not_capped_per_client() {
        let metrics = Arc::new(HttpMetrics::default());
        let gate = Gate::new(limits(10, 1, 0, &["10.1.0.0/16"]), metrics.clone());
        let held = [
            admit(&gate, "10.1.2.3").await.unwrap(),
            admit(&gate, "10.1.2.3").await.unwrap(),
            admit(&gate, "10.1.2.3").await.unwrap(),
        ];
        assert!(admit(&gate, "10.2.0.1").await.is_ok());
        assert_eq!(metrics.connections.clients(), 0);
        drop(held);
    }

    #[test]
    fn caps_fit_under_the_open_file_limit() {
        let mut l = limits(50_000, 1024, 32, &[]);
        l.fit_fds(1 << 20);
        assert_eq!((l.max, l.reserved), (50_000, 32));
        l.fit_fds(20_000);
        assert_eq!((l.max, l.reserved), (20_000 - 1024 - 32, 32));
        l.fit_fds(1024);
        assert_eq!((l.max, l.reserved), (1024 - 128 - 32, 32));
        l.fit_fds(100);
        assert_eq!((l.max, l.reserved), (27, 9));
    }

    #[test]
    fn a_refusal_is_a_complete_response_with_the_envelope() {
        let text = String::from_utf8(over_cap_response()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{head}"
        );
        assert!(head.contains("connection: close") && head.contains("retry-after: 1"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["success"], false);
        assert_eq!(v["statusCode"], 429);
        assert_eq!(v["error"]["code"], "RATE_LIMITED");
        assert!(v["meta"]["requestId"].is_string() && v["meta"]["timestamp"].is_string());
    }
}
