//! Authentication and authorisation. Two credentials arrive as
//! `Authorization: Bearer <token>`:
//! - a **session token** (JWT from sign-up/log-in; its session row can be revoked), and
//! - an **API key** (`syncai_dev_` / `syncai_pat_` / `syncai_svc_`), looked up by hash.
//!
//! Both are checked against the store on every request, so a logout, a key
//! revocation or a rotation takes effect at once on every gateway replica.

pub mod key_usage;
pub mod schemes;
pub mod session;

use panoptes_shared::domain::api_key::{KeyHash, KeyStatus, Scope, Scopes, is_api_key};
use panoptes_shared::domain::user::Role;
use panoptes_shared::error::AuthFailure;
use panoptes_shared::ids::{ApiKeyId, DeviceId, SessionId, UserId};
use panoptes_shared::time::now;
use panoptes_shared::{Error, Result};

use crate::http::context::{self, KeyCheck};
use crate::state::AppState;

/// Who is calling, and with what.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
    pub credential: Credential,
}

#[derive(Debug, Clone)]
pub enum Credential {
    Session(SessionId),
    ApiKey {
        id: ApiKeyId,
        scopes: Scopes,
        /// A device key works for this device only.
        device: Option<DeviceId>,
    },
    /// A short-lived SSE ticket, limited to the scopes (and the device) of
    /// the credential that minted it.
    Ticket {
        scopes: Scopes,
        device: Option<DeviceId>,
    },
}

impl Caller {
    /// Sessions act as their user with every scope; keys only with theirs.
    pub fn require(&self, scope: Scope) -> Result<()> {
        match &self.credential {
            Credential::Session(_) => Ok(()),
            Credential::ApiKey { scopes, .. } | Credential::Ticket { scopes, .. }
                if scopes.contains(scope) =>
            {
                Ok(())
            }
            Credential::ApiKey { .. } | Credential::Ticket { .. } => {
                Err(Error::ForbiddenScope(scope))
            }
        }
    }

    /// Passes with any one of `scopes` (the first is named when none is held).
    pub fn require_any(&self, scopes: &[Scope]) -> Result<()> {
        if scopes.iter().any(|s| self.require(*s).is_ok()) {
            Ok(())
        } else {
            self.require(scopes[0])
        }
    }

    /// The one device this credential is bound to (a device key), if any.
    pub fn device_binding(&self) -> Option<DeviceId> {
        match &self.credential {
            Credential::ApiKey { device, .. } | Credential::Ticket { device, .. } => *device,
            Credential::Session(_) => None,
        }
    }

    /// Whether this credential may reach `device` at all (tenancy aside).
    pub fn may_reach(&self, device: DeviceId) -> bool {
        self.device_binding().is_none_or(|d| d == device)
    }

    /// The device filter of a list: the one asked for, which a device-bound
    /// credential may only name if it is its own (404 otherwise); its own
    /// when none is asked for.
    pub fn device_filter(&self, asked: Option<uuid::Uuid>) -> Result<Option<DeviceId>> {
        match asked.map(DeviceId) {
            Some(d) if !self.may_reach(d) => Err(Error::NotFound("device")),
            Some(d) => Ok(Some(d)),
            None => Ok(self.device_binding()),
        }
    }

    /// A tenant's row this credential may see: `found`, unless it is
    /// missing or on a device the credential cannot reach (404 `what`).
    pub fn reachable<T>(
        &self,
        found: Option<T>,
        device: impl FnOnce(&T) -> DeviceId,
        what: &'static str,
    ) -> Result<T> {
        match found {
            Some(row) if self.may_reach(device(&row)) => Ok(row),
            _ => Err(Error::NotFound(what)),
        }
    }

    pub fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiKey { .. } | Credential::Ticket { .. } => None,
        }
    }
}

impl AppState {
    /// Authenticate a bearer token of either kind.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        if is_api_key(token) {
            self.authenticate_key(token).await
        } else {
            self.authenticate_session(token).await
        }
    }

    /// Session tokens only (API-key management): a valid key is refused with 403.
    pub async fn authenticate_session_only(&self, token: &str) -> Result<Caller> {
        if is_api_key(token) {
            self.authenticate_key(token).await?;
            return Err(Error::Forbidden(
                "API keys cannot manage API keys; use a session token",
            ));
        }
        self.authenticate_session(token).await
    }

    /// Pass only an admin (the role is re-read from the store, so a demotion is immediate).
    pub async fn require_admin(&self, caller: &Caller) -> Result<()> {
        let user = self
            .store
            .get_user(caller.user_id)
            .await?
            .ok_or(Error::Unauthorized(AuthFailure::Invalid))?;
        if user.role != Role::Admin {
            return Err(Error::Forbidden("this endpoint needs an admin session"));
        }
        Ok(())
    }

    async fn authenticate_session(&self, token: &str) -> Result<Caller> {
        let claims = self.sessions.verify(token)?;
        let session = self
            .store
            .get_session(claims.sid)
            .await?
            .ok_or(Error::Unauthorized(AuthFailure::Invalid))?;
        if session.user_id != claims.sub {
            return Err(Error::Unauthorized(AuthFailure::Invalid));
        }
        if session.revoked_at.is_some() {
            return Err(Error::Unauthorized(AuthFailure::Revoked));
        }
        if session.expires_at <= now() {
            return Err(Error::Unauthorized(AuthFailure::Expired));
        }
        Ok(Caller {
            user_id: claims.sub,
            role: claims.role,
            credential: Credential::Session(claims.sid),
        })
    }

    async fn authenticate_key(&self, token: &str) -> Result<Caller> {
        let presented = KeyHash::of(token);
        if let Some(found) = context::key_check(&presented.0) {
            return match found {
                KeyCheck::Valid(caller) => Ok(caller),
                KeyCheck::Refused(why) => Err(Error::Unauthorized(why)),
                KeyCheck::StoreUnavailable => Err(Error::unavailable(
                    "store",
                    "the store did not answer earlier in this request",
                )),
            };
        }
        let outcome = self.check_key(&presented).await;
        let memo = match &outcome {
            Ok(caller) => Some(KeyCheck::Valid(caller.clone())),
            Err(Error::Unauthorized(why)) => Some(KeyCheck::Refused(*why)),
            Err(Error::Unavailable { .. }) => Some(KeyCheck::StoreUnavailable),
            Err(_) => None,
        };
        if let Some(memo) = memo {
            context::set_key_check(&presented.0, memo);
        }
        outcome
    }

    async fn check_key(&self, presented: &KeyHash) -> Result<Caller> {
        let (key, stored) = self
            .store
            .find_api_key_by_hash(presented)
            .await?
            .ok_or(Error::Unauthorized(AuthFailure::Invalid))?;
        if !stored.matches(presented) {
            return Err(Error::Unauthorized(AuthFailure::Invalid));
        }
        let at = now();
        match key.status(at) {
            KeyStatus::Active => {}
            KeyStatus::Revoked => return Err(Error::Unauthorized(AuthFailure::Revoked)),
            KeyStatus::Expired => return Err(Error::Unauthorized(AuthFailure::Expired)),
        }
        self.key_usage.record(self.store.as_ref(), key.id, at).await;
        Ok(Caller {
            user_id: key.user_id,
            role: Role::User,
            credential: Credential::ApiKey {
                id: key.id,
                // Never more than the type permits, whatever was stored before
                // that rule existed.
                scopes: Scopes::new(
                    key.scopes
                        .iter()
                        .filter(|s| key.key_type.permitted_scopes().contains(*s))
                        .collect(),
                ),
                device: key.device_id,
            },
        })
    }
}
