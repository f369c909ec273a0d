//! Rate limiters: in-process (one node) and Redis (shared by every replica).
//! Both keep a sliding-window log of admitted requests: "10 per minute" means
//! at most 10 in any 60 seconds, with no burst at window boundaries, and the
//! reset time says exactly when the next slot frees. Refused requests are not
//! logged, so a client that backs off as told gets in on time.

mod memory;
mod redis;

pub use memory::MemoryRateLimiter;
pub use redis::RedisRateLimiter;
