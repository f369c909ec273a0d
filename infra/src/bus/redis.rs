//! Redis event bus. Per user: a channel for live delivery and a capped stream
//! for replay, both written by one Lua script so they agree on order.
//!
//! One pub/sub connection per process carries every subscribed channel; a
//! reader task dispatches messages to subscribers. If that connection drops,
//! every subscription ends (its consumer resumes from the stream by offset)
//! and the reader reconnects with backoff; until it has, `subscribe` answers
//! `Unavailable`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::bus::{REPLAY_MIN_AGE_MS, REPLAY_MIN_EVENTS, parse_event_id};
use panoptes_shared::ports::{BusEvent, EventBus, Offset, Publication, ResumePoint, Subscription};
use panoptes_shared::{Error, Result};
use redis::aio::PubSubSink;

use crate::redis_conn::RedisConn;
use tokio::sync::mpsc;

use super::SUBSCRIBER_QUEUE;
use crate::redis_keys;

/// How long `subscribe` waits for Redis to confirm.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// An idle user's stream is dropped after this long without a publish.
const STREAM_IDLE_TTL_MS: u64 = 60 * 60 * 1000;

type Senders = Vec<(u64, mpsc::Sender<BusEvent>)>;

struct PubSubState {
    // std Mutex: map updates only, never held across an await.
    channels: Mutex<HashMap<String, Senders>>,
    // tokio Mutex: held across SUBSCRIBE/UNSUBSCRIBE so they apply in order.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    /// Whether the reader has a live connection (and `sink` is set).
    connected: tokio::sync::watch::Sender<bool>,
    next_id: AtomicU64,
}

#[derive(Clone)]
pub struct RedisBus {
    conn: RedisConn,
    prefix: String,
    script: Arc<redis::Script>,
    state: Arc<PubSubState>,
    /// Events younger than this are never trimmed from the replay buffer.
    min_age_ms: u64,
}

impl RedisBus {
    /// Keep events for at least `ms` (default [`REPLAY_MIN_AGE_MS`]); the
    /// buffer still keeps at least [`REPLAY_MIN_EVENTS`]. For tests.
    #[must_use]
    pub fn with_replay_min_age_ms(mut self, ms: u64) -> Self {
        self.min_age_ms = ms;
        self
    }

    /// Connect the pub/sub reader (and keep it connected) and the command connection.
    pub async fn connect(
        client: redis::Client,
        conn: RedisConn,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        let state = Arc::new(PubSubState {
            channels: Mutex::new(HashMap::new()),
            sink: tokio::sync::Mutex::new(None),
            connected: tokio::sync::watch::channel(false).0,
            next_id: AtomicU64::new(0),
        });
        let pubsub = client
            .get_async_pubsub()
            .await
            .map_err(|e| Error::unavailable("redis", e))?;
        tokio::spawn(read_loop(client, pubsub, Arc::downgrade(&state)));
        let bus = Self {
            conn,
            prefix: prefix.into(),
            script: Arc::new(redis::Script::new(include_str!("publish.lua"))),
            state,
            min_age_ms: REPLAY_MIN_AGE_MS,
        };
        bus.wait_connected(Duration::from_secs(5)).await?;
        Ok(bus)
    }

    /// Wait until the pub/sub connection is up (at start, or after a reconnect).
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let mut rx = self.state.connected.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|up| *up))
            .await
            .map_err(|_| {
                Error::unavailable(
                    "redis",
                    "timed out waiting for the redis pub/sub connection",
                )
            })?
            .map_err(|e| Error::unavailable("redis", e))?;
        Ok(())
    }

    fn key(&self, user: UserId) -> String {
        redis_keys::events(&self.prefix, &user.to_string())
    }

    async fn range(
        &self,
        user: UserId,
        start: String,
        end: String,
        limit: usize,
    ) -> Result<Vec<BusEvent>> {
        let mut conn = self.conn.clone();
        let rows: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg(self.key(user))
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, f)| event(&id, f.get("t")?, f.get("d")?, f.get("p")?))
            .collect())
    }
}

fn event(id: &str, task: &str, device: &str, data: &str) -> Option<BusEvent> {
    Some(BusEvent {
        offset: id.parse().ok()?,
        task: task.parse().ok()?,
        device: device.parse().ok()?,
        data: data.into(),
    })
}

/// `id|task|device|data` as the script publishes it.
fn parse_message(payload: &str) -> Option<BusEvent> {
    let mut parts = payload.splitn(4, '|');
    event(parts.next()?, parts.next()?, parts.next()?, parts.next()?)
}

/// Owns the pub/sub connection: dispatches messages; on disconnect ends every
/// subscription and reconnects. Stops when the bus is dropped.
async fn read_loop(
    client: redis::Client,
    first: redis::aio::PubSub,
    state: std::sync::Weak<PubSubState>,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let conn = match pubsub.take() {
            Some(p) => p,
            None => match client.get_async_pubsub().await {
                Ok(p) => {
                    backoff = Duration::from_millis(100);
                    p
                }
                Err(e) => {
                    tracing::warn!(error = %e, "redis pub/sub reconnect failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if state.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
            },
        };
        let (sink, mut stream) = conn.split();
        let Some(s) = state.upgrade() else { return };
        *s.sink.lock().await = Some(sink);
        s.connected.send_replace(true);
        drop(s);
        while let Some(msg) = stream.next().await {
            let Some(s) = state.upgrade() else { return };
            let channel = msg.get_channel_name().to_owned();
            let Some(event) = msg
                .get_payload::<String>()
                .ok()
                .and_then(|p| parse_message(&p))
            else {
                tracing::warn!(%channel, "ignoring a malformed bus message");
                continue;
            };
            let mut channels = s.channels.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(senders) = channels.get_mut(&channel) {
                // A full or closed queue ends that subscription: it resumes by offset.
                senders.retain(|(_, tx)| tx.try_send(event.clone()).is_ok());
            }
        }
        let Some(s) = state.upgrade() else { return };
        tracing::warn!("redis pub/sub connection lost; ending subscriptions and reconnecting");
        s.connected.send_replace(false);
        *s.sink.lock().await = None;
        s.channels.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

struct Unsubscribe {
    state: Arc<PubSubState>,
    channel: String,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let now_empty = {
            let mut channels = self
                .state
                .channels
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let empty = channels.get_mut(&self.channel).is_some_and(|s| {
                s.retain(|(id, _)| *id != self.id);
                s.is_empty()
            });
            if empty {
                channels.remove(&self.channel);
            }
            empty
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if now_empty {
            let (state, channel) = (self.state.clone(), std::mem::take(&mut self.channel));
            runtime.spawn(async move {
                let mut sink = state.sink.lock().await;
                let still_empty = !state
                    .channels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains_key(&channel);
                if let (true, Some(sink)) = (still_empty, sink.as_mut()) {
                    let _ = sink.unsubscribe(&channel).await;
                }
            });
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, p: &Publication) -> Result<BusEvent> {
        let key = self.key(p.user);
        let mut conn = self.conn.clone();
        let id: String = self
            .script
            .key(&key)
            .arg(&key)
            .arg(p.task.to_string())
            .arg(p.device.to_string())
            .arg(&p.data)
            .arg(REPLAY_MIN_EVENTS)
            .arg(self.min_age_ms)
            .arg(STREAM_IDLE_TTL_MS)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::unavailable("redis", e))?;
        let offset = id
            .parse()
            .map_err(|_| Error::internal(format!("unexpected stream id {id}")))?;
        Ok(BusEvent {
            offset,
            device: p.device,
            task: p.task,
            data: p.data.as_str().into(),
        })
    }

    async fn subscribe(&self, user: UserId) -> Result<Subscription> {
        let channel = self.key(user);
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let id = self.state.next_id.fetch_add(1, Ordering::Relaxed);
        let mut sink = self.state.sink.lock().await;
        let Some(sink) = sink.as_mut() else {
            return Err(Error::unavailable(
                "redis",
                "the redis pub/sub connection is reconnecting",
            ));
        };
        let first = {
            let mut channels = self
                .state
                .channels
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let senders = channels.entry(channel.clone()).or_default();
            senders.push((id, tx));
            senders.len() == 1
        };
        let guard = Unsubscribe {
            state: self.state.clone(),
            channel: channel.clone(),
            id,
        };
        if first {
            // Returns once Redis confirmed: from here on nothing published is missed.
            // Bounded: callers hold their own locks around this (the gateway hub does).
            tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.subscribe(&channel))
                .await
                .map_err(|_| {
                    Error::unavailable("redis", "redis did not confirm SUBSCRIBE in time")
                })?
                .map_err(|e| Error::unavailable("redis", e))?;
        }
        Ok(Subscription::new(rx, Box::new(guard)))
    }

    async fn replay_after(
        &self,
        user: UserId,
        after: Offset,
        limit: usize,
    ) -> Result<Vec<BusEvent>> {
        if after
            == (Offset {
                ms: u64::MAX,
                seq: u64::MAX,
            })
        {
            // Nothing can follow the last possible id (and Redis refuses an
            // exclusive range that starts there).
            return Ok(Vec::new());
        }
        self.range(user, format!("({after}"), "+".into(), limit)
            .await
    }

    async fn resolve(&self, user: UserId, event_id: &str) -> Result<Option<ResumePoint>> {
        let Some((task, ms)) = parse_event_id(event_id) else {
            return Ok(None);
        };
        let same_ms = self
            .range(
                user,
                format!("{ms}-0"),
                format!("{ms}-{}", u64::MAX),
                10_000,
            )
            .await?;
        Ok(Some(match same_ms.iter().find(|e| e.task == task) {
            Some(e) => ResumePoint {
                after: e.offset,
                exact: true,
            },
            None => ResumePoint {
                after: Offset { ms, seq: u64::MAX },
                exact: false,
            },
        }))
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<()> {
        self.conn.ping().await
    }
}
