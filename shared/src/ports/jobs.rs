//! Job queues. Frame jobs: ingest (or an edge device) enqueues JPEG frames;
//! detector workers pull them, any frame to any worker. Insight jobs: an
//! alert's insight waits for the VLM; notify workers pull them. One queue
//! implementation carries both ([`QueueJob`]), each in its own queue.
//!
//! Guarantees every adapter gives, whatever the job (one behaviour suite
//! checks them for each job type):
//! - A pulled job stays claimed until acknowledged. If its worker dies (or
//!   just does not acknowledge within the visibility timeout), another
//!   worker's pull reclaims it: at least once, so results are written
//!   idempotently per job id.
//! - A job that has been claimed `max_attempts` times without success goes to
//!   the dead letters with its last error instead of being retried forever.
//! - A job created longer ago than `max_age` is dropped and counted when it
//!   would be handed out: live analytics wants fresh frames, not a backlog
//!   (the insight queue's `max_age` is long: an insight is worth asking late).
//! - The queue is bounded (`max_len` per shard, oldest trimmed first).

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;

use crate::Result;
use crate::ids::{DeviceId, InsightId, JobId, SceneId, TaskId, UserId};

/// A job as the flat fields of a queue entry (a Redis stream entry): names
/// to bytes, numbers and ids as decimal / hyphenated text.
pub type JobFields = HashMap<String, Vec<u8>>;

/// What a queue carries: encoded as flat fields of a stream entry.
pub trait QueueJob: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// For dead letters and logs.
    fn job_id(&self) -> JobId;
    /// Picks the shard ([`QueuePolicy::shard_of`]).
    fn device(&self) -> DeviceId;
    /// When the job was made (epoch milliseconds): staleness (`max_age`)
    /// and the queue's oldest age.
    fn created_at_ms(&self) -> u64;
    /// The entry's fields; bytes are borrowed (a frame's JPEG is not copied).
    fn to_fields(&self) -> Vec<(&'static str, Cow<'_, [u8]>)>;
    /// The job back from its fields (taken, so bytes move out); `None` when
    /// a required field is missing or unreadable.
    fn from_fields(fields: JobFields) -> Option<Self>;
}

/// Decoding helpers for [`QueueJob::from_fields`].
pub mod fields {
    use super::*;

    /// A field as UTF-8 text.
    pub fn text(f: &JobFields, name: &str) -> Option<String> {
        String::from_utf8(f.get(name)?.clone()).ok()
    }

    /// A field parsed from its text (ids, numbers).
    pub fn parse<T: FromStr>(f: &JobFields, name: &str) -> Option<T> {
        std::str::from_utf8(f.get(name)?).ok()?.parse().ok()
    }

    /// An optional text field: absent (entries from before it) or empty is `None`.
    pub fn optional_text(f: &JobFields, name: &str) -> Option<String> {
        text(f, name).filter(|t| !t.is_empty())
    }

    /// Text as a field value.
    pub fn of_text(s: &str) -> Cow<'_, [u8]> {
        Cow::Borrowed(s.as_bytes())
    }

    /// A value's `Display` text (ids, numbers) as a field value.
    pub fn of_display(v: impl std::fmt::Display) -> Cow<'static, [u8]> {
        Cow::Owned(v.to_string().into_bytes())
    }
}

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

/// The frame job's entry fields, in one place. Their names are those of
/// entries already in deployed streams: renaming one orphans queued jobs.
impl QueueJob for FrameJob {
    fn job_id(&self) -> JobId {
        self.id
    }

    fn device(&self) -> DeviceId {
        self.device
    }

    fn created_at_ms(&self) -> u64 {
        self.captured_at_ms
    }

    fn to_fields(&self) -> Vec<(&'static str, Cow<'_, [u8]>)> {
        use fields::{of_display, of_text};
        vec![
            ("i", of_display(self.id)),
            ("u", of_display(self.user)),
            ("d", of_display(self.device)),
            ("s", of_display(self.scene)),
            ("t", of_display(self.task)),
            ("c", of_display(self.captured_at_ms)),
            ("j", Cow::Borrowed(&self.jpeg)),
            // Empty when the producer had none.
            (
                "tp",
                of_text(self.traceparent.as_deref().unwrap_or_default()),
            ),
            ("a", of_text(if self.attributes { "1" } else { "0" })),
        ]
    }

    fn from_fields(mut f: JobFields) -> Option<Self> {
        use fields::{optional_text, parse};
        Some(FrameJob {
            // "1" when on; absent in jobs from before it.
            attributes: optional_text(&f, "a").is_some_and(|a| a == "1"),
            id: parse(&f, "i")?,
            user: parse(&f, "u")?,
            device: parse(&f, "d")?,
            scene: parse(&f, "s")?,
            task: parse(&f, "t")?,
            captured_at_ms: parse(&f, "c")?,
            // Absent in jobs from before traceparents.
            traceparent: optional_text(&f, "tp"),
            jpeg: f.remove("j")?,
        })
    }
}

/// Ask the VLM about one insight (the notify role consumes these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightJob {
    /// The job's id: the insight's uuid (`JobId(insight.0)`), so a job is
    /// named by its insight in dead letters and logs.
    pub id: JobId,
    pub user: UserId,
    pub device: DeviceId,
    pub insight: InsightId,
    /// When the job was enqueued (epoch milliseconds).
    pub enqueued_at_ms: u64,
    /// W3C `traceparent` of the stage that made the job (the alert's
    /// evaluation): the VLM call continues its trace.
    pub traceparent: Option<String>,
}

impl InsightJob {
    /// The job asking about `insight`, enqueued now.
    pub fn new(
        user: UserId,
        device: DeviceId,
        insight: InsightId,
        traceparent: Option<String>,
    ) -> Self {
        Self {
            id: JobId(insight.0),
            user,
            device,
            insight,
            enqueued_at_ms: now_ms(),
            traceparent,
        }
    }
}

impl QueueJob for InsightJob {
    fn job_id(&self) -> JobId {
        self.id
    }

    fn device(&self) -> DeviceId {
        self.device
    }

    fn created_at_ms(&self) -> u64 {
        self.enqueued_at_ms
    }

    fn to_fields(&self) -> Vec<(&'static str, Cow<'_, [u8]>)> {
        use fields::{of_display, of_text};
        vec![
            ("i", of_display(self.id)),
            ("u", of_display(self.user)),
            ("d", of_display(self.device)),
            ("n", of_display(self.insight)),
            ("c", of_display(self.enqueued_at_ms)),
            (
                "tp",
                of_text(self.traceparent.as_deref().unwrap_or_default()),
            ),
        ]
    }

    fn from_fields(f: JobFields) -> Option<Self> {
        use fields::{optional_text, parse};
        Some(InsightJob {
            id: parse(&f, "i")?,
            user: parse(&f, "u")?,
            device: parse(&f, "d")?,
            insight: parse(&f, "n")?,
            enqueued_at_ms: parse(&f, "c")?,
            traceparent: optional_text(&f, "tp"),
        })
    }
}

/// Identifies a claimed job to acknowledge or fail it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub shard: u16,
    pub entry: String,
}

/// A job handed to a worker.
#[derive(Debug, Clone)]
pub struct Claimed<J = FrameJob> {
    pub job: J,
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
    /// Age of the oldest job not yet acknowledged (capture or enqueue time), if any.
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
    /// The shard of a device: all jobs of a device go to one shard.
    pub fn shard_of(&self, device: DeviceId) -> u16 {
        let b = device.0.as_bytes();
        let h = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        (h % u64::from(self.shards.max(1))) as u16
    }
}

/// A queue of `J` jobs; `dyn JobQueue` is the frame-job queue.
#[async_trait]
pub trait JobQueue<J: QueueJob = FrameJob>: Send + Sync {
    async fn enqueue(&self, job: &J) -> Result<()>;

    /// Up to `max` jobs for `consumer`: jobs whose claim lapsed first, then new
    /// ones, waiting up to `wait` when there are none. Stale jobs are dropped
    /// and jobs out of attempts are dead-lettered on the way.
    async fn pull(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Claimed<J>>>;

    /// The job's result is durable: forget the job.
    async fn ack(&self, receipt: &Receipt) -> Result<()>;

    /// Processing failed: out of attempts, the job goes to the dead letters
    /// with `error`; otherwise it is retried once its claim lapses.
    async fn fail(&self, claimed: &Claimed<J>, error: &str) -> Result<()>;

    async fn stats(&self) -> Result<QueueStats>;

    /// The newest `max` dead letters, newest first.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>>;
}

/// Epoch milliseconds now.
pub fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(job: &impl QueueJob) -> JobFields {
        job.to_fields()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into_owned()))
            .collect()
    }

    fn insight_job(traceparent: Option<&str>) -> InsightJob {
        InsightJob::new(
            UserId::new(),
            DeviceId::new(),
            InsightId::new(),
            traceparent.map(str::to_owned),
        )
    }

    #[test]
    fn an_insight_job_is_named_by_its_insight_and_round_trips_its_fields() {
        for tp in [
            None,
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ] {
            let job = insight_job(tp);
            assert_eq!(job.id, JobId(job.insight.0));
            assert_eq!(job.job_id(), job.id);
            assert_eq!(job.created_at_ms(), job.enqueued_at_ms);
            assert_eq!(InsightJob::from_fields(entry(&job)), Some(job));
        }
    }

    #[test]
    fn a_frame_job_round_trips_its_fields_under_the_deployed_names() {
        let job = FrameJob {
            id: JobId::new(),
            user: UserId::new(),
            device: DeviceId::new(),
            scene: SceneId::new(),
            task: TaskId::new(),
            captured_at_ms: 1_700_000_000_123,
            jpeg: vec![0xff, 0xd8, 0x00, 0xff, 0xd9],
            traceparent: None,
            attributes: true,
        };
        let fields = entry(&job);
        let mut names: Vec<_> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "c", "d", "i", "j", "s", "t", "tp", "u"]);
        assert_eq!(fields["a"], b"1");
        assert_eq!(fields["c"], b"1700000000123");
        assert_eq!(fields["tp"], b"");
        assert_eq!(FrameJob::from_fields(fields), Some(job));
    }

    #[test]
    fn a_missing_or_unreadable_field_is_no_job_but_a_missing_traceparent_is_none() {
        let job = insight_job(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        let mut old = entry(&job);
        old.remove("tp");
        assert_eq!(
            InsightJob::from_fields(old).map(|j| j.traceparent),
            Some(None)
        );
        for name in ["i", "u", "d", "n", "c"] {
            let mut fields = entry(&job);
            fields.remove(name);
            assert_eq!(InsightJob::from_fields(fields), None, "without {name}");
            let mut fields = entry(&job);
            fields.insert(name.to_owned(), b"not-a-value".to_vec());
            assert_eq!(InsightJob::from_fields(fields), None, "bad {name}");
        }
    }
}
