//! In-process stream slots for the embedded (single node) mode. One mutex
//! makes every operation atomic; takeovers are told to the local watcher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::{SlotGrant, StreamSlots, TakenOver};

use super::watchers::Watchers;

#[derive(Default)]
struct UserSlots {
    /// Lease -> expiry.
    leases: HashMap<String, Instant>,
    /// Abandoned lease -> when that record lapses.
    abandoned: HashMap<String, Instant>,
}

#[derive(Default)]
pub struct MemorySlots {
    // std Mutex: short map updates, never held across an await.
    users: Mutex<HashMap<UserId, UserSlots>>,
    watchers: Arc<Watchers>,
}

impl MemorySlots {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_user<T>(&self, user: UserId, f: impl FnOnce(&mut UserSlots, Instant) -> T) -> T {
        let now = Instant::now();
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let slots = users.entry(user).or_default();
        slots.leases.retain(|_, expires| *expires > now);
        slots.abandoned.retain(|_, until| *until > now);
        let out = f(slots, now);
        if slots.leases.is_empty() && slots.abandoned.is_empty() {
            users.remove(&user);
        }
        out
    }
}

#[async_trait]
impl StreamSlots for MemorySlots {
    async fn acquire(
        &self,
        user: UserId,
        lease: &str,
        limit: u32,
        ttl: Duration,
        replaces: Option<&str>,
    ) -> Result<SlotGrant> {
        let limit = limit as usize;
        let (grant, replaced) = self.with_user(user, |s, now| {
            if s.abandoned.contains_key(lease) {
                return (SlotGrant::Abandoned, None);
            }
            let held = s.leases.contains_key(lease);
            let mut replaced = None;
            if !held
                && s.leases.len() <= limit
                && let Some(old) = replaces.filter(|old| *old != lease)
                && s.leases.remove(old).is_some()
            {
                replaced = Some(old.to_owned());
            }
            if !held && s.leases.len() >= limit {
                let earliest = s.leases.values().min().copied().unwrap_or(now + ttl);
                let retry_after = earliest.saturating_duration_since(now);
                return (SlotGrant::Full { retry_after }, replaced);
            }
            s.leases.insert(lease.to_owned(), now + ttl);
            let grant = SlotGrant::Granted {
                replaced: replaced.is_some(),
            };
            (grant, replaced)
        });
        if let Some(old) = replaced {
            self.watchers.notify(user, &old);
        }
        Ok(grant)
    }

    async fn renew(&self, user: UserId, lease: &str, ttl: Duration) -> Result<bool> {
        Ok(
            self.with_user(user, |s, now| match s.leases.get_mut(lease) {
                Some(expires) => {
                    *expires = now + ttl;
                    true
                }
                None => false,
            }),
        )
    }

    async fn release(&self, user: UserId, lease: &str) -> Result<()> {
        self.with_user(user, |s, _| s.leases.remove(lease));
        Ok(())
    }

    async fn abandon(&self, user: UserId, lease: &str, ttl: Duration) -> Result<()> {
        self.with_user(user, |s, now| {
            s.leases.remove(lease);
            s.abandoned.insert(lease.to_owned(), now + ttl);
        });
        Ok(())
    }

    fn watch(&self, user: UserId, lease: &str) -> TakenOver {
        self.watchers.watch(user, lease)
    }
}
