//! Layered configuration: compiled-in defaults, then an optional TOML file,
//! then `PANOPTES__SECTION__KEY` environment variables. Validated once at
//! start-up; unknown keys are reported as warnings; secrets never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub mod production;

const ENV_PREFIX: &str = "PANOPTES__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub data: DataConfig,
    pub store: StoreConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    pub sse: SseConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub jobs: JobsConfig,
    pub insights: InsightsConfig,
    pub blobs: BlobsConfig,
    pub detector: DetectorConfig,
    pub worker: WorkerConfig,
    pub analytics: AnalyticsConfig,
    pub ingest: IngestConfig,
    pub edge: EdgeConfig,
    pub scheduler: SchedulerConfig,
    pub outbound: OutboundConfig,
    pub limits: LimitsConfig,
    pub notify: NotifyConfig,
    pub webhooks: WebhooksConfig,
    pub vlm: VlmConfig,
    /// Unknown keys found while loading (reported once telemetry is up).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:8080`); port 0 picks a free port.
    pub listen: String,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Seconds to let in-flight requests finish on shutdown.
    pub shutdown_grace_seconds: u64,
    /// Open client connections a gateway serves at once (event streams
    /// included); further connections wait in the kernel's backlog. Also
    /// capped by the process's file-descriptor limit.
    pub max_connections: usize,
    /// Open connections one client address may hold at once.
    pub max_connections_per_client: usize,
    /// Connections kept aside, beyond `max_connections`, for `/healthz`,
    /// `/readyz` and `/metrics`, so probes are answered while the gateway is full.
    pub reserved_health_connections: usize,
    /// A connection that has not sent a complete request head this long
    /// after it opened (or after its previous response) is closed.
    pub idle_connection_timeout_ms: u64,
    /// Proxies (IP addresses or CIDR blocks, e.g. `10.0.0.0/8`) whose
    /// `X-Forwarded-For` is believed when finding a request's client address;
    /// empty: the TCP peer is the client. In the environment, a
    /// comma-separated list (`PANOPTES__SERVER__TRUSTED_PROXIES=10.0.0.0/8,fd00::/8`).
    #[serde(deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<String>,
    /// Web origins (`https://app.example.com`, scheme + host + optional port)
    /// whose pages may call the API and open ticketed streams from a browser
    /// (CORS); `*` allows any origin. Empty (the default): none. A list in
    /// TOML, comma-separated in the environment.
    #[serde(deserialize_with = "list_or_csv")]
    pub cors_allowed_origins: Vec<String>,
    /// How long browsers may cache a CORS preflight answer, in seconds.
    pub cors_max_age_seconds: u64,
}

/// Where embedded state lives (SQLite file, generated secrets).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    pub dir: PathBuf,
}

/// Relational store: `sqlite:<path>` (embedded default) or `postgres://...`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// Empty means `sqlite:<data.dir>/panoptes.db`.
    pub url: SecretString,
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection before failing with 503.
    pub acquire_timeout_seconds: u64,
}

/// Redis: shared rate limits (and later the bus). Empty url = in-process.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisConfig {
    pub url: SecretString,
    /// Prefix of every key this deployment writes (lets environments share a server).
    pub key_prefix: String,
    /// Deadline of one Redis command on the request path; a stalled Redis
    /// fails the request with 503 after this long.
    pub command_timeout_ms: u64,
    /// Deadline for (re)connecting to Redis.
    pub connect_timeout_ms: u64,
    /// PEM certificates a `rediss://` server's certificate is verified
    /// against instead of the system roots (a private CA). Empty: the system
    /// roots (ElastiCache and other public CAs).
    pub tls_ca_file: PathBuf,
}

/// Session tokens and secrets at rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// HS256 secret for session tokens, at least 32 bytes. Empty: generated
    /// once and kept in `<data.dir>/secrets.toml` (fine for one node only).
    pub jwt_secret: SecretString,
    /// Session token lifetime.
    pub session_ttl_seconds: u64,
    /// Base64 of 32 bytes: AES-256-GCM key for RTSP credentials. Empty:
    /// generated once and kept in `<data.dir>/secrets.toml`.
    pub credentials_key: SecretString,
    /// Password hashes (argon2id, 19 MiB each) computed at once; 0 = one per core.
    pub password_hash_threads: usize,
    /// A sign-up or log-in waits at most this long for a hashing thread, then
    /// gets 503 with `Retry-After`.
    pub password_hash_queue_ms: u64,
    /// Password hashes one client address may have queued or running at once
    /// (more get 429), so one client cannot fill the queue.
    pub password_hashes_per_client: usize,
    /// Sign-ups per client address per hour.
    pub signups_per_client_per_hour: u32,
    /// Log-in attempts per client address per minute, across all emails
    /// (password spraying).
    pub logins_per_client_per_minute: u32,
    /// Failed log-ins per email from one client address per minute.
    pub login_failures_per_email_per_client: u32,
    /// Failed log-ins per email per minute from all addresses together
    /// (a distributed guess); the owner's successful log-ins are never counted.
    pub login_failures_per_email: u32,
}

/// Server-Sent Events streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SseConfig {
    /// Keep-alive comment interval (below the 60 s idle timeouts of proxies).
    pub keep_alive_ms: u64,
    /// A stream with no data event for this long is closed (the client reconnects).
    pub idle_timeout_ms: u64,
    /// Concurrent streams per user, across every replica.
    pub max_streams_per_user: u32,
    /// Stream lease lifetime; live streams renew it every keep-alive.
    pub lease_ttl_ms: u64,
    /// Events queued per stream before a slow client is disconnected.
    pub queue_events: usize,
    /// Lifetime of a browser stream ticket.
    pub ticket_ttl_seconds: u64,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            keep_alive_ms: 15_000,
            idle_timeout_ms: 300_000,
            max_streams_per_user: 10,
            lease_ttl_ms: 60_000,
            queue_events: 256,
            ticket_ttl_seconds: 60,
        }
    }
}

/// Frame jobs (Redis streams when `redis.url` is set, else in-process).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JobsConfig {
    pub shards: u16,
    /// Jobs kept per shard (oldest trimmed): bounds memory under a backlog.
    pub max_len: usize,
    /// A job not acknowledged this long after it was handed out is reclaimed.
    pub visibility_seconds: u64,
    /// Attempts before a job goes to the dead letters.
    pub max_attempts: u32,
    /// Frames captured longer ago than this are dropped (live analytics wants fresh frames).
    pub max_age_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            shards: 4,
            max_len: 10_000,
            visibility_seconds: 30,
            max_attempts: 3,
            max_age_ms: 10_000,
        }
    }
}

/// Insight jobs: alerts' insights waiting for the VLM (Redis streams when
/// `redis.url` is set, else in-process), with the frame jobs' guarantees.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InsightsConfig {
    pub shards: u16,
    /// Jobs kept per shard (oldest trimmed): bounds memory under a backlog.
    pub max_len: usize,
    /// A job not acknowledged this long after it was handed out is reclaimed
    /// (asked again): longer than a VLM call with its retries.
    pub visibility_ms: u64,
    /// Attempts before a job goes to the dead letters (its insight fails).
    pub max_attempts: u32,
    /// Jobs enqueued longer ago than this are dropped: long, since an
    /// insight is worth having late (unlike a frame).
    pub max_age_ms: u64,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        Self {
            shards: 1,
            max_len: 100_000,
            visibility_ms: 120_000,
            max_attempts: 3,
            max_age_ms: 24 * 3600 * 1000,
        }
    }
}

/// Snapshot storage: a local directory (embedded default) or S3.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BlobsConfig {
    /// `local` or `s3`.
    pub backend: BlobsBackend,
    /// Local directory; empty means `<data.dir>/blobs`.
    pub dir: PathBuf,
    /// Base of local presigned URLs (the gateway serves `/blobs/...`); empty
    /// means `http://<server.listen>`.
    pub public_base_url: String,
    pub presign_ttl_seconds: u64,
    pub s3_bucket: String,
    pub s3_region: String,
    /// Empty for AWS; the URL of any S3-compatible server otherwise.
    pub s3_endpoint: String,
    pub s3_path_style: bool,
    /// Empty: the AWS default credential chain.
    pub s3_access_key: SecretString,
    pub s3_secret_key: SecretString,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        Self {
            backend: BlobsBackend::Local,
            dir: PathBuf::new(),
            public_base_url: String::new(),
            presign_ttl_seconds: 3600,
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_endpoint: String::new(),
            s3_path_style: false,
            s3_access_key: SecretString::from(""),
            s3_secret_key: SecretString::from(""),
        }
    }
}

/// The person detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DetectorConfig {
    /// `nanodet` (the shipped default), `ssd` (the shipped SSDLite-MobileNetV2
    /// COCO, or another TF Object Detection API SSD) or `yolo` (an
    /// Ultralytics YOLOv8/YOLO11 export).
    pub model: ModelKind,
    pub model_path: PathBuf,
    /// `libonnxruntime.so.1.31.1`; empty reads `ORT_DYLIB_PATH`.
    pub ort_library: PathBuf,
    /// `cpu` or `cuda` (falls back to CPU with a warning when unavailable).
    pub execution_provider: ExecutionProvider,
    pub cuda_device: i32,
    /// Intra-op threads per session; 0 = one per core.
    pub threads: usize,
    /// Frames per inference batch, at most.
    pub batch_size: usize,
    /// How long a detector waits to fill a batch.
    pub batch_wait_ms: u64,
    /// Batches in flight per node: one decodes while another infers. 1 on a
    /// CPU node (inference uses every core); 2 or more on a GPU node.
    pub concurrency: usize,
    /// Overlap above which boxes of one class are merged.
    pub nms_iou: f32,
    /// The picture size the model sees, `HEIGHTxWIDTH` (e.g. `416x416`, the
    /// fastest for NanoDet-m); `auto`: [`InputSize::ACCURATE`] for NanoDet,
    /// the model's own size for the others. A size other than the model's
    /// own needs a model with a free picture size (the shipped NanoDet-m has
    /// one) and is calibrated by its own file.
    pub input_size: String,
    /// At most one snapshot per device per this interval.
    pub snapshot_interval_ms: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            model: ModelKind::NanoDet,
            model_path: PathBuf::from("workers/models/nanodet-m-416.onnx"),
            ort_library: PathBuf::new(),
            execution_provider: ExecutionProvider::Cpu,
            cuda_device: 0,
            threads: 0,
            batch_size: 4,
            batch_wait_ms: 20,
            concurrency: 1,
            nms_iou: 0.5,
            input_size: "auto".into(),
            snapshot_interval_ms: 10_000,
        }
    }
}

/// A worker node (`panoptes-worker`, or the roles inside `panoptes up`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WorkerConfig {
    /// Empty: `<hostname>-<random>`.
    pub node_id: String,
    /// `/metrics` and `/healthz` of a worker process; empty disables.
    pub metrics_listen: String,
    pub heartbeat_ms: u64,
    /// A node is offline once its heartbeat is this old.
    pub node_ttl_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            metrics_listen: "127.0.0.1:9464".into(),
            heartbeat_ms: 5_000,
            node_ttl_ms: 15_000,
        }
    }
}

/// The analytics stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AnalyticsConfig {
    /// How long a result waits for earlier captures before it is published.
    pub reorder_window_ms: u64,
    /// Device ownership lease (a dead node's devices move after this).
    pub lease_ttl_ms: u64,
    /// Pause between passes when nothing was published.
    pub poll_ms: u64,
    /// A snapshot and the rolling rows of each running scene are stored
    /// this often (capture time).
    pub persist_interval_ms: u64,
    /// Stored snapshots and rolling rows older than this are deleted.
    pub retention_days: u32,
    /// A tracked person is described (attributes, level_02) when first
    /// seen and again at most this often (capture time).
    pub attribute_refresh_seconds: u64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            reorder_window_ms: 500,
            lease_ttl_ms: 10_000,
            poll_ms: 50,
            persist_interval_ms: 10_000,
            retention_days: 30,
            attribute_refresh_seconds: 30,
        }
    }
}

/// The ingest role: RTSP pull for running tasks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// Frames per second sent to the detector per stream.
    pub sample_fps: f64,
    /// JPEG quality of the frames enqueued (1-100).
    pub jpeg_quality: u8,
    /// Frames wider than this are scaled down before encoding (0 keeps them).
    pub max_width: u32,
    /// First reconnect delay; doubles up to `reconnect_max_ms` (with jitter).
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Connect + DESCRIBE + first decoded frame, for a probe or a (re)connect.
    pub connect_timeout_ms: u64,
    /// No frame for this long: the stream is considered lost.
    pub stall_timeout_ms: u64,
    /// Per-device stream lease, so one node pulls each camera.
    pub lease_ttl_ms: u64,
    /// How often running tasks are looked up.
    pub poll_ms: u64,
    /// Streams one node pulls at most.
    pub max_streams: usize,
    /// Cameras without a running task are probed this often (one node per
    /// camera per interval) so their status stays true; 0 disables.
    pub health_check_interval_ms: u64,
    /// Probes in flight per node.
    pub health_checks_in_flight: usize,
    /// PEM certificates trusted for `rtsps://` cameras besides the system's
    /// roots (a private CA); empty: system roots only.
    pub tls_ca_file: std::path::PathBuf,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            sample_fps: 2.0,
            jpeg_quality: 85,
            max_width: 1280,
            reconnect_min_ms: 1_000,
            reconnect_max_ms: 30_000,
            connect_timeout_ms: 10_000,
            stall_timeout_ms: 10_000,
            lease_ttl_ms: 15_000,
            poll_ms: 1_000,
            max_streams: 64,
            health_check_interval_ms: 300_000,
            health_checks_in_flight: 4,
            tls_ca_file: std::path::PathBuf::new(),
        }
    }
}

/// Edge push: devices that send frames and heartbeats themselves.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EdgeConfig {
    /// Largest frame accepted by `POST /devices/{id}/frames`, in bytes.
    pub max_frame_bytes: usize,
    /// Frames per second accepted per device (more are refused with 429).
    pub max_fps: u32,
    /// Heartbeats per minute accepted per device.
    pub heartbeats_per_minute: u32,
    /// A push device with no frame or heartbeat for this long goes offline.
    pub offline_after_ms: u64,
    /// `panoptes up`: register and run a demo camera that replays a bundled clip.
    pub demo_camera: bool,
    /// Frames per second the demo camera pushes.
    pub demo_fps: f64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: 4 * 1024 * 1024,
            max_fps: 10,
            heartbeats_per_minute: 30,
            offline_after_ms: 30_000,
            demo_camera: true,
            demo_fps: 2.0,
        }
    }
}

/// Outbound connections made for customers (cameras, webhooks) go only to
/// public addresses unless this says otherwise. (The VLM endpoint is the
/// operator's own setting and is not vetted.)
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OutboundConfig {
    /// Allow loopback, private, link-local, CGNAT and other non-public
    /// targets: for on-premise installs whose cameras are on the LAN, and tests.
    pub allow_private: bool,
}

/// Per-tenant resource caps.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Devices one user may register (0 = no cap).
    pub max_devices_per_user: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_devices_per_user: 1_000,
        }
    }
}

/// The notify role: alert rules on the analytics results, the outbox of
/// platform events, webhook delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NotifyConfig {
    /// Pause between passes that found nothing to do (events from other
    /// processes are seen this late at most; this process's own at once).
    pub poll_ms: u64,
    /// Lease on a user's rule evaluation (one notify node per user).
    pub lease_ttl_ms: u64,
    /// How long enabled rules are cached before they are read again.
    pub rules_refresh_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            poll_ms: 200,
            lease_ttl_ms: 15_000,
            rules_refresh_ms: 2_000,
        }
    }
}

/// Webhook delivery (the notify role).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Accept `http://` endpoint URLs (tests and on-premise receivers only;
    /// the API otherwise requires `https://`).
    pub allow_http: bool,
    /// PEM certificates trusted for receivers besides the system roots.
    pub tls_ca_file: std::path::PathBuf,
    /// Seconds before retry 1, 2, ... (the last repeats), each with jitter.
    #[serde(deserialize_with = "list_or_csv_f64")]
    pub retry_schedule_seconds: Vec<f64>,
    /// Each wait is scaled by a random factor in `1 +- jitter`.
    pub retry_jitter: f64,
    /// Requests in flight from one node, all endpoints together; one
    /// endpoint has at most one (deliveries go out in order).
    pub max_in_flight: usize,
    /// Deliveries taken per endpoint per turn.
    pub batch: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_http: false,
            tls_ca_file: std::path::PathBuf::new(),
            retry_schedule_seconds: crate::domain::webhook::DEFAULT_RETRY_SCHEDULE_SECONDS
                .iter()
                .map(|s| *s as f64)
                .collect(),
            retry_jitter: 0.2,
            max_in_flight: 256,
            batch: 50,
        }
    }
}

/// The vision-language model behind insights: off, or any OpenAI-compatible
/// chat-completions endpoint that takes images (OpenAI, Azure OpenAI's
/// compatible endpoint, vLLM, Ollama, llama.cpp's server, ...). The endpoint
/// is the operator's own setting, so it is not subject to the outbound guard.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VlmConfig {
    /// `off` (the default: insights say no provider is configured) or `openai`.
    pub provider: VlmProviderKind,
    /// The API base, e.g. `https://api.openai.com/v1`; requests go to
    /// `<base_url>/chat/completions`.
    pub base_url: String,
    /// The model asked, e.g. `gpt-4o-mini` (it must take images and
    /// structured outputs).
    pub model: String,
    /// Sent as `Authorization: Bearer <api_key>`; empty sends none (a local
    /// server without auth).
    pub api_key: SecretString,
    /// Connect, send and read the whole response, per attempt.
    pub timeout_ms: u64,
    /// Retries after the first attempt, on timeouts, connection errors, 429
    /// and 5xx (never on other 4xx).
    pub max_retries: u32,
    /// Wait before the first retry; doubles on each, jittered. A 429's
    /// `Retry-After` is honoured instead when longer.
    pub retry_backoff_ms: u64,
    /// The answer's length limit, in tokens (`max_tokens`).
    pub max_tokens: u32,
    /// PEM certificates trusted for an `https://` endpoint besides the system
    /// roots (a self-hosted server with a private CA).
    pub tls_ca_file: PathBuf,
}

impl Default for VlmConfig {
    fn default() -> Self {
        Self {
            provider: VlmProviderKind::Off,
            base_url: String::new(),
            model: String::new(),
            api_key: SecretString::from(""),
            timeout_ms: 30_000,
            max_retries: 2,
            retry_backoff_ms: 500,
            max_tokens: 800,
            tls_ca_file: PathBuf::new(),
        }
    }
}

/// The scheduler role: device schedules, quota enforcement, retention, edge liveness.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    /// Pause between passes.
    pub poll_ms: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        // Slots are half-hour long: a start a few seconds after the boundary is fine.
        Self { poll_ms: 5_000 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// Default filter when `RUST_LOG` is unset.
    pub level: String,
}

/// Trace export: OpenTelemetry spans over OTLP/HTTP (protobuf), off unless
/// `otlp_endpoint` is set. Without it every request and frame span still
/// carries a `trace_id` field, so the logs of all stages of a frame share it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP collector, e.g. `http://127.0.0.1:4318`:
    /// spans are POSTed to `<otlp_endpoint>/v1/traces` (a URL that already
    /// has a path is used as it is). Plain `http://` only: run a collector
    /// beside the process to reach a TLS one. Empty: no export.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans; empty: the binary's name
    /// (`panoptes`, `panoptes-worker`).
    pub service_name: String,
    /// Share of traces recorded, 0 to 1, decided where a trace starts (an HTTP
    /// request, an ingested frame); the pipeline stages after it follow that
    /// decision through the frame's `traceparent`.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: String::new(),
            sample_ratio: 1.0,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_seconds: 10,
            max_connections: 50_000,
            max_connections_per_client: 1_024,
            reserved_health_connections: 32,
            idle_connection_timeout_ms: 30_000,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            cors_max_age_seconds: 600,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(".data"),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            max_connections: 16,
            acquire_timeout_seconds: 5,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            key_prefix: "panoptes:v1".into(),
            command_timeout_ms: 1_000,
            connect_timeout_ms: 1_000,
            tls_ca_file: PathBuf::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: SecretString::from(""),
            session_ttl_seconds: 24 * 3600,
            credentials_key: SecretString::from(""),
            password_hash_threads: 0,
            password_hash_queue_ms: 1_500,
            password_hashes_per_client: 2,
            signups_per_client_per_hour: 20,
            logins_per_client_per_minute: 30,
            login_failures_per_email_per_client: 10,
            login_failures_per_email: 100,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

/// A closed set of values spelled as in the config file (`#[serde(rename_all
/// = "lowercase")]`): parsed once when the config is loaded (an unknown value
/// is an error naming the key), then matched, never compared as strings.
macro_rules! config_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// As spelled in the config.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "`{s}` is not one of {}",
                        [$(concat!("`", $text, "`")),+].join(", ")
                    )),
                }
            }
        }
    };
}

config_enum!(
    /// Which relational backend a store URL names (`store.url`).
    StoreBackend { Sqlite = "sqlite", Postgres = "postgres" }
);

impl StoreBackend {
    /// The backend `url` names: `sqlite:...` or `postgres://` (`postgresql://`).
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

config_enum!(
    /// Where the shared state lives (rate limits, event bus, stream slots,
    /// frame jobs, detection log, leases, nodes): in this process, or on
    /// Redis when `redis.url` is set.
    StateBackend { Memory = "memory", Redis = "redis" }
);

config_enum!(
    /// `blobs.backend`: snapshots in a local directory or S3.
    BlobsBackend { Local = "local", S3 = "s3" }
);

config_enum!(
    /// `detector.model`: which model family the ONNX file is.
    ModelKind {
        /// NanoDet-m 416 (the shipped default).
        NanoDet = "nanodet",
        /// An Ultralytics YOLOv8/YOLO11 export.
        Yolo = "yolo",
        /// A TensorFlow Object Detection API SSD with decoding in the graph
        /// (the shipped SSDLite-MobileNetV2 COCO).
        Ssd = "ssd",
    }
);

/// A model input's picture size (`detector.input_size`), in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InputSize {
    pub height: usize,
    pub width: usize,
}

impl InputSize {
    /// NanoDet-m's default size: 4:3 frames at about their own aspect, 1.5
    /// times the pixels of 416x416 (the figures: `tests/accuracy`).
    pub const ACCURATE: Self = Self {
        height: 448,
        width: 576,
    };

    /// `HEIGHTxWIDTH`, each a multiple of 32 from 64 to 2048.
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "`{s}` is not HEIGHTxWIDTH with sides multiples of 32 from 64 to 2048 (e.g. 448x576)"
            )
        };
        let (h, w) = s.split_once('x').ok_or_else(err)?;
        let side = |v: &str| -> Result<usize, String> {
            let n: usize = v.trim().parse().map_err(|_| err())?;
            if (64..=2048).contains(&n) && n.is_multiple_of(32) {
                Ok(n)
            } else {
                Err(err())
            }
        };
        Ok(Self {
            height: side(h)?,
            width: side(w)?,
        })
    }

    /// `detector.input_size`: `None` for `auto` (or empty).
    pub fn setting(s: &str) -> Result<Option<Self>, String> {
        match s.trim() {
            "" | "auto" => Ok(None),
            other => Self::parse(other).map(Some),
        }
    }
}

impl std::fmt::Display for InputSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

config_enum!(
    /// `detector.execution_provider`: where inference runs.
    ExecutionProvider { Cpu = "cpu", Cuda = "cuda" }
);

config_enum!(
    /// `vlm.provider`: who answers insight questions.
    VlmProviderKind {
        /// None: every insight fails with a reason saying so.
        Off = "off",
        /// An OpenAI-compatible chat-completions endpoint (`vlm.base_url`).
        OpenAi = "openai",
    }
);

config_enum!(
    /// `log.format`: human-readable, or JSON lines.
    LogFormat { Pretty = "pretty", Json = "json" }
);

impl Config {
    /// Defaults, then `file` (if given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment passed in (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            tree = toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        }
        for (key, value) in env {
            let Some(path) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(str::to_lowercase).collect();
            insert_path(&mut tree, &parts, env_value(&value));
        }
        let mut warnings = Vec::new();
        let de = toml::Value::Table(tree);
        let mut cfg: Config = serde_ignored::deserialize(de, |p| {
            warnings.push(format!("unknown config key `{p}` ignored"))
        })
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.warnings = warnings;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.listen_addr().is_err() {
            return invalid(format!(
                "server.listen `{}` is not an address like 127.0.0.1:8080",
                self.server.listen
            ));
        }
        let w = &self.webhooks;
        if w.retry_schedule_seconds.is_empty()
            || w.retry_schedule_seconds
                .iter()
                .any(|s| !(*s > 0.0 && *s <= 86_400.0))
        {
            return invalid(
                "webhooks.retry_schedule_seconds must list 1+ waits of (0, 86400] seconds".into(),
            );
        }
        if !(0.0..=1.0).contains(&w.retry_jitter) || w.max_in_flight == 0 || w.batch == 0 {
            return invalid(
                "webhooks.retry_jitter must be 0-1; webhooks.max_in_flight and webhooks.batch positive"
                    .into(),
            );
        }
        if self.notify.poll_ms == 0 || self.notify.lease_ttl_ms < 1_000 {
            return invalid(
                "notify.poll_ms must be positive and notify.lease_ttl_ms >= 1000".into(),
            );
        }
        if self.server.body_limit_bytes < 1024 {
            return invalid("server.body_limit_bytes must be at least 1024".into());
        }
        self.store_backend()?;
        if self.store.max_connections == 0 {
            return invalid("store.max_connections must be at least 1".into());
        }
        let redis = self.redis.url.expose_secret();
        if !(redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return invalid(
                "redis.url must start with redis:// or rediss:// (or be empty for in-process)"
                    .into(),
            );
        }
        let jwt = self.auth.jwt_secret.expose_secret();
        if !jwt.is_empty() && jwt.len() < 32 {
            return invalid("auth.jwt_secret must be at least 32 bytes".into());
        }
        if self.auth.session_ttl_seconds < 60 {
            return invalid("auth.session_ttl_seconds must be at least 60".into());
        }
        if self.sse.keep_alive_ms < 10 || self.sse.lease_ttl_ms < 2 * self.sse.keep_alive_ms {
            return invalid(
                "sse.lease_ttl_ms must be at least twice sse.keep_alive_ms (>= 10)".into(),
            );
        }
        if self.sse.max_streams_per_user == 0
            || self.sse.queue_events == 0
            || self.sse.idle_timeout_ms == 0
        {
            return invalid("sse.max_streams_per_user, sse.queue_events and sse.idle_timeout_ms must be positive".into());
        }
        if !(self.ingest.sample_fps > 0.0 && self.ingest.sample_fps <= 30.0) {
            return invalid("ingest.sample_fps must be in (0, 30]".into());
        }
        if !(1..=100).contains(&self.ingest.jpeg_quality) {
            return invalid("ingest.jpeg_quality must be 1..=100".into());
        }
        if self.ingest.reconnect_min_ms == 0
            || self.ingest.reconnect_max_ms < self.ingest.reconnect_min_ms
        {
            return invalid(
                "ingest.reconnect_min_ms must be positive and at most ingest.reconnect_max_ms"
                    .into(),
            );
        }
        if self.edge.max_frame_bytes < 1024 || self.edge.max_fps == 0 {
            return invalid(
                "edge.max_frame_bytes must be at least 1024 and edge.max_fps positive".into(),
            );
        }
        if self.analytics.persist_interval_ms < 1_000 || self.analytics.retention_days == 0 {
            return invalid("analytics.persist_interval_ms must be at least 1000 and analytics.retention_days positive".into());
        }
        if self.jobs.shards == 0 || self.jobs.max_len == 0 || self.jobs.max_attempts == 0 {
            return invalid(
                "jobs.shards, jobs.max_len and jobs.max_attempts must be positive".into(),
            );
        }
        if self.blobs.backend == BlobsBackend::S3 && self.blobs.s3_bucket.is_empty() {
            return invalid("blobs.s3_bucket is required with blobs.backend = \"s3\"".into());
        }
        if self.detector.concurrency == 0 || self.detector.concurrency > 16 {
            return invalid("detector.concurrency must be between 1 and 16".into());
        }
        if self.detector.batch_size == 0 || self.detector.batch_size > 64 {
            return invalid("detector.batch_size must be between 1 and 64".into());
        }
        if !(self.detector.nms_iou > 0.0 && self.detector.nms_iou <= 1.0) {
            return invalid("detector.nms_iou must be in (0, 1]".into());
        }
        if let Err(e) = InputSize::setting(&self.detector.input_size) {
            return invalid(format!("detector.input_size: {e}, or auto"));
        }
        if self.worker.heartbeat_ms == 0 || self.worker.node_ttl_ms < 2 * self.worker.heartbeat_ms {
            return invalid(
                "worker.node_ttl_ms must be at least twice worker.heartbeat_ms (> 0)".into(),
            );
        }
        if self.analytics.lease_ttl_ms < 100 {
            return invalid("analytics.lease_ttl_ms must be at least 100".into());
        }
        if self.analytics.attribute_refresh_seconds == 0 {
            return invalid("analytics.attribute_refresh_seconds must be positive".into());
        }
        if self.server.max_connections == 0 || self.server.max_connections_per_client == 0 {
            return invalid(
                "server.max_connections and server.max_connections_per_client must be positive"
                    .into(),
            );
        }
        if self.server.idle_connection_timeout_ms < 100 {
            return invalid("server.idle_connection_timeout_ms must be at least 100".into());
        }
        if self.redis.command_timeout_ms < 10 || self.redis.connect_timeout_ms < 10 {
            return invalid(
                "redis.command_timeout_ms and redis.connect_timeout_ms must be at least 10".into(),
            );
        }
        if self.auth.password_hash_queue_ms == 0 || self.auth.password_hashes_per_client == 0 {
            return invalid(
                "auth.password_hash_queue_ms and auth.password_hashes_per_client must be positive"
                    .into(),
            );
        }
        self.validate_vlm()?;
        self.validate_insights()?;
        let otlp = &self.telemetry.otlp_endpoint;
        if !otlp.is_empty()
            && url::Url::parse(otlp)
                .ok()
                .is_none_or(|u| u.scheme() != "http" || !u.has_host())
        {
            return invalid(format!(
                "telemetry.otlp_endpoint must be an http:// URL like http://127.0.0.1:4318 (or empty), not `{otlp}`"
            ));
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return invalid("telemetry.sample_ratio must be between 0 and 1".into());
        }
        Ok(())
    }

    fn validate_insights(&self) -> Result<(), ConfigError> {
        let i = &self.insights;
        if i.shards == 0 || i.max_len == 0 || i.max_attempts == 0 || i.max_age_ms == 0 {
            return Err(ConfigError::Invalid(
                "insights.shards, insights.max_len, insights.max_attempts and insights.max_age_ms \
                 must be positive"
                    .into(),
            ));
        }
        // A claim that lapses while its VLM call still runs is asked again:
        // the call (every attempt) must fit in the visibility timeout.
        let attempts = u64::from(self.vlm.max_retries) + 1;
        let call_ms = self.vlm.timeout_ms.saturating_mul(attempts);
        if i.visibility_ms <= call_ms {
            return Err(ConfigError::Invalid(format!(
                "insights.visibility_ms ({}) must be longer than a VLM call's attempts, \
                 vlm.timeout_ms x (vlm.max_retries + 1) = {call_ms}",
                i.visibility_ms
            )));
        }
        Ok(())
    }

    fn validate_vlm(&self) -> Result<(), ConfigError> {
        let v = &self.vlm;
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if v.timeout_ms == 0 || v.retry_backoff_ms == 0 || v.max_tokens == 0 {
            return invalid(
                "vlm.timeout_ms, vlm.retry_backoff_ms and vlm.max_tokens must be positive".into(),
            );
        }
        if v.max_retries > 10 {
            return invalid("vlm.max_retries must be at most 10".into());
        }
        match v.provider {
            VlmProviderKind::Off => Ok(()),
            VlmProviderKind::OpenAi => {
                let url = url::Url::parse(&v.base_url).ok().filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.has_host()
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.query().is_none()
                        && u.fragment().is_none()
                });
                if url.is_none() {
                    // The value is not echoed: a URL may carry credentials.
                    return invalid(
                        "vlm.base_url must be an http(s) URL like https://api.openai.com/v1 \
                         (no credentials, query or fragment) with vlm.provider = \"openai\""
                            .into(),
                    );
                }
                if v.model.trim().is_empty() {
                    return invalid(
                        "vlm.model is required with vlm.provider = \"openai\" (e.g. gpt-4o-mini)"
                            .into(),
                    );
                }
                Ok(())
            }
        }
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "server.listen `{}` is not a socket address",
                self.server.listen
            ))
        })
    }

    /// The store URL, defaulting to a SQLite file in the data dir.
    pub fn store_url(&self) -> String {
        let url = self.store.url.expose_secret();
        if url.is_empty() {
            format!("sqlite:{}", self.data.dir.join("panoptes.db").display())
        } else {
            url.to_owned()
        }
    }

    pub fn store_backend(&self) -> Result<StoreBackend, ConfigError> {
        StoreBackend::of_url(&self.store_url()).ok_or_else(|| {
            ConfigError::Invalid("store.url must start with sqlite: or postgres://".into())
        })
    }

    /// Where the shared state lives: on Redis when `redis.url` is set.
    pub fn state_backend(&self) -> StateBackend {
        if self.redis_url().is_some() {
            StateBackend::Redis
        } else {
            StateBackend::Memory
        }
    }

    /// The local blob directory, defaulting to `<data.dir>/blobs`.
    pub fn blobs_dir(&self) -> PathBuf {
        if self.blobs.dir.as_os_str().is_empty() {
            self.data.dir.join("blobs")
        } else {
            self.blobs.dir.clone()
        }
    }

    pub fn redis_url(&self) -> Option<&str> {
        Some(self.redis.url.expose_secret()).filter(|u| !u.is_empty())
    }
}

/// A list, or one comma-separated string (environment variables are scalars).
/// Numbers as a list or a comma-separated string (environment variables).
fn list_or_csv_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Numbers {
        List(Vec<f64>),
        One(f64),
        Csv(String),
    }
    match Numbers::deserialize(d)? {
        Numbers::List(list) => Ok(list),
        Numbers::One(n) => Ok(vec![n]),
        Numbers::Csv(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<f64>().map_err(serde::de::Error::custom))
            .collect(),
    }
}

fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match ListOrCsv::deserialize(d)? {
        ListOrCsv::List(list) => list,
        ListOrCsv::Csv(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Environment values are typed like TOML scalars when they parse as one
/// (`8080`, `true`, `0.5`), otherwise taken as strings.
fn env_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
    {
        Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_))) => v,
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn insert_path(tree: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [leaf] => {
            tree.insert(leaf.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = tree
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                insert_path(t, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        let dir = std::env::temp_dir().join(format!("panoptes-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\nbody_limit_bytes = 4096\n",
        )
        .unwrap();
        let cfg = Config::load_from(
            Some(&file),
            env(&[("PANOPTES__SERVER__LISTEN", "0.0.0.0:7000")]),
        )
        .unwrap();
        assert_eq!(cfg.server.listen, "0.0.0.0:7000");
        assert_eq!(cfg.server.body_limit_bytes, 4096);
        assert_eq!(cfg.store_backend().unwrap(), StoreBackend::Sqlite);
    }

    #[test]
    fn unknown_keys_are_warned_about_not_fatal() {
        let cfg = Config::load_from(
            None,
            env(&[
                ("PANOPTES__SERVER__LISTN", "x"),
                ("PANOPTES__LOG__LEVEL", "debug"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.log.level, "debug");
        assert_eq!(cfg.warnings.len(), 1);
        assert!(
            cfg.warnings[0].contains("server.listn"),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn invalid_values_are_refused_with_the_key_named() {
        let err =
            Config::load_from(None, env(&[("PANOPTES__STORE__URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("store.url"), "{err}");
        let err = Config::load_from(None, env(&[("PANOPTES__SERVER__BODY_LIMIT_BYTES", "lots")]))
            .unwrap_err();
        assert!(err.to_string().contains("body_limit_bytes"), "{err}");
        assert_eq!(Config::default().analytics.attribute_refresh_seconds, 30);
        let err = Config::load_from(
            None,
            env(&[("PANOPTES__ANALYTICS__ATTRIBUTE_REFRESH_SECONDS", "0")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("analytics.attribute_refresh_seconds"),
            "{err}"
        );
    }

    #[test]
    fn closed_sets_are_typed_once_and_an_unknown_value_names_its_key() {
        let cfg = Config::load_from(
            None,
            env(&[
                ("PANOPTES__LOG__FORMAT", "json"),
                ("PANOPTES__DETECTOR__MODEL", "yolo"),
                ("PANOPTES__DETECTOR__EXECUTION_PROVIDER", "cuda"),
                ("PANOPTES__BLOBS__BACKEND", "s3"),
                ("PANOPTES__BLOBS__S3_BUCKET", "b"),
                ("PANOPTES__REDIS__URL", "redis://127.0.0.1:6379"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.log.format, LogFormat::Json);
        assert_eq!(cfg.detector.model, ModelKind::Yolo);
        assert_eq!(cfg.detector.execution_provider, ExecutionProvider::Cuda);
        assert_eq!(cfg.blobs.backend, BlobsBackend::S3);
        assert_eq!(cfg.state_backend(), StateBackend::Redis);
        assert_eq!(Config::default().state_backend(), StateBackend::Memory);
        for (key, name) in [
            ("PANOPTES__LOG__FORMAT", "log.format"),
            ("PANOPTES__DETECTOR__MODEL", "detector.model"),
            (
                "PANOPTES__DETECTOR__EXECUTION_PROVIDER",
                "detector.execution_provider",
            ),
            ("PANOPTES__BLOBS__BACKEND", "blobs.backend"),
        ] {
            let err = Config::load_from(None, env(&[(key, "bogus")])).unwrap_err();
            assert!(
                err.to_string().contains(name) && err.to_string().contains("bogus"),
                "{err}"
            );
        }
        assert_eq!("cuda".parse(), Ok(ExecutionProvider::Cuda));
        assert!("gpu".parse::<ExecutionProvider>().is_err());
    }

    #[test]
    fn the_detector_input_size_is_auto_or_a_height_by_width_in_strides() {
        assert_eq!(Config::default().detector.input_size, "auto");
        assert_eq!(InputSize::setting("auto"), Ok(None));
        assert_eq!(InputSize::setting(""), Ok(None));
        assert_eq!(
            InputSize::setting("448x576"),
            Ok(Some(InputSize {
                height: 448,
                width: 576
            }))
        );
        assert_eq!(InputSize::ACCURATE.to_string(), "448x576");
        for bad in ["448", "448x570", "32x64", "4096x4096", "axb", "448x576x3"] {
            assert!(InputSize::setting(bad).is_err(), "{bad}");
        }
        let cfg =
            Config::load_from(None, env(&[("PANOPTES__DETECTOR__INPUT_SIZE", "480x640")])).unwrap();
        assert_eq!(cfg.detector.input_size, "480x640");
        let err = Config::load_from(None, env(&[("PANOPTES__DETECTOR__INPUT_SIZE", "450x600")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("detector.input_size") && err.to_string().contains("450x600"),
            "{err}"
        );
    }

    #[test]
    fn trusted_proxies_come_as_a_list_or_comma_separated() {
        let cfg = Config::load_from(
            None,
            env(&[("PANOPTES__SERVER__TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")]),
        )
        .unwrap();
        assert_eq!(cfg.server.trusted_proxies, vec!["10.0.0.0/8", "fd00::/8"]);
        let dir = std::env::temp_dir().join(format!("panoptes-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[server]\ntrusted_proxies = [\"192.168.0.1\"]\n").unwrap();
        let cfg = Config::load_from(Some(&file), env(&[])).unwrap();
        assert_eq!(cfg.server.trusted_proxies, vec!["192.168.0.1"]);
    }

    #[test]
    fn trace_export_is_off_by_default_and_takes_only_http_endpoints() {
        let cfg = Config::load_from(None, env(&[])).unwrap();
        assert!(cfg.telemetry.otlp_endpoint.is_empty());
        assert_eq!(cfg.telemetry.sample_ratio, 1.0);
        let cfg = Config::load_from(
            None,
            env(&[
                (
                    "PANOPTES__TELEMETRY__OTLP_ENDPOINT",
                    "http://127.0.0.1:4318",
                ),
                ("PANOPTES__TELEMETRY__SERVICE_NAME", "panoptes-eu1"),
                ("PANOPTES__TELEMETRY__SAMPLE_RATIO", "0.25"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.telemetry.otlp_endpoint, "http://127.0.0.1:4318");
        assert_eq!(cfg.telemetry.service_name, "panoptes-eu1");
        assert_eq!(cfg.telemetry.sample_ratio, 0.25);
        for (key, value) in [
            ("PANOPTES__TELEMETRY__OTLP_ENDPOINT", "127.0.0.1:4318"),
            (
                "PANOPTES__TELEMETRY__OTLP_ENDPOINT",
                "grpc://collector:4317",
            ),
            ("PANOPTES__TELEMETRY__SAMPLE_RATIO", "1.5"),
        ] {
            let err = Config::load_from(None, env(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains("telemetry."), "{err}");
        }
    }

    #[test]
    fn the_vlm_is_off_by_default_and_openai_needs_an_endpoint_and_a_model() {
        let cfg = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(cfg.vlm.provider, VlmProviderKind::Off);
        assert_eq!(
            (
                cfg.vlm.timeout_ms,
                cfg.vlm.max_retries,
                cfg.vlm.retry_backoff_ms,
                cfg.vlm.max_tokens
            ),
            (30_000, 2, 500, 800)
        );
        let cfg = Config::load_from(
            None,
            env(&[
                ("PANOPTES__VLM__PROVIDER", "openai"),
                ("PANOPTES__VLM__BASE_URL", "https://api.openai.com/v1"),
                ("PANOPTES__VLM__MODEL", "gpt-4o-mini"),
                ("PANOPTES__VLM__API_KEY", "sk-test-key-that-must-not-show"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.vlm.provider, VlmProviderKind::OpenAi);
        assert_eq!(
            cfg.vlm.api_key.expose_secret(),
            "sk-test-key-that-must-not-show"
        );
        assert!(!format!("{cfg:?}").contains("sk-test-key"));
        for (extra, named) in [
            (("PANOPTES__VLM__BASE_URL", ""), "vlm.base_url"),
            (("PANOPTES__VLM__BASE_URL", "ftp://x/v1"), "vlm.base_url"),
            (
                ("PANOPTES__VLM__BASE_URL", "https://user:pw@x/v1"),
                "vlm.base_url",
            ),
            (("PANOPTES__VLM__MODEL", " "), "vlm.model"),
            (("PANOPTES__VLM__TIMEOUT_MS", "0"), "vlm.timeout_ms"),
            (("PANOPTES__VLM__PROVIDER", "claude"), "vlm.provider"),
        ] {
            let mut vars = vec![
                ("PANOPTES__VLM__PROVIDER", "openai"),
                ("PANOPTES__VLM__BASE_URL", "http://127.0.0.1:8000/v1"),
                ("PANOPTES__VLM__MODEL", "qwen2.5-vl"),
            ];
            vars.retain(|(k, _)| *k != extra.0);
            vars.push(extra);
            let err = Config::load_from(None, env(&vars)).unwrap_err().to_string();
            assert!(err.contains(named), "{extra:?}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }

    #[test]
    fn insight_jobs_outlive_a_vlm_call_and_are_not_dropped_like_frames() {
        let cfg = Config::load_from(None, env(&[])).unwrap();
        let i = &cfg.insights;
        assert_eq!(
            (i.shards, i.max_len, i.visibility_ms, i.max_attempts),
            (1, 100_000, 120_000, 3)
        );
        assert!(i.max_age_ms >= 3600 * 1000 && i.max_age_ms > cfg.jobs.max_age_ms);
        let cfg = Config::load_from(
            None,
            env(&[
                ("PANOPTES__INSIGHTS__SHARDS", "2"),
                ("PANOPTES__INSIGHTS__VISIBILITY_MS", "300000"),
                ("PANOPTES__VLM__TIMEOUT_MS", "60000"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (cfg.insights.shards, cfg.insights.visibility_ms),
            (2, 300_000)
        );
        for vars in [
            vec![("PANOPTES__INSIGHTS__SHARDS", "0")],
            vec![("PANOPTES__INSIGHTS__MAX_ATTEMPTS", "0")],
            vec![("PANOPTES__INSIGHTS__MAX_AGE_MS", "0")],
            // 3 attempts of 30 s do not fit in 60 s: the job would be asked twice.
            vec![("PANOPTES__INSIGHTS__VISIBILITY_MS", "60000")],
            vec![("PANOPTES__VLM__TIMEOUT_MS", "60000")],
        ] {
            let err = Config::load_from(None, env(&vars)).unwrap_err().to_string();
            assert!(err.contains("insights."), "{vars:?}: {err}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let cfg = Config::load_from(
            None,
            env(&[(
                "PANOPTES__AUTH__JWT_SECRET",
                "super-secret-value-that-is-long-enough",
            )]),
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("super-secret"));
    }
}
