//! Server-Sent Events: the per-node hub that shares one bus subscription per
//! active user among that user's local streams, and the stream itself
//! (replay from `Last-Event-ID`, live events, keep-alive, idle close, lease).

pub mod body;
pub mod demo;
pub mod hub;
pub mod reconnect;
pub mod slots;
pub mod stream;

use std::time::Duration;

use panoptes_shared::config::SseConfig;

/// SSE settings, from config.
#[derive(Debug, Clone, Copy)]
pub struct SseSettings {
    pub keep_alive: Duration,
    pub idle_timeout: Duration,
    pub max_streams_per_user: u32,
    pub lease_ttl: Duration,
    pub queue_events: usize,
    pub ticket_ttl: Duration,
}

impl From<&SseConfig> for SseSettings {
    fn from(c: &SseConfig) -> Self {
        Self {
            keep_alive: Duration::from_millis(c.keep_alive_ms),
            idle_timeout: Duration::from_millis(c.idle_timeout_ms),
            max_streams_per_user: c.max_streams_per_user,
            lease_ttl: Duration::from_millis(c.lease_ttl_ms),
            queue_events: c.queue_events,
            ticket_ttl: Duration::from_secs(c.ticket_ttl_seconds),
        }
    }
}

impl Default for SseSettings {
    fn default() -> Self {
        Self::from(&SseConfig::default())
    }
}
