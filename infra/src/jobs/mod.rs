//! Job-queue adapters, generic over the job (frame jobs, insight jobs):
//! in-process (one node) and Redis streams with a consumer group (a pool of
//! detector or notify workers).

mod memory;
mod redis;

pub use crate::redis_keys::JobStreams;
pub use memory::MemoryJobQueue;
pub use redis::RedisJobQueue;
