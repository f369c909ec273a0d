//! Write-throttled "last used / last seen" records: `lastUsedAt` of API keys
//! (at most once a minute per key per node: precise enough for "is this key
//! still used?") and `lastSeenAt` of devices (every few seconds). Either keeps
//! a store write off almost every request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use panoptes_shared::ids::ApiKeyId;
use panoptes_shared::ports::Store;

/// Says whether a key is due: at most once per `interval` per key.
pub struct Throttle<K> {
    interval: Duration,
    // std Mutex: a map lookup per request, never held across an await.
    last: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Copy> Throttle<K> {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    pub fn due(&self, key: K) -> bool {
        let mut map = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() > 100_000 {
            map.retain(|_, t| now.duration_since(*t) < self.interval);
        }
        match map.get(&key) {
            Some(t) if now.duration_since(*t) < self.interval => false,
            _ => {
                map.insert(key, now);
                true
            }
        }
    }
}

pub struct KeyUsage(Throttle<ApiKeyId>);

impl Default for KeyUsage {
    fn default() -> Self {
        Self(Throttle::new(Duration::from_secs(60)))
    }
}

impl KeyUsage {
    pub async fn record(&self, store: &dyn Store, key: ApiKeyId, at: DateTime<Utc>) {
        if self.0.due(key)
            && let Err(e) = store.touch_api_key(key, at).await
        {
            // Usage tracking must never fail a request.
            tracing::warn!(error = %e, "could not record API key use");
        }
    }
}
