//! Factories for each adapter under test.

use std::time::Duration;

use panoptes_infra::store::{SqlStore, StoreOptions};

pub fn postgres_admin_url() -> String {
    std::env::var("PANOPTES_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("PANOPTES_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn opts(url: String) -> StoreOptions {
    StoreOptions {
        url,
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
    }
}

/// A migrated SQLite store in a fresh temporary file.
pub async fn sqlite() -> SqlStore {
    let dir = std::env::temp_dir().join(format!("panoptes-it-{}", uuid::Uuid::new_v4()));
    let store = SqlStore::connect(&opts(format!("sqlite:{}", dir.join("test.db").display())))
        .await
        .expect("sqlite");
    store.migrate().await.expect("migrate sqlite");
    store
}

/// A migrated PostgreSQL store in a fresh database of its own.
pub async fn postgres() -> SqlStore {
    let admin_url = postgres_admin_url();
    let admin = SqlStore::connect(&opts(admin_url.clone()))
        .await
        .expect("PostgreSQL must be running for these tests");
    let db = format!("panoptes_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(admin.pool())
        .await
        .expect("create database");
    admin.close().await;
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("postgres url has a database path");
    let store = SqlStore::connect(&opts(format!("{base}/{db}")))
        .await
        .expect("connect test database");
    store.migrate().await.expect("migrate postgres");
    store
}
