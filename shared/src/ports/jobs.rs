//! Frame jobs: ingest (or an edge device) enqueues JPEG frames; detector
//! workers pull them, any frame to any worker.
//!
//! Guarantees every adapter gives (one behaviour suite checks them):
//! - A pulled job stays claimed until acknowledged. If its worker dies (or
//!   just does not acknowledge within the visibility timeout), another
//!   worker's pull reclaims it: at least once, so results are written
//!   idempotently per job id.
//! - A job that has been claimed `max_attempts` times without success goes to
//!   the dead letters with its last error instead of being retried forever.
//! - A job captured longer ago than `max_age` is dropped and counted when it
//!   would be handed out: live analytics wants fresh frames, not a backlog.
//! - The queue is bounded (`max_len` per shard, oldest trimmed first).

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;
use crate::ids::{DeviceId, JobId, SceneId, TaskId, UserId};

/// One frame to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameJob {
    pub id: JobId,
    pub user: UserId,
    pub device: DeviceId,
    pub scene: SceneId,
    pub task: TaskId,
    /// When the camera captured the frame (epoch milliseconds).
    pub captured_at_ms: u64,
    pub jpeg: Vec<u8>,
    /// W3C `traceparent` of the stage that made the job (ingest, edge push):
    /// detect continues its trace ([`crate::telemetry`]). Jobs from before
    /// this field have none.
    pub traceparent: Option<String>,
    /// Describe the people in this frame (their clothing colours): the task
    /// has the `attributes` capability on a level_02 device. Jobs from
    /// before this field have it off.
    pub attributes: bool,
}

/// Identifies a claimed job to acknowledge or fail it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub shard: u16,
    pub entry: String,
}

/// A job handed to a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job: FrameJob,
    pub receipt: Receipt,
    /// How many times the job has been handed out, this time included.
    pub attempts: u32,
}

/// A job given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub job_id: JobId,
    pub device: DeviceId,
    pub attempts: u32,
    pub error: String,
}

/// What an autoscaler watches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs waiting to be handed out for the first time.
    pub waiting: u64,
    /// Jobs handed out and not yet acknowledged.
    pub pending: u64,
    /// Age of the oldest job not yet acknowledged (capture time), if any.
    pub oldest_age_ms: Option<u64>,
    /// Jobs dropped because they were older than `max_age`, since start.
    pub dropped_stale: u64,
    /// Jobs in the dead letters.
    pub dead_letters: u64,
}

/// How a queue treats its jobs.
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    pub shards: u16,
    pub max_len: usize,
    pub visibility: Duration,
    pub max_attempts: u32,
    pub max_age: Duration,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            shards: 4,
            max_len: 10_000,
            visibility: Duration::from_secs(30),
            max_attempts: 3,
            max_age: Duration::from_secs(10),
        }
    }
}

impl QueuePolicy {
    /// The shard of a device: all frames of a device go to one shard.
    pub fn shard_of(&self, device: DeviceId) -> u16 {
        let b = device.0.as_bytes();
        let h = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        (h % u64::from(self.shards.max(1))) as u16
    }
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn enqueue(&self, job: &FrameJob) -> Result<()>;

    /// Up to `max` jobs for `consumer`: jobs whose claim lapsed first, then new
    /// ones, waiting up to `wait` when there are none. Stale jobs are dropped
    /// and jobs out of attempts are dead-lettered on the way.
    async fn pull(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Claimed>>;

    /// The job's result is durable: forget the job.
    async fn ack(&self, receipt: &Receipt) -> Result<()>;

    /// Processing failed: out of attempts, the job goes to the dead letters
    /// with `error`; otherwise it is retried once its claim lapses.
    async fn fail(&self, claimed: &Claimed, error: &str) -> Result<()>;

    async fn stats(&self) -> Result<QueueStats>;

    /// The newest `max` dead letters, newest first.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>>;
}

/// Epoch milliseconds now.
pub fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}
