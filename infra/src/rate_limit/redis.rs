//! Redis fixed-window limiter: one atomic script call per request, so the
//! limit holds across every gateway replica sharing the Redis server.

use std::time::Duration;

use async_trait::async_trait;
use panoptes_shared::error::RateLimitInfo;
use panoptes_shared::ports::{RateDecision, RateLimiter};
use panoptes_shared::{Error, Result};
use redis::aio::ConnectionManager;

use super::window_position;
use crate::redis_keys;

pub struct RedisRateLimiter {
    conn: ConnectionManager,
    prefix: String,
    script: redis::Script,
}

impl RedisRateLimiter {
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            script: redis::Script::new(include_str!("fixed_window.lua")),
        }
    }
}

pub(crate) fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable {
        dependency: "redis",
        source: e.into(),
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        let (n, reset_after) = window_position(window);
        let redis_key = redis_keys::rate_limit(&self.prefix, key, n);
        let mut conn = self.conn.clone();
        let count: u64 = self
            .script
            .key(redis_key)
            .arg(window.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(RateDecision {
            allowed: count <= limit,
            info: RateLimitInfo {
                limit,
                remaining: limit.saturating_sub(count),
                window,
                reset_after,
            },
        })
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
