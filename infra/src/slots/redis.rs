//! Redis stream slots: a sorted set of leases per user (score = expiry), plus
//! a sorted set of abandoned leases, changed only by Lua scripts on the server
//! clock, so every replica sees one consistent count.
//!
//! A takeover is published on one channel (`redis_keys::stream_takeovers`)
//! by the script that does it; every process keeps one pub/sub connection
//! subscribed to it and ends the replaced stream if it serves it. If that
//! connection drops, it reconnects with backoff; a notice sent meanwhile is
//! lost and the replaced stream ends at its next renewal instead.

use std::sync::Arc;
use std::time::Duration;

use crate::redis_conn::RedisConn;
use async_trait::async_trait;
use futures::StreamExt;
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::{SlotGrant, StreamSlots, TakenOver};
use panoptes_shared::{Error, Result};
use tokio::sync::{oneshot, watch};

use super::watchers::Watchers;
use crate::redis_keys;

/// How long connecting and subscribing the takeover listener may take.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RedisSlots {
    conn: RedisConn,
    prefix: String,
    acquire: redis::Script,
    renew: redis::Script,
    abandon: redis::Script,
    watchers: Arc<Watchers>,
    /// Dropped with the adapter: stops the takeover listener.
    _stop: oneshot::Sender<()>,
}

impl RedisSlots {
    /// The adapter, with its takeover listener subscribed (waits for Redis
    /// to confirm, at most a few seconds).
    pub async fn connect(
        client: redis::Client,
        conn: RedisConn,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        let prefix = prefix.into();
        let watchers = Arc::new(Watchers::default());
        let (stop, stopped) = oneshot::channel();
        let (up, mut is_up) = watch::channel(false);
        tokio::spawn(listen(
            client,
            redis_keys::stream_takeovers(&prefix),
            Arc::downgrade(&watchers),
            up,
            stopped,
        ));
        tokio::time::timeout(SUBSCRIBE_TIMEOUT * 2, is_up.wait_for(|up| *up))
            .await
            .map_err(|_| {
                Error::unavailable("redis", "the stream takeover listener did not subscribe")
            })?
            .map_err(|e| Error::unavailable("redis", e))?;
        Ok(Self {
            conn,
            prefix,
            acquire: redis::Script::new(include_str!("acquire.lua")),
            renew: redis::Script::new(include_str!("renew.lua")),
            abandon: redis::Script::new(include_str!("abandon.lua")),
            watchers,
            _stop: stop,
        })
    }

    fn keys(&self, user: UserId) -> (String, String) {
        let user = user.to_string();
        (
            redis_keys::stream_leases(&self.prefix, &user),
            redis_keys::stream_abandoned(&self.prefix, &user),
        )
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl StreamSlots for RedisSlots {
    async fn acquire(
        &self,
        user: UserId,
        lease: &str,
        limit: u32,
        ttl: Duration,
        replaces: Option<&str>,
    ) -> Result<SlotGrant> {
        let (leases, abandoned) = self.keys(user);
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = self
            .acquire
            .key(leases)
            .key(abandoned)
            .arg(lease)
            .arg(limit)
            .arg(millis(ttl))
            .arg(replaces.unwrap_or_default())
            .arg(redis_keys::stream_takeovers(&self.prefix))
            .arg(user.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))?;
        Ok(match reply.as_slice() {
            [1, replaced] => SlotGrant::Granted {
                replaced: *replaced == 1,
            },
            [0, ms] => SlotGrant::Full {
                retry_after: Duration::from_millis(u64::try_from(*ms).unwrap_or(0)),
            },
            [2] => SlotGrant::Abandoned,
            _ => return Err(Error::internal("unexpected reply from the slot script")),
        })
    }

    async fn renew(&self, user: UserId, lease: &str, ttl: Duration) -> Result<bool> {
        let (leases, _) = self.keys(user);
        let mut conn = self.conn.clone();
        let renewed: i64 = self
            .renew
            .key(leases)
            .arg(lease)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))?;
        Ok(renewed == 1)
    }

    async fn release(&self, user: UserId, lease: &str) -> Result<()> {
        let (leases, _) = self.keys(user);
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(&leases)
            .arg(lease)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))
    }

    async fn abandon(&self, user: UserId, lease: &str, ttl: Duration) -> Result<()> {
        let (leases, abandoned) = self.keys(user);
        let mut conn = self.conn.clone();
        self.abandon
            .key(leases)
            .key(abandoned)
            .arg(lease)
            .arg(millis(ttl))
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))
    }

    fn watch(&self, user: UserId, lease: &str) -> TakenOver {
        self.watchers.watch(user, lease)
    }
}

/// Keeps one pub/sub connection subscribed to the takeover channel and tells
/// the local watchers; reconnects with backoff. Ends when the adapter is dropped.
async fn listen(
    client: redis::Client,
    channel: String,
    watchers: std::sync::Weak<Watchers>,
    up: watch::Sender<bool>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = tokio::select! {
            s = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe(&client, &channel)) => s,
            _ = &mut stopped => return,
        };
        let mut messages = match subscribed {
            Ok(Ok(pubsub)) => pubsub.into_on_message(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot subscribe to stream takeovers; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = &mut stopped => return,
                }
                backoff = (backoff * 2).min(SUBSCRIBE_TIMEOUT);
                continue;
            }
            Err(_) => {
                tracing::warn!("subscribing to stream takeovers timed out; retrying");
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        up.send_replace(true);
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                _ = &mut stopped => return,
            };
            let Some(msg) = msg else { break };
            let Some(watchers) = watchers.upgrade() else {
                return;
            };
            let notice = msg.get_payload::<String>().ok().and_then(|p| {
                let (user, lease) = p.split_once('|')?;
                Some((user.parse::<UserId>().ok()?, lease.to_owned()))
            });
            match notice {
                Some((user, lease)) => watchers.notify(user, &lease),
                None => tracing::warn!("ignoring a malformed stream takeover notice"),
            }
        }
        up.send_replace(false);
        tracing::warn!("stream takeover listener lost its connection; reconnecting");
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}
