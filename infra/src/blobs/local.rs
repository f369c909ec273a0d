//! Blobs as files under a directory. Writes go to a temporary file renamed
//! into place, so a reader never sees half a snapshot. Presigned URLs point at
//! the gateway (`<public_base>/blobs/<key>?expires=..&signature=..`), signed
//! with HMAC-SHA256 over the key and expiry; [`LocalBlobs::verify`] checks them.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use panoptes_shared::ports::blobs::{BlobStore, valid_key};
use panoptes_shared::{Error, Result};
use sha2::Sha256;

pub struct LocalBlobs {
    dir: PathBuf,
    public_base: String,
    secret: Vec<u8>,
}

fn bad_key(key: &str) -> Error {
    Error::internal(format!("invalid blob key {key:?}"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LocalBlobs {
    pub fn new(dir: impl Into<PathBuf>, public_base: impl Into<String>, secret: &[u8]) -> Self {
        Self {
            dir: dir.into(),
            public_base: public_base.into().trim_end_matches('/').to_owned(),
            secret: secret.to_vec(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if !valid_key(key) {
            return Err(bad_key(key));
        }
        Ok(self.dir.join(key))
    }

    fn mac(&self, key: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(format!("GET\n{key}\n{expires}").as_bytes());
        mac
    }

    /// Whether a presigned URL's parts are genuine and not expired.
    pub fn verify(&self, key: &str, expires: u64, signature: &str) -> bool {
        let Ok(sig) = hex_decode(signature) else {
            return false;
        };
        valid_key(key) && expires >= unix_now() && self.mac(key, expires).verify_slice(&sig).is_ok()
    }
}

fn hex_decode(s: &str) -> std::result::Result<Vec<u8>, ()> {
    if !s.len().is_multiple_of(2) {
        return Err(());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or(())?, 16).map_err(|_| ()))
        .collect()
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<()> {
        let path = self.path(key)?;
        let io = |e: std::io::Error| Error::unavailable("blob store", e);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::unavailable("blob store", e)),
        }
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        if !valid_key(key) {
            return Err(bad_key(key));
        }
        let expires = unix_now() + ttl.as_secs().max(1);
        let sig: String = self
            .mac(key, expires)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(format!(
            "{}/blobs/{key}?expires={expires}&signature={sig}",
            self.public_base
        ))
    }

    fn backend(&self) -> &'static str {
        "local"
    }
}
