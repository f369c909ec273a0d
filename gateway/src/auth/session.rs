//! Session tokens: HS256 JWTs naming the user, their role and the session row
//! (`sid`), which the store can revoke.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use panoptes_shared::domain::api_key::{Scope, Scopes};
use panoptes_shared::domain::user::Role;
use panoptes_shared::error::AuthFailure;
use panoptes_shared::ids::{SessionId, UserId};
use panoptes_shared::{Error, Result};
use serde::{Deserialize, Serialize};

use super::{Caller, Credential};

const ISSUER: &str = "panoptes";
const AUDIENCE: &str = "panoptes-session";
const TICKET_AUDIENCE: &str = "panoptes-sse-ticket";

#[derive(Debug, Serialize, Deserialize)]
struct TicketClaims {
    sub: String,
    scopes: String,
    /// The device a device key's ticket is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<String>,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    role: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// The verified content of a session token.
#[derive(Debug, Clone)]
pub struct SessionClaims {
    pub sub: UserId,
    pub sid: SessionId,
    pub role: Role,
}

/// Why a JWT was refused, as the API reports it.
fn refused(e: jsonwebtoken::errors::Error) -> Error {
    Error::Unauthorized(match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthFailure::Expired,
        _ => AuthFailure::Invalid,
    })
}

pub struct SessionTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ticket_validation: Validation,
}

impl SessionTokens {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 0;
        let mut ticket_validation = validation.clone();
        ticket_validation.set_audience(&[TICKET_AUDIENCE]);
        // A ticket in its last second is as good as expired.
        ticket_validation.reject_tokens_expiring_in_less_than = 1;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ticket_validation,
        }
    }

    pub fn issue(
        &self,
        user: UserId,
        session: SessionId,
        role: Role,
        issued: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<String> {
        let claims = Claims {
            sub: user.to_string(),
            sid: session.to_string(),
            role: role.as_str().to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: issued.timestamp(),
            exp: expires.timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)
    }

    pub fn verify(&self, token: &str) -> Result<SessionClaims> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(refused)?;
        let c = data.claims;
        let invalid = || Error::Unauthorized(AuthFailure::Invalid);
        Ok(SessionClaims {
            sub: c.sub.parse().map_err(|_| invalid())?,
            sid: c.sid.parse().map_err(|_| invalid())?,
            role: Role::parse(&c.role).ok_or_else(invalid)?,
        })
    }
}

impl SessionTokens {
    /// A short-lived SSE ticket (JWT) for `user` with `scopes`. Stateless: it
    /// cannot be revoked, hence the short lifetime.
    pub fn issue_ticket(
        &self,
        user: UserId,
        scopes: &[Scope],
        device: Option<panoptes_shared::ids::DeviceId>,
        ttl: std::time::Duration,
    ) -> Result<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(ttl).map_err(Error::internal)?;
        let claims = TicketClaims {
            sub: user.to_string(),
            scopes: Scopes::new(scopes.to_vec()).to_stored(),
            dev: device.map(|d| d.to_string()),
            iss: ISSUER.to_owned(),
            aud: TICKET_AUDIENCE.to_owned(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::internal)?;
        Ok((token, expires))
    }

    /// The caller a ticket stands for.
    pub fn verify_ticket(&self, ticket: &str) -> Result<Caller> {
        let data = decode::<TicketClaims>(ticket, &self.decoding, &self.ticket_validation)
            .map_err(refused)?;
        let user = data
            .claims
            .sub
            .parse()
            .map_err(|_| Error::Unauthorized(AuthFailure::Invalid))?;
        Ok(Caller {
            user_id: user,
            role: Role::User,
            credential: Credential::Ticket {
                scopes: Scopes::from_stored(&data.claims.scopes),
                device: data
                    .claims
                    .dev
                    .map(|d| d.parse())
                    .transpose()
                    .map_err(|_| Error::Unauthorized(AuthFailure::Invalid))?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn tokens_verify_with_their_key_only_and_expire() {
        let tokens = SessionTokens::new(b"0123456789abcdef0123456789abcdef");
        let (u, s) = (UserId::new(), SessionId::new());
        let now = Utc::now();
        let t = tokens
            .issue(u, s, Role::Admin, now, now + Duration::hours(1))
            .unwrap();
        let c = tokens.verify(&t).unwrap();
        assert_eq!((c.sub, c.sid, c.role), (u, s, Role::Admin));
        let other = SessionTokens::new(b"another-secret-another-secret-xx");
        assert!(matches!(
            other.verify(&t),
            Err(Error::Unauthorized(AuthFailure::Invalid))
        ));
        let old = tokens
            .issue(
                u,
                s,
                Role::User,
                now - Duration::hours(2),
                now - Duration::hours(1),
            )
            .unwrap();
        assert!(matches!(
            tokens.verify(&old),
            Err(Error::Unauthorized(AuthFailure::Expired))
        ));
        assert!(matches!(
            tokens.verify("garbage"),
            Err(Error::Unauthorized(AuthFailure::Invalid))
        ));
    }
}

#[cfg(test)]
mod ticket_tests {
    use super::*;

    #[test]
    fn tickets_carry_their_scopes_and_are_not_session_tokens() {
        let tokens = SessionTokens::new(b"0123456789abcdef0123456789abcdef");
        let user = UserId::new();
        let (t, _) = tokens
            .issue_ticket(
                user,
                &[Scope::DeviceRead],
                None,
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        let caller = tokens.verify_ticket(&t).unwrap();
        assert_eq!(caller.user_id, user);
        assert!(caller.require(Scope::DeviceRead).is_ok());
        assert!(caller.require(Scope::AnalyticsRead).is_err());
        assert!(
            tokens.verify(&t).is_err(),
            "a ticket is not a session token"
        );
        let session = tokens
            .issue(
                user,
                SessionId::new(),
                Role::User,
                Utc::now(),
                Utc::now() + chrono::Duration::hours(1),
            )
            .unwrap();
        assert!(
            tokens.verify_ticket(&session).is_err(),
            "a session token is not a ticket"
        );
    }
}
