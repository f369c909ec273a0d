//! AES-256-GCM sealing of secrets at rest. Output: base64(nonce || ciphertext+tag)
//! with a fresh random 96-bit nonce per seal; a `v1.` prefix leaves room for
//! key rotation.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use panoptes_shared::domain::device::Sealed;
use panoptes_shared::ports::SecretCipher;
use panoptes_shared::{Error, Result};
use rand::RngCore;

const VERSION: &str = "v1.";
const NONCE_LEN: usize = 12;

pub struct AesGcmCipher {
    cipher: Aes256Gcm,
}

impl AesGcmCipher {
    /// From a base64-encoded 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| "credentials key is not valid base64".to_string())?;
        if bytes.len() != 32 {
            return Err(format!(
                "credentials key must be 32 bytes, got {}",
                bytes.len()
            ));
        }
        Ok(Self {
            cipher: Aes256Gcm::new_from_slice(&bytes).map_err(|e| e.to_string())?,
        })
    }

    /// A new random key, base64-encoded.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }
}

impl SecretCipher for AesGcmCipher {
    fn seal(&self, plaintext: &[u8]) -> Result<Sealed> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), plaintext)
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(Sealed(format!("{VERSION}{}", STANDARD.encode(out))))
    }

    fn open(&self, sealed: &Sealed) -> Result<Vec<u8>> {
        let bad = || Error::internal("sealed secret cannot be opened (wrong key or tampered)");
        let raw = sealed.0.strip_prefix(VERSION).ok_or_else(bad)?;
        let bytes = STANDARD.decode(raw).map_err(|_| bad())?;
        if bytes.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| bad())?;
        self.cipher
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tampering_is_detected() {
        let c = AesGcmCipher::from_base64(&AesGcmCipher::generate_key()).unwrap();
        let a = c.seal(b"hunter2").unwrap();
        let b = c.seal(b"hunter2").unwrap();
        assert_ne!(a, b, "fresh nonce per seal");
        assert!(!a.0.contains("hunter2"));
        assert_eq!(c.open(&a).unwrap(), b"hunter2");
        let mut t = a.0.clone().into_bytes();
        let last = t.len() - 2;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        assert!(c.open(&Sealed(String::from_utf8(t).unwrap())).is_err());
        let other = AesGcmCipher::from_base64(&AesGcmCipher::generate_key()).unwrap();
        assert!(other.open(&a).is_err());
    }

    #[test]
    fn short_or_non_base64_keys_are_refused() {
        assert!(AesGcmCipher::from_base64("not base64!").is_err());
        assert!(AesGcmCipher::from_base64(&STANDARD.encode([0u8; 16])).is_err());
    }
}
