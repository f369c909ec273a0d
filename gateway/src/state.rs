//! What every handler shares: the ports (store, rate limiter, cipher) and the
//! session-token keys. Cheap to clone; built once by `Application::build`.

use std::sync::Arc;

use panoptes_shared::ports::{RateLimiter, SecretCipher, Store};

use crate::auth::key_usage::KeyUsage;
use crate::auth::session::SessionTokens;
use crate::http::metrics::HttpMetrics;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limiter: Arc<dyn RateLimiter>,
    /// `memory` or `redis`, for `/readyz`.
    pub limiter_backend: &'static str,
    pub cipher: Arc<dyn SecretCipher>,
    pub sessions: Arc<SessionTokens>,
    pub key_usage: Arc<KeyUsage>,
    pub metrics: Arc<HttpMetrics>,
    pub session_ttl: chrono::Duration,
}
