//! The platform event log (device status and task lifecycle), newest first.

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::ports::EventRepo;
use sqlx::any::AnyRow;

use super::rows::{corrupt, count, enum_col, get, id, json, ms, time, to_json};
use super::{SqlStore, Within, map_err};

macro_rules! columns {
    () => {
        "id, user_id, kind, device_id, task_id, data, created_at"
    };
}

pub(super) fn event(row: &AnyRow) -> Result<PlatformEvent> {
    let opt = |column: &str| -> Result<Option<uuid::Uuid>> {
        get::<Option<String>>(row, column)?
            .map(|s| s.parse().map_err(|e| corrupt(column, e)))
            .transpose()
    };
    Ok(PlatformEvent {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        kind: enum_col(row, "kind", EventKind::parse)?,
        device_id: opt("device_id")?.map(Into::into),
        task_id: opt("task_id")?.map(Into::into),
        data: json(row, "data")?,
        created_at: time(row, "created_at")?,
    })
}

/// Insert `e` on `conn` (a pooled connection or an open transaction), so a
/// state change and its event commit together.
pub(super) async fn insert_event(conn: &mut sqlx::AnyConnection, e: &PlatformEvent) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO platform_events (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(e.id.to_string())
    .bind(e.user_id.to_string())
    .bind(e.kind.as_str())
    .bind(e.device_id.map(|d| d.to_string()))
    .bind(e.task_id.map(|t| t.to_string()))
    .bind(to_json(&e.data)?)
    .bind(ms(e.created_at))
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

impl SqlStore {
    /// One event per user row (`user_id` column), in one transaction.
    async fn record_for(
        &self,
        users: Vec<AnyRow>,
        kind: EventKind,
        data: &serde_json::Value,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        for row in &users {
            let user: UserId = id(row, "user_id")?;
            let e = PlatformEvent::new(user, kind, None, None, data.clone(), at);
            insert_event(&mut tx, &e).await?;
        }
        tx.commit().within(self.deadline).await?;
        Ok(users.len() as u64)
    }
}

#[async_trait]
impl EventRepo for SqlStore {
    async fn record_event(&self, e: &PlatformEvent) -> Result<()> {
        let mut conn = self.pool.acquire().within(self.deadline).await?;
        insert_event(&mut conn, e).await
    }

    async fn record_for_running_users(
        &self,
        kind: EventKind,
        data: &serde_json::Value,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        let users =
            sqlx::query("SELECT DISTINCT user_id FROM analysis_tasks WHERE status = 'running'")
                .fetch_all(&self.pool)
                .within(self.deadline)
                .await?;
        self.record_for(users, kind, data, at).await
    }

    async fn record_for_all_users(
        &self,
        kind: EventKind,
        data: &serde_json::Value,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        let users = sqlx::query("SELECT id AS user_id FROM users")
            .fetch_all(&self.pool)
            .within(self.deadline)
            .await?;
        self.record_for(users, kind, data, at).await
    }

    async fn list_events(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        page: PageRequest,
    ) -> Result<Page<PlatformEvent>> {
        let device = device.map(|d| d.to_string()).unwrap_or_default();
        let total = sqlx::query(
            "SELECT COUNT(*) FROM platform_events WHERE user_id = $1 AND (device_id = $2 OR $2 = '')",
        )
        .bind(user.to_string())
        .bind(device.clone())
        .fetch_one(&self.pool)
        .within(self.deadline)
        .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM platform_events WHERE user_id = $1 AND (device_id = $2 OR $2 = '') \
              ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(user.to_string())
        .bind(device)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(event).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }
}
