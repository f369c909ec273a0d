//! `/api/v1/users/me/webhook`: the endpoint configuration (one per user),
//! its secret, the test send to a real receiver on loopback, the delivery
//! log and redelivery, the outbound guard on webhook URLs, and the admin's
//! maintenance announcement.

use panoptes_shared::domain::event::EventKind;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::user::Role;
use serde_json::json;

use crate::helpers::{Backend, spawn_app, spawn_with_env};
use crate::receiver::{Receiver, Reply};

const HOOK: &str = "/api/v1/users/me/webhook";

#[tokio::test]
async fn one_webhook_per_user_created_read_changed_and_deleted() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    app.get(HOOK, t).await.expect_error(404, "NOT_FOUND");
    let created = app
        .post(
            HOOK,
            t,
            json!({"url": "https://hooks.example.com/panoptes", "name": "Ops"}),
        )
        .await
        .expect(201);
    let w = created.data().clone();
    let secret = w["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(w["timeoutMs"], 5000);
    assert_eq!(w["maxRetries"], 3);
    assert_eq!(w["subscribedTypes"], json!([]));
    assert_eq!(w["enabled"], true);
    app.post(HOOK, t, json!({"url": "https://other.example.com/"}))
        .await
        .expect_error(409, "CONFLICT");
    let read = app.get(HOOK, t).await.expect(200);
    assert!(read.data().get("secret").is_none(), "shown once");
    assert_eq!(read.data()["url"], "https://hooks.example.com/panoptes");
    assert_eq!(
        app.get(&format!("{HOOK}/secret"), t)
            .await
            .expect(200)
            .data()["secret"],
        secret.as_str()
    );
    let changed = app
        .patch(
            HOOK,
            t,
            json!({
                "subscribedTypes": ["alert_triggered", "device_offline", "alert_triggered"],
                "timeoutMs": 30000, "maxRetries": 0, "name": null, "enabled": false
            }),
        )
        .await
        .expect(200);
    assert_eq!(
        changed.data()["subscribedTypes"],
        json!(["alert_triggered", "device_offline"])
    );
    assert!(changed.data().get("name").is_none());
    assert_eq!(changed.data()["enabled"], false);
    // Regenerating keeps the old secret signing for a day.
    let regen = app
        .post(&format!("{HOOK}/secret/regenerate"), t, json!({}))
        .await
        .expect(200);
    let fresh = regen.data()["secret"].as_str().unwrap();
    assert_ne!(fresh, secret);
    let until: chrono::DateTime<chrono::Utc> = regen.data()["previousSecretExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hours = (until - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");
    app.delete(HOOK, t).await.expect(200);
    app.get(HOOK, t).await.expect_error(404, "NOT_FOUND");
    app.delete(HOOK, t).await.expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn bad_configurations_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let long = format!("https://hooks.example.com/{}", "a".repeat(480));
    for (body, field) in [
        (json!({}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "ftp://hooks.example.com/"}), "url"),
        (json!({"url": long}), "url"),
        (json!({"url": "https://u:p@hooks.example.com/"}), "url"),
        (
            json!({"url": "https://h.example.com/", "secret": "short"}),
            "secret",
        ),
        (
            json!({"url": "https://h.example.com/", "secret": "x".repeat(129)}),
            "secret",
        ),
        (
            json!({"url": "https://h.example.com/", "timeoutMs": 999}),
            "timeoutMs",
        ),
        (
            json!({"url": "https://h.example.com/", "timeoutMs": 30001}),
            "timeoutMs",
        ),
        (
            json!({"url": "https://h.example.com/", "maxRetries": 6}),
            "maxRetries",
        ),
        (
            json!({"url": "https://h.example.com/", "name": "n".repeat(101)}),
            "name",
        ),
        (
            json!({"url": "https://h.example.com/", "subscribedTypes": ["alert_triggered", "nope"]}),
            "subscribedTypes[1]",
        ),
    ] {
        let r = app.post(HOOK, t, body.clone()).await;
        assert!(!r.body.to_string().contains("u:p@"), "{}", r.body);
        r.expect_invalid(field);
    }
    // A chosen secret is kept as given.
    let chosen = "my-receiver-secret-0123";
    app.post(
        HOOK,
        t,
        json!({"url": "https://h.example.com/", "secret": chosen}),
    )
    .await
    .expect(201);
    assert_eq!(
        app.get(&format!("{HOOK}/secret"), t)
            .await
            .expect(200)
            .data()["secret"],
        chosen
    );
    // Plain http:// only where the operator allows it (tests, on-premise).
    let strict = spawn_with_env(
        Backend::Distributed,
        &format!("panoptes-test:{}", uuid::Uuid::new_v4()),
        &[("PANOPTES__WEBHOOKS__ALLOW_HTTP", "false")],
    )
    .await;
    let u = strict.signup().await;
    let r = strict
        .post(HOOK, &u.token, json!({"url": "http://hooks.example.com/"}))
        .await
        .expect_invalid("url");
    assert!(r.body["message"].as_str().unwrap().contains("https"));
}

#[tokio::test]
async fn webhook_urls_aimed_at_non_public_addresses_are_refused() {
    let app = spawn_with_env(
        Backend::Distributed,
        &format!("panoptes-test:{}", uuid::Uuid::new_v4()),
        &[("PANOPTES__OUTBOUND__ALLOW_PRIVATE", "false")],
    )
    .await;
    let user = app.signup().await;
    let t = &user.token;
    let refused = [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]:8443/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),
        ("https://localhost/hook", "local host name"),
        ("https://hooks.localhost/hook", "local host name"),
        ("https://10.0.0.5/hook", "private"),
        ("https://172.16.3.4/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://100.64.0.1/hook", "shared"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://[ff02::1]/hook", "multicast"),
        ("https://255.255.255.255/hook", "broadcast"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
    ];
    for (url, class) in refused {
        let r = app
            .post(HOOK, t, json!({"url": url}))
            .await
            .expect_invalid("url");
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(class), "{url}: {message}");
    }
    // Moving an existing endpoint there is refused the same way.
    app.post(HOOK, t, json!({"url": "https://hooks.invalid/in"}))
        .await
        .expect(201);
    for (url, _) in refused {
        app.patch(HOOK, t, json!({"url": url}))
            .await
            .expect_invalid("url");
    }
    assert_eq!(
        app.get(HOOK, t).await.expect(200).data()["url"],
        "https://hooks.invalid/in"
    );
}

#[tokio::test]
async fn the_test_send_reports_what_the_receiver_answered_and_is_logged() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let mut rx = Receiver::start(vec![Reply::ok(), Reply::status(500)]).await;
    app.post(HOOK, t, json!({"url": rx.url("http")}))
        .await
        .expect(201);
    let ok = app
        .post(&format!("{HOOK}/test"), t, json!({}))
        .await
        .expect(200);
    assert_eq!(ok.body["message"], "Test event delivered");
    assert_eq!(ok.data()["status"], "succeeded");
    assert_eq!(ok.data()["eventType"], "webhook_test");
    assert_eq!(ok.data()["attemptLog"][0]["statusCode"], 200);
    let got = rx
        .next(std::time::Duration::from_secs(5), "the test event")
        .await;
    assert_eq!(
        got.headers["webhook-id"],
        ok.data()["messageId"].as_str().unwrap()
    );
    assert!(got.headers["webhook-signature"].starts_with("v1,"));
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["type"], "webhook_test");
    assert_eq!(ok.data()["payload"], String::from_utf8(got.body).unwrap());

    let failed = app
        .post(&format!("{HOOK}/test"), t, json!({}))
        .await
        .expect(200);
    assert_eq!(failed.body["message"], "Test event not delivered");
    assert_eq!(failed.data()["status"], "failed");
    assert_eq!(failed.data()["attemptLog"][0]["statusCode"], 500);
    assert_eq!(failed.data()["attemptLog"][0]["responseBody"], "status 500");
    assert_eq!(failed.data()["lastError"], "the receiver answered 500");

    // The log: newest first, filtered by type and status.
    let log = app.get(&format!("{HOOK}/deliveries"), t).await.expect(200);
    assert_eq!(log.body["meta"]["pagination"]["total"], 2);
    assert_eq!(log.data()[0]["id"], failed.data()["id"]);
    let only_failed = app
        .get(
            &format!("{HOOK}/deliveries?eventType=webhook_test&status=failed"),
            t,
        )
        .await
        .expect(200);
    assert_eq!(only_failed.data().as_array().unwrap().len(), 1);
    app.get(&format!("{HOOK}/deliveries?eventType=bogus"), t)
        .await
        .expect_invalid("eventType");
    app.get(&format!("{HOOK}/deliveries?status=lost"), t)
        .await
        .expect_invalid("status");
    let fid = failed.data()["id"].as_str().unwrap();
    let one = app
        .get(&format!("{HOOK}/deliveries/{fid}"), t)
        .await
        .expect(200);
    assert_eq!(one.data()["attemptLog"].as_array().unwrap().len(), 1);
    // A failed delivery can be sent again (the notify role sends it); a
    // pending one cannot be queued twice.
    let again = app
        .post(&format!("{HOOK}/deliveries/{fid}/redeliver"), t, json!({}))
        .await
        .expect(200);
    assert_eq!(again.data()["status"], "pending");
    app.post(&format!("{HOOK}/deliveries/{fid}/redeliver"), t, json!({}))
        .await
        .expect_error(409, "CONFLICT");
    // Another user sees none of it.
    let other = app.signup().await;
    app.get(&format!("{HOOK}/deliveries/{fid}"), &other.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.post(&format!("{HOOK}/test"), &other.token, json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn webhook_endpoints_need_their_scopes() {
    let app = spawn_app().await;
    let user = app.signup().await;
    app.post(HOOK, &user.token, json!({"url": "https://h.example.com/"}))
        .await
        .expect(201);
    let (reader, _) = app
        .create_key(
            &user.token,
            json!({"name": "r", "type": "service", "scopes": ["webhook:read"]}),
        )
        .await;
    app.get(HOOK, &reader).await.expect(200);
    app.get(&format!("{HOOK}/deliveries"), &reader)
        .await
        .expect(200);
    // Reading the secret lets one forge events: write scope only.
    app.get(&format!("{HOOK}/secret"), &reader)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    for (path, body) in [
        (HOOK.to_owned(), json!({"url": "https://x.example.com/"})),
        (format!("{HOOK}/test"), json!({})),
        (format!("{HOOK}/secret/regenerate"), json!({})),
    ] {
        app.post(&path, &reader, body)
            .await
            .expect_error(403, "FORBIDDEN_SCOPE");
    }
    app.delete(HOOK, &reader)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
}

#[tokio::test]
async fn an_admin_announces_maintenance_to_every_user() {
    let app = spawn_app().await;
    let (admin, user) = (app.signup().await, app.signup().await);
    let body = json!({
        "startsAt": (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339(),
        "endsAt": (chrono::Utc::now() + chrono::Duration::days(2) + chrono::Duration::hours(1)).to_rfc3339(),
        "message": "Database upgrade"
    });
    app.post("/api/v1/admin/maintenance", &admin.token, body.clone())
        .await
        .expect_error(403, "FORBIDDEN");
    app.state
        .store
        .set_user_role(admin.id.parse().unwrap(), Role::Admin)
        .await
        .unwrap();
    let mut past = body.clone();
    past["startsAt"] = json!("2020-01-01T00:00:00Z");
    app.post("/api/v1/admin/maintenance", &admin.token, past)
        .await
        .expect_invalid("startsAt");
    let r = app
        .post("/api/v1/admin/maintenance", &admin.token, body)
        .await
        .expect(201);
    assert!(r.data()["usersNotified"].as_u64().unwrap() >= 2);
    let events = app
        .state
        .store
        .list_events(
            user.id.parse().unwrap(),
            None,
            PageRequest { page: 1, limit: 5 },
        )
        .await
        .unwrap();
    assert_eq!(events.items[0].kind, EventKind::MaintenanceScheduled);
    assert_eq!(events.items[0].data["message"], "Database upgrade");
}
