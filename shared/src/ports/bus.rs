//! The event bus: per-user live events plus a replay buffer, so a client that
//! reconnects (to any gateway) receives what it missed.
//!
//! Guarantees every adapter gives (the conformance suite checks them):
//! - `publish` appends to the user's buffer and delivers to live subscribers
//!   atomically: subscribers see events in buffer order, offsets strictly increase.
//! - `subscribe` returns only once the subscription is active, so
//!   subscribe-then-`replay_after` misses nothing (duplicates are possible and
//!   are dropped by offset).
//! - A subscription that ends (`None`) has lost continuity (the consumer was too
//!   slow, or the connection to the bus dropped): resume from the last offset seen.
//! - Each event of a user has its own millisecond (`offset.seq` is 0): the
//!   server clock, or one past the previous event under bursts, so the SSE id
//!   `<taskId>-<epochMillis>` names exactly one event and resume is exact.
//! - The buffer keeps at least [`REPLAY_MIN_EVENTS`] events and at least
//!   [`REPLAY_MIN_AGE_MS`] of them, whichever is more.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{DeviceId, TaskId, UserId};

pub const REPLAY_MIN_EVENTS: usize = 1_000;
pub const REPLAY_MIN_AGE_MS: u64 = 5 * 60 * 1000;

/// Position of an event in a user's buffer: milliseconds and a sequence number
/// within that millisecond (the shape of a Redis stream id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    pub ms: u64,
    pub seq: u64,
}

impl Offset {
    pub const START: Offset = Offset { ms: 0, seq: 0 };
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for Offset {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.split_once('-').ok_or(())?;
        Ok(Self {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// What a publisher hands to the bus.
#[derive(Debug, Clone)]
pub struct Publication {
    pub user: UserId,
    pub device: DeviceId,
    /// The analysis task: the `<taskId>` of the SSE event id.
    pub task: TaskId,
    /// The event's JSON payload, already serialised.
    pub data: String,
}

/// An event as subscribers receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    pub offset: Offset,
    pub device: DeviceId,
    pub task: TaskId,
    pub data: Arc<str>,
}

impl BusEvent {
    /// The SSE event id, as documented: `<taskId>-<epochMillis>`.
    pub fn event_id(&self) -> String {
        format!("{}-{}", self.task, self.offset.ms)
    }
}

/// Where a resuming client continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// Replay everything strictly after this offset.
    pub after: Offset,
    /// Whether the client's last event is still in the buffer. When it is not,
    /// replay starts after its millisecond and events may have been missed.
    pub exact: bool,
}

/// Split an SSE event id `<taskId>-<epochMillis>`.
pub fn parse_event_id(id: &str) -> Option<(TaskId, u64)> {
    let (task, ms) = id.rsplit_once('-')?;
    Some((task.parse().ok()?, ms.parse().ok()?))
}

/// A live subscription to one user's events. Dropping it unsubscribes.
pub struct Subscription {
    events: tokio::sync::mpsc::Receiver<BusEvent>,
    _guard: Box<dyn Send + Sync>,
}

impl Subscription {
    pub fn new(events: tokio::sync::mpsc::Receiver<BusEvent>, guard: Box<dyn Send + Sync>) -> Self {
        Self {
            events,
            _guard: guard,
        }
    }

    /// The next event; `None` when continuity was lost (see the module docs).
    pub async fn next(&mut self) -> Option<BusEvent> {
        self.events.recv().await
    }
}

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Append to the user's buffer and deliver to live subscribers.
    async fn publish(&self, publication: &Publication) -> Result<BusEvent>;
    /// Live events of `user`, from the moment this returns.
    async fn subscribe(&self, user: UserId) -> Result<Subscription>;
    /// Buffered events strictly after `after`, oldest first, at most `limit`.
    async fn replay_after(
        &self,
        user: UserId,
        after: Offset,
        limit: usize,
    ) -> Result<Vec<BusEvent>>;
    /// Where to resume for a client whose last event id is `event_id`.
    /// `None` when the id is not a valid event id.
    async fn resolve(&self, user: UserId, event_id: &str) -> Result<Option<ResumePoint>>;
    /// Which backend this is (`memory`, `redis`).
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_and_offsets_round_trip() {
        let e = BusEvent {
            offset: Offset {
                ms: 1_738_000_000_000,
                seq: 3,
            },
            device: DeviceId::new(),
            task: TaskId::new(),
            data: "{}".into(),
        };
        assert_eq!(
            parse_event_id(&e.event_id()),
            Some((e.task, 1_738_000_000_000))
        );
        assert_eq!("17-4".parse::<Offset>(), Ok(Offset { ms: 17, seq: 4 }));
        assert!(Offset { ms: 1, seq: 9 } < Offset { ms: 2, seq: 0 });
        assert_eq!(parse_event_id("task-uuid-1738000000000"), None);
    }
}
