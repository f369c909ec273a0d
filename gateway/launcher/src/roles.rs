//! The pipeline roles of one node, wired from config: [`Pipeline::start`]
//! builds a role on the platform's ports and runs its loop; each role's
//! wiring is one function below. `panoptes worker --role ...` runs some in
//! their own process; `panoptes up` runs them all next to the gateway.
//!
//! A role that stops while the node runs (it panicked) is a failure:
//! [`Pipeline::watch`] reports it and the process exits non-zero, so a
//! supervisor restarts it; roles are never restarted silently in-process.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use panoptes_infra::wiring::Platform;
use panoptes_shared::config::Config;
use panoptes_shared::ports::jobs::now_ms;
use panoptes_shared::ports::{CameraProbe, NodeInfo};
use panoptes_workers::analytics::{AnalyticsPorts, AnalyticsSettings, AnalyticsWorker};
use panoptes_workers::detect::{DetectPorts, DetectSettings, DetectWorker, SceneCache};
use panoptes_workers::inference::engine::{Engine, EngineOptions, Provider};
use panoptes_workers::ingest::{IngestPorts, IngestSettings, IngestWorker};
use panoptes_workers::metrics::WorkerMetrics;
use panoptes_workers::node::{Heartbeat, node_id};
use panoptes_workers::notify::{
    DeliverPorts, DeliverSettings, Deliverer, InsightPorts, InsightSettings, InsightWorker,
    Notifier, Outbox, RuleEvaluator, RulesPorts, RulesSettings,
};
use panoptes_workers::scheduler::{Scheduler, SchedulerSettings};
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

/// The roles a worker process can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Role {
    Ingest,
    Detect,
    Analytics,
    Notify,
    Schedule,
}

impl Role {
    /// The name heartbeats and logs use (`detect`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Detect => "detect",
            Self::Analytics => "analytics",
            Self::Notify => "notify",
            Self::Schedule => "schedule",
        }
    }
}

/// How long a scene read by detect or analytics is reused.
const SCENE_CACHE_TTL: Duration = Duration::from_secs(10);

/// The roles running on this node, and what they share.
pub struct Pipeline {
    cfg: Config,
    platform: Platform,
    /// How ingest's health checks try a camera (the gateway's probe in `up`).
    probe: Arc<dyn CameraProbe>,
    node: String,
    metrics: Arc<WorkerMetrics>,
    shutdown: CancellationToken,
    started: Vec<Role>,
    provider: Option<Provider>,
    tasks: JoinSet<()>,
    /// Which role each task runs.
    names: HashMap<Id, &'static str>,
}

impl Pipeline {
    /// No role yet; they stop when `shutdown` fires.
    pub fn new(
        cfg: &Config,
        platform: Platform,
        probe: Arc<dyn CameraProbe>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            node: node_id(&cfg.worker.node_id),
            cfg: cfg.clone(),
            platform,
            probe,
            metrics: Arc::new(WorkerMetrics::default()),
            shutdown,
            started: Vec::new(),
            provider: None,
            tasks: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    /// Build `role` and start its loop. Fails when it cannot start (the
    /// detector without ONNX Runtime or its model, say).
    pub async fn start(&mut self, role: Role) -> anyhow::Result<()> {
        match role {
            Role::Ingest => self.start_ingest()?,
            Role::Detect => self.start_detect().await?,
            Role::Analytics => self.start_analytics(),
            Role::Schedule => self.start_schedule(),
            Role::Notify => self.start_notify()?,
        }
        self.started.push(role);
        Ok(())
    }

    fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    async fn start_detect(&mut self) -> anyhow::Result<()> {
        let opts = engine_options(&self.cfg);
        let engine = tokio::task::spawn_blocking(move || Engine::load(&opts))
            .await
            .context("detector loading panicked")?
            .context("cannot start the detect role")?;
        self.provider = Some(engine.provider());
        let (d, p) = (&self.cfg.detector, &self.platform);
        let worker = Arc::new(DetectWorker::new(
            DetectPorts {
                queue: p.backends.jobs.clone(),
                scenes: Arc::new(SceneCache::new(p.store.clone(), SCENE_CACHE_TTL)),
                blobs: p.blobs.store.clone(),
                log: p.backends.detections.clone(),
                leases: p.backends.leases.clone(),
                engine: Arc::new(engine),
                metrics: self.metrics.clone(),
            },
            DetectSettings {
                node: self.node.clone(),
                batch_size: d.batch_size,
                batch_wait: Duration::from_millis(d.batch_wait_ms.max(1)),
                snapshot_interval: Duration::from_millis(d.snapshot_interval_ms.max(1)),
            },
        ));
        for _ in 0..d.concurrency.max(1) {
            let (worker, stop) = (worker.clone(), self.shutdown.clone());
            // The pull itself waits for work: no extra pause when idle.
            self.spawn(
                "detect",
                drive("detect", Duration::ZERO, stop, move || {
                    let w = worker.clone();
                    async move { w.step().await }
                }),
            );
        }
        Ok(())
    }

    fn start_analytics(&mut self) {
        let (a, p) = (&self.cfg.analytics, &self.platform);
        let worker = Arc::new(AnalyticsWorker::new(
            AnalyticsPorts {
                store: p.store.clone(),
                log: p.backends.detections.clone(),
                leases: p.backends.leases.clone(),
                bus: p.backends.bus.clone(),
                blobs: p.blobs.store.clone(),
                scenes: Arc::new(SceneCache::new(p.store.clone(), SCENE_CACHE_TTL)),
                metrics: self.metrics.clone(),
            },
            AnalyticsSettings {
                node: self.node.clone(),
                lease_ttl: Duration::from_millis(a.lease_ttl_ms),
                reorder_window: Duration::from_millis(a.reorder_window_ms),
                active_within: Duration::from_millis(a.lease_ttl_ms.max(60_000)),
                read_max: 256,
                snapshot_url_ttl: Duration::from_secs(self.cfg.blobs.presign_ttl_seconds.max(1)),
                persist_every: Duration::from_millis(a.persist_interval_ms),
                attribute_refresh: Duration::from_secs(a.attribute_refresh_seconds),
            },
        ));
        let (w, stop) = (worker.clone(), self.shutdown.clone());
        let idle = Duration::from_millis(a.poll_ms.max(1));
        self.spawn("analytics", async move {
            drive("analytics", idle, stop, move || {
                let w = w.clone();
                async move { w.step().await }
            })
            .await;
            worker.release_all().await;
        });
    }

    fn start_ingest(&mut self) -> anyhow::Result<()> {
        let (i, p) = (&self.cfg.ingest, &self.platform);
        let worker = Arc::new(IngestWorker::new(
            IngestPorts {
                store: p.store.clone(),
                jobs: p.backends.jobs.clone(),
                leases: p.backends.leases.clone(),
                cipher: p.cipher.clone(),
                dialer: panoptes_infra::wiring::camera_dialer(&self.cfg)?,
                probe: self.probe.clone(),
                metrics: self.metrics.clone(),
            },
            IngestSettings {
                node: self.node.clone(),
                sample_fps: i.sample_fps,
                jpeg_quality: i.jpeg_quality,
                max_width: i.max_width,
                reconnect_min: Duration::from_millis(i.reconnect_min_ms),
                reconnect_max: Duration::from_millis(i.reconnect_max_ms),
                connect_timeout: Duration::from_millis(i.connect_timeout_ms),
                stall_timeout: Duration::from_millis(i.stall_timeout_ms),
                lease_ttl: Duration::from_millis(i.lease_ttl_ms),
                max_streams: i.max_streams,
                health_every: (i.health_check_interval_ms > 0)
                    .then(|| Duration::from_millis(i.health_check_interval_ms)),
                health_in_flight: i.health_checks_in_flight,
            },
        ));
        let (w, stop) = (worker.clone(), self.shutdown.clone());
        let idle = Duration::from_millis(i.poll_ms.max(1));
        self.spawn("ingest", async move {
            // A reconciliation pass is never urgent: pause after every one.
            drive("ingest", idle, stop, move || {
                let w = w.clone();
                async move { w.step().await.map(|_| 0) }
            })
            .await;
            worker.stop_all().await;
        });
        Ok(())
    }

    fn start_notify(&mut self) -> anyhow::Result<()> {
        let notifier = notifier(&self.cfg, &self.platform, &self.node, self.metrics.clone())?;
        let stop = self.shutdown.clone();
        self.spawn("notify", notifier.run(stop));
        Ok(())
    }

    fn start_schedule(&mut self) {
        let scheduler = Arc::new(Scheduler::new(
            self.platform.store.clone(),
            SchedulerSettings {
                offline_after: Duration::from_millis(self.cfg.edge.offline_after_ms),
                retention: Duration::from_secs(
                    u64::from(self.cfg.analytics.retention_days) * 86_400,
                ),
                quota_every: Duration::from_secs(30),
                prune_every: Duration::from_secs(3_600),
            },
        ));
        let idle = Duration::from_millis(self.cfg.scheduler.poll_ms.max(1));
        let stop = self.shutdown.clone();
        self.spawn(
            "schedule",
            drive("schedule", idle, stop, move || {
                let s = scheduler.clone();
                async move { s.step().await.map(|_| 0) }
            }),
        );
    }

    /// Announce the node (heartbeats with the roles started) and serve its
    /// `/metrics` (`worker.metrics_listen`); then wait as [`Self::watch`].
    pub async fn run(mut self) -> anyhow::Result<()> {
        let w = self.cfg.worker.clone();
        let beat = Heartbeat {
            nodes: self.platform.backends.nodes.clone(),
            store: self.platform.store.clone(),
            queue: self.platform.backends.jobs.clone(),
            metrics: self.metrics.clone(),
            info: NodeInfo {
                id: self.node.clone(),
                roles: self.started.iter().map(|r| r.as_str().to_owned()).collect(),
                execution_provider: self.provider.map(|p| p.kind().as_str().to_owned()),
                started_at_ms: now_ms(),
            },
            every: Duration::from_millis(w.heartbeat_ms),
            ttl: Duration::from_millis(w.node_ttl_ms),
        };
        let stop = self.shutdown.clone();
        self.spawn("heartbeat", beat.run(stop));
        if !w.metrics_listen.is_empty() {
            // Not a role: a metrics port that cannot be bound is logged, not fatal.
            tokio::spawn(panoptes_workers::server::serve(
                w.metrics_listen.clone(),
                self.metrics.clone(),
                self.shutdown.clone(),
            ));
        }
        tracing::info!(node = %self.node, roles = ?self.started, "worker roles running");
        self.watch().await
    }

    /// Until shutdown: a role that stops before (it panicked) fails the
    /// node: the error says which, and `shutdown` is cancelled so the rest
    /// of the process stops too. After shutdown, waits for every role.
    async fn watch(mut self) -> anyhow::Result<()> {
        let mut failure = None;
        while let Some(done) = self.tasks.join_next_with_id().await {
            let (id, panic) = match done {
                Ok((id, ())) => (id, None),
                Err(e) => (e.id(), Some(e)),
            };
            let name = self.names.get(&id).copied().unwrap_or("worker");
            let stopping = self.shutdown.is_cancelled();
            let error = match panic {
                Some(e) => anyhow::anyhow!("the {name} role failed: {e}"),
                None if stopping => continue,
                None => anyhow::anyhow!("the {name} role stopped unexpectedly"),
            };
            tracing::error!(role = name, error = %error, "a worker role failed; stopping");
            let data = serde_json::json!({
                "nodeId": self.node,
                "role": name,
                "error": format!("the {name} role failed; the node is stopping"),
            });
            panoptes_workers::node::node_event(
                self.platform.store.as_ref(),
                panoptes_shared::domain::event::EventKind::NodeError,
                &data,
            )
            .await;
            self.shutdown.cancel();
            failure.get_or_insert(error);
        }
        failure.map_or(Ok(()), Err)
    }
}

/// The notify role's parts from `notify.*` and `webhooks.*`, on `platform`.
pub fn notifier(
    cfg: &Config,
    platform: &Platform,
    node: &str,
    metrics: Arc<WorkerMetrics>,
) -> anyhow::Result<Notifier> {
    let (n, w, p) = (&cfg.notify, &cfg.webhooks, platform);
    let sender = panoptes_infra::wiring::webhook_sender(cfg)?;
    Ok(Notifier {
        rules: Arc::new(RuleEvaluator::new(
            RulesPorts {
                store: p.store.clone(),
                insight_queue: p.backends.insight_jobs.clone(),
                bus: p.backends.bus.clone(),
                leases: p.backends.leases.clone(),
                metrics: metrics.clone(),
            },
            RulesSettings {
                node: node.to_owned(),
                lease_ttl: Duration::from_millis(n.lease_ttl_ms),
                refresh: Duration::from_millis(n.rules_refresh_ms),
                read_max: 1_000,
            },
        )),
        outbox: Arc::new(Outbox::new(p.store.clone())),
        deliverer: Arc::new(Deliverer::new(
            DeliverPorts {
                store: p.store.clone(),
                sender: Arc::new(sender),
                leases: p.backends.leases.clone(),
                cipher: p.cipher.clone(),
                metrics: metrics.clone(),
            },
            DeliverSettings {
                node: node.to_owned(),
                retry_schedule: w
                    .retry_schedule_seconds
                    .iter()
                    .map(|s| Duration::from_secs_f64(*s))
                    .collect(),
                jitter: w.retry_jitter,
                max_in_flight: w.max_in_flight,
                batch: w.batch,
                lease_ttl: Duration::from_secs(60),
            },
        )),
        insights: Arc::new(InsightWorker::new(
            InsightPorts {
                store: p.store.clone(),
                blobs: p.blobs.store.clone(),
                queue: p.backends.insight_jobs.clone(),
                vlm: panoptes_infra::wiring::vlm_provider(cfg)?,
                metrics,
            },
            InsightSettings {
                consumer: node.to_owned(),
                batch: INSIGHTS_AT_ONCE,
                wait: Duration::from_millis(n.poll_ms.max(100)),
                max_attempts: panoptes_infra::wiring::insight_queue_policy(cfg).max_attempts,
                requeue_after: INSIGHT_REQUEUE_AFTER,
            },
        )),
        poll: Duration::from_millis(n.poll_ms),
    })
}

/// VLM requests a notify node has in flight at once.
const INSIGHTS_AT_ONCE: usize = 4;
/// A pending insight untouched this long lost its job (every delivery
/// settles or fails well within it): queued again.
const INSIGHT_REQUEUE_AFTER: Duration = Duration::from_secs(15 * 60);

/// The detector's options from `detector.*`.
pub fn engine_options(cfg: &Config) -> EngineOptions {
    let d = &cfg.detector;
    EngineOptions {
        model: d.model,
        model_path: d.model_path.clone(),
        library: Some(d.ort_library.clone()).filter(|p| !p.as_os_str().is_empty()),
        provider: Provider::new(d.execution_provider, d.cuda_device),
        threads: d.threads,
        iou: d.nms_iou,
        calibrated: true,
        input_size: panoptes_workers::inference::engine::input_size(&d.input_size, d.model),
    }
}

/// A role's loop: run `step` until shutdown; pause `idle` after a step that
/// did nothing, back off after an error (a dependency is down).
async fn drive<F, Fut>(name: &'static str, idle: Duration, shutdown: CancellationToken, step: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = panoptes_shared::Result<usize>>,
{
    while !shutdown.is_cancelled() {
        let pause = match step().await {
            Ok(0) => idle,
            Ok(_) => Duration::ZERO,
            Err(e) => {
                tracing::warn!(role = name, error = %e, "step failed; retrying");
                Duration::from_secs(1)
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pipeline(shutdown: CancellationToken) -> Pipeline {
        let mut cfg = Config::default();
        cfg.data.dir =
            std::env::temp_dir().join(format!("panoptes-roles-{}", uuid::Uuid::new_v4()));
        let platform = panoptes_infra::wiring::connect(&cfg).await.unwrap();
        let probe = Arc::new(panoptes_infra::wiring::rtsp_probe(&cfg, &platform).unwrap());
        Pipeline::new(&cfg, platform, probe, shutdown)
    }

    #[tokio::test]
    async fn a_role_that_fails_while_the_node_runs_fails_the_node_and_stops_the_rest() {
        let shutdown = CancellationToken::new();
        let mut p = pipeline(shutdown.clone()).await;
        let stop = shutdown.clone();
        p.spawn("analytics", async move { stop.cancelled().await });
        p.spawn("detect", async { panic!("a bug in detect") });
        let err = p.watch().await.unwrap_err().to_string();
        assert!(err.contains("the detect role failed"), "{err}");
        assert!(err.contains("a bug in detect"), "{err}");
        assert!(shutdown.is_cancelled(), "the rest of the process stops");
    }

    #[tokio::test]
    async fn a_role_that_returns_while_the_node_runs_is_a_failure_too() {
        let shutdown = CancellationToken::new();
        let mut p = pipeline(shutdown.clone()).await;
        p.spawn("ingest", async {});
        let err = p.watch().await.unwrap_err().to_string();
        assert!(
            err.contains("the ingest role stopped unexpectedly"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn roles_that_stop_on_shutdown_are_not_failures() {
        let shutdown = CancellationToken::new();
        let mut p = pipeline(shutdown.clone()).await;
        for name in ["ingest", "analytics"] {
            let stop = shutdown.clone();
            p.spawn(name, async move { stop.cancelled().await });
        }
        shutdown.cancel();
        p.watch().await.unwrap();
    }
}
