//! Encryption at rest for secrets the platform must be able to read back
//! (RTSP passwords and tokens).

use crate::domain::device::Sealed;
use crate::error::Result;

pub trait SecretCipher: Send + Sync + 'static {
    /// Encrypt with a fresh nonce; the output is self-contained (nonce + ciphertext).
    fn seal(&self, plaintext: &[u8]) -> Result<Sealed>;
    /// Decrypt and authenticate; tampered or foreign ciphertext is an error.
    fn open(&self, sealed: &Sealed) -> Result<Vec<u8>>;
}
