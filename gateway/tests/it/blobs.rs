//! `/blobs/...`: presigned snapshot links of the local blob store, served by
//! the gateway; the signature is the credential.

use panoptes_shared::ids::{DeviceId, JobId, UserId};
use panoptes_shared::ports::blobs::snapshot_key;
use reqwest::Method;
use std::time::Duration;

use crate::helpers::{Backend, spawn_with};

#[tokio::test]
async fn a_presigned_snapshot_link_serves_the_jpeg_until_tampered_with() {
    let app = spawn_with(Backend::Embedded, "unused").await;
    let key = snapshot_key(
        UserId::new(),
        DeviceId::new(),
        1_700_000_000_000,
        JobId::new(),
    );
    let jpeg = b"\xff\xd8 pretend jpeg \xff\xd9".to_vec();
    app.state
        .blobs
        .store
        .put(&key, jpeg.clone(), "image/jpeg")
        .await
        .unwrap();
    let url = app
        .state
        .blobs
        .store
        .presign_get(&key, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        url.starts_with(&app.base),
        "the link points at this gateway: {url}"
    );
    let got = reqwest::get(&url).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.bytes().await.unwrap().as_ref(), jpeg.as_slice());

    let path = url.strip_prefix(&app.base).unwrap();
    let (bare, query) = path.split_once('?').unwrap();
    let tampered = format!("{bare}?{}", query.replace("expires=", "expires=9"));
    app.call(Method::GET, &tampered, None, None)
        .await
        .expect_error(403, "FORBIDDEN");
    app.call(Method::GET, bare, None, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    let other = snapshot_key(UserId::new(), DeviceId::new(), 1, JobId::new());
    let borrowed = format!("/blobs/{other}?{query}");
    app.call(Method::GET, &borrowed, None, None)
        .await
        .expect_error(403, "FORBIDDEN");
    // Signed, but gone (retention removed it): 404.
    let gone = snapshot_key(UserId::new(), DeviceId::new(), 2, JobId::new());
    let gone_url = app
        .state
        .blobs
        .store
        .presign_get(&gone, Duration::from_secs(60))
        .await
        .unwrap();
    let status = reqwest::get(&gone_url).await.unwrap().status();
    assert_eq!(status, 404);
}
