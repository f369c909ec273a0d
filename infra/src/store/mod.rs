//! The relational store: one SQL implementation over sqlx's runtime-generic
//! driver, two backends, each with its own migrations:
//!
//! - **SQLite** (embedded default): a file in the data dir, WAL journal,
//!   foreign keys on, a busy timeout so concurrent writers wait instead of failing.
//! - **PostgreSQL** (distributed): the product's store.
//!
//! Portable by construction: ids are UUID text, times epoch milliseconds,
//! JSON documents text, placeholders `$n` (both drivers accept them). The
//! queries are therefore written once and behave the same on both backends,
//! which the shared repository suite checks.
//!
//! Failure modes: a unique violation is `Conflict`; a pool timeout or a
//! connection that fails (I/O, TLS, a wire exchange broken off) is
//! `Unavailable { dependency: "store" }` (503); anything else is `Internal`
//! with the sqlx error as its source.

mod alerts;
mod api_keys;
mod attributes;
mod devices;
mod events;
mod insights;
mod metrics_history;
mod rows;
mod scenes;
mod tasks;
mod usage;
mod users;
mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use panoptes_shared::config::StoreBackend;
use panoptes_shared::ports::Store;
use panoptes_shared::{Error, Result};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connection settings for [`SqlStore::connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: StoreBackend,
    /// Longest a statement may take, waiting for a connection included.
    deadline: Duration,
}

/// Every statement runs under the store's deadline: sqlx bounds the wait for
/// a pooled connection (`acquire_timeout`), but not a server that stops
/// answering mid-statement; this does, and the caller gets 503.
pub(crate) trait Within<T>:
    std::future::Future<Output = Result<T, sqlx::Error>> + Sized
{
    fn within(self, deadline: Duration) -> Bounded<Self, T> {
        use futures::FutureExt;
        tokio::time::timeout(deadline, self).map(settle::<T> as fn(TimedResult<T>) -> Result<T>)
    }
}

impl<T, F: std::future::Future<Output = Result<T, sqlx::Error>>> Within<T> for F {}

pub(crate) type TimedResult<T> = Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>;

/// A statement future under the store's deadline.
pub(crate) type Bounded<F, T> =
    futures::future::Map<tokio::time::Timeout<F>, fn(TimedResult<T>) -> Result<T>>;

fn settle<T>(r: TimedResult<T>) -> Result<T> {
    match r {
        Ok(r) => r.map_err(map_err),
        Err(_) => Err(Error::unavailable(
            "store",
            "the store did not answer within its deadline",
        )),
    }
}

impl SqlStore {
    /// Connect (creating the SQLite file and its folder if needed). Does not migrate.
    pub async fn connect(opts: &StoreOptions) -> Result<Self> {
        install_default_drivers();
        let backend = StoreBackend::of_url(&opts.url)
            .ok_or_else(|| Error::internal("store url must start with sqlite: or postgres://"))?;
        let mut url = opts.url.clone();
        if backend == StoreBackend::Sqlite {
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default();
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| Error::unavailable("store", e))?;
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let mut pool = AnyPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout);
        if backend == StoreBackend::Sqlite {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect(&url).await.map_err(map_err)?;
        Ok(Self {
            pool,
            backend,
            deadline: opts.acquire_timeout,
        })
    }

    /// A store that connects on first use (for rendering the OpenAPI document,
    /// which never touches it).
    pub fn lazy(url: &str) -> Result<Self> {
        install_default_drivers();
        let backend = StoreBackend::of_url(url).unwrap_or(StoreBackend::Postgres);
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect_lazy(url)
            .map_err(map_err)?;
        Ok(Self {
            pool,
            backend,
            deadline: Duration::from_secs(5),
        })
    }

    /// Apply the embedded migrations of this backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            StoreBackend::Sqlite => &SQLITE_MIGRATIONS,
            StoreBackend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(Error::internal)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend.as_str()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(())
    }
}

/// Map a sqlx error onto the domain error kinds (see the module docs).
pub(crate) fn map_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::Conflict(conflict_message(db.message()))
        }
        // `Protocol`: the wire exchange broke off, e.g. a connection closed
        // while TLS was being negotiated (sqlx reads that EOF as an
        // "unexpected response from SSLRequest") -- the store is not
        // reachable as it should be, which is an outage, not a bug here.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => Error::unavailable("store", e),
        _ => Error::internal(e),
    }
}

fn conflict_message(db_message: &str) -> String {
    if db_message.contains("email") {
        "an account with this email already exists".into()
    } else {
        "the resource already exists".into()
    }
}
