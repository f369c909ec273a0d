//! API keys: types, prefixes, scopes and the key material itself.
//!
//! A key is `<prefix><40 base62 chars>` (about 238 bits of randomness). Only
//! its SHA-256 is stored; the secret is shown once, on create and on rotate.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::domain::device::string_enum;
use crate::ids::{ApiKeyId, DeviceId, UserId};

/// Every key starts with this; session tokens never do.
pub const KEY_MARK: &str = "syncai_";
const SECRET_LEN: usize = 40;
/// How many characters of a key are kept in clear to recognise it in lists.
const DISPLAY_PREFIX_LEN: usize = 4;

string_enum!(
    /// Permission carried by an API key (session tokens have them all).
    Scope {
        DeviceRead = "device:read",
        DeviceWrite = "device:write",
        DeviceHeartbeat = "device:heartbeat",
        DeviceSync = "device:sync",
        SceneRead = "scene:read",
        SceneWrite = "scene:write",
        TaskRead = "task:read",
        TaskWrite = "task:write",
        AnalyticsRead = "analytics:read",
        AlertRead = "alert:read",
        AlertWrite = "alert:write",
        WebhookRead = "webhook:read",
        WebhookWrite = "webhook:write",
        BillingRead = "billing:read",
    }
);

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sorted, de-duplicated set of scopes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(mut scopes: Vec<Scope>) -> Self {
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// Parse stored scope strings, skipping any that a newer version removed.
    pub fn from_stored(raw: &str) -> Self {
        Self::new(raw.split(',').filter_map(Scope::parse).collect())
    }

    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.binary_search(&scope).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn all() -> Self {
        Self::new(Scope::ALL.to_vec())
    }
}

string_enum!(
    /// API-key type; decides the key's prefix and default scopes.
    KeyType { Device = "device", Personal = "personal", Service = "service" }
);

impl KeyType {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Device => "syncai_dev_",
            Self::Personal => "syncai_pat_",
            Self::Service => "syncai_svc_",
        }
    }

    /// The documented defaults when `scopes` is omitted on create.
    /// `personal`: the full business scope (there is no billing/usage write scope).
    /// `service` (not captured in the product docs): read everything a backend
    /// integration consumes, plus task and alert control, but no device or scene edits.
    pub fn default_scopes(self) -> Scopes {
        use Scope::*;
        match self {
            Self::Device => Scopes::new(vec![DeviceRead, DeviceHeartbeat, DeviceSync, TaskRead]),
            Self::Personal => Scopes::all(),
            Self::Service => Scopes::new(vec![
                DeviceRead,
                SceneRead,
                TaskRead,
                TaskWrite,
                AnalyticsRead,
                AlertRead,
                AlertWrite,
                WebhookRead,
                BillingRead,
            ]),
        }
    }
}

impl KeyType {
    /// The scopes a key of this type may carry at most: a device key (on a
    /// box in the field) can report and read, never change anything.
    pub fn permitted_scopes(self) -> Scopes {
        match self {
            Self::Device => self.default_scopes(),
            Self::Personal | Self::Service => Scopes::all(),
        }
    }

    /// Keys of this type are bound to one device.
    pub fn bound_to_device(self) -> bool {
        matches!(self, Self::Device)
    }
}

string_enum!(
    /// Whether a key can be used.
    KeyStatus { Active = "active", Expired = "expired", Revoked = "revoked" }
);

/// A stored API key (without its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub key_type: KeyType,
    /// The first characters of the key (type prefix + a few more), to recognise it.
    pub display_prefix: String,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The one device a `device` key works for (always set for that type).
    pub device_id: Option<DeviceId>,
}

impl ApiKey {
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
}

/// Freshly generated key material: the secret (shown once) and what is stored.
pub struct GeneratedKey {
    pub secret: secrecy::SecretString,
    pub hash: KeyHash,
    pub display_prefix: String,
}

impl GeneratedKey {
    pub fn new(key_type: KeyType) -> Self {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut rng = rand::rng();
        let body: String = (0..SECRET_LEN)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        let secret = format!("{}{body}", key_type.prefix());
        let display_prefix = secret[..key_type.prefix().len() + DISPLAY_PREFIX_LEN].to_owned();
        Self {
            hash: KeyHash::of(&secret),
            secret: secret.into(),
            display_prefix,
        }
    }
}

/// SHA-256 of a key, hex encoded: what the store indexes. Keys carry enough
/// entropy that a slow hash adds nothing but latency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHash(pub String);

impl KeyHash {
    pub fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Constant-time comparison, so a lookup cannot leak how much of a hash matched.
    pub fn matches(&self, other: &KeyHash) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// Whether a bearer token looks like an API key (vs. a session token).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(KEY_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generated_keys_carry_their_type_prefix_and_hash_to_their_stored_hash() {
        for t in [KeyType::Device, KeyType::Personal, KeyType::Service] {
            let k = GeneratedKey::new(t);
            let s = k.secret.expose_secret();
            assert!(s.starts_with(t.prefix()));
            assert_eq!(s.len(), t.prefix().len() + SECRET_LEN);
            assert!(s.starts_with(&k.display_prefix));
            assert!(KeyHash::of(s).matches(&k.hash));
            assert!(is_api_key(s));
        }
    }

    #[test]
    fn scopes_round_trip_through_storage() {
        let s = Scopes::new(vec![Scope::TaskRead, Scope::DeviceRead, Scope::TaskRead]);
        assert_eq!(Scopes::from_stored(&s.to_stored()), s);
        assert_eq!(s.iter().count(), 2);
    }
}
