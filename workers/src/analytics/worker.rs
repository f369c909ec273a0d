//! One analytics step: take (or keep) the lease of every device with recent
//! results, read what is new in each owned device's log, release what has
//! waited the reorder window in capture order, publish it, commit.
//!
//! Delivery is at least once: a crash between publishing and committing
//! republishes those events from the next owner (subscribers drop duplicates
//! by event id only if the ids match, so the window is kept small: one step).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::redis_keys::lease_names;
use panoptes_shared::Result;
use panoptes_shared::domain::detection::DetectionResult;
use panoptes_shared::domain::task::Capability;
use panoptes_shared::ids::{DeviceId, TaskId};
use panoptes_shared::ports::{BlobStore, DetectionLog, EventBus, Leases, Publication, Store};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use super::Reorder;
use super::describe::Describer;
use super::event::{FrameAnalysis, Tracked, analysis_result};
use super::persist::Persister;
use super::queue::QueueAnalysis;
use crate::metrics::WorkerMetrics;
use crate::scenes::SceneCache;

/// What the analytics role works with: its ports and the node's metrics.
#[derive(Clone)]
pub struct AnalyticsPorts {
    pub store: Arc<dyn Store>,
    /// Where the detect role appends each device's results.
    pub log: Arc<dyn DetectionLog>,
    pub leases: Arc<dyn Leases>,
    pub bus: Arc<dyn EventBus>,
    pub blobs: Arc<dyn BlobStore>,
    pub scenes: Arc<SceneCache>,
    pub metrics: Arc<WorkerMetrics>,
}

#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    pub node: String,
    /// Device ownership lease; renewed every step.
    pub lease_ttl: Duration,
    pub reorder_window: Duration,
    /// Devices with a result this recent are looked after.
    pub active_within: Duration,
    /// Results read per device per step.
    pub read_max: usize,
    /// Lifetime of snapshot URLs in events.
    pub snapshot_url_ttl: Duration,
    /// A snapshot and rolling rows per device this often (capture time).
    pub persist_every: Duration,
    /// A tracked person is described again at most this often (capture
    /// time; tasks with the `attributes` capability on level_02 devices).
    pub attribute_refresh: Duration,
}

struct Owned {
    order: Reorder,
    analysis: Box<dyn FrameAnalysis>,
    /// The task `analysis` was built for (a new task starts afresh).
    task: Option<TaskId>,
    /// The task's track descriptions, when it describes people.
    describer: Option<Describer>,
    persist: Persister,
    last_new: Instant,
    /// When this node last took or renewed the device's lease.
    renewed: Instant,
}

#[derive(Default)]
struct Devices {
    owned: HashMap<DeviceId, Owned>,
    /// Devices another node owns, and when to try their lease again: not on
    /// every pass, which would cost a Redis call per foreign device per pass.
    foreign: HashMap<DeviceId, Instant>,
}

pub struct AnalyticsWorker {
    store: Arc<dyn Store>,
    log: Arc<dyn DetectionLog>,
    leases: Arc<dyn Leases>,
    bus: Arc<dyn EventBus>,
    blobs: Arc<dyn BlobStore>,
    scenes: Arc<SceneCache>,
    metrics: Arc<WorkerMetrics>,
    settings: AnalyticsSettings,
    devices: Mutex<Devices>,
}

/// How long a track survives unseen: the scene default (`trackingMaxAgeSeconds`
/// 5); per-scene values arrive with queue analytics.
const TRACK_MAX_AGE_MS: u64 = 5_000;

impl AnalyticsWorker {
    pub fn new(ports: AnalyticsPorts, settings: AnalyticsSettings) -> Self {
        let AnalyticsPorts {
            store,
            log,
            leases,
            bus,
            blobs,
            scenes,
            metrics,
        } = ports;
        Self {
            store,
            log,
            leases,
            bus,
            blobs,
            scenes,
            metrics,
            settings,
            devices: Mutex::new(Devices::default()),
        }
    }

    /// Devices this node owns now.
    pub async fn owned(&self) -> Vec<DeviceId> {
        self.devices.lock().await.owned.keys().copied().collect()
    }

    /// One pass over every active device; returns the events published.
    pub async fn step(&self) -> Result<usize> {
        self.step_at(Instant::now()).await
    }

    /// [`Self::step`] at a given time (tests move time on).
    pub async fn step_at(&self, now: Instant) -> Result<usize> {
        let mut guard = self.devices.lock().await;
        let Devices { owned, foreign } = &mut *guard;
        // A lease is renewed a third of its lifetime after it was last taken.
        let renew_every = self.settings.lease_ttl / 3;
        let mut devices = self.log.active_devices(self.settings.active_within).await?;
        let active: std::collections::HashSet<DeviceId> = devices.iter().copied().collect();
        foreign.retain(|d, _| active.contains(d));
        devices.extend(owned.keys().filter(|d| !active.contains(d)));
        let mut published = 0;
        for device in devices {
            let key = lease_names::analytics_owner(device);
            let due = match owned.get(&device) {
                Some(s) => now.duration_since(s.renewed) >= renew_every,
                None => foreign.get(&device).is_none_or(|retry| now >= *retry),
            };
            if !due && !owned.contains_key(&device) {
                continue;
            }
            if due {
                if !self
                    .leases
                    .acquire(&key, &self.settings.node, self.settings.lease_ttl)
                    .await?
                {
                    if owned.remove(&device).is_some() {
                        tracing::warn!(%device, "device lease lost to another analytics node");
                    }
                    foreign.insert(device, now + renew_every);
                    continue;
                }
                foreign.remove(&device);
                if let Some(s) = owned.get_mut(&device) {
                    s.renewed = now;
                }
            }
            let state = match owned.entry(device) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let committed = self.log.checkpoint(device).await?;
                    tracing::info!(%device, %committed, "device taken over");
                    e.insert(Owned {
                        order: Reorder::new(self.settings.reorder_window, committed),
                        analysis: Box::new(Tracked::new(TRACK_MAX_AGE_MS)),
                        task: None,
                        describer: None,
                        persist: Persister::new(self.persist_every_ms()),
                        last_new: now,
                        renewed: now,
                    })
                }
            };
            let fresh = self
                .log
                .read(device, state.order.read_up_to(), self.settings.read_max)
                .await?;
            if !fresh.is_empty() {
                state.last_new = now;
            }
            let before = state.order.committable();
            for (offset, result) in fresh {
                if !state.order.push(offset, result, now) {
                    self.metrics.late_dropped.add(1);
                    tracing::debug!(%device, "late result dropped");
                }
            }
            for result in state.order.release(now) {
                if state.task != Some(result.task_id) {
                    state.analysis = self.analysis_for(&result).await?;
                    state.describer = self.describer_for(&result).await?;
                    state.task = Some(result.task_id);
                    state.persist = Persister::new(self.persist_every_ms());
                }
                self.publish(&result, state).await?;
                published += 1;
            }
            if state.order.committable() != before {
                self.log.commit(device, state.order.committable()).await?;
            }
            if state.order.is_idle()
                && now.duration_since(state.last_new) >= self.settings.lease_ttl
            {
                // Quiet for a lease: let another node (or nobody) own it.
                owned.remove(&device);
                self.leases.release(&key, &self.settings.node).await?;
            }
        }
        self.metrics.published.add(published as u64);
        Ok(published)
    }

    /// Queue analytics for the result's scene; tracks only if it is gone.
    async fn analysis_for(&self, r: &DetectionResult) -> Result<Box<dyn FrameAnalysis>> {
        Ok(match self.scenes.get(r.user_id, r.scene_id).await? {
            Some(scene) => Box::new(QueueAnalysis::new(&scene)),
            None => {
                tracing::warn!(device = %r.device_id, scene = %r.scene_id, "results of a deleted scene: tracks only");
                Box::new(Tracked::new(TRACK_MAX_AGE_MS))
            }
        })
    }

    /// Track descriptions when the result's task describes people: it has
    /// the `attributes` capability and its device is on plan level_02.
    async fn describer_for(&self, r: &DetectionResult) -> Result<Option<Describer>> {
        let Some(task) = self.store.get_task(r.user_id, r.task_id).await? else {
            return Ok(None);
        };
        let Some(device) = self.store.get_device(r.user_id, r.device_id).await? else {
            return Ok(None);
        };
        Ok(task
            .runs(Capability::Attributes, device.plan)
            .then(|| Describer::new(self.settings.attribute_refresh)))
    }

    fn persist_every_ms(&self) -> u64 {
        u64::try_from(self.settings.persist_every.as_millis()).unwrap_or(u64::MAX)
    }

    /// Publish one frame's event (and maybe store rows), in a span of the
    /// trace the frame's producer started.
    async fn publish(&self, r: &DetectionResult, state: &mut Owned) -> Result<()> {
        let span = tracing::info_span!(
            "frame.publish",
            job = %r.job_id,
            device = %r.device_id,
            trace_id = tracing::field::Empty,
        );
        panoptes_shared::telemetry::continue_trace(&span, r.traceparent.as_deref());
        self.publish_in_span(r, state).instrument(span).await
    }

    async fn publish_in_span(&self, r: &DetectionResult, state: &mut Owned) -> Result<()> {
        let snapshot_url = match &r.snapshot_key {
            Some(key) => Some(
                self.blobs
                    .presign_get(key, self.settings.snapshot_url_ttl)
                    .await?,
            ),
            None => None,
        };
        let a = state.analysis.analyze(r);
        let attributes = match &mut state.describer {
            Some(d) => d.frame(self.store.as_ref(), r, &a, &self.metrics).await,
            None => Vec::new(),
        };
        let event = analysis_result(r, &a, &attributes, snapshot_url.as_deref());
        self.bus
            .publish(&Publication {
                user: r.user_id,
                device: r.device_id,
                task: r.task_id,
                data: serde_json::to_string(&event).map_err(|e| {
                    panoptes_shared::Error::internal(format!("event encoding: {e}"))
                })?,
            })
            .await?;
        tracing::debug!("frame published");
        if let Some(m) = &a.metrics
            && let Some(rows) = state.persist.observe(r, m, &self.settings.node)
        {
            // Stored at most once: a failed write is logged, not retried, so a
            // store outage never holds back the live events.
            let stored = async {
                self.store.insert_snapshot(&rows.snapshot).await?;
                self.store.insert_rolling(&rows.rolling).await
            };
            if let Err(e) = stored.await {
                self.metrics.persist_failures.add(1);
                tracing::warn!(device = %r.device_id, error = %e, "analytics rows not stored");
            } else {
                self.metrics.persisted.add(1);
            }
        }
        Ok(())
    }

    /// Give every lease up (shutdown): the next owner continues at once.
    pub async fn release_all(&self) {
        let mut guard = self.devices.lock().await;
        let owned = &mut guard.owned;
        for device in owned.keys() {
            if let Err(e) = self
                .leases
                .release(&lease_names::analytics_owner(*device), &self.settings.node)
                .await
            {
                tracing::warn!(%device, error = %e, "device lease not released");
            }
        }
        owned.clear();
    }
}
