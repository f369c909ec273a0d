//! Stream slots: at most N concurrent SSE streams per user across every
//! gateway replica. A slot is a lease with an expiry that live streams renew;
//! a replica that dies stops renewing and its slots lapse.
//!
//! Taking over a slot needs proof: each stream's client is given a secret
//! [`StreamToken`] and the slot's lease id is derived from it. A reconnecting
//! client that presents its previous stream's token replaces that stream's
//! lease (once: the new stream has a new token). Nothing else a client sends
//! (a `Last-Event-ID`, say) can free someone else's slot.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::UserId;

/// Outcome of [`StreamSlots::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotGrant {
    /// The slot is taken; `replaced` when the lease named by `replaces` was
    /// still held and was taken over.
    Granted { replaced: bool },
    /// Every slot is taken; the earliest lapses after this long.
    Full { retry_after: Duration },
    /// The lease was [abandoned](StreamSlots::abandon) before this request
    /// reached the store: nothing was taken. Only a caller that already gave
    /// up on the request can see this.
    Abandoned,
}

#[async_trait]
pub trait StreamSlots: Send + Sync + 'static {
    /// Take a slot for `lease` (unique per stream) if fewer than `limit` are
    /// live. Atomic across replicas. When `replaces` names a lease of this
    /// user that is still held (the client's previous stream, proven by its
    /// stream token), that lease is removed in the same step and its holder
    /// is told through [`watch`](Self::watch): the new stream takes its
    /// place even at the limit. A lease can be replaced at most once (it is
    /// gone afterwards). Acquiring a lease that is already held renews it.
    async fn acquire(
        &self,
        user: UserId,
        lease: &str,
        limit: u32,
        ttl: Duration,
        replaces: Option<&str>,
    ) -> Result<SlotGrant>;
    /// Extend the lease. `false` when the lease is gone (lapsed or taken
    /// over): the stream must end.
    async fn renew(&self, user: UserId, lease: &str, ttl: Duration) -> Result<bool>;
    /// Give the slot back (idempotent).
    async fn release(&self, user: UserId, lease: &str) -> Result<()>;
    /// Give up a lease whose `acquire` failed or timed out, so it may or may
    /// not have been taken (the request may still be on its way to the
    /// store): the lease is removed if held, and an `acquire` of it that
    /// reaches the store later, in any order, takes nothing (it answers
    /// [`SlotGrant::Abandoned`]) for `ttl`. Idempotent: retry it until it
    /// succeeds.
    async fn abandon(&self, user: UserId, lease: &str, ttl: Duration) -> Result<()>;
    /// Learn when `lease` is taken over by another stream's `acquire`, on any
    /// replica. Best effort (a notice can be lost while the store reconnects):
    /// [`renew`](Self::renew) answering `false` remains the authority.
    fn watch(&self, user: UserId, lease: &str) -> TakenOver;
}

/// Resolves when the watched lease is taken over; dropping it stops watching.
pub struct TakenOver {
    notice: Option<tokio::sync::oneshot::Receiver<()>>,
    _guard: Box<dyn Send + Sync>,
}

impl TakenOver {
    /// `notice` fires on takeover; `guard` deregisters the watch when dropped.
    pub fn new(notice: tokio::sync::oneshot::Receiver<()>, guard: Box<dyn Send + Sync>) -> Self {
        Self {
            notice: Some(notice),
            _guard: guard,
        }
    }

    /// Wait for the takeover. Pending forever when the adapter dropped the
    /// watch without a notice (it shut down): renewal still catches a loss.
    pub async fn wait(&mut self) {
        if let Some(rx) = self.notice.as_mut()
            && rx.await.is_ok()
        {
            self.notice = None;
            return;
        }
        self.notice = None;
        std::future::pending::<()>().await;
    }
}

/// The secret that proves a slot was a client's own: handed to the client
/// when its stream opens and presented when it reconnects. 32 random bytes,
/// base64url without padding (43 characters). The slot's lease id is its
/// SHA-256, so the store never holds a token and a lease id reveals none.
pub struct StreamToken(SecretString);

impl StreamToken {
    /// Characters in a token.
    pub const LEN: usize = 43;

    /// A fresh random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// A token as a client sent it in `field`: exactly the shape
    /// [`generate`](Self::generate) makes, or a validation error naming `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let ok = raw.len() == Self::LEN
            && URL_SAFE_NO_PAD
                .decode(raw)
                .is_ok_and(|bytes| bytes.len() == 32);
        if !ok {
            return Err(Error::validation(
                field,
                "must be the stream token this API sent when the previous stream opened",
            ));
        }
        Ok(Self(raw.to_owned().into()))
    }

    /// The token itself, to send to its client.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The lease id of the slot this token proves: hex SHA-256.
    pub fn lease(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"panoptes stream token v1\0");
        h.update(self.0.expose_secret().as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for StreamToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_parse_back_and_name_their_lease() {
        let (a, b) = (StreamToken::generate(), StreamToken::generate());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), StreamToken::LEN);
        let again = StreamToken::parse("streamToken", a.expose()).unwrap();
        assert_eq!(again.lease(), a.lease());
        assert_ne!(a.lease(), b.lease());
        assert_eq!(a.lease().len(), 64);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn anything_but_a_token_is_refused_naming_the_field() {
        let good = StreamToken::generate();
        let long = format!("{}A", good.expose());
        let bad_char = format!("{}*", &good.expose()[..42]);
        for raw in ["", "abc", long.as_str(), bad_char.as_str(), &"=".repeat(43)] {
            match StreamToken::parse("Stream-Token", raw) {
                Err(Error::Validation(e)) => assert_eq!(e.field, "Stream-Token"),
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
    }
}
