//! Accounts and sessions.

use chrono::{Duration, Utc};
use panoptes_gateway::auth::session::SessionTokens;
use panoptes_shared::domain::user::Role;
use panoptes_shared::ids::{SessionId, UserId};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{JWT_SECRET, spawn_app};

#[tokio::test]
async fn signup_then_login_returns_a_working_session() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let me = app.get("/api/v1/users/me", &user.token).await.expect(200);
    assert_eq!(me.data()["email"], user.email);
    assert_eq!(me.data()["role"], "user");

    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": user.email.to_uppercase(), "password": "correct horse"})),
        )
        .await
        .expect(200);
    assert_eq!(login.data()["tokenType"], "Bearer");
    let token = login.data()["token"].as_str().unwrap();
    app.get("/api/v1/users/me", token).await.expect(200);
}

#[tokio::test]
async fn signup_rejects_duplicates_and_bad_fields() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let dup = json!({"email": user.email, "password": "another password"});
    app.call(Method::POST, "/api/v1/auth/signup", None, Some(dup))
        .await
        .expect_error(409, "CONFLICT");
    for (body, field) in [
        (
            json!({"email": "not-an-email", "password": "long enough"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
        ),
        (json!({"email": "a@example.com"}), "password"),
        (json!({"email": 5, "password": "long enough"}), "email"),
        (
            json!({"email": "b@example.com", "password": "long enough", "name": "x".repeat(101)}),
            "name",
        ),
    ] {
        app.call(Method::POST, "/api/v1/auth/signup", None, Some(body))
            .await
            .expect_invalid(field);
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let wrong = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": user.email, "password": "wrong password"})),
        )
        .await
        .expect_error(401, "UNAUTHORIZED");
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "wrong password"})),
        )
        .await
        .expect_error(401, "UNAUTHORIZED");
    assert_eq!(wrong.body["message"], unknown.body["message"]);
}

#[tokio::test]
async fn logout_revokes_the_session_at_once() {
    let app = spawn_app().await;
    let user = app.signup().await;
    app.post("/api/v1/auth/logout", &user.token, json!({}))
        .await
        .expect(200);
    let r = app
        .get("/api/v1/users/me", &user.token)
        .await
        .expect_error(401, "UNAUTHORIZED");
    assert!(r.body["message"].as_str().unwrap().contains("revoked"));
}

#[tokio::test]
async fn missing_malformed_forged_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let user = app.signup().await;
    app.call(Method::GET, "/api/v1/users/me", None, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    let basic = app
        .client
        .get(format!("{}/api/v1/users/me", app.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    app.get("/api/v1/users/me", "not-a-jwt")
        .await
        .expect_error(401, "UNAUTHORIZED");
    app.get("/api/v1/users/me", "syncai_pat_doesnotexist")
        .await
        .expect_error(401, "UNAUTHORIZED");

    // Signed with another secret.
    let forged = SessionTokens::new(b"some-other-secret-some-other-secret!!")
        .issue(
            user.id.parse::<UserId>().unwrap(),
            SessionId::new(),
            Role::Admin,
            Utc::now(),
            Utc::now() + Duration::hours(1),
        )
        .unwrap();
    app.get("/api/v1/users/me", &forged)
        .await
        .expect_error(401, "UNAUTHORIZED");

    // Right secret, past expiry.
    let expired = SessionTokens::new(JWT_SECRET.as_bytes())
        .issue(
            user.id.parse().unwrap(),
            SessionId::new(),
            Role::User,
            Utc::now() - Duration::hours(2),
            Utc::now() - Duration::hours(1),
        )
        .unwrap();
    let r = app
        .get("/api/v1/users/me", &expired)
        .await
        .expect_error(401, "UNAUTHORIZED");
    assert!(
        r.body["message"].as_str().unwrap().contains("expired"),
        "{}",
        r.body
    );

    // Right secret, a session id that was never issued.
    let unknown = SessionTokens::new(JWT_SECRET.as_bytes())
        .issue(
            user.id.parse().unwrap(),
            SessionId::new(),
            Role::Admin,
            Utc::now(),
            Utc::now() + Duration::hours(1),
        )
        .unwrap();
    app.get("/api/v1/users/me", &unknown)
        .await
        .expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn admin_endpoints_need_an_admin_session() {
    let app = spawn_app().await;
    let user = app.signup().await;
    app.get("/api/v1/admin/users", &user.token)
        .await
        .expect_error(403, "FORBIDDEN");
    let (key, _) = app
        .create_key(&user.token, json!({"name": "k", "type": "personal"}))
        .await;
    app.get("/api/v1/admin/users", &key)
        .await
        .expect_error(403, "FORBIDDEN");

    // Promoted (as `panoptes create-admin` does): effective on the next request.
    app.state
        .store
        .set_user_role(user.id.parse().unwrap(), Role::Admin)
        .await
        .unwrap();
    let r = app
        .get("/api/v1/admin/users?limit=100", &user.token)
        .await
        .expect(200);
    assert!(
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == user.id.as_str())
    );
    assert!(r.body["meta"]["pagination"]["total"].as_u64().unwrap() >= 1);
}

/// Every protected operation of the published document, with `{id}` filled in.
fn protected_operations() -> Vec<(reqwest::Method, String, Vec<String>)> {
    let doc = panoptes_gateway::openapi_doc::render(panoptes_gateway::app::spec_state());
    let spec: serde_json::Value = serde_json::from_str(&doc.json).unwrap();
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(security) = op["security"].as_array().filter(|s| !s.is_empty()) else {
                continue;
            };
            let schemes = security
                .iter()
                .flat_map(|s| s.as_object().unwrap().keys().cloned())
                .collect();
            let mut path = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
            // Required query parameters (all UUIDs) are given, so that the
            // request is well-formed and only the credential decides.
            let required: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| format!("{}={}", p["name"].as_str().unwrap(), uuid::Uuid::new_v4()))
                .collect();
            if !required.is_empty() {
                path = format!("{path}?{}", required.join("&"));
            }
            ops.push((method.to_uppercase().parse().unwrap(), path, schemes));
        }
    }
    assert!(ops.len() >= 20, "{} protected operations", ops.len());
    ops
}

#[tokio::test]
async fn every_protected_operation_refuses_missing_invalid_expired_and_revoked_credentials() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let (revoked, id) = app
        .create_key(&user.token, json!({"name": "k", "type": "personal"}))
        .await;
    app.delete(&format!("/api/v1/api-keys/{id}"), &user.token)
        .await
        .expect(200);
    let expired = SessionTokens::new(JWT_SECRET.as_bytes())
        .issue(
            user.id.parse().unwrap(),
            SessionId::new(),
            Role::User,
            Utc::now() - Duration::hours(2),
            Utc::now() - Duration::hours(1),
        )
        .unwrap();
    for (method, path, _) in protected_operations() {
        let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
        for token in [
            None,
            Some("garbage"),
            Some(revoked.as_str()),
            Some(expired.as_str()),
        ] {
            let r = app.call(method.clone(), &path, token, body.clone()).await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (401, "UNAUTHORIZED"),
                "{method} {path} with {token:?}: {}",
                r.body
            );
        }
    }
}

#[tokio::test]
async fn every_protected_operation_refuses_a_key_without_its_scope() {
    let app = spawn_app().await;
    let user = app.signup().await;
    // The key holds `webhook:read`, which lets it read the webhook
    // configuration and its delivery log (and nothing else).
    let (key, _) = app
        .create_key(
            &user.token,
            json!({"name": "k", "type": "service", "scopes": ["webhook:read"]}),
        )
        .await;
    let webhook_reads = [
        "/api/v1/users/me/webhook",
        "/api/v1/users/me/webhook/deliveries",
    ];
    for (method, path, schemes) in protected_operations() {
        if method == Method::GET
            && (webhook_reads.contains(&path.as_str())
                || path.starts_with("/api/v1/users/me/webhook/deliveries/"))
        {
            continue;
        }
        let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
        let r = app.call(method.clone(), &path, Some(&key), body).await;
        if path == "/api/v1/users/me" {
            r.expect(200);
        } else if schemes.contains(&"ApiKey".to_owned()) {
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (403, "FORBIDDEN_SCOPE"),
                "{method} {path}: {}",
                r.body
            );
        } else {
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (403, "FORBIDDEN"),
                "{method} {path}: {}",
                r.body
            );
        }
    }
}

#[tokio::test]
async fn login_attempts_are_limited_per_email() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let attempt = json!({"email": user.email, "password": "wrong password"});
    for _ in 0..10 {
        app.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(attempt.clone()),
        )
        .await
        .expect_error(401, "UNAUTHORIZED");
    }
    let r = app
        .call(Method::POST, "/api/v1/auth/login", None, Some(attempt))
        .await
        .expect_error(429, "RATE_LIMITED");
    assert!(r.headers.contains_key("retry-after"));
    // Other accounts are unaffected.
    let other = app.signup().await;
    app.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": other.email, "password": "correct horse"})),
    )
    .await
    .expect(200);
}
