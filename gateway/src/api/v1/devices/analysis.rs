//! Analysis control: `POST /devices/{id}/analysis/start`, `/stop` and
//! `GET /devices/{id}/analysis/status`. A start creates a task (its id is the
//! `<taskId>` of SSE event ids); one task runs per device at a time.

use chrono::{DateTime, Utc};
use panoptes_shared::domain::device::Device;
use panoptes_shared::domain::task::{AnalysisTask, Capability as DomainCapability};
use panoptes_shared::ids::SceneId;
use panoptes_shared::lifecycle::{StartRequest, analysis_seconds_used};
use poem_openapi::Object;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::v1::enums::{Capability, DeviceStatus, StopReason, TaskStatus, TaskTrigger};

#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[oai(rename_all = "camelCase")]
pub struct StartAnalysisRequest {
    /// An active scene of this device.
    pub scene_id: Uuid,
    /// Extra capabilities (`vlm`, `attributes`; plan `level_02` only).
    #[serde(default)]
    pub enabled_capabilities: Option<Vec<Capability>>,
}

impl StartAnalysisRequest {
    pub fn into_request(self) -> StartRequest {
        let mut caps: Vec<DomainCapability> = Vec::new();
        for c in self.enabled_capabilities.unwrap_or_default() {
            let c = c.into();
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
        StartRequest {
            scene: SceneId(self.scene_id),
            capabilities: caps,
            trigger: panoptes_shared::domain::task::TaskTrigger::Api,
            require_online: true,
        }
    }
}

/// One analysis task.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AnalysisTaskDto {
    /// The task id: the `<taskId>` of this task's SSE event ids.
    pub id: Uuid,
    pub device_id: Uuid,
    pub scene_id: Uuid,
    pub status: TaskStatus,
    pub trigger: TaskTrigger,
    pub enabled_capabilities: Vec<Capability>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub stop_reason: Option<StopReason>,
    /// Why a `failed` task failed.
    pub error: Option<String>,
}

impl From<&AnalysisTask> for AnalysisTaskDto {
    fn from(t: &AnalysisTask) -> Self {
        Self {
            id: t.id.0,
            device_id: t.device_id.0,
            scene_id: t.scene_id.0,
            status: t.status.into(),
            trigger: t.trigger.into(),
            enabled_capabilities: t.capabilities.iter().map(|c| (*c).into()).collect(),
            started_at: t.started_at,
            stopped_at: t.stopped_at,
            stop_reason: t.stop_reason.map(Into::into),
            error: t.error.clone(),
        }
    }
}

/// The device's analysis now.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AnalysisStatusDto {
    pub device_id: Uuid,
    pub device_status: DeviceStatus,
    /// Whether a task is running.
    pub running: bool,
    /// The running task, or the most recent one; `null` if none ever ran.
    pub task: Option<AnalysisTaskDto>,
    /// Analysis seconds used this month, and the allowance.
    pub used_seconds: u64,
    pub quota_seconds: u64,
    /// The next scheduled start (UTC), when the device has a schedule.
    pub next_scheduled_at: Option<DateTime<Utc>>,
}

impl AnalysisStatusDto {
    pub async fn of(
        store: &dyn panoptes_shared::ports::Store,
        device: &Device,
        now: DateTime<Utc>,
    ) -> panoptes_shared::Result<Self> {
        let latest = store.latest_task(device.user_id, device.id).await?;
        Ok(Self {
            device_id: device.id.0,
            device_status: device.status.into(),
            running: latest
                .as_ref()
                .is_some_and(|t| t.status == panoptes_shared::domain::task::TaskStatus::Running),
            task: latest.as_ref().map(Into::into),
            used_seconds: analysis_seconds_used(store, device.user_id, device.id, now).await?,
            quota_seconds: panoptes_shared::metering::allowance(
                store,
                device,
                &panoptes_shared::domain::plan::billing_period(now).0,
            )
            .await?
            .limit(panoptes_shared::domain::usage::Feature::AnalysisSeconds),
            next_scheduled_at: device.next_scheduled_at(now),
        })
    }
}
