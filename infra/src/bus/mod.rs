//! Event bus adapters: in-process (one node) and Redis (pub/sub channel per
//! user for live delivery + a capped stream per user for replay).

mod memory;
mod redis;

pub use memory::MemoryBus;
pub use redis::RedisBus;

/// Queue between the bus and one subscriber. The consumer (the gateway's
/// per-user hub) drains it at once; if it ever fills, the subscription is
/// ended rather than allowed to grow, and the consumer resumes by offset.
pub(crate) const SUBSCRIBER_QUEUE: usize = 1024;
