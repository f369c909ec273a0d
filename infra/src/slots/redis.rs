//! Redis stream slots: a sorted set of leases (score = expiry) and a hash of
//! lease metadata per user, changed only by Lua scripts on the server clock,
//! so every replica sees one consistent count.

use std::time::Duration;

use crate::redis_conn::RedisConn;
use async_trait::async_trait;
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::{SlotGrant, StreamSlots};
use panoptes_shared::{Error, Result};

use crate::redis_keys;

pub struct RedisSlots {
    conn: RedisConn,
    prefix: String,
    acquire: redis::Script,
    renew: redis::Script,
}

impl RedisSlots {
    pub fn new(conn: RedisConn, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            acquire: redis::Script::new(include_str!("acquire.lua")),
            renew: redis::Script::new(include_str!("renew.lua")),
        }
    }

    fn keys(&self, user: UserId) -> (String, String) {
        let user = user.to_string();
        (
            redis_keys::stream_leases(&self.prefix, &user),
            redis_keys::stream_lease_meta(&self.prefix, &user),
        )
    }
}

#[async_trait]
impl StreamSlots for RedisSlots {
    async fn acquire(
        &self,
        user: UserId,
        lease: &str,
        limit: u32,
        ttl: Duration,
        resume_ms: Option<u64>,
    ) -> Result<SlotGrant> {
        let (leases, meta) = self.keys(user);
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = self
            .acquire
            .key(leases)
            .key(meta)
            .arg(lease)
            .arg(limit)
            .arg(ttl.as_millis() as u64)
            .arg(resume_ms.map(|m| m.to_string()).unwrap_or_default())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))?;
        Ok(match reply.as_slice() {
            [1] => SlotGrant::Granted,
            [_, ms] => SlotGrant::Full {
                retry_after: Duration::from_millis(u64::try_from(*ms).unwrap_or(0)),
            },
            _ => return Err(Error::internal("unexpected reply from the slot script")),
        })
    }

    async fn renew(
        &self,
        user: UserId,
        lease: &str,
        ttl: Duration,
        last_event_ms: u64,
    ) -> Result<bool> {
        let (leases, meta) = self.keys(user);
        let mut conn = self.conn.clone();
        let renewed: i64 = self
            .renew
            .key(leases)
            .key(meta)
            .arg(lease)
            .arg(ttl.as_millis() as u64)
            .arg(last_event_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))?;
        Ok(renewed == 1)
    }

    async fn release(&self, user: UserId, lease: &str) -> Result<()> {
        let (leases, meta) = self.keys(user);
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("ZREM")
            .arg(&leases)
            .arg(lease)
            .ignore()
            .cmd("HDEL")
            .arg(&meta)
            .arg(lease)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))
    }
}
