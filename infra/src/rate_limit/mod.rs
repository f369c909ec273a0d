//! Rate limiters: in-process (one node) and Redis (shared by every replica).
//! Both count fixed windows aligned to the epoch, so replicas agree on when a
//! window resets without talking to each other.

mod memory;
mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use memory::MemoryRateLimiter;
pub use redis::RedisRateLimiter;

/// The current window number and the time left in it.
pub(crate) fn window_position(window: Duration) -> (u64, Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let w = window.as_millis().max(1);
    let n = now.as_millis() / w;
    let left = w - now.as_millis() % w;
    (n as u64, Duration::from_millis(left as u64))
}
