//! Webhook endpoints, the outbox dispatch, deliveries and their attempts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use panoptes_shared::Result;
use panoptes_shared::domain::device::Sealed;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::domain::webhook::{Attempt, Delivery, DeliveryStatus, Webhook};
use panoptes_shared::ids::{DeliveryId, UserId, WebhookId};
use panoptes_shared::ports::{DeliveryFilter, WebhookRepo};
use sqlx::any::AnyRow;

use super::rows::{corrupt, count, enum_col, get, id, ms, opt_time, time};
use super::{SqlStore, Within};

macro_rules! deliveries_where {
    () => {
        " FROM webhook_deliveries WHERE user_id = $1 \
             AND (event_type = $2 OR $2 = '') AND (status = $3 OR $3 = '')"
    };
}

macro_rules! webhook_columns {
    () => {
        "id, user_id, url, name, secret, previous_secret, previous_secret_until, \
         subscribed_types, timeout_ms, max_retries, enabled, disabled_reason, paused_until, \
         created_at, updated_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "id, user_id, webhook_id, event_id, event_type, payload, status, attempts, \
         round_attempts, next_attempt_at, last_status_code, last_error, created_at, updated_at"
    };
}

fn small(row: &AnyRow, column: &str) -> Result<u32> {
    u32::try_from(get::<i64>(row, column)?).map_err(|e| corrupt(column, e))
}

fn status_code(row: &AnyRow, column: &str) -> Result<Option<u16>> {
    get::<Option<i64>>(row, column)?
        .map(|c| u16::try_from(c).map_err(|e| corrupt(column, e)))
        .transpose()
}

fn webhook(row: &AnyRow) -> Result<Webhook> {
    let types: String = get(row, "subscribed_types")?;
    Ok(Webhook {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        url: get(row, "url")?,
        name: get(row, "name")?,
        secret: Sealed(get(row, "secret")?),
        previous_secret: get::<Option<String>>(row, "previous_secret")?.map(Sealed),
        previous_secret_until: opt_time(row, "previous_secret_until")?,
        subscribed_types: types
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| EventKind::parse(t).ok_or_else(|| corrupt("subscribed_types", t.to_owned())))
            .collect::<Result<_>>()?,
        timeout_ms: small(row, "timeout_ms")?,
        max_retries: small(row, "max_retries")?,
        enabled: get::<i64>(row, "enabled")? != 0,
        disabled_reason: get(row, "disabled_reason")?,
        paused_until: opt_time(row, "paused_until")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn delivery(row: &AnyRow) -> Result<Delivery> {
    let event: Option<String> = get(row, "event_id")?;
    Ok(Delivery {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        webhook_id: id(row, "webhook_id")?,
        event_id: event
            .map(|e| e.parse().map_err(|e| corrupt("event_id", e)))
            .transpose()?,
        event_type: get(row, "event_type")?,
        payload: get(row, "payload")?,
        status: enum_col(row, "status", DeliveryStatus::parse)?,
        attempts: small(row, "attempts")?,
        round_attempts: small(row, "round_attempts")?,
        next_attempt_at: opt_time(row, "next_attempt_at")?,
        last_status_code: status_code(row, "last_status_code")?,
        last_error: get(row, "last_error")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn attempt(row: &AnyRow) -> Result<Attempt> {
    Ok(Attempt {
        delivery_id: id(row, "delivery_id")?,
        number: small(row, "number")?,
        started_at: time(row, "started_at")?,
        status_code: status_code(row, "status_code")?,
        latency_ms: u64::try_from(get::<i64>(row, "latency_ms")?).unwrap_or(0),
        response_body: get(row, "response_body")?,
        error: get(row, "error")?,
        succeeded: get::<i64>(row, "succeeded")? != 0,
    })
}

fn types_text(w: &Webhook) -> String {
    w.subscribed_types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn insert_delivery_on(conn: &mut sqlx::AnyConnection, d: &Delivery) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO webhook_deliveries (",
        delivery_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(d.id.to_string())
    .bind(d.user_id.to_string())
    .bind(d.webhook_id.to_string())
    .bind(d.event_id.map(|e| e.to_string()))
    .bind(d.event_type.clone())
    .bind(d.payload.clone())
    .bind(d.status.as_str())
    .bind(i64::from(d.attempts))
    .bind(i64::from(d.round_attempts))
    .bind(d.next_attempt_at.map(ms))
    .bind(d.last_status_code.map(i64::from))
    .bind(d.last_error.clone())
    .bind(ms(d.created_at))
    .bind(ms(d.updated_at))
    .execute(conn)
    .await
    .map_err(super::map_err)?;
    Ok(())
}

async fn insert_attempt_on(
    conn: &mut sqlx::AnyConnection,
    d: &Delivery,
    a: &Attempt,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, number, user_id, started_at, status_code, \
         latency_ms, response_body, error, succeeded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(d.id.to_string())
    .bind(i64::from(a.number))
    .bind(d.user_id.to_string())
    .bind(ms(a.started_at))
    .bind(a.status_code.map(i64::from))
    .bind(i64::try_from(a.latency_ms).unwrap_or(i64::MAX))
    .bind(a.response_body.clone())
    .bind(a.error.clone())
    .bind(i64::from(a.succeeded))
    .execute(conn)
    .await
    .map_err(super::map_err)?;
    Ok(())
}

#[async_trait]
impl WebhookRepo for SqlStore {
    async fn create_webhook(&self, w: &Webhook) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO webhooks (",
            webhook_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(w.id.to_string())
        .bind(w.user_id.to_string())
        .bind(w.url.clone())
        .bind(w.name.clone())
        .bind(w.secret.0.clone())
        .bind(w.previous_secret.as_ref().map(|s| s.0.clone()))
        .bind(w.previous_secret_until.map(ms))
        .bind(types_text(w))
        .bind(i64::from(w.timeout_ms))
        .bind(i64::from(w.max_retries))
        .bind(i64::from(w.enabled))
        .bind(w.disabled_reason.clone())
        .bind(w.paused_until.map(ms))
        .bind(ms(w.created_at))
        .bind(ms(w.updated_at))
        .execute(&self.pool)
        .within(self.deadline)
        .await
        .map_err(|e| match e {
            panoptes_shared::Error::Conflict(_) => panoptes_shared::Error::Conflict(
                "you already have a webhook; change it with PATCH or delete it first".into(),
            ),
            e => e,
        })?;
        Ok(())
    }

    async fn get_webhook(&self, user: UserId) -> Result<Option<Webhook>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE user_id = $1"
        ))
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(webhook).transpose()
    }

    async fn update_webhook(
        &self,
        user: UserId,
        w: &Webhook,
        read_at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhooks SET url = $1, name = $2, secret = $3, previous_secret = $4, \
             previous_secret_until = $5, subscribed_types = $6, timeout_ms = $7, max_retries = $8, \
             enabled = $9, disabled_reason = $10, paused_until = $11, updated_at = $12 \
             WHERE user_id = $13 AND id = $14 AND updated_at = $15",
        )
        .bind(w.url.clone())
        .bind(w.name.clone())
        .bind(w.secret.0.clone())
        .bind(w.previous_secret.as_ref().map(|s| s.0.clone()))
        .bind(w.previous_secret_until.map(ms))
        .bind(types_text(w))
        .bind(i64::from(w.timeout_ms))
        .bind(i64::from(w.max_retries))
        .bind(i64::from(w.enabled))
        .bind(w.disabled_reason.clone())
        .bind(w.paused_until.map(ms))
        .bind(ms(w.updated_at))
        .bind(user.to_string())
        .bind(w.id.to_string())
        .bind(ms(read_at))
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_webhook(&self, user: UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn disable_webhook(&self, user: UserId, wid: WebhookId, reason: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhooks SET enabled = 0, disabled_reason = $1, updated_at = $2 \
             WHERE user_id = $3 AND id = $4",
        )
        .bind(reason.to_owned())
        .bind(ms(panoptes_shared::time::now()))
        .bind(user.to_string())
        .bind(wid.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn pause_webhook(&self, wid: WebhookId, until: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE webhooks SET paused_until = $1 WHERE id = $2")
            .bind(ms(until))
            .bind(wid.to_string())
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(())
    }

    async fn undispatched_events(&self, limit: u32) -> Result<Vec<PlatformEvent>> {
        let rows = sqlx::query(
            "SELECT id, user_id, kind, device_id, task_id, data, created_at FROM platform_events \
             WHERE dispatched_at IS NULL ORDER BY created_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            match super::events::event(row) {
                Ok(e) => events.push(e),
                Err(e) => {
                    let id: String = get(row, "id").unwrap_or_default();
                    tracing::error!(event = %id, error = %e, "unreadable outbox event skipped");
                    sqlx::query("UPDATE platform_events SET dispatched_at = $1 WHERE id = $2")
                        .bind(ms(panoptes_shared::time::now()))
                        .bind(id)
                        .execute(&self.pool)
                        .within(self.deadline)
                        .await?;
                }
            }
        }
        Ok(events)
    }

    async fn dispatch_event(
        &self,
        event: &PlatformEvent,
        d: Option<&Delivery>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let claimed = sqlx::query(
            "UPDATE platform_events SET dispatched_at = $1 WHERE id = $2 AND dispatched_at IS NULL",
        )
        .bind(ms(at))
        .bind(event.id.to_string())
        .execute(&mut *tx)
        .within(self.deadline)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(d) = d {
            insert_delivery_on(&mut tx, d).await?;
        }
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }

    async fn insert_delivery(&self, d: &Delivery) -> Result<()> {
        let mut conn = self.pool.acquire().within(self.deadline).await?;
        insert_delivery_on(&mut conn, d).await
    }

    async fn users_with_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<UserId>> {
        let rows = sqlx::query(
            "SELECT d.user_id FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.enabled = 1 \
             AND (w.paused_until IS NULL OR w.paused_until <= $1) \
             GROUP BY d.user_id ORDER BY MIN(d.next_attempt_at) LIMIT $2",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(|r| id(r, "user_id")).collect()
    }

    async fn due_deliveries(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE user_id = $1 AND status = 'pending' \
              AND next_attempt_at <= $2 ORDER BY created_at, id LIMIT $3"
        ))
        .bind(user.to_string())
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(delivery).collect()
    }

    async fn record_attempt(
        &self,
        d: &Delivery,
        a: &Attempt,
        disable: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = $2, round_attempts = $3, \
             next_attempt_at = $4, last_status_code = $5, last_error = $6, updated_at = $7 \
             WHERE id = $8 AND attempts = $9",
        )
        .bind(d.status.as_str())
        .bind(i64::from(d.attempts))
        .bind(i64::from(d.round_attempts))
        .bind(d.next_attempt_at.map(ms))
        .bind(d.last_status_code.map(i64::from))
        .bind(d.last_error.clone())
        .bind(ms(d.updated_at))
        .bind(d.id.to_string())
        .bind(i64::from(a.number.saturating_sub(1)))
        .execute(&mut *tx)
        .within(self.deadline)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        insert_attempt_on(&mut tx, d, a).await?;
        if let Some(reason) = disable {
            sqlx::query(
                "UPDATE webhooks SET enabled = 0, disabled_reason = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(reason.to_owned())
            .bind(ms(d.updated_at))
            .bind(d.webhook_id.to_string())
            .execute(&mut *tx)
            .within(self.deadline)
            .await?;
        }
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }

    async fn record_test_delivery(&self, d: &Delivery, a: &Attempt) -> Result<()> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        insert_delivery_on(&mut tx, d).await?;
        insert_attempt_on(&mut tx, d, a).await?;
        tx.commit().within(self.deadline).await?;
        Ok(())
    }

    async fn list_deliveries(
        &self,
        user: UserId,
        f: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        let event_type = f.event_type.clone().unwrap_or_default();
        let status = f.status.map(|s| s.as_str()).unwrap_or_default();
        let total = sqlx::query(concat!("SELECT COUNT(*)", deliveries_where!()))
            .bind(user.to_string())
            .bind(event_type.clone())
            .bind(status)
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            deliveries_where!(),
            " ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(user.to_string())
        .bind(event_type)
        .bind(status)
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(delivery).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn get_delivery(&self, user: UserId, did: DeliveryId) -> Result<Option<Delivery>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(did.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(delivery).transpose()
    }

    async fn list_attempts(&self, user: UserId, did: DeliveryId) -> Result<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT delivery_id, number, started_at, status_code, latency_ms, response_body, \
             error, succeeded FROM webhook_attempts WHERE user_id = $1 AND delivery_id = $2 \
             ORDER BY number",
        )
        .bind(user.to_string())
        .bind(did.to_string())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(attempt).collect()
    }

    async fn requeue_delivery(
        &self,
        user: UserId,
        did: DeliveryId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', round_attempts = 0, \
             next_attempt_at = $1, updated_at = $1 WHERE user_id = $2 AND id = $3",
        )
        .bind(ms(at))
        .bind(user.to_string())
        .bind(did.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
