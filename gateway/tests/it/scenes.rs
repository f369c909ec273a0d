//! Scenes: zones, parameters, defaults, tenancy.

use serde_json::{Value, json};

use crate::helpers::{scene_body, spawn_app, square};

#[tokio::test]
async fn create_applies_documented_defaults() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app.create_device(&user.token, json!({})).await;
    let s = app
        .create_scene(&user.token, d["id"].as_str().unwrap())
        .await;
    assert_eq!(s["analysisType"], "queue_analysis");
    assert_eq!(s["status"], "active");
    assert_eq!(s["deviceId"], d["id"]);
    assert_eq!(s["config"]["zones"]["queueZone"], square());
    assert_eq!(s["config"]["zones"]["checkoutZone"], Value::Null);
    assert_eq!(
        s["config"]["parameters"],
        json!({"confidenceThreshold": 0.6, "class": "person", "entryThresholdSeconds": 3.0, "exitThresholdSeconds": 1.0, "trackingMaxAgeSeconds": 5.0})
    );
}

#[tokio::test]
async fn every_constraint_is_enforced_and_named() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app.create_device(&user.token, json!({})).await;
    let id = d["id"].as_str().unwrap();
    let with = |path: &[&str], v: Value| {
        let mut b = scene_body(id);
        let mut cur = &mut b;
        for p in &path[..path.len() - 1] {
            cur = &mut cur[*p];
        }
        cur[path[path.len() - 1]] = v;
        b
    };
    let bowtie =
        json!({"type": "polygon", "points": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]});
    let cases = [
        (with(&["name"], json!("")), "name"),
        (with(&["name"], json!("x".repeat(101))), "name"),
        (
            with(&["description"], json!("x".repeat(501))),
            "description",
        ),
        (
            with(&["analysisType"], json!("crowd_analysis")),
            "analysisType",
        ),
        (with(&["deviceId"], json!("not-a-uuid")), "deviceId"),
        (with(&["config"], json!({})), "config.zones"),
        (with(&["config", "zones"], json!({})), "config.zones"),
        (
            with(&["config", "zones", "queueZone", "type"], json!("circle")),
            "config.zones.queueZone.type",
        ),
        (
            with(
                &["config", "zones", "queueZone", "points"],
                json!([[0.1, 0.1], [0.2, 0.2]]),
            ),
            "config.zones.queueZone.points",
        ),
        (
            with(
                &["config", "zones", "queueZone", "points"],
                json!([[0.1, 0.1], [1.5, 0.2], [0.3, 0.9]]),
            ),
            "config.zones.queueZone.points[1]",
        ),
        (
            with(
                &["config", "zones", "queueZone", "points"],
                json!([[0.1, 0.1], [0.2], [0.3, 0.9]]),
            ),
            "config.zones.queueZone.points[1]",
        ),
        (
            with(&["config", "zones", "checkoutZone"], bowtie),
            "config.zones.checkoutZone.points",
        ),
        (
            with(
                &["config", "parameters"],
                json!({"confidenceThreshold": 1.2}),
            ),
            "config.parameters.confidenceThreshold",
        ),
        (
            with(&["config", "parameters"], json!({"class": "bicycle"})),
            "config.parameters.class",
        ),
        (
            with(
                &["config", "parameters"],
                json!({"entryThresholdSeconds": 0}),
            ),
            "config.parameters.entryThresholdSeconds",
        ),
        (
            with(
                &["config", "parameters"],
                json!({"exitThresholdSeconds": 61}),
            ),
            "config.parameters.exitThresholdSeconds",
        ),
        (
            with(
                &["config", "parameters"],
                json!({"trackingMaxAgeSeconds": 0.5}),
            ),
            "config.parameters.trackingMaxAgeSeconds",
        ),
        (with(&["status"], json!("paused")), "status"),
    ];
    for (body, field) in cases {
        app.post("/api/v1/scenes", &user.token, body)
            .await
            .expect_invalid(field);
    }
    let twenty_one: Vec<Value> = (0..21)
        .map(|i| {
            let a = i as f64 / 21.0 * std::f64::consts::TAU;
            json!([0.5 + 0.4 * a.cos(), 0.5 + 0.4 * a.sin()])
        })
        .collect();
    app.post(
        "/api/v1/scenes",
        &user.token,
        with(
            &["config", "zones", "queueZone", "points"],
            json!(twenty_one),
        ),
    )
    .await
    .expect_invalid("config.zones.queueZone.points");
}

#[tokio::test]
async fn a_scene_on_another_tenants_device_is_refused_as_not_found() {
    let app = spawn_app().await;
    let (alice, bob) = (app.signup().await, app.signup().await);
    let d = app.create_device(&alice.token, json!({})).await;
    let id = d["id"].as_str().unwrap();
    app.post("/api/v1/scenes", &bob.token, scene_body(id))
        .await
        .expect_error(404, "NOT_FOUND");
    let s = app.create_scene(&alice.token, id).await;
    let path = format!("/api/v1/scenes/{}", s["id"].as_str().unwrap());
    app.get(&path, &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.patch(&path, &bob.token, json!({"name": "mine"}))
        .await
        .expect_error(404, "NOT_FOUND");
    app.delete(&path, &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    assert_eq!(
        app.get("/api/v1/scenes", &bob.token).await.expect(200).body["meta"]["pagination"]["total"],
        0
    );
}

#[tokio::test]
async fn update_replaces_zones_merges_parameters_and_toggles_status() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d = app.create_device(&user.token, json!({})).await;
    let s = app
        .create_scene(&user.token, d["id"].as_str().unwrap())
        .await;
    let path = format!("/api/v1/scenes/{}", s["id"].as_str().unwrap());
    let checkout = json!({"type": "polygon", "points": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]]});
    let r = app
        .patch(&path, &user.token, json!({
            "status": "inactive",
            "description": "tills 1-3",
            "config": {"zones": {"checkoutZone": checkout}, "parameters": {"exitThresholdSeconds": 2}}
        }))
        .await
        .expect(200);
    let u = r.data();
    assert_eq!(u["status"], "inactive");
    assert_eq!(u["description"], "tills 1-3");
    assert_eq!(
        u["config"]["zones"]["queueZone"],
        Value::Null,
        "zones are replaced as a whole"
    );
    assert_eq!(u["config"]["zones"]["checkoutZone"], checkout);
    assert_eq!(u["config"]["parameters"]["exitThresholdSeconds"], 2.0);
    assert_eq!(
        u["config"]["parameters"]["confidenceThreshold"], 0.6,
        "other parameters kept"
    );
    app.patch(&path, &user.token, json!({"config": {"zones": {}}}))
        .await
        .expect_invalid("config.zones");
    app.patch(&path, &user.token, json!({"status": "paused"}))
        .await
        .expect_invalid("status");
    let r = app
        .patch(&path, &user.token, json!({"description": null}))
        .await
        .expect(200);
    assert_eq!(r.data()["description"], Value::Null);
}

#[tokio::test]
async fn lists_filter_by_device_and_scopes_gate_access() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let (d1, d2) = (
        app.create_device(&user.token, json!({})).await,
        app.create_device(&user.token, json!({})).await,
    );
    let (id1, id2) = (d1["id"].as_str().unwrap(), d2["id"].as_str().unwrap());
    app.create_scene(&user.token, id1).await;
    app.create_scene(&user.token, id1).await;
    app.create_scene(&user.token, id2).await;
    assert_eq!(
        app.get("/api/v1/scenes", &user.token)
            .await
            .expect(200)
            .body["meta"]["pagination"]["total"],
        3
    );
    let only = app
        .get(&format!("/api/v1/scenes?deviceId={id1}"), &user.token)
        .await
        .expect(200);
    assert_eq!(only.body["meta"]["pagination"]["total"], 2);
    let via_device = app
        .get(&format!("/api/v1/devices/{id2}/scenes"), &user.token)
        .await
        .expect(200);
    assert_eq!(via_device.data().as_array().unwrap().len(), 1);
    app.get("/api/v1/scenes?deviceId=nope", &user.token)
        .await
        .expect_invalid("deviceId");

    let (reader, _) = app
        .create_key(
            &user.token,
            json!({"name": "r", "type": "service", "scopes": ["scene:read"]}),
        )
        .await;
    app.get("/api/v1/scenes", &reader).await.expect(200);
    app.post("/api/v1/scenes", &reader, scene_body(id1))
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    let s = app.create_scene(&user.token, id2).await;
    app.delete(
        &format!("/api/v1/scenes/{}", s["id"].as_str().unwrap()),
        &reader,
    )
    .await
    .expect_error(403, "FORBIDDEN_SCOPE");
    app.delete(
        &format!("/api/v1/scenes/{}", s["id"].as_str().unwrap()),
        &user.token,
    )
    .await
    .expect(200);
}
