//! The notify role: alert rules on the analytics results ([`rules`]), the
//! outbox of platform events ([`outbox`]), webhook delivery ([`deliver`])
//! and the VLM insights of alerts ([`insights`]). Four loops; each of the
//! first three wakes the next one at once when it has made work for it (an
//! alert's event, a queued delivery), and otherwise polls, so events
//! recorded by other processes are seen within `poll`; the insight loop
//! waits on its queue.

pub mod deliver;
pub mod insights;
pub mod outbox;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use deliver::{DeliverPorts, DeliverSettings, Deliverer, Turn};
pub use insights::{InsightPorts, InsightSettings, InsightStep, InsightWorker};
pub use outbox::{Dispatched, Outbox};
pub use rules::{RuleEvaluator, RulesPorts, RulesSettings, RulesStep};

/// The parts of the role, wired together.
pub struct Notifier {
    pub rules: Arc<RuleEvaluator>,
    pub outbox: Arc<Outbox>,
    pub deliverer: Arc<Deliverer>,
    pub insights: Arc<InsightWorker>,
    /// Pause of a loop that found nothing to do.
    pub poll: Duration,
}

/// Pause between rule passes that did read events: lets a burst of events
/// from many devices gather into one read per user.
const BUSY_PAUSE: Duration = Duration::from_millis(10);

/// How often pending insights without a job are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl Notifier {
    /// Run the loops until `shutdown`; then give the rule leases back.
    pub async fn run(self, shutdown: CancellationToken) {
        let dispatch = Arc::new(Notify::new());
        let deliver = self.deliverer.wake.clone();
        let rules = {
            let (r, wake, stop, poll) = (
                self.rules.clone(),
                dispatch.clone(),
                shutdown.clone(),
                self.poll,
            );
            async move {
                pace(&stop, poll, &Notify::new(), || async {
                    let step = r.step().await?;
                    if step.fired > 0 {
                        wake.notify_one();
                    }
                    Ok(if step.events > 0 { 1 } else { 0 })
                })
                .await;
                r.release_all().await;
            }
        };
        let outbox = {
            let (o, wake, stop, poll, woken) = (
                self.outbox.clone(),
                deliver.clone(),
                shutdown.clone(),
                self.poll,
                dispatch.clone(),
            );
            async move {
                pace(&stop, poll, &woken, || async {
                    let done = o.step().await?;
                    if done.queued > 0 {
                        wake.notify_one();
                    }
                    Ok(done.events)
                })
                .await;
            }
        };
        let delivery = {
            let (d, stop, poll, woken) = (
                self.deliverer.clone(),
                shutdown.clone(),
                self.poll,
                deliver.clone(),
            );
            async move {
                pace(&stop, poll, &woken, || async { d.step().await }).await;
            }
        };
        let insights = {
            let (w, stop) = (self.insights.clone(), shutdown.clone());
            async move {
                let mut swept = tokio::time::Instant::now();
                pace(&stop, Duration::ZERO, &Notify::new(), || {
                    let w = w.clone();
                    let sweep = swept.elapsed() >= SWEEP_EVERY;
                    if sweep {
                        swept = tokio::time::Instant::now();
                    }
                    async move {
                        if sweep {
                            w.requeue_stale().await?;
                        }
                        Ok(w.step().await?.jobs)
                    }
                })
                .await;
            }
        };
        tokio::join!(rules, outbox, delivery, insights);
    }
}

/// Run `step` until shutdown: again soon after a step that did something,
/// after `idle` (or a wake-up) after one that did not, after a second when
/// it failed (a dependency is down).
async fn pace<F, Fut>(shutdown: &CancellationToken, idle: Duration, wake: &Notify, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = panoptes_shared::Result<usize>>,
{
    while !shutdown.is_cancelled() {
        let pause = match step().await {
            Ok(0) => idle,
            Ok(_) => BUSY_PAUSE,
            Err(e) => {
                tracing::warn!(role = "notify", error = %e, "step failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
        }
    }
}
