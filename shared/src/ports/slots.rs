//! Stream slots: at most N concurrent SSE streams per user across every
//! gateway replica. A slot is a lease with an expiry that live streams renew;
//! a replica that dies stops renewing and its slots lapse.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::UserId;

/// Outcome of [`StreamSlots::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotGrant {
    Granted,
    /// Every slot is taken; the earliest lapses after this long.
    Full {
        retry_after: Duration,
    },
}

#[async_trait]
pub trait StreamSlots: Send + Sync + 'static {
    /// Take a slot for `lease` (unique per stream) if fewer than `limit` are
    /// live. Atomic across replicas. When full and `resume_ms` is given (the
    /// epoch millis of the client's Last-Event-ID), the slot of a stream that
    /// was last seen at or before that event, and renewed longest ago, is
    /// taken over: that is the client's own previous stream, whose server has
    /// not noticed the disconnect yet. Its owner finds out at its next renewal.
    async fn acquire(
        &self,
        user: UserId,
        lease: &str,
        limit: u32,
        ttl: Duration,
        resume_ms: Option<u64>,
    ) -> Result<SlotGrant>;
    /// Extend the lease and record the epoch millis of the last event the
    /// stream delivered. `false` when the lease is gone (lapsed or taken over):
    /// the stream must end.
    async fn renew(
        &self,
        user: UserId,
        lease: &str,
        ttl: Duration,
        last_event_ms: u64,
    ) -> Result<bool>;
    /// Give the slot back (idempotent).
    async fn release(&self, user: UserId, lease: &str) -> Result<()>;
}
