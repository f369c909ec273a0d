//! Webhook delivery. Each user's endpoint is served by one task at a time
//! across the cluster (a lease, renewed before every request), which sends
//! its due deliveries in event order, one request in flight, so a receiver
//! that keeps up sees events in order and a slow or dead one delays only
//! itself. A node runs at most `max_in_flight` endpoint tasks at once.
//!
//! A failed attempt ends the endpoint's turn and pauses it (for the
//! receiver's `Retry-After`, else the first retry wait): a failing receiver
//! is not sent the rest of the queue meanwhile, on any node. Its delivery is
//! retried on its own schedule; later ones go out when the pause ends.
//!
//! Every attempt is recorded with the delivery's new state in one
//! transaction, only if no other sender recorded one meanwhile. A node that
//! dies mid-request leaves the delivery pending: the next owner sends it
//! again (at least once; `webhook-id` lets the receiver drop the repeat).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use panoptes_infra::redis_keys::lease_names;
use panoptes_shared::Result;
use panoptes_shared::domain::webhook::{Delivery, Outcome, SigningSecret, Webhook, backoff};
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::cipher::signing_secrets;
use panoptes_shared::ports::webhooks::{OutboundRequest, WebhookSender};
use panoptes_shared::ports::{Leases, SecretCipher, Store};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::metrics::WorkerMetrics;

#[derive(Clone)]
pub struct DeliverPorts {
    pub store: Arc<dyn Store>,
    pub sender: Arc<dyn WebhookSender>,
    pub leases: Arc<dyn Leases>,
    pub cipher: Arc<dyn SecretCipher>,
    pub metrics: Arc<WorkerMetrics>,
}

#[derive(Debug, Clone)]
pub struct DeliverSettings {
    pub node: String,
    pub retry_schedule: Vec<Duration>,
    pub jitter: f64,
    pub max_in_flight: usize,
    pub batch: u32,
    /// Lease on an endpoint; longer than the longest request (30 s).
    pub lease_ttl: Duration,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turn {
    pub attempts: usize,
    /// The turn ended early: an attempt failed (the endpoint is paused), the
    /// endpoint was disabled (410), or another node took it over.
    pub stopped: bool,
}

/// How long a user whose task failed (the store, an unreadable secret) is
/// left alone by this node.
const ERROR_BACKOFF: Duration = Duration::from_secs(30);

pub struct Deliverer {
    ports: DeliverPorts,
    settings: DeliverSettings,
    permits: Arc<Semaphore>,
    /// Users whose endpoint task runs on this node.
    busy: Mutex<HashSet<UserId>>,
    /// Users whose last task failed, and until when they are left alone.
    failing: Mutex<HashMap<UserId, Instant>>,
    /// Notified when an endpoint task ends (deliveries queued while it ran
    /// are picked up at once) and when deliveries are queued.
    pub wake: Arc<tokio::sync::Notify>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Frees the user's slot on this node however its task ends (a panic too).
struct Busy {
    me: Arc<Deliverer>,
    user: UserId,
}

impl Drop for Busy {
    fn drop(&mut self) {
        lock(&self.me.busy).remove(&self.user);
        self.me.wake.notify_one();
    }
}

impl Deliverer {
    pub fn new(ports: DeliverPorts, settings: DeliverSettings) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            ports,
            settings,
            busy: Mutex::new(HashSet::new()),
            failing: Mutex::new(HashMap::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Start an endpoint task for every user with due deliveries that has
    /// none yet (as permits allow; the longest-waiting first); returns how
    /// many were started. The tasks run on after this returns.
    pub async fn step(self: &Arc<Self>) -> Result<usize> {
        let users = self
            .ports
            .store
            .users_with_due_deliveries(Utc::now(), 1_000)
            .await?;
        let clock = Instant::now();
        lock(&self.failing).retain(|_, until| *until > clock);
        let mut started = 0;
        for user in users {
            if lock(&self.busy).contains(&user) || lock(&self.failing).contains_key(&user) {
                continue;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                break; // every slot busy: the rest wait for the next step
            };
            let key = lease_names::webhook_sender(user);
            if !self
                .ports
                .leases
                .acquire(&key, &self.settings.node, self.settings.lease_ttl)
                .await?
            {
                continue;
            }
            lock(&self.busy).insert(user);
            started += 1;
            let guard = Busy {
                me: self.clone(),
                user,
            };
            tokio::spawn(async move {
                let me = guard.me.clone();
                if let Err(e) = me.deliver_user(user).await {
                    tracing::warn!(%user, error = %e, "webhook deliveries interrupted");
                    lock(&me.failing).insert(user, Instant::now() + ERROR_BACKOFF);
                }
                if let Err(e) = me.ports.leases.release(&key, &me.settings.node).await {
                    tracing::warn!(%user, error = %e, "webhook lease not released");
                }
                drop(permit);
                drop(guard);
            });
        }
        Ok(started)
    }

    /// Send the user's due deliveries in order until none is due or the
    /// turn stops (see [`Turn`]). Returns how many attempts were made.
    pub async fn deliver_user(&self, user: UserId) -> Result<usize> {
        let mut attempts = 0;
        loop {
            let turn = self.deliver_due(user, Utc::now()).await?;
            attempts += turn.attempts;
            if turn.attempts == 0 || turn.stopped {
                return Ok(attempts);
            }
        }
    }

    /// One batch: the user's deliveries due at `now`, in order. Each
    /// attempt is stamped `now` plus the time the batch has taken so far
    /// (tests pass the time; the loop passes the clock's). The endpoint's
    /// lease is taken or renewed before every request.
    pub async fn deliver_due(&self, user: UserId, now: DateTime<Utc>) -> Result<Turn> {
        let mut turn = Turn::default();
        let Some(webhook) = self.ports.store.get_webhook(user).await? else {
            return Ok(turn);
        };
        if !webhook.enabled {
            return Ok(turn);
        }
        let secrets = signing_secrets(self.ports.cipher.as_ref(), &webhook, now)?;
        let due = self
            .ports
            .store
            .due_deliveries(user, now, self.settings.batch)
            .await?;
        let (key, batch_start) = (lease_names::webhook_sender(user), Instant::now());
        for d in due {
            if !self
                .ports
                .leases
                .acquire(&key, &self.settings.node, self.settings.lease_ttl)
                .await?
            {
                turn.stopped = true; // another node took the endpoint over
                break;
            }
            let at = now + chrono::Duration::from_std(batch_start.elapsed()).unwrap_or_default();
            turn.attempts += 1;
            match self.attempt(d, &webhook, &secrets, at).await? {
                Some(Outcome::Delivered) => {}
                None => {
                    turn.stopped = true; // recorded by another sender meanwhile
                    break;
                }
                Some(_) => {
                    turn.stopped = true;
                    break;
                }
            }
        }
        Ok(turn)
    }

    /// One attempt of `d`: send, record, pause or disable the endpoint as
    /// the answer says. `None` when another sender recorded an attempt of
    /// `d` meanwhile (this one is not recorded).
    async fn attempt(
        &self,
        mut d: Delivery,
        webhook: &Webhook,
        secrets: &[SigningSecret],
        started_at: DateTime<Utc>,
    ) -> Result<Option<Outcome>> {
        let request = OutboundRequest::signed(
            &webhook.url,
            &d.msg_id(),
            &d.payload,
            secrets,
            started_at.timestamp(),
            Duration::from_millis(u64::from(webhook.timeout_ms))
                .min(panoptes_infra::webhooks::MAX_TIMEOUT),
        );
        let clock = Instant::now();
        let response = self.ports.sender.send(&request).await;
        let elapsed = clock.elapsed();
        let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let now = started_at + chrono::Duration::from_std(elapsed).unwrap_or_default();
        let (schedule, jitter) = (&self.settings.retry_schedule, self.settings.jitter);
        let result = response.into_result(latency_ms, now);
        let retry_after = result.retry_after;
        let (attempt, outcome) = d.record(result, started_at, now, webhook.max_retries, |round| {
            backoff(schedule, round, jitter)
        });
        let disable = (outcome == Outcome::Gone).then(|| {
            format!(
                "the receiver answered 410 Gone at {}; re-enable with PATCH {{\"enabled\": true}}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        });
        if !self
            .ports
            .store
            .record_attempt(&d, &attempt, disable.as_deref())
            .await?
        {
            return Ok(None);
        }
        if outcome == Outcome::Delivered {
            self.ports.metrics.webhook_deliveries.add(1);
        } else {
            self.ports.metrics.webhook_failures.add(1);
        }
        match &outcome {
            Outcome::Gone => {
                tracing::warn!(user = %d.user_id, webhook = %webhook.id, "webhook disabled: 410 Gone");
            }
            Outcome::Retry { .. } => {
                // The receiver's word, else the first retry wait (no jitter:
                // it is a pause of the endpoint, not of one delivery).
                let pause = retry_after
                    .or_else(|| schedule.first().copied())
                    .unwrap_or(Duration::from_secs(5));
                let until = now + chrono::Duration::from_std(pause).unwrap_or_default();
                self.ports.store.pause_webhook(webhook.id, until).await?;
            }
            Outcome::Delivered => {}
        }
        tracing::debug!(user = %d.user_id, delivery = %d.id, status = ?attempt.status_code, latency_ms, "webhook attempt");
        Ok(Some(outcome))
    }
}
