//! The two security schemes as the OpenAPI document declares them. Both read
//! `Authorization: Bearer`; which one a token is, and whether it is valid, is
//! decided by [`AppState::authenticate`](crate::state::AppState).

use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

/// A session token (JWT) from `POST /api/v1/auth/login` or `/auth/signup`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct SessionToken(pub Bearer);

/// An API key: `syncai_dev_...`, `syncai_pat_...` or `syncai_svc_...`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "API key")]
pub struct ApiKey(pub Bearer);

/// Either credential (resource endpoints).
#[derive(SecurityScheme)]
pub enum SessionOrKey {
    Session(SessionToken),
    Key(ApiKey),
}

impl SessionOrKey {
    pub fn token(&self) -> &str {
        match self {
            Self::Session(t) => &t.0.token,
            Self::Key(k) => &k.0.token,
        }
    }
}

impl SessionToken {
    pub fn token(&self) -> &str {
        &self.0.token
    }
}
