//! `panoptes-gateway`: the HTTP gateway alone, for deployments that run the
//! pipeline roles elsewhere (`panoptes worker --role ...`). It links neither
//! ONNX Runtime nor the video codecs: camera probes stop at the first H.264
//! access unit received ([`panoptes_infra::camera::RtspProbe`]) instead of
//! decoding it. Same flags and configuration as `panoptes gateway`; the store
//! is migrated on start. The admin commands (`migrate`, `create-admin`,
//! `openapi`, ...) are the `panoptes` launcher's.

use std::path::PathBuf;

use clap::Parser;
use panoptes_gateway::Application;
use panoptes_gateway::app::ServeArgs;
use panoptes_shared::config::Config;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "panoptes-gateway",
    version,
    about = "Panoptes HTTP gateway (without the pipeline roles)"
)]
struct Args {
    /// TOML config file (overridden by PANOPTES__SECTION__KEY variables).
    #[arg(long, env = "PANOPTES_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Exit 0 when this host's gateway (`server.listen`) answers `/healthz`
    /// (a container health check needing no shell nor curl).
    Healthcheck,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("panoptes-gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = Config::load(args.config.as_deref())?;
    args.serve.apply(&mut cfg);
    if let Some(Command::Healthcheck) = args.command {
        return panoptes_infra::process::check_health(
            cfg.listen_addr()?,
            "/healthz",
            std::time::Duration::from_secs(3),
        )
        .await;
    }
    let telemetry = panoptes_shared::telemetry::init_for(&cfg, "panoptes-gateway");
    let served = async {
        let app = Application::build(&cfg).await?;
        let shutdown = CancellationToken::new();
        panoptes_infra::process::cancel_on_signal(shutdown.clone());
        app.run_until_stopped(shutdown).await
    }
    .await;
    // The spans of the last requests, before the process exits.
    telemetry.shutdown().await;
    served
}
