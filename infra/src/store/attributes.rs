//! Person attributes: one row per description of a track, inserted once per
//! id (a redelivered frame's records are skipped), listed and counted per
//! tenant with the same filters.

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::domain::attribute::{
    AttributeRecord, AttributeStats, ColorName, PersonAttributes,
};
use panoptes_shared::domain::detection::BoundingBox;
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::ids::{AttributeId, UserId};
use panoptes_shared::ports::{AttributeFilter, AttributeRepo};
use sqlx::any::AnyRow;

use super::rows::{count, enum_col, get, id, ms, time};
use super::{SqlStore, Within};

macro_rules! columns {
    () => {
        "SELECT id, user_id, device_id, scene_id, task_id, track_id, upper_color, lower_color, \
         upper_color_share, lower_color_share, confidence, box_x, box_y, box_width, box_height, \
         observed_at, created_at"
    };
}

/// The filters; `''` for "any".
macro_rules! filters {
    () => {
        " FROM attributes WHERE user_id = $1 AND (device_id = $2 OR $2 = '') \
          AND (scene_id = $3 OR $3 = '') AND (task_id = $4 OR $4 = '') \
          AND (track_id = $5 OR $5 = '') AND (upper_color = $6 OR $6 = '') \
          AND (lower_color = $7 OR $7 = '') AND observed_at >= $8 AND observed_at <= $9"
    };
}

fn record(r: &AnyRow) -> Result<AttributeRecord> {
    let f = |c: &str| -> Result<f32> { get::<f64>(r, c).map(|v| v as f32) };
    Ok(AttributeRecord {
        id: id(r, "id")?,
        user_id: id(r, "user_id")?,
        device_id: id(r, "device_id")?,
        scene_id: id(r, "scene_id")?,
        task_id: id(r, "task_id")?,
        track_id: get(r, "track_id")?,
        attributes: PersonAttributes {
            upper_color: enum_col(r, "upper_color", ColorName::parse)?,
            lower_color: enum_col(r, "lower_color", ColorName::parse)?,
            upper_color_share: f("upper_color_share")?,
            lower_color_share: f("lower_color_share")?,
        },
        confidence: f("confidence")?,
        bounding_box: BoundingBox {
            x: f("box_x")?,
            y: f("box_y")?,
            width: f("box_width")?,
            height: f("box_height")?,
        },
        observed_at: time(r, "observed_at")?,
        created_at: time(r, "created_at")?,
    })
}

/// The filter's binds `$2`..`$9`, in order.
fn binds(f: &AttributeFilter) -> ([String; 6], i64, i64) {
    let text = |v: Option<String>| v.unwrap_or_default();
    let (from, to) = f.range.millis();
    (
        [
            text(f.device.map(|d| d.to_string())),
            text(f.scene.map(|s| s.to_string())),
            text(f.task.map(|t| t.to_string())),
            text(f.track.clone()),
            text(f.upper_color.map(|c| c.as_str().to_owned())),
            text(f.lower_color.map(|c| c.as_str().to_owned())),
        ],
        from,
        to,
    )
}

/// Runs `sql` with the user and the filter bound as `$1`..`$9`.
macro_rules! filtered {
    ($sql:expr, $user:expr, $f:expr) => {{
        let (texts, from, to) = binds($f);
        let [a, b, c, d, e, g] = texts;
        sqlx::query($sql)
            .bind($user.to_string())
            .bind(a)
            .bind(b)
            .bind(c)
            .bind(d)
            .bind(e)
            .bind(g)
            .bind(from)
            .bind(to)
    }};
}

/// `(colour, count)` rows of a GROUP BY, most first.
fn color_counts(rows: &[AnyRow], column: &str) -> Result<Vec<(ColorName, u64)>> {
    rows.iter()
        .map(|r| {
            let n: i64 = get(r, "n")?;
            Ok((
                enum_col(r, column, ColorName::parse)?,
                u64::try_from(n).unwrap_or(0),
            ))
        })
        .collect()
}

#[async_trait]
impl AttributeRepo for SqlStore {
    async fn insert_attributes(&self, records: &[AttributeRecord]) -> Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().within(self.deadline).await?;
        let mut new = 0;
        for a in records {
            let done = sqlx::query(
                "INSERT INTO attributes (id, user_id, device_id, scene_id, task_id, track_id, \
                 upper_color, lower_color, upper_color_share, lower_color_share, confidence, \
                 box_x, box_y, box_width, box_height, observed_at, created_at) VALUES ($1, $2, \
                 $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(a.id.to_string())
            .bind(a.user_id.to_string())
            .bind(a.device_id.to_string())
            .bind(a.scene_id.to_string())
            .bind(a.task_id.to_string())
            .bind(a.track_id.clone())
            .bind(a.attributes.upper_color.as_str())
            .bind(a.attributes.lower_color.as_str())
            .bind(f64::from(a.attributes.upper_color_share))
            .bind(f64::from(a.attributes.lower_color_share))
            .bind(f64::from(a.confidence))
            .bind(f64::from(a.bounding_box.x))
            .bind(f64::from(a.bounding_box.y))
            .bind(f64::from(a.bounding_box.width))
            .bind(f64::from(a.bounding_box.height))
            .bind(ms(a.observed_at))
            .bind(ms(a.created_at))
            .execute(&mut *tx)
            .within(self.deadline)
            .await?;
            new += done.rows_affected();
        }
        tx.commit().within(self.deadline).await?;
        Ok(new)
    }

    async fn get_attribute(
        &self,
        user: UserId,
        id: AttributeId,
    ) -> Result<Option<AttributeRecord>> {
        let row = sqlx::query(concat!(
            columns!(),
            " FROM attributes WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(record).transpose()
    }

    async fn list_attributes(
        &self,
        user: UserId,
        f: &AttributeFilter,
        page: PageRequest,
    ) -> Result<Page<AttributeRecord>> {
        let total = filtered!(concat!("SELECT COUNT(*)", filters!()), user, f)
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = filtered!(
            concat!(
                columns!(),
                filters!(),
                " ORDER BY observed_at DESC, id DESC LIMIT $10 OFFSET $11"
            ),
            user,
            f
        )
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(record).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn attribute_stats(&self, user: UserId, f: &AttributeFilter) -> Result<AttributeStats> {
        let totals = filtered!(
            concat!(
                "SELECT COUNT(*), COUNT(DISTINCT task_id || ':' || track_id)",
                filters!()
            ),
            user,
            f
        )
        .fetch_one(&self.pool)
        .within(self.deadline)
        .await?;
        let tracks: i64 =
            sqlx::Row::try_get(&totals, 1).map_err(|e| super::rows::corrupt("tracks", e))?;
        let upper = filtered!(
            concat!(
                "SELECT upper_color, COUNT(*) AS n",
                filters!(),
                " GROUP BY upper_color ORDER BY n DESC, upper_color"
            ),
            user,
            f
        )
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        let lower = filtered!(
            concat!(
                "SELECT lower_color, COUNT(*) AS n",
                filters!(),
                " GROUP BY lower_color ORDER BY n DESC, lower_color"
            ),
            user,
            f
        )
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(AttributeStats {
            total: count(&totals)?,
            tracks: u64::try_from(tracks).unwrap_or(0),
            upper_colors: color_counts(&upper, "upper_color")?,
            lower_colors: color_counts(&lower, "lower_color")?,
        })
    }
}
