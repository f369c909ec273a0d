//! Alert rules, alerts and the monthly alert count per device.
//!
//! A firing is one transaction guarded by the rule's row: the conditional
//! `UPDATE` (breach not already fired, cooldown passed) lets exactly one of
//! any number of evaluators through, and the unique `(rule_id,
//! breach_started_at)` index backs it up.

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::domain::alert::{
    Alert, AlertRule, AlertStatus, MetricPath, Operator, Severity, StatusChange,
};
use panoptes_shared::domain::event::PlatformEvent;
use panoptes_shared::domain::insight::Insight;
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::domain::schedule::{Schedule, UtcOffset};
use panoptes_shared::domain::usage::UsageEvent;
use panoptes_shared::ids::{AlertId, AlertRuleId, DeviceId, UserId};
use panoptes_shared::ports::{AlertFilter, AlertRepo, RuleFilter};
use sqlx::any::AnyRow;

use super::rows::{corrupt, count, enum_col, get, id, json, ms, opt_time, time, to_json};
use super::{SqlStore, Within};

macro_rules! alerts_where {
    () => {
        " FROM alerts WHERE user_id = $1 \
             AND (device_id = $2 OR $2 = '') AND (scene_id = $3 OR $3 = '') \
             AND (severity = $4 OR $4 = '') AND (status = $5 OR $5 = '') \
             AND triggered_at >= $6 AND triggered_at <= $7"
    };
}

macro_rules! rules_where {
    () => {
        " FROM alert_rules WHERE user_id = $1 \
             AND (scene_id = $2 OR $2 = '') AND (device_id = $3 OR $3 = '') \
             AND (severity = $4 OR $4 = '') AND (enabled = $5 OR $5 = -1)"
    };
}

macro_rules! rule_columns {
    () => {
        "id, user_id, scene_id, device_id, name, metric_path, operator, threshold, \
         duration_seconds, cooldown_seconds, severity, active_slots, enabled, last_fired_at, \
         breach_open, created_at, updated_at"
    };
}

macro_rules! alert_columns {
    () => {
        "id, user_id, rule_id, rule_name, scene_id, device_id, task_id, severity, metric_path, \
         operator, threshold, value, snapshot_key, status, history, breach_started_at, \
         triggered_at, updated_at, suppressed"
    };
}

fn seconds(row: &AnyRow, column: &str) -> Result<u32> {
    u32::try_from(get::<i64>(row, column)?).map_err(|e| corrupt(column, e))
}

fn rule(row: &AnyRow) -> Result<AlertRule> {
    let path: String = get(row, "metric_path")?;
    let slots: Option<String> = get(row, "active_slots")?;
    Ok(AlertRule {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        scene_id: id(row, "scene_id")?,
        device_id: id(row, "device_id")?,
        name: get(row, "name")?,
        metric_path: MetricPath::parse(&path).map_err(|e| corrupt("metric_path", e))?,
        operator: enum_col(row, "operator", Operator::parse)?,
        threshold: get(row, "threshold")?,
        duration_seconds: seconds(row, "duration_seconds")?,
        cooldown_seconds: seconds(row, "cooldown_seconds")?,
        severity: enum_col(row, "severity", Severity::parse)?,
        active_slots: slots
            .map(|s| -> Result<_> {
                let v: Vec<bool> =
                    serde_json::from_str(&s).map_err(|e| corrupt("active_slots", e))?;
                Schedule::slots("active_slots", &v).map_err(|e| corrupt("active_slots", e))
            })
            .transpose()?,
        enabled: get::<i64>(row, "enabled")? != 0,
        last_fired_at: opt_time(row, "last_fired_at")?,
        breach_open: get::<i64>(row, "breach_open")? != 0,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn alert(row: &AnyRow) -> Result<Alert> {
    let task: Option<String> = get(row, "task_id")?;
    let history: Vec<StatusChange> = json(row, "history")?;
    Ok(Alert {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        rule_id: id(row, "rule_id")?,
        rule_name: get(row, "rule_name")?,
        scene_id: id(row, "scene_id")?,
        device_id: id(row, "device_id")?,
        task_id: task
            .map(|t| t.parse().map_err(|e| corrupt("task_id", e)))
            .transpose()?,
        severity: enum_col(row, "severity", Severity::parse)?,
        metric_path: get(row, "metric_path")?,
        operator: enum_col(row, "operator", Operator::parse)?,
        threshold: get(row, "threshold")?,
        value: get(row, "value")?,
        snapshot_key: get(row, "snapshot_key")?,
        status: enum_col(row, "status", AlertStatus::parse)?,
        history,
        breach_started_at: time(row, "breach_started_at")?,
        triggered_at: time(row, "triggered_at")?,
        updated_at: time(row, "updated_at")?,
        suppressed: get::<i64>(row, "suppressed")? != 0,
    })
}

fn slots_json(r: &AlertRule) -> Result<Option<String>> {
    r.active_slots.map(|s| to_json(&s.to_vec())).transpose()
}

/// `''` for "any", so one statement serves every filter combination.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

#[async_trait]
impl AlertRepo for SqlStore {
    async fn insert_rule(&self, r: &AlertRule) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO alert_rules (",
            rule_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(r.id.to_string())
        .bind(r.user_id.to_string())
        .bind(r.scene_id.to_string())
        .bind(r.device_id.to_string())
        .bind(r.name.clone())
        .bind(r.metric_path.as_string())
        .bind(r.operator.as_str())
        .bind(r.threshold)
        .bind(i64::from(r.duration_seconds))
        .bind(i64::from(r.cooldown_seconds))
        .bind(r.severity.as_str())
        .bind(slots_json(r)?)
        .bind(i64::from(r.enabled))
        .bind(r.last_fired_at.map(ms))
        .bind(i64::from(r.breach_open))
        .bind(ms(r.created_at))
        .bind(ms(r.updated_at))
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(())
    }

    async fn get_rule(&self, user: UserId, rid: AlertRuleId) -> Result<Option<AlertRule>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            rule_columns!(),
            " FROM alert_rules WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(rid.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(rule).transpose()
    }

    async fn list_rules(
        &self,
        user: UserId,
        f: &RuleFilter,
        page: PageRequest,
    ) -> Result<Page<AlertRule>> {
        let enabled = f.enabled.map_or(-1, i64::from);
        let (scene, device) = (opt(f.scene), opt(f.device));
        let severity = f.severity.map(|s| s.as_str()).unwrap_or_default();
        let total = sqlx::query(concat!("SELECT COUNT(*)", rules_where!()))
            .bind(user.to_string())
            .bind(scene.clone())
            .bind(device.clone())
            .bind(severity)
            .bind(enabled)
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            rule_columns!(),
            rules_where!(),
            " ORDER BY created_at DESC, id DESC LIMIT $6 OFFSET $7"
        ))
        .bind(user.to_string())
        .bind(scene)
        .bind(device)
        .bind(severity)
        .bind(enabled)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(rule).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn update_rule(&self, user: UserId, r: &AlertRule) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE alert_rules SET name = $1, metric_path = $2, operator = $3, threshold = $4, \
             duration_seconds = $5, cooldown_seconds = $6, severity = $7, active_slots = $8, \
             enabled = $9, updated_at = $10 WHERE user_id = $11 AND id = $12",
        )
        .bind(r.name.clone())
        .bind(r.metric_path.as_string())
        .bind(r.operator.as_str())
        .bind(r.threshold)
        .bind(i64::from(r.duration_seconds))
        .bind(i64::from(r.cooldown_seconds))
        .bind(r.severity.as_str())
        .bind(slots_json(r)?)
        .bind(i64::from(r.enabled))
        .bind(ms(r.updated_at))
        .bind(user.to_string())
        .bind(r.id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_rule(&self, user: UserId, rid: AlertRuleId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM alert_rules WHERE user_id = $1 AND id = $2")
            .bind(user.to_string())
            .bind(rid.to_string())
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enabled_rules(&self) -> Result<Vec<(AlertRule, UtcOffset)>> {
        let rows = sqlx::query(
            "SELECT r.id, r.user_id, r.scene_id, r.device_id, r.name, r.metric_path, r.operator, \
             r.threshold, r.duration_seconds, r.cooldown_seconds, r.severity, r.active_slots, \
             r.enabled, r.last_fired_at, r.breach_open, r.created_at, r.updated_at, \
             d.utc_offset_minutes FROM alert_rules r JOIN devices d ON d.id = r.device_id \
             WHERE r.enabled = 1",
        )
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        let read = |row: &AnyRow| -> Result<(AlertRule, UtcOffset)> {
            let minutes: i64 = get(row, "utc_offset_minutes")?;
            let offset = UtcOffset::from_minutes(minutes)
                .ok_or_else(|| corrupt("utc_offset_minutes", format!("{minutes} minutes")))?;
            Ok((rule(row)?, offset))
        };
        // One unreadable rule must not stop every tenant's evaluation.
        Ok(rows
            .iter()
            .filter_map(|row| {
                read(row)
                    .inspect_err(|e| tracing::error!(error = %e, "unreadable alert rule skipped"))
                    .ok()
            })
            .collect())
    }

    async fn fire_alert(
        &self,
        a: &Alert,
        event: &PlatformEvent,
        insight: Option<&Insight>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let at = ms(a.triggered_at);
        let won = sqlx::query(
            "UPDATE alert_rules SET last_fired_at = $1, breach_open = 1 \
             WHERE id = $2 AND user_id = $3 AND enabled = 1 AND breach_open = 0 \
             AND (last_fired_at IS NULL OR last_fired_at + cooldown_seconds * 1000 <= $1)",
        )
        .bind(at)
        .bind(a.rule_id.to_string())
        .bind(a.user_id.to_string())
        .execute(&mut *tx)
        .within(self.deadline)
        .await?;
        if won.rows_affected() == 0 {
            return Ok(false);
        }
        // The unique (rule, breach start) index backs the guard: a breach
        // fired already is a lost race, not an error (the transaction rolls back).
        let inserted = sqlx::query(concat!(
            "INSERT INTO alerts (",
            alert_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(a.id.to_string())
        .bind(a.user_id.to_string())
        .bind(a.rule_id.to_string())
        .bind(a.rule_name.clone())
        .bind(a.scene_id.to_string())
        .bind(a.device_id.to_string())
        .bind(a.task_id.map(|t| t.to_string()))
        .bind(a.severity.as_str())
        .bind(a.metric_path.clone())
        .bind(a.operator.as_str())
        .bind(a.threshold)
        .bind(a.value)
        .bind(a.snapshot_key.clone())
        .bind(a.status.as_str())
        .bind(to_json(&a.history)?)
        .bind(ms(a.breach_started_at))
        .bind(at)
        .bind(ms(a.updated_at))
        .bind(i64::from(a.suppressed))
        .execute(&mut *tx)
        .within(self.deadline)
        .await;
        match inserted {
            Err(panoptes_shared::Error::Conflict(_)) => return Ok(false),
            other => {
                other?;
            }
        }
        // Beyond the quota: recorded, neither metered nor delivered.
        if !a.suppressed {
            super::usage::insert_usage(
                &mut tx,
                &UsageEvent::alert(a.user_id, a.device_id, a.id, a.triggered_at),
            )
            .await?;
            super::events::insert_event(&mut tx, event).await?;
            if let Some(i) = insight {
                super::insights::insert_insight(&mut tx, i, self.deadline).await?;
            }
        }
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }

    async fn close_breach(
        &self,
        rid: AlertRuleId,
        cleared_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE alert_rules SET breach_open = 0 \
             WHERE id = $1 AND breach_open = 1 AND last_fired_at <= $2",
        )
        .bind(rid.to_string())
        .bind(ms(cleared_at))
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(())
    }

    async fn get_alert(&self, user: UserId, aid: AlertId) -> Result<Option<Alert>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(aid.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(alert).transpose()
    }

    async fn list_alerts(
        &self,
        user: UserId,
        f: &AlertFilter,
        page: PageRequest,
    ) -> Result<Page<Alert>> {
        let (from, to) = f.range.millis();
        let (device, scene) = (opt(f.device), opt(f.scene));
        let severity = f.severity.map(|s| s.as_str()).unwrap_or_default();
        let status = f.status.map(|s| s.as_str()).unwrap_or_default();
        let total = sqlx::query(concat!("SELECT COUNT(*)", alerts_where!()))
            .bind(user.to_string())
            .bind(device.clone())
            .bind(scene.clone())
            .bind(severity)
            .bind(status)
            .bind(from)
            .bind(to)
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            alerts_where!(),
            " ORDER BY triggered_at DESC, id DESC LIMIT $8 OFFSET $9"
        ))
        .bind(user.to_string())
        .bind(device)
        .bind(scene)
        .bind(severity)
        .bind(status)
        .bind(from)
        .bind(to)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(alert).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn update_alert_status(
        &self,
        user: UserId,
        a: &Alert,
        expected: AlertStatus,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE alerts SET status = $1, history = $2, updated_at = $3 \
             WHERE user_id = $4 AND id = $5 AND status = $6",
        )
        .bind(a.status.as_str())
        .bind(to_json(&a.history)?)
        .bind(ms(a.updated_at))
        .bind(user.to_string())
        .bind(a.id.to_string())
        .bind(expected.as_str())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn alert_count(&self, user: UserId, device: DeviceId, month: &str) -> Result<u64> {
        let row = sqlx::query(
            "SELECT quantity FROM usage_monthly WHERE user_id = $1 AND device_id = $2 AND period = $3 \
             AND feature = 'alertCount'",
        )
        .bind(user.to_string())
        .bind(device.to_string())
        .bind(month.to_owned())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map_or(Ok(0), count)
    }
}
