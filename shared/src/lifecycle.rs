//! Starting and stopping analysis, and device status transitions: the checks
//! and the records, in one place for every caller (the API, the scheduler,
//! ingest, edge push). Each change that happens is recorded once as a
//! platform event, in the same transaction as the change (the outbox webhooks
//! deliver from), by the caller whose write made it.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::device::DeviceStatus;
use crate::domain::event::{EventKind, PlatformEvent};
use crate::domain::plan::billing_period;
use crate::domain::scene::SceneStatus;
use crate::domain::task::{AnalysisTask, Capability, TaskEnd, TaskStatus, TaskTrigger};
use crate::domain::usage::Feature;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, SceneId, UserId};
use crate::ports::Store;

/// What a start asks for.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub scene: SceneId,
    pub capabilities: Vec<Capability>,
    pub trigger: TaskTrigger,
    /// Whether the device must be online (API starts); the scheduler starts
    /// regardless and lets ingest bring the stream up.
    pub require_online: bool,
}

pub use crate::metering::analysis_seconds_used;

/// Start analysis of `req.scene` on the device, after the documented checks:
/// scene of this device and active, device online, quota left, plan allows
/// the capabilities, no task already running.
pub async fn start(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    req: StartRequest,
    now: DateTime<Utc>,
) -> Result<AnalysisTask> {
    let device = store
        .get_device(user, device)
        .await?
        .ok_or(Error::NotFound("device"))?;
    let scene = store
        .get_scene(user, req.scene)
        .await?
        .ok_or(Error::NotFound("scene"))?;
    if scene.device_id != device.id {
        return Err(Error::validation(
            "sceneId",
            "the scene belongs to another device",
        ));
    }
    if scene.status != SceneStatus::Active {
        return Err(Error::SceneInactive);
    }
    if req.require_online && device.status != DeviceStatus::Online {
        return Err(Error::DeviceOffline {
            status: device.status.as_str(),
            hint: "probe it (POST /api/v1/devices/{id}/probe) or let it send a heartbeat first",
        });
    }
    if let Some(c) = req.capabilities.iter().find(|c| !c.allowed_on(device.plan)) {
        return Err(Error::PlanRequired(format!(
            "the `{}` capability needs plan level_02; this device is on {}",
            c.as_str(),
            device.plan.as_str()
        )));
    }
    if device.quota.disabled {
        return Err(Error::QuotaExceeded(
            "analysis is disabled for this device (quota.disabled)".into(),
        ));
    }
    let used = analysis_seconds_used(store, user, device.id, now).await?;
    let allowed = crate::metering::allowance(store, &device, &billing_period(now).0).await?;
    if allowed.exhausted(Feature::AnalysisSeconds, used) {
        return Err(Error::QuotaExceeded(format!(
            "this device has used its {} analysis seconds of the month; usage resets on the 1st (UTC)",
            allowed.limit(Feature::AnalysisSeconds)
        )));
    }
    let task = AnalysisTask::start(
        user,
        device.id,
        scene.id,
        req.trigger,
        req.capabilities,
        now,
    );
    let event = PlatformEvent::new(
        user,
        EventKind::AnalysisStarted,
        Some(device.id),
        Some(task.id),
        json!({
            "taskId": task.id,
            "sceneId": scene.id,
            "trigger": task.trigger.as_str(),
            "enabledCapabilities": task.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        }),
        now,
    );
    store.insert_task(&task, &event).await?;
    tracing::info!(%user, device = %device.id, task = %task.id, trigger = task.trigger.as_str(), "analysis started");
    Ok(task)
}

/// End `task` if it still runs; records `analysis_stopped` (or
/// `analysis_error` for failures). `None` when it had already ended.
pub async fn end(
    store: &dyn Store,
    task: &AnalysisTask,
    end: TaskEnd,
) -> Result<Option<AnalysisTask>> {
    let kind = if end.status == TaskStatus::Failed {
        EventKind::AnalysisError
    } else {
        EventKind::AnalysisStopped
    };
    let mut data = json!({
        "taskId": task.id,
        "sceneId": task.scene_id,
        "reason": end.reason.as_str(),
        "runSeconds": task.seconds_within(task.started_at, end.at),
    });
    if let Some(e) = &end.error {
        data["error"] = json!(e);
    }
    let event = PlatformEvent::new(
        task.user_id,
        kind,
        Some(task.device_id),
        Some(task.id),
        data,
        end.at,
    );
    if !store.end_task(task.user_id, task.id, &end, &event).await? {
        return Ok(None);
    }
    tracing::info!(user = %task.user_id, device = %task.device_id, task = %task.id, reason = end.reason.as_str(), "analysis ended");
    let ended = AnalysisTask {
        status: end.status,
        stopped_at: Some(end.at),
        stop_reason: Some(end.reason),
        error: end.error,
        ..task.clone()
    };
    // Meter the rest of its time now; if this fails, the scheduler's next
    // pass does (the task stays "not metered to its end" until then).
    let metered_until = store.task_metered_until(task.user_id, task.id).await;
    if let Err(e) = match metered_until {
        Ok(until) => crate::metering::meter_task(store, &ended, until, end.at)
            .await
            .map(drop),
        Err(e) => Err(e),
    } {
        tracing::warn!(task = %task.id, error = %e, "metering the ended task failed; the scheduler retries");
    }
    // A crossing reached between the scheduler's checks is told now.
    if let Ok(Some(device)) = store.get_device(task.user_id, task.device_id).await
        && let Err(e) = crate::metering::check_analysis_quota(store, &device, end.at).await
    {
        tracing::warn!(task = %task.id, error = %e, "quota check after the task ended failed");
    }
    Ok(Some(ended))
}

/// The device's running task, if any.
pub async fn running_task(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
) -> Result<Option<AnalysisTask>> {
    Ok(store
        .latest_task(user, device)
        .await?
        .filter(|t| t.status == TaskStatus::Running))
}

/// Move the device to `to`; records `device_online` / `device_offline` /
/// `device_analysis_error` once, when this call made the change. `detail`
/// says why (never a secret). Returns whether the status changed.
pub async fn set_device_status(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    to: DeviceStatus,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let kind = match to {
        DeviceStatus::Online => EventKind::DeviceOnline,
        DeviceStatus::Offline => EventKind::DeviceOffline,
        DeviceStatus::Error => EventKind::DeviceAnalysisError,
    };
    let data = match detail {
        Some(d) => json!({ "status": to.as_str(), "detail": d }),
        None => json!({ "status": to.as_str() }),
    };
    let event = PlatformEvent::new(user, kind, Some(device), None, data, now);
    if !store
        .transition_device_status(user, device, to, &event)
        .await?
    {
        return Ok(false);
    }
    tracing::info!(%user, %device, status = to.as_str(), detail, "device status changed");
    Ok(true)
}
