//! In-process stream slots for the embedded (single node) mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::{SlotGrant, StreamSlots};

struct Lease {
    expires: Instant,
    renewed: Instant,
    last_event_ms: u64,
}

#[derive(Default)]
pub struct MemorySlots {
    // std Mutex: short map updates, never held across an await.
    users: Mutex<HashMap<UserId, HashMap<String, Lease>>>,
}

impl MemorySlots {
    pub fn new() -> Self {
        Self::default()
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
        resume_ms: Option<u64>,
    ) -> Result<SlotGrant> {
        let now = Instant::now();
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let leases = users.entry(user).or_default();
        leases.retain(|_, l| l.expires > now);
        if leases.len() >= limit as usize
            && let Some(ms) = resume_ms
        {
            let previous = leases
                .iter()
                .filter(|(_, l)| l.last_event_ms <= ms)
                .min_by_key(|(_, l)| l.renewed)
                .map(|(k, _)| k.clone());
            if let Some(k) = previous {
                leases.remove(&k);
            }
        }
        if leases.len() >= limit as usize {
            let earliest = leases.values().map(|l| l.expires).min().unwrap_or(now);
            return Ok(SlotGrant::Full {
                retry_after: earliest.saturating_duration_since(now),
            });
        }
        leases.insert(
            lease.to_owned(),
            Lease {
                expires: now + ttl,
                renewed: now,
                last_event_ms: 0,
            },
        );
        Ok(SlotGrant::Granted)
    }

    async fn renew(
        &self,
        user: UserId,
        lease: &str,
        ttl: Duration,
        last_event_ms: u64,
    ) -> Result<bool> {
        let now = Instant::now();
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        Ok(
            match users
                .get_mut(&user)
                .and_then(|l| l.get_mut(lease))
                .filter(|l| l.expires > now)
            {
                Some(l) => {
                    l.expires = now + ttl;
                    l.renewed = now;
                    l.last_event_ms = last_event_ms;
                    true
                }
                None => false,
            },
        )
    }

    async fn release(&self, user: UserId, lease: &str) -> Result<()> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(leases) = users.get_mut(&user) {
            leases.remove(lease);
            if leases.is_empty() {
                users.remove(&user);
            }
        }
        Ok(())
    }
}
