//! In-process fixed-window limiter for the embedded (single node) mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::error::RateLimitInfo;
use panoptes_shared::ports::{RateDecision, RateLimiter};

use super::window_position;

#[derive(Default)]
pub struct MemoryRateLimiter {
    // std Mutex: held for a map lookup only, never across an await.
    counters: Mutex<HashMap<String, (u64, u32)>>,
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        let (n, reset_after) = window_position(window);
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if counters.len() > 10_000 {
            counters.retain(|_, (w, _)| *w == n);
        }
        let entry = counters.entry(key.to_owned()).or_insert((n, 0));
        if entry.0 != n {
            *entry = (n, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        let count = entry.1;
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
        Ok(())
    }
}
