//! `panoptes-worker --role ingest --role detect --role analytics --role schedule`: pipeline roles in their
//! own process, on the shared backends named by config (Redis, PostgreSQL, S3).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use panoptes_shared::config::Config;

#[derive(Parser)]
#[command(name = "panoptes-worker", version, about = "Panoptes pipeline worker")]
struct Args {
    /// Roles to run (repeatable).
    #[arg(long, value_enum, required = true)]
    role: Vec<panoptes_workers::Role>,
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
    let telemetry = panoptes_shared::telemetry::init_with(
        &cfg.log.format,
        &cfg.log.level,
        &cfg.telemetry,
        "panoptes-worker",
    );
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let shared = panoptes_workers::roles::connect(&cfg)
        .await
        .context("cannot connect the worker's backends")?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    #[cfg(unix)]
    {
        let stop = shutdown.clone();
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::spawn(async move {
                term.recv().await;
                stop.cancel();
            });
        }
    }
    let result = panoptes_workers::roles::run(&cfg, &args.role, shared, shutdown).await;
    // The spans of the last frames, before the process exits.
    telemetry.shutdown().await;
    result
}
