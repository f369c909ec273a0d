//! The blob store: snapshot JPEGs under tenant-prefixed keys, handed to API
//! clients as presigned GET URLs (they never pass through the gateway).

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;
use crate::ids::{DeviceId, JobId, UserId};

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Store `bytes` at `key` (replacing what was there).
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()>;

    /// The blob at `key`, if there is one.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// A URL that lets whoever holds it GET the blob until `ttl` has passed.
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String>;

    /// `local` or `s3`, for logs and readiness.
    fn backend(&self) -> &'static str;
}

/// Where a device's snapshot of one frame lives: under its owner's prefix,
/// so a tenant's blobs can be listed, exported or deleted together. Kept
/// short: some S3-compatible servers turn keys into file names.
pub fn snapshot_key(user: UserId, device: DeviceId, captured_at_ms: u64, job: JobId) -> String {
    format!("{user}/snapshots/{device}/{captured_at_ms}-{job}.jpg")
}

/// The snapshot key inside a presigned URL of `user`'s snapshot (what an
/// `analysis_result` event carries), so a record can keep the key and sign
/// fresh URLs later. `None` when the URL holds no valid key of that user.
pub fn snapshot_key_in_url(url: &str, user: UserId) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let start = path.find(&format!("{user}/snapshots/"))?;
    let key = &path[start..];
    valid_key(key).then(|| key.to_owned())
}

/// Keys are relative paths of plain segments (`[A-Za-z0-9._-]`, not `.` or
/// `..`), so that no key escapes its prefix on any backend.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_keys_are_valid_and_tenant_prefixed() {
        let (u, d) = (UserId::new(), DeviceId::new());
        let k = snapshot_key(u, d, 1_700_000_000_123, JobId(uuid::Uuid::nil()));
        assert!(valid_key(&k), "{k}");
        assert!(k.starts_with(&format!("{u}/snapshots/{d}/")));
        let url = format!("http://127.0.0.1:8080/blobs/{k}?exp=1&sig=abc");
        assert_eq!(snapshot_key_in_url(&url, u).as_deref(), Some(k.as_str()));
        let s3 = format!("https://s3.example.com/bucket/{k}?X-Amz-Signature=x");
        assert_eq!(snapshot_key_in_url(&s3, u).as_deref(), Some(k.as_str()));
        assert_eq!(
            snapshot_key_in_url(&url, UserId::new()),
            None,
            "another tenant's key"
        );
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", "./a", "a/b c", "a\\b", "ü",
        ] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }
}
