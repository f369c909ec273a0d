//! Leases and the node registry on Redis. A lease is a key holding its owner
//! with a TTL (Lua compare-and-set); a node is a hash entry plus a heartbeat
//! key with a TTL, both under one hash tag so the offline sweep is one script.

use std::time::Duration;

use crate::redis_conn::RedisConn;
use async_trait::async_trait;
use panoptes_shared::ports::coord::{Leases, NodeInfo, NodeRegistry, NodeStatus};
use panoptes_shared::ports::jobs::now_ms;
use panoptes_shared::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::redis_keys;

fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable("redis", e)
}

pub struct RedisLeases {
    conn: RedisConn,
    prefix: String,
    acquire: redis::Script,
    release: redis::Script,
}

impl RedisLeases {
    pub fn new(conn: RedisConn, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            acquire: redis::Script::new(include_str!("lease_acquire.lua")),
            release: redis::Script::new(include_str!("lease_release.lua")),
        }
    }
}

#[async_trait]
impl Leases for RedisLeases {
    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn.clone();
        let took: i64 = self
            .acquire
            .key(redis_keys::lease(&self.prefix, key))
            .arg(owner)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(took == 1)
    }

    async fn release(&self, key: &str, owner: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        self.release
            .key(redis_keys::lease(&self.prefix, key))
            .arg(owner)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    info: NodeInfo,
    last_seen_ms: u64,
}

pub struct RedisNodes {
    conn: RedisConn,
    prefix: String,
    offline: redis::Script,
}

impl RedisNodes {
    pub fn new(conn: RedisConn, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            offline: redis::Script::new(include_str!("nodes_offline.lua")),
        }
    }

    fn parse(raw: &str) -> Option<Stored> {
        serde_json::from_str(raw)
            .inspect_err(|e| tracing::warn!(error = %e, "unreadable node entry skipped"))
            .ok()
    }
}

#[async_trait]
impl NodeRegistry for RedisNodes {
    async fn heartbeat(&self, node: &NodeInfo, ttl: Duration) -> Result<()> {
        let stored = Stored {
            info: node.clone(),
            last_seen_ms: now_ms(),
        };
        let json = serde_json::to_string(&stored).map_err(Error::internal)?;
        let alive = format!("{}{}", redis_keys::node_alive_prefix(&self.prefix), node.id);
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset(redis_keys::nodes(&self.prefix), &node.id, json)
            .ignore()
            .cmd("SET")
            .arg(alive)
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn list(&self) -> Result<Vec<NodeStatus>> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(redis_keys::nodes(&self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let alive_prefix = redis_keys::node_alive_prefix(&self.prefix);
        let mut pipe = redis::pipe();
        for (id, _) in &all {
            pipe.exists(format!("{alive_prefix}{id}"));
        }
        let alive: Vec<bool> = if all.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await.map_err(unavailable)?
        };
        Ok(all
            .iter()
            .zip(alive)
            .filter_map(|((_, raw), online)| {
                Self::parse(raw).map(|s| NodeStatus {
                    info: s.info,
                    last_seen_ms: s.last_seen_ms,
                    online,
                })
            })
            .collect())
    }

    async fn take_offline(&self) -> Result<Vec<NodeStatus>> {
        let mut conn = self.conn.clone();
        let gone: Vec<String> = self
            .offline
            .key(redis_keys::nodes(&self.prefix))
            .arg(redis_keys::node_alive_prefix(&self.prefix))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(gone
            .iter()
            .filter_map(|raw| Self::parse(raw))
            .map(|s| NodeStatus {
                info: s.info,
                last_seen_ms: s.last_seen_ms,
                online: false,
            })
            .collect())
    }
}
