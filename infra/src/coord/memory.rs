//! In-process leases and node registry (one node: `up`, tests).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::ports::coord::{Leases, NodeInfo, NodeRegistry, NodeStatus};
use panoptes_shared::ports::jobs::now_ms;
use tokio::time::Instant;

#[derive(Default)]
pub struct MemoryLeases {
    leases: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryLeases {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Leases for MemoryLeases {
    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match leases.get(key) {
            Some((holder, expires)) if *expires > now && holder != owner => Ok(false),
            _ => {
                leases.insert(key.to_owned(), (owner.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<()> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases.get(key).is_some_and(|(holder, _)| holder == owner) {
            leases.remove(key);
        }
        Ok(())
    }
}

struct Entry {
    info: NodeInfo,
    last_seen_ms: u64,
    alive_until: Instant,
}

#[derive(Default)]
pub struct MemoryNodes {
    nodes: Mutex<HashMap<String, Entry>>,
}

impl MemoryNodes {
    pub fn new() -> Self {
        Self::default()
    }
}

fn status(e: &Entry, now: Instant) -> NodeStatus {
    NodeStatus {
        info: e.info.clone(),
        last_seen_ms: e.last_seen_ms,
        online: e.alive_until > now,
    }
}

#[async_trait]
impl NodeRegistry for MemoryNodes {
    async fn heartbeat(&self, node: &NodeInfo, ttl: Duration) -> Result<()> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner()).insert(
            node.id.clone(),
            Entry {
                info: node.clone(),
                last_seen_ms: now_ms(),
                alive_until: Instant::now() + ttl,
            },
        );
        Ok(())
    }

    async fn list(&self) -> Result<Vec<NodeStatus>> {
        let now = Instant::now();
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(nodes.values().map(|e| status(e, now)).collect())
    }

    async fn take_offline(&self) -> Result<Vec<NodeStatus>> {
        let now = Instant::now();
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = nodes
            .iter()
            .filter(|(_, e)| e.alive_until <= now)
            .map(|(id, _)| id.clone())
            .collect();
        Ok(gone
            .iter()
            .filter_map(|id| nodes.remove(id))
            .map(|e| status(&e, now))
            .collect())
    }
}
