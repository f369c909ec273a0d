//! This process as a compute node: its id, its heartbeat in the registry, and
//! the sweep that reports nodes whose heartbeat lapsed (`node_offline`; the
//! webhooks issue delivers it as an event).

use std::sync::Arc;
use std::time::Duration;

use panoptes_shared::domain::event::EventKind;
use panoptes_shared::ports::jobs::now_ms;
use panoptes_shared::ports::{JobQueue, NodeInfo, NodeRegistry, NodeStatus, Store};
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
    /// Where `node_online` / `node_offline` events are recorded.
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
    pub metrics: Arc<WorkerMetrics>,
    pub info: NodeInfo,
    pub every: Duration,
    pub ttl: Duration,
}

impl Heartbeat {
    /// One beat: register, report lapsed nodes (a `node_offline` event for
    /// every user with a running analysis: the pool serves them all; each
    /// lapse is handed to one caller cluster-wide), refresh the queue gauges.
    pub async fn beat(&self) -> panoptes_shared::Result<Vec<NodeStatus>> {
        self.nodes.heartbeat(&self.info, self.ttl).await?;
        let offline = self.nodes.take_offline().await?;
        for n in &offline {
            let silent_ms = now_ms().saturating_sub(n.last_seen_ms);
            tracing::warn!(
                node = %n.info.id,
                roles = ?n.info.roles,
                silent_ms,
                "node_offline: compute node stopped heartbeating"
            );
            let data = serde_json::json!({
                "nodeId": n.info.id,
                "roles": n.info.roles,
                "lastSeenAt": panoptes_shared::time::from_millis(i64::try_from(n.last_seen_ms).unwrap_or(0)),
            });
            node_event(self.store.as_ref(), EventKind::NodeOffline, &data).await;
        }
        self.metrics.set_queue(self.queue.stats().await?);
        Ok(offline)
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let data = serde_json::json!({
            "nodeId": self.info.id,
            "roles": self.info.roles,
            "executionProvider": self.info.execution_provider,
        });
        node_event(self.store.as_ref(), EventKind::NodeOnline, &data).await;
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

/// Record a compute-node event for every user with a running analysis; a
/// store that fails is logged, never fatal to the node.
pub async fn node_event(store: &dyn Store, kind: EventKind, data: &serde_json::Value) {
    match store
        .record_for_running_users(kind, data, panoptes_shared::time::now())
        .await
    {
        Ok(n) => tracing::info!(event = kind.as_str(), users = n, "node event recorded"),
        Err(e) => tracing::warn!(event = kind.as_str(), error = %e, "node event not recorded"),
    }
}
