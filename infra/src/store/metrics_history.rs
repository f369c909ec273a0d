//! Stored analytics: snapshots and rolling rows, read newest first within a
//! scene and a time range. Both tables are indexed on
//! `(scene_id, [window_name,] window_end DESC, id DESC)`, so a page is an
//! index range scan whatever the history's length; `window_end` alone serves
//! retention.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use panoptes_shared::Result;
use panoptes_shared::domain::metrics_history::{
    CurrentMetrics, RollingRow, RollingWindow, SceneSnapshot, TimeRange,
};
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::ids::{SceneId, UserId};
use panoptes_shared::ports::MetricsHistoryRepo;
use sqlx::any::AnyRow;

use super::rows::{count, enum_col, get, id, json, ms, time, to_json};
use super::{SqlStore, Within};

macro_rules! snapshot_columns {
    () => {
        "id, user_id, scene_id, device_id, task_id, window_start, window_end, in_queue, in_service, \
         avg_in_queue, max_in_queue, avg_in_service, max_in_service, compute_node_id, created_at"
    };
}

macro_rules! rolling_columns {
    () => {
        "id, user_id, scene_id, device_id, task_id, window_name, window_start, window_end, metrics, \
         compute_node_id, created_at"
    };
}

fn count_col(row: &AnyRow, column: &str) -> Result<u32> {
    Ok(u32::try_from(get::<i64>(row, column)?.max(0)).unwrap_or(u32::MAX))
}

fn snapshot(row: &AnyRow) -> Result<SceneSnapshot> {
    Ok(SceneSnapshot {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        scene_id: id(row, "scene_id")?,
        device_id: id(row, "device_id")?,
        task_id: id(row, "task_id")?,
        window_start: time(row, "window_start")?,
        window_end: time(row, "window_end")?,
        current: CurrentMetrics {
            in_queue: count_col(row, "in_queue")?,
            in_service: count_col(row, "in_service")?,
            avg_in_queue: get(row, "avg_in_queue")?,
            max_in_queue: count_col(row, "max_in_queue")?,
            avg_in_service: get(row, "avg_in_service")?,
            max_in_service: count_col(row, "max_in_service")?,
        },
        compute_node_id: get(row, "compute_node_id")?,
        created_at: time(row, "created_at")?,
    })
}

fn rolling(row: &AnyRow) -> Result<RollingRow> {
    Ok(RollingRow {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        scene_id: id(row, "scene_id")?,
        device_id: id(row, "device_id")?,
        task_id: id(row, "task_id")?,
        window: enum_col(row, "window_name", RollingWindow::parse)?,
        window_start: time(row, "window_start")?,
        window_end: time(row, "window_end")?,
        metrics: json(row, "metrics")?,
        compute_node_id: get(row, "compute_node_id")?,
        created_at: time(row, "created_at")?,
    })
}

#[async_trait]
impl MetricsHistoryRepo for SqlStore {
    async fn insert_snapshot(&self, s: &SceneSnapshot) -> Result<()> {
        let c = &s.current;
        sqlx::query(concat!(
            "INSERT INTO scene_analytics_snapshots (",
            snapshot_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.scene_id.to_string())
        .bind(s.device_id.to_string())
        .bind(s.task_id.to_string())
        .bind(ms(s.window_start))
        .bind(ms(s.window_end))
        .bind(i64::from(c.in_queue))
        .bind(i64::from(c.in_service))
        .bind(c.avg_in_queue)
        .bind(i64::from(c.max_in_queue))
        .bind(c.avg_in_service)
        .bind(i64::from(c.max_in_service))
        .bind(s.compute_node_id.clone())
        .bind(ms(s.created_at))
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(())
    }

    async fn insert_rolling(&self, rows: &[RollingRow]) -> Result<()> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        for r in rows {
            sqlx::query(concat!(
                "INSERT INTO scene_analytics_rolling (",
                rolling_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(r.id.to_string())
            .bind(r.user_id.to_string())
            .bind(r.scene_id.to_string())
            .bind(r.device_id.to_string())
            .bind(r.task_id.to_string())
            .bind(r.window.as_str())
            .bind(ms(r.window_start))
            .bind(ms(r.window_end))
            .bind(to_json(&r.metrics)?)
            .bind(r.compute_node_id.clone())
            .bind(ms(r.created_at))
            .execute(&mut *tx)
            .within(self.deadline)
            .await?;
        }
        tx.commit().within(self.deadline).await?;
        Ok(())
    }

    async fn list_snapshots(
        &self,
        user: UserId,
        scene: SceneId,
        range: TimeRange,
        page: PageRequest,
    ) -> Result<Page<SceneSnapshot>> {
        let (from, to) = range.millis();
        let total = sqlx::query(
            "SELECT COUNT(*) FROM scene_analytics_snapshots \
             WHERE scene_id = $1 AND user_id = $2 AND window_end >= $3 AND window_end <= $4",
        )
        .bind(scene.to_string())
        .bind(user.to_string())
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .within(self.deadline)
        .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            snapshot_columns!(),
            " FROM scene_analytics_snapshots \
              WHERE scene_id = $1 AND user_id = $2 AND window_end >= $3 AND window_end <= $4 \
              ORDER BY window_end DESC, id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(scene.to_string())
        .bind(user.to_string())
        .bind(from)
        .bind(to)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(snapshot).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn latest_snapshot(&self, user: UserId, scene: SceneId) -> Result<Option<SceneSnapshot>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            snapshot_columns!(),
            " FROM scene_analytics_snapshots WHERE scene_id = $1 AND user_id = $2 \
              ORDER BY window_end DESC, id DESC LIMIT 1"
        ))
        .bind(scene.to_string())
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(snapshot).transpose()
    }

    async fn list_rolling(
        &self,
        user: UserId,
        scene: SceneId,
        window: Option<RollingWindow>,
        range: TimeRange,
        page: PageRequest,
    ) -> Result<Page<RollingRow>> {
        let (from, to) = range.millis();
        // `window_name = $5 OR $5 = ''`: one statement for one window or all.
        let name = window.map_or("", |w| w.as_str());
        let total = sqlx::query(
            "SELECT COUNT(*) FROM scene_analytics_rolling \
             WHERE scene_id = $1 AND user_id = $2 AND window_end >= $3 AND window_end <= $4 \
               AND (window_name = $5 OR $5 = '')",
        )
        .bind(scene.to_string())
        .bind(user.to_string())
        .bind(from)
        .bind(to)
        .bind(name)
        .fetch_one(&self.pool)
        .within(self.deadline)
        .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            rolling_columns!(),
            " FROM scene_analytics_rolling \
              WHERE scene_id = $1 AND user_id = $2 AND window_end >= $3 AND window_end <= $4 \
                AND (window_name = $5 OR $5 = '') \
              ORDER BY window_end DESC, id DESC LIMIT $6 OFFSET $7"
        ))
        .bind(scene.to_string())
        .bind(user.to_string())
        .bind(from)
        .bind(to)
        .bind(name)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(rolling).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn latest_rolling(&self, user: UserId, scene: SceneId) -> Result<Vec<RollingRow>> {
        let mut out = Vec::new();
        for w in RollingWindow::ALL {
            let row = sqlx::query(concat!(
                "SELECT ",
                rolling_columns!(),
                " FROM scene_analytics_rolling WHERE scene_id = $1 AND window_name = $2 AND user_id = $3 \
                  ORDER BY window_end DESC, id DESC LIMIT 1"
            ))
            .bind(scene.to_string())
            .bind(w.as_str())
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .within(self.deadline)
            .await?;
            if let Some(row) = row {
                out.push(rolling(&row)?);
            }
        }
        Ok(out)
    }

    async fn prune_analytics(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut removed = 0;
        for sql in [
            "DELETE FROM scene_analytics_snapshots WHERE window_end < $1",
            "DELETE FROM scene_analytics_rolling WHERE window_end < $1",
        ] {
            removed += sqlx::query(sql)
                .bind(ms(before))
                .execute(&self.pool)
                .within(self.deadline)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }
}
