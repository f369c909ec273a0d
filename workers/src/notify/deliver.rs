//! Webhook delivery. Each user's endpoint is served by one task at a time
//! across the cluster (a lease), which sends its due deliveries in event
//! order, one request in flight, so a receiver that keeps up sees events in
//! order and a slow or dead one delays only itself. A node runs at most
//! `max_in_flight` endpoint tasks at once.
//!
//! Every attempt is recorded with the delivery's new state in one
//! transaction. A node that dies mid-request leaves the delivery pending:
//! the next owner sends it again (at least once; `webhook-id` lets the
//! receiver drop the repeat).

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
    /// The endpoint was disabled (410) or asked us to hold off (Retry-After).
    pub stopped: bool,
}

pub struct Deliverer {
    ports: DeliverPorts,
    settings: DeliverSettings,
    permits: Arc<Semaphore>,
    /// Users whose endpoint task runs on this node.
    busy: Mutex<HashSet<UserId>>,
    /// Users whose receiver asked us (429/503 Retry-After) to hold off.
    throttled: Mutex<HashMap<UserId, Instant>>,
    /// Notified when an endpoint task ends (deliveries queued while it ran
    /// are picked up at once) and when deliveries are queued.
    pub wake: Arc<tokio::sync::Notify>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Deliverer {
    pub fn new(ports: DeliverPorts, settings: DeliverSettings) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            ports,
            settings,
            busy: Mutex::new(HashSet::new()),
            throttled: Mutex::new(HashMap::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Start an endpoint task for every user with due deliveries that has
    /// none yet (as permits allow); returns how many were started. The tasks
    /// run on after this returns.
    pub async fn step(self: &Arc<Self>) -> Result<usize> {
        let now = Utc::now();
        let users = self
            .ports
            .store
            .users_with_due_deliveries(now, 1_000)
            .await?;
        let mut started = 0;
        for user in users {
            if lock(&self.busy).contains(&user) {
                continue;
            }
            if lock(&self.throttled)
                .get(&user)
                .is_some_and(|until| Instant::now() < *until)
            {
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
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.deliver_user(user).await {
                    tracing::warn!(%user, error = %e, "webhook deliveries interrupted");
                }
                if let Err(e) = me.ports.leases.release(&key, &me.settings.node).await {
                    tracing::warn!(%user, error = %e, "webhook lease not released");
                }
                lock(&me.busy).remove(&user);
                drop(permit);
                me.wake.notify_one();
            });
        }
        Ok(started)
    }

    /// Send the user's due deliveries in order until none is due, the
    /// endpoint is disabled, or the receiver asks to hold off. Returns how
    /// many attempts were made. (The caller holds the endpoint's lease.)
    pub async fn deliver_user(&self, user: UserId) -> Result<usize> {
        let key = lease_names::webhook_sender(user);
        let mut attempts = 0;
        loop {
            let turn = self.deliver_due(user, Utc::now()).await?;
            attempts += turn.attempts;
            if turn.attempts == 0 || turn.stopped {
                return Ok(attempts);
            }
            // Between batches: keep the endpoint, or stop if another node took it.
            if !self
                .ports
                .leases
                .acquire(&key, &self.settings.node, self.settings.lease_ttl)
                .await?
            {
                return Ok(attempts);
            }
        }
    }

    /// One batch: the user's deliveries due at `now`, in order, each attempt
    /// stamped `now` (tests pass the time; the loop passes the clock's).
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
        for d in due {
            turn.attempts += 1;
            match self.attempt(d, &webhook, &secrets, now).await? {
                Outcome::Delivered | Outcome::Retry { after: None } => {}
                Outcome::Gone => {
                    turn.stopped = true;
                    break;
                }
                Outcome::Retry { after: Some(wait) } => {
                    lock(&self.throttled).insert(user, Instant::now() + wait);
                    turn.stopped = true;
                    break;
                }
            }
        }
        Ok(turn)
    }

    /// One attempt of `d`: send, record, and say what it meant.
    async fn attempt(
        &self,
        mut d: Delivery,
        webhook: &Webhook,
        secrets: &[SigningSecret],
        started_at: DateTime<Utc>,
    ) -> Result<Outcome> {
        let timestamp = started_at.timestamp();
        let request = OutboundRequest::signed(
            &webhook.url,
            &d.msg_id(),
            &d.payload,
            secrets,
            timestamp,
            Duration::from_millis(u64::from(webhook.timeout_ms))
                .min(panoptes_infra::webhooks::MAX_TIMEOUT),
        );
        let clock = Instant::now();
        let response = self.ports.sender.send(&request).await;
        let elapsed = clock.elapsed();
        let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let now = started_at + chrono::Duration::from_std(elapsed).unwrap_or_default();
        let (schedule, jitter) = (&self.settings.retry_schedule, self.settings.jitter);
        let (attempt, outcome) = d.record(
            response.into_result(latency_ms, now),
            started_at,
            now,
            webhook.max_retries,
            |round| backoff(schedule, round, jitter),
        );
        if outcome == Outcome::Delivered {
            self.ports.metrics.webhook_deliveries.add(1);
        } else {
            self.ports.metrics.webhook_failures.add(1);
        }
        self.ports.store.record_attempt(&d, &attempt).await?;
        if outcome == Outcome::Gone {
            let reason = format!(
                "the receiver answered 410 Gone at {}; re-enable with PATCH {{\"enabled\": true}}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            self.ports
                .store
                .disable_webhook(d.user_id, webhook.id, &reason)
                .await?;
            tracing::warn!(user = %d.user_id, webhook = %webhook.id, "webhook disabled: 410 Gone");
        }
        tracing::debug!(user = %d.user_id, delivery = %d.id, status = ?attempt.status_code, latency_ms = attempt.latency_ms, "webhook attempt");
        Ok(outcome)
    }
}
