//! The `panoptes` command line: run the platform, migrate, create an admin,
//! write the OpenAPI document.

use panoptes_shared::ports::prelude::*;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use panoptes_shared::config::Config;
use panoptes_shared::domain::user::{Email, Role, User, check_password};
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::Store;
use panoptes_shared::time::now;
use tokio_util::sync::CancellationToken;

use crate::app::{self, Application};

#[derive(Parser)]
#[command(
    name = "panoptes",
    version,
    about = "Panoptes video analytics platform"
)]
pub struct Cli {
    /// TOML config file (overridden by PANOPTES__SECTION__KEY variables).
    #[arg(long, global = true, env = "PANOPTES_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process (embedded defaults: SQLite, no Redis).
    Up(RunArgs),
    /// Run the HTTP gateway only (for distributed deployments).
    Gateway(RunArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Create an admin account, or promote an existing one. The password is read
    /// from PANOPTES_ADMIN_PASSWORD, or from the first line of standard input.
    CreateAdmin {
        #[arg(long)]
        email: String,
    },
    /// Publish realistic demo analysis results for one of a user's devices on the
    /// configured bus (for demos, tests and load tools; no public endpoint can).
    PublishDemo {
        /// The device owner's email.
        #[arg(long)]
        email: String,
        #[arg(long)]
        device: uuid::Uuid,
        #[arg(long, default_value_t = 10)]
        count: u64,
        /// Pause between events, in milliseconds.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
    /// Write openapi.json and openapi.yaml generated from the code.
    Openapi {
        #[arg(long, default_value = "openapi")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Listen address (server.listen).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory for the SQLite file and generated secrets (data.dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        if let Command::Openapi { out } = &self.command {
            crate::openapi_doc::write(out, app::spec_state())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {0}/openapi.json and {0}/openapi.yaml", out.display());
            return Ok(());
        }
        let mut cfg = Config::load(self.config.as_deref())?;
        if let Command::Up(args) | Command::Gateway(args) = &self.command {
            if let Some(listen) = &args.listen {
                cfg.server.listen = listen.clone();
            }
            if let Some(dir) = &args.data_dir {
                cfg.data.dir = dir.clone();
            }
        }
        let telemetry = panoptes_shared::telemetry::init_with(
            &cfg.log.format,
            &cfg.log.level,
            &cfg.telemetry,
            "panoptes",
        );
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        let result = match self.command {
            Command::Up(_) | Command::Gateway(_) => {
                let app = Application::build(&cfg).await?;
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                let up = matches!(self.command, Command::Up(_));
                let workers = up.then(|| {
                    tokio::spawn(run_workers(
                        cfg.clone(),
                        app.state().clone(),
                        shutdown.clone(),
                    ))
                });
                if up && cfg.edge.demo_camera {
                    let (store, addr, dir) =
                        (app.state().store.clone(), app.addr(), cfg.data.dir.clone());
                    let (edge, stop) = (cfg.edge.clone(), shutdown.clone());
                    tokio::spawn(async move {
                        crate::demo_camera::run(store, addr, &dir, edge, stop).await
                    });
                }
                let served = app.run_until_stopped(shutdown.clone()).await;
                shutdown.cancel();
                if let Some(w) = workers {
                    w.await.context("the worker roles panicked")?;
                }
                served
            }
            Command::Migrate => {
                let store = app::connect_store(&cfg).await?;
                println!("migrations applied ({})", store.backend());
                Ok(())
            }
            Command::CreateAdmin { email } => create_admin(&cfg, &email).await,
            Command::PublishDemo {
                email,
                device,
                count,
                interval_ms,
            } => publish_demo(&cfg, &email, device, count, interval_ms).await,
            Command::Openapi { .. } => Ok(()),
        };
        // The spans of the last requests and frames, before the process exits.
        telemetry.shutdown().await;
        result
    }
}

async fn create_admin(cfg: &Config, email: &str) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = app::connect_store(cfg).await?;
    if let Some((user, _)) = store.find_user_by_email(&email).await? {
        store.set_user_role(user.id, Role::Admin).await?;
        println!("{} is now an admin", email.as_str());
        return Ok(());
    }
    let password = match std::env::var("PANOPTES_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    check_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = panoptes_infra::crypto::hash_password(&password)?;
    let user = User {
        id: UserId::new(),
        email,
        name: None,
        role: Role::Admin,
        created_at: now(),
    };
    store.create_user(&user, &hash).await?;
    println!("admin {} created", user.email.as_str());
    Ok(())
}

async fn publish_demo(
    cfg: &Config,
    email: &str,
    device: uuid::Uuid,
    count: u64,
    interval_ms: u64,
) -> anyhow::Result<()> {
    let state = app::build_state(cfg).await?;
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (user, _) = state
        .store
        .find_user_by_email(&email)
        .await?
        .context("no user with this email")?;
    let device = state
        .store
        .get_device(user.id, panoptes_shared::ids::DeviceId(device))
        .await?
        .context("no such device for this user")?;
    let task = uuid::Uuid::new_v4();
    for n in 0..count {
        let published =
            crate::sse::demo::publish(state.bus.as_ref(), user.id, device.id, task, n..n + 1)
                .await?;
        if let Some(e) = published.first() {
            println!("{} {}", e.event_id(), n + 1);
        }
        if interval_ms > 0 && n + 1 < count {
            tokio::time::sleep(std::time::Duration::from_millis(interval_ms)).await;
        }
    }
    Ok(())
}

/// `up`: the ingest, detect, analytics and schedule roles inside this process, on the same
/// ports as the gateway. Without a usable detector (no ONNX Runtime library,
/// say) the platform still runs, without detection, and says why.
async fn run_workers(cfg: Config, state: crate::state::AppState, shutdown: CancellationToken) {
    use panoptes_workers::Role;
    let shared = panoptes_workers::roles::Shared {
        store: state.store.clone(),
        backends: state.backends.clone(),
        blobs: state.blobs.store.clone(),
        cipher: state.cipher.clone(),
    };
    let all = [Role::Ingest, Role::Detect, Role::Analytics, Role::Schedule];
    if let Err(e) = panoptes_workers::roles::run(&cfg, &all, shared.clone(), shutdown.clone()).await
    {
        if shutdown.is_cancelled() {
            tracing::error!(error = format!("{e:#}"), "worker roles failed");
            return;
        }
        tracing::error!(
            error = format!("{e:#}"),
            "detection is disabled: the detect role cannot start"
        );
        let rest = [Role::Ingest, Role::Analytics, Role::Schedule];
        if let Err(e) = panoptes_workers::roles::run(&cfg, &rest, shared, shutdown).await {
            tracing::error!(error = format!("{e:#}"), "the worker roles failed");
        }
    }
}

/// Cancel `token` on Ctrl-C or SIGTERM.
async fn stop_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}
