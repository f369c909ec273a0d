//! In-process event bus: a replay buffer and live subscribers per user, under
//! one lock per publish (so buffer order and delivery order agree).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::bus::{REPLAY_MIN_AGE_MS, REPLAY_MIN_EVENTS, parse_event_id};
use panoptes_shared::ports::{BusEvent, EventBus, Offset, Publication, ResumePoint, Subscription};
use tokio::sync::mpsc;

use super::SUBSCRIBER_QUEUE;

#[derive(Default)]
struct UserLog {
    events: VecDeque<BusEvent>,
    last: Offset,
    subscribers: Vec<(u64, mpsc::Sender<BusEvent>)>,
}

#[derive(Default)]
struct Inner {
    // std Mutex: held for a push and a few try_sends, never across an await.
    users: Mutex<HashMap<UserId, UserLog>>,
    next_subscriber: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Drop the oldest events that are both beyond the newest `REPLAY_MIN_EVENTS`
/// and older than `REPLAY_MIN_AGE_MS`.
fn trim(log: &mut UserLog, now: u64) {
    while log.events.len() > REPLAY_MIN_EVENTS
        && log
            .events
            .front()
            .is_some_and(|e| e.offset.ms + REPLAY_MIN_AGE_MS < now)
    {
        log.events.pop_front();
    }
}

struct Unsubscribe {
    bus: Arc<Inner>,
    user: UserId,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let mut users = self.bus.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = users.get_mut(&self.user) {
            log.subscribers.retain(|(id, _)| *id != self.id);
        }
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, p: &Publication) -> Result<BusEvent> {
        let now = now_ms();
        let mut users = self.inner.users.lock().unwrap_or_else(|p| p.into_inner());
        let log = users.entry(p.user).or_default();
        // One millisecond per event of a user (see the Redis adapter): ids stay unique.
        let offset = Offset {
            ms: now.max(log.last.ms + 1),
            seq: 0,
        };
        log.last = offset;
        let event = BusEvent {
            offset,
            device: p.device,
            task: p.task,
            data: p.data.as_str().into(),
        };
        log.events.push_back(event.clone());
        trim(log, now);
        // A full or closed queue ends that subscription: its consumer resumes by offset.
        log.subscribers
            .retain(|(_, tx)| tx.try_send(event.clone()).is_ok());
        Ok(event)
    }

    async fn subscribe(&self, user: UserId) -> Result<Subscription> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let id = self
            .inner
            .next_subscriber
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(user)
            .or_default()
            .subscribers
            .push((id, tx));
        Ok(Subscription::new(
            rx,
            Box::new(Unsubscribe {
                bus: self.inner.clone(),
                user,
                id,
            }),
        ))
    }

    async fn replay_after(
        &self,
        user: UserId,
        after: Offset,
        limit: usize,
    ) -> Result<Vec<BusEvent>> {
        let users = self.inner.users.lock().unwrap_or_else(|p| p.into_inner());
        Ok(users
            .get(&user)
            .map(|log| {
                log.events
                    .iter()
                    .filter(|e| e.offset > after)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn resolve(&self, user: UserId, event_id: &str) -> Result<Option<ResumePoint>> {
        let Some((task, ms)) = parse_event_id(event_id) else {
            return Ok(None);
        };
        let users = self.inner.users.lock().unwrap_or_else(|p| p.into_inner());
        let found = users.get(&user).and_then(|log| {
            log.events
                .iter()
                .find(|e| e.offset.ms == ms && e.task == task)
                .map(|e| e.offset)
        });
        Ok(Some(match found {
            Some(after) => ResumePoint { after, exact: true },
            None => ResumePoint {
                after: Offset { ms, seq: u64::MAX },
                exact: false,
            },
        }))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
