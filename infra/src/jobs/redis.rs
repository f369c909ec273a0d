//! Jobs on Redis streams: per queue ([`JobStreams`]: frames for `detect`,
//! insights for `notify`), one stream per shard and one consumer group over
//! them. A job is the flat fields of its entry ([`QueueJob::to_fields`]).
//! Claims are the group's pending entries; a lapsed claim is taken over with
//! XAUTOCLAIM and its delivery count is the attempt number. Acknowledged jobs
//! are deleted at once (a frame's JPEG bytes do not wait for MAXLEN
//! trimming). All shards of a queue share one hash tag, so a blocking
//! XREADGROUP can wait on all of them (one Redis Cluster slot).

use std::time::Duration;

use async_trait::async_trait;
use panoptes_shared::ids::{DeviceId, JobId};
use panoptes_shared::ports::jobs::{
    Claimed, DeadLetter, FrameJob, InsightJob, JobFields, JobQueue, QueueJob, QueuePolicy,
    QueueStats, Receipt, now_ms,
};
use panoptes_shared::{Error, Result};
use redis::aio::MultiplexedConnection;

use crate::redis_conn::RedisConn;
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamPendingReply, StreamRangeReply,
    StreamReadReply,
};
use uuid::Uuid;

use crate::redis_keys::JobStreams;

/// Dead letters kept (approximately), newest.
const DEAD_LETTERS_KEPT: usize = 10_000;

/// A queue of `J` jobs on Redis streams (frame jobs unless named).
pub struct RedisJobQueue<J = FrameJob> {
    conn: RedisConn,
    /// XREADGROUP BLOCK holds its connection: a dedicated one, without a
    /// response timeout, so that it blocks nobody else.
    blocking: tokio::sync::Mutex<MultiplexedConnection>,
    /// The stream of each shard.
    keys: Vec<String>,
    dead: String,
    dropped: String,
    group: &'static str,
    policy: QueuePolicy,
    bury: redis::Script,
    job: std::marker::PhantomData<fn() -> J>,
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable("redis", e)
}

impl RedisJobQueue<FrameJob> {
    /// The frame-job queue ([`JobStreams::FRAMES`]), as [`Self::connect_to`].
    pub async fn connect(
        client: &redis::Client,
        conn: RedisConn,
        prefix: impl Into<String>,
        policy: QueuePolicy,
    ) -> Result<Self> {
        Self::connect_to(client, conn, prefix, JobStreams::FRAMES, policy).await
    }
}

impl RedisJobQueue<InsightJob> {
    /// The insight-job queue ([`JobStreams::INSIGHTS`]), as [`Self::connect_to`].
    pub async fn connect_insights(
        client: &redis::Client,
        conn: RedisConn,
        prefix: impl Into<String>,
        policy: QueuePolicy,
    ) -> Result<Self> {
        Self::connect_to(client, conn, prefix, JobStreams::INSIGHTS, policy).await
    }
}

impl<J: QueueJob> RedisJobQueue<J> {
    /// Connect to the queue `streams` names under `prefix` and create its
    /// consumer group on every shard (once).
    pub async fn connect_to(
        client: &redis::Client,
        conn: RedisConn,
        prefix: impl Into<String>,
        streams: JobStreams,
        policy: QueuePolicy,
    ) -> Result<Self> {
        let prefix = prefix.into();
        let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let blocking = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(unavailable)?;
        let q = Self {
            conn,
            blocking: tokio::sync::Mutex::new(blocking),
            keys: (0..policy.shards.max(1))
                .map(|shard| streams.shard(&prefix, shard))
                .collect(),
            dead: streams.dead(&prefix),
            dropped: streams.dropped(&prefix),
            group: streams.group,
            policy,
            bury: redis::Script::new(include_str!("bury.lua")),
            job: std::marker::PhantomData,
        };
        let mut conn = q.conn.clone();
        for shard in 0..q.shards() {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(q.key(shard))
                .arg(q.group)
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

    fn key(&self, shard: u16) -> &str {
        &self.keys[usize::from(shard)]
    }

    fn stale(&self, job: &J) -> bool {
        now_ms().saturating_sub(job.created_at_ms()) > self.policy.max_age.as_millis() as u64
    }

    /// Remove an entry from the group and the stream.
    async fn forget(&self, shard: u16, entry: &str) -> Result<()> {
        let key = self.key(shard);
        redis::pipe()
            .cmd("XACK")
            .arg(key)
            .arg(self.group)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(key)
            .arg(entry)
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    /// Dead-letter a claimed entry, unless it was settled meanwhile
    /// (`bury.lua`): one dead letter per job.
    async fn bury(&self, shard: u16, entry: &str, letter: DeadLetter) -> Result<()> {
        self.bury
            .key(self.key(shard))
            .key(&self.dead)
            .arg(self.group)
            .arg(entry)
            .arg(DEAD_LETTERS_KEPT)
            .arg(letter.job_id.to_string())
            .arg(letter.device.to_string())
            .arg(letter.attempts)
            .arg(&letter.error)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Hand out an entry, or drop it (stale) or bury it (out of attempts).
    async fn admit(
        &self,
        shard: u16,
        entry: StreamId,
        attempts: u32,
        out: &mut Vec<Claimed<J>>,
    ) -> Result<()> {
        let Some(job) = J::from_fields(fields_of(entry.map)) else {
            let letter = DeadLetter {
                job_id: JobId(Uuid::nil()),
                device: DeviceId(Uuid::nil()),
                attempts,
                error: "unreadable job".to_owned(),
            };
            return self.bury(shard, &entry.id, letter).await;
        };
        if attempts > self.policy.max_attempts {
            let letter = DeadLetter {
                job_id: job.job_id(),
                device: job.device(),
                attempts: attempts - 1,
                error: "not acknowledged within the visibility timeout".to_owned(),
            };
            return self.bury(shard, &entry.id, letter).await;
        }
        if self.stale(&job) {
            redis::cmd("INCR")
                .arg(&self.dropped)
                .query_async::<()>(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            return self.forget(shard, &entry.id).await;
        }
        out.push(Claimed {
            job,
            receipt: Receipt {
                shard,
                entry: entry.id,
            },
            attempts,
        });
        Ok(())
    }

    /// Take over claims that lapsed, oldest first.
    async fn reclaim(&self, consumer: &str, max: usize, out: &mut Vec<Claimed<J>>) -> Result<()> {
        let mut conn = self.conn.clone();
        for shard in 0..self.shards() {
            if out.len() >= max {
                break;
            }
            let key = self.key(shard);
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(key)
                .arg(self.group)
                .arg(consumer)
                .arg(self.policy.visibility.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(max - out.len())
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            for entry in reply.claimed {
                let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                    .arg(key)
                    .arg(self.group)
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

/// An entry's fields as bytes (values come back as bulk strings), moved
/// out of the reply rather than copied.
fn fields_of(map: std::collections::HashMap<String, redis::Value>) -> JobFields {
    map.into_iter()
        .filter_map(|(name, value)| match value {
            redis::Value::BulkString(bytes) => Some((name, bytes)),
            other => redis::from_redis_value::<Vec<u8>>(other)
                .ok()
                .map(|bytes| (name, bytes)),
        })
        .collect()
}

#[async_trait]
impl<J: QueueJob> JobQueue<J> for RedisJobQueue<J> {
    async fn enqueue(&self, job: &J) -> Result<()> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.key(self.policy.shard_of(job.device())))
            // Exact: a job beyond the bound is one eviction, and the bound holds.
            .arg("MAXLEN")
            .arg(self.policy.max_len)
            .arg("*");
        for (name, value) in job.to_fields() {
            cmd.arg(name).arg(value.as_ref());
        }
        cmd.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn pull(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Claimed<J>>> {
        let mut out = Vec::new();
        self.reclaim(consumer, max, &mut out).await?;
        if out.len() >= max {
            return Ok(out);
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(self.group)
            .arg(consumer)
            .arg("COUNT")
            .arg(max - out.len());
        if out.is_empty() && !wait.is_zero() {
            cmd.arg("BLOCK").arg(wait.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.keys);
        for _ in 0..self.shards() {
            cmd.arg(">");
        }
        let reply: Option<StreamReadReply> = {
            let mut conn = self.blocking.lock().await;
            cmd.query_async(&mut *conn).await.map_err(unavailable)?
        };
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(shard) = self.keys.iter().position(|k| *k == stream.key) else {
                continue;
            };
            let shard = shard as u16;
            for entry in stream.ids {
                self.admit(shard, entry, 1, &mut out).await?;
            }
        }
        Ok(out)
    }

    async fn ack(&self, receipt: &Receipt) -> Result<()> {
        self.forget(receipt.shard, &receipt.entry).await
    }

    async fn fail(&self, claimed: &Claimed<J>, error: &str) -> Result<()> {
        if claimed.attempts < self.policy.max_attempts {
            return Ok(()); // retried once the claim lapses
        }
        let letter = DeadLetter {
            job_id: claimed.job.job_id(),
            device: claimed.job.device(),
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
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let pending: StreamPendingReply = redis::cmd("XPENDING")
                .arg(key)
                .arg(self.group)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let first: StreamRangeReply = redis::cmd("XRANGE")
                .arg(key)
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
            let created = first
                .ids
                .into_iter()
                .next()
                .and_then(|e| J::from_fields(fields_of(e.map)))
                .map(|job| job.created_at_ms());
            if let Some(c) = created {
                oldest = Some(oldest.map_or(c, |o| o.min(c)));
            }
        }
        stats.oldest_age_ms = oldest.map(|c| now_ms().saturating_sub(c));
        let dropped: Option<u64> = redis::cmd("GET")
            .arg(&self.dropped)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        stats.dropped_stale = dropped.unwrap_or(0);
        stats.dead_letters = redis::cmd("XLEN")
            .arg(&self.dead)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(stats)
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.dead)
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
