//! What a worker node exports on `/metrics`: the signals an autoscaler uses
//! (queue lag, frames/s, batch sizes, inference time, drops, dead letters).

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use panoptes_shared::metrics::Histogram;
use panoptes_shared::ports::QueueStats;

const BATCH_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
/// Seconds (Prometheus base unit): 5 ms to 5 s.
const SECONDS_BOUNDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct WorkerMetrics {
    pub frames: Counter,
    pub frame_failures: Counter,
    pub duplicate_results: Counter,
    pub snapshots: Counter,
    pub scene_missing: Counter,
    pub published: Counter,
    pub late_dropped: Counter,
    pub persisted: Counter,
    pub persist_failures: Counter,
    pub attributes_described: Counter,
    pub attributes_refused: Counter,
    pub attribute_failures: Counter,
    pub ingest_frames: Counter,
    pub ingest_decode_failures: Counter,
    pub ingest_reconnects: Counter,
    pub alerts_fired: Counter,
    pub webhook_deliveries: Counter,
    pub webhook_failures: Counter,
    pub insights_completed: Counter,
    pub insights_failed: Counter,
    batch_sizes: Mutex<Histogram>,
    inference_seconds: Mutex<Histogram>,
    frame_seconds: Mutex<Histogram>,
    queue: Mutex<Option<QueueStats>>,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self {
            frames: Counter::default(),
            frame_failures: Counter::default(),
            duplicate_results: Counter::default(),
            snapshots: Counter::default(),
            scene_missing: Counter::default(),
            published: Counter::default(),
            late_dropped: Counter::default(),
            persisted: Counter::default(),
            persist_failures: Counter::default(),
            attributes_described: Counter::default(),
            attributes_refused: Counter::default(),
            attribute_failures: Counter::default(),
            ingest_frames: Counter::default(),
            ingest_decode_failures: Counter::default(),
            ingest_reconnects: Counter::default(),
            alerts_fired: Counter::default(),
            webhook_deliveries: Counter::default(),
            webhook_failures: Counter::default(),
            insights_completed: Counter::default(),
            insights_failed: Counter::default(),
            batch_sizes: Mutex::new(Histogram::new(BATCH_BOUNDS)),
            inference_seconds: Mutex::new(Histogram::new(SECONDS_BOUNDS)),
            frame_seconds: Mutex::new(Histogram::new(SECONDS_BOUNDS)),
            queue: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WorkerMetrics {
    /// One inference batch of `size` frames: the batch's inference time and
    /// each frame's share of the whole step, in seconds.
    pub fn observe_batch(&self, size: usize, inference_seconds: f64, frame_seconds: f64) {
        lock(&self.batch_sizes).observe(size as f64);
        lock(&self.inference_seconds).observe(inference_seconds);
        let mut f = lock(&self.frame_seconds);
        for _ in 0..size {
            f.observe(frame_seconds);
        }
    }

    pub fn set_queue(&self, stats: QueueStats) {
        *lock(&self.queue) = Some(stats);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "panoptes_detect_frames_total",
            "Frames detected (frames/s is its rate).",
            self.frames.get(),
        );
        counter(
            &mut out,
            "panoptes_detect_frame_failures_total",
            "Frames that failed (retried, then dead-lettered).",
            self.frame_failures.get(),
        );
        counter(
            &mut out,
            "panoptes_detect_duplicate_results_total",
            "Results of reclaimed jobs already recorded (not counted twice).",
            self.duplicate_results.get(),
        );
        counter(
            &mut out,
            "panoptes_detect_snapshots_total",
            "Snapshots stored.",
            self.snapshots.get(),
        );
        counter(
            &mut out,
            "panoptes_detect_scene_missing_total",
            "Frames of deleted scenes, dropped.",
            self.scene_missing.get(),
        );
        counter(
            &mut out,
            "panoptes_analytics_published_total",
            "analysis_result events published.",
            self.published.get(),
        );
        counter(
            &mut out,
            "panoptes_analytics_late_dropped_total",
            "Results that came after the reorder window, dropped.",
            self.late_dropped.get(),
        );
        for (name, help, v) in [
            (
                "panoptes_analytics_persisted_total",
                "Snapshot + rolling rows stored.",
                &self.persisted,
            ),
            (
                "panoptes_analytics_persist_failures_total",
                "Snapshot + rolling rows that could not be stored.",
                &self.persist_failures,
            ),
            (
                "panoptes_analytics_attributes_described_total",
                "Track descriptions (person attributes) stored.",
                &self.attributes_described,
            ),
            (
                "panoptes_analytics_attributes_refused_total",
                "Frames whose due descriptions the plan or quota refused.",
                &self.attributes_refused,
            ),
            (
                "panoptes_analytics_attribute_failures_total",
                "Frames whose due descriptions could not be stored or metered.",
                &self.attribute_failures,
            ),
            (
                "panoptes_ingest_frames_total",
                "Frames sampled from RTSP streams and enqueued.",
                &self.ingest_frames,
            ),
            (
                "panoptes_ingest_decode_failures_total",
                "Access units the H.264 decoder refused.",
                &self.ingest_decode_failures,
            ),
            (
                "panoptes_ingest_reconnects_total",
                "RTSP sessions lost and retried.",
                &self.ingest_reconnects,
            ),
            (
                "panoptes_notify_alerts_fired_total",
                "Alert rules fired (one per breach, cluster-wide exactly once).",
                &self.alerts_fired,
            ),
            (
                "panoptes_insights_completed_total",
                "Insights the VLM answered (each once, however often its job was delivered).",
                &self.insights_completed,
            ),
            (
                "panoptes_insights_failed_total",
                "Insights failed: provider errors, timeouts, unusable answers, quota, lost jobs.",
                &self.insights_failed,
            ),
            (
                "panoptes_webhook_deliveries_total",
                "Webhook attempts answered with 2xx.",
                &self.webhook_deliveries,
            ),
            (
                "panoptes_webhook_failures_total",
                "Webhook attempts that failed (non-2xx, timeout, refused target).",
                &self.webhook_failures,
            ),
        ] {
            counter(&mut out, name, help, v.get());
        }
        let hist = |out: &mut String, name: &str, help: &str, h: &Mutex<Histogram>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            lock(h).render(name, "", out);
        };
        hist(
            &mut out,
            "panoptes_detect_batch_size",
            "Frames per inference batch.",
            &self.batch_sizes,
        );
        hist(
            &mut out,
            "panoptes_detect_inference_seconds",
            "Inference time per batch, in seconds.",
            &self.inference_seconds,
        );
        hist(
            &mut out,
            "panoptes_detect_frame_seconds",
            "Decode + inference + post-processing per frame (its share of the batch), in seconds.",
            &self.frame_seconds,
        );
        if let Some(q) = *lock(&self.queue) {
            let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            };
            gauge(
                &mut out,
                "panoptes_jobs_waiting",
                "Frame jobs not yet handed out.",
                q.waiting,
            );
            gauge(
                &mut out,
                "panoptes_jobs_pending",
                "Frame jobs handed out, not acknowledged.",
                q.pending,
            );
            gauge(
                &mut out,
                "panoptes_jobs_lag",
                "Queue lag: waiting + pending jobs.",
                q.waiting + q.pending,
            );
            let _ = writeln!(
                out,
                "# HELP panoptes_jobs_oldest_age_seconds Age (since capture) of the oldest unacknowledged job, in seconds; 0 when none.\n\
                 # TYPE panoptes_jobs_oldest_age_seconds gauge\n\
                 panoptes_jobs_oldest_age_seconds {}",
                q.oldest_age_ms.unwrap_or(0) as f64 / 1000.0
            );
            counter(
                &mut out,
                "panoptes_jobs_dropped_stale_total",
                "Jobs dropped as stale, cluster-wide since the queue was created.",
                q.dropped_stale,
            );
            gauge(
                &mut out,
                "panoptes_jobs_dead_letters",
                "Jobs in the dead letters.",
                q.dead_letters,
            );
        }
        panoptes_shared::metrics::process::render(&mut out);
        out
    }
}
