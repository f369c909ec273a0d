//! Stream-slot adapters: in-process (one node) and Redis (cluster-wide).

mod memory;
mod redis;
mod watchers;

pub use memory::MemorySlots;
pub use redis::RedisSlots;
