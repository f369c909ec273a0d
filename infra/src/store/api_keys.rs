//! API keys. Only the SHA-256 of a key is stored, indexed for lookup.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use panoptes_shared::Result;
use panoptes_shared::domain::api_key::{ApiKey, KeyHash, KeyType, Scopes};
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::ids::{ApiKeyId, UserId};
use panoptes_shared::ports::ApiKeyRepo;
use sqlx::any::AnyRow;

use super::rows::{corrupt, count, enum_col, get, id, ms, opt_ms, opt_time, time};
use super::{SqlStore, Within};

/// The column list, as a macro so statements stay `&'static str` (audited, no runtime formatting).
macro_rules! columns {
    () => {
        "id, user_id, name, key_type, display_prefix, scopes, expires_at, last_used_at, revoked_at, \
                       rotated_at, created_at, updated_at, device_id"
    };
}

fn api_key(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        name: get(row, "name")?,
        key_type: enum_col(row, "key_type", KeyType::parse)?,
        display_prefix: get(row, "display_prefix")?,
        scopes: Scopes::from_stored(&get::<String>(row, "scopes")?),
        expires_at: opt_time(row, "expires_at")?,
        last_used_at: opt_time(row, "last_used_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
        rotated_at: opt_time(row, "rotated_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        device_id: get::<Option<String>>(row, "device_id")?
            .map(|raw| raw.parse().map_err(|e| corrupt("device_id", e)))
            .transpose()?,
    })
}

#[async_trait]
impl ApiKeyRepo for SqlStore {
    async fn insert_api_key(&self, k: &ApiKey, hash: &KeyHash) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO api_keys (",
            columns!(),
            ", key_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(k.id.to_string())
        .bind(k.user_id.to_string())
        .bind(k.name.clone())
        .bind(k.key_type.as_str())
        .bind(k.display_prefix.clone())
        .bind(k.scopes.to_stored())
        .bind(opt_ms(k.expires_at))
        .bind(opt_ms(k.last_used_at))
        .bind(opt_ms(k.revoked_at))
        .bind(opt_ms(k.rotated_at))
        .bind(ms(k.created_at))
        .bind(ms(k.updated_at))
        .bind(k.device_id.map(|d| d.to_string()))
        .bind(hash.0.clone())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(())
    }

    async fn find_api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<(ApiKey, KeyHash)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", key_hash FROM api_keys WHERE key_hash = $1"
        ))
        .bind(hash.0.clone())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.map(|r| Ok((api_key(&r)?, KeyHash(get(&r, "key_hash")?))))
            .transpose()
    }

    async fn get_api_key(&self, user: UserId, key: ApiKeyId) -> Result<Option<ApiKey>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(key.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(api_key).transpose()
    }

    async fn list_api_keys(&self, user: UserId, page: PageRequest) -> Result<Page<ApiKey>> {
        let total = sqlx::query("SELECT COUNT(*) FROM api_keys WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(user.to_string())
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(api_key).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }

    async fn update_api_key(&self, user: UserId, k: &ApiKey) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET name = $1, scopes = $2, expires_at = $3, revoked_at = $4, updated_at = $5 \
             WHERE user_id = $6 AND id = $7",
        )
        .bind(k.name.clone())
        .bind(k.scopes.to_stored())
        .bind(opt_ms(k.expires_at))
        .bind(opt_ms(k.revoked_at))
        .bind(ms(k.updated_at))
        .bind(user.to_string())
        .bind(k.id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn rotate_api_key(&self, user: UserId, k: &ApiKey, new_hash: &KeyHash) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET key_hash = $1, display_prefix = $2, rotated_at = $3, updated_at = $4 \
             WHERE user_id = $5 AND id = $6 AND revoked_at IS NULL",
        )
        .bind(new_hash.0.clone())
        .bind(k.display_prefix.clone())
        .bind(opt_ms(k.rotated_at))
        .bind(ms(k.updated_at))
        .bind(user.to_string())
        .bind(k.id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn touch_api_key(&self, key: ApiKeyId, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(ms(at))
            .bind(key.to_string())
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(())
    }
}
