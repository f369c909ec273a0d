//! The two security schemes as the OpenAPI document declares them. Both read
//! `Authorization: Bearer`, and both authenticate while the request is being
//! extracted, before its body is read: an unauthenticated caller gets 401,
//! never a validation error about a body it may not send.

use panoptes_shared::Error;
use panoptes_shared::domain::api_key::is_api_key;
use panoptes_shared::error::AuthFailure;
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;

/// A session token (JWT) from `POST /api/v1/auth/login` or `/auth/signup`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_session")]
pub struct SessionToken(pub Caller);

/// An API key: `syncai_dev_...`, `syncai_pat_...` or `syncai_svc_...`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "API key", checker = "check_key")]
pub struct ApiKey(pub Caller);

/// Either credential (resource endpoints). Keys are tried first, so the
/// error reported for a bad token is the one of its own kind.
#[derive(SecurityScheme)]
pub enum SessionOrKey {
    Key(ApiKey),
    Session(SessionToken),
}

impl SessionOrKey {
    pub fn caller(&self) -> &Caller {
        match self {
            Self::Key(k) => &k.0,
            Self::Session(s) => &s.0,
        }
    }
}

/// `?ticket=` from `POST /api/v1/sse/tickets`, for browsers' `EventSource`.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "ticket",
    key_in = "query",
    checker = "check_ticket"
)]
pub struct SseTicket(pub Caller);

fn state(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| ApiError::<()>::from(Error::internal("application state missing")).into())
}

async fn check_session(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = state(req)?;
    state
        .authenticate_session_only(&bearer.token)
        .await
        .map_err(|e| ApiError::<()>::from(e).into())
}

async fn check_key(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    if !is_api_key(&bearer.token) {
        return Err(ApiError::<()>::from(Error::Unauthorized(AuthFailure::Invalid)).into());
    }
    let state = state(req)?;
    state
        .authenticate(&bearer.token)
        .await
        .map_err(|e| ApiError::<()>::from(e).into())
}

async fn check_ticket(req: &Request, ticket: poem_openapi::auth::ApiKey) -> poem::Result<Caller> {
    state(req)?
        .sessions
        .verify_ticket(&ticket.key)
        .map_err(|e| ApiError::<()>::from(e).into())
}
