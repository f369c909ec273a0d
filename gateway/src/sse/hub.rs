//! The local hub: one bus subscription per active user on this node, fanned
//! out to that user's local streams through bounded queues.
//!
//! - The subscription is taken when the user's first local stream attaches
//!   and dropped (unsubscribing) when the last one detaches: a guard does it.
//! - A stream whose queue is full is cut off (its queue closes); it resumes
//!   with `Last-Event-ID`. Memory per stream is bounded by the queue.
//! - If the bus subscription ends (lost continuity), every local stream of the
//!   user is closed so that each resumes from its own last event.
//! - On shutdown every local stream is closed the same way, so that clients
//!   resume on another replica instead of waiting out the grace period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use panoptes_shared::Result;
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::{BusEvent, EventBus, Subscription};
use tokio::sync::mpsc;

/// An event as the hub hands it to local streams: encoded as an SSE frame
/// once, however many streams write it, and shared (a queue slot is one
/// pointer).
pub struct Delivery {
    pub event: BusEvent,
    pub frame: bytes::Bytes,
}

impl Delivery {
    pub fn new(event: BusEvent) -> Self {
        let frame =
            super::body::event_frame(&event.event_id(), super::stream::EVENT_NAME, &event.data);
        Self { event, frame }
    }
}

type Listeners = Arc<Mutex<Vec<(u64, mpsc::Sender<Arc<Delivery>>)>>>;

struct Feed {
    listeners: Listeners,
    pump: tokio::task::JoinHandle<()>,
}

pub struct Hub {
    bus: Arc<dyn EventBus>,
    // tokio Mutex: held across the bus SUBSCRIBE so one user never gets two.
    feeds: tokio::sync::Mutex<HashMap<UserId, Feed>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Local streams attached right now (for `/metrics`).
    streams: std::sync::atomic::AtomicU64,
    queue: usize,
    closed: std::sync::atomic::AtomicBool,
}

/// A local stream's membership in its user's feed. Dropping it detaches.
pub struct Attachment {
    pub events: mpsc::Receiver<Arc<Delivery>>,
    _guard: Detach,
}

struct Detach {
    hub: Arc<Hub>,
    user: UserId,
    id: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        let (hub, user, id) = (self.hub.clone(), self.user, self.id);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move { hub.detach(user, id).await });
    }
}

impl Hub {
    pub fn new(bus: Arc<dyn EventBus>, queue: usize) -> Arc<Self> {
        Arc::new(Self {
            bus,
            feeds: tokio::sync::Mutex::new(HashMap::new()),
            next_id: 0.into(),
            streams: 0.into(),
            queue,
            closed: false.into(),
        })
    }

    /// Join the user's feed, subscribing on the bus if this is the user's
    /// first stream here. Live from the moment this returns.
    pub async fn attach(self: &Arc<Self>, user: UserId) -> Result<Attachment> {
        let (tx, rx) = mpsc::channel(self.queue);
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut feeds = self.feeds.lock().await;
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(panoptes_shared::Error::unavailable(
                "gateway",
                "this node is shutting down",
            ));
        }
        let alive = feeds.get(&user).is_some_and(|f| !f.pump.is_finished());
        if !alive {
            let subscription = self.bus.subscribe(user).await?;
            let listeners: Listeners = Arc::default();
            let pump = tokio::spawn(pump(subscription, listeners.clone()));
            feeds.insert(user, Feed { listeners, pump });
        }
        if let Some(feed) = feeds.get(&user) {
            feed.listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((id, tx));
        }
        self.streams
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Attachment {
            events: rx,
            _guard: Detach {
                hub: self.clone(),
                user,
                id,
            },
        })
    }

    async fn detach(&self, user: UserId, id: u64) {
        self.streams
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let mut feeds = self.feeds.lock().await;
        let empty = feeds.get(&user).is_some_and(|f| {
            let mut l = f.listeners.lock().unwrap_or_else(|p| p.into_inner());
            l.retain(|(i, _)| *i != id);
            l.is_empty()
        });
        if empty && let Some(feed) = feeds.remove(&user) {
            // Dropping the pump drops the subscription: the bus unsubscribes.
            feed.pump.abort();
        }
    }

    /// End every local stream (each client resumes elsewhere by
    /// `Last-Event-ID`) and refuse new ones: the node is shutting down.
    pub async fn close(&self) {
        let mut feeds = self.feeds.lock().await;
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for (_, feed) in feeds.drain() {
            feed.pump.abort();
            feed.listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }

    /// Users with a live bus subscription on this node (for metrics and tests).
    pub async fn active_users(&self) -> usize {
        self.feeds.lock().await.len()
    }

    /// Streams attached on this node.
    pub fn active_streams(&self) -> u64 {
        self.streams.load(std::sync::atomic::Ordering::Relaxed)
    }
}

async fn pump(mut subscription: Subscription, listeners: Listeners) {
    while let Some(event) = subscription.next().await {
        let event = Arc::new(Delivery::new(event));
        let mut l = listeners.lock().unwrap_or_else(|p| p.into_inner());
        // A full queue is a slow client: cut it off, it resumes by Last-Event-ID.
        l.retain(|(_, tx)| tx.try_send(event.clone()).is_ok());
    }
    // Continuity lost: close every local stream so each resumes on its own.
    listeners.lock().unwrap_or_else(|p| p.into_inner()).clear();
}
