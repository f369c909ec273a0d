//! The ingest role: for every running task of an RTSP device, exactly one
//! node pulls the stream (a lease per device, renewed while it streams; a
//! dead node's devices are taken over once their lease lapses), samples it at
//! `sample_fps`, encodes JPEG and enqueues frame jobs.
//!
//! `step` reconciles: start streams for running tasks this node can lease,
//! stop streams whose task ended or whose lease was lost. Each stream runs
//! in its own task: connect, pump frames, and on failure set the device
//! `offline` (camera away) or `error` (answers but cannot be analysed) and
//! retry with exponential backoff and jitter; the first frame after a
//! (re)connect sets it `online`. Status changes are recorded once as events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::camera::{Camera, Dialer};
use panoptes_infra::redis_keys::lease_names;
use panoptes_shared::Result;
use panoptes_shared::domain::camera::{CameraError, SourceError};
use panoptes_shared::domain::device::{Device, DeviceStatus};
use panoptes_shared::domain::task::{AnalysisTask, Capability};
use panoptes_shared::ids::{DeviceId, JobId, TaskId};
use panoptes_shared::lifecycle::set_device_status;
use panoptes_shared::ports::{CameraProbe, FrameJob, JobQueue, Leases, SecretCipher, Store};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::source;
use crate::image::{encode_jpeg, resize};
use crate::metrics::WorkerMetrics;

/// What the ingest role works with: its ports, how cameras are reached,
/// and the node's metrics.
#[derive(Clone)]
pub struct IngestPorts {
    pub store: Arc<dyn Store>,
    pub jobs: Arc<dyn JobQueue>,
    pub leases: Arc<dyn Leases>,
    /// Opens devices' RTSP credentials.
    pub cipher: Arc<dyn SecretCipher>,
    /// Camera connections: the outbound guard, and TLS for `rtsps://`.
    pub dialer: Dialer,
    /// How health checks try a camera (the probe endpoint's adapter).
    pub probe: Arc<dyn CameraProbe>,
    pub metrics: Arc<WorkerMetrics>,
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub node: String,
    pub sample_fps: f64,
    pub jpeg_quality: u8,
    pub max_width: u32,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    pub lease_ttl: Duration,
    pub max_streams: usize,
    /// Probe cameras without a running task this often (`None`: never).
    pub health_every: Option<Duration>,
    /// Probes in flight per node.
    pub health_in_flight: usize,
}

struct Running {
    task: TaskId,
    stop: CancellationToken,
    renewed: Instant,
}

pub struct IngestWorker {
    store: Arc<dyn Store>,
    jobs: Arc<dyn JobQueue>,
    leases: Arc<dyn Leases>,
    cipher: Arc<dyn SecretCipher>,
    dialer: Dialer,
    probe: Arc<dyn CameraProbe>,
    metrics: Arc<WorkerMetrics>,
    settings: IngestSettings,
    streams: Mutex<HashMap<DeviceId, Running>>,
    probes: Arc<tokio::sync::Semaphore>,
}

impl IngestWorker {
    pub fn new(ports: IngestPorts, settings: IngestSettings) -> Self {
        let IngestPorts {
            store,
            jobs,
            leases,
            cipher,
            dialer,
            probe,
            metrics,
        } = ports;
        Self {
            store,
            jobs,
            leases,
            cipher,
            dialer,
            probe,
            metrics,
            probes: Arc::new(tokio::sync::Semaphore::new(
                settings.health_in_flight.max(1),
            )),
            settings,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// Devices this node streams now.
    pub async fn streaming(&self) -> Vec<DeviceId> {
        self.streams.lock().await.keys().copied().collect()
    }

    /// One reconciliation pass; returns how many streams started or stopped.
    pub async fn step(self: &Arc<Self>) -> Result<usize> {
        let tasks = self.store.running_tasks().await?;
        let mut streams = self.streams.lock().await;
        let mut changed = 0;
        let wanted: HashMap<DeviceId, &AnalysisTask> =
            tasks.iter().map(|t| (t.device_id, t)).collect();
        // Stop streams whose task ended or changed.
        let ended: Vec<DeviceId> = streams
            .iter()
            .filter(|(d, r)| wanted.get(d).is_none_or(|t| t.id != r.task))
            .map(|(d, _)| *d)
            .collect();
        for device in ended {
            if let Some(r) = streams.remove(&device) {
                r.stop.cancel();
                self.leases
                    .release(&lease_names::ingest_stream(device), &self.settings.node)
                    .await?;
                changed += 1;
            }
        }
        // Renew what this node streams; drop what it lost.
        let renew_every = self.settings.lease_ttl / 3;
        let now = Instant::now();
        let mut lost = Vec::new();
        for (device, r) in streams.iter_mut() {
            if now.duration_since(r.renewed) < renew_every {
                continue;
            }
            if self
                .leases
                .acquire(
                    &lease_names::ingest_stream(*device),
                    &self.settings.node,
                    self.settings.lease_ttl,
                )
                .await?
            {
                r.renewed = now;
            } else {
                tracing::warn!(%device, "stream lease lost to another ingest node");
                lost.push(*device);
            }
        }
        for device in lost {
            if let Some(r) = streams.remove(&device) {
                r.stop.cancel();
                changed += 1;
            }
        }
        // Start streams for running tasks nobody pulls.
        for task in tasks {
            if streams.contains_key(&task.device_id) || streams.len() >= self.settings.max_streams {
                continue;
            }
            let Some(device) = self.store.get_device(task.user_id, task.device_id).await? else {
                continue;
            };
            if device.is_push() {
                continue; // its frames arrive by edge push
            }
            if !self
                .leases
                .acquire(
                    &lease_names::ingest_stream(device.id),
                    &self.settings.node,
                    self.settings.lease_ttl,
                )
                .await?
            {
                continue;
            }
            let stop = CancellationToken::new();
            streams.insert(
                device.id,
                Running {
                    task: task.id,
                    stop: stop.clone(),
                    renewed: now,
                },
            );
            let me = self.clone();
            tokio::spawn(async move { me.pump(device, task, stop).await });
            changed += 1;
        }
        drop(streams);
        self.check_idle().await?;
        Ok(changed)
    }

    /// The product checks cameras periodically: each camera without a
    /// running task is probed once per `health_every` by one node (a lease
    /// taken under a one-off owner, left to lapse), and its status follows.
    async fn check_idle(self: &Arc<Self>) -> Result<()> {
        let Some(every) = self.settings.health_every else {
            return Ok(());
        };
        for device in self.store.idle_pull_devices(200).await? {
            let Ok(permit) = self.probes.clone().try_acquire_owned() else {
                break; // enough in flight; the rest wait for the next pass
            };
            let owner = format!("{}:{}", self.settings.node, Uuid::new_v4());
            if !self
                .leases
                .acquire(&lease_names::health_check(device.id), &owner, every)
                .await?
            {
                continue; // checked within the interval (by this node or another)
            }
            let me = self.clone();
            tokio::spawn(async move {
                me.check(&device).await;
                drop(permit);
            });
        }
        Ok(())
    }

    /// The device's target ([`Camera::of`]); on failure the device is set
    /// to `error` (its configuration cannot work) and `None` returned.
    async fn target(&self, device: &Device) -> Option<Camera> {
        match Camera::of(self.cipher.as_ref(), device) {
            Ok(camera) => Some(camera),
            Err(e) => {
                self.target_failed(device, &e).await;
                None
            }
        }
    }

    async fn target_failed(&self, device: &Device, e: &CameraError) {
        if let CameraError::Credentials(cause) = e {
            tracing::error!(device = %device.id, error = %cause, "RTSP credentials cannot be opened");
        }
        self.set_status(device, DeviceStatus::Error, Some(&e.to_string()))
            .await;
    }

    async fn check(&self, device: &Device) {
        let s = &self.settings;
        let report = match self.probe.probe(device, s.connect_timeout).await {
            Ok(report) => report,
            Err(e) => return self.target_failed(device, &e).await,
        };
        let detail = report.detail("health check");
        let now = panoptes_shared::time::now();
        if report.error.is_none()
            && let Err(e) = self
                .store
                .touch_device(device.user_id, device.id, now)
                .await
        {
            tracing::warn!(device = %device.id, error = %e, "lastSeenAt not recorded");
        }
        self.set_status(device, report.status, Some(&detail)).await;
    }

    /// Stop every stream and give the leases up (shutdown).
    pub async fn stop_all(&self) {
        let mut streams = self.streams.lock().await;
        for (device, r) in streams.drain() {
            r.stop.cancel();
            if let Err(e) = self
                .leases
                .release(&lease_names::ingest_stream(device), &self.settings.node)
                .await
            {
                tracing::warn!(%device, error = %e, "stream lease not released");
            }
        }
    }

    async fn set_status(&self, device: &Device, status: DeviceStatus, detail: Option<&str>) {
        if let Err(e) = set_device_status(
            self.store.as_ref(),
            device.user_id,
            device.id,
            status,
            detail,
            panoptes_shared::time::now(),
        )
        .await
        {
            tracing::warn!(device = %device.id, error = %e, "device status not recorded");
        }
    }

    /// Pull one device's stream until `stop`: connect, sample, reconnect.
    async fn pump(self: Arc<Self>, device: Device, task: AnalysisTask, stop: CancellationToken) {
        let Some(camera) = self.target(&device).await else {
            return;
        };
        let mut delay = self.settings.reconnect_min;
        while !stop.is_cancelled() {
            let outcome = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.session(&device, &task, &camera) => r,
            };
            let Err((e, streamed)) = outcome else { break };
            if streamed {
                delay = self.settings.reconnect_min; // it worked for a while
            }
            self.metrics.ingest_reconnects.add(1);
            tracing::warn!(device = %device.id, class = e.class(), error = %e, retry_ms = delay.as_millis() as u64, "stream lost; reconnecting");
            self.set_status(&device, e.status(), Some(&e.to_string()))
                .await;
            // Full jitter on the upper half: replicas do not retry in step.
            let jittered = delay / 2 + delay.mul_f64(rand::random::<f64>() / 2.0);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(jittered) => {}
            }
            delay = (delay * 2).min(self.settings.reconnect_max);
        }
        tracing::info!(device = %device.id, "stream stopped");
    }

    /// One RTSP session: frames until it fails. The error says whether any
    /// frame came through (then the backoff starts over).
    async fn session(
        &self,
        device: &Device,
        task: &AnalysisTask,
        camera: &Camera,
    ) -> std::result::Result<(), (SourceError, bool)> {
        let s = &self.settings;
        let mut stream = source::open(camera, s.connect_timeout, &self.dialer)
            .await
            .map_err(|e| (e, false))?;
        let period_ms = (1000.0 / s.sample_fps).max(1.0) as u64;
        let mut next_due = 0u64;
        let mut online = false;
        let mut decode_errors = 0u32;
        loop {
            let frame = match stream
                .next_frame(s.stall_timeout, |at| at >= next_due)
                .await
            {
                Ok(f) => f,
                Err(SourceError::Decode) if decode_errors < 50 => {
                    // A damaged access unit: skip it; the next key frame recovers.
                    decode_errors += 1;
                    self.metrics.ingest_decode_failures.add(1);
                    continue;
                }
                Err(e) => return Err((e, online)),
            };
            decode_errors = 0;
            if !online {
                online = true;
                let info = stream.info();
                let detail = format!("{} {}x{}", info.codec, info.width, info.height);
                self.set_status(device, DeviceStatus::Online, Some(&detail))
                    .await;
            }
            let Some(rgb) = frame.rgb else { continue };
            let at = frame.captured_at_ms;
            // Keep the cadence; after a stall, start again from now.
            next_due = if next_due + period_ms > at {
                next_due + period_ms
            } else {
                at + period_ms
            };
            // A frame's trace starts here; detect and analytics continue it.
            let span = tracing::info_span!(
                "frame.ingest",
                device = %device.id,
                trace_id = tracing::field::Empty,
            );
            let trace = panoptes_shared::telemetry::start_trace(&span);
            let (quality, max_width) = (s.jpeg_quality, s.max_width as usize);
            let jpeg = tokio::task::spawn_blocking(move || {
                let rgb = if max_width > 0 && rgb.width > max_width {
                    let h = (rgb.height * max_width).div_ceil(rgb.width).max(1);
                    resize(&rgb, max_width, h)
                } else {
                    rgb
                };
                encode_jpeg(&rgb, quality)
            })
            .instrument(span.clone())
            .await;
            let jpeg = match jpeg {
                Ok(Ok(j)) => j,
                Ok(Err(e)) => {
                    tracing::warn!(device = %device.id, error = %e, "frame not encoded");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(device = %device.id, error = %e, "frame encoding panicked");
                    continue;
                }
            };
            let job = FrameJob {
                id: JobId::new(),
                user: device.user_id,
                device: device.id,
                scene: task.scene_id,
                task: task.id,
                captured_at_ms: at,
                jpeg,
                traceparent: Some(trace.to_string()),
                attributes: task.runs(Capability::Attributes, device.plan),
            };
            if let Err(e) = self.jobs.enqueue(&job).instrument(span).await {
                // The queue is down: drop this frame (live analytics wants fresh ones).
                tracing::warn!(device = %device.id, error = %e, "frame not enqueued");
                continue;
            }
            self.metrics.ingest_frames.add(1);
        }
    }
}
