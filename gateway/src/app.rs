//! Building and running the gateway: [`Listener::bind`] binds the listener
//! (port 0 in tests) first, so links to this gateway name its real port;
//! [`Application::assemble`] builds the state on the adapters the binary
//! connected ([`Platform`]) and chose (the camera probe);
//! [`Application::build`] does both for a gateway on its own. Then
//! [`Application::run_until_stopped`] serves until the shutdown token fires,
//! and lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use panoptes_infra::bus::MemoryBus;
use panoptes_infra::camera::{Dialer, RtspProbe, Tls};
use panoptes_infra::crypto::AesGcmCipher;
use panoptes_infra::rate_limit::MemoryRateLimiter;
use panoptes_infra::slots::MemorySlots;
use panoptes_infra::store::SqlStore;
use panoptes_infra::wiring::{self, Backends, Platform};
use panoptes_shared::config::Config;
use panoptes_shared::ports::{CameraProbe, EventBus, SecretCipher};
use poem::{EndpointExt, Route};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::key_usage::KeyUsage;
use crate::auth::session::SessionTokens;
use crate::components::Components;
use crate::http::client_ip::TrustedProxies;
use crate::http::connections::ConnectionLimits;
use crate::http::cors::CorsPolicy;
use crate::http::metrics::HttpMetrics;
use crate::http::middleware::RequestLayer;
use crate::http::serve::ServeOptions;
use crate::limits::{AuthLimits, ClientGate};
use crate::sse::SseSettings;
use crate::sse::hub::Hub;
use crate::state::AppState;
use panoptes_infra::crypto::PasswordHasher;

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    body_limit: usize,
    grace: Duration,
    connections: ConnectionLimits,
}

pub use panoptes_infra::wiring::connect_store;

/// How long a stopping gateway waits for stream slots to be given back.
const SLOTS_SETTLE: Duration = Duration::from_secs(2);

/// `--listen` and `--data-dir`, as `panoptes up`, `panoptes gateway` and
/// `panoptes-gateway` take them.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Listen address (server.listen).
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory for the SQLite file and generated secrets (data.dir).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

impl ServeArgs {
    /// Override the config with the flags given.
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(listen) = &self.listen {
            cfg.server.listen = listen.clone();
        }
        if let Some(dir) = &self.data_dir {
            cfg.data.dir = dir.clone();
        }
    }
}

/// The gateway's listener, bound before anything is built on it.
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
    cfg: Config,
}

impl Listener {
    /// Bind `server.listen`.
    pub async fn bind(cfg: &Config) -> anyhow::Result<Self> {
        let addr = cfg.listen_addr()?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let addr = listener
            .local_addr()
            .context("listener has no socket address")?;
        // Local snapshot links point at this listener (its real port when
        // the config asked for port 0), unless a public URL is configured.
        let mut cfg = cfg.clone();
        if cfg.blobs.public_base_url.is_empty() {
            cfg.blobs.public_base_url = format!("http://{addr}");
        }
        Ok(Self {
            listener,
            addr,
            cfg,
        })
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The config, with `blobs.public_base_url` naming this listener when
    /// it was left empty: connect the platform with this one.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
}

/// The gateway's state on a connected platform, with the camera probe and
/// the in-process components the composing binary chose.
pub fn build_state(
    cfg: &Config,
    platform: &Platform,
    camera_probe: Arc<dyn CameraProbe>,
    components: Arc<Components>,
) -> anyhow::Result<AppState> {
    let sse = SseSettings::from(&cfg.sse);
    let backends = platform.backends.clone();
    Ok(AppState {
        store: platform.store.clone(),
        limiter: backends.limiter.clone(),
        limiter_backend: backends.kind,
        cipher: platform.cipher.clone(),
        sessions: Arc::new(SessionTokens::new(
            platform.session_secret.expose_secret().as_bytes(),
        )),
        key_usage: Arc::new(KeyUsage::default()),
        metrics: Arc::new(HttpMetrics::default()),
        session_ttl: chrono::Duration::seconds(
            i64::try_from(cfg.auth.session_ttl_seconds).unwrap_or(i64::MAX / 1000),
        ),
        hub: Hub::new(backends.bus.clone(), sse.queue_events),
        bus: backends.bus.clone(),
        slots: crate::sse::slots::Slots::new(backends.slots.clone()),
        sse,
        outbound: Arc::new(wiring::outbound_guard(cfg)),
        webhook_sender: Arc::new(wiring::webhook_sender(cfg)?),
        vlm: wiring::vlm_provider(cfg)?,
        camera_probe,
        probe_timeout: Duration::from_millis(cfg.ingest.connect_timeout_ms),
        components,
        edge: cfg.edge.clone(),
        device_seen: Arc::new(seen_throttle(&cfg.edge)),
        backends,
        blobs: platform.blobs.clone(),
        passwords: Arc::new(
            PasswordHasher::new(
                cfg.auth.password_hash_threads,
                Duration::from_millis(cfg.auth.password_hash_queue_ms),
            )
            .map_err(|e| anyhow::anyhow!("cannot start the password hashing threads: {e}"))?,
        ),
        hash_gate: ClientGate::new(cfg.auth.password_hashes_per_client),
        auth_limits: AuthLimits::from(&cfg.auth),
        proxies: Arc::new(
            TrustedProxies::parse(&cfg.server.trusted_proxies).map_err(anyhow::Error::msg)?,
        ),
        max_devices_per_user: cfg.limits.max_devices_per_user,
        webhooks_allow_http: cfg.webhooks.allow_http,
        cors: Arc::new(
            CorsPolicy::new(
                &cfg.server.cors_allowed_origins,
                cfg.server.cors_max_age_seconds,
            )
            .map_err(anyhow::Error::msg)?,
        ),
    })
}

/// `lastSeenAt` is written at most a few times per offline period.
fn seen_throttle(
    edge: &panoptes_shared::config::EdgeConfig,
) -> crate::auth::key_usage::Throttle<panoptes_shared::ids::DeviceId> {
    crate::auth::key_usage::Throttle::new(Duration::from_millis((edge.offline_after_ms / 4).max(1)))
}

impl Application {
    /// A gateway on its own (`panoptes-gateway`, and tests): the platform
    /// connected as configured, and the camera probe that needs no video
    /// codec ([`RtspProbe`]).
    pub async fn build(cfg: &Config) -> anyhow::Result<Self> {
        let listener = Listener::bind(cfg).await?;
        let platform = wiring::connect(listener.config()).await?;
        let probe = Arc::new(wiring::rtsp_probe(listener.config(), &platform)?);
        Self::assemble(listener, &platform, probe, Arc::default())
    }

    /// The gateway on `listener`, over `platform` (connected with
    /// [`Listener::config`]), probing cameras with `camera_probe`.
    pub fn assemble(
        listener: Listener,
        platform: &Platform,
        camera_probe: Arc<dyn CameraProbe>,
        components: Arc<Components>,
    ) -> anyhow::Result<Self> {
        let Listener {
            listener,
            addr,
            cfg,
        } = listener;
        let state = build_state(&cfg, platform, camera_probe, components)?;
        Ok(Self {
            listener,
            addr,
            state,
            body_limit: cfg.server.body_limit_bytes,
            grace: Duration::from_secs(cfg.server.shutdown_grace_seconds),
            connections: ConnectionLimits::from_config(&cfg.server)?,
        })
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let routes = routes(self.state.clone(), self.body_limit);
        tracing::info!(addr = %self.addr, store = self.state.store.backend(), limiter = self.state.limiter_backend.as_str(), "gateway listening");
        let (hub, stopping) = (self.state.hub.clone(), shutdown.clone());
        tokio::spawn(async move {
            stopping.cancelled().await;
            hub.close().await;
        });
        let slots = self.state.slots.clone();
        let options = ServeOptions {
            grace: self.grace,
            limits: self.connections,
            metrics: self.state.metrics.clone(),
        };
        let served = crate::http::serve::serve(self.listener, routes, shutdown, options)
            .await
            .context("server failed");
        // Streams that just ended give their slots back before the process exits.
        let _ = tokio::time::timeout(SLOTS_SETTLE, slots.settled()).await;
        served
    }
}

/// Every route, wrapped in the request middleware.
pub fn routes(state: AppState, body_limit: usize) -> impl poem::Endpoint<Output = poem::Response> {
    let metrics = state.metrics.clone();
    let proxies = state.proxies.clone();
    let frame_limit = state.edge.max_frame_bytes;
    let cors = state.cors.clone();
    let api = crate::api::service(state.clone());
    let spec = api.spec();
    let document = crate::openapi_doc::finished(&spec);
    let allow = Arc::new(crate::http::allow::AllowTable::from_spec(&document.json));
    // Swagger UI (assets embedded, no CDN) showing the finished document.
    let docs = api
        .swagger_ui_html()
        .replace(&spec, document.json.trim_end());
    let constraints = Arc::new(crate::http::constraints::Constraints::from_document(
        &document.json,
    ));
    Route::new()
        .nest("/", api)
        .at(
            "/docs",
            static_text(docs.clone(), "text/html; charset=utf-8"),
        )
        .at("/docs/", static_text(docs, "text/html; charset=utf-8"))
        .at(
            "/openapi.json",
            static_text(document.json, "application/json"),
        )
        .at(
            "/openapi.yaml",
            static_text(document.yaml, "application/yaml"),
        )
        .at("/blobs/*key", poem::get(crate::http::blobs::get_blob))
        .data(state)
        .data(constraints)
        .with(RequestLayer {
            metrics,
            body_limit,
            frame_limit,
            allow: allow.clone(),
            proxies,
        })
        .with(crate::http::cors::Cors {
            policy: cors,
            allow,
        })
}

/// `GET` of a fixed text (the OpenAPI document).
fn static_text(
    body: String,
    content_type: &'static str,
) -> impl poem::Endpoint<Output = poem::Response> {
    let body = bytes::Bytes::from(body);
    poem::get(poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type(content_type)
            .body(body.clone())
    }))
}

/// A state for rendering the OpenAPI document: nothing is connected or read.
pub fn spec_state() -> AppState {
    let local = Arc::new(panoptes_infra::blobs::LocalBlobs::new(
        std::env::temp_dir(),
        "http://spec.invalid",
        b"spec-only",
    ));
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new());
    let store =
        SqlStore::lazy("sqlite::memory:").expect("a lazy in-memory SQLite pool needs no I/O");
    let outbound = Arc::new(wiring::outbound_guard(&Config::default()));
    let cipher: Arc<dyn SecretCipher> = Arc::new(
        AesGcmCipher::from_base64(&AesGcmCipher::generate_key()).expect("a generated key is valid"),
    );
    AppState {
        store: Arc::new(store),
        limiter: Arc::new(MemoryRateLimiter::new()),
        limiter_backend: panoptes_shared::config::StateBackend::Memory,
        cipher: cipher.clone(),
        sessions: Arc::new(SessionTokens::new(b"spec-only-spec-only-spec-only-xx")),
        key_usage: Arc::new(KeyUsage::default()),
        metrics: Arc::new(HttpMetrics::default()),
        session_ttl: chrono::Duration::hours(1),
        hub: Hub::new(bus.clone(), 1),
        bus,
        slots: crate::sse::slots::Slots::new(Arc::new(MemorySlots::new())),
        sse: SseSettings::default(),
        outbound: outbound.clone(),
        webhook_sender: Arc::new(
            wiring::webhook_sender(&Config::default()).expect("the system roots make a sender"),
        ),
        vlm: Arc::new(panoptes_infra::vlm::DisabledVlm),
        camera_probe: Arc::new(RtspProbe::new(cipher, Dialer::new(outbound, Tls::system()))),
        probe_timeout: Duration::from_secs(10),
        components: Arc::default(),
        edge: Default::default(),
        device_seen: Arc::new(seen_throttle(&Default::default())),
        backends: Backends::in_process(&Config::default()),
        blobs: wiring::Blobs {
            store: local.clone(),
            local: Some(local),
        },
        passwords: Arc::new(
            PasswordHasher::new(1, Duration::from_secs(1)).expect("one hashing thread starts"),
        ),
        hash_gate: ClientGate::new(1),
        auth_limits: AuthLimits::from(&Config::default().auth),
        proxies: Arc::new(TrustedProxies::default()),
        max_devices_per_user: 0,
        webhooks_allow_http: false,
        cors: Arc::new(CorsPolicy::default()),
    }
}
