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
