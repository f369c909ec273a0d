//! This process as a compute node: its id, its heartbeat in the registry, and
//! the sweep that reports nodes whose heartbeat lapsed (`node_offline`; the
//! webhooks issue delivers it as an event).

use std::sync::Arc;
use std::time::Duration;

use panoptes_shared::ports::jobs::now_ms;
use panoptes_shared::ports::{JobQueue, NodeInfo, NodeRegistry, NodeStatus};
use tokio_util::sync::CancellationToken;

use crate::metrics::WorkerMetrics;

/// `<configured id>`, or `<hostname>-<random>` so restarts are new nodes.
pub fn node_id(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

pub struct Heartbeat {
    pub nodes: Arc<dyn NodeRegistry>,
    pub queue: Arc<dyn JobQueue>,
    pub metrics: Arc<WorkerMetrics>,
    pub info: NodeInfo,
    pub every: Duration,
    pub ttl: Duration,
}

impl Heartbeat {
    /// One beat: register, report lapsed nodes, refresh the queue gauges.
    pub async fn beat(&self) -> panoptes_shared::Result<Vec<NodeStatus>> {
        self.nodes.heartbeat(&self.info, self.ttl).await?;
        let offline = self.nodes.take_offline().await?;
        for n in &offline {
            tracing::warn!(
                node = %n.info.id,
                roles = ?n.info.roles,
                silent_ms = now_ms().saturating_sub(n.last_seen_ms),
                "node_offline: compute node stopped heartbeating"
            );
        }
        self.metrics.set_queue(self.queue.stats().await?);
        Ok(offline)
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.beat().await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
        }
    }
}
