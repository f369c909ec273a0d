//! Alert rule and alert bodies, and their conversion to domain values.

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::alert::{
    self as domain, MAX_COOLDOWN_SECONDS, MAX_DURATION_SECONDS, MetricPath,
};
use panoptes_shared::domain::schedule::{DaySlots, Schedule};
use panoptes_shared::domain::validate::text;
use panoptes_shared::error::FieldError;
use panoptes_shared::ids::{AlertRuleId, DeviceId, SceneId, UserId};
use panoptes_shared::time::now;
use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::v1::enums::{AlertStatus, Operator, Severity};

#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct CreateRuleRequest {
    /// The scene whose metrics the rule watches (one of yours).
    pub scene_id: Uuid,
    /// 1-100 characters.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// A metric dot path: `current.inQueue`, `current.inService`, or
    /// `rolling5Min` / `rolling30Min` / `total` followed by `.avgInQueue`,
    /// `.maxInQueue`, `.avgInService`, `.arrivals`, `.departures`,
    /// `.avgWaitSeconds`, `.medianWaitSeconds`, `.p90WaitSeconds`,
    /// `.waitSamples` or `.estimatedWaitSeconds`.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub metric_path: String,
    pub operator: Operator,
    pub threshold: f64,
    /// Seconds the condition must hold before the rule fires: 0-86400, default 0.
    #[oai(validator(minimum(value = "0"), maximum(value = "86400")))]
    pub duration_seconds: Option<u32>,
    /// Least seconds between two firings: 0-604800, default 300.
    #[oai(validator(minimum(value = "0"), maximum(value = "604800")))]
    pub cooldown_seconds: Option<u32>,
    /// Default `warning`.
    pub severity: Option<Severity>,
    /// 48 half-hour slots of the device's local day (its `utcOffset`): the
    /// rule fires only in slots that are `true`. Absent: always.
    #[oai(validator(min_items = 48, max_items = 48))]
    pub active_slots: Option<Vec<bool>>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct UpdateRuleRequest {
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<String>,
    #[oai(validator(min_length = 1, max_length = 64))]
    pub metric_path: Option<String>,
    pub operator: Option<Operator>,
    pub threshold: Option<f64>,
    #[oai(validator(minimum(value = "0"), maximum(value = "86400")))]
    pub duration_seconds: Option<u32>,
    #[oai(validator(minimum(value = "0"), maximum(value = "604800")))]
    pub cooldown_seconds: Option<u32>,
    pub severity: Option<Severity>,
    /// `null` makes the rule active at all hours.
    #[serde(default)]
    #[oai(validator(min_items = 48, max_items = 48))]
    pub active_slots: MaybeUndefined<Vec<bool>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RuleDto {
    pub id: Uuid,
    pub scene_id: Uuid,
    pub device_id: Uuid,
    pub name: String,
    pub metric_path: String,
    pub operator: Operator,
    pub threshold: f64,
    pub duration_seconds: u32,
    pub cooldown_seconds: u32,
    pub severity: Severity,
    /// Absent when the rule is active at all hours.
    pub active_slots: Option<Vec<bool>>,
    pub enabled: bool,
    /// When it last fired.
    pub last_triggered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&domain::AlertRule> for RuleDto {
    fn from(r: &domain::AlertRule) -> Self {
        Self {
            id: r.id.0,
            scene_id: r.scene_id.0,
            device_id: r.device_id.0,
            name: r.name.clone(),
            metric_path: r.metric_path.as_string(),
            operator: r.operator.into(),
            threshold: r.threshold,
            duration_seconds: r.duration_seconds,
            cooldown_seconds: r.cooldown_seconds,
            severity: r.severity.into(),
            active_slots: r.active_slots.map(|s| s.to_vec()),
            enabled: r.enabled,
            last_triggered_at: r.last_fired_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn threshold(v: f64) -> Result<f64, FieldError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(FieldError::new("threshold", "must be a finite number"))
    }
}

fn slots(v: &[bool]) -> Result<DaySlots, FieldError> {
    Schedule::slots("activeSlots", v)
}

fn bounded(field: &str, v: u32, max: u32) -> Result<u32, FieldError> {
    if v <= max {
        Ok(v)
    } else {
        Err(FieldError::new(field, format!("must be 0-{max}")))
    }
}

impl CreateRuleRequest {
    /// Validate into a rule of `owner` on `scene` of `device` (checked by the caller).
    pub fn into_rule(
        self,
        owner: UserId,
        scene: SceneId,
        device: DeviceId,
    ) -> Result<domain::AlertRule, Error> {
        let t = now();
        Ok(domain::AlertRule {
            id: AlertRuleId::new(),
            user_id: owner,
            scene_id: scene,
            device_id: device,
            name: text("name", &self.name, 1, 100)?,
            metric_path: MetricPath::parse(&self.metric_path)?,
            operator: self.operator.into(),
            threshold: threshold(self.threshold)?,
            duration_seconds: bounded(
                "durationSeconds",
                self.duration_seconds.unwrap_or(0),
                MAX_DURATION_SECONDS,
            )?,
            cooldown_seconds: bounded(
                "cooldownSeconds",
                self.cooldown_seconds.unwrap_or(300),
                MAX_COOLDOWN_SECONDS,
            )?,
            severity: self.severity.map_or(domain::Severity::Warning, Into::into),
            active_slots: self.active_slots.as_deref().map(slots).transpose()?,
            enabled: self.enabled.unwrap_or(true),
            last_fired_at: None,
            breach_open: false,
            created_at: t,
            updated_at: t,
        })
    }
}

impl UpdateRuleRequest {
    pub fn apply(self, r: &mut domain::AlertRule) -> Result<(), Error> {
        if let Some(name) = self.name {
            r.name = text("name", &name, 1, 100)?;
        }
        if let Some(p) = self.metric_path {
            r.metric_path = MetricPath::parse(&p)?;
        }
        if let Some(op) = self.operator {
            r.operator = op.into();
        }
        if let Some(t) = self.threshold {
            r.threshold = threshold(t)?;
        }
        if let Some(d) = self.duration_seconds {
            r.duration_seconds = bounded("durationSeconds", d, MAX_DURATION_SECONDS)?;
        }
        if let Some(c) = self.cooldown_seconds {
            r.cooldown_seconds = bounded("cooldownSeconds", c, MAX_COOLDOWN_SECONDS)?;
        }
        if let Some(s) = self.severity {
            r.severity = s.into();
        }
        match self.active_slots {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => r.active_slots = None,
            MaybeUndefined::Value(v) => r.active_slots = Some(slots(&v)?),
        }
        if let Some(e) = self.enabled {
            r.enabled = e;
        }
        r.updated_at = now();
        Ok(())
    }
}

/// One step of an alert's history.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct StatusChangeDto {
    pub status: AlertStatus,
    pub at: DateTime<Utc>,
    /// `system`, `user:<id>` (a session) or `key:<id>` (an API key).
    pub by: String,
    pub note: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AlertDto {
    pub id: Uuid,
    pub rule_id: Uuid,
    /// The rule's name when it fired.
    pub rule_name: String,
    pub scene_id: Uuid,
    pub device_id: Uuid,
    /// The analysis task whose results fired it.
    pub task_id: Option<Uuid>,
    pub severity: Severity,
    pub metric_path: String,
    pub operator: Operator,
    pub threshold: f64,
    /// The metric's value when the rule fired.
    pub value: f64,
    pub status: AlertStatus,
    /// The blob key of the device's snapshot at firing time.
    pub snapshot_key: Option<String>,
    /// A presigned URL of that snapshot, valid for a limited time.
    pub snapshot_url: Option<String>,
    /// When the condition started to hold.
    pub breach_started_at: DateTime<Utc>,
    pub triggered_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub history: Vec<StatusChangeDto>,
    pub updated_at: DateTime<Utc>,
    /// Fired when the device had used its monthly alert quota: recorded,
    /// not delivered (no `alert_triggered` webhook) and not counted.
    pub suppressed: bool,
}

impl AlertDto {
    pub fn new(a: &domain::Alert, snapshot_url: Option<String>) -> Self {
        let when = |s: domain::AlertStatus| a.history.iter().find(|h| h.status == s).map(|h| h.at);
        Self {
            id: a.id.0,
            rule_id: a.rule_id.0,
            rule_name: a.rule_name.clone(),
            scene_id: a.scene_id.0,
            device_id: a.device_id.0,
            task_id: a.task_id.map(|t| t.0),
            severity: a.severity.into(),
            metric_path: a.metric_path.clone(),
            operator: a.operator.into(),
            threshold: a.threshold,
            value: a.value,
            status: a.status.into(),
            snapshot_key: a.snapshot_key.clone(),
            snapshot_url,
            breach_started_at: a.breach_started_at,
            triggered_at: a.triggered_at,
            acknowledged_at: when(domain::AlertStatus::Acknowledged),
            resolved_at: when(domain::AlertStatus::Resolved),
            history: a
                .history
                .iter()
                .map(|h| StatusChangeDto {
                    status: h.status.into(),
                    at: h.at,
                    by: h.by.clone(),
                    note: h.note.clone(),
                })
                .collect(),
            updated_at: a.updated_at,
            suppressed: a.suppressed,
        }
    }
}

/// An optional note on an acknowledgement or resolution.
#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct AlertActionRequest {
    /// Up to 500 characters.
    #[oai(validator(max_length = 500))]
    pub note: Option<String>,
}
