//! Accounts: sign-up, log-in (argon2id passwords), log-out (revokes the
//! session everywhere at once) and the current user.

use chrono::{DateTime, Duration, Utc};
use panoptes_shared::domain::user::{Email, Role, Session, User, check_password};
use panoptes_shared::error::AuthFailure;
use panoptes_shared::ids::{SessionId, UserId};
use panoptes_shared::time::now;
use panoptes_shared::{Error, Result};
use poem_openapi::{Enum, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use crate::auth::schemes::{SessionOrKey, SessionToken};
use crate::http::body::JsonBody;
use crate::http::context;
use crate::http::envelope::{Created, Empty, Reply};
use crate::http::error::{ApiResult, LoginErrors, ReadErrors, SignupErrors};
use crate::limits::email_tag;
use crate::state::AppState;

pub struct AuthApi {
    pub state: AppState,
}

#[derive(Debug, Object, Deserialize)]
pub struct SignupRequest {
    /// Login name; stored lower-case.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// 8-128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: String,
    /// Display name, up to 100 characters.
    #[oai(validator(max_length = 100))]
    pub name: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum UserRole {
    User,
    Admin,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserDto {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: UserRole,
    #[oai(rename = "createdAt")]
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        Self {
            id: u.id.0,
            email: u.email.as_str().to_owned(),
            name: u.name,
            role: match u.role {
                Role::User => UserRole::User,
                Role::Admin => UserRole::Admin,
            },
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct SessionDto {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    #[oai(rename = "tokenType")]
    pub token_type: String,
    #[oai(rename = "expiresAt")]
    pub expires_at: DateTime<Utc>,
    pub user: UserDto,
}

impl AppState {
    /// Start a session for `user` and mint its token.
    async fn open_session(&self, user: User, ttl: Duration) -> Result<SessionDto> {
        let issued = now();
        let session = Session {
            id: SessionId::new(),
            user_id: user.id,
            created_at: issued,
            expires_at: issued + ttl,
            revoked_at: None,
        };
        self.store.create_session(&session).await?;
        let token =
            self.sessions
                .issue(user.id, session.id, user.role, issued, session.expires_at)?;
        Ok(SessionDto {
            token,
            token_type: "Bearer".into(),
            expires_at: session.expires_at,
            user: user.into(),
        })
    }
}

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);
const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account and start a session.
    ///
    /// Limited per client address (`auth.signups_per_client_per_hour`). An
    /// email that already has an account gets 409: without a confirmation
    /// mail no sign-up can hide that, so the answer is honest, as slow as a
    /// success, and rate limited (see the README).
    #[oai(path = "/auth/signup", method = "post", operation_id = "signup")]
    async fn signup(
        &self,
        body: JsonBody<SignupRequest>,
    ) -> ApiResult<Created<SessionDto>, SignupErrors> {
        let req = body.parse()?;
        let email = Email::parse(&req.email)?;
        check_password(&req.password)?;
        let name =
            panoptes_shared::domain::validate::optional_text("name", req.name.as_deref(), 100)?;
        let state = &self.state;
        let client = context::client_ip();
        state
            .limit(
                &format!("auth:signup:client:{client}"),
                state.auth_limits.signups_per_client_per_hour,
                HOUR,
            )
            .await?;
        // Hashed before the uniqueness check, so a taken email answers as
        // slowly as a free one.
        let _turn = state.hash_gate.enter(client)?;
        let hash = state.passwords.hash(req.password).await?;
        let user = User {
            id: UserId::new(),
            email,
            name,
            role: Role::User,
            created_at: now(),
        };
        self.state.store.create_user(&user, &hash).await?;
        let ttl = self.state.session_ttl;
        Ok(Created::new(
            "Account created",
            self.state.open_session(user, ttl).await?,
        ))
    }

    /// Exchange email and password for a session token.
    ///
    /// Limited per client address (all attempts) and per email (failures
    /// only, per address and overall); 429 with `Retry-After` beyond. 503 with
    /// `Retry-After` when this node's password hashing is saturated.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        body: JsonBody<LoginRequest>,
    ) -> ApiResult<Reply<SessionDto>, LoginErrors> {
        let req = body.parse()?;
        let email = Email::parse(&req.email)?;
        let state = &self.state;
        let limits = state.auth_limits;
        let client = context::client_ip();
        // Every attempt of a client counts (password spraying across emails);
        // only failures count per email, so the owner is never locked out by
        // their own successful log-ins, and one attacker's failures from one
        // address do not lock the owner out elsewhere.
        state
            .limit(
                &format!("auth:login:client:{client}"),
                limits.logins_per_client_per_minute,
                MINUTE,
            )
            .await?;
        let tag = email_tag(email.as_str());
        let pair = format!("auth:login-fail:{tag}:{client}");
        let any = format!("auth:login-fail:{tag}");
        state
            .check_limit(&pair, limits.login_failures_per_email_per_client, MINUTE)
            .await?;
        state
            .check_limit(&any, limits.login_failures_per_email, MINUTE)
            .await?;
        let _turn = state.hash_gate.enter(client)?;
        let found = state.store.find_user_by_email(&email).await?;
        let stored = found.as_ref().map(|(_, h)| h.clone());
        let ok = state.passwords.verify(req.password, stored).await?;
        let Some((user, _)) = found.filter(|_| ok) else {
            state
                .record(&pair, limits.login_failures_per_email_per_client, MINUTE)
                .await;
            state
                .record(&any, limits.login_failures_per_email, MINUTE)
                .await;
            return Err(Error::Unauthorized(AuthFailure::BadCredentials).into());
        };
        let ttl = self.state.session_ttl;
        Ok(Reply::new(
            "Logged in",
            self.state.open_session(user, ttl).await?,
        ))
    }

    /// End this session; its token stops working on every gateway at once.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, auth: SessionToken) -> ApiResult<Reply<Empty>, ReadErrors> {
        let caller = &auth.0;
        if let Some(sid) = caller.session_id() {
            self.state
                .store
                .revoke_session(caller.user_id, sid, now())
                .await?;
        }
        Ok(Reply::new("Logged out", Empty {}))
    }

    /// The user behind the presented session token or API key.
    #[oai(path = "/users/me", method = "get", operation_id = "getCurrentUser")]
    async fn me(&self, auth: SessionOrKey) -> ApiResult<Reply<UserDto>, ReadErrors> {
        let caller = auth.caller();
        let user = self
            .state
            .store
            .get_user(caller.user_id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        Ok(Reply::new("Current user", user.into()))
    }
}
