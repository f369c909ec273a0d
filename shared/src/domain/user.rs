//! Users (tenants), their roles and login sessions.

use chrono::{DateTime, Utc};

use crate::error::FieldError;
use crate::ids::{SessionId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A normalised (trimmed, lower-case) email address: the login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let v = raw.trim().to_lowercase();
        let ok = v.len() <= 254
            && v.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !v.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(v))
        } else {
            Err(FieldError::new("email", "must be a valid email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 8..=128 characters. Only its argon2id hash is stored.
pub fn check_password(raw: &str) -> Result<(), FieldError> {
    let len = raw.chars().count();
    if !(8..=128).contains(&len) {
        return Err(FieldError::new("password", "must be 8-128 characters"));
    }
    Ok(())
}

/// A login session; the session token (JWT) carries its id, so logging out
/// (revoking the row) invalidates the token at once on every gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}
