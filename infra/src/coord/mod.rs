//! Coordination adapters: leases and the compute-node registry, in-process
//! (one node) or on Redis (a pool of nodes).

mod memory;
mod redis;

pub use memory::{MemoryLeases, MemoryNodes};
pub use redis::{RedisLeases, RedisNodes};
