//! `panoptes-worker --role ingest --role detect --role analytics --role
//! schedule`: `panoptes worker` under its former name. Pipeline roles in
//! their own process, on the shared backends named by config (Redis,
//! PostgreSQL, S3).

use std::path::PathBuf;

use clap::Parser;
use panoptes_launcher::cli::WorkerArgs;
use panoptes_shared::config::Config;

#[derive(Parser)]
#[command(name = "panoptes-worker", version, about = "Panoptes pipeline worker")]
struct Args {
    #[command(flatten)]
    worker: WorkerArgs,
    /// TOML config file (overridden by PANOPTES__SECTION__KEY variables).
    #[arg(long, env = "PANOPTES_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("panoptes-worker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::load(args.config.as_deref())?;
    let telemetry = panoptes_shared::telemetry::init_for(&cfg, "panoptes-worker");
    let result = panoptes_launcher::compose::worker(&cfg, &args.worker.role).await;
    // The spans of the last frames, before the process exits.
    telemetry.shutdown().await;
    result
}
