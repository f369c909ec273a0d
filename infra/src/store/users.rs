//! Users and login sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use panoptes_shared::Result;
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::domain::user::{Email, Role, Session, User};
use panoptes_shared::ids::{SessionId, UserId};
use panoptes_shared::ports::{SessionRepo, UserRepo};
use sqlx::any::AnyRow;

use super::rows::{count, enum_col, get, id, ms, opt_time, time};
use super::{SqlStore, Within};

/// The column list, as a macro so statements stay `&'static str` (audited, no runtime formatting).
macro_rules! columns {
    () => {
        "id, email, name, role, created_at"
    };
}

fn user(row: &AnyRow) -> Result<User> {
    let email: String = get(row, "email")?;
    Ok(User {
        id: id(row, "id")?,
        email: Email::parse(&email).map_err(|e| super::rows::corrupt("email", e))?,
        name: get(row, "name")?,
        role: enum_col(row, "role", Role::parse)?,
        created_at: time(row, "created_at")?,
    })
}

#[async_trait]
impl UserRepo for SqlStore {
    async fn create_user(&self, u: &User, password_hash: &str) -> Result<()> {
        sqlx::query("INSERT INTO users (id, email, name, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(u.id.to_string())
            .bind(u.email.as_str())
            .bind(u.name.clone())
            .bind(password_hash)
            .bind(u.role.as_str())
            .bind(ms(u.created_at))
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(())
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<(User, String)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", password_hash FROM users WHERE email = $1"
        ))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.map(|r| Ok((user(&r)?, get(&r, "password_hash")?)))
            .transpose()
    }

    async fn get_user(&self, user_id: UserId) -> Result<Option<User>> {
        let row = sqlx::query(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
            .bind(user_id.to_string())
            .fetch_optional(&self.pool)
            .within(self.deadline)
            .await?;
        row.as_ref().map(user).transpose()
    }

    async fn set_user_role(&self, user_id: UserId, role: Role) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let total = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM users ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(i64::from(page.limit))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(Page {
            items: rows.iter().map(user).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }
}

#[async_trait]
impl SessionRepo for SqlStore {
    async fn create_session(&self, s: &Session) -> Result<()> {
        sqlx::query("INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, NULL)")
            .bind(s.id.to_string())
            .bind(s.user_id.to_string())
            .bind(ms(s.created_at))
            .bind(ms(s.expires_at))
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(())
    }

    async fn get_session(&self, session: SessionId) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1",
        )
        .bind(session.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.map(|r| {
            Ok(Session {
                id: id(&r, "id")?,
                user_id: id(&r, "user_id")?,
                created_at: time(&r, "created_at")?,
                expires_at: time(&r, "expires_at")?,
                revoked_at: opt_time(&r, "revoked_at")?,
            })
        })
        .transpose()
    }

    async fn revoke_session(
        &self,
        user_id: UserId,
        session: SessionId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let r = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(ms(at))
            .bind(user_id.to_string())
            .bind(session.to_string())
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
