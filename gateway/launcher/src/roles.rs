//! Running roles from config: `panoptes-worker --role detect|analytics` runs
//! them in their own process; `panoptes up` runs them inside the gateway's.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use panoptes_infra::secrets_file;
use panoptes_infra::wiring::{self, Backends};
use panoptes_shared::config::Config;
use panoptes_shared::ports::jobs::now_ms;
use panoptes_shared::ports::{BlobStore, NodeInfo, SecretCipher, Store};
use secrecy::ExposeSecret;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Role;
use crate::analytics::{AnalyticsSettings, AnalyticsWorker};
use crate::detect::{DetectSettings, DetectWorker, Ports, SceneCache};
use crate::detector::runtime::{Engine, EngineOptions, ModelKind, Provider};
use crate::ingest::{IngestSettings, IngestWorker};
use crate::metrics::WorkerMetrics;
use crate::node::{Heartbeat, node_id};
use crate::scheduler::{Scheduler, SchedulerSettings};

/// What the roles share with the rest of the process.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub backends: Backends,
    pub blobs: Arc<dyn BlobStore>,
    /// Opens devices' RTSP credentials (ingest).
    pub cipher: Arc<dyn SecretCipher>,
}

/// Connect what a worker process needs, as configured.
pub async fn connect(cfg: &Config) -> anyhow::Result<Shared> {
    let store = wiring::connect_store(cfg).await?;
    let backends = Backends::connect(cfg).await?;
    let mut secret = cfg.auth.jwt_secret.expose_secret().to_owned();
    let mut key = cfg.auth.credentials_key.expose_secret().to_owned();
    if secret.is_empty() || key.is_empty() {
        let generated = secrets_file::load_or_create(&cfg.data.dir).with_context(|| {
            format!(
                "cannot read or create secrets in {}",
                cfg.data.dir.display()
            )
        })?;
        if secret.is_empty() {
            secret = generated.jwt_secret;
        }
        if key.is_empty() {
            key = generated.credentials_key;
        }
    }
    let blobs = wiring::blobs(cfg, &wiring::blob_signing_key(secret.as_bytes())).await?;
    let cipher = panoptes_infra::crypto::AesGcmCipher::from_base64(&key)
        .map_err(|e| anyhow::anyhow!("auth.credentials_key: {e}"))?;
    Ok(Shared {
        store: Arc::new(store),
        backends,
        blobs: blobs.store,
        cipher: Arc::new(cipher),
    })
}

/// TLS for `rtsps://` cameras: the system roots plus `ingest.tls_ca_file`.
pub fn ingest_tls(cfg: &Config) -> anyhow::Result<crate::ingest::tls::Tls> {
    let ca = &cfg.ingest.tls_ca_file;
    crate::ingest::tls::Tls::new((!ca.as_os_str().is_empty()).then_some(ca.as_path()))
        .map_err(|e| anyhow::anyhow!(e))
}

/// How cameras are reached (ingest, probes, health checks): through the
/// outbound guard (`outbound.allow_private`), with [`ingest_tls`].
pub fn camera_dialer(cfg: &Config) -> anyhow::Result<crate::ingest::Dialer> {
    Ok(crate::ingest::Dialer::new(
        Arc::new(wiring::outbound_guard(cfg)),
        ingest_tls(cfg)?,
    ))
}

pub fn engine_options(cfg: &Config) -> EngineOptions {
    let d = &cfg.detector;
    EngineOptions {
        model: ModelKind::parse(&d.model).unwrap_or(ModelKind::NanoDet),
        model_path: d.model_path.clone(),
        library: Some(d.ort_library.clone()).filter(|p| !p.as_os_str().is_empty()),
        provider: if d.execution_provider == "cuda" {
            Provider::Cuda {
                device: d.cuda_device,
            }
        } else {
            Provider::Cpu
        },
        threads: d.threads,
        iou: d.nms_iou,
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

/// Start `roles` (ingest, detect, analytics, schedule) on this node; they stop when `shutdown`
/// fires. Returns once every role has stopped.
pub async fn run(
    cfg: &Config,
    roles: &[Role],
    shared: Shared,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    for r in roles {
        if matches!(r, Role::Notify) {
            anyhow::bail!(
                "the notify role is not available yet (ingest, detect, analytics and schedule are)"
            );
        }
    }
    let node = node_id(&cfg.worker.node_id);
    let metrics = Arc::new(WorkerMetrics::default());
    let mut tasks = JoinSet::new();
    let mut provider = None;
    if roles.contains(&Role::Detect) {
        let opts = engine_options(cfg);
        let engine = tokio::task::spawn_blocking(move || Engine::load(&opts))
            .await
            .context("detector loading panicked")?
            .context("cannot start the detect role")?;
        provider = Some(match engine.provider() {
            Provider::Cpu => "cpu",
            Provider::Cuda { .. } => "cuda",
        });
        let worker = Arc::new(DetectWorker::new(
            Ports {
                queue: shared.backends.jobs.clone(),
                scenes: Arc::new(SceneCache::new(
                    shared.store.clone(),
                    Duration::from_secs(10),
                )),
                blobs: shared.blobs.clone(),
                log: shared.backends.detections.clone(),
                leases: shared.backends.leases.clone(),
            },
            Arc::new(engine),
            metrics.clone(),
            DetectSettings {
                node: node.clone(),
                batch_size: cfg.detector.batch_size,
                batch_wait: Duration::from_millis(cfg.detector.batch_wait_ms.max(1)),
                snapshot_interval: Duration::from_millis(cfg.detector.snapshot_interval_ms.max(1)),
            },
        ));
        for _ in 0..cfg.detector.concurrency.max(1) {
            let (worker, stop) = (worker.clone(), shutdown.clone());
            // The pull itself waits for work: no extra pause when idle.
            tasks.spawn(drive("detect", Duration::ZERO, stop, move || {
                let w = worker.clone();
                async move { w.step().await }
            }));
        }
    }
    if roles.contains(&Role::Analytics) {
        let a = &cfg.analytics;
        let worker = Arc::new(AnalyticsWorker::new(
            shared.store.clone(),
            shared.backends.detections.clone(),
            shared.backends.leases.clone(),
            shared.backends.bus.clone(),
            shared.blobs.clone(),
            Arc::new(SceneCache::new(
                shared.store.clone(),
                Duration::from_secs(10),
            )),
            metrics.clone(),
            AnalyticsSettings {
                node: node.clone(),
                lease_ttl: Duration::from_millis(a.lease_ttl_ms),
                reorder_window: Duration::from_millis(a.reorder_window_ms),
                active_within: Duration::from_millis(a.lease_ttl_ms.max(60_000)),
                read_max: 256,
                snapshot_url_ttl: Duration::from_secs(cfg.blobs.presign_ttl_seconds.max(1)),
                persist_every: Duration::from_millis(a.persist_interval_ms),
            },
        ));
        let (w, stop) = (worker.clone(), shutdown.clone());
        let idle = Duration::from_millis(a.poll_ms.max(1));
        tasks.spawn(async move {
            drive("analytics", idle, stop, move || {
                let w = w.clone();
                async move { w.step().await }
            })
            .await;
            worker.release_all().await;
        });
    }
    if roles.contains(&Role::Ingest) {
        let i = &cfg.ingest;
        let worker = Arc::new(IngestWorker::new(
            shared.store.clone(),
            shared.backends.jobs.clone(),
            shared.backends.leases.clone(),
            shared.cipher.clone(),
            metrics.clone(),
            IngestSettings {
                node: node.clone(),
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
                dialer: camera_dialer(cfg)?,
            },
        ));
        let (w, stop) = (worker.clone(), shutdown.clone());
        let idle = Duration::from_millis(i.poll_ms.max(1));
        tasks.spawn(async move {
            // A reconciliation pass is never urgent: pause after every one.
            drive("ingest", idle, stop, move || {
                let w = w.clone();
                async move { w.step().await.map(|_| 0) }
            })
            .await;
            worker.stop_all().await;
        });
    }
    if roles.contains(&Role::Schedule) {
        let scheduler = Arc::new(Scheduler::new(
            shared.store.clone(),
            SchedulerSettings {
                offline_after: Duration::from_millis(cfg.edge.offline_after_ms),
                retention: Duration::from_secs(u64::from(cfg.analytics.retention_days) * 86_400),
                quota_every: Duration::from_secs(30),
                prune_every: Duration::from_secs(3_600),
            },
        ));
        let idle = Duration::from_millis(cfg.scheduler.poll_ms.max(1));
        tasks.spawn(drive("schedule", idle, shutdown.clone(), move || {
            let s = scheduler.clone();
            async move { s.step().await.map(|_| 0) }
        }));
    }
    let beat = Heartbeat {
        nodes: shared.backends.nodes.clone(),
        queue: shared.backends.jobs.clone(),
        metrics: metrics.clone(),
        info: NodeInfo {
            id: node.clone(),
            roles: roles
                .iter()
                .map(|r| format!("{r:?}").to_lowercase())
                .collect(),
            execution_provider: provider.map(str::to_owned),
            started_at_ms: now_ms(),
        },
        every: Duration::from_millis(cfg.worker.heartbeat_ms),
        ttl: Duration::from_millis(cfg.worker.node_ttl_ms),
    };
    tasks.spawn(beat.run(shutdown.clone()));
    if !cfg.worker.metrics_listen.is_empty() {
        tasks.spawn(crate::server::serve(
            cfg.worker.metrics_listen.clone(),
            metrics,
            shutdown.clone(),
        ));
    }
    tracing::info!(%node, ?roles, "worker roles running");
    while let Some(done) = tasks.join_next().await {
        done.context("a worker role panicked")?;
    }
    Ok(())
}
