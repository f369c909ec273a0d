//! Alert rule evaluation on the analytics results.
//!
//! The input is each user's event buffer on the bus (the same
//! `analysis_result` events SSE clients get, in publish order, kept at least
//! 5 minutes): a notify node takes a lease per user with enabled rules, reads
//! what is new after its cursor, and feeds each event's metrics to the
//! evaluators of the rules on its scene. A node that takes a user over starts
//! a lease's length back, so nothing published while the last owner died is
//! skipped; a firing it repeats is refused by the store (see
//! [`AlertRepo::fire_alert`](panoptes_shared::ports::AlertRepo::fire_alert)).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use panoptes_infra::redis_keys::lease_names;
use panoptes_shared::Result;
use panoptes_shared::domain::alert::{
    Alert, AlertRule, AlertStatus, Evaluator, StatusChange, Verdict,
};
use panoptes_shared::domain::device::Device;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::insight::Insight;
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::plan::billing_period;
use panoptes_shared::domain::schedule::UtcOffset;
use panoptes_shared::domain::stream_events::AnalysisResult;
use panoptes_shared::domain::task::{Capability, TaskStatus};
use panoptes_shared::domain::usage::Feature;
use panoptes_shared::ids::{AlertId, AlertRuleId, DeviceId, UserId};
use panoptes_shared::metering::{allowance, notify_quota};
use panoptes_shared::ports::blobs::snapshot_key_in_url;
use panoptes_shared::ports::bus::Offset;
use panoptes_shared::ports::jobs::{InsightJob, JobQueue, now_ms};
use panoptes_shared::ports::{EventBus, Leases, Store};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::metrics::WorkerMetrics;

/// Users evaluated at once in a step.
const USERS_AT_ONCE: usize = 16;

#[derive(Clone)]
pub struct RulesPorts {
    pub store: Arc<dyn Store>,
    /// Where the insight of an alert on a `vlm` task is queued.
    pub insight_queue: Arc<dyn JobQueue<InsightJob>>,
    pub bus: Arc<dyn EventBus>,
    pub leases: Arc<dyn Leases>,
    pub metrics: Arc<WorkerMetrics>,
}

#[derive(Debug, Clone)]
pub struct RulesSettings {
    pub node: String,
    pub lease_ttl: Duration,
    /// Enabled rules are read again this often.
    pub refresh: Duration,
    /// Events read per user per step.
    pub read_max: usize,
}

struct RuleState {
    rule: AlertRule,
    offset: UtcOffset,
    eval: Evaluator,
}

/// One user this node evaluates.
struct Owned {
    cursor: Offset,
    renewed: Instant,
    rules: HashMap<AlertRuleId, RuleState>,
    /// Each device's latest snapshot key.
    snapshots: HashMap<DeviceId, String>,
}

#[derive(Default)]
struct State {
    /// Enabled rules by user, as last read.
    rules: HashMap<UserId, Vec<(AlertRule, UtcOffset)>>,
    read_at: Option<Instant>,
    owned: HashMap<UserId, Owned>,
    /// Users another node evaluates, and when to try their lease again (not
    /// on every step: that would be a Redis call per user per step).
    foreign: HashMap<UserId, Instant>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RulesStep {
    pub events: usize,
    pub fired: usize,
}

pub struct RuleEvaluator {
    ports: RulesPorts,
    settings: RulesSettings,
    state: Mutex<State>,
}

impl RuleEvaluator {
    pub fn new(ports: RulesPorts, settings: RulesSettings) -> Self {
        Self {
            ports,
            settings,
            state: Mutex::new(State::default()),
        }
    }

    /// Read every owned user's new events and evaluate their rules.
    pub async fn step(&self) -> Result<RulesStep> {
        let now = Instant::now();
        let mut guard = self.state.lock().await;
        let st = &mut *guard;
        if st
            .read_at
            .is_none_or(|t| now.duration_since(t) >= self.settings.refresh)
        {
            let mut by_user: HashMap<UserId, Vec<(AlertRule, UtcOffset)>> = HashMap::new();
            for (rule, offset) in self.ports.store.enabled_rules().await? {
                by_user
                    .entry(rule.user_id)
                    .or_default()
                    .push((rule, offset));
            }
            st.rules = by_user;
            st.read_at = Some(now);
        }
        let mut done = RulesStep::default();
        let users: Vec<UserId> = st.rules.keys().copied().collect();
        // Users whose last rule went: give them up.
        let gone: Vec<UserId> = st
            .owned
            .keys()
            .filter(|u| !st.rules.contains_key(u))
            .copied()
            .collect();
        for user in gone {
            st.owned.remove(&user);
            self.ports
                .leases
                .release(&lease_names::notify_rules(user), &self.settings.node)
                .await?;
        }
        st.foreign.retain(|u, _| st.rules.contains_key(u));
        for user in users {
            let key = lease_names::notify_rules(user);
            if st.foreign.get(&user).is_some_and(|retry| now < *retry) {
                continue;
            }
            let renew = st
                .owned
                .get(&user)
                .is_none_or(|o| now.duration_since(o.renewed) >= self.settings.lease_ttl / 3);
            if renew {
                if !self
                    .ports
                    .leases
                    .acquire(&key, &self.settings.node, self.settings.lease_ttl)
                    .await?
                {
                    st.owned.remove(&user);
                    st.foreign.insert(user, now + self.settings.lease_ttl / 3);
                    continue;
                }
                st.foreign.remove(&user);
                let lease_ms = u64::try_from(self.settings.lease_ttl.as_millis()).unwrap_or(0);
                let owned = st.owned.entry(user).or_insert_with(|| Owned {
                    cursor: Offset {
                        ms: now_ms().saturating_sub(lease_ms),
                        seq: 0,
                    },
                    renewed: now,
                    rules: HashMap::new(),
                    snapshots: HashMap::new(),
                });
                owned.renewed = now;
            }
            let rules = st.rules.get(&user).cloned().unwrap_or_default();
            if let Some(owned) = st.owned.get_mut(&user) {
                sync_rules(owned, rules);
            }
        }
        // Users are independent: evaluate them side by side, so one user's
        // store writes (a firing is a transaction) do not hold up the rest.
        let mut owned = st.owned.iter_mut();
        let mut running = futures::stream::FuturesUnordered::new();
        loop {
            while running.len() < USERS_AT_ONCE {
                let Some((user, state)) = owned.next() else {
                    break;
                };
                running.push(self.evaluate_user(*user, state));
            }
            let Some(step) = running.next().await else {
                break;
            };
            let step = step?;
            done.events += step.events;
            done.fired += step.fired;
        }
        Ok(done)
    }

    async fn evaluate_user(&self, user: UserId, owned: &mut Owned) -> Result<RulesStep> {
        let events = self
            .ports
            .bus
            .replay_after(user, owned.cursor, self.settings.read_max)
            .await?;
        let mut done = RulesStep {
            events: events.len(),
            fired: 0,
        };
        for e in events {
            owned.cursor = e.offset;
            let Ok(result) = serde_json::from_str::<AnalysisResult>(&e.data) else {
                continue; // not an analysis result
            };
            if let Some(url) = &result.snapshot_url
                && let Some(key) = snapshot_key_in_url(url, user)
            {
                owned.snapshots.insert(result.device_id, key);
            }
            let Some(metrics) = &result.metrics else {
                continue;
            };
            for state in owned.rules.values_mut() {
                if state.rule.scene_id != result.scene_id {
                    continue;
                }
                let verdict = state.eval.observe(
                    &state.rule,
                    state.offset,
                    result.analysis_id,
                    result.timestamp,
                    metrics,
                );
                match verdict {
                    Verdict::Quiet => {}
                    Verdict::Cleared => {
                        self.ports
                            .store
                            .close_breach(state.rule.id, result.timestamp)
                            .await?;
                        state.rule.breach_open = false;
                    }
                    Verdict::Fire {
                        value,
                        breach_started_at,
                    } => {
                        let snapshot = owned.snapshots.get(&result.device_id).cloned();
                        if self
                            .fire(state, &result, value, breach_started_at, snapshot)
                            .await?
                        {
                            done.fired += 1;
                        }
                    }
                }
            }
        }
        Ok(done)
    }

    /// Whether the alert's task asks the VLM about its alerts: a level_02
    /// device whose running task enabled `vlm`.
    async fn wants_insight(
        &self,
        user: UserId,
        device: Option<&Device>,
        result: &AnalysisResult,
    ) -> Result<bool> {
        if device.is_none_or(|d| d.plan != Plan::Level02) {
            return Ok(false);
        }
        Ok(self
            .ports
            .store
            .get_task(user, result.analysis_id)
            .await?
            .is_some_and(|t| {
                t.status == TaskStatus::Running && t.capabilities.contains(&Capability::Vlm)
            }))
    }

    /// Whether the device has used its monthly alert quota (an alert fired
    /// now would be suppressed). A device that is gone counts as over.
    async fn over_alert_quota(
        &self,
        device: Option<&Device>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let Some(d) = device else {
            return Ok(true);
        };
        let used = self
            .ports
            .store
            .alert_count(d.user_id, d.id, &billing_period(at).0)
            .await?;
        let allowed = allowance(self.ports.store.as_ref(), d, &billing_period(at).0).await?;
        Ok(allowed.exhausted(Feature::AlertCount, used))
    }

    /// Ask the store to record the firing; whatever it answers, the rule's
    /// state is brought up to date so the evaluator does not ask again for
    /// the same breach.
    async fn fire(
        &self,
        state: &mut RuleState,
        result: &AnalysisResult,
        value: f64,
        breach_started_at: chrono::DateTime<chrono::Utc>,
        snapshot_key: Option<String>,
    ) -> Result<bool> {
        let rule = state.rule.clone();
        let at = result.timestamp;
        // Read once: the quota, the insight decision and the notice use it.
        let device = self
            .ports
            .store
            .get_device(rule.user_id, result.device_id)
            .await?;
        let suppressed = self.over_alert_quota(device.as_ref(), at).await?;
        let alert = Alert {
            id: AlertId::new(),
            user_id: rule.user_id,
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            scene_id: rule.scene_id,
            device_id: result.device_id,
            task_id: Some(result.analysis_id),
            severity: rule.severity,
            metric_path: rule.metric_path.as_string(),
            operator: rule.operator,
            threshold: rule.threshold,
            value,
            snapshot_key,
            status: AlertStatus::Active,
            history: vec![StatusChange {
                status: AlertStatus::Active,
                at,
                by: "system".into(),
                note: None,
            }],
            breach_started_at,
            triggered_at: at,
            updated_at: at,
            suppressed,
        };
        let event = PlatformEvent::new(
            rule.user_id,
            EventKind::AlertTriggered,
            Some(result.device_id),
            Some(result.analysis_id),
            serde_json::json!({
                "alertId": alert.id,
                "ruleId": rule.id,
                "ruleName": rule.name,
                "sceneId": rule.scene_id,
                "severity": rule.severity.as_str(),
                "metricPath": alert.metric_path,
                "operator": rule.operator.as_str(),
                "threshold": rule.threshold,
                "value": value,
                "breachStartedAt": breach_started_at,
                "triggeredAt": at,
            }),
            at,
        );
        let insight = if !suppressed
            && self
                .wants_insight(rule.user_id, device.as_ref(), result)
                .await?
        {
            Some(Insight::pending(&alert, panoptes_shared::time::now()))
        } else {
            None
        };
        if self
            .ports
            .store
            .fire_alert(&alert, &event, insight.as_ref())
            .await?
        {
            state.rule.last_fired_at = Some(at);
            state.rule.breach_open = true;
            state.eval.fired();
            if suppressed {
                tracing::info!(user = %rule.user_id, rule = %rule.id, alert = %alert.id, value, "alert suppressed: the device's monthly alert quota is used up");
                return Ok(true);
            }
            self.ports.metrics.alerts_fired.add(1);
            tracing::info!(user = %rule.user_id, rule = %rule.id, alert = %alert.id, value, "alert fired");
            if let Some(insight) = &insight
                && let Err(e) = crate::notify::insights::InsightWorker::enqueue(
                    self.ports.insight_queue.as_ref(),
                    insight,
                )
                .await
            {
                // The insight is stored pending: the sweep queues it again.
                tracing::warn!(insight = %insight.id, error = %e, "insight job not queued; the sweep will retry");
            }
            if let Some(device) = &device {
                let used = self
                    .ports
                    .store
                    .alert_count(rule.user_id, result.device_id, &billing_period(at).0)
                    .await?;
                let store = self.ports.store.as_ref();
                let allowed = allowance(store, device, &billing_period(at).0).await?;
                if !allowed.unlimited {
                    let limit = allowed.limit(Feature::AlertCount);
                    notify_quota(store, device, Feature::AlertCount, used, limit, at).await?;
                }
            }
            return Ok(true);
        }
        // Another evaluator fired this breach, or the cooldown (as stored) holds.
        match self.ports.store.get_rule(rule.user_id, rule.id).await? {
            Some(fresh) => {
                if fresh.breach_open {
                    state.eval.fired();
                }
                state.rule.last_fired_at = fresh.last_fired_at;
                state.rule.breach_open = fresh.breach_open;
                state.rule.enabled = fresh.enabled;
            }
            None => state.rule.enabled = false,
        }
        Ok(false)
    }

    /// Give every user up (shutdown): another node continues at once.
    pub async fn release_all(&self) {
        let mut st = self.state.lock().await;
        for user in st.owned.keys() {
            if let Err(e) = self
                .ports
                .leases
                .release(&lease_names::notify_rules(*user), &self.settings.node)
                .await
            {
                tracing::warn!(%user, error = %e, "notify lease not released");
            }
        }
        st.owned.clear();
    }
}

/// Bring the owned user's rule states in line with the rules as read: new
/// rules start from the store's firing state, changed ones start over,
/// removed ones go.
fn sync_rules(owned: &mut Owned, rules: Vec<(AlertRule, UtcOffset)>) {
    let mut next = HashMap::with_capacity(rules.len());
    for (rule, offset) in rules {
        let state = match owned.rules.remove(&rule.id) {
            Some(mut s) if s.rule.updated_at == rule.updated_at => {
                s.offset = offset;
                s
            }
            _ => RuleState {
                eval: Evaluator::resume(&rule),
                rule,
                offset,
            },
        };
        next.insert(state.rule.id, state);
    }
    owned.rules = next;
}
