//! The data query API (`/api/v1/analytics/...`) over real HTTP and
//! PostgreSQL: filters, pagination, the latest rows, tenancy and validation.

use chrono::{Duration, TimeZone, Utc};
use panoptes_shared::domain::metrics_history::{
    CurrentMetrics, RollingRow, RollingWindow, SceneSnapshot,
};
use panoptes_shared::domain::queue_metrics::{Occupancy, Window};
use panoptes_shared::ids::{DeviceId, SceneId, TaskId, UserId};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn snapshots_and_rolling_rows_are_queried_by_scene_time_and_page() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let t = &user.token;
    let device = app.create_device(t, json!({})).await;
    let scene = app.create_scene(t, device["id"].as_str().unwrap()).await;
    let s = scene["id"].as_str().unwrap().to_owned();
    let (uid, sid, did) = (
        UserId(user.id.parse().unwrap()),
        SceneId(s.parse().unwrap()),
        DeviceId(device["id"].as_str().unwrap().parse().unwrap()),
    );
    let task = TaskId::new();
    let base = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    let store = &app.state.store;
    // 45 snapshots 10 s apart (10:00:10 .. 10:07:30), and rolling rows at each.
    let metrics = {
        let mut w = Window::total();
        w.observe(Occupancy {
            at_ms: 0,
            in_queue: 1,
            in_service: 0,
        });
        w.arrival(0);
        w.departure(0, 42_000);
        w.metrics(60_000)
    };
    for i in 1..=45 {
        let end = base + Duration::seconds(10 * i);
        store
            .insert_snapshot(&SceneSnapshot {
                id: uuid::Uuid::now_v7(),
                user_id: uid,
                scene_id: sid,
                device_id: did,
                task_id: task,
                window_start: end - Duration::seconds(10),
                window_end: end,
                current: CurrentMetrics {
                    in_queue: i as u32,
                    in_service: 1,
                    avg_in_queue: i as f64 - 0.5,
                    max_in_queue: i as u32,
                    avg_in_service: 1.0,
                    max_in_service: 1,
                },
                compute_node_id: "node-7".into(),
                created_at: end,
            })
            .await
            .unwrap();
        let rows: Vec<RollingRow> = RollingWindow::ALL
            .iter()
            .map(|w| RollingRow {
                id: uuid::Uuid::now_v7(),
                user_id: uid,
                scene_id: sid,
                device_id: did,
                task_id: task,
                window: *w,
                window_start: base,
                window_end: end,
                metrics: metrics.clone(),
                compute_node_id: "node-7".into(),
                created_at: end,
            })
            .collect();
        store.insert_rolling(&rows).await.unwrap();
    }
    let api = "/api/v1/analytics";
    // Newest first, paginated as documented.
    let r = app
        .get(&format!("{api}/snapshots?sceneId={s}&page=2&limit=20"), t)
        .await
        .expect(200);
    assert_eq!(
        r.body["meta"]["pagination"],
        json!({"page": 2, "limit": 20, "total": 45, "totalPages": 3})
    );
    let items = r.data().as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(items[0]["currentMetrics"]["inQueue"], 25);
    let first = &items[0];
    assert_eq!(first["sceneType"], "queue_analysis");
    assert_eq!(first["computeNodeId"], "node-7");
    assert_eq!(first["durationSeconds"], 10.0);
    assert_eq!(first["deviceId"], device["id"]);
    // A UTC range, inclusive on windowEnd: 10:01:00 .. 10:02:00 is 7 rows.
    let r = app
        .get(
            &format!("{api}/snapshots?sceneId={s}&startDate=2026-03-01T10:01:00Z&endDate=2026-03-01T10:02:00Z"),
            t,
        )
        .await
        .expect(200);
    assert_eq!(r.body["meta"]["pagination"]["total"], 7);
    assert_eq!(r.data()[0]["windowEnd"], "2026-03-01T10:02:00+00:00");
    // Latest, and the rolling history of one window.
    let r = app
        .get(&format!("{api}/snapshots/latest?sceneId={s}"), t)
        .await
        .expect(200);
    assert_eq!(r.data()["snapshot"]["currentMetrics"]["inQueue"], 45);
    let r = app
        .get(
            &format!("{api}/rolling?sceneId={s}&window=rolling30Min&limit=5"),
            t,
        )
        .await
        .expect(200);
    assert_eq!(r.body["meta"]["pagination"]["total"], 45);
    assert!(
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["window"] == "rolling30Min")
    );
    assert_eq!(r.data()[0]["metrics"]["medianWaitSeconds"], 42.0);
    let r = app
        .get(&format!("{api}/rolling?sceneId={s}"), t)
        .await
        .expect(200);
    assert_eq!(r.body["meta"]["pagination"]["total"], 135, "every window");
    let r = app
        .get(&format!("{api}/rolling/latest?sceneId={s}"), t)
        .await
        .expect(200);
    for w in ["rolling5Min", "rolling30Min", "total"] {
        assert_eq!(r.data()[w]["windowEnd"], "2026-03-01T10:07:30+00:00", "{w}");
    }
    let r = app
        .get(&format!("{api}/scenes/{s}/latest"), t)
        .await
        .expect(200);
    assert_eq!(r.data()["analyzing"], false);
    assert_eq!(r.data()["snapshot"]["currentMetrics"]["inQueue"], 45);
    assert_eq!(r.data()["rolling"]["total"]["metrics"]["waitSamples"], 1);

    // Validation: sceneId required, ranges the right way round, known windows.
    app.get(&format!("{api}/snapshots"), t)
        .await
        .expect_invalid("sceneId");
    app.get(
        &format!("{api}/snapshots?sceneId={s}&startDate=2026-03-02T00:00:00Z&endDate=2026-03-01T00:00:00Z"),
        t,
    )
    .await
    .expect_invalid("endDate");
    app.get(&format!("{api}/rolling?sceneId={s}&window=hourly"), t)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    app.get(&format!("{api}/snapshots?sceneId={s}&limit=101"), t)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    // Another tenant: the scene does not exist for them.
    let stranger = app.signup().await;
    app.get(&format!("{api}/snapshots?sceneId={s}"), &stranger.token)
        .await
        .expect_error(404, "NOT_FOUND");
    app.get(&format!("{api}/scenes/{s}/latest"), &stranger.token)
        .await
        .expect_error(404, "NOT_FOUND");
    // A scene without rows answers with empty data, not an error.
    let other = app.create_scene(t, device["id"].as_str().unwrap()).await;
    let o = other["id"].as_str().unwrap();
    let r = app
        .get(&format!("{api}/snapshots/latest?sceneId={o}"), t)
        .await
        .expect(200);
    assert!(r.data()["snapshot"].is_null());
    let r = app
        .get(&format!("{api}/snapshots?sceneId={o}"), t)
        .await
        .expect(200);
    assert_eq!(r.body["meta"]["pagination"]["total"], 0);
}
