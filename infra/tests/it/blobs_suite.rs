//! The blob store's behaviour, on a local directory and on a real S3
//! protocol server (s3s-fs, started by the test script:
//! `PANOPTES_TEST_S3_ENDPOINT`, `PANOPTES_TEST_S3_ACCESS_KEY`,
//! `PANOPTES_TEST_S3_SECRET_KEY`).

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::blobs::{LocalBlobs, S3Blobs, S3Options};
use panoptes_shared::ids::{DeviceId, JobId, UserId};
use panoptes_shared::ports::blobs::{BlobStore, snapshot_key};
use uuid::Uuid;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn s3_blobs() -> S3Blobs {
    let blobs = S3Blobs::connect(S3Options {
        // Short: s3s-fs makes file names of base64(bucket) + base64(key).
        bucket: format!("pt-{}", &Uuid::new_v4().simple().to_string()[..12]),
        region: "us-east-1".to_owned(),
        endpoint: Some(env("PANOPTES_TEST_S3_ENDPOINT", "http://127.0.0.1:8014")),
        path_style: true,
        access_key: Some(env("PANOPTES_TEST_S3_ACCESS_KEY", "panoptes-test")),
        secret_key: Some(env("PANOPTES_TEST_S3_SECRET_KEY", "panoptes-test-secret").into()),
    })
    .await
    .unwrap();
    blobs
        .ensure_bucket()
        .await
        .expect("an S3 server must be running for these tests (bash .ci/test.sh starts s3s-fs)");
    blobs
}

async fn s3() -> Arc<dyn BlobStore> {
    Arc::new(s3_blobs().await)
}

fn local_blobs() -> LocalBlobs {
    let dir = std::env::temp_dir().join(format!("panoptes-blobs-{}", Uuid::new_v4()));
    LocalBlobs::new(dir, "http://gateway.test", b"test signing secret")
}

async fn local() -> Arc<dyn BlobStore> {
    Arc::new(local_blobs())
}

fn key() -> String {
    snapshot_key(
        UserId::new(),
        DeviceId::new(),
        1_700_000_000_000,
        JobId::new(),
    )
}

async fn blobs_round_trip_and_are_replaced(blobs: Arc<dyn BlobStore>) {
    let k = key();
    assert_eq!(
        blobs.get(&k).await.unwrap(),
        None,
        "missing is None, not an error"
    );
    let jpeg = vec![0xff, 0xd8, 0x00, 0x10, 0x80, 0xff, 0xd9];
    blobs.put(&k, jpeg.clone(), "image/jpeg").await.unwrap();
    assert_eq!(blobs.get(&k).await.unwrap(), Some(jpeg));
    blobs.put(&k, vec![1, 2, 3], "image/jpeg").await.unwrap();
    assert_eq!(blobs.get(&k).await.unwrap(), Some(vec![1, 2, 3]));
}

async fn keys_that_could_escape_their_prefix_are_refused(blobs: Arc<dyn BlobStore>) {
    for bad in ["../etc/passwd", "u/../../x", "/abs", "a//b", ""] {
        assert!(
            blobs.put(bad, vec![1], "image/jpeg").await.is_err(),
            "{bad:?}"
        );
        assert!(blobs.get(bad).await.is_err(), "{bad:?}");
        assert!(
            blobs
                .presign_get(bad, Duration::from_secs(60))
                .await
                .is_err(),
            "{bad:?}"
        );
    }
}

macro_rules! for_each_store {
    ($($test:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test] async fn $test() { super::$test(super::local().await).await })*
        }
        mod s3 {
            $(#[tokio::test] async fn $test() { super::$test(super::s3().await).await })*
        }
    };
}

for_each_store!(
    blobs_round_trip_and_are_replaced,
    keys_that_could_escape_their_prefix_are_refused,
);

#[tokio::test]
async fn an_s3_presigned_url_serves_the_blob_and_a_tampered_one_is_refused() {
    let blobs = s3_blobs().await;
    let k = key();
    blobs
        .put(&k, b"jpeg bytes".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let url = blobs
        .presign_get(&k, Duration::from_secs(300))
        .await
        .unwrap();
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"jpeg bytes");
    let other = snapshot_key(UserId::new(), DeviceId::new(), 1, JobId::new());
    blobs
        .put(&other, b"someone else's".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let forged = url.replace(&k, &other);
    assert_eq!(
        reqwest::get(&forged).await.unwrap().status(),
        403,
        "a URL signed for one key does not open another"
    );
}

#[tokio::test]
async fn a_local_presigned_url_verifies_until_it_expires_and_only_for_its_key() {
    let blobs = local_blobs();
    let k = key();
    let url = blobs
        .presign_get(&k, Duration::from_secs(300))
        .await
        .unwrap();
    let (path, query) = url
        .strip_prefix("http://gateway.test/blobs/")
        .unwrap()
        .split_once('?')
        .unwrap();
    assert_eq!(path, k);
    let mut expires = 0;
    let mut sig = "";
    for pair in query.split('&') {
        match pair.split_once('=').unwrap() {
            ("expires", v) => expires = v.parse().unwrap(),
            ("signature", v) => sig = v,
            _ => {}
        }
    }
    assert!(blobs.verify(&k, expires, sig));
    assert!(!blobs.verify(&key(), expires, sig), "another key");
    assert!(!blobs.verify(&k, expires + 1, sig), "another expiry");
    assert!(
        !blobs.verify(&k, expires, &flip_first_hex_digit(sig)),
        "a changed signature"
    );
    assert!(!blobs.verify(&k, expires, "zz"), "not hex");
    let past = LocalBlobs::new(
        std::env::temp_dir(),
        "http://gateway.test",
        b"test signing secret",
    );
    assert!(!past.verify(&k, 1, sig), "expired");
}

/// The same signature with its first digit changed: a signature always has one,
/// where a given letter (say `a`) may not appear at all.
fn flip_first_hex_digit(sig: &str) -> String {
    let first = if sig.starts_with('0') { '1' } else { '0' };
    std::iter::once(first).chain(sig.chars().skip(1)).collect()
}
