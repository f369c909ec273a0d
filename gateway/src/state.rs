//! What every handler shares: the ports (store, rate limiter, cipher) and the
//! session-token keys. Cheap to clone; built once by `Application::build`.

use std::sync::Arc;

use panoptes_infra::wiring::{Backends, Blobs};
use panoptes_shared::ports::{CameraProbe, EventBus, RateLimiter, SecretCipher, Store};

use crate::auth::key_usage::KeyUsage;
use crate::auth::session::SessionTokens;
use crate::components::Components;
use crate::http::metrics::HttpMetrics;
use crate::sse::SseSettings;
use crate::sse::hub::Hub;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limiter: Arc<dyn RateLimiter>,
    /// In this process or on Redis, for `/readyz`.
    pub limiter_backend: panoptes_shared::config::StateBackend,
    pub cipher: Arc<dyn SecretCipher>,
    pub sessions: Arc<SessionTokens>,
    pub key_usage: Arc<KeyUsage>,
    pub metrics: Arc<HttpMetrics>,
    pub session_ttl: chrono::Duration,
    pub bus: Arc<dyn EventBus>,
    /// Stream slots (the port, with the guards that keep them honest).
    pub slots: Arc<crate::sse::slots::Slots>,
    pub hub: Arc<Hub>,
    pub sse: SseSettings,
    /// Vets every outbound target configured for a customer (camera URLs
    /// now; webhook and VLM endpoints later) and makes their connections.
    pub outbound: Arc<panoptes_shared::outbound::OutboundGuard>,
    /// Sends webhook test events (through `outbound`); the notify role
    /// sends everything else.
    pub webhook_sender: Arc<dyn panoptes_shared::ports::WebhookSender>,
    /// Reads plain-language insight searches (`vlm.provider`; `off` falls
    /// back to matching the question's words).
    pub vlm: Arc<dyn panoptes_shared::ports::VlmProvider>,
    /// How `POST /devices/{id}/probe` tries a camera (the adapter the
    /// binary chose: the pipeline's decoding probe, or one without codecs).
    pub camera_probe: Arc<dyn CameraProbe>,
    /// How long a probe may take (connect + first frame).
    pub probe_timeout: std::time::Duration,
    /// The pipeline roles running in this process (`panoptes up`), for `/readyz`.
    pub components: Arc<Components>,
    /// Edge push limits.
    pub edge: panoptes_shared::config::EdgeConfig,
    /// Contact from devices (`lastSeenAt`), written at most every few seconds.
    pub device_seen: Arc<crate::auth::key_usage::Throttle<panoptes_shared::ids::DeviceId>>,
    /// Every shared-state port (the workers of `up` use the same ones).
    pub backends: Backends,
    /// Snapshots; `local` is set when the gateway serves presigned `/blobs/` URLs.
    pub blobs: Blobs,
    /// Password hashing on a fixed set of threads (bounded memory and queue).
    pub passwords: Arc<panoptes_infra::crypto::PasswordHasher>,
    /// Password hashes in flight per client address.
    pub hash_gate: Arc<crate::limits::ClientGate>,
    /// Sign-up and log-in limits.
    pub auth_limits: crate::limits::AuthLimits,
    /// Whose `X-Forwarded-For` is believed.
    pub proxies: Arc<crate::http::client_ip::TrustedProxies>,
    /// Devices per user (0 = no cap).
    pub max_devices_per_user: u32,
    /// Webhook URLs may be `http://` (`webhooks.allow_http`: tests, on-premise).
    pub webhooks_allow_http: bool,
    /// Which web origins may call the API from a browser.
    pub cors: Arc<crate::http::cors::CorsPolicy>,
}
