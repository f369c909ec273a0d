//! The insight pipeline: each pending insight's job is pulled from the
//! insight queue (Redis streams with a consumer group, like frame jobs:
//! a crashed node's jobs are reclaimed, a job that keeps failing goes to the
//! dead letters), the alert's snapshot and context go to the VLM, and the
//! answer (or the reason there is none) is stored on the insight.
//!
//! Guarantees:
//! - An insight ends `completed` or `failed` exactly once (the store only
//!   moves a pending one), however often its job is delivered.
//! - Tokens are metered once per insight (the usage event's id is the
//!   insight's), also when a redelivered job finds the insight already
//!   final: a node that died between storing the answer and metering it is
//!   made good by the next delivery.
//! - A device beyond its monthly `vlmTokens` (or whose plan lost VLM) gets
//!   no request: the insight fails with the quota's message.
//! - A dependency that is down (store, blob store) fails the job, which is
//!   retried; on its last attempt the insight fails with the reason, so
//!   none waits forever.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use panoptes_shared::domain::insight::{Insight, VlmResult};
use panoptes_shared::domain::metrics_history::TimeRange;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::insights::{
    InsightContext, attribute_words, attributes_in_view, insight_request,
};
use panoptes_shared::metering::{admit, meter};
use panoptes_shared::ports::jobs::{Claimed, InsightJob, JobQueue, now_ms};
use panoptes_shared::ports::vlm::TokenUsage;
use panoptes_shared::ports::{BlobStore, Store, VlmProvider};
use panoptes_shared::{Error, Result};

use crate::metrics::WorkerMetrics;

#[derive(Clone)]
pub struct InsightPorts {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue<InsightJob>>,
    pub vlm: Arc<dyn VlmProvider>,
    pub metrics: Arc<WorkerMetrics>,
}

#[derive(Debug, Clone)]
pub struct InsightSettings {
    /// This node's consumer name in the queue's group.
    pub consumer: String,
    /// Jobs pulled (and asked about at once) per step.
    pub batch: usize,
    /// How long a pull waits for a job.
    pub wait: Duration,
    /// Deliveries of a job before it is dead-lettered (the queue's policy).
    pub max_attempts: u32,
    /// A pending insight untouched this long has lost its job: queued again.
    pub requeue_after: Duration,
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsightStep {
    /// Jobs taken from the queue.
    pub jobs: usize,
    pub completed: usize,
    pub failed: usize,
}

/// How one job ended.
enum Outcome {
    Completed,
    Failed,
    /// Final already, or gone: nothing to do.
    Skipped,
}

pub struct InsightWorker {
    ports: InsightPorts,
    settings: InsightSettings,
}

impl InsightWorker {
    pub fn new(ports: InsightPorts, settings: InsightSettings) -> Self {
        Self { ports, settings }
    }

    /// Queue the job of a pending insight (just created with its alert).
    pub async fn enqueue(queue: &dyn JobQueue<InsightJob>, insight: &Insight) -> Result<()> {
        queue
            .enqueue(&InsightJob {
                id: panoptes_shared::ids::JobId(insight.id.0),
                user: insight.user_id,
                device: insight.device_id,
                insight: insight.id,
                enqueued_at_ms: now_ms(),
                traceparent: None,
            })
            .await
    }

    /// Pull a batch of jobs and settle each.
    pub async fn step(&self) -> Result<InsightStep> {
        let jobs = self
            .ports
            .queue
            .pull(
                &self.settings.consumer,
                self.settings.batch.max(1),
                self.settings.wait,
            )
            .await?;
        let mut done = InsightStep {
            jobs: jobs.len(),
            ..InsightStep::default()
        };
        let mut running: futures::stream::FuturesUnordered<_> =
            jobs.into_iter().map(|c| self.settle(c)).collect();
        while let Some(outcome) = running.next().await {
            match outcome {
                Outcome::Completed => {
                    done.completed += 1;
                    self.ports.metrics.insights_completed.add(1);
                }
                Outcome::Failed => {
                    done.failed += 1;
                    self.ports.metrics.insights_failed.add(1);
                }
                Outcome::Skipped => {}
            }
        }
        Ok(done)
    }

    /// Queue again the pending insights whose job was lost; how many.
    pub async fn requeue_stale(&self) -> Result<usize> {
        let now = panoptes_shared::time::now();
        let before = now
            - chrono::Duration::from_std(self.settings.requeue_after)
                .unwrap_or(chrono::Duration::MAX);
        let stale = self
            .ports
            .store
            .stale_pending_insights(before, now, 100)
            .await?;
        for i in &stale {
            tracing::warn!(insight = %i.id, user = %i.user_id, "pending insight without a job; queued again");
            Self::enqueue(self.ports.queue.as_ref(), i).await?;
        }
        Ok(stale.len())
    }

    /// Process one job and acknowledge or fail it.
    async fn settle(&self, claimed: Claimed<InsightJob>) -> Outcome {
        let job = &claimed.job;
        match self.process(job).await {
            Ok(outcome) => {
                if let Err(e) = self.ports.queue.ack(&claimed.receipt).await {
                    tracing::warn!(insight = %job.insight, error = %e, "insight job not acknowledged; it will be redelivered");
                }
                outcome
            }
            Err(e) => {
                let last = claimed.attempts >= self.settings.max_attempts;
                tracing::warn!(insight = %job.insight, attempt = claimed.attempts, last, error = %e, "insight job failed");
                let mut outcome = Outcome::Skipped;
                if last {
                    let reason = format!(
                        "the insight could not be processed after {} attempts: {}",
                        claimed.attempts,
                        public_reason(&e)
                    );
                    match self
                        .ports
                        .store
                        .fail_insight(
                            job.user,
                            job.insight,
                            &reason,
                            claimed.attempts,
                            panoptes_shared::time::now(),
                        )
                        .await
                    {
                        Ok(true) => outcome = Outcome::Failed,
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(insight = %job.insight, error = %e, "insight not marked failed")
                        }
                    }
                }
                if let Err(e) = self.ports.queue.fail(&claimed, &e.to_string()).await {
                    tracing::warn!(insight = %job.insight, error = %e, "insight job failure not recorded");
                }
                outcome
            }
        }
    }

    async fn process(&self, job: &InsightJob) -> Result<Outcome> {
        let store = self.ports.store.as_ref();
        let Some(insight) = store.get_insight(job.user, job.insight).await? else {
            return Ok(Outcome::Skipped); // its user is gone
        };
        let device = store.get_device(job.user, insight.device_id).await?;
        if insight.is_final() {
            // A redelivery: make sure the answer's tokens were metered.
            if let (Some(device), Some(tokens)) = (&device, insight.total_tokens) {
                meter(
                    store,
                    device,
                    &UsageEvent::vlm(
                        job.user,
                        device.id,
                        &insight.id.to_string(),
                        tokens,
                        insight.completed_at.unwrap_or(insight.updated_at),
                    ),
                )
                .await?;
            }
            return Ok(Outcome::Skipped);
        }
        let now = panoptes_shared::time::now();
        let Some(device) = device else {
            return self
                .fail(
                    &insight,
                    "the device was deleted before the VLM was asked",
                    0,
                )
                .await;
        };
        if let Err(e) = admit(store, &device, Feature::VlmTokens, now).await {
            return match e {
                Error::QuotaExceeded(m) | Error::PlanRequired(m) => {
                    self.fail(&insight, &m, 0).await
                }
                other => Err(other),
            };
        }
        let alert = store.get_alert(job.user, insight.alert_id).await?;
        let Some(alert) = alert else {
            return self
                .fail(
                    &insight,
                    "the alert was deleted before the VLM was asked",
                    0,
                )
                .await;
        };
        let scene = store.get_scene(job.user, insight.scene_id).await?;
        let history = store
            .list_snapshots(
                job.user,
                insight.scene_id,
                TimeRange {
                    start: Some(insight.triggered_at - chrono::Duration::minutes(10)),
                    end: Some(insight.triggered_at),
                },
                PageRequest { page: 1, limit: 10 },
            )
            .await?
            .items;
        let people = store
            .list_attributes(
                job.user,
                &attributes_in_view(&insight),
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await?;
        if people.total > 0 {
            store
                .attach_insight_attributes(
                    job.user,
                    insight.id,
                    people.total,
                    &attribute_words(&people.items),
                )
                .await?;
        }
        let mut images = Vec::new();
        if let Some(key) = &insight.snapshot_key
            && let Some(jpeg) = self.ports.blobs.get(key).await?
        {
            images.push(jpeg);
        }
        let context = InsightContext {
            alert: &alert,
            scene: scene.as_ref(),
            device_name: Some(&device.name),
            history: &history,
            people: &people.items,
        };
        let request = insight_request(&insight, &context, images);
        let asked = self.ports.vlm.ask(&request).await;
        let at = panoptes_shared::time::now();
        match asked {
            Ok(answer) => {
                let usage = answer.usage.unwrap_or_default();
                let summary = answer
                    .summary
                    .clone()
                    .or_else(|| {
                        answer
                            .object
                            .get("summary")
                            .and_then(|s| s.as_str())
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                let result = VlmResult {
                    summary,
                    structured: Some(answer.object),
                    model: Some(answer.model),
                    prompt_tokens: answer.usage.map(|u| u.prompt),
                    completion_tokens: answer.usage.map(|u| u.completion),
                    total_tokens: Some(usage.total),
                };
                let completed = store
                    .complete_insight(job.user, insight.id, &result, answer.attempts, at)
                    .await?;
                self.meter(&device, &insight, usage, at).await?;
                if completed {
                    tracing::info!(insight = %insight.id, tokens = usage.total, latency_ms = answer.latency.as_millis() as u64, "insight completed");
                    Ok(Outcome::Completed)
                } else {
                    Ok(Outcome::Skipped)
                }
            }
            Err(e) => {
                if let Some(usage) = e.usage() {
                    self.meter(&device, &insight, usage, at).await?;
                }
                tracing::info!(insight = %insight.id, class = e.class(), error = %e, "insight failed");
                let attempts = match &e {
                    panoptes_shared::ports::VlmError::Timeout { attempts, .. } => *attempts,
                    _ => 1,
                };
                self.fail(&insight, &e.to_string(), attempts).await
            }
        }
    }

    async fn meter(
        &self,
        device: &panoptes_shared::domain::device::Device,
        insight: &Insight,
        usage: TokenUsage,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        if usage.total == 0 {
            return Ok(());
        }
        meter(
            self.ports.store.as_ref(),
            device,
            &UsageEvent::vlm(
                insight.user_id,
                device.id,
                &insight.id.to_string(),
                usage.total,
                at,
            ),
        )
        .await?;
        Ok(())
    }

    async fn fail(&self, insight: &Insight, reason: &str, attempts: u32) -> Result<Outcome> {
        let failed = self
            .ports
            .store
            .fail_insight(
                insight.user_id,
                insight.id,
                reason,
                attempts,
                panoptes_shared::time::now(),
            )
            .await?;
        Ok(if failed {
            Outcome::Failed
        } else {
            Outcome::Skipped
        })
    }
}

/// An infrastructure error as the customer may read it: its kind, never
/// internal detail.
fn public_reason(e: &Error) -> String {
    match e {
        Error::Unavailable { dependency, .. } => format!("the {dependency} was unavailable"),
        _ => "an internal error".into(),
    }
}
