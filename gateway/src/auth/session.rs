//! Session tokens: HS256 JWTs naming the user, their role and the session row
//! (`sid`), which the store can revoke.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use panoptes_shared::domain::user::Role;
use panoptes_shared::error::AuthFailure;
use panoptes_shared::ids::{SessionId, UserId};
use panoptes_shared::{Error, Result};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "panoptes";
const AUDIENCE: &str = "panoptes-session";

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

pub struct SessionTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl SessionTokens {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
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
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            Error::Unauthorized(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthFailure::Expired,
                _ => AuthFailure::Invalid,
            })
        })?;
        let c = data.claims;
        let invalid = || Error::Unauthorized(AuthFailure::Invalid);
        Ok(SessionClaims {
            sub: c.sub.parse().map_err(|_| invalid())?,
            sid: c.sid.parse().map_err(|_| invalid())?,
            role: Role::parse(&c.role).ok_or_else(invalid)?,
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
