//! The gateway's side of stream slots: taking one so that a slot is never
//! left held by no stream, watching it, and giving it back.
//!
//! - The lease id is chosen before the call (it is derived from the new
//!   stream's token). When the acquire fails or times out, or the request is
//!   dropped while it waits, the store may still run it later: a stalled
//!   Redis that catches up does exactly that. So the lease is *abandoned* in
//!   the background: removed if it was taken, and refused if the acquire
//!   arrives afterwards, in whichever order the two reach the store. On one
//!   multiplexed Redis connection the abandon is written after the acquire
//!   and Redis runs them in that order even when it catches up late; the
//!   abandon record covers the other orders a reconnect can produce (the
//!   acquire still queued on the old connection, the abandon on the new
//!   one). The abandon is retried with backoff until the store confirms it
//!   (for at most one lease ttl; a lease nobody renews lapses after that).
//! - A stream's slot is released when the stream is dropped (a guard does
//!   it); a release that fails is retried the same way.
//! - Background work is bounded ([`MAX_PENDING`]); beyond that a lease is
//!   left to lapse with its ttl, and a warning says so.
//! - [`Slots::settled`] waits until no background slot work is pending (at
//!   shutdown, and in tests).

use std::sync::Arc;
use std::time::Duration;

use panoptes_shared::Error;
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::{SlotGrant, StreamSlots, StreamToken, TakenOver};
use tokio::sync::watch;

use super::SseSettings;

/// Background releases and abandons in flight at most, per node.
pub const MAX_PENDING: usize = 10_000;

/// First and longest wait between two abandon attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

pub struct Slots {
    port: Arc<dyn StreamSlots>,
    /// Background releases and abandons not yet confirmed by the store.
    pending: watch::Sender<usize>,
}

impl Slots {
    pub fn new(port: Arc<dyn StreamSlots>) -> Arc<Self> {
        Arc::new(Self {
            port,
            pending: watch::channel(0).0,
        })
    }

    /// The port itself (tests inspect it).
    pub fn port(&self) -> &Arc<dyn StreamSlots> {
        &self.port
    }

    /// Take a slot for the stream whose token is `token`, replacing the
    /// client's previous stream when `replaces` is that stream's token and it
    /// still holds its slot. 429 `SSE_CONNECTION_LIMIT` when full.
    pub async fn acquire(
        self: &Arc<Self>,
        user: UserId,
        token: &StreamToken,
        replaces: Option<&StreamToken>,
        settings: &SseSettings,
    ) -> Result<SlotGuard, Error> {
        let (limit, ttl) = (settings.max_streams_per_user, settings.lease_ttl);
        let lease = token.lease();
        // Until the store's answer is in, the lease may or may not be taken.
        let mut undecided = Undecided {
            slots: self.clone(),
            user,
            lease: Some(lease.clone()),
            ttl,
        };
        let replaces = replaces.map(StreamToken::lease);
        let grant = self
            .port
            .acquire(user, &lease, limit, ttl, replaces.as_deref())
            .await?;
        match grant {
            SlotGrant::Granted { replaced } => {
                undecided.lease = None;
                if replaced {
                    tracing::debug!(%user, "a stream took over its client's previous slot");
                }
                Ok(SlotGuard {
                    takeover: self.port.watch(user, &lease),
                    slots: self.clone(),
                    user,
                    lease,
                    ttl,
                })
            }
            SlotGrant::Full { retry_after } => {
                undecided.lease = None;
                Err(Error::StreamLimit { limit, retry_after })
            }
            // Only possible for a request this node already gave up on.
            SlotGrant::Abandoned => Err(Error::internal(
                "a stream slot was refused as abandoned while its request waited",
            )),
        }
    }

    /// Background slot work not yet confirmed by the store.
    pub fn pending(&self) -> usize {
        *self.pending.borrow()
    }

    /// Wait until no background release or abandon is pending.
    pub async fn settled(&self) {
        let mut rx = self.pending.subscribe();
        // The sender lives in `self`: the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Run `op` in the background, counted in `pending`; `false` (and
    /// nothing runs) when too much is pending already or there is no runtime.
    fn spawn<F>(self: &Arc<Self>, op: impl FnOnce(Arc<Self>) -> F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let mut admitted = false;
        self.pending.send_if_modified(|n| {
            admitted = *n < MAX_PENDING;
            *n += usize::from(admitted);
            admitted
        });
        if !admitted {
            return false;
        }
        let done = Done(self.clone());
        let work = op(self.clone());
        rt.spawn(async move {
            let _done = done;
            work.await;
        });
        true
    }

    /// Abandon `lease` in the background, retrying until the store confirms.
    fn abandon(self: &Arc<Self>, user: UserId, lease: String, ttl: Duration) {
        let spawned = self.spawn(move |slots| async move {
            let started = tokio::time::Instant::now();
            let mut wait = BACKOFF.0;
            loop {
                match slots.port.abandon(user, &lease, ttl).await {
                    Ok(()) => return,
                    Err(e) if started.elapsed() >= ttl => {
                        tracing::warn!(error = %e, "gave up abandoning a stream slot; it lapses with its lease");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "could not abandon a stream slot yet; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(BACKOFF.1);
                    }
                }
            }
        });
        if !spawned {
            tracing::warn!(
                "too much stream-slot work pending; an abandoned slot lapses with its lease"
            );
        }
    }

    /// Release `lease` in the background; a failed release is abandoned (retried).
    fn release(self: &Arc<Self>, user: UserId, lease: String, ttl: Duration) {
        let spawned = self.spawn(move |slots| async move {
            if let Err(e) = slots.port.release(user, &lease).await {
                tracing::debug!(error = %e, "could not release a stream slot; retrying as an abandon");
                slots.abandon(user, lease, ttl);
            }
        });
        if !spawned {
            tracing::warn!(
                "too much stream-slot work pending; a released slot lapses with its lease"
            );
        }
    }
}

/// Counts a background operation as done, however its task ends.
struct Done(Arc<Slots>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A lease whose acquire has no answer yet: dropped like that, it is abandoned.
struct Undecided {
    slots: Arc<Slots>,
    user: UserId,
    lease: Option<String>,
    ttl: Duration,
}

impl Drop for Undecided {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.slots.abandon(self.user, lease, self.ttl);
        }
    }
}

/// A stream's slot: renewed by the stream, released when dropped.
pub struct SlotGuard {
    slots: Arc<Slots>,
    user: UserId,
    lease: String,
    ttl: Duration,
    takeover: TakenOver,
}

impl SlotGuard {
    /// Extend the lease; `false` when it is gone (lapsed or taken over).
    pub async fn renew(&self) -> panoptes_shared::Result<bool> {
        self.slots
            .port
            .renew(self.user, &self.lease, self.ttl)
            .await
    }

    /// Resolves when another stream took this slot over (the client
    /// reconnected with this stream's token).
    pub async fn taken_over(&mut self) {
        self.takeover.wait().await;
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots
            .release(self.user, std::mem::take(&mut self.lease), self.ttl);
    }
}
