//! Platform events: device status changes and task lifecycle, recorded once
//! (by whoever made the change) for webhooks to deliver. Names are the
//! documented webhook event types.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::device::string_enum;
use crate::ids::{DeviceId, TaskId, UserId};

string_enum!(
    /// The recorded event types (a subset of the webhook event types).
    EventKind {
        AnalysisStarted = "analysis_started",
        AnalysisStopped = "analysis_stopped",
        AnalysisError = "analysis_error",
        DeviceOnline = "device_online",
        DeviceOffline = "device_offline",
        DeviceAnalysisError = "device_analysis_error",
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
