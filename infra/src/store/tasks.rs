//! Analysis tasks. A partial unique index keeps one running task per device,
//! so two concurrent starts (API and schedule, or two replicas) cannot both win.

use async_trait::async_trait;

use panoptes_shared::Result;
use panoptes_shared::domain::event::PlatformEvent;
use panoptes_shared::domain::task::{
    AnalysisTask, Capability, StopReason, TaskEnd, TaskStatus, TaskTrigger,
};
use panoptes_shared::ids::{DeviceId, TaskId, UserId};
use panoptes_shared::ports::TaskRepo;
use sqlx::any::AnyRow;

use super::rows::{corrupt, enum_col, get, id, ms, opt_ms, opt_time, time, to_json};
use super::{SqlStore, Within, map_err};

macro_rules! columns {
    () => {
        "id, user_id, device_id, scene_id, status, trigger_kind, capabilities, started_at, stopped_at, stop_reason, error"
    };
}

/// Running tasks and how far they are metered.
pub(super) const RUNNING_TASKS_METERED: &str = concat!(
    "SELECT ",
    columns!(),
    ", metered_until FROM analysis_tasks WHERE status = 'running' ORDER BY started_at, id"
);

/// Ended tasks not metered to their end, and how far they are.
pub(super) const ENDED_TASKS_TO_METER: &str = concat!(
    "SELECT ",
    columns!(),
    ", metered_until FROM analysis_tasks \
     WHERE status <> 'running' AND (metered_until IS NULL OR metered_until < stopped_at) \
     ORDER BY stopped_at, id"
);

pub(super) fn task(row: &AnyRow) -> Result<AnalysisTask> {
    let caps: Vec<String> = super::rows::json(row, "capabilities")?;
    let capabilities = caps
        .iter()
        .map(|c| Capability::parse(c).ok_or_else(|| corrupt("capabilities", c)))
        .collect::<Result<_>>()?;
    let stop_reason: Option<String> = get(row, "stop_reason")?;
    Ok(AnalysisTask {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        device_id: id(row, "device_id")?,
        scene_id: id(row, "scene_id")?,
        status: enum_col(row, "status", TaskStatus::parse)?,
        trigger: enum_col(row, "trigger_kind", TaskTrigger::parse)?,
        capabilities,
        started_at: time(row, "started_at")?,
        stopped_at: opt_time(row, "stopped_at")?,
        stop_reason: stop_reason
            .map(|r| StopReason::parse(&r).ok_or_else(|| corrupt("stop_reason", r)))
            .transpose()?,
        error: get(row, "error")?,
    })
}

#[async_trait]
impl TaskRepo for SqlStore {
    async fn insert_task(&self, t: &AnalysisTask, event: &PlatformEvent) -> Result<()> {
        let caps: Vec<&str> = t.capabilities.iter().map(|c| c.as_str()).collect();
        let mut tx = self.pool.begin().within(self.deadline).await?;
        sqlx::query(concat!(
            "INSERT INTO analysis_tasks (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(t.id.to_string())
        .bind(t.user_id.to_string())
        .bind(t.device_id.to_string())
        .bind(t.scene_id.to_string())
        .bind(t.status.as_str())
        .bind(t.trigger.as_str())
        .bind(to_json(&caps)?)
        .bind(ms(t.started_at))
        .bind(opt_ms(t.stopped_at))
        .bind(t.stop_reason.map(|r| r.as_str()))
        .bind(t.error.clone())
        .execute(&mut *tx)
        .await
        .map_err(|e| match map_err(e) {
            panoptes_shared::Error::Conflict(_) => panoptes_shared::Error::Conflict(
                "analysis is already running on this device; stop it first".into(),
            ),
            other => other,
        })?;
        super::events::insert_event(&mut tx, event).await?;
        tx.commit().within(self.deadline).await?;
        Ok(())
    }

    async fn get_task(&self, user: UserId, task_id: TaskId) -> Result<Option<AnalysisTask>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM analysis_tasks WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(task_id.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(task).transpose()
    }

    async fn latest_task(&self, user: UserId, device: DeviceId) -> Result<Option<AnalysisTask>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM analysis_tasks WHERE device_id = $1 AND user_id = $2 ORDER BY started_at DESC, id DESC LIMIT 1"
        ))
        .bind(device.to_string())
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(task).transpose()
    }

    async fn end_task(
        &self,
        user: UserId,
        task_id: TaskId,
        end: &TaskEnd,
        event: &PlatformEvent,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let r = sqlx::query(
            "UPDATE analysis_tasks SET status = $1, stopped_at = $2, stop_reason = $3, error = $4 \
             WHERE user_id = $5 AND id = $6 AND status = 'running'",
        )
        .bind(end.status.as_str())
        .bind(ms(end.at))
        .bind(end.reason.as_str())
        .bind(end.error.clone())
        .bind(user.to_string())
        .bind(task_id.to_string())
        .execute(&mut *tx)
        .within(self.deadline)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false); // already ended: nothing to record (rolled back)
        }
        super::events::insert_event(&mut tx, event).await?;
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }

    async fn running_tasks(&self) -> Result<Vec<AnalysisTask>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM analysis_tasks WHERE status = 'running' ORDER BY started_at, id"
        ))
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(task).collect()
    }
}
