//! In-process sliding-window limiter for the embedded (single node) mode.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::error::RateLimitInfo;
use panoptes_shared::ports::{RateDecision, RateLimiter};

#[derive(Default)]
pub struct MemoryRateLimiter {
    // std Mutex: held for a map update only, never across an await.
    logs: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        Ok(self.decide(key, limit, window, true))
    }

    async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        Ok(self.decide(key, limit, window, false))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

impl MemoryRateLimiter {
    fn decide(&self, key: &str, limit: u32, window: Duration, record: bool) -> RateDecision {
        let now = Instant::now();
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if logs.len() > 10_000 {
            logs.retain(|_, log| log.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let log = logs.entry(key.to_owned()).or_default();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            log.pop_front();
        }
        let allowed = log.len() < limit as usize;
        if allowed && record {
            log.push_back(now);
        }
        let count = u32::try_from(log.len()).unwrap_or(u32::MAX);
        let reset_after = log
            .front()
            .map_or(window, |t| window.saturating_sub(now.duration_since(*t)));
        RateDecision {
            allowed,
            info: RateLimitInfo {
                limit,
                remaining: limit.saturating_sub(count),
                window,
                reset_after,
            },
        }
    }
}
