//! Detection-result logs: in-process (one node) and Redis streams keyed by
//! device.

mod memory;
mod redis;

pub use memory::MemoryDetectionLog;
pub use redis::RedisDetectionLog;
