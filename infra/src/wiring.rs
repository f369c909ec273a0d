//! The adapters a process uses, chosen by config: Redis-backed when
//! `redis.url` is set, in-process otherwise; blobs in a directory or S3.
//! The gateway and the workers build theirs here ([`connect`]), so `up` (one
//! process) and a distributed deployment wire the same ports the same way.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use panoptes_shared::config::{BlobsBackend, Config, StateBackend, VlmProviderKind};
use panoptes_shared::ports::jobs::{InsightJob, QueuePolicy};
use panoptes_shared::ports::{
    BlobStore, DetectionLog, EventBus, JobQueue, Leases, NodeRegistry, RateLimiter, SecretCipher,
    Store, StreamSlots, VlmProvider,
};
use secrecy::{ExposeSecret, SecretString};

use crate::blobs::{LocalBlobs, S3Blobs, S3Options};
use crate::bus::{MemoryBus, RedisBus};
use crate::camera::{Dialer, RtspProbe, Tls};
use crate::coord::{MemoryLeases, MemoryNodes, RedisLeases, RedisNodes};
use crate::detections::{MemoryDetectionLog, RedisDetectionLog};
use crate::jobs::{JobStreams, MemoryJobQueue, RedisJobQueue};
use crate::rate_limit::{MemoryRateLimiter, RedisRateLimiter};
use crate::redis_conn::{RedisConn, RedisTimeouts};
use crate::slots::{MemorySlots, RedisSlots};
use crate::store::{SqlStore, StoreOptions};

/// Everything a process of the platform connects to, as configured: the
/// store (migrated), the shared-state backends, the blob store and the
/// secrets. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    pub store: Arc<dyn Store>,
    pub backends: Backends,
    pub blobs: Blobs,
    /// Opens devices' RTSP credentials.
    pub cipher: Arc<dyn SecretCipher>,
    /// Signs session tokens (`auth.jwt_secret`, or the generated one).
    pub session_secret: Arc<SecretString>,
}

/// Connect the store (and migrate it), the backends and the blob store;
/// open the secrets ([`secrets`]).
pub async fn connect(cfg: &Config) -> anyhow::Result<Platform> {
    let store = connect_store(cfg).await?;
    let backends = Backends::connect(cfg).await?;
    let secrets = secrets(cfg)?;
    let blobs = blobs(
        cfg,
        &blob_signing_key(secrets.session_secret.expose_secret().as_bytes()),
    )
    .await?;
    let cipher = crate::crypto::AesGcmCipher::from_base64(secrets.credentials_key.expose_secret())
        .map_err(|e| anyhow::anyhow!("auth.credentials_key: {e}"))?;
    Ok(Platform {
        store: Arc::new(store),
        backends,
        blobs,
        cipher: Arc::new(cipher),
        session_secret: Arc::new(secrets.session_secret),
    })
}

/// The secrets a node needs.
pub struct Secrets {
    pub session_secret: SecretString,
    pub credentials_key: SecretString,
}

/// `auth.jwt_secret` and `auth.credentials_key`; either one left empty is
/// generated once and kept in `<data.dir>/secrets.toml` (one node only: a
/// deployment of several sets both).
pub fn secrets(cfg: &Config) -> anyhow::Result<Secrets> {
    let (jwt, key) = (
        cfg.auth.jwt_secret.expose_secret(),
        cfg.auth.credentials_key.expose_secret(),
    );
    if !jwt.is_empty() && !key.is_empty() {
        return Ok(Secrets {
            session_secret: jwt.into(),
            credentials_key: key.into(),
        });
    }
    let generated = crate::secrets_file::load_or_create(&cfg.data.dir).with_context(|| {
        format!(
            "cannot read or create secrets in {}",
            cfg.data.dir.display()
        )
    })?;
    let pick = |configured: &str, generated: String| {
        SecretString::from(if configured.is_empty() {
            generated
        } else {
            configured.to_owned()
        })
    };
    Ok(Secrets {
        session_secret: pick(jwt, generated.jwt_secret),
        credentials_key: pick(key, generated.credentials_key),
    })
}

/// Every shared-state port except the relational store.
#[derive(Clone)]
pub struct Backends {
    /// In this process, or on Redis.
    pub kind: StateBackend,
    pub limiter: Arc<dyn RateLimiter>,
    pub bus: Arc<dyn EventBus>,
    pub slots: Arc<dyn StreamSlots>,
    pub jobs: Arc<dyn JobQueue>,
    /// Insight jobs ([`insight_queue`]): one per process, shared by whoever
    /// enqueues and the notify role that pulls (in-process, two queues made
    /// apart would never meet).
    pub insight_jobs: Arc<dyn JobQueue<InsightJob>>,
    pub detections: Arc<dyn DetectionLog>,
    pub leases: Arc<dyn Leases>,
    pub nodes: Arc<dyn NodeRegistry>,
}

/// Connect the store (and migrate it) as configured.
pub async fn connect_store(cfg: &Config) -> anyhow::Result<SqlStore> {
    let store = SqlStore::connect(&StoreOptions {
        url: cfg.store_url(),
        max_connections: cfg.store.max_connections,
        acquire_timeout: Duration::from_secs(cfg.store.acquire_timeout_seconds),
    })
    .await
    .context("cannot connect to the store (store.url)")?;
    store
        .migrate()
        .await
        .context("cannot apply store migrations")?;
    Ok(store)
}

pub fn queue_policy(cfg: &Config) -> QueuePolicy {
    QueuePolicy {
        shards: cfg.jobs.shards,
        max_len: cfg.jobs.max_len,
        visibility: Duration::from_secs(cfg.jobs.visibility_seconds),
        max_attempts: cfg.jobs.max_attempts,
        max_age: Duration::from_millis(cfg.jobs.max_age_ms),
    }
}

/// The insight-job queue's policy (`insights.*`).
pub fn insight_queue_policy(cfg: &Config) -> QueuePolicy {
    let i = &cfg.insights;
    QueuePolicy {
        shards: i.shards,
        max_len: i.max_len,
        visibility: Duration::from_millis(i.visibility_ms),
        max_attempts: i.max_attempts,
        max_age: Duration::from_millis(i.max_age_ms),
    }
}

/// The insight-job queue, chosen as the frame-job queue is: on Redis streams
/// (group `notify`, [`JobStreams::INSIGHTS`]) when `redis.url` is set (a
/// connection of its own), in this process otherwise. Each call makes a new
/// queue: in-process, two of them never meet, so a process takes one, as
/// [`Backends::insight_jobs`] (made by [`Backends::connect`]) is.
pub async fn insight_queue(cfg: &Config) -> anyhow::Result<Arc<dyn JobQueue<InsightJob>>> {
    match cfg.redis_url() {
        Some(url) => {
            let (client, conn) = redis_connection(cfg, url).await?;
            insight_queue_on(cfg, Some((&client, &conn))).await
        }
        None => insight_queue_on(cfg, None).await,
    }
}

/// [`insight_queue`] on a Redis connection already open (or in-process).
async fn insight_queue_on(
    cfg: &Config,
    redis: Option<(&redis::Client, &RedisConn)>,
) -> anyhow::Result<Arc<dyn JobQueue<InsightJob>>> {
    let policy = insight_queue_policy(cfg);
    Ok(match redis {
        Some((client, conn)) => Arc::new(
            RedisJobQueue::<InsightJob>::connect_to(
                client,
                conn.clone(),
                cfg.redis.key_prefix.clone(),
                JobStreams::INSIGHTS,
                policy,
            )
            .await
            .context("cannot set up the insight-job streams on Redis")?,
        ),
        None => Arc::new(MemoryJobQueue::<InsightJob>::new(policy)),
    })
}

/// The client for `redis.url` (`url`) and the connection the commands share.
async fn redis_connection(cfg: &Config, url: &str) -> anyhow::Result<(redis::Client, RedisConn)> {
    let client = redis_client(cfg, url)?;
    let timeouts = RedisTimeouts {
        command: Duration::from_millis(cfg.redis.command_timeout_ms),
        connect: Duration::from_millis(cfg.redis.connect_timeout_ms),
    };
    let conn = RedisConn::connect(client.clone(), timeouts)
        .await
        .context("cannot connect to Redis (redis.url)")?;
    Ok((client, conn))
}

/// The client for `url` (`redis.url`): plain, or TLS (`rediss://`) with the
/// server verified against the system roots or `redis.tls_ca_file`.
pub fn redis_client(cfg: &Config, url: &str) -> anyhow::Result<redis::Client> {
    let ca = &cfg.redis.tls_ca_file;
    if ca.as_os_str().is_empty() {
        return redis::Client::open(url).context("redis.url is not a valid Redis URL");
    }
    anyhow::ensure!(
        url.starts_with("rediss://"),
        "redis.tls_ca_file is set but redis.url is not a rediss:// (TLS) URL"
    );
    let pem = std::fs::read(ca)
        .with_context(|| format!("cannot read redis.tls_ca_file {}", ca.display()))?;
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )
    .context("redis.url or redis.tls_ca_file is not usable")
}

impl Backends {
    pub async fn connect(cfg: &Config) -> anyhow::Result<Self> {
        let prefix = cfg.redis.key_prefix.clone();
        let policy = queue_policy(cfg);
        Ok(match cfg.redis_url() {
            Some(url) => {
                let (client, conn) = redis_connection(cfg, url).await?;
                let bus = RedisBus::connect(client.clone(), conn.clone(), prefix.clone())
                    .await
                    .context("cannot subscribe to Redis pub/sub")?;
                let jobs = RedisJobQueue::connect(&client, conn.clone(), prefix.clone(), policy)
                    .await
                    .context("cannot set up the frame-job streams on Redis")?;
                let insight_jobs = insight_queue_on(cfg, Some((&client, &conn))).await?;
                let slots = RedisSlots::connect(client.clone(), conn.clone(), prefix.clone())
                    .await
                    .context("cannot subscribe to stream takeovers on Redis")?;
                Self {
                    kind: StateBackend::Redis,
                    limiter: Arc::new(RedisRateLimiter::new(conn.clone(), prefix.clone())),
                    bus: Arc::new(bus),
                    slots: Arc::new(slots),
                    jobs: Arc::new(jobs),
                    insight_jobs,
                    detections: Arc::new(RedisDetectionLog::new(conn.clone(), prefix.clone())),
                    leases: Arc::new(RedisLeases::new(conn.clone(), prefix.clone())),
                    nodes: Arc::new(RedisNodes::new(conn, prefix)),
                }
            }
            None => Self::in_process(cfg),
        })
    }

    /// The in-process adapters (one node; nothing to connect to).
    pub fn in_process(cfg: &Config) -> Self {
        Self {
            kind: StateBackend::Memory,
            limiter: Arc::new(MemoryRateLimiter::new()),
            bus: Arc::new(MemoryBus::new()),
            slots: Arc::new(MemorySlots::new()),
            jobs: Arc::new(MemoryJobQueue::new(queue_policy(cfg))),
            insight_jobs: Arc::new(MemoryJobQueue::<InsightJob>::new(insight_queue_policy(cfg))),
            detections: Arc::new(MemoryDetectionLog::new()),
            leases: Arc::new(MemoryLeases::new()),
            nodes: Arc::new(MemoryNodes::new()),
        }
    }
}

/// The blob store, and the local adapter when that is the one (the gateway
/// serves its presigned URLs).
#[derive(Clone)]
pub struct Blobs {
    pub store: Arc<dyn BlobStore>,
    pub local: Option<Arc<LocalBlobs>>,
}

/// The key that signs local presigned URLs, derived from the session secret
/// (shared by every node of a deployment) for this one purpose.
pub fn blob_signing_key(session_secret: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"panoptes blob urls v1\0");
    h.update(session_secret);
    h.finalize().to_vec()
}

/// The blob store from config. `signing_key` signs local presigned URLs.
pub async fn blobs(cfg: &Config, signing_key: &[u8]) -> anyhow::Result<Blobs> {
    let b = &cfg.blobs;
    if b.backend == BlobsBackend::S3 {
        let nonempty = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        let s3 = S3Blobs::connect(S3Options {
            bucket: b.s3_bucket.clone(),
            region: b.s3_region.clone(),
            endpoint: nonempty(&b.s3_endpoint),
            path_style: b.s3_path_style,
            access_key: nonempty(b.s3_access_key.expose_secret()),
            secret_key: nonempty(b.s3_secret_key.expose_secret()).map(Into::into),
        })
        .await
        .context("cannot set up the S3 blob store (blobs.s3_*)")?;
        // Deployments create the bucket (terraform); a development server may
        // not have it yet. Not fatal: credentials may rightly forbid creating.
        if let Err(e) = s3.ensure_bucket().await {
            tracing::warn!(bucket = %b.s3_bucket, error = %e, "snapshot bucket not confirmed");
        }
        return Ok(Blobs {
            store: Arc::new(s3),
            local: None,
        });
    }
    let base = if b.public_base_url.is_empty() {
        format!("http://{}", cfg.server.listen)
    } else {
        b.public_base_url.clone()
    };
    let local = Arc::new(LocalBlobs::new(cfg.blobs_dir(), base, signing_key));
    Ok(Blobs {
        store: local.clone(),
        local: Some(local),
    })
}

/// The outbound guard every customer-directed connection goes through: the
/// system resolver, non-public targets refused unless `outbound.allow_private`.
pub fn outbound_guard(cfg: &Config) -> panoptes_shared::outbound::OutboundGuard {
    panoptes_shared::outbound::OutboundGuard::new(
        Arc::new(crate::resolver::SystemResolver),
        cfg.outbound.allow_private,
    )
}

/// TLS for `rtsps://` cameras: the system roots plus `ingest.tls_ca_file`.
pub fn camera_tls(cfg: &Config) -> anyhow::Result<Tls> {
    let ca = &cfg.ingest.tls_ca_file;
    Tls::new((!ca.as_os_str().is_empty()).then_some(ca.as_path())).map_err(|e| anyhow::anyhow!(e))
}

/// How cameras are reached (ingest, probes, health checks): through the
/// outbound guard (`outbound.allow_private`), with [`camera_tls`].
pub fn camera_dialer(cfg: &Config) -> anyhow::Result<Dialer> {
    Ok(Dialer::new(Arc::new(outbound_guard(cfg)), camera_tls(cfg)?))
}

/// The probe that needs no video codec ([`RtspProbe`]).
pub fn rtsp_probe(cfg: &Config, platform: &Platform) -> anyhow::Result<RtspProbe> {
    Ok(RtspProbe::new(platform.cipher.clone(), camera_dialer(cfg)?))
}

/// How webhooks are sent: through the outbound guard, TLS trusting the
/// system roots plus `webhooks.tls_ca_file`.
pub fn webhook_sender(cfg: &Config) -> anyhow::Result<crate::webhooks::HttpWebhookSender> {
    let ca = &cfg.webhooks.tls_ca_file;
    let tls = Tls::trusting(
        "webhooks.tls_ca_file",
        (!ca.as_os_str().is_empty()).then_some(ca.as_path()),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok(crate::webhooks::HttpWebhookSender::new(
        Arc::new(outbound_guard(cfg)),
        tls,
        panoptes_shared::domain::webhook::RESPONSE_BODY_LIMIT,
    ))
}

/// The VLM provider `vlm.provider` names: [`DisabledVlm`](crate::vlm::DisabledVlm)
/// for `off`, the OpenAI-compatible client for `openai` (TLS trusting the
/// system roots plus `vlm.tls_ca_file`). Not connected yet: the first call
/// opens the first connection.
pub fn vlm_provider(cfg: &Config) -> anyhow::Result<Arc<dyn VlmProvider>> {
    let v = &cfg.vlm;
    Ok(match v.provider {
        VlmProviderKind::Off => Arc::new(crate::vlm::DisabledVlm),
        VlmProviderKind::OpenAi => {
            let ca = &v.tls_ca_file;
            let tls = Tls::trusting(
                "vlm.tls_ca_file",
                (!ca.as_os_str().is_empty()).then_some(ca.as_path()),
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            let vlm = crate::vlm::OpenAiVlm::new(crate::vlm::OpenAiOptions {
                base_url: v.base_url.clone(),
                model: v.model.clone(),
                api_key: v.api_key.clone(),
                timeout: Duration::from_millis(v.timeout_ms),
                max_retries: v.max_retries,
                retry_backoff: Duration::from_millis(v.retry_backoff_ms),
                max_tokens: v.max_tokens,
                tls,
            })
            .map_err(|e| anyhow::anyhow!(e))?;
            Arc::new(vlm)
        }
    })
}
