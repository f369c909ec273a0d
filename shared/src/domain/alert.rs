//! Alert rules on a scene's queue metrics, their firings (alerts), and the
//! evaluation that turns a stream of metric samples into firings.
//!
//! A rule **fires once per breach**: when its condition has held on every
//! sample for `durationSeconds` (sample capture times) inside an active slot,
//! and at least `cooldownSeconds` after the rule last fired. It fires again
//! only after the condition has stopped holding and held again. The store
//! keeps the authoritative "fired, breach still open" state, so any number
//! of evaluators (notify replicas) fire a breach exactly once.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::device::string_enum;
use crate::domain::queue_metrics::{QueueMetrics, WindowMetrics};
use crate::domain::schedule::{DaySlots, SLOTS_PER_DAY, UtcOffset};
use crate::error::FieldError;
use crate::ids::{AlertId, AlertRuleId, DeviceId, SceneId, TaskId, UserId};

string_enum!(
    /// How a metric is compared with the threshold.
    Operator { Gt = "gt", Gte = "gte", Lt = "lt", Lte = "lte", Eq = "eq" }
);

impl Operator {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Gte => value >= threshold,
            Self::Lt => value < threshold,
            Self::Lte => value <= threshold,
            Self::Eq => (value - threshold).abs() <= 1e-9 * threshold.abs().max(1.0),
        }
    }
}

string_enum!(
    /// How urgent an alert is.
    Severity { Warning = "warning", Critical = "critical" }
);

string_enum!(
    /// Where an alert is in its life: `active` when fired, then
    /// `acknowledged` and/or `resolved` (final).
    AlertStatus { Active = "active", Acknowledged = "acknowledged", Resolved = "resolved" }
);

/// The window part of a metric path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    Current,
    Rolling5Min,
    Rolling30Min,
    Total,
}

const SCOPES: [(Scope, &str); 4] = [
    (Scope::Current, "current"),
    (Scope::Rolling5Min, "rolling5Min"),
    (Scope::Rolling30Min, "rolling30Min"),
    (Scope::Total, "total"),
];

const CURRENT_FIELDS: [&str; 2] = ["inQueue", "inService"];

const WINDOW_FIELDS: [&str; 10] = [
    "avgInQueue",
    "maxInQueue",
    "avgInService",
    "arrivals",
    "departures",
    "avgWaitSeconds",
    "medianWaitSeconds",
    "p90WaitSeconds",
    "waitSamples",
    "estimatedWaitSeconds",
];

/// A documented metric dot path (`current.inQueue`,
/// `rolling5Min.avgWaitSeconds`, ...): where a rule reads its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricPath {
    scope: Scope,
    field: &'static str,
}

impl MetricPath {
    /// Every valid path, in documentation order.
    pub fn all() -> Vec<String> {
        let mut out: Vec<String> = CURRENT_FIELDS
            .iter()
            .map(|f| format!("current.{f}"))
            .collect();
        for (_, scope) in &SCOPES[1..] {
            out.extend(WINDOW_FIELDS.iter().map(|f| format!("{scope}.{f}")));
        }
        out
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "metricPath",
                format!(
                    "`{}` is not a metric path; valid paths: {}",
                    raw.chars().take(64).collect::<String>(),
                    Self::all().join(", ")
                ),
            )
        };
        let (scope, field) = raw.split_once('.').ok_or_else(bad)?;
        let scope = SCOPES
            .iter()
            .find(|(_, name)| *name == scope)
            .map(|(s, _)| *s)
            .ok_or_else(bad)?;
        let fields: &[&'static str] = if scope == Scope::Current {
            &CURRENT_FIELDS
        } else {
            &WINDOW_FIELDS
        };
        let field = fields.iter().find(|f| **f == field).ok_or_else(bad)?;
        Ok(Self { scope, field })
    }

    pub fn as_string(&self) -> String {
        let scope = SCOPES
            .iter()
            .find(|(s, _)| *s == self.scope)
            .map(|(_, n)| *n)
            .unwrap_or("current");
        format!("{scope}.{}", self.field)
    }

    /// The value at this path; `None` where the metric has none yet (a wait
    /// with no completed visit): a condition on it does not hold.
    pub fn value(&self, m: &QueueMetrics) -> Option<f64> {
        let window = |w: &WindowMetrics| -> Option<f64> {
            Some(match self.field {
                "avgInQueue" => w.avg_in_queue,
                "maxInQueue" => f64::from(w.max_in_queue),
                "avgInService" => w.avg_in_service,
                "arrivals" => w.arrivals as f64,
                "departures" => w.departures as f64,
                "avgWaitSeconds" => w.avg_wait_seconds?,
                "medianWaitSeconds" => w.median_wait_seconds?,
                "p90WaitSeconds" => w.p90_wait_seconds?,
                "waitSamples" => w.wait_samples as f64,
                "estimatedWaitSeconds" => w.estimated_wait_seconds?,
                _ => return None,
            })
        };
        match self.scope {
            Scope::Current => Some(f64::from(if self.field == "inQueue" {
                m.in_queue
            } else {
                m.in_service
            })),
            Scope::Rolling5Min => window(&m.rolling5_min),
            Scope::Rolling30Min => window(&m.rolling30_min),
            Scope::Total => window(&m.total),
        }
    }
}

impl std::fmt::Display for MetricPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_string())
    }
}

pub const MAX_DURATION_SECONDS: u32 = 86_400;
pub const MAX_COOLDOWN_SECONDS: u32 = 7 * 86_400;

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub id: AlertRuleId,
    pub user_id: UserId,
    pub scene_id: SceneId,
    /// The scene's device (rules follow its local time).
    pub device_id: DeviceId,
    pub name: String,
    pub metric_path: MetricPath,
    pub operator: Operator,
    pub threshold: f64,
    pub duration_seconds: u32,
    pub cooldown_seconds: u32,
    pub severity: Severity,
    /// 48 half-hour slots of the device's local day; `None` = always.
    pub active_slots: Option<DaySlots>,
    pub enabled: bool,
    /// When it last fired; set by the store with the firing.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// It fired and the condition has not been seen to stop holding since.
    pub breach_open: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AlertRule {
    /// Whether `at` falls in an active slot of the device's local day.
    pub fn active_at(&self, at: DateTime<Utc>, offset: UtcOffset) -> bool {
        let Some(slots) = &self.active_slots else {
            return true;
        };
        let local = at.with_timezone(&offset.fixed());
        let slot = ((local.hour() * 60 + local.minute()) / 30) as usize;
        slots[slot.min(SLOTS_PER_DAY - 1)]
    }

    /// Whether `value` meets the condition (`None` never does).
    pub fn condition(&self, value: Option<f64>) -> bool {
        value.is_some_and(|v| self.operator.holds(v, self.threshold))
    }
}

/// One step of an alert's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: AlertStatus,
    pub at: DateTime<Utc>,
    /// Who made the change: `system`, or the user (`user:<id>`) or key (`key:<id>`).
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One firing of a rule: what the rule said then (it may change or go
/// later), the value that crossed it, the snapshot at that moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: AlertId,
    pub user_id: UserId,
    pub rule_id: AlertRuleId,
    pub rule_name: String,
    pub scene_id: SceneId,
    pub device_id: DeviceId,
    pub task_id: Option<TaskId>,
    pub severity: Severity,
    pub metric_path: String,
    pub operator: Operator,
    pub threshold: f64,
    pub value: f64,
    /// The latest stored snapshot of the device when it fired.
    pub snapshot_key: Option<String>,
    pub status: AlertStatus,
    pub history: Vec<StatusChange>,
    /// When the condition started to hold (capture time).
    pub breach_started_at: DateTime<Utc>,
    /// Capture time of the sample that fired it.
    pub triggered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Fired when the device had used its monthly alert quota: recorded,
    /// but not delivered (no `alert_triggered` webhook) and not metered.
    pub suppressed: bool,
}

impl Alert {
    /// Move to `to`, recording who and why; `Err` names why it cannot.
    pub fn transition(
        &mut self,
        to: AlertStatus,
        by: String,
        note: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), &'static str> {
        match (self.status, to) {
            (AlertStatus::Resolved, _) => return Err("the alert is already resolved"),
            (AlertStatus::Acknowledged, AlertStatus::Acknowledged) => {
                return Err("the alert is already acknowledged");
            }
            (_, AlertStatus::Active) => return Err("an alert cannot become active again"),
            _ => {}
        }
        self.status = to;
        self.updated_at = at;
        self.history.push(StatusChange {
            status: to,
            at,
            by,
            note,
        });
        Ok(())
    }
}

/// What an evaluator decides for one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Nothing to do.
    Quiet,
    /// The condition has held long enough: try to fire (the store decides,
    /// by `breach_open` and the cooldown, whether this firing is the one).
    Fire {
        value: f64,
        breach_started_at: DateTime<Utc>,
    },
    /// The condition stopped holding after a firing: close the breach.
    Cleared,
}

/// Samples further apart than this belong to different runs of analysis: a
/// breach does not span the gap (it ends, and the duration counts afresh).
pub const MAX_SAMPLE_GAP: chrono::Duration = chrono::Duration::seconds(60);

/// One rule's evaluation over one device's samples in capture order.
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    /// Capture time of the first sample of the current run of holding
    /// samples inside an active slot.
    since: Option<DateTime<Utc>>,
    /// This breach fired (here or elsewhere, per the store).
    fired: bool,
    /// The latest sample seen (older ones are ignored).
    last: Option<DateTime<Utc>>,
    /// The analysis task of the latest sample.
    task: Option<TaskId>,
}

impl Evaluator {
    /// Start from what the store knows: a breach that fired and is still
    /// open is not fired again by a new evaluator.
    pub fn resume(rule: &AlertRule) -> Self {
        Self {
            fired: rule.breach_open,
            ..Self::default()
        }
    }

    /// Judge the sample of task `task` captured at `at`.
    pub fn observe(
        &mut self,
        rule: &AlertRule,
        offset: UtcOffset,
        task: TaskId,
        at: DateTime<Utc>,
        metrics: &QueueMetrics,
    ) -> Verdict {
        if self.last.is_some_and(|last| at < last) {
            return Verdict::Quiet;
        }
        // Another run of analysis (a new task, or a long silence): whatever
        // breach there was has ended.
        let new_run = self.task.is_some_and(|t| t != task)
            || self.last.is_some_and(|last| at - last > MAX_SAMPLE_GAP);
        self.last = Some(at);
        self.task = Some(task);
        if new_run {
            self.since = None;
            if std::mem::take(&mut self.fired) {
                return Verdict::Cleared;
            }
        }
        let value = rule.metric_path.value(metrics);
        if !rule.condition(value) {
            self.since = None;
            return if std::mem::take(&mut self.fired) {
                Verdict::Cleared
            } else {
                Verdict::Quiet
            };
        }
        if !rule.enabled || !rule.active_at(at, offset) {
            // The duration counts inside active slots only.
            self.since = None;
            return Verdict::Quiet;
        }
        let since = *self.since.get_or_insert(at);
        if self.fired {
            return Verdict::Quiet;
        }
        let held = at.signed_duration_since(since);
        if held < chrono::Duration::seconds(i64::from(rule.duration_seconds)) {
            return Verdict::Quiet;
        }
        if let Some(last) = rule.last_fired_at
            && at.signed_duration_since(last)
                < chrono::Duration::seconds(i64::from(rule.cooldown_seconds))
        {
            return Verdict::Quiet;
        }
        Verdict::Fire {
            value: value.unwrap_or_default(),
            breach_started_at: since,
        }
    }

    /// The store recorded the firing, or another evaluator's: this breach is done.
    pub fn fired(&mut self) {
        self.fired = true;
    }
}

/// `YYYY-MM` (UTC) of `at`: the month an alert counts against.
pub fn month_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::queue_metrics::QueueMetrics;

    fn metrics(in_queue: u32, avg_wait: Option<f64>) -> QueueMetrics {
        let mut m = QueueMetrics::occupancy(in_queue, 1);
        for w in [&mut m.rolling5_min, &mut m.rolling30_min, &mut m.total] {
            w.avg_wait_seconds = avg_wait;
        }
        m
    }

    fn rule(duration: u32, cooldown: u32) -> AlertRule {
        let t = Utc::now();
        AlertRule {
            id: AlertRuleId::new(),
            user_id: UserId::new(),
            scene_id: SceneId::new(),
            device_id: DeviceId::new(),
            name: "long queue".into(),
            metric_path: MetricPath::parse("current.inQueue").unwrap(),
            operator: Operator::Gte,
            threshold: 5.0,
            duration_seconds: duration,
            cooldown_seconds: cooldown,
            severity: Severity::Warning,
            active_slots: None,
            enabled: true,
            last_fired_at: None,
            breach_open: false,
            created_at: t,
            updated_at: t,
        }
    }

    const TASK: TaskId = TaskId(uuid::Uuid::nil());

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + s, 0).unwrap() // 2026-01-01T00:00Z
    }

    #[test]
    fn every_documented_path_parses_and_reads_a_value() {
        let m = metrics(7, Some(42.0));
        assert_eq!(MetricPath::all().len(), 32);
        for p in MetricPath::all() {
            let path = MetricPath::parse(&p).unwrap();
            assert_eq!(path.as_string(), p);
        }
        let read = |p: &str| MetricPath::parse(p).unwrap().value(&m);
        assert_eq!(read("current.inQueue"), Some(7.0));
        assert_eq!(read("current.inService"), Some(1.0));
        assert_eq!(read("rolling5Min.avgWaitSeconds"), Some(42.0));
        assert_eq!(read("total.p90WaitSeconds"), None);
        let err = MetricPath::parse("current.avgWaitSeconds").unwrap_err();
        assert!(
            err.message.contains("rolling5Min.avgWaitSeconds"),
            "{err:?}"
        );
        for bad in [
            "",
            "inQueue",
            "current.",
            "rolling5min.arrivals",
            "total.inQueue",
        ] {
            assert!(MetricPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operators_compare_as_named() {
        assert!(Operator::Gt.holds(5.1, 5.0) && !Operator::Gt.holds(5.0, 5.0));
        assert!(Operator::Gte.holds(5.0, 5.0) && !Operator::Gte.holds(4.9, 5.0));
        assert!(Operator::Lt.holds(4.9, 5.0) && !Operator::Lt.holds(5.0, 5.0));
        assert!(Operator::Lte.holds(5.0, 5.0) && !Operator::Lte.holds(5.1, 5.0));
        assert!(Operator::Eq.holds(5.0, 5.0) && !Operator::Eq.holds(5.01, 5.0));
    }

    #[test]
    fn a_rule_fires_once_after_the_duration_and_again_only_after_clearing() {
        let mut r = rule(10, 0);
        let mut e = Evaluator::default();
        let utc = UtcOffset::default();
        assert_eq!(
            e.observe(&r, utc, TASK, at(0), &metrics(6, None)),
            Verdict::Quiet
        );
        assert_eq!(
            e.observe(&r, utc, TASK, at(9), &metrics(6, None)),
            Verdict::Quiet
        );
        let v = e.observe(&r, utc, TASK, at(10), &metrics(6, None));
        assert_eq!(
            v,
            Verdict::Fire {
                value: 6.0,
                breach_started_at: at(0)
            }
        );
        e.fired();
        r.last_fired_at = Some(at(10));
        assert_eq!(
            e.observe(&r, utc, TASK, at(11), &metrics(9, None)),
            Verdict::Quiet
        );
        assert_eq!(
            e.observe(&r, utc, TASK, at(12), &metrics(2, None)),
            Verdict::Cleared
        );
        assert_eq!(
            e.observe(&r, utc, TASK, at(13), &metrics(6, None)),
            Verdict::Quiet
        );
        assert!(matches!(
            e.observe(&r, utc, TASK, at(23), &metrics(6, None)),
            Verdict::Fire { .. }
        ));
    }

    #[test]
    fn a_dip_restarts_the_duration() {
        let r = rule(10, 0);
        let mut e = Evaluator::default();
        let utc = UtcOffset::default();
        e.observe(&r, utc, TASK, at(0), &metrics(6, None));
        e.observe(&r, utc, TASK, at(8), &metrics(1, None));
        assert_eq!(
            e.observe(&r, utc, TASK, at(12), &metrics(6, None)),
            Verdict::Quiet
        );
        assert_eq!(
            e.observe(&r, utc, TASK, at(21), &metrics(6, None)),
            Verdict::Quiet
        );
        assert!(matches!(
            e.observe(&r, utc, TASK, at(22), &metrics(6, None)),
            Verdict::Fire { .. }
        ));
    }

    #[test]
    fn the_cooldown_holds_back_a_new_breach() {
        let mut r = rule(0, 60);
        r.last_fired_at = Some(at(0));
        let mut e = Evaluator::default();
        let utc = UtcOffset::default();
        assert_eq!(
            e.observe(&r, utc, TASK, at(30), &metrics(6, None)),
            Verdict::Quiet
        );
        assert_eq!(
            e.observe(&r, utc, TASK, at(59), &metrics(6, None)),
            Verdict::Quiet
        );
        assert!(matches!(
            e.observe(&r, utc, TASK, at(60), &metrics(6, None)),
            Verdict::Fire { .. }
        ));
    }

    #[test]
    fn rules_fire_only_in_active_slots_of_device_local_time() {
        let mut r = rule(0, 0);
        let mut slots = [false; SLOTS_PER_DAY];
        slots[18] = true; // 09:00-09:30 local
        r.active_slots = Some(slots);
        let utc8 = UtcOffset::parse("UTC+8").unwrap();
        // 01:10Z is 09:10 in UTC+8: active; 09:10Z is 17:10 there: not.
        let mut e = Evaluator::default();
        assert_eq!(
            e.observe(&r, utc8, TASK, at(9 * 3600 + 600), &metrics(6, None)),
            Verdict::Quiet
        );
        let mut e = Evaluator::default();
        assert!(matches!(
            e.observe(&r, utc8, TASK, at(3600 + 600), &metrics(6, None)),
            Verdict::Fire { .. }
        ));
    }

    #[test]
    fn the_duration_counts_inside_active_slots_and_within_one_run() {
        let mut r = rule(600, 0);
        let mut slots = [false; SLOTS_PER_DAY];
        slots[2] = true; // 01:00-01:30 UTC
        slots[3] = true;
        r.active_slots = Some(slots);
        let utc = UtcOffset::default();
        let mut e = Evaluator::default();
        // Holding since 00:50 (a sample every 30 s), but the slot opens at
        // 01:00: ten minutes from then.
        for half_minutes in 100..140 {
            let v = e.observe(&r, utc, TASK, at(half_minutes * 30), &metrics(6, None));
            assert_eq!(v, Verdict::Quiet, "{}", half_minutes * 30);
        }
        assert!(matches!(
            e.observe(&r, utc, TASK, at(70 * 60), &metrics(6, None)),
            Verdict::Fire { .. }
        ));
        // A new task, or a long silence, ends the breach.
        e.fired();
        let other = TaskId(uuid::Uuid::from_u128(7));
        assert_eq!(
            e.observe(&r, utc, other, at(71 * 60), &metrics(6, None)),
            Verdict::Cleared
        );
        let mut r0 = rule(0, 0);
        r0.last_fired_at = None;
        let mut e = Evaluator::default();
        assert!(matches!(
            e.observe(&r0, utc, TASK, at(0), &metrics(6, None)),
            Verdict::Fire { .. }
        ));
        e.fired();
        assert_eq!(
            e.observe(&r0, utc, TASK, at(30), &metrics(6, None)),
            Verdict::Quiet
        );
        assert_eq!(
            e.observe(&r0, utc, TASK, at(200), &metrics(6, None)),
            Verdict::Cleared
        );
        assert!(matches!(
            e.observe(&r0, utc, TASK, at(201), &metrics(6, None)),
            Verdict::Fire { .. }
        ));
    }

    #[test]
    fn an_open_breach_is_not_fired_again_by_a_new_evaluator() {
        let mut r = rule(0, 0);
        r.breach_open = true;
        let mut e = Evaluator::resume(&r);
        let utc = UtcOffset::default();
        assert_eq!(
            e.observe(&r, utc, TASK, at(0), &metrics(6, None)),
            Verdict::Quiet
        );
        assert_eq!(
            e.observe(&r, utc, TASK, at(1), &metrics(1, None)),
            Verdict::Cleared
        );
    }

    #[test]
    fn alerts_move_forward_only() {
        let t = at(0);
        let mut a = Alert {
            id: AlertId::new(),
            user_id: UserId::new(),
            rule_id: AlertRuleId::new(),
            rule_name: "r".into(),
            scene_id: SceneId::new(),
            device_id: DeviceId::new(),
            task_id: None,
            severity: Severity::Critical,
            metric_path: "current.inQueue".into(),
            operator: Operator::Gt,
            threshold: 1.0,
            value: 2.0,
            snapshot_key: None,
            status: AlertStatus::Active,
            history: vec![],
            breach_started_at: t,
            triggered_at: t,
            updated_at: t,
            suppressed: false,
        };
        a.transition(AlertStatus::Acknowledged, "user:x".into(), None, t)
            .unwrap();
        assert!(
            a.transition(AlertStatus::Acknowledged, "user:x".into(), None, t)
                .is_err()
        );
        a.transition(
            AlertStatus::Resolved,
            "user:x".into(),
            Some("fixed".into()),
            t,
        )
        .unwrap();
        assert!(
            a.transition(AlertStatus::Acknowledged, "user:x".into(), None, t)
                .is_err()
        );
        assert_eq!(a.history.len(), 2);
    }
}
