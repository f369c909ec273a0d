//! The notify role: alert rules on the analytics results ([`rules`]), the
//! outbox of platform events ([`outbox`]) and webhook delivery
//! ([`deliver`]). Three loops; each wakes the next one at once when it has
//! made work for it (an alert's event, a queued delivery), and otherwise
//! polls, so events recorded by other processes are seen within `poll`.

pub mod deliver;
pub mod outbox;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use deliver::{DeliverPorts, DeliverSettings, Deliverer, Turn};
pub use outbox::{Dispatched, Outbox};
pub use rules::{RuleEvaluator, RulesPorts, RulesSettings, RulesStep};

/// The three parts of the role, wired together.
pub struct Notifier {
    pub rules: Arc<RuleEvaluator>,
    pub outbox: Arc<Outbox>,
    pub deliverer: Arc<Deliverer>,
    /// Pause of a loop that found nothing to do.
    pub poll: Duration,
}

/// Pause between rule passes that did read events: lets a burst of events
/// from many devices gather into one read per user.
const BUSY_PAUSE: Duration = Duration::from_millis(10);

impl Notifier {
    /// Run the three loops until `shutdown`; then give the rule leases back.
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
        tokio::join!(rules, outbox, delivery);
    }
}

/// Run `step` until shutdown: again soon after a step that did something,
/// after `idle` (or a wake-up) after one that did not, after a second when
/// it failed (a dependency is down).
async fn pace<F, Fut>(shutdown: &CancellationToken, idle: Duration, wake: &Notify, step: F)
where
    F: Fn() -> Fut,
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
