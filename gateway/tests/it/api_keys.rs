//! API keys: types, scopes, secrecy, revocation, rotation, rate limits.

use chrono::{Duration, Utc};
use panoptes_shared::domain::page::PageRequest;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_replicas};

#[tokio::test]
async fn each_type_gets_its_prefix_and_default_scopes_and_the_secret_once() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let device = app.create_device(&user.token, json!({})).await;
    for (t, prefix, scopes) in [
        (
            "device",
            "syncai_dev_",
            vec![
                "device:heartbeat",
                "device:read",
                "device:sync",
                "task:read",
            ],
        ),
        ("personal", "syncai_pat_", vec![]),
        ("service", "syncai_svc_", vec![]),
    ] {
        let r = app
            .post(
                "/api/v1/api-keys",
                &user.token,
                if t == "device" {
                    json!({"name": t, "type": t, "deviceId": device["id"]})
                } else {
                    json!({"name": t, "type": t})
                },
            )
            .await
            .expect(201);
        let key = r.data()["key"].as_str().unwrap();
        assert!(key.starts_with(prefix), "{key}");
        let dto = &r.data()["apiKey"];
        assert_eq!(dto["type"], t);
        assert_eq!(dto["status"], "active");
        assert!(key.starts_with(dto["prefix"].as_str().unwrap()));
        let mut got: Vec<&str> = dto["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        got.sort();
        if !scopes.is_empty() {
            assert_eq!(got, scopes, "{t}");
        }
        if t == "personal" {
            assert_eq!(got.len(), 14, "personal keys carry the full business scope");
        }
        // Never shown again.
        let id = dto["id"].as_str().unwrap();
        let again = app
            .get(&format!("/api/v1/api-keys/{id}"), &user.token)
            .await
            .expect(200);
        assert!(again.data().get("key").is_none());
        assert!(!again.body.to_string().contains(key));
        // And only its hash is stored.
        let stored = app
            .state
            .store
            .get_api_key(user.id.parse().unwrap(), id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!format!("{stored:?}").contains(&key[12..]));
    }
}

#[tokio::test]
async fn explicit_scopes_are_enforced_on_resources() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let (reader, _) = app
        .create_key(
            &user.token,
            json!({"name": "r", "type": "service", "scopes": ["device:read"]}),
        )
        .await;
    app.get("/api/v1/devices", &reader).await.expect(200);
    let r = app
        .post(
            "/api/v1/devices",
            &reader,
            json!({"name": "x", "rtspUrl": "rtsp://cam/1"}),
        )
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    assert_eq!(r.body["error"]["details"]["requiredScope"], "device:write");
    app.get("/api/v1/scenes", &reader)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
}

#[tokio::test]
async fn create_validates_every_field() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let past = (Utc::now() - Duration::hours(1)).to_rfc3339();
    for (body, field) in [
        (json!({"name": "k"}), "type"),
        (json!({"name": "k", "type": "robot"}), "type"),
        (json!({"name": "", "type": "personal"}), "name"),
        (json!({"name": "x".repeat(101), "type": "personal"}), "name"),
        (
            json!({"name": "k", "type": "personal", "scopes": ["device:read", "device:fly"]}),
            "scopes[1]",
        ),
        (
            json!({"name": "k", "type": "personal", "scopes": []}),
            "scopes",
        ),
        (
            json!({"name": "k", "type": "personal", "expiresAt": past}),
            "expiresAt",
        ),
        (
            json!({"name": "k", "type": "personal", "expiresAt": "tomorrow"}),
            "expiresAt",
        ),
    ] {
        app.post("/api/v1/api-keys", &user.token, body)
            .await
            .expect_invalid(field);
    }
}

#[tokio::test]
async fn api_keys_cannot_manage_api_keys() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let (key, id) = app
        .create_key(&user.token, json!({"name": "k", "type": "personal"}))
        .await;
    app.get("/api/v1/api-keys", &key)
        .await
        .expect_error(403, "FORBIDDEN");
    app.post(
        "/api/v1/api-keys",
        &key,
        json!({"name": "k2", "type": "personal"}),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    app.delete(&format!("/api/v1/api-keys/{id}"), &key)
        .await
        .expect_error(403, "FORBIDDEN");
    app.get(&format!("/api/v1/api-keys/{id}"), "syncai_pat_bogus")
        .await
        .expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn revoked_key_is_rejected_on_every_gateway_at_once() {
    let (a, b) = spawn_replicas().await;
    let user = a.signup().await;
    let (key, id) = a
        .create_key(&user.token, json!({"name": "k", "type": "personal"}))
        .await;
    b.get("/api/v1/devices", &key).await.expect(200);
    let r = a
        .delete(&format!("/api/v1/api-keys/{id}"), &user.token)
        .await
        .expect(200);
    assert_eq!(r.data()["status"], "revoked");
    for app in [&a, &b] {
        let r = app
            .get("/api/v1/devices", &key)
            .await
            .expect_error(401, "UNAUTHORIZED");
        assert!(r.body["message"].as_str().unwrap().contains("revoked"));
    }
    // Revoking again is harmless; editing or rotating a revoked key is a conflict.
    a.delete(&format!("/api/v1/api-keys/{id}"), &user.token)
        .await
        .expect(200);
    a.patch(
        &format!("/api/v1/api-keys/{id}"),
        &user.token,
        json!({"name": "x"}),
    )
    .await
    .expect_error(409, "CONFLICT");
    a.post(
        &format!("/api/v1/api-keys/{id}/rotate"),
        &user.token,
        json!({}),
    )
    .await
    .expect_error(409, "CONFLICT");
}

#[tokio::test]
async fn rotation_replaces_the_secret_everywhere() {
    let (a, b) = spawn_replicas().await;
    let user = a.signup().await;
    let device = a.create_device(&user.token, json!({})).await;
    let (old, id) = a
        .create_key(
            &user.token,
            json!({"name": "k", "type": "device", "deviceId": device["id"]}),
        )
        .await;
    let r = a
        .post(
            &format!("/api/v1/api-keys/{id}/rotate"),
            &user.token,
            json!({}),
        )
        .await
        .expect(200);
    let new = r.data()["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with("syncai_dev_"));
    assert!(r.data()["apiKey"]["rotatedAt"].is_string());
    b.get("/api/v1/devices", &old)
        .await
        .expect_error(401, "UNAUTHORIZED");
    b.get("/api/v1/devices", &new).await.expect(200);
}

#[tokio::test]
async fn expired_key_is_refused_and_reported_expired() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let (key, id) = app
        .create_key(&user.token, json!({"name": "k", "type": "personal", "expiresAt": (Utc::now() + Duration::days(1)).to_rfc3339()}))
        .await;
    app.get("/api/v1/devices", &key).await.expect(200);
    // Move the expiry into the past directly in the store (no waiting).
    let owner = user.id.parse().unwrap();
    let mut stored = app
        .state
        .store
        .get_api_key(owner, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    stored.expires_at = Some(Utc::now() - Duration::seconds(1));
    app.state
        .store
        .update_api_key(owner, &stored)
        .await
        .unwrap();
    let r = app
        .get("/api/v1/devices", &key)
        .await
        .expect_error(401, "UNAUTHORIZED");
    assert!(r.body["message"].as_str().unwrap().contains("expired"));
    let dto = app
        .get(&format!("/api/v1/api-keys/{id}"), &user.token)
        .await
        .expect(200);
    assert_eq!(dto.data()["status"], "expired");
}

#[tokio::test]
async fn update_changes_name_scopes_and_expiry_and_records_last_use() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let (key, id) = app
        .create_key(&user.token, json!({"name": "k", "type": "personal"}))
        .await;
    app.get("/api/v1/devices", &key).await.expect(200);
    let path = format!("/api/v1/api-keys/{id}");
    let r = app
        .patch(&path, &user.token, json!({"name": "renamed", "scopes": ["scene:read"], "expiresAt": (Utc::now() + Duration::days(7)).to_rfc3339()}))
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "renamed");
    assert_eq!(r.data()["scopes"], json!(["scene:read"]));
    assert!(
        r.data()["lastUsedAt"].is_string(),
        "use was recorded: {}",
        r.body
    );
    app.get("/api/v1/devices", &key)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    let r = app
        .patch(&path, &user.token, json!({"expiresAt": null}))
        .await
        .expect(200);
    assert_eq!(r.data()["expiresAt"], Value::Null);
    app.patch(&path, &user.token, json!({"scopes": ["nope"]}))
        .await
        .expect_invalid("scopes[0]");
}

#[tokio::test]
async fn another_users_key_is_not_found() {
    let app = spawn_app().await;
    let (alice, bob) = (app.signup().await, app.signup().await);
    let (_, id) = app
        .create_key(&alice.token, json!({"name": "k", "type": "personal"}))
        .await;
    let path = format!("/api/v1/api-keys/{id}");
    app.get(&path, &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.patch(&path, &bob.token, json!({"name": "mine"}))
        .await
        .expect_error(404, "NOT_FOUND");
    app.delete(&path, &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.post(&format!("{path}/rotate"), &bob.token, json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    app.get("/api/v1/api-keys/not-a-uuid", &bob.token)
        .await
        .expect_invalid("id");
}

#[tokio::test]
async fn list_is_paginated_with_bounds_checked() {
    let app = spawn_app().await;
    let user = app.signup().await;
    for i in 0..3 {
        app.create_key(
            &user.token,
            json!({"name": format!("k{i}"), "type": "personal"}),
        )
        .await;
    }
    let r = app
        .get("/api/v1/api-keys?page=2&limit=2", &user.token)
        .await
        .expect(200);
    assert_eq!(r.data().as_array().unwrap().len(), 1);
    assert_eq!(r.data()[0]["name"], "k0", "newest first");
    assert_eq!(
        r.body["meta"]["pagination"],
        json!({"page": 2, "limit": 2, "total": 3, "totalPages": 2})
    );
    let r = app.get("/api/v1/api-keys", &user.token).await.expect(200);
    assert_eq!(r.body["meta"]["pagination"]["limit"], 20);
    app.get("/api/v1/api-keys?page=0", &user.token)
        .await
        .expect_invalid("page");
    app.get("/api/v1/api-keys?limit=0", &user.token)
        .await
        .expect_invalid("limit");
    app.get("/api/v1/api-keys?limit=101", &user.token)
        .await
        .expect_invalid("limit");
    app.get("/api/v1/api-keys?limit=ten", &user.token)
        .await
        .expect_invalid("limit");
    assert_eq!(
        app.state
            .store
            .list_api_keys(user.id.parse().unwrap(), PageRequest::default())
            .await
            .unwrap()
            .total,
        3
    );
}

#[tokio::test]
async fn create_limit_is_shared_by_replicas_and_answers_429_with_headers() {
    let (a, b) = spawn_replicas().await;
    let user = a.signup().await;
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app
            .post(
                "/api/v1/api-keys",
                &user.token,
                json!({"name": format!("k{i}"), "type": "personal"}),
            )
            .await
            .expect(201);
        assert_eq!(r.headers["ratelimit-policy"], "10;w=60");
        assert!(
            r.headers["ratelimit"]
                .to_str()
                .unwrap()
                .contains(&format!("remaining={}", 9 - i))
        );
    }
    let r = b
        .post(
            "/api/v1/api-keys",
            &user.token,
            json!({"name": "k10", "type": "personal"}),
        )
        .await
        .expect_error(429, "RATE_LIMITED");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert!(
        r.headers["ratelimit"]
            .to_str()
            .unwrap()
            .contains("remaining=0")
    );
    assert!(
        r.body["error"]["details"]["retryAfterSeconds"]
            .as_u64()
            .is_some()
    );
    // Limits are per user and per operation.
    a.get("/api/v1/api-keys", &user.token).await.expect(200);
    let other = a.signup().await;
    a.post(
        "/api/v1/api-keys",
        &other.token,
        json!({"name": "k", "type": "personal"}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn rotate_is_limited_to_five_a_minute() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let (_, id) = app
        .create_key(&user.token, json!({"name": "k", "type": "personal"}))
        .await;
    let path = format!("/api/v1/api-keys/{id}/rotate");
    for _ in 0..5 {
        app.post(&path, &user.token, json!({})).await.expect(200);
    }
    let r = app
        .post(&path, &user.token, json!({}))
        .await
        .expect_error(429, "RATE_LIMITED");
    assert_eq!(r.headers["ratelimit-policy"], "5;w=60");
}
