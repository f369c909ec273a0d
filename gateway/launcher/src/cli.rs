//! The `panoptes` command line: run the platform (in one process, or as a
//! gateway or worker node: [`crate::compose`]), migrate, create an admin,
//! publish demo events, write the OpenAPI document.

use panoptes_shared::ports::prelude::*;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use panoptes_gateway::app::{self, ServeArgs};
use panoptes_infra::wiring;
use panoptes_shared::config::Config;
use panoptes_shared::domain::user::{Email, Role, User, check_password};
use panoptes_shared::ids::UserId;
use panoptes_shared::time::now;

use crate::compose;
use crate::roles;

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
    Up(ServeArgs),
    /// Run the HTTP gateway only (for distributed deployments).
    Gateway(ServeArgs),
    /// Run pipeline roles (for distributed deployments): `--role ingest
    /// --role detect ...` (also installed as `panoptes-worker`).
    Worker(WorkerArgs),
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
    /// Load the configuration (file and PANOPTES__* variables) and report
    /// what it selects; exit 1 when it is invalid or names unknown settings.
    CheckConfig,
    /// Print, as JSON, the settings a distributed production deployment must
    /// give each process (key, environment variable, processes, secret or not).
    ConfigReference,
    /// Exit 0 when this host's process answers `/healthz` (a container health
    /// check needing no shell nor curl): the worker's `worker.metrics_listen`,
    /// or with `--gateway` the gateway's `server.listen`.
    Healthcheck {
        #[arg(long)]
        gateway: bool,
    },
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Roles to run (repeatable).
    #[arg(long, value_enum, required = true)]
    pub role: Vec<roles::Role>,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        if let Command::Openapi { out } = &self.command {
            panoptes_gateway::openapi_doc::write(out, app::spec_state())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {0}/openapi.json and {0}/openapi.yaml", out.display());
            return Ok(());
        }
        if let Command::ConfigReference = &self.command {
            println!("{}", config_reference()?);
            return Ok(());
        }
        let mut cfg = Config::load(self.config.as_deref())?;
        if let Command::CheckConfig = &self.command {
            anyhow::ensure!(cfg.warnings.is_empty(), "{}", cfg.warnings.join("; "));
            println!(
                "config ok: store {}, shared state {}, blobs {}",
                cfg.store_backend()?.as_str(),
                cfg.state_backend().as_str(),
                cfg.blobs.backend.as_str()
            );
            return Ok(());
        }
        if let Command::Healthcheck { gateway } = &self.command {
            let listen = if *gateway {
                cfg.server.listen.clone()
            } else {
                cfg.worker.metrics_listen.clone()
            };
            let addr = listen
                .parse()
                .with_context(|| format!("`{listen}` is not a listen address"))?;
            return panoptes_infra::process::check_health(
                addr,
                "/healthz",
                std::time::Duration::from_secs(3),
            )
            .await;
        }
        if let Command::Up(args) | Command::Gateway(args) = &self.command {
            args.apply(&mut cfg);
        }
        let telemetry = panoptes_shared::telemetry::init_for(&cfg, "panoptes");
        let result = match self.command {
            Command::Up(_) => compose::up(&cfg).await,
            Command::Gateway(_) => compose::gateway(&cfg).await,
            Command::Worker(args) => compose::worker(&cfg, &args.role).await,
            Command::Migrate => {
                let store = wiring::connect_store(&cfg).await?;
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
            Command::Openapi { .. }
            | Command::ConfigReference
            | Command::CheckConfig
            | Command::Healthcheck { .. } => Ok(()),
        };
        // The spans of the last requests and frames, before the process exits.
        telemetry.shutdown().await;
        result
    }
}

/// The production settings as JSON: `{"required": [{key, env, processes,
/// secret, example, why}]}`.
fn config_reference() -> anyhow::Result<String> {
    use panoptes_shared::config::production::REQUIRED;
    let required: Vec<serde_json::Value> = REQUIRED
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r)?;
            v["env"] = r.env().into();
            Ok(v)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(serde_json::to_string_pretty(
        &serde_json::json!({ "required": required }),
    )?)
}

async fn create_admin(cfg: &Config, email: &str) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = wiring::connect_store(cfg).await?;
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
    let state = wiring::connect(cfg).await?;
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
        let published = panoptes_gateway::sse::demo::publish(
            state.backends.bus.as_ref(),
            user.id,
            device.id,
            task,
            n..n + 1,
        )
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
