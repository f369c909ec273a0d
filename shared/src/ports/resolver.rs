//! Name resolution for outbound connections. The outbound guard
//! ([`crate::outbound::OutboundGuard`]) asks a resolver once per connection
//! and connects only to the addresses it vetted, so what was checked is what
//! is dialled (no second lookup by a client library).

use std::net::SocketAddr;

use async_trait::async_trait;

#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// Every address `host` (a DNS name, never an IP literal: the guard
    /// handles those itself) has for `port`, in the order to try them. An
    /// unknown name is an error; callers bound the time it may take.
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}
