//! Platform events: device status changes, task lifecycle, alerts, compute
//! nodes, quota and maintenance, recorded once (by whoever made the change,
//! in the same transaction as the change) in the outbox that the notify role
//! turns into webhook deliveries. Names are the documented webhook event types.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::device::string_enum;
use crate::ids::{DeviceId, TaskId, UserId};

string_enum!(
    /// A platform event type: what webhooks deliver and `subscribedTypes` names.
    EventKind {
        AnalysisStarted = "analysis_started",
        AnalysisStopped = "analysis_stopped",
        AnalysisError = "analysis_error",
        AlertTriggered = "alert_triggered",
        DeviceOffline = "device_offline",
        DeviceOnline = "device_online",
        DeviceAnalysisError = "device_analysis_error",
        NodeOffline = "node_offline",
        NodeOnline = "node_online",
        NodeError = "node_error",
        QuotaWarning = "quota_warning",
        QuotaExceeded = "quota_exceeded",
        BillingCycleCompleted = "billing_cycle_completed",
        MaintenanceScheduled = "maintenance_scheduled",
    }
);

#[derive(Debug, Clone, PartialEq)]
pub struct PlatformEvent {
    pub id: Uuid,
    pub user_id: UserId,
    pub kind: EventKind,
    pub device_id: Option<DeviceId>,
    pub task_id: Option<TaskId>,
    /// Event specifics (`reason`, `error`, `sceneId`, ...); never secrets.
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

impl PlatformEvent {
    /// The webhook payload: Standard Webhooks' `{type, timestamp, data}`,
    /// `data` holding the event's ids and its specifics.
    pub fn payload(&self) -> Value {
        let mut data = serde_json::Map::new();
        data.insert("eventId".into(), Value::String(self.id.to_string()));
        if let Some(d) = self.device_id {
            data.insert("deviceId".into(), Value::String(d.to_string()));
        }
        if let Some(t) = self.task_id {
            data.insert("taskId".into(), Value::String(t.to_string()));
        }
        if let Value::Object(extra) = &self.data {
            for (k, v) in extra {
                data.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        serde_json::json!({
            "type": self.kind.as_str(),
            "timestamp": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        })
    }

    pub fn new(
        user_id: UserId,
        kind: EventKind,
        device_id: Option<DeviceId>,
        task_id: Option<TaskId>,
        data: Value,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id,
            kind,
            device_id,
            task_id,
            data,
            created_at: at,
        }
    }
}
