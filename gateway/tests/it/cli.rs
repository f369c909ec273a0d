//! The `panoptes` binary's maintenance commands, run as a user would.

use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, test_database};

fn panoptes(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panoptes"));
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("panoptes runs")
}

#[tokio::test]
async fn create_admin_makes_an_account_that_can_use_admin_endpoints() {
    let app = spawn_app().await;
    let db = test_database().await;
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4());
    let out = panoptes(
        &["create-admin", "--email", &email],
        &[
            ("PANOPTES__STORE__URL", &db),
            ("PANOPTES_ADMIN_PASSWORD", "admin password 1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("admin password 1"),
        "password never printed"
    );
    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": "admin password 1"})),
        )
        .await
        .expect(200);
    assert_eq!(login.data()["user"]["role"], "admin");
    app.get(
        "/api/v1/admin/users",
        login.data()["token"].as_str().unwrap(),
    )
    .await
    .expect(200);

    // Running it again for an existing user promotes, and a short password is refused.
    let user = app.signup().await;
    let out = panoptes(
        &["create-admin", "--email", &user.email],
        &[("PANOPTES__STORE__URL", &db)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.get("/api/v1/admin/users", &user.token)
        .await
        .expect(200);
    let out = panoptes(
        &["create-admin", "--email", "new-admin@example.com"],
        &[
            ("PANOPTES__STORE__URL", &db),
            ("PANOPTES_ADMIN_PASSWORD", "short"),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
}

#[test]
fn bad_configuration_is_refused_with_the_key_named() {
    let out = panoptes(&["migrate"], &[("PANOPTES__STORE__URL", "mysql://nope")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("store.url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = panoptes(
        &["migrate"],
        &[
            ("PANOPTES__AUTH__JWT_SECRET", "too-short"),
            ("PANOPTES__DATA__DIR", "/tmp/panoptes-cli-x"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auth.jwt_secret") && !err.contains("too-short"),
        "{err}"
    );
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = std::env::temp_dir().join(format!("panoptes-cli-{}", uuid::Uuid::new_v4()));
    let out = panoptes(
        &["migrate"],
        &[("PANOPTES__DATA__DIR", dir.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sqlite"));
    assert!(dir.join("panoptes.db").exists());
    // Idempotent.
    assert!(
        panoptes(
            &["migrate"],
            &[("PANOPTES__DATA__DIR", dir.to_str().unwrap())]
        )
        .status
        .success()
    );
}
