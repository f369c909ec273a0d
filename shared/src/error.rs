//! Domain errors. No HTTP here: the gateway maps each variant to a status and a
//! stable code in one exhaustive match.

use std::time::Duration;

use crate::domain::api_key::Scope;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a credential was refused. The message tells the caller what to do next,
/// never which part of a secret was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Expired,
    Revoked,
    BadCredentials,
}

impl AuthFailure {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "authentication required: send `Authorization: Bearer <token>`",
            Self::Invalid => "the token or API key is not valid",
            Self::Expired => "the token or API key has expired",
            Self::Revoked => "the token or API key has been revoked",
            Self::BadCredentials => "email or password is incorrect",
        }
    }
}

/// A field that failed validation, by its JSON name (dot path for nested fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefix the field with its parent object (`points` -> `config.zones.queueZone.points`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// When a rate-limited caller may try again, and the limit it hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: u32,
    pub remaining: u32,
    pub window: Duration,
    /// Time until the current window resets.
    pub reset_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Validation(#[from] FieldError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{}", .0.message())]
    Unauthorized(AuthFailure),
    #[error("missing scope `{0}`")]
    ForbiddenScope(Scope),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("rate limit of {} requests per {}s reached", .0.limit, .0.window.as_secs())]
    RateLimited(RateLimitInfo),
    #[error("the user already holds the maximum of {limit} live streams")]
    StreamLimit { limit: u32, retry_after: Duration },
    #[error("the device is {status}: {hint}")]
    DeviceOffline {
        status: &'static str,
        hint: &'static str,
    },
    #[error("the scene is inactive; activate it before starting analysis")]
    SceneInactive,
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    PlanRequired(String),
    #[error("{0} is not implemented yet")]
    NotImplemented(&'static str),
    /// This node is saturated with `what`: 503 with `Retry-After`. Load, not an outage.
    #[error("the server is busy with {what}; retry in {} s", .retry_after.as_secs().max(1))]
    Busy {
        what: &'static str,
        retry_after: Duration,
    },
    /// A per-account cap on a resource is reached.
    #[error("at most {limit} {what} per account")]
    LimitReached { what: &'static str, limit: u32 },
    #[error("{dependency} is unavailable")]
    Unavailable {
        dependency: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(FieldError::new(field, message))
    }

    /// A dependency (`store`, `redis`) did not answer: 503, retry later.
    pub fn unavailable(dependency: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            dependency,
            source: source.into(),
        }
    }

    pub fn internal(e: impl Into<BoxError>) -> Self {
        Self::Internal(e.into())
    }
}
