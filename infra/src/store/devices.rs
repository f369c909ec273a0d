//! Devices. Credentials arrive already sealed; this layer never sees them in clear.

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::domain::device::{
    Device, DeviceStatus, DeviceType, GeoSource, RtspUrl, Sealed,
};
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::schedule::UtcOffset;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::ports::DeviceRepo;
use panoptes_shared::time::now;
use sqlx::any::AnyRow;

use super::rows::{StoredSchedule, corrupt, count, enum_col, get, id, json, ms, time, to_json};
use super::{SqlStore, Within};

/// The column list, as a macro so statements stay `&'static str` (audited, no runtime formatting).
macro_rules! columns {
    () => {
        "id, user_id, name, description, rtsp_url, credentials, location_label, latitude, longitude, \
                       geo_source, device_type, plan, tags, utc_offset_minutes, schedule, status, quota, created_at, updated_at, \
                       push_enabled, allow_plain_basic_auth"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO devices (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
);

fn device(row: &AnyRow) -> Result<Device> {
    let offset: i64 = get(row, "utc_offset_minutes")?;
    let offset = UtcOffset::from_minutes(offset)
        .ok_or_else(|| corrupt("utc_offset_minutes", format!("{offset} minutes")))?;
    let geo: Option<String> = get(row, "geo_source")?;
    let schedule: Option<String> = get(row, "schedule")?;
    Ok(Device {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        rtsp_url: RtspUrl::from_stored(get(row, "rtsp_url")?),
        credentials: get::<Option<String>>(row, "credentials")?.map(Sealed),
        location_label: get(row, "location_label")?,
        latitude: get(row, "latitude")?,
        longitude: get(row, "longitude")?,
        geo_source: geo
            .map(|g| GeoSource::parse(&g).ok_or_else(|| corrupt("geo_source", g)))
            .transpose()?,
        device_type: enum_col(row, "device_type", DeviceType::parse)?,
        plan: enum_col(row, "plan", Plan::parse)?,
        tags: json(row, "tags")?,
        utc_offset: offset,
        schedule: schedule
            .map(|s| {
                serde_json::from_str::<StoredSchedule>(&s)
                    .map_err(|e| corrupt("schedule", e))?
                    .into_domain()
            })
            .transpose()?,
        status: enum_col(row, "status", DeviceStatus::parse)?,
        quota: json(row, "quota")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        push_enabled: get::<i64>(row, "push_enabled")? != 0,
        last_seen_at: super::rows::opt_time(row, "last_seen_at")?,
        allow_plain_basic_auth: get::<i64>(row, "allow_plain_basic_auth")? != 0,
    })
}

/// Binds every column in `COLUMNS` order, so insert and update cannot drift apart.
fn bind_all<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    d: &Device,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>> {
    Ok(q.bind(d.id.to_string())
        .bind(d.user_id.to_string())
        .bind(d.name.clone())
        .bind(d.description.clone())
        .bind(d.rtsp_url.as_str().to_owned())
        .bind(d.credentials.as_ref().map(|c| c.0.clone()))
        .bind(d.location_label.clone())
        .bind(d.latitude)
        .bind(d.longitude)
        .bind(d.geo_source.map(|g| g.as_str()))
        .bind(d.device_type.as_str())
        .bind(d.plan.as_str())
        .bind(to_json(&d.tags)?)
        .bind(i64::from(d.utc_offset.minutes()))
        .bind(
            d.schedule
                .as_ref()
                .map(|s| to_json(&StoredSchedule::from_domain(s)))
                .transpose()?,
        )
        .bind(d.status.as_str())
        .bind(to_json(&d.quota)?)
        .bind(ms(d.created_at))
        .bind(ms(d.updated_at))
        .bind(i64::from(d.push_enabled))
        .bind(i64::from(d.allow_plain_basic_auth)))
}

#[async_trait]
impl DeviceRepo for SqlStore {
    async fn insert_device(&self, d: &Device) -> Result<()> {
        bind_all(sqlx::query(INSERT), d)?
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(())
    }

    async fn insert_device_capped(&self, d: &Device, cap: u32) -> Result<bool> {
        if cap == 0 {
            self.insert_device(d).await?;
            return Ok(true);
        }
        let mut tx = self.pool.begin().within(self.deadline).await?;
        // Lock the owner's row first (PostgreSQL row lock; SQLite takes its
        // write lock), so concurrent creates of one user count one at a time.
        sqlx::query("UPDATE users SET id = id WHERE id = $1")
            .bind(d.user_id.to_string())
            .execute(&mut *tx)
            .within(self.deadline)
            .await?;
        let held = sqlx::query("SELECT COUNT(*) FROM devices WHERE user_id = $1")
            .bind(d.user_id.to_string())
            .fetch_one(&mut *tx)
            .within(self.deadline)
            .await?;
        if count(&held)? >= u64::from(cap) {
            return Ok(false);
        }
        bind_all(sqlx::query(INSERT), d)?
            .execute(&mut *tx)
            .within(self.deadline)
            .await?;
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }

    async fn find_device_for_admin(&self, device_id: DeviceId) -> Result<Option<Device>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", last_seen_at FROM devices WHERE id = $1"
        ))
        .bind(device_id.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(device).transpose()
    }

    async fn get_device(&self, user: UserId, device_id: DeviceId) -> Result<Option<Device>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", last_seen_at FROM devices WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(device_id.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(device).transpose()
    }

    async fn list_devices(&self, user: UserId, page: PageRequest) -> Result<Page<Device>> {
        let total = sqlx::query("SELECT COUNT(*) FROM devices WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", last_seen_at FROM devices WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(user.to_string())
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(device).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn update_device(&self, user: UserId, d: &Device) -> Result<bool> {
        // Same bind order as COLUMNS: $1 id, $2 user_id, then the mutable columns.
        // The status is the connection's, not the editor's: kept as stored
        // (`COALESCE` of a NOT NULL column), so an edit never undoes a
        // transition ingest made since the row was read.
        let sql = "UPDATE devices SET name = $3, description = $4, rtsp_url = $5, credentials = $6, location_label = $7, \
                   latitude = $8, longitude = $9, geo_source = $10, device_type = $11, plan = $12, tags = $13, \
                   utc_offset_minutes = $14, schedule = $15, status = COALESCE(status, $16), quota = $17, \
                   created_at = $18, updated_at = $19, push_enabled = $20, \
                   allow_plain_basic_auth = $21 WHERE id = $1 AND user_id = $2";
        debug_assert_eq!(user, d.user_id);
        let r = bind_all(sqlx::query(sql), d)?
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn set_device_status(
        &self,
        user: UserId,
        device_id: DeviceId,
        status: DeviceStatus,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET status = $1, updated_at = $2 WHERE user_id = $3 AND id = $4",
        )
        .bind(status.as_str())
        .bind(ms(now()))
        .bind(user.to_string())
        .bind(device_id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn transition_device_status(
        &self,
        user: UserId,
        device_id: DeviceId,
        to: DeviceStatus,
        event: &panoptes_shared::domain::event::PlatformEvent,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let r = sqlx::query(
            "UPDATE devices SET status = $1, updated_at = $2 WHERE user_id = $3 AND id = $4 AND status <> $1",
        )
        .bind(to.as_str())
        .bind(ms(now()))
        .bind(user.to_string())
        .bind(device_id.to_string())
        .execute(&mut *tx)
        .within(self.deadline)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        super::events::insert_event(&mut tx, event).await?;
        tx.commit().within(self.deadline).await?;
        Ok(true)
    }

    async fn touch_device(
        &self,
        user: UserId,
        device_id: DeviceId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET last_seen_at = $1 WHERE user_id = $2 AND id = $3 \
             AND (last_seen_at IS NULL OR last_seen_at < $1)",
        )
        .bind(ms(at))
        .bind(user.to_string())
        .bind(device_id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn silent_push_devices(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Device>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", last_seen_at FROM devices WHERE status = 'online' \
              AND (push_enabled = 1 OR device_type = 'usb_camera') \
              AND (last_seen_at IS NULL OR last_seen_at < $1) ORDER BY id"
        ))
        .bind(ms(before))
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(device).collect()
    }

    async fn idle_pull_devices(&self, limit: u32) -> Result<Vec<Device>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", last_seen_at FROM devices d WHERE push_enabled = 0 AND device_type <> 'usb_camera' \
              AND NOT EXISTS (SELECT 1 FROM analysis_tasks t WHERE t.device_id = d.id AND t.status = 'running') \
              ORDER BY COALESCE(last_seen_at, 0), id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(device).collect()
    }

    async fn scheduled_devices(&self) -> Result<Vec<Device>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", last_seen_at FROM devices WHERE schedule IS NOT NULL ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        rows.iter().map(device).collect()
    }

    async fn delete_device(&self, user: UserId, device_id: DeviceId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM devices WHERE user_id = $1 AND id = $2")
            .bind(user.to_string())
            .bind(device_id.to_string())
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
