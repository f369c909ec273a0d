//! Scenes: zones and parameters are one JSON document per row.

use async_trait::async_trait;
use panoptes_shared::Result;
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::domain::scene::{AnalysisType, Scene, SceneStatus, StoredSceneConfig};
use panoptes_shared::ids::{DeviceId, SceneId, UserId};
use panoptes_shared::ports::SceneRepo;
use sqlx::any::AnyRow;

use super::rows::{corrupt, count, enum_col, get, id, json, ms, time, to_json};
use super::{SqlStore, Within};

/// The column list, as a macro so statements stay `&'static str` (audited, no runtime formatting).
macro_rules! columns {
    () => {
        "id, user_id, device_id, name, description, analysis_type, config, status, created_at, updated_at"
    };
}

fn scene(row: &AnyRow) -> Result<Scene> {
    let (zones, parameters) = json::<StoredSceneConfig>(row, "config")?
        .into_parts()
        .map_err(|e| corrupt("config", e))?;
    Ok(Scene {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        device_id: id(row, "device_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        analysis_type: enum_col(row, "analysis_type", AnalysisType::parse)?,
        zones,
        parameters,
        status: enum_col(row, "status", SceneStatus::parse)?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn config(s: &Scene) -> Result<String> {
    to_json(&StoredSceneConfig::from_scene(&s.zones, &s.parameters))
}

#[async_trait]
impl SceneRepo for SqlStore {
    async fn insert_scene(&self, s: &Scene) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO scenes (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.device_id.to_string())
        .bind(s.name.clone())
        .bind(s.description.clone())
        .bind(s.analysis_type.as_str())
        .bind(config(s)?)
        .bind(s.status.as_str())
        .bind(ms(s.created_at))
        .bind(ms(s.updated_at))
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(())
    }

    async fn get_scene(&self, user: UserId, scene_id: SceneId) -> Result<Option<Scene>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM scenes WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(scene_id.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(scene).transpose()
    }

    async fn list_scenes(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        page: PageRequest,
    ) -> Result<Page<Scene>> {
        // `$2 IS NULL OR device_id = $2` needs a typed NULL on PostgreSQL; two statements are clearer.
        let (count_sql, page_sql) = if device.is_some() {
            (
                "SELECT COUNT(*) FROM scenes WHERE user_id = $1 AND device_id = $2",
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM scenes WHERE user_id = $1 AND device_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
                ),
            )
        } else {
            (
                "SELECT COUNT(*) FROM scenes WHERE user_id = $1 AND $2 = ''",
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM scenes WHERE user_id = $1 AND $2 = '' ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
                ),
            )
        };
        let device = device.map(|d| d.to_string()).unwrap_or_default();
        let total = sqlx::query(count_sql)
            .bind(user.to_string())
            .bind(device.clone())
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = sqlx::query(page_sql)
            .bind(user.to_string())
            .bind(device)
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(Page {
            items: rows.iter().map(scene).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn update_scene(&self, user: UserId, s: &Scene) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE scenes SET name = $1, description = $2, config = $3, status = $4, updated_at = $5 \
             WHERE user_id = $6 AND id = $7",
        )
        .bind(s.name.clone())
        .bind(s.description.clone())
        .bind(config(s)?)
        .bind(s.status.as_str())
        .bind(ms(s.updated_at))
        .bind(user.to_string())
        .bind(s.id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_scene(&self, user: UserId, scene_id: SceneId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM scenes WHERE user_id = $1 AND id = $2")
            .bind(user.to_string())
            .bind(scene_id.to_string())
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
