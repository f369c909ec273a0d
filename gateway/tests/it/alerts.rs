//! `/api/v1/alerts`: rules (CRUD, validation, scopes, tenancy) and alerts
//! (filters, snapshot URL, acknowledge, resolve). Alerts are fired through
//! the store the notify role uses (its evaluation is tested in
//! `workers/tests/notify.rs`).

use chrono::{Duration, Utc};
use panoptes_shared::domain::alert::{
    Alert, AlertStatus, MetricPath, Operator, Severity, StatusChange,
};
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::ids::{AlertId, UserId};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn rule_body(scene: &str) -> Value {
    json!({
        "sceneId": scene,
        "name": "Queue too long",
        "metricPath": "rolling5Min.avgWaitSeconds",
        "operator": "gt",
        "threshold": 120
    })
}

/// A user with a device and a scene: (token, user id, device id, scene id).
async fn tenant(app: &TestApp) -> (String, String, String, String) {
    let user = app.signup().await;
    let device = id(&app.create_device(&user.token, json!({})).await);
    let scene = id(&app.create_scene(&user.token, &device).await);
    (user.token, user.id, device, scene)
}

#[tokio::test]
async fn rules_are_created_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let (t, _, device, scene) = tenant(&app).await;
    let r = app
        .post("/api/v1/alerts/rules", &t, rule_body(&scene))
        .await
        .expect(201);
    let rule = r.data().clone();
    assert_eq!(rule["deviceId"], device.as_str());
    assert_eq!(rule["durationSeconds"], 0);
    assert_eq!(rule["cooldownSeconds"], 300);
    assert_eq!(rule["severity"], "warning");
    assert_eq!(rule["enabled"], true);
    assert!(rule.get("activeSlots").is_none(), "active at all hours");
    let rid = id(&rule);
    let mut slots = vec![false; 48];
    slots[18] = true;
    app.post(
        "/api/v1/alerts/rules",
        &t,
        json!({
            "sceneId": scene, "name": "Crowd at checkout", "metricPath": "current.inService",
            "operator": "gte", "threshold": 4, "durationSeconds": 60, "cooldownSeconds": 0,
            "severity": "critical", "activeSlots": slots, "enabled": false
        }),
    )
    .await
    .expect(201);
    let all = app
        .get(&format!("/api/v1/alerts/rules?sceneId={scene}&limit=1"), &t)
        .await
        .expect(200);
    assert_eq!(all.body["meta"]["pagination"]["total"], 2);
    assert_eq!(all.data().as_array().unwrap().len(), 1);
    let critical = app
        .get("/api/v1/alerts/rules?severity=critical", &t)
        .await
        .expect(200);
    assert_eq!(critical.data()[0]["activeSlots"][18], true);
    let enabled = app
        .get("/api/v1/alerts/rules?enabled=true", &t)
        .await
        .expect(200);
    assert_eq!(enabled.data().as_array().unwrap().len(), 1);
    let changed = app
        .patch(
            &format!("/api/v1/alerts/rules/{rid}"),
            &t,
            json!({"threshold": 90.5, "operator": "gte", "activeSlots": slots}),
        )
        .await
        .expect(200);
    assert_eq!(changed.data()["threshold"], 90.5);
    let cleared = app
        .patch(
            &format!("/api/v1/alerts/rules/{rid}"),
            &t,
            json!({"activeSlots": null}),
        )
        .await
        .expect(200);
    assert!(cleared.data().get("activeSlots").is_none());
    app.delete(&format!("/api/v1/alerts/rules/{rid}"), &t)
        .await
        .expect(200);
    app.get(&format!("/api/v1/alerts/rules/{rid}"), &t)
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn bad_rules_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let (t, _, _, scene) = tenant(&app).await;
    let r = app
        .post(
            "/api/v1/alerts/rules",
            &t,
            json!({"sceneId": scene, "name": "x", "metricPath": "current.waitSeconds", "operator": "gt", "threshold": 1}),
        )
        .await
        .expect_invalid("metricPath");
    let message = r.body["message"].as_str().unwrap();
    for path in MetricPath::all() {
        assert!(message.contains(&path), "{message} lists {path}");
    }
    for (patch, field) in [
        (json!({"operator": "between"}), "operator"),
        (json!({"severity": "fatal"}), "severity"),
        (json!({"threshold": "high"}), "threshold"),
        (json!({"durationSeconds": 86401}), "durationSeconds"),
        (json!({"cooldownSeconds": -1}), "cooldownSeconds"),
        (json!({"activeSlots": vec![true; 47]}), "activeSlots"),
        (json!({"name": ""}), "name"),
    ] {
        let mut body = rule_body(&scene);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        app.post("/api/v1/alerts/rules", &t, body)
            .await
            .expect_invalid(field);
    }
    let rule = id(app
        .post("/api/v1/alerts/rules", &t, rule_body(&scene))
        .await
        .expect(201)
        .data());
    app.patch(
        &format!("/api/v1/alerts/rules/{rule}"),
        &t,
        json!({"metricPath": "rolling5Min.inQueue"}),
    )
    .await
    .expect_invalid("metricPath");
}

#[tokio::test]
async fn rules_and_alerts_need_their_scopes_and_stay_with_their_tenant() {
    let app = spawn_app().await;
    let (t, _, _, scene) = tenant(&app).await;
    let (other, _, _, other_scene) = tenant(&app).await;
    let rule = id(app
        .post("/api/v1/alerts/rules", &t, rule_body(&scene))
        .await
        .expect(201)
        .data());
    // Someone else's scene and rule are not found.
    app.post("/api/v1/alerts/rules", &other, rule_body(&scene))
        .await
        .expect_error(404, "NOT_FOUND");
    for path in [
        format!("/api/v1/alerts/rules/{rule}"),
        format!("/api/v1/alerts/{}", uuid::Uuid::new_v4()),
    ] {
        app.get(&path, &other).await.expect_error(404, "NOT_FOUND");
    }
    app.patch(
        &format!("/api/v1/alerts/rules/{rule}"),
        &other,
        json!({"threshold": 1}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    let listed = app.get("/api/v1/alerts/rules", &other).await.expect(200);
    assert_eq!(listed.data().as_array().unwrap().len(), 0);
    // A read-only key reads, and may not write.
    let (reader, _) = app
        .create_key(
            &t,
            json!({"name": "r", "type": "service", "scopes": ["alert:read"]}),
        )
        .await;
    app.get("/api/v1/alerts/rules", &reader).await.expect(200);
    app.get("/api/v1/alerts", &reader).await.expect(200);
    app.post("/api/v1/alerts/rules", &reader, rule_body(&scene))
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    app.delete(&format!("/api/v1/alerts/rules/{rule}"), &reader)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    let (scene_only, _) = app
        .create_key(
            &t,
            json!({"name": "s", "type": "service", "scopes": ["scene:read"]}),
        )
        .await;
    app.get("/api/v1/alerts", &scene_only)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");
    let _ = other_scene;
}

/// Fire an alert of `rule` as the notify role does (through the store).
async fn fire(app: &TestApp, user: &str, rule: &Value, at: chrono::DateTime<Utc>) -> Alert {
    let user: UserId = user.parse().unwrap();
    let alert = Alert {
        id: AlertId::new(),
        user_id: user,
        rule_id: id(rule).parse().unwrap(),
        rule_name: rule["name"].as_str().unwrap().into(),
        scene_id: rule["sceneId"].as_str().unwrap().parse().unwrap(),
        device_id: rule["deviceId"].as_str().unwrap().parse().unwrap(),
        task_id: None,
        severity: Severity::parse(rule["severity"].as_str().unwrap()).unwrap(),
        metric_path: rule["metricPath"].as_str().unwrap().into(),
        operator: Operator::Gt,
        threshold: 120.0,
        value: 151.5,
        snapshot_key: Some(format!(
            "{user}/snapshots/{}/1-x.jpg",
            rule["deviceId"].as_str().unwrap()
        )),
        status: AlertStatus::Active,
        history: vec![StatusChange {
            status: AlertStatus::Active,
            at,
            by: "system".into(),
            note: None,
        }],
        breach_started_at: at - Duration::seconds(30),
        triggered_at: at,
        updated_at: at,
        suppressed: false,
    };
    let event = PlatformEvent::new(
        user,
        EventKind::AlertTriggered,
        Some(alert.device_id),
        None,
        json!({"alertId": alert.id}),
        at,
    );
    assert!(
        app.state
            .store
            .fire_alert(&alert, &event, None)
            .await
            .unwrap()
    );
    app.state
        .store
        .close_breach(alert.rule_id, at + Duration::seconds(1))
        .await
        .unwrap();
    alert
}

#[tokio::test]
async fn alerts_are_filtered_acknowledged_and_resolved() {
    let app = spawn_app().await;
    let (t, user, device, scene) = tenant(&app).await;
    let warning = app
        .post("/api/v1/alerts/rules", &t, rule_body(&scene))
        .await
        .expect(201)
        .data()
        .clone();
    let mut body = rule_body(&scene);
    body["severity"] = json!("critical");
    body["cooldownSeconds"] = json!(0);
    let critical = app
        .post("/api/v1/alerts/rules", &t, body)
        .await
        .expect(201)
        .data()
        .clone();
    let t0 = Utc::now() - Duration::hours(2);
    let a1 = fire(&app, &user, &warning, t0).await;
    let a2 = fire(&app, &user, &critical, t0 + Duration::hours(1)).await;
    // Each firing counts against the device's month.
    let this_month = panoptes_shared::domain::alert::month_of(Utc::now());
    let counted = [a1.triggered_at, a2.triggered_at]
        .iter()
        .filter(|t| panoptes_shared::domain::alert::month_of(**t) == this_month)
        .count();
    let quota = app
        .get(&format!("/api/v1/devices/{device}/quota"), &t)
        .await
        .expect(200);
    assert_eq!(quota.data()["alertUsed"], counted);
    let list = app.get("/api/v1/alerts", &t).await.expect(200);
    let items = list.data().as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], a2.id.to_string(), "newest first");
    assert_eq!(items[0]["value"], 151.5);
    assert_eq!(items[0]["status"], "active");
    assert!(
        items[0]["snapshotUrl"]
            .as_str()
            .unwrap()
            .contains("/blobs/"),
        "a presigned snapshot URL: {}",
        items[0]
    );
    let count = |q: String| {
        let (app, t) = (&app, &t);
        async move {
            app.get(&format!("/api/v1/alerts?{q}"), t)
                .await
                .expect(200)
                .body["meta"]["pagination"]["total"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(count("severity=critical".into()).await, 1);
    assert_eq!(count(format!("deviceId={device}")).await, 2);
    assert_eq!(count(format!("sceneId={}", uuid::Uuid::new_v4())).await, 0);
    let mid = (t0 + Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(count(format!("startDate={mid}")).await, 1);
    assert_eq!(count(format!("endDate={mid}")).await, 1);
    app.get(
        &format!("/api/v1/alerts?startDate={mid}&endDate=2000-01-01T00:00:00Z"),
        &t,
    )
    .await
    .expect_invalid("endDate");
    app.get("/api/v1/alerts?status=snoozed", &t)
        .await
        .expect_invalid("status");

    // Acknowledge (no body), then resolve with a note; each once.
    let ack = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{}/acknowledge", a1.id),
            Some(&t),
            None,
        )
        .await
        .expect(200);
    assert_eq!(ack.data()["status"], "acknowledged");
    assert!(ack.data()["acknowledgedAt"].is_string());
    assert_eq!(ack.data()["history"][1]["by"], format!("user:{user}"));
    app.post(
        &format!("/api/v1/alerts/{}/acknowledge", a1.id),
        &t,
        json!({}),
    )
    .await
    .expect_error(409, "CONFLICT");
    let resolved = app
        .post(
            &format!("/api/v1/alerts/{}/resolve", a1.id),
            &t,
            json!({"note": "opened a second till"}),
        )
        .await
        .expect(200);
    assert_eq!(resolved.data()["status"], "resolved");
    assert_eq!(
        resolved.data()["history"][2]["note"],
        "opened a second till"
    );
    app.post(&format!("/api/v1/alerts/{}/resolve", a1.id), &t, json!({}))
        .await
        .expect_error(409, "CONFLICT");
    // Resolving straight from active works too.
    app.post(&format!("/api/v1/alerts/{}/resolve", a2.id), &t, json!({}))
        .await
        .expect(200);
    assert_eq!(count("status=resolved".into()).await, 2);
    let one = app
        .get(&format!("/api/v1/alerts/{}", a1.id), &t)
        .await
        .expect(200);
    assert_eq!(one.data()["ruleName"], "Queue too long");
    assert_eq!(one.data()["history"].as_array().unwrap().len(), 3);
}
