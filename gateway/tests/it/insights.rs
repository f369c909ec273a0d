//! `/api/v1/analysis/insights` and `/api/v1/analysis/attributes`: lists and
//! their filters, details, snapshots, linked attributes, stats, the summary
//! feed, plain-language search (with a chat-completions server on loopback,
//! and without a provider), plans, scopes and tenancy. Insights are made
//! through the store the notify role uses (its pipeline is tested in
//! `workers/tests/insights.rs`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use panoptes_shared::config::{Config, VlmProviderKind};
use panoptes_shared::domain::alert::{Alert, AlertStatus, Operator, Severity, StatusChange};
use panoptes_shared::domain::attribute::{AttributeRecord, ColorName, PersonAttributes};
use panoptes_shared::domain::detection::BoundingBox;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::insight::{Insight, VlmResult};
use panoptes_shared::ids::{AlertId, AlertRuleId, AttributeId, DeviceId, SceneId, TaskId, UserId};
use panoptes_shared::ports::VlmProvider;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::vlm_server::{ChatServer, Reply};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A user with a device on `plan` and a scene: (token, user, device, scene).
async fn tenant(app: &TestApp, plan: &str) -> (String, UserId, DeviceId, SceneId) {
    let user = app.signup().await;
    let device = id(&app
        .create_device(&user.token, json!({"plan": plan, "name": "Front Counter"}))
        .await);
    let scene = id(&app.create_scene(&user.token, &device).await);
    (
        user.token,
        user.id.parse().unwrap(),
        device.parse().unwrap(),
        scene.parse().unwrap(),
    )
}

/// An alert fired at `at` with its pending insight, as the notify role
/// stores them.
async fn fire(
    app: &TestApp,
    (user, device, scene, task): (UserId, DeviceId, SceneId, TaskId),
    severity: Severity,
    at: DateTime<Utc>,
) -> Insight {
    let alert = Alert {
        id: AlertId::new(),
        user_id: user,
        rule_id: AlertRuleId::new(),
        rule_name: "Queue too long".into(),
        scene_id: scene,
        device_id: device,
        task_id: Some(task),
        severity,
        metric_path: "current.inQueue".into(),
        operator: Operator::Gte,
        threshold: 5.0,
        value: 7.0,
        snapshot_key: Some(format!("{user}/snapshots/{device}/1-x.jpg")),
        status: AlertStatus::Active,
        history: vec![StatusChange {
            status: AlertStatus::Active,
            at,
            by: "system".into(),
            note: None,
        }],
        breach_started_at: at,
        triggered_at: at,
        updated_at: at,
        suppressed: false,
    };
    let event = PlatformEvent::new(
        user,
        EventKind::AlertTriggered,
        Some(device),
        Some(task),
        json!({"alertId": alert.id}),
        at,
    );
    let insight = Insight::pending(&alert, at);
    // A rule the alert belongs to: fire_alert takes its firing state.
    let rule = panoptes_shared::domain::alert::AlertRule {
        id: alert.rule_id,
        ..rule_for(user, scene, device)
    };
    app.state.store.insert_rule(&rule).await.unwrap();
    assert!(
        app.state
            .store
            .fire_alert(&alert, &event, Some(&insight))
            .await
            .unwrap()
    );
    insight
}

fn rule_for(
    user: UserId,
    scene: SceneId,
    device: DeviceId,
) -> panoptes_shared::domain::alert::AlertRule {
    let t = Utc::now();
    panoptes_shared::domain::alert::AlertRule {
        id: AlertRuleId::new(),
        user_id: user,
        scene_id: scene,
        device_id: device,
        name: "Queue too long".into(),
        metric_path: panoptes_shared::domain::alert::MetricPath::parse("current.inQueue").unwrap(),
        operator: Operator::Gte,
        threshold: 5.0,
        duration_seconds: 0,
        cooldown_seconds: 0,
        severity: Severity::Warning,
        active_slots: None,
        enabled: true,
        last_fired_at: None,
        breach_open: false,
        created_at: t,
        updated_at: t,
    }
}

async fn complete(app: &TestApp, i: &Insight, summary: &str) {
    let result = VlmResult {
        summary: summary.into(),
        structured: Some(json!({"summary": summary, "queueCondition": "busy"})),
        model: Some("gpt-4o-mini".into()),
        prompt_tokens: Some(1_000),
        completion_tokens: Some(50),
        total_tokens: Some(1_050),
    };
    assert!(
        app.state
            .store
            .complete_insight(i.user_id, i.id, &result, 1, Utc::now())
            .await
            .unwrap()
    );
}

/// A red-top, blue-bottom person seen on the insight's task just before it.
async fn person(app: &TestApp, i: &Insight) -> AttributeRecord {
    let seen = i.triggered_at - Duration::seconds(10);
    let record = AttributeRecord {
        id: AttributeId::new(),
        user_id: i.user_id,
        device_id: i.device_id,
        scene_id: i.scene_id,
        task_id: i.task_id.unwrap(),
        track_id: "t4".into(),
        attributes: PersonAttributes {
            upper_color: ColorName::Red,
            lower_color: ColorName::Blue,
            upper_color_share: 0.55,
            lower_color_share: 0.7,
        },
        confidence: 0.91,
        bounding_box: BoundingBox {
            x: 0.2,
            y: 0.1,
            width: 0.1,
            height: 0.5,
        },
        observed_at: seen,
        created_at: seen,
    };
    app.state
        .store
        .insert_attributes(std::slice::from_ref(&record))
        .await
        .unwrap();
    app.state
        .store
        .attach_insight_attributes(i.user_id, i.id, 1, &record.search_text())
        .await
        .unwrap();
    record
}

fn ids(r: &Value) -> Vec<String> {
    r.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn insights_are_listed_filtered_and_shown_with_snapshots_and_attributes() {
    let app = spawn_app().await;
    let (t, user, device, scene) = tenant(&app, "level_02").await;
    let task = TaskId::new();
    let t0 = Utc::now() - Duration::hours(3);
    let who = (user, device, scene, task);
    let busy = fire(&app, who, Severity::Critical, t0).await;
    let calm = fire(&app, who, Severity::Warning, t0 + Duration::hours(1)).await;
    let pending = fire(&app, who, Severity::Warning, t0 + Duration::hours(2)).await;
    complete(
        &app,
        &busy,
        "Seven people queue at counter A; one till is open.",
    )
    .await;
    complete(&app, &calm, "The checkout is calm.").await;
    let record = person(&app, &busy).await;

    let base = "/api/v1/analysis/insights";
    let list = app.get(base, &t).await.expect(200);
    assert_eq!(
        ids(list.data()),
        [pending.id, calm.id, busy.id].map(|i| i.to_string()),
        "newest firing first"
    );
    assert_eq!(list.body["meta"]["pagination"]["total"], 3);
    let first = &list.data()[2];
    assert_eq!(first["alertId"], busy.alert_id.to_string());
    assert_eq!(first["deviceName"], "Front Counter");
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["vlmStatus"], "completed");
    assert_eq!(first["totalTokens"], 1_050);
    assert_eq!(first["hasAttributes"], true);
    assert!(first.get("vlmStructuredResult").is_none(), "detail only");

    for (query, expected) in [
        ("vlmStatus=completed", vec![calm.id, busy.id]),
        ("vlmStatus=pending", vec![pending.id]),
        ("severity=critical", vec![busy.id]),
        ("q=counter%20till", vec![busy.id]),
        ("q=red", vec![busy.id]),
        ("q=CHECKOUT", vec![calm.id]),
        ("hasVlmSummary=false", vec![pending.id]),
        ("hasAttributes=true", vec![busy.id]),
        ("hasAttributes=false", vec![pending.id, calm.id]),
        (
            &format!("deviceId={device}"),
            vec![pending.id, calm.id, busy.id],
        ),
        (&format!("sceneId={}", SceneId::new()), vec![]),
        (
            &format!(
                "startDate={}&endDate={}",
                (t0 + Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                (t0 + Duration::minutes(90)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            vec![calm.id],
        ),
        ("limit=1&page=2", vec![calm.id]),
    ] {
        let r = app
            .get(&format!("{base}?{query}").replace('+', "%2B"), &t)
            .await
            .expect(200);
        let want: Vec<String> = expected.iter().map(|i| i.to_string()).collect();
        assert_eq!(ids(r.data()), want, "{query}");
    }
    for (query, field) in [
        ("vlmStatus=done", "vlmStatus"),
        ("severity=major", "severity"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("deviceId=nope", "deviceId"),
        ("hasAttributes=maybe", "hasAttributes"),
    ] {
        app.get(&format!("{base}?{query}"), &t)
            .await
            .expect_invalid(field);
    }

    // Detail, snapshots, attributes in view.
    let detail = app
        .get(&format!("{base}/{}", busy.id), &t)
        .await
        .expect(200);
    assert_eq!(
        detail.data()["vlmStructuredResult"]["queueCondition"],
        "busy"
    );
    assert_eq!(detail.data()["attributeCount"], 1);
    let snaps = app
        .get(&format!("{base}/{}/snapshots", busy.id), &t)
        .await
        .expect(200);
    let snaps = snaps.data().as_array().unwrap();
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0]["url"].as_str().unwrap().contains("1-x.jpg"));
    assert_eq!(snaps[0]["source"], "alert");
    let people = app
        .get(&format!("{base}/{}/attributes", busy.id), &t)
        .await
        .expect(200);
    assert_eq!(ids(people.data()), [record.id.to_string()]);
    assert_eq!(people.data()[0]["upperColor"], "red");
    assert_eq!(people.data()[0]["lowerColor"], "blue");
    assert_eq!(people.data()[0]["trackId"], "t4");
    let none = app
        .get(&format!("{base}/{}/attributes", calm.id), &t)
        .await
        .expect(200);
    assert!(none.data().as_array().unwrap().is_empty());

    // The summary feed: completed ones only.
    let feed = app
        .get(&format!("{base}/vlm-summaries"), &t)
        .await
        .expect(200);
    let feed = feed.data().as_array().unwrap();
    assert_eq!(feed.len(), 2);
    assert_eq!(feed[0]["insightId"], calm.id.to_string());
    assert_eq!(feed[0]["summary"], "The checkout is calm.");

    // Stats and the standalone attribute endpoints.
    let stats = app
        .get(&format!("{base}/attributes/stats"), &t)
        .await
        .expect(200);
    assert_eq!(stats.data()["total"], 1);
    assert_eq!(stats.data()["tracks"], 1);
    assert_eq!(
        stats.data()["upperColors"],
        json!([{"color": "red", "count": 1}])
    );
    let all = app.get("/api/v1/analysis/attributes", &t).await.expect(200);
    assert_eq!(ids(all.data()), [record.id.to_string()]);
    for (query, n) in [
        ("upperColor=red", 1),
        ("upperColor=green", 0),
        ("trackId=t4", 1),
    ] {
        let r = app
            .get(&format!("/api/v1/analysis/attributes?{query}"), &t)
            .await
            .expect(200);
        assert_eq!(r.data().as_array().unwrap().len(), n, "{query}");
    }
    app.get("/api/v1/analysis/attributes?upperColor=plaid", &t)
        .await
        .expect_invalid("upperColor");
    let one = app
        .get(&format!("/api/v1/analysis/attributes/{}", record.id), &t)
        .await
        .expect(200);
    assert!((one.data()["confidence"].as_f64().unwrap() - 0.91).abs() < 1e-6);
    app.get(&format!("{base}/{}", uuid::Uuid::now_v7()), &t)
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn every_endpoint_keeps_tenants_apart_and_needs_the_scope_and_plan() {
    let app = spawn_app().await;
    let (alice, user, device, scene) = tenant(&app, "level_02").await;
    let insight = fire(
        &app,
        (user, device, scene, TaskId::new()),
        Severity::Warning,
        Utc::now() - Duration::minutes(5),
    )
    .await;
    complete(&app, &insight, "Two people wait at counter B.").await;
    let record = person(&app, &insight).await;
    let (bob, ..) = tenant(&app, "level_02").await;
    let base = "/api/v1/analysis/insights";
    for path in [
        format!("{base}/{}", insight.id),
        format!("{base}/{}/snapshots", insight.id),
        format!("{base}/{}/attributes", insight.id),
        format!("/api/v1/analysis/attributes/{}", record.id),
    ] {
        app.get(&path, &bob).await.expect_error(404, "NOT_FOUND");
        app.get(&path, &alice).await.expect(200);
    }
    for path in [
        base.to_owned(),
        format!("{base}/vlm-summaries"),
        "/api/v1/analysis/attributes".to_owned(),
        format!("{base}?q=counter"),
    ] {
        let r = app.get(&path, &bob).await.expect(200);
        assert!(r.data().as_array().unwrap().is_empty(), "{path}");
    }
    let stats = app
        .get(&format!("{base}/attributes/stats"), &bob)
        .await
        .expect(200);
    assert_eq!(stats.data()["total"], 0);
    // Naming alice's device is a 404 for bob.
    app.get(&format!("{base}?deviceId={device}"), &bob)
        .await
        .expect(200);
    app.get(
        &format!("/api/v1/analysis/attributes?deviceId={device}"),
        &bob,
    )
    .await
    .expect_error(404, "NOT_FOUND");
    let found = app
        .post(
            &format!("{base}/search"),
            &bob,
            json!({"query": "counter B"}),
        )
        .await
        .expect(200);
    assert_eq!(found.data()["total"], 0);

    // Scope analytics:read.
    let (scene_only, _) = app
        .create_key(
            &alice,
            json!({"name": "s", "type": "service", "scopes": ["scene:read"]}),
        )
        .await;
    for path in [
        base.to_owned(),
        format!("{base}/{}", insight.id),
        "/api/v1/analysis/attributes".to_owned(),
        format!("{base}/attributes/stats"),
    ] {
        app.get(&path, &scene_only)
            .await
            .expect_error(403, "FORBIDDEN_SCOPE");
    }
    app.post(
        &format!("{base}/search"),
        &scene_only,
        json!({"query": "x"}),
    )
    .await
    .expect_error(403, "FORBIDDEN_SCOPE");
    let (reader, _) = app
        .create_key(
            &alice,
            json!({"name": "r", "type": "service", "scopes": ["analytics:read"]}),
        )
        .await;
    app.get(base, &reader).await.expect(200);

    // Attribute endpoints are level_02: a level_01-only tenant is refused.
    let (carol, ..) = tenant(&app, "level_01").await;
    for path in [
        "/api/v1/analysis/attributes".to_owned(),
        format!("{base}/attributes/stats"),
    ] {
        app.get(&path, &carol)
            .await
            .expect_error(403, "PLAN_REQUIRED");
    }
    app.get(base, &carol).await.expect(200);
}

#[tokio::test]
async fn search_without_a_provider_matches_the_questions_words() {
    let app = spawn_app().await;
    let (t, user, device, scene) = tenant(&app, "level_02").await;
    let who = (user, device, scene, TaskId::new());
    let at = Utc::now() - Duration::minutes(30);
    let counter = fire(&app, who, Severity::Critical, at).await;
    let door = fire(&app, who, Severity::Warning, at + Duration::minutes(1)).await;
    complete(&app, &counter, "A long line formed at counter A.").await;
    complete(&app, &door, "People crowd the door.").await;
    person(&app, &door).await;
    let search = "/api/v1/analysis/insights/search";
    let r = app
        .post(search, &t, json!({"query": "Where did a long line form?"}))
        .await
        .expect(200);
    let d = r.data();
    assert_eq!(d["query"], "Where did a long line form?");
    assert_eq!(d["interpretation"]["mode"], "fulltext");
    assert_eq!(d["interpretation"]["termMatch"], "any");
    assert_eq!(
        d["interpretation"]["terms"],
        json!(["long", "line", "form"])
    );
    assert!(d["interpretation"].get("fallbackReason").is_none());
    assert_eq!(ids(&d["insights"]), [counter.id.to_string()]);
    // By the attributes of the people in view.
    let r = app
        .post(search, &t, json!({"query": "someone in red"}))
        .await
        .expect(200);
    assert_eq!(ids(&r.data()["insights"]), [door.id.to_string()]);
    // Syntax of either full-text parser is only words.
    for q in ["\"counter\" OR *", "a:* & !b | (c", "NEAR(a b)"] {
        app.post(search, &t, json!({"query": q})).await.expect(200);
    }
    for body in [
        json!({"query": ""}),
        json!({}),
        json!({"query": "x", "limit": 0}),
    ] {
        app.post(search, &t, body).await.expect(400);
    }
}

fn provider(server: &ChatServer) -> Arc<dyn VlmProvider> {
    let mut cfg = Config::default();
    cfg.vlm.provider = VlmProviderKind::OpenAi;
    cfg.vlm.base_url = server.base_url("http");
    cfg.vlm.model = "gpt-4o-mini".into();
    cfg.vlm.timeout_ms = 5_000;
    cfg.vlm.max_retries = 0;
    panoptes_infra::wiring::vlm_provider(&cfg).unwrap()
}

#[tokio::test]
async fn search_with_a_provider_reads_the_question_as_filters_and_terms() {
    let base_app = spawn_app().await;
    let (t, user, device, scene) = tenant(&base_app, "level_02").await;
    let other = id(&base_app
        .create_device(&t, json!({"plan": "level_02", "name": "Back Door"}))
        .await);
    let who = (user, device, scene, TaskId::new());
    let at = Utc::now() - Duration::hours(1);
    let critical = fire(&base_app, who, Severity::Critical, at).await;
    let warning = fire(&base_app, who, Severity::Warning, at + Duration::minutes(1)).await;
    complete(&base_app, &critical, "A long queue at counter A.").await;
    complete(&base_app, &warning, "A long queue at counter B.").await;
    person(&base_app, &critical).await;
    let plan = json!({
        "terms": ["queue"],
        "severity": "critical",
        "vlmStatus": null,
        "deviceName": "front counter",
        "startDate": (at - Duration::hours(1)).to_rfc3339(),
        "endDate": null,
        "hasAttributes": null,
        "upperColor": "red",
        "lowerColor": null
    });
    let mut server = ChatServer::start(vec![
        Reply::content(&plan.to_string()),
        Reply::json(500, json!({"error": {"message": "down"}})),
    ])
    .await;
    let mut state = base_app.state.clone();
    state.vlm = provider(&server);
    let app = base_app.with_state(state).await;
    let question = "critical queues at the front counter today with someone in red";
    let r = app
        .post(
            "/api/v1/analysis/insights/search",
            &t,
            json!({"query": question}),
        )
        .await
        .expect(200);
    let request = server
        .next(std::time::Duration::from_secs(10), "the search request")
        .await
        .json();
    let sent = request.to_string();
    assert!(sent.contains(question), "the question is asked");
    assert!(
        sent.contains("Front Counter") && sent.contains("Back Door"),
        "camera names offered"
    );
    assert_eq!(
        request["response_format"]["json_schema"]["name"],
        "insight_search_filters"
    );
    let d = r.data();
    let i = &d["interpretation"];
    assert_eq!(i["mode"], "llm");
    assert_eq!(i["model"], crate::vlm_server::SERVED_MODEL);
    assert_eq!(i["termMatch"], "all");
    assert_eq!(i["terms"], json!(["queue"]));
    assert_eq!(i["filters"]["severity"], "critical");
    assert_eq!(i["filters"]["deviceId"], device.to_string());
    assert_eq!(i["filters"]["deviceName"], "front counter");
    assert_eq!(i["filters"]["upperColor"], "red");
    assert!(i["filters"].get("vlmStatus").is_none());
    assert_eq!(ids(&d["insights"]), [critical.id.to_string()]);
    let _ = other;

    // The model failing: its words are matched, and the reason is shown.
    let r = app
        .post(
            "/api/v1/analysis/insights/search",
            &t,
            json!({"query": "queue at counter B"}),
        )
        .await
        .expect(200);
    let i = &r.data()["interpretation"];
    assert_eq!(i["mode"], "fulltext");
    assert!(
        i["fallbackReason"].as_str().unwrap().contains("HTTP 500"),
        "{i}"
    );
    assert_eq!(r.data()["total"], 2, "any of queue, counter, b");
}
