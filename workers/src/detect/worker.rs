//! One detect step: pull up to a batch of frame jobs (waiting up to the batch
//! window), decode and detect off the async runtime, store a snapshot when the
//! device's interval has passed, record each result once per job id, then
//! acknowledge. A frame that fails is retried until the queue dead-letters it.
//! In frames of tasks that describe people (`FrameJob::attributes`), each
//! person's clothing colours are read from the decoded frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes_infra::redis_keys::lease_names;
use panoptes_shared::domain::detection::{BoundingBox, Detection, DetectionResult};
use panoptes_shared::domain::scene::DetectClass;
use panoptes_shared::ports::blobs::snapshot_key;
use panoptes_shared::ports::jobs::Claimed;
use panoptes_shared::ports::{BlobStore, DetectionLog, JobQueue, Leases};
use panoptes_shared::telemetry::continue_trace;
use panoptes_shared::{Error, Result};
use tracing::Instrument;

use super::SceneCache;
use crate::attributes::describe;
use crate::image::{Rgb, decode_all};
use crate::inference::engine::{Engine, FrameIn};
use crate::inference::{Found, Wanted};
use crate::metrics::WorkerMetrics;

/// What the detect role works with: its ports, the inference engine and
/// the node's metrics.
#[derive(Clone)]
pub struct DetectPorts {
    pub queue: Arc<dyn JobQueue>,
    pub scenes: Arc<SceneCache>,
    pub blobs: Arc<dyn BlobStore>,
    pub log: Arc<dyn DetectionLog>,
    pub leases: Arc<dyn Leases>,
    pub engine: Arc<Engine>,
    pub metrics: Arc<WorkerMetrics>,
}

#[derive(Debug, Clone)]
pub struct DetectSettings {
    /// This node's id: the consumer name and the `nodeId` of results.
    pub node: String,
    pub batch_size: usize,
    /// How long a pull waits for the first job.
    pub batch_wait: Duration,
    /// At most one snapshot per device per interval (across the pool).
    pub snapshot_interval: Duration,
}

pub struct DetectWorker {
    ports: DetectPorts,
    settings: DetectSettings,
}

/// What became of one claimed job in the blocking part of a step.
enum Outcome {
    /// What was found, and the frame's size.
    Found(Vec<Detection>, u32, u32),
    Failed(String),
    /// Its scene was deleted: acknowledged without a result.
    NoScene,
}

impl DetectWorker {
    pub fn new(ports: DetectPorts, settings: DetectSettings) -> Self {
        Self { ports, settings }
    }

    /// Pull and process one batch; returns how many jobs it handled.
    pub async fn step(&self) -> Result<usize> {
        let mut claimed = self
            .ports
            .queue
            .pull(
                &self.settings.node,
                self.settings.batch_size.max(1),
                self.settings.batch_wait,
            )
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        // One span per frame, in the trace its producer started; open from
        // the pull to the acknowledgement (the batch's inference included).
        // From here on the job's traceparent names this span, so the result
        // hands it to analytics (even where the span itself is not recorded).
        let spans: Vec<tracing::Span> = claimed
            .iter_mut()
            .map(|c| {
                let span = tracing::info_span!(
                    "frame.detect",
                    job = %c.job.id,
                    device = %c.job.device,
                    attempt = c.attempts,
                    trace_id = tracing::field::Empty,
                );
                let handed = continue_trace(&span, c.job.traceparent.as_deref());
                c.job.traceparent = Some(handed.to_string());
                span
            })
            .collect();
        let mut wanted = Vec::with_capacity(claimed.len());
        for c in &claimed {
            wanted.push(self.ports.scenes.wanted(c.job.user, c.job.scene).await?);
        }
        let started = Instant::now();
        let engine = self.ports.engine.clone();
        // The frames go to the blocking thread and come back for the snapshot.
        let jpegs: Vec<Vec<u8>> = claimed
            .iter_mut()
            .map(|c| std::mem::take(&mut c.job.jpeg))
            .collect();
        let people: Vec<bool> = claimed.iter().map(|c| c.job.attributes).collect();
        let (outcomes, inference_ms, jpegs) = tokio::task::spawn_blocking(move || {
            let (outcomes, ms) = detect(&engine, &jpegs, &wanted, &people);
            (outcomes, ms, jpegs)
        })
        .await
        .map_err(Error::internal)?;
        let frame_ms = started.elapsed().as_secs_f64() * 1000.0 / claimed.len() as f64;
        if let Some(ms) = inference_ms {
            self.ports
                .metrics
                .observe_batch(claimed.len(), ms / 1000.0, frame_ms / 1000.0);
        }
        for (((c, outcome), jpeg), span) in claimed.iter().zip(outcomes).zip(jpegs).zip(spans) {
            async {
                match outcome {
                    Outcome::Found(found, w, h) => {
                        match self.record(c, jpeg, found, w, h, frame_ms as f32).await {
                            Ok(()) => Ok(()),
                            Err(e) => self.failed(c, &format!("result not recorded: {e}")).await,
                        }
                    }
                    Outcome::Failed(error) => self.failed(c, &error).await,
                    Outcome::NoScene => {
                        self.ports.metrics.scene_missing.add(1);
                        self.ports.queue.ack(&c.receipt).await
                    }
                }
            }
            .instrument(span)
            .await?;
        }
        Ok(claimed.len())
    }

    async fn failed(&self, c: &Claimed, error: &str) -> Result<()> {
        self.ports.metrics.frame_failures.add(1);
        tracing::warn!(job = %c.job.id, device = %c.job.device, attempt = c.attempts, error, "frame failed");
        self.ports.queue.fail(c, error).await
    }

    async fn record(
        &self,
        c: &Claimed,
        jpeg: Vec<u8>,
        detections: Vec<Detection>,
        w: u32,
        h: u32,
        ms: f32,
    ) -> Result<()> {
        let job = &c.job;
        let snapshot = if self
            .ports
            .leases
            .acquire(
                &lease_names::snapshot(job.device),
                &job.id.to_string(),
                self.settings.snapshot_interval,
            )
            .await?
        {
            let key = snapshot_key(job.user, job.device, job.captured_at_ms, job.id);
            self.ports.blobs.put(&key, jpeg, "image/jpeg").await?;
            self.ports.metrics.snapshots.add(1);
            Some(key)
        } else {
            None
        };
        let result = DetectionResult {
            job_id: job.id,
            user_id: job.user,
            device_id: job.device,
            scene_id: job.scene,
            task_id: job.task,
            captured_at_ms: job.captured_at_ms,
            width: w,
            height: h,
            detections,
            processing_ms: ms,
            node_id: self.settings.node.clone(),
            snapshot_key: snapshot,
            // The detect span's context (see `step`): analytics continues from it.
            traceparent: job.traceparent.clone(),
        };
        if !self.ports.log.append(&result).await? {
            self.ports.metrics.duplicate_results.add(1);
        }
        self.ports.queue.ack(&c.receipt).await?;
        self.ports.metrics.frames.add(1);
        tracing::debug!(detections = result.detections.len(), "frame detected");
        Ok(())
    }
}

/// Decode every frame and detect in the decodable ones, describing the
/// people of frames whose `people` flag is set (blocking).
fn detect(
    engine: &Engine,
    jpegs: &[Vec<u8>],
    wanted: &[Option<Wanted>],
    people: &[bool],
) -> (Vec<Outcome>, Option<f64>) {
    // Frames of deleted scenes are not decoded.
    let live: Vec<&[u8]> = jpegs
        .iter()
        .zip(wanted)
        .filter(|(_, w)| w.is_some())
        .map(|(j, _)| j.as_slice())
        .collect();
    let mut frames = decode_all(&live).into_iter();
    let decoded: Vec<Option<Result<Rgb, String>>> = wanted
        .iter()
        .map(|w| {
            w.and_then(|_| frames.next())
                .map(|d| d.map_err(|e| e.to_string()))
        })
        .collect();
    let batch: Vec<FrameIn<'_>> = decoded
        .iter()
        .zip(wanted)
        .filter_map(|(d, w)| match (d, w) {
            (Some(Ok(frame)), Some(wanted)) => Some(FrameIn {
                frame,
                wanted: *wanted,
            }),
            _ => None,
        })
        .collect();
    let (mut results, inference_ms) = match engine.detect(&batch) {
        Ok((results, t)) => (Ok(results.into_iter()), Some(t.inference_ms)),
        Err(e) => (Err(e.to_string()), None),
    };
    let outcomes = decoded
        .into_iter()
        .zip(people)
        .map(|(d, &people)| match d {
            None => Outcome::NoScene,
            Some(Err(e)) => Outcome::Failed(e),
            Some(Ok(frame)) => match &mut results {
                Ok(it) => match it.next() {
                    Some(Ok(found)) => Outcome::Found(
                        detections(&frame, &found, people),
                        frame.width as u32,
                        frame.height as u32,
                    ),
                    Some(Err(e)) => Outcome::Failed(e),
                    None => Outcome::Failed("no result for the frame".into()),
                },
                Err(e) => Outcome::Failed(e.clone()),
            },
        })
        .collect();
    (outcomes, inference_ms)
}

/// The detections of `frame`, each person described when `people` is set
/// (none when too small to describe).
fn detections(frame: &Rgb, found: &[Found], people: bool) -> Vec<Detection> {
    let (w, h) = (frame.width as u32, frame.height as u32);
    found
        .iter()
        .map(|f| {
            let bounding_box = BoundingBox::from_corners(f.x1, f.y1, f.x2, f.y2, w, h);
            Detection {
                class: f.class,
                confidence: f.score,
                bounding_box,
                attributes: (people && f.class == DetectClass::Person)
                    .then(|| describe(frame, &bounding_box))
                    .flatten(),
            }
        })
        .collect()
}
