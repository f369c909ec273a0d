//! The usage ledger: events appended once by id, and their daily and monthly
//! aggregates maintained in the same transaction (an event already in the
//! ledger adds nothing), so retries, redeliveries and replicas never count
//! twice and the queries read the aggregates directly.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use panoptes_shared::Result;
use panoptes_shared::domain::event::PlatformEvent;
use panoptes_shared::domain::task::AnalysisTask;
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::ids::{DeviceId, TaskId, UserId};
use panoptes_shared::ports::{UsageRepo, UsageTotals};

use super::rows::{corrupt, enum_col, get, ms, opt_time, to_json};
use super::tasks::{TASKS_TO_METER, task};
use super::{SqlStore, Within, map_err};

/// Append `e` on `conn` (an open transaction) unless its id is in the ledger,
/// adding it to the aggregates; `true` when it was new.
pub(super) async fn insert_usage(conn: &mut sqlx::AnyConnection, e: &UsageEvent) -> Result<bool> {
    let quantity = i64::try_from(e.quantity).unwrap_or(i64::MAX);
    let (period, day) = (e.period(), e.day());
    let inserted = sqlx::query(
        "INSERT INTO usage_events (id, user_id, device_id, feature, quantity, occurred_at, period, day, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id.clone())
    .bind(e.user_id.to_string())
    .bind(e.device_id.to_string())
    .bind(e.feature.as_str())
    .bind(quantity)
    .bind(ms(e.occurred_at))
    .bind(period.clone())
    .bind(day.clone())
    .bind(to_json(&e.source)?)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    for (sql, value) in [
        (
            "INSERT INTO usage_daily (user_id, device_id, day, feature, quantity) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, device_id, day, feature) DO UPDATE SET quantity = usage_daily.quantity + $5",
            day,
        ),
        (
            "INSERT INTO usage_monthly (user_id, device_id, period, feature, quantity) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, device_id, period, feature) DO UPDATE SET quantity = usage_monthly.quantity + $5",
            period,
        ),
    ] {
        sqlx::query(sql)
            .bind(e.user_id.to_string())
            .bind(e.device_id.to_string())
            .bind(value)
            .bind(e.feature.as_str())
            .bind(quantity)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(true)
}

#[async_trait]
impl UsageRepo for SqlStore {
    async fn record_usage(&self, events: &[UsageEvent]) -> Result<u64> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let mut new = 0;
        for e in events {
            new += u64::from(insert_usage(&mut tx, e).await?);
        }
        tx.commit().within(self.deadline).await?;
        Ok(new)
    }

    async fn meter_task(
        &self,
        t: &AnalysisTask,
        events: &[UsageEvent],
        until: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let mut new = 0;
        for e in events {
            new += u64::from(insert_usage(&mut tx, e).await?);
        }
        sqlx::query(
            "UPDATE analysis_tasks SET metered_until = $1 \
             WHERE id = $2 AND user_id = $3 AND (metered_until IS NULL OR metered_until < $1)",
        )
        .bind(ms(until))
        .bind(t.id.to_string())
        .bind(t.user_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().within(self.deadline).await?;
        Ok(new)
    }

    async fn tasks_to_meter(&self) -> Result<Vec<(AnalysisTask, Option<DateTime<Utc>>)>> {
        let rows = sqlx::query(TASKS_TO_METER)
            .fetch_all(&self.pool)
            .within(self.deadline)
            .await?;
        rows.iter()
            .map(|r| Ok((task(r)?, opt_time(r, "metered_until")?)))
            .collect()
    }

    async fn task_metered_until(&self, user: UserId, id: TaskId) -> Result<Option<DateTime<Utc>>> {
        let row =
            sqlx::query("SELECT metered_until FROM analysis_tasks WHERE id = $1 AND user_id = $2")
                .bind(id.to_string())
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .within(self.deadline)
                .await?;
        row.map_or(Ok(None), |r| opt_time(&r, "metered_until"))
    }

    async fn record_quota_notice(
        &self,
        device: DeviceId,
        period: &str,
        feature: Feature,
        level: u8,
        event: &PlatformEvent,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let new = sqlx::query(
            "INSERT INTO quota_notices (user_id, device_id, period, feature, level, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, period, feature, level) DO NOTHING",
        )
        .bind(event.user_id.to_string())
        .bind(device.to_string())
        .bind(period.to_owned())
        .bind(feature.as_str())
        .bind(i64::from(level))
        .bind(ms(event.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if new.rows_affected() == 0 {
            return Ok(false);
        }
        super::events::insert_event(&mut tx, event).await?;
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }

    async fn usage_totals(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        period: &str,
    ) -> Result<UsageTotals> {
        let rows = match device {
            Some(d) => sqlx::query(
                "SELECT feature, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_monthly \
                 WHERE user_id = $1 AND period = $2 AND device_id = $3 GROUP BY feature",
            )
            .bind(user.to_string())
            .bind(period.to_owned())
            .bind(d.to_string()),
            None => sqlx::query(
                "SELECT feature, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_monthly \
                 WHERE user_id = $1 AND period = $2 GROUP BY feature",
            )
            .bind(user.to_string())
            .bind(period.to_owned()),
        }
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        let mut totals = BTreeMap::new();
        for r in &rows {
            let feature = enum_col(r, "feature", Feature::parse)?;
            let n: i64 = get(r, "quantity")?;
            totals.insert(
                feature,
                u64::try_from(n).map_err(|e| corrupt("quantity", e))?,
            );
        }
        Ok(totals)
    }
}
