//! The usage API: a user's and a device's usage per feature in a billing
//! period, read from the usage ledger, against the devices' allowances;
//! periods checked; tenancy and scopes.

use chrono::{Datelike, TimeZone, Utc};
use panoptes_shared::domain::plan::billing_period;
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::ids::{AlertId, DeviceId, UserId};
use serde_json::json;

use crate::helpers::spawn_app;

fn event(
    user: &str,
    device: &str,
    id: &str,
    feature: Feature,
    n: u64,
    period_start: chrono::DateTime<Utc>,
) -> UsageEvent {
    UsageEvent {
        id: id.to_owned(),
        user_id: UserId(user.parse().unwrap()),
        device_id: DeviceId(device.parse().unwrap()),
        feature,
        quantity: n,
        occurred_at: period_start + chrono::Duration::hours(1),
        source: json!({ "test": id }),
    }
}

#[tokio::test]
async fn usage_per_user_and_device_against_their_allowances() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let d1 = app
        .create_device(&user.token, json!({"plan": "level_01"}))
        .await;
    let d2 = app
        .create_device(&user.token, json!({"plan": "level_02"}))
        .await;
    let (id1, id2) = (d1["id"].as_str().unwrap(), d2["id"].as_str().unwrap());
    let now = Utc::now();
    let (period, _) = billing_period(now);
    let this_month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap();
    let last_month = this_month - chrono::Duration::days(1);
    let (last_period, _) = billing_period(last_month);
    let last_month = Utc
        .with_ymd_and_hms(last_month.year(), last_month.month(), 1, 0, 0, 0)
        .unwrap();
    let store = &app.state.store;
    let events = [
        event(
            &user.id,
            id1,
            "a1",
            Feature::AnalysisSeconds,
            3_600,
            this_month,
        ),
        event(
            &user.id,
            id2,
            "a2",
            Feature::AnalysisSeconds,
            600,
            this_month,
        ),
        UsageEvent::alert(
            UserId(user.id.parse().unwrap()),
            DeviceId(id1.parse().unwrap()),
            AlertId::new(),
            this_month + chrono::Duration::hours(2),
        ),
        event(&user.id, id2, "v1", Feature::VlmTokens, 85_000, this_month),
        event(
            &user.id,
            id2,
            "t1",
            Feature::AttributeCount,
            120,
            this_month,
        ),
        event(
            &user.id,
            id1,
            "old",
            Feature::AnalysisSeconds,
            999,
            last_month,
        ),
    ];
    assert_eq!(store.record_usage(&events).await.unwrap(), 6);
    assert_eq!(
        store.record_usage(&events).await.unwrap(),
        0,
        "counted once"
    );

    let r = app
        .get("/api/v1/usage/user/summary", &user.token)
        .await
        .expect(200);
    let s = r.data();
    assert_eq!(
        (s["userId"].as_str(), s["period"].as_str()),
        (Some(user.id.as_str()), Some(period.as_str()))
    );
    assert_eq!(
        s["analysis"],
        json!({"used": 4_200, "limit": 400 * 3600, "balance": 400 * 3600 - 4_200, "isExceeded": false})
    );
    assert_eq!(
        s["alert"],
        json!({"used": 1, "limit": 8_000, "balance": 7_999, "isExceeded": false})
    );
    assert_eq!(
        s["attribute"],
        json!({"used": 120, "limit": 5_000, "balance": 4_880, "isExceeded": false})
    );
    assert_eq!(s["vlm"]["used"], 85_000);
    let r = app
        .get(
            &format!("/api/v1/usage/user/summary?period={last_period}"),
            &user.token,
        )
        .await
        .expect(200);
    assert_eq!(r.data()["analysis"]["used"], 999);
    assert_eq!(r.data()["alert"]["used"], 0);

    let r = app
        .get(&format!("/api/v1/usage/devices/{id1}"), &user.token)
        .await
        .expect(200);
    let d = r.data();
    assert_eq!(d["deviceId"], id1);
    assert_eq!(d["plan"], "level_01");
    assert_eq!(
        (
            d["quotaSeconds"].as_u64(),
            d["usedSeconds"].as_u64(),
            d["remainingSeconds"].as_u64()
        ),
        (Some(540_000), Some(3_600), Some(536_400))
    );
    assert_eq!(
        d["alertQuota"],
        json!({"used": 1, "limit": 3_000, "balance": 2_999, "isExceeded": false})
    );
    assert_eq!(
        d["attributeQuota"],
        json!({"used": 0, "limit": 0, "balance": 0, "isExceeded": true}),
        "level_01 has no attributes"
    );
    assert_eq!(
        (d["isDisabled"].as_bool(), d["isUnlimited"].as_bool()),
        (Some(false), Some(false))
    );
    assert!((d["usagePercentage"].as_f64().unwrap() - 3_600.0 * 100.0 / 540_000.0).abs() < 1e-9);

    // Bad periods are 400 naming the parameter.
    for bad in ["2026-13", "2026-2", "202602", "x"] {
        app.get(
            &format!("/api/v1/usage/user/summary?period={bad}"),
            &user.token,
        )
        .await
        .expect_invalid("period");
        app.get(
            &format!("/api/v1/usage/devices/{id1}?period={bad}"),
            &user.token,
        )
        .await
        .expect_invalid("period");
    }

    // Tenancy: another user's device is not found; their summary is empty.
    let bob = app.signup().await;
    app.get(&format!("/api/v1/usage/devices/{id1}"), &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    let r = app
        .get("/api/v1/usage/user/summary", &bob.token)
        .await
        .expect(200);
    assert_eq!(
        r.data()["analysis"],
        json!({"used": 0, "limit": 0, "balance": 0, "isExceeded": true})
    );

    // Scopes: billing:read reads both; a key without it reads neither summary.
    let (billing, _) = app
        .create_key(
            &user.token,
            json!({"name": "b", "type": "service", "scopes": ["billing:read"]}),
        )
        .await;
    app.get("/api/v1/usage/user/summary", &billing)
        .await
        .expect(200);
    app.get(&format!("/api/v1/usage/devices/{id2}"), &billing)
        .await
        .expect(200);
    let (alerts_only, _) = app
        .create_key(
            &user.token,
            json!({"name": "a", "type": "service", "scopes": ["alert:read"]}),
        )
        .await;
    app.get("/api/v1/usage/user/summary", &alerts_only)
        .await
        .expect_error(403, "FORBIDDEN_SCOPE");

    // A deleted device's usage stays in the user's totals.
    app.delete(&format!("/api/v1/devices/{id1}"), &user.token)
        .await
        .expect(200);
    app.get(&format!("/api/v1/usage/devices/{id1}"), &user.token)
        .await
        .expect_error(404, "NOT_FOUND");
    let r = app
        .get("/api/v1/usage/user/summary", &user.token)
        .await
        .expect(200);
    assert_eq!(r.data()["analysis"]["used"], 4_200);
    assert_eq!(
        r.data()["analysis"]["limit"],
        250 * 3600,
        "the devices you have now"
    );
}
