//! Adapters behind the `Resolver` port. [`SystemResolver`]: `getaddrinfo`
//! (through tokio's `lookup_host`, on the blocking pool), so `/etc/hosts`,
//! search domains and the platform's DNS apply as for any other program; the
//! guard bounds how long it may take and connects only to what it returned.
//! [`MemoryResolver`]: a table, changed at will (tests simulate DNS
//! rebinding with it).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use panoptes_shared::ports::Resolver;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// Names from a table; an unknown name is "not found". A change applies
/// to the next lookup.
#[derive(Debug, Default)]
pub struct MemoryResolver {
    // Never held across an await.
    names: Mutex<HashMap<String, Vec<IpAddr>>>,
    lookups: AtomicUsize,
}

impl MemoryResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// `name` resolves to `ips` from now on.
    pub fn set(&self, name: &str, ips: &[IpAddr]) {
        self.table().insert(name.to_ascii_lowercase(), ips.to_vec());
    }

    /// `name` no longer resolves.
    pub fn remove(&self, name: &str) {
        self.table().remove(&name.to_ascii_lowercase());
    }

    /// Lookups answered so far (found or not).
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<IpAddr>>> {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Resolver for MemoryResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        match self.table().get(&host.to_ascii_lowercase()) {
            Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such name",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_to_loopback() {
        let addrs = SystemResolver.resolve("localhost", 554).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 554)
        );
    }

    #[tokio::test]
    async fn the_memory_resolver_answers_from_its_table_as_it_is_now() {
        let r = MemoryResolver::new();
        assert!(r.resolve("cam.test", 554).await.is_err());
        r.set("Cam.Test", &["127.0.0.1".parse().unwrap()]);
        let addrs = r.resolve("cam.test", 8554).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:8554".parse().unwrap()]);
        r.remove("cam.test");
        assert!(r.resolve("cam.test", 554).await.is_err());
        assert_eq!(r.lookups(), 3);
    }
}
