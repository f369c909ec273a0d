//! Frame-job queue adapters: in-process (one node) and Redis streams with a
//! consumer group (a pool of detector workers).

mod memory;
mod redis;

pub use memory::MemoryJobQueue;
pub use redis::RedisJobQueue;
