//! Health (`/healthz`: the process answers), readiness (`/readyz`: every
//! configured dependency answers) and Prometheus metrics (`/metrics`).

use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::v1::ApiTags;
use crate::http::envelope::Reply;
use crate::state::AppState;

pub struct OpsApi {
    pub state: AppState,
}

#[derive(Debug, Object)]
pub struct DependencyStatus {
    pub name: String,
    /// `ok` or `unavailable`.
    pub status: String,
    /// Which backend serves it (`sqlite`, `postgres`, `redis`, `memory`).
    pub backend: String,
}

/// A part of the platform running in this process (the pipeline roles of
/// `panoptes up`).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ComponentStatus {
    /// `ingest`, `detector`, `analytics`, `schedule`.
    pub name: String,
    /// `ok` or `unavailable`.
    pub status: String,
    /// Why it is unavailable.
    pub reason: Option<String>,
}

#[derive(Debug, Object)]
pub struct Readiness {
    /// Requests can be served: every dependency answers.
    pub ready: bool,
    /// `ready`; `degraded` when ready but a component of this process is
    /// unavailable (e.g. `up` without a detector: no detections); `not_ready`.
    pub status: String,
    pub dependencies: Vec<DependencyStatus>,
    /// The components running in this process besides the gateway (empty
    /// for a gateway on its own).
    pub components: Vec<ComponentStatus>,
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Every dependency answered.
    #[oai(status = 200)]
    Ready(poem_openapi::payload::Json<crate::http::envelope::Envelope<Readiness>>),
    /// At least one dependency did not answer.
    #[oai(status = 503)]
    NotReady(poem_openapi::payload::Json<crate::http::envelope::Envelope<Readiness>>),
}

/// How long `/readyz` waits for one dependency.
const READY_DEADLINE: std::time::Duration = std::time::Duration::from_millis(900);

async fn within_deadline(
    ping: impl std::future::Future<Output = panoptes_shared::Result<()>>,
) -> panoptes_shared::Result<()> {
    tokio::time::timeout(READY_DEADLINE, ping)
        .await
        .unwrap_or_else(|_| {
            Err(panoptes_shared::Error::unavailable(
                "dependency",
                "no answer within 900 ms",
            ))
        })
}

#[OpenApi(tag = "ApiTags::Ops")]
impl OpsApi {
    /// Liveness: the process is up.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Reply<Readiness> {
        Reply::new(
            "alive",
            Readiness {
                ready: true,
                status: "ready".into(),
                dependencies: vec![],
                components: vec![],
            },
        )
    }

    /// Readiness: the store, the rate-limit backend and the event bus answer.
    /// Checked together, each within 900 ms, so the answer comes within a
    /// second even when a dependency hangs. A component of this process that
    /// is unavailable (`panoptes up` without a detector) makes the answer
    /// `degraded`, still 200: the API serves.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self) -> ReadyResponse {
        let (store, limiter, bus) = tokio::join!(
            within_deadline(self.state.store.ping()),
            within_deadline(self.state.limiter.ping()),
            within_deadline(self.state.bus.ping()),
        );
        let dep = |name: &str, backend: &str, ok: bool| DependencyStatus {
            name: name.into(),
            status: if ok { "ok" } else { "unavailable" }.into(),
            backend: backend.into(),
        };
        let deps = vec![
            dep("store", self.state.store.backend(), store.is_ok()),
            dep(
                "rateLimiter",
                self.state.limiter_backend.as_str(),
                limiter.is_ok(),
            ),
            dep("eventBus", self.state.bus.backend(), bus.is_ok()),
        ];
        for (name, r) in [
            ("store", &store),
            ("rateLimiter", &limiter),
            ("eventBus", &bus),
        ] {
            if let Err(e) = r {
                tracing::warn!(dependency = name, error = %e, "readiness check failed");
            }
        }
        let ready = store.is_ok() && limiter.is_ok() && bus.is_ok();
        let components: Vec<ComponentStatus> = self
            .state
            .components
            .list()
            .into_iter()
            .map(|c| ComponentStatus {
                name: c.name,
                status: if c.unavailable.is_some() {
                    "unavailable"
                } else {
                    "ok"
                }
                .into(),
                reason: c.unavailable,
            })
            .collect();
        let degraded = components.iter().any(|c| c.reason.is_some());
        let (status, message) = match (ready, degraded) {
            (false, _) => ("not_ready", "not ready"),
            (true, true) => ("degraded", "ready, degraded"),
            (true, false) => ("ready", "ready"),
        };
        let mut reply: Reply<Readiness> = Reply::new(
            message,
            Readiness {
                ready,
                status: status.into(),
                dependencies: deps,
                components,
            },
        );
        if ready {
            ReadyResponse::Ready(poem_openapi::payload::Json(reply.0))
        } else {
            reply.0.success = false;
            reply.0.status_code = 503;
            ReadyResponse::NotReady(poem_openapi::payload::Json(reply.0))
        }
    }

    /// Prometheus metrics (text exposition format).
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> PlainText<String> {
        let mut text = self.state.metrics.render();
        let hub = &self.state.hub;
        text.push_str(&format!(
            "# HELP panoptes_sse_streams SSE streams open on this node.\n# TYPE panoptes_sse_streams gauge\npanoptes_sse_streams {}\n\
             # HELP panoptes_sse_subscribed_users Users with a bus subscription on this node.\n# TYPE panoptes_sse_subscribed_users gauge\npanoptes_sse_subscribed_users {}\n",
            hub.active_streams(),
            hub.active_users().await
        ));
        panoptes_shared::metrics::process::render(&mut text);
        PlainText(text)
    }
}
