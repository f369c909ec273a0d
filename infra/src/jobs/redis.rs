//! Frame jobs on Redis streams: one stream per shard, one consumer group
//! (`detect`) over them. Claims are the group's pending entries; a lapsed
//! claim is taken over with XAUTOCLAIM and its delivery count is the attempt
//! number. Acknowledged jobs are deleted at once (their JPEG bytes do not wait
//! for MAXLEN trimming). All shards share one hash tag, so a blocking
//! XREADGROUP can wait on all of them (one Redis Cluster slot).

use std::time::Duration;

use async_trait::async_trait;
use panoptes_shared::ids::{DeviceId, JobId, UserId};
use panoptes_shared::ports::jobs::{
    Claimed, DeadLetter, FrameJob, JobQueue, QueuePolicy, QueueStats, Receipt, now_ms,
};
use panoptes_shared::{Error, Result};
use redis::aio::MultiplexedConnection;

use crate::redis_conn::RedisConn;
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamPendingReply, StreamRangeReply,
    StreamReadReply,
};
use uuid::Uuid;

use crate::redis_keys;

const GROUP: &str = "detect";
/// Dead letters kept (approximately), newest.
const DEAD_LETTERS_KEPT: usize = 10_000;

pub struct RedisJobQueue {
    conn: RedisConn,
    /// XREADGROUP BLOCK holds its connection: a dedicated one, without a
    /// response timeout, so that it blocks nobody else.
    blocking: tokio::sync::Mutex<MultiplexedConnection>,
    prefix: String,
    policy: QueuePolicy,
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable("redis", e)
}

impl RedisJobQueue {
    /// Connect and create the consumer group on every shard (once).
    pub async fn connect(
        client: &redis::Client,
        conn: RedisConn,
        prefix: impl Into<String>,
        policy: QueuePolicy,
    ) -> Result<Self> {
        let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let blocking = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(unavailable)?;
        let q = Self {
            conn,
            blocking: tokio::sync::Mutex::new(blocking),
            prefix: prefix.into(),
            policy,
        };
        let mut conn = q.conn.clone();
        for shard in 0..q.shards() {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(q.key(shard))
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(q)
    }

    fn shards(&self) -> u16 {
        self.policy.shards.max(1)
    }

    fn key(&self, shard: u16) -> String {
        redis_keys::frame_jobs(&self.prefix, shard)
    }

    fn stale(&self, job: &FrameJob) -> bool {
        now_ms().saturating_sub(job.captured_at_ms) > self.policy.max_age.as_millis() as u64
    }

    /// Remove an entry from the group and the stream.
    async fn forget(&self, shard: u16, entry: &str) -> Result<()> {
        let key = self.key(shard);
        redis::pipe()
            .cmd("XACK")
            .arg(&key)
            .arg(GROUP)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(&key)
            .arg(entry)
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn bury(&self, shard: u16, entry: &str, letter: DeadLetter) -> Result<()> {
        redis::cmd("XADD")
            .arg(redis_keys::frame_jobs_dead(&self.prefix))
            .arg("MAXLEN")
            .arg("~")
            .arg(DEAD_LETTERS_KEPT)
            .arg("*")
            .arg("i")
            .arg(letter.job_id.to_string())
            .arg("d")
            .arg(letter.device.to_string())
            .arg("a")
            .arg(letter.attempts)
            .arg("e")
            .arg(&letter.error)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        self.forget(shard, entry).await
    }

    /// Hand out an entry, or drop it (stale) or bury it (out of attempts).
    async fn admit(
        &self,
        shard: u16,
        entry: &StreamId,
        attempts: u32,
        out: &mut Vec<Claimed>,
    ) -> Result<()> {
        let Some(job) = job_of(entry) else {
            let letter = DeadLetter {
                job_id: JobId(Uuid::nil()),
                device: DeviceId(Uuid::nil()),
                attempts,
                error: "unreadable frame job".to_owned(),
            };
            return self.bury(shard, &entry.id, letter).await;
        };
        if attempts > self.policy.max_attempts {
            let letter = DeadLetter {
                job_id: job.id,
                device: job.device,
                attempts: attempts - 1,
                error: "not acknowledged within the visibility timeout".to_owned(),
            };
            return self.bury(shard, &entry.id, letter).await;
        }
        if self.stale(&job) {
            redis::cmd("INCR")
                .arg(redis_keys::frame_jobs_dropped(&self.prefix))
                .query_async::<()>(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            return self.forget(shard, &entry.id).await;
        }
        out.push(Claimed {
            job,
            receipt: Receipt {
                shard,
                entry: entry.id.clone(),
            },
            attempts,
        });
        Ok(())
    }

    /// Take over claims that lapsed, oldest first.
    async fn reclaim(&self, consumer: &str, max: usize, out: &mut Vec<Claimed>) -> Result<()> {
        let mut conn = self.conn.clone();
        for shard in 0..self.shards() {
            if out.len() >= max {
                break;
            }
            let key = self.key(shard);
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&key)
                .arg(GROUP)
                .arg(consumer)
                .arg(self.policy.visibility.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(max - out.len())
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            for entry in &reply.claimed {
                let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                    .arg(&key)
                    .arg(GROUP)
                    .arg(&entry.id)
                    .arg(&entry.id)
                    .arg(1)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let attempts = pending.ids.first().map_or(1, |p| p.times_delivered);
                self.admit(
                    shard,
                    entry,
                    u32::try_from(attempts).unwrap_or(u32::MAX),
                    out,
                )
                .await?;
            }
        }
        Ok(())
    }
}

fn job_of(e: &StreamId) -> Option<FrameJob> {
    let text = |k: &str| e.get::<String>(k);
    Some(FrameJob {
        id: text("i")?.parse().ok()?,
        user: UserId(text("u")?.parse().ok()?),
        device: DeviceId(text("d")?.parse().ok()?),
        scene: text("s")?.parse().ok()?,
        task: text("t")?.parse().ok()?,
        captured_at_ms: e.get("c")?,
        jpeg: e.get("j")?,
        // Empty when the producer had none; absent in jobs from before it.
        traceparent: text("tp").filter(|t| !t.is_empty()),
        // "1" when on; absent in jobs from before it.
        attributes: text("a").is_some_and(|a| a == "1"),
    })
}

#[async_trait]
impl JobQueue for RedisJobQueue {
    async fn enqueue(&self, job: &FrameJob) -> Result<()> {
        redis::cmd("XADD")
            .arg(self.key(self.policy.shard_of(job.device)))
            // Exact: a frame beyond the bound is one eviction, and the bound holds.
            .arg("MAXLEN")
            .arg(self.policy.max_len)
            .arg("*")
            .arg("i")
            .arg(job.id.to_string())
            .arg("u")
            .arg(job.user.to_string())
            .arg("d")
            .arg(job.device.to_string())
            .arg("s")
            .arg(job.scene.to_string())
            .arg("t")
            .arg(job.task.to_string())
            .arg("c")
            .arg(job.captured_at_ms)
            .arg("j")
            .arg(&job.jpeg)
            .arg("tp")
            .arg(job.traceparent.as_deref().unwrap_or_default())
            .arg("a")
            .arg(if job.attributes { "1" } else { "0" })
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn pull(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Claimed>> {
        let mut out = Vec::new();
        self.reclaim(consumer, max, &mut out).await?;
        if out.len() >= max {
            return Ok(out);
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(max - out.len());
        if out.is_empty() && !wait.is_zero() {
            cmd.arg("BLOCK").arg(wait.as_millis().max(1) as u64);
        }
        let keys: Vec<String> = (0..self.shards()).map(|s| self.key(s)).collect();
        cmd.arg("STREAMS").arg(&keys);
        for _ in 0..self.shards() {
            cmd.arg(">");
        }
        let reply: Option<StreamReadReply> = {
            let mut conn = self.blocking.lock().await;
            cmd.query_async(&mut *conn).await.map_err(unavailable)?
        };
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(shard) = keys.iter().position(|k| *k == stream.key) else {
                continue;
            };
            let shard = shard as u16;
            for entry in &stream.ids {
                self.admit(shard, entry, 1, &mut out).await?;
            }
        }
        Ok(out)
    }

    async fn ack(&self, receipt: &Receipt) -> Result<()> {
        self.forget(receipt.shard, &receipt.entry).await
    }

    async fn fail(&self, claimed: &Claimed, error: &str) -> Result<()> {
        if claimed.attempts < self.policy.max_attempts {
            return Ok(()); // retried once the claim lapses
        }
        let letter = DeadLetter {
            job_id: claimed.job.id,
            device: claimed.job.device,
            attempts: claimed.attempts,
            error: error.to_owned(),
        };
        self.bury(claimed.receipt.shard, &claimed.receipt.entry, letter)
            .await
    }

    async fn stats(&self) -> Result<QueueStats> {
        let mut conn = self.conn.clone();
        let mut stats = QueueStats::default();
        let mut oldest: Option<u64> = None;
        for shard in 0..self.shards() {
            let key = self.key(shard);
            let len: u64 = redis::cmd("XLEN")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let pending: StreamPendingReply = redis::cmd("XPENDING")
                .arg(&key)
                .arg(GROUP)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let first: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let pending = pending.count() as u64;
            stats.pending += pending;
            stats.waiting += len.saturating_sub(pending);
            if let Some(c) = first.ids.first().and_then(|e| e.get::<u64>("c")) {
                oldest = Some(oldest.map_or(c, |o| o.min(c)));
            }
        }
        stats.oldest_age_ms = oldest.map(|c| now_ms().saturating_sub(c));
        let dropped: Option<u64> = redis::cmd("GET")
            .arg(redis_keys::frame_jobs_dropped(&self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        stats.dropped_stale = dropped.unwrap_or(0);
        stats.dead_letters = redis::cmd("XLEN")
            .arg(redis_keys::frame_jobs_dead(&self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(stats)
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(redis_keys::frame_jobs_dead(&self.prefix))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(reply
            .ids
            .iter()
            .filter_map(|e| {
                Some(DeadLetter {
                    job_id: e.get::<String>("i")?.parse().ok()?,
                    device: DeviceId(e.get::<String>("d")?.parse().ok()?),
                    attempts: e.get("a")?,
                    error: e.get("e")?,
                })
            })
            .collect())
    }
}
