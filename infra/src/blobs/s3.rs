//! Blobs in an S3 bucket (AWS, or any S3-compatible server: endpoint and
//! path-style addressing are configurable). Presigned GET URLs come from the
//! SDK (SigV4), so clients fetch snapshots from S3 directly.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use panoptes_shared::ports::blobs::{BlobStore, valid_key};
use panoptes_shared::{Error, Result};
use secrecy::{ExposeSecret, SecretString};

pub struct S3Options {
    pub bucket: String,
    pub region: String,
    /// Empty: AWS. Otherwise e.g. `http://127.0.0.1:8014`.
    pub endpoint: Option<String>,
    pub path_style: bool,
    /// Static credentials; without them the SDK's default chain is used
    /// (environment, profile, instance or task role).
    pub access_key: Option<String>,
    pub secret_key: Option<SecretString>,
}

pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::unavailable("s3", e)
}

impl S3Blobs {
    pub async fn connect(opts: S3Options) -> Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(opts.region.clone()));
        if let (Some(ak), Some(sk)) = (&opts.access_key, &opts.secret_key) {
            loader = loader.credentials_provider(Credentials::new(
                ak,
                sk.expose_secret(),
                None,
                None,
                "panoptes-config",
            ));
        }
        let shared = loader.load().await;
        let mut conf = aws_sdk_s3::config::Builder::from(&shared).force_path_style(opts.path_style);
        if let Some(endpoint) = &opts.endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(conf.build()),
            bucket: opts.bucket,
        })
    }

    /// Create the bucket if it does not exist (first run, tests).
    pub async fn ensure_bucket(&self) -> Result<()> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(())
    }

    fn check(key: &str) -> Result<()> {
        if valid_key(key) {
            Ok(())
        } else {
            Err(Error::internal(format!("invalid blob key {key:?}")))
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        Self::check(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Self::check(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = e.into_service_error();
                if e.is_no_such_key() {
                    return Ok(None);
                }
                return Err(unavailable(e));
            }
        };
        let body = out.body.collect().await.map_err(unavailable)?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        Self::check(key)?;
        let cfg = PresigningConfig::expires_in(ttl).map_err(unavailable)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(cfg)
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(req.uri().to_string())
    }

    fn backend(&self) -> &'static str {
        "s3"
    }
}
