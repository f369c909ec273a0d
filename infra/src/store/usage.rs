//! The usage ledger: events appended once by id, and their daily and monthly
//! aggregates maintained in the same transaction (an event already in the
//! ledger adds nothing), so retries, redeliveries and replicas never count
//! twice and the queries read the aggregates directly.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use panoptes_shared::Result;
use panoptes_shared::domain::device::Device;
use panoptes_shared::domain::event::PlatformEvent;
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::domain::quota::{ChangeKind, QuotaChange};
use panoptes_shared::domain::task::AnalysisTask;
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::ids::{DeviceId, TaskId, UserId};
use panoptes_shared::ports::{UsageFilter, UsageRepo, UsageTotals};
use sqlx::any::AnyRow;

use super::rows::{corrupt, count, enum_col, get, id, json, ms, opt_time, time, to_json};
use super::tasks::{ENDED_TASKS_TO_METER, RUNNING_TASKS_METERED, task};
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

/// `''` for "any", so one statement serves every filter combination.
fn any<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// `(feature, quantity)` of an aggregate row.
fn feature_quantity(r: &AnyRow) -> Result<(Feature, u64)> {
    let feature = enum_col(r, "feature", Feature::parse)?;
    let n: i64 = get(r, "quantity")?;
    Ok((
        feature,
        u64::try_from(n).map_err(|e| corrupt("quantity", e))?,
    ))
}

macro_rules! events_where {
    () => {
        " FROM usage_events WHERE user_id = $1 AND (device_id = $2 OR $2 = '') \
          AND (feature = $3 OR $3 = '') AND occurred_at >= $4 AND occurred_at <= $5"
    };
}

fn quota_change(r: &AnyRow) -> Result<QuotaChange> {
    let feature: Option<String> = get(r, "feature")?;
    let amount: Option<i64> = get(r, "amount")?;
    let flag: Option<i64> = get(r, "flag")?;
    Ok(QuotaChange {
        id: id(r, "id")?,
        user_id: id(r, "user_id")?,
        device_id: id(r, "device_id")?,
        period: get(r, "period")?,
        kind: enum_col(r, "kind", ChangeKind::parse)?,
        feature: feature
            .map(|f| Feature::parse(&f).ok_or_else(|| corrupt("feature", f)))
            .transpose()?,
        amount: amount
            .map(|a| u64::try_from(a).map_err(|e| corrupt("amount", e)))
            .transpose()?,
        flag: flag.map(|f| f != 0),
        reason: get(r, "reason")?,
        actor: get(r, "actor")?,
        created_at: time(r, "created_at")?,
    })
}

fn usage_event(r: &AnyRow) -> Result<UsageEvent> {
    let n: i64 = get(r, "quantity")?;
    Ok(UsageEvent {
        id: get(r, "id")?,
        user_id: id(r, "user_id")?,
        device_id: id(r, "device_id")?,
        feature: enum_col(r, "feature", Feature::parse)?,
        quantity: u64::try_from(n).map_err(|e| corrupt("quantity", e))?,
        occurred_at: time(r, "occurred_at")?,
        source: json(r, "source")?,
    })
}

impl SqlStore {
    /// Runs `marker` (an insert that does nothing when its row exists) and,
    /// when it inserted, records `event`, in one transaction: something sent
    /// once whichever replica gets there first. Whether it inserted.
    async fn once_with_event(
        &self,
        marker: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        event: &PlatformEvent,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let new = marker.execute(&mut *tx).await.map_err(map_err)?;
        if new.rows_affected() == 0 {
            return Ok(false);
        }
        super::events::insert_event(&mut tx, event).await?;
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }
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
        from: DateTime<Utc>,
        events: &[UsageEvent],
        until: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        // Claim [from, until) first: only the meterer that finds the task
        // metered exactly to `from` (and not stopped before `until`) writes,
        // so two meterers never interleave (nor deadlock on the aggregates),
        // and a stale view of a task that has since stopped writes nothing.
        let claimed = sqlx::query(
            "UPDATE analysis_tasks SET metered_until = $1 \
             WHERE id = $2 AND user_id = $3 AND COALESCE(metered_until, started_at) = $4 \
             AND (stopped_at IS NULL OR stopped_at >= $1)",
        )
        .bind(ms(until))
        .bind(t.id.to_string())
        .bind(t.user_id.to_string())
        .bind(ms(from))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if claimed.rows_affected() == 0 {
            return Ok(0);
        }
        let mut new = 0;
        for e in events {
            if insert_usage(&mut tx, e).await? {
                new += e.quantity;
            }
        }
        tx.commit().within(self.deadline).await?;
        Ok(new)
    }

    async fn tasks_to_meter(&self) -> Result<Vec<(AnalysisTask, Option<DateTime<Utc>>)>> {
        // Two statements, each on its own index (running tasks; ended ones
        // not metered to their end).
        let mut out = Vec::new();
        for sql in [RUNNING_TASKS_METERED, ENDED_TASKS_TO_METER] {
            let rows = sqlx::query(sql)
                .fetch_all(&self.pool)
                .within(self.deadline)
                .await?;
            for r in &rows {
                out.push((task(r)?, opt_time(r, "metered_until")?));
            }
        }
        Ok(out)
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
        ;
        self.once_with_event(new, event).await
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
        rows.iter().map(feature_quantity).collect()
    }

    async fn usage_by_device(
        &self,
        user: UserId,
        period: &str,
    ) -> Result<Vec<(DeviceId, UsageTotals)>> {
        let rows = sqlx::query(
            "SELECT device_id, feature, quantity FROM usage_monthly \
             WHERE user_id = $1 AND period = $2 ORDER BY device_id",
        )
        .bind(user.to_string())
        .bind(period.to_owned())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        let mut out: BTreeMap<DeviceId, UsageTotals> = BTreeMap::new();
        for r in &rows {
            let (f, n) = feature_quantity(r)?;
            *out.entry(id(r, "device_id")?)
                .or_default()
                .entry(f)
                .or_default() += n;
        }
        Ok(out.into_iter().collect())
    }

    async fn usage_daily(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, UsageTotals>> {
        let rows = sqlx::query(
            "SELECT day, feature, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_daily \
             WHERE user_id = $1 AND (device_id = $2 OR $2 = '') AND day >= $3 AND day <= $4 \
             GROUP BY day, feature",
        )
        .bind(user.to_string())
        .bind(any(device))
        .bind(from.format("%Y-%m-%d").to_string())
        .bind(to.format("%Y-%m-%d").to_string())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        let mut out: BTreeMap<NaiveDate, UsageTotals> = BTreeMap::new();
        for r in &rows {
            let day: String = get(r, "day")?;
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|e| corrupt("day", e))?;
            let (f, n) = feature_quantity(r)?;
            out.entry(day).or_default().insert(f, n);
        }
        Ok(out)
    }

    async fn usage_monthly(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        from: &str,
        to: &str,
    ) -> Result<BTreeMap<String, UsageTotals>> {
        let rows = sqlx::query(
            "SELECT period, feature, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_monthly \
             WHERE user_id = $1 AND (device_id = $2 OR $2 = '') AND period >= $3 AND period <= $4 \
             GROUP BY period, feature",
        )
        .bind(user.to_string())
        .bind(any(device))
        .bind(from.to_owned())
        .bind(to.to_owned())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        let mut out: BTreeMap<String, UsageTotals> = BTreeMap::new();
        for r in &rows {
            let period: String = get(r, "period")?;
            let (f, n) = feature_quantity(r)?;
            out.entry(period).or_default().insert(f, n);
        }
        Ok(out)
    }

    async fn record_quota_changes(
        &self,
        changes: &[QuotaChange],
        device: Option<&Device>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        if let Some(d) = device {
            let updated = sqlx::query(
                "UPDATE devices SET quota = $1, updated_at = $2 WHERE id = $3 AND user_id = $4",
            )
            .bind(to_json(&d.quota)?)
            .bind(ms(d.updated_at))
            .bind(d.id.to_string())
            .bind(d.user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            if updated.rows_affected() == 0 {
                return Ok(false);
            }
        }
        for c in changes {
            sqlx::query(
            "INSERT INTO quota_changes (id, user_id, device_id, period, kind, feature, amount, flag, reason, actor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.id.to_string())
        .bind(c.user_id.to_string())
        .bind(c.device_id.to_string())
        .bind(c.period.clone())
        .bind(c.kind.as_str())
        .bind(c.feature.map(|f| f.as_str()))
        .bind(c.amount.map(|a| i64::try_from(a).unwrap_or(i64::MAX)))
        .bind(c.flag.map(i64::from))
        .bind(c.reason.clone())
        .bind(c.actor.clone())
        .bind(ms(c.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        }
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }

    async fn users_with_usage(&self, period: &str) -> Result<Vec<UserId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT user_id FROM usage_monthly WHERE period = $1 ORDER BY user_id",
        )
        .bind(period.to_owned())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(|r| id(r, "user_id")).collect()
    }

    async fn record_billing_cycle(&self, period: &str, event: &PlatformEvent) -> Result<bool> {
        let new = sqlx::query(
            "INSERT INTO billing_cycles (user_id, period, sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, period) DO NOTHING",
        )
        .bind(event.user_id.to_string())
        .bind(period.to_owned())
        .bind(ms(event.created_at));
        self.once_with_event(new, event).await
    }

    async fn quota_grants(
        &self,
        user: UserId,
        device: DeviceId,
        period: &str,
    ) -> Result<UsageTotals> {
        let rows = sqlx::query(
            "SELECT feature, CAST(SUM(amount) AS BIGINT) AS quantity FROM quota_changes \
             WHERE user_id = $1 AND device_id = $2 AND period = $3 AND kind = 'grant' GROUP BY feature",
        )
        .bind(user.to_string())
        .bind(device.to_string())
        .bind(period.to_owned())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(feature_quantity).collect()
    }

    async fn list_quota_changes(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        page: PageRequest,
    ) -> Result<Page<QuotaChange>> {
        let device = any(device);
        let total = sqlx::query(
            "SELECT COUNT(*) FROM quota_changes WHERE user_id = $1 AND (device_id = $2 OR $2 = '')",
        )
        .bind(user.to_string())
        .bind(device.clone())
        .fetch_one(&self.pool)
        .within(self.deadline)
        .await?;
        let rows = sqlx::query(
            "SELECT id, user_id, device_id, period, kind, feature, amount, flag, reason, actor, created_at \
             FROM quota_changes WHERE user_id = $1 AND (device_id = $2 OR $2 = '') \
             ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
        )
        .bind(user.to_string())
        .bind(device)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(quota_change).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn list_usage_events(
        &self,
        user: UserId,
        f: &UsageFilter,
        page: PageRequest,
    ) -> Result<Page<UsageEvent>> {
        let (from, to) = f.range.millis();
        let (device, feature) = (any(f.device), any(f.feature.map(|x| x.as_str())));
        let total = sqlx::query(concat!("SELECT COUNT(*)", events_where!()))
            .bind(user.to_string())
            .bind(device.clone())
            .bind(feature.clone())
            .bind(from)
            .bind(to)
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = sqlx::query(concat!(
            "SELECT id, user_id, device_id, feature, quantity, occurred_at, source",
            events_where!(),
            " ORDER BY occurred_at DESC, id DESC LIMIT $6 OFFSET $7"
        ))
        .bind(user.to_string())
        .bind(device)
        .bind(feature)
        .bind(from)
        .bind(to)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(usage_event).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }
}
