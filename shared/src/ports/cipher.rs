//! Encryption at rest for secrets the platform must be able to read back
//! (RTSP passwords and tokens).

use crate::domain::device::{RtspCredentials, Sealed};
use crate::error::{Error, Result};

pub trait SecretCipher: Send + Sync + 'static {
    /// Encrypt with a fresh nonce; the output is self-contained (nonce + ciphertext).
    fn seal(&self, plaintext: &[u8]) -> Result<Sealed>;
    /// Decrypt and authenticate; tampered or foreign ciphertext is an error.
    fn open(&self, sealed: &Sealed) -> Result<Vec<u8>>;
}

/// Open a device's stored RTSP credentials (empty when there are none).
pub fn open_credentials(
    cipher: &dyn SecretCipher,
    sealed: Option<&Sealed>,
) -> Result<RtspCredentials> {
    match sealed {
        None => Ok(RtspCredentials::default()),
        Some(s) => serde_json::from_slice(&cipher.open(s)?).map_err(Error::internal),
    }
}

/// Open a webhook's sealed signing secret.
pub fn open_signing_secret(
    cipher: &dyn SecretCipher,
    sealed: &Sealed,
) -> Result<crate::domain::webhook::SigningSecret> {
    let text = String::from_utf8(cipher.open(sealed)?).map_err(Error::internal)?;
    crate::domain::webhook::SigningSecret::parse(&text).map_err(Error::internal)
}

/// The secrets that sign `webhook`'s deliveries at `now`: the current one,
/// and the previous one during its grace period after a regeneration.
pub fn signing_secrets(
    cipher: &dyn SecretCipher,
    webhook: &crate::domain::webhook::Webhook,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<crate::domain::webhook::SigningSecret>> {
    let mut out = vec![open_signing_secret(cipher, &webhook.secret)?];
    if let (Some(prev), Some(until)) = (&webhook.previous_secret, webhook.previous_secret_until)
        && until > now
    {
        out.push(open_signing_secret(cipher, prev)?);
    }
    Ok(out)
}
