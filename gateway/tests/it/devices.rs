//! Devices: every documented field and constraint, credentials, tenancy, quota.

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app, spawn_with};

fn slots(on: &[usize]) -> Value {
    json!((0..48).map(|i| on.contains(&i)).collect::<Vec<_>>())
}

#[tokio::test]
async fn create_with_every_field_round_trips() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app
        .create_device(
            &user.token,
            json!({
                "description": "Front door, facing the tills",
                "rtspUsername": "admin",
                "rtspPassword": "s3cret-pass",
                "locationLabel": "Taipei 101, B1",
                "latitude": 25.0339, "longitude": 121.5645, "geoSource": "manual",
                "type": "rtsp_source", "plan": "level_02",
                "tags": ["entrance", "b1", "entrance"],
                "utcOffset": "UTC+08:00",
                "schedule": {"dailySlots": slots(&[18, 19]), "weeklySlots": {"sun": slots(&[])}}
            }),
        )
        .await;
    assert_eq!(d["name"], "Entrance");
    assert_eq!(d["rtspUrl"], "rtsp://127.0.0.1:554/stream1");
    assert_eq!(d["hasCredentials"], true);
    assert_eq!(d["type"], "rtsp_source");
    assert_eq!(d["plan"], "level_02");
    assert_eq!(d["geoSource"], "manual");
    assert_eq!(d["tags"], json!(["entrance", "b1"]));
    assert_eq!(d["utcOffset"], "UTC+8");
    assert_eq!(d["status"], "offline");
    assert_eq!(d["schedule"]["weeklySlots"]["sun"], slots(&[]));
    assert!(d["nextScheduledAt"].is_string());
    for secret in ["rtspPassword", "rtspToken", "rtspUsername"] {
        assert!(d.get(secret).is_none());
    }
    let got = app
        .get(
            &format!("/api/v1/devices/{}", d["id"].as_str().unwrap()),
            &user.token,
        )
        .await
        .expect(200);
    assert_eq!(got.data(), &d);
}

#[tokio::test]
async fn defaults_apply_to_a_minimal_device() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app.create_device(&user.token, json!({})).await;
    assert_eq!(
        (d["type"].as_str(), d["plan"].as_str()),
        (Some("ip_camera"), Some("level_01"))
    );
    assert_eq!(d["utcOffset"], "UTC+0");
    assert_eq!(d["hasCredentials"], false);
    assert_eq!(d["schedule"], Value::Null);
    assert_eq!(d["nextScheduledAt"], Value::Null);
}

#[tokio::test]
async fn credentials_are_encrypted_at_rest_and_never_returned() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app
        .create_device(&user.token, json!({"rtspUrl": "rtsp://cam:hunter2pass@127.0.0.9/live", "rtspToken": "tok-abcdef-123"}))
        .await;
    assert_eq!(d["rtspUrl"], "rtsp://127.0.0.9/live");
    assert_eq!(d["hasCredentials"], true);
    let id = d["id"].as_str().unwrap();
    let stored = app
        .state
        .store
        .get_device(user.id.parse().unwrap(), id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let sealed = stored.credentials.clone().unwrap();
    assert!(!sealed.0.contains("hunter2pass") && !sealed.0.contains("tok-abcdef"));
    let creds: Value = serde_json::from_slice(&app.state.cipher.open(&sealed).unwrap()).unwrap();
    assert_eq!(
        creds,
        json!({"username": "cam", "password": "hunter2pass", "token": "tok-abcdef-123",
               "endpoint": "127.0.0.9:554"})
    );
    let listed = app.get("/api/v1/devices", &user.token).await.expect(200);
    assert!(!listed.body.to_string().contains("hunter2pass"));

    // Clearing each part; all cleared means no credentials.
    let path = format!("/api/v1/devices/{id}");
    let r = app
        .patch(
            &path,
            &user.token,
            json!({"rtspToken": null, "rtspPassword": null}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["hasCredentials"], true, "username remains");
    let r = app
        .patch(&path, &user.token, json!({"rtspUsername": null}))
        .await
        .expect(200);
    assert_eq!(r.data()["hasCredentials"], false);
}

#[tokio::test]
async fn every_constraint_is_enforced_and_named() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let base = json!({"name": "cam", "rtspUrl": "rtsp://cam/1"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (json!({"rtspUrl": "rtsp://cam/1"}), "name"),
        (with("name", json!("")), "name"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("name", json!(42)), "name"),
        (with("description", json!("x".repeat(501))), "description"),
        (json!({"name": "cam"}), "rtspUrl"),
        (with("rtspUrl", json!("http://cam/1")), "rtspUrl"),
        (with("rtspUrl", json!("rtsp://")), "rtspUrl"),
        (with("rtspPassword", json!("x".repeat(513))), "rtspPassword"),
        (
            with("locationLabel", json!("x".repeat(201))),
            "locationLabel",
        ),
        (with("latitude", json!(90.5)), "latitude"),
        (with("latitude", json!("north")), "latitude"),
        (with("longitude", json!(-180.01)), "longitude"),
        (with("geoSource", json!("gps")), "geoSource"),
        (with("type", json!("drone")), "type"),
        (with("plan", json!("level_03")), "plan"),
        (with("tags", json!(["ok", ""])), "tags[1]"),
        (
            with(
                "tags",
                json!((0..21).map(|i| i.to_string()).collect::<Vec<_>>()),
            ),
            "tags",
        ),
        (with("tags", json!("a,b")), "tags"),
        (with("utcOffset", json!("UTC+15")), "utcOffset"),
        (with("utcOffset", json!("Asia/Taipei")), "utcOffset"),
        (
            with("schedule", json!({"dailySlots": vec![false; 47]})),
            "schedule.dailySlots",
        ),
        (
            with("schedule", json!({"weeklySlots": {"mon": [true]}})),
            "schedule.weeklySlots.mon",
        ),
        (with("schedule", json!({})), "schedule"),
        (
            with("schedule", json!({"dailySlots": [1, 0]})),
            "schedule.dailySlots[0]",
        ),
    ];
    for (body, field) in cases {
        app.post("/api/v1/devices", &user.token, body)
            .await
            .expect_invalid(field);
    }
    assert_eq!(
        app.get("/api/v1/devices", &user.token).await.body["meta"]["pagination"]["total"],
        0,
        "nothing was stored"
    );
}

#[tokio::test]
async fn update_changes_only_what_is_sent_and_null_clears() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app.create_device(&user.token, json!({"description": "old", "latitude": 10.0, "tags": ["a"], "schedule": {"dailySlots": slots(&[0])}})).await;
    let path = format!("/api/v1/devices/{}", d["id"].as_str().unwrap());
    let r = app
        .patch(&path, &user.token, json!({"name": "Renamed", "description": null, "latitude": null, "schedule": null, "utcOffset": "UTC-3:30", "plan": "level_02"}))
        .await
        .expect(200);
    let u = r.data();
    assert_eq!(u["name"], "Renamed");
    assert_eq!(u["description"], Value::Null);
    assert_eq!(u["latitude"], Value::Null);
    assert_eq!(u["schedule"], Value::Null);
    assert_eq!(u["utcOffset"], "UTC-3:30");
    assert_eq!(u["plan"], "level_02");
    assert_eq!(u["tags"], json!(["a"]), "untouched");
    assert_eq!(u["rtspUrl"], d["rtspUrl"], "untouched");
    assert_ne!(u["updatedAt"], d["updatedAt"]);
    app.patch(&path, &user.token, json!({"latitude": -91}))
        .await
        .expect_invalid("latitude");
    app.patch(&path, &user.token, json!({"rtspUrl": "udp://x"}))
        .await
        .expect_invalid("rtspUrl");
    app.patch(&path, &user.token, json!({"name": ""}))
        .await
        .expect_invalid("name");
}

#[tokio::test]
async fn another_tenants_device_is_404_everywhere() {
    let app = spawn_app().await;
    let (alice, bob) = (app.signup().await, app.signup().await);
    let d = app.create_device(&alice.token, json!({})).await;
    let path = format!("/api/v1/devices/{}", d["id"].as_str().unwrap());
    app.get(&path, &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.patch(&path, &bob.token, json!({"name": "mine"}))
        .await
        .expect_error(404, "NOT_FOUND");
    app.delete(&path, &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.get(&format!("{path}/scenes"), &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.post(&format!("{path}/probe"), &bob.token, json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    app.get(&format!("{path}/quota"), &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.patch(
        &format!("{path}/quota"),
        &bob.token,
        json!({"isDisabled": true}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    assert_eq!(
        app.get("/api/v1/devices", &bob.token).await.body["meta"]["pagination"]["total"],
        0
    );
    app.get(&path, &alice.token).await.expect(200);
}

#[tokio::test]
async fn scopes_gate_reads_and_writes() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app.create_device(&user.token, json!({})).await;
    let path = format!("/api/v1/devices/{}", d["id"].as_str().unwrap());
    let (device_key, _) = app
        .create_key(
            &user.token,
            json!({"name": "edge", "type": "device", "deviceId": d["id"]}),
        )
        .await;
    app.get(&path, &device_key).await.expect(200);
    app.get(&format!("{path}/scenes"), &device_key)
        .await
        .expect(200);
    app.patch(&path, &device_key, json!({"name": "x"}))
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    app.delete(&path, &device_key)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    app.post(
        "/api/v1/devices",
        &device_key,
        json!({"name": "x", "rtspUrl": "rtsp://x/1"}),
    )
    .await
    .expect_error(403, "FORBIDDEN_SCOPE");
    let (billing, _) = app
        .create_key(
            &user.token,
            json!({"name": "b", "type": "service", "scopes": ["billing:read"]}),
        )
        .await;
    app.get(&format!("{path}/quota"), &billing)
        .await
        .expect(200);
    app.get(&path, &billing)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
}

#[tokio::test]
async fn delete_removes_the_device_and_its_scenes() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app.create_device(&user.token, json!({})).await;
    let id = d["id"].as_str().unwrap();
    let s = app.create_scene(&user.token, id).await;
    app.delete(&format!("/api/v1/devices/{id}"), &user.token)
        .await
        .expect(200);
    app.get(&format!("/api/v1/devices/{id}"), &user.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.get(
        &format!("/api/v1/scenes/{}", s["id"].as_str().unwrap()),
        &user.token,
    )
    .await
    .expect_error(404, "NOT_FOUND");
    app.delete(&format!("/api/v1/devices/{id}"), &user.token)
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn list_pages_newest_first() {
    let app = spawn_app().await;
    let user = app.signup().await;
    for i in 0..3 {
        app.create_device(&user.token, json!({"name": format!("cam {i}")}))
            .await;
    }
    let r = app
        .get("/api/v1/devices?limit=2", &user.token)
        .await
        .expect(200);
    assert_eq!(r.data()[0]["name"], "cam 2");
    assert_eq!(
        r.body["meta"]["pagination"],
        json!({"page": 1, "limit": 2, "total": 3, "totalPages": 2})
    );
    let r = app
        .get("/api/v1/devices?page=5", &user.token)
        .await
        .expect(200);
    assert_eq!(r.data(), &json!([]));
    app.get("/api/v1/devices?page=-1", &user.token)
        .await
        .expect_invalid("page");
}

#[tokio::test]
async fn another_tenants_device_cannot_be_probed() {
    let app = spawn_app().await;
    let (owner, stranger) = (app.signup().await, app.signup().await);
    let d = app.create_device(&owner.token, json!({})).await;
    app.post(
        &format!("/api/v1/devices/{}/probe", d["id"].as_str().unwrap()),
        &stranger.token,
        json!({}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn quota_follows_the_plan_and_accepts_caps_below_it() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app
        .create_device(&user.token, json!({"plan": "level_01"}))
        .await;
    let path = format!("/api/v1/devices/{}/quota", d["id"].as_str().unwrap());
    let q = app.get(&path, &user.token).await.expect(200);
    let q = q.data();
    assert_eq!(q["quotaSeconds"], 150 * 3600);
    assert_eq!(q["alertQuota"], 3000);
    assert_eq!(q["attributeQuota"], 0);
    assert_eq!(q["vlmQuota"], 0);
    assert_eq!(q["usedSeconds"], 0);
    assert_eq!(q["remainingSeconds"], 150 * 3600);
    assert_eq!(q["isDisabled"], false);
    assert!(
        q["period"].as_str().unwrap().len() == 7
            && q["resetsAt"].as_str().unwrap().contains("-01T00:00:00")
    );

    let r = app
        .patch(
            &path,
            &user.token,
            json!({"quotaSeconds": 3600, "isDisabled": true}),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            r.data()["quotaSeconds"].as_u64(),
            r.data()["isDisabled"].as_bool()
        ),
        (Some(3600), Some(true))
    );
    app.patch(&path, &user.token, json!({"quotaSeconds": 150 * 3600 + 1}))
        .await
        .expect_invalid("quotaSeconds");
    app.patch(&path, &user.token, json!({"attributeQuota": 1}))
        .await
        .expect_invalid("attributeQuota");
    app.patch(&path, &user.token, json!({"alertQuota": -1}))
        .await
        .expect_invalid("alertQuota");
    let r = app
        .patch(&path, &user.token, json!({"quotaSeconds": null}))
        .await
        .expect(200);
    assert_eq!(r.data()["quotaSeconds"], 150 * 3600);

    app.patch(
        &format!("/api/v1/devices/{}", d["id"].as_str().unwrap()),
        &user.token,
        json!({"plan": "level_02"}),
    )
    .await
    .expect(200);
    let q = app.get(&path, &user.token).await.expect(200);
    assert_eq!(
        (
            q.data()["quotaSeconds"].as_u64(),
            q.data()["vlmQuota"].as_u64()
        ),
        (Some(250 * 3600), Some(10_000_000))
    );
}

#[tokio::test]
async fn embedded_defaults_serve_the_same_device_api() {
    let app = spawn_with(Backend::Embedded, "unused").await;
    let ready = app
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await
        .expect(200);
    assert_eq!(ready.data()["dependencies"][0]["backend"], "sqlite");
    assert_eq!(ready.data()["dependencies"][1]["backend"], "memory");
    let user = app.signup().await;
    let d = app
        .create_device(&user.token, json!({"rtspPassword": "pw", "tags": ["x"]}))
        .await;
    let got = app
        .get(
            &format!("/api/v1/devices/{}", d["id"].as_str().unwrap()),
            &user.token,
        )
        .await
        .expect(200);
    assert_eq!(got.data(), &d);
    app.create_scene(&user.token, d["id"].as_str().unwrap())
        .await;
    for i in 0..10 {
        app.post(
            "/api/v1/api-keys",
            &user.token,
            json!({"name": format!("k{i}"), "type": "personal"}),
        )
        .await
        .expect(201);
    }
    app.post(
        "/api/v1/api-keys",
        &user.token,
        json!({"name": "k", "type": "personal"}),
    )
    .await
    .expect_error(429, "RATE_LIMITED");
}
