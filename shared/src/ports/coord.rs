//! Coordination between worker nodes: leases (one owner per device, one
//! snapshot per interval) and the registry of live compute nodes.
//!
//! Guarantees every adapter gives (one behaviour suite checks them):
//! - A lease has at most one owner; its owner may take it again to renew it;
//!   it lapses `ttl` after the last take unless renewed, and `release` frees it
//!   only for its owner.
//! - A node is online while its heartbeats come faster than their ttl. A node
//!   whose heartbeat lapsed is returned by `take_offline` exactly once, across
//!   every caller, so `node_offline` is reported once.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

#[async_trait]
pub trait Leases: Send + Sync {
    /// Take (or renew) `key` for `owner` for `ttl`; `false` when another owns it.
    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool>;
    /// Give `key` up if `owner` holds it.
    async fn release(&self, key: &str, owner: &str) -> Result<()>;
}

/// What a node says about itself in each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: String,
    /// The roles it runs (`detect`, `analytics`, ...).
    pub roles: Vec<String>,
    /// `cpu` or `cuda`, for detector nodes.
    pub execution_provider: Option<String>,
    pub started_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub info: NodeInfo,
    pub last_seen_ms: u64,
    pub online: bool,
}

#[async_trait]
pub trait NodeRegistry: Send + Sync {
    /// Register or refresh `node`; it is online for `ttl` from now.
    async fn heartbeat(&self, node: &NodeInfo, ttl: Duration) -> Result<()>;
    /// Every known node, online or not.
    async fn list(&self) -> Result<Vec<NodeStatus>>;
    /// Nodes whose heartbeat lapsed, each handed out once (then forgotten
    /// until it heartbeats again).
    async fn take_offline(&self) -> Result<Vec<NodeStatus>>;
}
