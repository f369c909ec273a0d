//! Attacks on the anonymous endpoints, performed as an attacker would (from
//! loopback addresses: every 127.0.0.0/8 address is a distinct client), and
//! the resource caps on tenants: device keys bound to their device, devices
//! per user.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_with_env};

/// The password `TestApp::signup` gives its users.
const PASSWORD: &str = "correct horse";

/// An HTTP client whose connections come from `ip` (a loopback address).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn post_json(
    client: &reqwest::Client,
    app_base: &str,
    path: &str,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = client
        .post(format!("{app_base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn login(client: &reqwest::Client, app: &TestApp, email: &str, password: &str) -> StatusCode {
    post_json(
        client,
        &app.base,
        "/api/v1/auth/login",
        json!({"email": email, "password": password}),
    )
    .await
    .0
}

async fn spawn_limited(extra: &[(&str, &str)]) -> TestApp {
    spawn_with_env(
        Backend::Distributed,
        &format!("panoptes-test:{}", uuid::Uuid::new_v4()),
        extra,
    )
    .await
}

#[tokio::test]
async fn failed_log_ins_throttle_the_attacker_but_never_lock_the_owner_out() {
    let app = spawn_limited(&[]).await;
    let owner = app.signup().await;
    let attacker = client_from("127.0.0.3");
    for i in 0..10 {
        let s = login(&attacker, &app, &owner.email, &format!("guess {i}")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let (status, headers, body) = post_json(
        &attacker,
        &app.base,
        "/api/v1/auth/login",
        json!({"email": owner.email, "password": "guess 11"}),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert!(headers.contains_key("retry-after"));
    // Even the right password is not tried for the attacker any more...
    assert_eq!(
        login(&attacker, &app, &owner.email, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...but the owner, elsewhere, logs in, and a typo of theirs is a plain 401.
    let home = client_from("127.0.0.4");
    assert_eq!(
        login(&home, &app, &owner.email, "correct hors").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&home, &app, &owner.email, PASSWORD).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn password_spraying_across_many_emails_is_limited_per_client() {
    let app = spawn_limited(&[("PANOPTES__AUTH__LOGINS_PER_CLIENT_PER_MINUTE", "5")]).await;
    let sprayer = client_from("127.0.0.5");
    for i in 0..5 {
        let email = format!("victim-{i}-{}@example.com", uuid::Uuid::new_v4());
        assert_eq!(
            login(&sprayer, &app, &email, "Summer2026!").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let fresh = format!("victim-x-{}@example.com", uuid::Uuid::new_v4());
    assert_eq!(
        login(&sprayer, &app, &fresh, "Summer2026!").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login(&client_from("127.0.0.6"), &app, &fresh, "Summer2026!").await,
        StatusCode::UNAUTHORIZED,
        "another client is not affected"
    );
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_and_a_taken_email_is_a_documented_409() {
    let app = spawn_limited(&[("PANOPTES__AUTH__SIGNUPS_PER_CLIENT_PER_HOUR", "3")]).await;
    let bot = client_from("127.0.0.7");
    let signup = |email: String| json!({"email": email, "password": "a long password"});
    let first = format!("bot-0-{}@example.com", uuid::Uuid::new_v4());
    let (s, _, _) = post_json(
        &bot,
        &app.base,
        "/api/v1/auth/signup",
        signup(first.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, body) = post_json(&bot, &app.base, "/api/v1/auth/signup", signup(first)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let third = format!("bot-2-{}@example.com", uuid::Uuid::new_v4());
    let (s, _, _) = post_json(&bot, &app.base, "/api/v1/auth/signup", signup(third)).await;
    assert_eq!(s, StatusCode::CREATED);
    let fourth = format!("bot-3-{}@example.com", uuid::Uuid::new_v4());
    let (s, headers, body) = post_json(
        &bot,
        &app.base,
        "/api/v1/auth/signup",
        signup(fourth.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.contains_key("retry-after"));
    let (s, _, _) = post_json(
        &client_from("127.0.0.8"),
        &app.base,
        "/api/v1/auth/signup",
        signup(fourth),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "another client signs up");
}

#[tokio::test]
async fn one_client_cannot_hold_more_than_its_share_of_password_hashing() {
    let app = spawn_limited(&[("PANOPTES__AUTH__PASSWORD_HASHES_PER_CLIENT", "2")]).await;
    let owner = app.signup().await;
    let flood = client_from("127.0.0.9");
    let attempts: Vec<_> = (0..16)
        .map(|i| {
            let (flood, base) = (flood.clone(), app.base.clone());
            tokio::spawn(async move {
                let email = format!("nobody-{i}@example.com");
                post_json(
                    &flood,
                    &base,
                    "/api/v1/auth/login",
                    json!({"email": email, "password": "whatever 123"}),
                )
                .await
            })
        })
        .collect();
    // Meanwhile the owner, from another address, is served at once.
    let started = Instant::now();
    assert_eq!(
        login(&client_from("127.0.0.10"), &app, &owner.email, PASSWORD).await,
        StatusCode::OK
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let mut refused = 0;
    for a in attempts {
        let (status, _, body) = a.await.unwrap();
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["error"]["code"], "RATE_LIMITED");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        refused >= 1,
        "16 at once from one client exceed its 2 in flight"
    );
}

#[tokio::test]
async fn saturated_password_hashing_answers_503_with_retry_after_not_a_pile_up() {
    let app = spawn_limited(&[
        ("PANOPTES__AUTH__PASSWORD_HASH_THREADS", "1"),
        ("PANOPTES__AUTH__PASSWORD_HASH_QUEUE_MS", "30"),
    ])
    .await;
    let attempts: Vec<_> = (0..24)
        .map(|i| {
            // Spread over clients so the per-client share is not what refuses them.
            let client = client_from(&format!("127.0.1.{}", i + 1));
            let base = app.base.clone();
            tokio::spawn(async move {
                post_json(
                    &client,
                    &base,
                    "/api/v1/auth/login",
                    json!({"email": format!("n{i}@example.com"), "password": "whatever 123"}),
                )
                .await
            })
        })
        .collect();
    let mut shed = 0;
    for a in attempts {
        let (status, headers, body) = a.await.unwrap();
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
                let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(retry >= 1);
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        shed >= 1,
        "24 hashes at once on one thread with a 30 ms queue must shed some"
    );
    assert_eq!(app.state.passwords.queued(), 0, "nothing left queued");
}

/// Finding 1 as it was found: the gateway as its own process, flooded with
/// anonymous log-ins; its memory stays bounded and the owner gets in.
#[tokio::test]
async fn an_anonymous_log_in_flood_keeps_memory_bounded_and_lets_the_owner_in() {
    let dir = std::env::temp_dir().join(format!("panoptes-flood-{}", uuid::Uuid::new_v4()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_panoptes-gateway"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&dir)
        .env("PANOPTES__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let owner = client_from("127.0.3.1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let email = format!("owner-{}@example.com", uuid::Uuid::new_v4());
    loop {
        if let Ok(r) = owner
            .post(format!("{base}/api/v1/auth/signup"))
            .json(&json!({"email": email, "password": "a long password"}))
            .send()
            .await
        {
            assert_eq!(r.status(), StatusCode::CREATED);
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 400 concurrent log-ins from 8 addresses (50 each) for unknown emails.
    let flood: Vec<_> = (0..400)
        .map(|i| {
            let client = client_from(&format!("127.0.2.{}", i % 8 + 1));
            let base = base.clone();
            tokio::spawn(async move {
                client
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(
                        &json!({"email": format!("x{i}@example.com"), "password": "whatever 123"}),
                    )
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    let started = Instant::now();
    let owner_status = owner
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "a long password"}))
        .send()
        .await
        .unwrap()
        .status();
    let owner_took = started.elapsed();
    for f in flood {
        let status = f.await.unwrap().unwrap();
        assert!(
            [401, 429, 503].contains(&status.as_u16()),
            "a flood request got {status}"
        );
    }
    let peak_mb = proc_status_kb(pid, "VmHWM:") / 1024;
    assert_eq!(owner_status, StatusCode::OK);
    assert!(
        owner_took < Duration::from_secs(2),
        "owner waited {owner_took:?}"
    );
    assert!(peak_mb < 250, "peak RSS {peak_mb} MB during the flood");
    drop(child);
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_device_key_works_for_its_own_device_only_and_carries_no_write_scope() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let mine = app.create_device(t, json!({"type": "usb_camera"})).await;
    let other = app.create_device(t, json!({"type": "usb_camera"})).await;
    let (mine_id, other_id) = (mine["id"].as_str().unwrap(), other["id"].as_str().unwrap());
    // Created for a device, and only for one of the caller's own.
    app.post(
        "/api/v1/api-keys",
        t,
        json!({"name": "edge", "type": "device"}),
    )
    .await
    .expect_invalid("deviceId");
    app.post(
        "/api/v1/api-keys",
        t,
        json!({"name": "edge", "type": "device", "deviceId": uuid::Uuid::new_v4()}),
    )
    .await
    .expect_invalid("deviceId");
    app.post(
        "/api/v1/api-keys",
        t,
        json!({"name": "edge", "type": "personal", "deviceId": mine_id}),
    )
    .await
    .expect_invalid("deviceId");
    app.post(
        "/api/v1/api-keys",
        t,
        json!({"name": "edge", "type": "device", "deviceId": mine_id, "scopes": ["device:read", "device:write"]}),
    )
    .await
    .expect_invalid("scopes");
    let (key, key_id) = app
        .create_key(
            t,
            json!({"name": "edge", "type": "device", "deviceId": mine_id}),
        )
        .await;
    app.patch(
        &format!("/api/v1/api-keys/{key_id}"),
        t,
        json!({"scopes": ["task:write"]}),
    )
    .await
    .expect_invalid("scopes");
    let got = app
        .get(&format!("/api/v1/api-keys/{key_id}"), t)
        .await
        .expect(200);
    assert_eq!(got.data()["deviceId"], mine_id);

    // Its own device: readable, heartbeats accepted.
    app.get(&format!("/api/v1/devices/{mine_id}"), &key)
        .await
        .expect(200);
    app.post(
        &format!("/api/v1/devices/{mine_id}/heartbeat"),
        &key,
        json!({}),
    )
    .await
    .expect(200);
    // Any other device, even the same user's: 404, as if it did not exist.
    app.get(&format!("/api/v1/devices/{other_id}"), &key)
        .await
        .expect_error(404, "NOT_FOUND");
    app.post(
        &format!("/api/v1/devices/{other_id}/heartbeat"),
        &key,
        json!({}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    app.get(&format!("/api/v1/devices/{other_id}/analysis/status"), &key)
        .await
        .expect_error(404, "NOT_FOUND");
    let list = app.get("/api/v1/devices", &key).await.expect(200);
    let ids: Vec<&str> = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine_id]);
    assert_eq!(list.body["meta"]["pagination"]["total"], 1);
    // Streams too, also through a ticket the key mints.
    let status_of = |url: String| {
        let client = app.client.clone();
        let key = key.clone();
        async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        status_of(format!(
            "{}/api/v1/devices/{other_id}/analysis/stream",
            app.base
        ))
        .await,
        404
    );
    let ticket = app
        .post("/api/v1/sse/tickets", &key, json!({}))
        .await
        .expect(200);
    let ticket = ticket.data()["ticket"].as_str().unwrap().to_owned();
    let by_ticket = app
        .client
        .get(format!(
            "{}/api/v1/devices/{other_id}/analysis/stream?ticket={ticket}",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_ticket.status(),
        404,
        "a device key's ticket is bound too"
    );
    // The session still sees both.
    let all = app.get("/api/v1/devices", t).await.expect(200);
    assert_eq!(all.body["meta"]["pagination"]["total"], 2);
    // Deleting the device ends its keys.
    app.delete(&format!("/api/v1/devices/{mine_id}"), t)
        .await
        .expect(200);
    app.get("/api/v1/devices", &key)
        .await
        .expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn devices_per_user_are_capped_even_when_created_at_once() {
    let app = spawn_limited(&[("PANOPTES__LIMITS__MAX_DEVICES_PER_USER", "3")]).await;
    let user = app.signup().await;
    let creates: Vec<_> = (0..8)
        .map(|i| {
            let (client, base, token) = (app.client.clone(), app.base.clone(), user.token.clone());
            tokio::spawn(async move {
                let r = client
                    .post(format!("{base}/api/v1/devices"))
                    .bearer_auth(token)
                    .json(&json!({"name": format!("cam {i}"), "type": "usb_camera", "rtspUrl": "rtsp://127.0.0.1:9/cam"}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                (status, r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut created = 0;
    for c in creates {
        let (status, body) = c.await.unwrap();
        match status.as_u16() {
            201 => created += 1,
            409 => {
                assert_eq!(body["error"]["code"], "RESOURCE_LIMIT");
                assert_eq!(body["error"]["details"]["limit"], 3);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 3);
    let list = app.get("/api/v1/devices", &user.token).await.expect(200);
    assert_eq!(list.body["meta"]["pagination"]["total"], 3);
    // Another user has their own allowance.
    let other = app.signup().await;
    app.create_device(&other.token, json!({"type": "usb_camera"}))
        .await;
}
