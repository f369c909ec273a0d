//! A worker's own small HTTP listener: `/metrics` (Prometheus) and `/healthz`.

use std::sync::Arc;

use poem::listener::TcpListener;
use poem::{EndpointExt, Route, Server, get, handler, web::Data};
use tokio_util::sync::CancellationToken;

use crate::metrics::WorkerMetrics;

#[handler]
fn render_metrics(Data(m): Data<&Arc<WorkerMetrics>>) -> poem::Response {
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(m.render())
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// Serve until `shutdown`; a listener that cannot bind is logged, not fatal
/// (the node still works, only unobserved).
pub async fn serve(addr: String, metrics: Arc<WorkerMetrics>, shutdown: CancellationToken) {
    let app = Route::new()
        .at("/metrics", get(render_metrics))
        .at("/healthz", get(healthz))
        .data(metrics);
    tracing::info!(%addr, "worker metrics listening");
    if let Err(e) = Server::new(TcpListener::bind(addr.clone()))
        .run_with_graceful_shutdown(app, shutdown.cancelled_owned(), None)
        .await
    {
        tracing::warn!(%addr, error = %e, "worker metrics listener failed");
    }
}
