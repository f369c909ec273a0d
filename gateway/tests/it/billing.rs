//! The billing dashboard on fixture usage with known answers: summary and
//! by-device (deleted devices kept), the ledger's events, the trend by day,
//! ISO week and month, comparison and forecast of a past month; periods,
//! dates and granularities checked; tenancy and scope.

use chrono::{DateTime, TimeZone, Utc};
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::ids::{AlertId, DeviceId, UserId};
use serde_json::json;

use crate::helpers::spawn_app;

fn at(m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap()
}

fn ev(
    user: UserId,
    device: DeviceId,
    id: &str,
    f: Feature,
    n: u64,
    t: DateTime<Utc>,
) -> UsageEvent {
    UsageEvent {
        id: id.into(),
        user_id: user,
        device_id: device,
        feature: f,
        quantity: n,
        occurred_at: t,
        source: json!({ "fixture": id }),
    }
}

#[tokio::test]
async fn the_dashboard_answers_from_the_ledger_on_known_fixtures() {
    let app = spawn_app().await;
    let alice = app.signup().await;
    let d1 = app
        .create_device(&alice.token, json!({"plan": "level_01"}))
        .await;
    let d2 = app
        .create_device(&alice.token, json!({"plan": "level_02"}))
        .await;
    let (id1, id2) = (d1["id"].as_str().unwrap(), d2["id"].as_str().unwrap());
    let user = UserId(alice.id.parse().unwrap());
    let (dev1, dev2) = (
        DeviceId(id1.parse().unwrap()),
        DeviceId(id2.parse().unwrap()),
    );
    let events = [
        ev(
            user,
            dev1,
            "s1",
            Feature::AnalysisSeconds,
            1_000,
            at(9, 5, 10),
        ),
        UsageEvent::alert(user, dev1, AlertId::new(), at(9, 20, 10)),
        ev(
            user,
            dev1,
            "o1",
            Feature::AnalysisSeconds,
            1_500,
            at(10, 3, 8),
        ),
        ev(
            user,
            dev2,
            "o2",
            Feature::AnalysisSeconds,
            500,
            at(10, 3, 9),
        ),
        ev(user, dev2, "o3", Feature::VlmTokens, 2_000, at(10, 10, 9)),
        ev(
            user,
            dev1,
            "o4",
            Feature::AnalysisSeconds,
            60,
            at(10, 31, 23),
        ),
    ];
    app.state.store.record_usage(&events).await.unwrap();
    let get = |path: String| {
        let (app, token) = (&app, alice.token.clone());
        async move { app.get(&path, &token).await.expect(200) }
    };

    let s = get("/api/v1/billing/summary?billingPeriod=2026-10".into()).await;
    let s = s.data();
    assert_eq!(
        (
            &s["billingPeriod"],
            &s["analysisSeconds"],
            &s["alertCount"],
            &s["vlmTokens"],
            &s["devicesWithUsage"]
        ),
        (
            &json!("2026-10"),
            &json!(2_060),
            &json!(0),
            &json!(2_000),
            &json!(2)
        )
    );
    let by_type = s["usageByType"].as_array().unwrap();
    assert_eq!(by_type.len(), 4);
    assert_eq!(by_type[0]["type"], "analysisSeconds");
    assert_eq!(by_type[0]["limit"], 400 * 3600);

    let r = get("/api/v1/usage/user/summary?period=2026-09".into()).await;
    assert_eq!(
        r.data()["analysis"]["used"],
        1_000,
        "the usage API reads the same ledger"
    );

    let r = get("/api/v1/billing/usage?feature=analysisSeconds&startDate=2026-10-01T00:00:00Z&endDate=2026-10-31T23:59:59Z&limit=2".into()).await;
    let ids: Vec<_> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["o4", "o2"], "newest first");
    assert_eq!(r.body["meta"]["pagination"]["total"], 3);
    assert_eq!(r.data()[0]["billingPeriod"], "2026-10");

    let r = get(
        "/api/v1/billing/dashboard/trend?granularity=day&startDate=2026-10-01&endDate=2026-10-05"
            .into(),
    )
    .await;
    let points = r.data()["points"].as_array().unwrap().clone();
    assert_eq!(points.len(), 5, "empty days present");
    assert_eq!(
        (&points[2]["start"], &points[2]["analysisSeconds"]),
        (&json!("2026-10-03"), &json!(2_000))
    );
    assert_eq!(points[0]["analysisSeconds"], 0);
    // 2026-09-28 is a Monday: ISO weeks.
    let r = get(
        "/api/v1/billing/dashboard/trend?granularity=week&startDate=2026-09-29&endDate=2026-10-11"
            .into(),
    )
    .await;
    let weeks: Vec<_> = r.data()["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_str().unwrap().to_owned(),
                p["analysisSeconds"].as_u64().unwrap(),
                p["vlmTokens"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        weeks,
        [
            ("2026-09-28".into(), 2_000, 0),
            ("2026-10-05".into(), 0, 2_000)
        ]
    );
    let r = get(
        "/api/v1/billing/dashboard/trend?granularity=month&startDate=2026-09-15&endDate=2026-10-31"
            .into(),
    )
    .await;
    let months = r.data()["points"].as_array().unwrap().clone();
    assert_eq!(months.len(), 2);
    assert_eq!(
        (
            &months[0]["start"],
            &months[0]["analysisSeconds"],
            &months[0]["alertCount"]
        ),
        (&json!("2026-09-01"), &json!(1_000), &json!(1))
    );
    assert_eq!(months[1]["analysisSeconds"], 2_060);
    let r = get(format!("/api/v1/billing/dashboard/trend?granularity=month&startDate=2026-10-01&endDate=2026-10-31&deviceId={id1}")).await;
    assert_eq!(r.data()["points"][0]["analysisSeconds"], 1_560);

    let r = get("/api/v1/billing/dashboard/comparison?billingPeriod=2026-10".into()).await;
    let c = r.data();
    assert_eq!(c["method"], "whole month against the whole previous month");
    assert_eq!(
        (&c["previous"]["billingPeriod"], &c["previous"]["to"]),
        (&json!("2026-09"), &json!("2026-09-30"))
    );
    let analysis = c["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["feature"] == "analysisSeconds")
        .unwrap()
        .clone();
    assert_eq!(
        (
            &analysis["current"],
            &analysis["previous"],
            &analysis["difference"],
            &analysis["percent"]
        ),
        (&json!(2_060), &json!(1_000), &json!(1_060), &json!(106.0))
    );
    let vlm = c["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["feature"] == "vlmTokens")
        .unwrap()
        .clone();
    assert_eq!(vlm["percent"], serde_json::Value::Null, "from zero");

    let r = get("/api/v1/billing/dashboard/forecast?billingPeriod=2026-10".into()).await;
    let f = r.data();
    assert_eq!(
        (&f["daysElapsed"], &f["daysInMonth"]),
        (&json!(31), &json!(31)),
        "a past month is complete"
    );
    assert!(f["method"].as_str().unwrap().starts_with("linear"));
    let a = f["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["feature"] == "analysisSeconds")
        .unwrap()
        .clone();
    assert_eq!(
        (&a["used"], &a["projected"], &a["projectedExceeded"]),
        (&json!(2_060), &json!(2_060), &json!(false))
    );

    let r = get("/api/v1/billing/monthly-quota".into()).await;
    assert_eq!(r.data()["analysisSeconds"]["limit"], 400 * 3600);
    assert_eq!(r.data()["devices"], 2);
    let r = get("/api/v1/billing/quota".into()).await;
    assert_eq!(r.data()["limits"]["vlmTokens"], 10_000_000);

    // Bad input is 400 naming the parameter.
    for path in [
        "summary",
        "summary/by-device",
        "dashboard/comparison",
        "dashboard/forecast",
    ] {
        for bad in ["2026-13", "26-10", "oct"] {
            app.get(
                &format!("/api/v1/billing/{path}?billingPeriod={bad}"),
                &alice.token,
            )
            .await
            .expect_invalid("billingPeriod");
        }
    }
    app.get(
        "/api/v1/billing/dashboard/forecast?billingPeriod=2099-01",
        &alice.token,
    )
    .await
    .expect_invalid("billingPeriod");
    app.get(
        "/api/v1/billing/dashboard/trend?startDate=2026-10-05&endDate=2026-10-01",
        &alice.token,
    )
    .await
    .expect_invalid("endDate");
    app.get(
        "/api/v1/billing/dashboard/trend?startDate=yesterday",
        &alice.token,
    )
    .await
    .expect_invalid("startDate");
    app.get(
        "/api/v1/billing/dashboard/trend?granularity=day&startDate=2020-01-01&endDate=2026-10-01",
        &alice.token,
    )
    .await
    .expect_invalid("startDate");
    app.get(
        "/api/v1/billing/dashboard/trend?granularity=year",
        &alice.token,
    )
    .await
    .expect(400);

    // A deleted device's usage stays, marked deleted.
    app.delete(&format!("/api/v1/devices/{id2}"), &alice.token)
        .await
        .expect(200);
    let r = get("/api/v1/billing/summary/by-device?billingPeriod=2026-10".into()).await;
    let rows = r.data().as_array().unwrap().clone();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (
            &rows[0]["deviceId"],
            &rows[0]["analysisSeconds"],
            &rows[0]["deleted"]
        ),
        (&json!(id1), &json!(1_560), &json!(false))
    );
    assert_eq!(
        (
            &rows[1]["deviceId"],
            &rows[1]["deleted"],
            &rows[1]["deviceName"]
        ),
        (&json!(id2), &json!(true), &serde_json::Value::Null)
    );

    // Tenancy and scope.
    let bob = app.signup().await;
    let r = app
        .get("/api/v1/billing/summary?billingPeriod=2026-10", &bob.token)
        .await
        .expect(200);
    assert_eq!(r.data()["analysisSeconds"], 0);
    app.get(
        &format!("/api/v1/billing/dashboard/trend?deviceId={id1}"),
        &bob.token,
    )
    .await
    .expect_error(404, "NOT_FOUND");
    app.get(&format!("/api/v1/billing/usage?deviceId={id1}"), &bob.token)
        .await
        .expect_error(404, "NOT_FOUND");
    let (no_billing, _) = app
        .create_key(
            &alice.token,
            json!({"name": "d", "type": "service", "scopes": ["device:read"]}),
        )
        .await;
    for path in [
        "monthly-quota",
        "quota",
        "summary",
        "summary/by-device",
        "usage",
        "dashboard/trend",
        "dashboard/comparison",
        "dashboard/forecast",
    ] {
        app.get(&format!("/api/v1/billing/{path}"), &no_billing)
            .await
            .expect_error(403, "FORBIDDEN_SCOPE");
    }
}
