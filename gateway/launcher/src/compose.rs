//! The composition root: the one place the platform's parts are put
//! together. `up` (everything in one process), `gateway` and `worker`
//! connect the platform once ([`wiring::connect`]: store, backends, blobs,
//! secrets), choose the adapters (the pipeline's decoding camera probe), and
//! run until a signal, or until a role fails: then the process exits
//! non-zero.

use std::sync::Arc;

use panoptes_gateway::app::{Application, Listener};
use panoptes_gateway::components::Components;
use panoptes_infra::wiring::{self, Platform};
use panoptes_shared::config::Config;
use panoptes_shared::ports::CameraProbe;
use panoptes_workers::ingest::DecodingProbe;
use tokio_util::sync::CancellationToken;

use crate::roles::{Pipeline, Role};

/// The probe of the pipeline's processes: it decodes the first frame.
fn decoding_probe(cfg: &Config, platform: &Platform) -> anyhow::Result<Arc<dyn CameraProbe>> {
    Ok(Arc::new(DecodingProbe::new(
        platform.cipher.clone(),
        wiring::camera_dialer(cfg)?,
    )))
}

/// `panoptes gateway`: the HTTP gateway, probing cameras as the pipeline does.
pub async fn gateway(cfg: &Config) -> anyhow::Result<()> {
    let listener = Listener::bind(cfg).await?;
    let cfg = listener.config().clone();
    let platform = wiring::connect(&cfg).await?;
    let probe = decoding_probe(&cfg, &platform)?;
    let app = Application::assemble(listener, &platform, probe, Arc::default())?;
    let shutdown = CancellationToken::new();
    panoptes_infra::process::cancel_on_signal(shutdown.clone());
    app.run_until_stopped(shutdown).await
}

/// `panoptes worker --role ...`: the roles in their own process, on the
/// shared backends named by config (Redis, PostgreSQL, S3).
pub async fn worker(cfg: &Config, roles: &[Role]) -> anyhow::Result<()> {
    let platform = wiring::connect(cfg)
        .await
        .map_err(|e| e.context("cannot connect the worker's backends"))?;
    let shutdown = CancellationToken::new();
    panoptes_infra::process::cancel_on_signal(shutdown.clone());
    let probe = decoding_probe(cfg, &platform)?;
    let mut pipeline = Pipeline::new(cfg, platform, probe, shutdown);
    for role in roles {
        pipeline.start(*role).await?;
    }
    pipeline.run().await
}

/// `panoptes up`: the gateway and the ingest, detect, analytics, notify
/// and schedule roles in one process, on the same ports, plus the demo camera.
///
/// Without a usable detector (no ONNX Runtime library, say) the platform
/// still runs, without detections: `/readyz` answers `degraded` and names
/// the reason. Any role that fails once started stops the process with a
/// non-zero status.
pub async fn up(cfg: &Config) -> anyhow::Result<()> {
    let listener = Listener::bind(cfg).await?;
    let cfg = listener.config().clone();
    let platform = wiring::connect(&cfg).await?;
    let probe = decoding_probe(&cfg, &platform)?;
    let components = Arc::new(Components::default());
    let shutdown = CancellationToken::new();
    panoptes_infra::process::cancel_on_signal(shutdown.clone());
    let app = Application::assemble(listener, &platform, probe.clone(), components.clone())?;
    let pipeline = Pipeline::new(&cfg, platform.clone(), probe, shutdown.clone());
    // The API serves while the roles start (loading the model takes a moment).
    let roles = tokio::spawn(up_roles(pipeline, components, shutdown.clone()));
    if cfg.edge.demo_camera {
        let (store, addr, dir) = (platform.store.clone(), app.addr(), cfg.data.dir.clone());
        let (edge, stop) = (cfg.edge.clone(), shutdown.clone());
        tokio::spawn(async move { crate::demo_camera::run(store, addr, &dir, edge, stop).await });
    }
    let served = app.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    let roles = match roles.await {
        Ok(r) => r,
        Err(e) => Err(anyhow::anyhow!("the worker roles panicked: {e}")),
    };
    // A role's failure is why the gateway stopped: report that first.
    roles.and(served)
}

/// Start every role of `up` (the detector may be unavailable: recorded for
/// `/readyz`) and run them; any other failure stops the process.
async fn up_roles(
    mut pipeline: Pipeline,
    components: Arc<Components>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    for role in [
        Role::Detect,
        Role::Ingest,
        Role::Analytics,
        Role::Notify,
        Role::Schedule,
    ] {
        let name = component_name(role);
        match pipeline.start(role).await {
            Ok(()) => components.running(name),
            Err(e) if role == Role::Detect => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "detection is disabled: the detect role cannot start"
                );
                components.unavailable(name, format!("{e:#}"));
            }
            Err(e) => {
                shutdown.cancel();
                return Err(e);
            }
        }
    }
    pipeline.run().await
}

/// The name `/readyz` gives a role.
fn component_name(role: Role) -> &'static str {
    match role {
        Role::Detect => "detector",
        other => other.as_str(),
    }
}
