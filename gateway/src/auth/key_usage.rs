//! `lastUsedAt` of API keys, written at most once a minute per key per node:
//! precise enough for "is this key still used?", and it keeps a write off
//! almost every authenticated request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use panoptes_shared::ids::ApiKeyId;
use panoptes_shared::ports::Store;

const INTERVAL: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct KeyUsage {
    // std Mutex: a map lookup per request, never held across an await.
    last_written: Mutex<HashMap<ApiKeyId, Instant>>,
}

impl KeyUsage {
    pub async fn record(&self, store: &dyn Store, key: ApiKeyId, at: DateTime<Utc>) {
        let due = {
            let mut map = self.last_written.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if map.len() > 100_000 {
                map.retain(|_, t| now.duration_since(*t) < INTERVAL);
            }
            match map.get(&key) {
                Some(t) if now.duration_since(*t) < INTERVAL => false,
                _ => {
                    map.insert(key, now);
                    true
                }
            }
        };
        if due && let Err(e) = store.touch_api_key(key, at).await {
            // Usage tracking must never fail a request.
            tracing::warn!(error = %e, "could not record API key use");
        }
    }
}
