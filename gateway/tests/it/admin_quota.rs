//! Admin quota: any user's and device's usage, monthly grants with a reason,
//! unlimited and disabled devices, every change a row of the quota ledger
//! (owners' caps too); grants and unlimited raise what analysis may use;
//! admin-only; an admin's disabling is the admin's to lift.

use panoptes_shared::domain::plan::billing_period;
use panoptes_shared::domain::task::TaskTrigger;
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::domain::user::Role;
use panoptes_shared::ids::{DeviceId, SceneId, UserId};
use panoptes_shared::lifecycle::{StartRequest, start};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn admins_grant_quota_with_a_reason_and_every_change_is_in_the_ledger() {
    let app = spawn_app().await;
    let alice = app.signup().await;
    let admin = app.signup().await;
    app.state
        .store
        .set_user_role(admin.id.parse().unwrap(), Role::Admin)
        .await
        .unwrap();
    let d = app
        .create_device(&alice.token, json!({"plan": "level_01"}))
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let scene = app.create_scene(&alice.token, &id).await;
    let (user, device) = (
        UserId(alice.id.parse().unwrap()),
        DeviceId(id.parse().unwrap()),
    );

    // The owner caps the device at 60 s: a ledger row by the owner.
    app.patch(
        &format!("/api/v1/devices/{id}/quota"),
        &alice.token,
        json!({"quotaSeconds": 60, "reason": "trial budget"}),
    )
    .await
    .expect(200);
    // 60 s used this month: analysis cannot start.
    let now = panoptes_shared::time::now();
    app.state
        .store
        .record_usage(&[UsageEvent {
            id: "fixture:60s".into(),
            user_id: user,
            device_id: device,
            feature: Feature::AnalysisSeconds,
            quantity: 60,
            occurred_at: now,
            source: json!({}),
        }])
        .await
        .unwrap();
    let req = || StartRequest {
        scene: SceneId(scene["id"].as_str().unwrap().parse().unwrap()),
        capabilities: vec![],
        trigger: TaskTrigger::Api,
        require_online: false,
    };
    let store = app.state.store.as_ref();
    assert!(matches!(
        start(store, user, device, req(), now).await,
        Err(panoptes_shared::Error::QuotaExceeded(_))
    ));

    // Admin endpoints refuse a non-admin.
    for (path, body) in [(
        format!("/api/v1/admin/devices/{id}/quota/grants"),
        json!({"feature": "analysisSeconds", "amount": 1, "reason": "x"}),
    )] {
        app.post(&path, &alice.token, body)
            .await
            .expect_error(403, "FORBIDDEN");
    }
    app.get(&format!("/api/v1/admin/devices/{id}/quota"), &alice.token)
        .await
        .expect_error(403, "FORBIDDEN");
    app.get(
        &format!("/api/v1/admin/users/{}/quota", alice.id),
        &alice.token,
    )
    .await
    .expect_error(403, "FORBIDDEN");
    app.patch(
        &format!("/api/v1/admin/devices/{id}/quota"),
        &alice.token,
        json!({"isUnlimited": true, "reason": "x"}),
    )
    .await
    .expect_error(403, "FORBIDDEN");

    // The admin sees the device and grants an hour for this month.
    let q = app
        .get(&format!("/api/v1/admin/devices/{id}/quota"), &admin.token)
        .await
        .expect(200);
    assert_eq!(
        (
            q.data()["quotaSeconds"].as_u64(),
            q.data()["usedSeconds"].as_u64()
        ),
        (Some(60), Some(60))
    );
    let g = app
        .post(
            &format!("/api/v1/admin/devices/{id}/quota/grants"),
            &admin.token,
            json!({"feature": "analysisSeconds", "amount": 3600, "reason": "pilot extension"}),
        )
        .await
        .expect(201);
    assert_eq!(g.data()["kind"], "grant");
    assert_eq!(g.data()["billingPeriod"], billing_period(now).0);
    assert_eq!(g.data()["actor"], format!("admin:{}", admin.id));
    let r = app
        .get(&format!("/api/v1/usage/devices/{id}"), &alice.token)
        .await
        .expect(200);
    assert_eq!(r.data()["quotaSeconds"], 3_660, "the cap plus the grant");
    let r = app
        .get(&format!("/api/v1/devices/{id}/quota"), &alice.token)
        .await
        .expect(200);
    assert_eq!(r.data()["quotaSeconds"], 3_660);
    let r = app
        .get(
            &format!("/api/v1/admin/users/{}/quota", alice.id),
            &admin.token,
        )
        .await
        .expect(200);
    assert_eq!(r.data()["analysis"]["limit"], 3_660);
    // Now analysis may start.
    let task = start(store, user, device, req(), now).await.unwrap();
    panoptes_shared::lifecycle::end(
        store,
        &task,
        panoptes_shared::domain::task::TaskEnd::stopped(
            panoptes_shared::domain::task::StopReason::User,
            now,
        ),
    )
    .await
    .unwrap();

    // Bad grants are 400 naming the field; an unknown device 404.
    let grants = format!("/api/v1/admin/devices/{id}/quota/grants");
    app.post(&grants, &admin.token, json!({"feature": "analysisSeconds", "amount": 1, "reason": "x", "billingPeriod": "2020-01"}))
        .await
        .expect_invalid("billingPeriod");
    app.post(
        &grants,
        &admin.token,
        json!({"feature": "analysisSeconds", "amount": 0, "reason": "x"}),
    )
    .await
    .expect(400);
    app.post(
        &grants,
        &admin.token,
        json!({"feature": "minutes", "amount": 1, "reason": "x"}),
    )
    .await
    .expect(400);
    app.post(
        &grants,
        &admin.token,
        json!({"feature": "alertCount", "amount": 1, "reason": ""}),
    )
    .await
    .expect(400);
    app.post(
        &format!(
            "/api/v1/admin/devices/{}/quota/grants",
            uuid::Uuid::new_v4()
        ),
        &admin.token,
        json!({"feature": "alertCount", "amount": 1, "reason": "x"}),
    )
    .await
    .expect_error(404, "NOT_FOUND");

    // Unlimited, then disabled by the admin: the owner cannot re-enable it.
    let r = app
        .patch(
            &format!("/api/v1/admin/devices/{id}/quota"),
            &admin.token,
            json!({"isUnlimited": true, "reason": "key account"}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["isUnlimited"], true);
    let r = app
        .get(&format!("/api/v1/usage/devices/{id}"), &alice.token)
        .await
        .expect(200);
    assert_eq!(r.data()["isUnlimited"], true);
    app.patch(
        &format!("/api/v1/admin/devices/{id}/quota"),
        &admin.token,
        json!({"isDisabled": true, "reason": "unpaid invoice"}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/api/v1/devices/{id}/quota"),
        &alice.token,
        json!({"isDisabled": false}),
    )
    .await
    .expect_error(403, "FORBIDDEN");

    // The ledger, newest first: who, when, why.
    let r = app
        .get("/api/v1/billing/transactions", &alice.token)
        .await
        .expect(200);
    let mut rows: Vec<(String, String, String)> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().into(),
                c["actor"].as_str().unwrap().into(),
                c["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    let times: Vec<&str> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["createdAt"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    // Changes made in the same millisecond may come in either order.
    rows.sort();
    let (by_admin, by_owner) = (format!("admin:{}", admin.id), format!("user:{}", alice.id));
    let mut expected: Vec<(String, String, String)> = vec![
        ("disabled".into(), by_admin.clone(), "unpaid invoice".into()),
        ("unlimited".into(), by_admin.clone(), "key account".into()),
        ("grant".into(), by_admin, "pilot extension".into()),
        ("cap".into(), by_owner, "trial budget".into()),
    ];
    expected.sort();
    assert_eq!(rows, expected);
    let bob = app.signup().await;
    let r = app
        .get("/api/v1/billing/transactions", &bob.token)
        .await
        .expect(200);
    assert!(r.data().as_array().unwrap().is_empty(), "tenancy");
}
