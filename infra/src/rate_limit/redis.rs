//! Redis sliding-window limiter: one atomic script call per request (server
//! clock, sorted set per key), so the limit holds across every replica.

use std::time::Duration;

use crate::redis_conn::RedisConn;
use async_trait::async_trait;
use panoptes_shared::error::RateLimitInfo;
use panoptes_shared::ports::{RateDecision, RateLimiter};
use panoptes_shared::{Error, Result};

use crate::redis_keys;

pub struct RedisRateLimiter {
    conn: RedisConn,
    prefix: String,
    script: redis::Script,
}

impl RedisRateLimiter {
    pub fn new(conn: RedisConn, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            script: redis::Script::new(include_str!("sliding_window.lua")),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        self.decide(key, limit, window, true).await
    }

    async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        self.decide(key, limit, window, false).await
    }

    async fn ping(&self) -> Result<()> {
        self.conn.ping().await
    }
}

impl RedisRateLimiter {
    async fn decide(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        record: bool,
    ) -> Result<RateDecision> {
        let mut conn = self.conn.clone();
        let (admitted, count, reset_ms): (u8, u64, i64) = self
            .script
            .key(redis_keys::rate_limit(&self.prefix, key))
            .arg(limit)
            .arg(window.as_millis() as u64)
            .arg(uuid::Uuid::new_v4().to_string())
            .arg(u8::from(record))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))?;
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(RateDecision {
            allowed: admitted == 1 || (!record && count < limit),
            info: RateLimitInfo {
                limit,
                remaining: limit.saturating_sub(count),
                window,
                reset_after: Duration::from_millis(u64::try_from(reset_ms.max(0)).unwrap_or(0)),
            },
        })
    }
}
