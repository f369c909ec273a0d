//! Detection results on Redis: one stream per device (`XADD`, MAXLEN ~), a
//! marker key per job id set in the same script (idempotent appends), a
//! committed cursor per device and a sorted set of recently active devices.

use std::time::Duration;

use crate::redis_conn::RedisConn;
use async_trait::async_trait;
use panoptes_shared::domain::detection::DetectionResult;
use panoptes_shared::ids::DeviceId;
use panoptes_shared::ports::bus::Offset;
use panoptes_shared::ports::detections::DetectionLog;
use panoptes_shared::ports::jobs::now_ms;
use panoptes_shared::{Error, Result};
use redis::streams::StreamRangeReply;

use crate::redis_keys;

/// Results kept per device stream (approximately).
const KEPT_PER_DEVICE: usize = 10_000;
/// How long a job id is remembered: far beyond any reclaim of the job.
const JOB_MARKER_TTL: Duration = Duration::from_secs(6 * 3600);
/// Committed cursors of devices that stopped reporting are forgotten after this.
const CURSOR_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct RedisDetectionLog {
    conn: RedisConn,
    prefix: String,
    append: redis::Script,
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable("redis", e)
}

impl RedisDetectionLog {
    pub fn new(conn: RedisConn, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            append: redis::Script::new(include_str!("append.lua")),
        }
    }
}

#[async_trait]
impl DetectionLog for RedisDetectionLog {
    async fn append(&self, result: &DetectionResult) -> Result<bool> {
        let device = result.device_id.to_string();
        let json = serde_json::to_string(result).map_err(Error::internal)?;
        let mut conn = self.conn.clone();
        let added: i64 = self
            .append
            .key(redis_keys::detections(&self.prefix, &device))
            .key(redis_keys::detection_job(
                &self.prefix,
                &device,
                &result.job_id.to_string(),
            ))
            .arg(json)
            .arg(JOB_MARKER_TTL.as_millis() as u64)
            .arg(KEPT_PER_DEVICE)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if added == 1 {
            let active = redis_keys::detections_active(&self.prefix);
            let now = now_ms();
            redis::pipe()
                .zadd(&active, &device, now)
                .ignore()
                .zrembyscore(
                    &active,
                    0,
                    now.saturating_sub(CURSOR_TTL.as_millis() as u64),
                )
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(added == 1)
    }

    async fn active_devices(&self, within: Duration) -> Result<Vec<DeviceId>> {
        let mut conn = self.conn.clone();
        let since = now_ms().saturating_sub(within.as_millis() as u64);
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(redis_keys::detections_active(&self.prefix))
            .arg(since)
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    async fn read(
        &self,
        device: DeviceId,
        after: Offset,
        max: usize,
    ) -> Result<Vec<(Offset, DetectionResult)>> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(redis_keys::detections(&self.prefix, &device.to_string()))
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(max.max(1))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(reply.ids.len());
        for entry in reply.ids {
            let offset: Offset = entry
                .id
                .parse()
                .map_err(|()| Error::internal(format!("bad stream id {}", entry.id)))?;
            let Some(json) = entry.get::<String>("r") else {
                tracing::warn!(%device, id = %entry.id, "detection entry without a result skipped");
                continue;
            };
            match serde_json::from_str(&json) {
                Ok(r) => out.push((offset, r)),
                Err(e) => {
                    tracing::warn!(%device, id = %entry.id, error = %e, "unreadable detection result skipped")
                }
            }
        }
        Ok(out)
    }

    async fn checkpoint(&self, device: DeviceId) -> Result<Offset> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(redis_keys::detections_cursor(
                &self.prefix,
                &device.to_string(),
            ))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(raw.and_then(|s| s.parse().ok()).unwrap_or(Offset::START))
    }

    async fn commit(&self, device: DeviceId, offset: Offset) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(redis_keys::detections_cursor(
                &self.prefix,
                &device.to_string(),
            ))
            .arg(offset.to_string())
            .arg("PX")
            .arg(CURSOR_TTL.as_millis() as u64)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }
}
