//! The analysis half of the repository suite (tasks, stored analytics,
//! platform events, device status transitions), run against SQLite and
//! PostgreSQL.

use chrono::{DateTime, Duration, Utc};
use panoptes_infra::store::SqlStore;
use panoptes_shared::Error;
use panoptes_shared::domain::device::{DeviceStatus, DeviceType};
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::metrics_history::{
    CurrentMetrics, RollingRow, RollingWindow, SceneSnapshot, TimeRange,
};
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::queue_metrics::Window;
use panoptes_shared::domain::task::{
    AnalysisTask, Capability, StopReason, TaskEnd, TaskStatus, TaskTrigger,
};
use panoptes_shared::ids::{SceneId, TaskId, UserId};
use panoptes_shared::ports::{DeviceRepo, EventRepo, MetricsHistoryRepo, SceneRepo, TaskRepo};
use panoptes_shared::time::now;
use uuid::Uuid;

use crate::store_suite::{device, scene, user};

/// An event of `user` (the store records it only with the write it goes with).
fn ev(user: UserId, kind: EventKind) -> PlatformEvent {
    PlatformEvent::new(user, kind, None, None, serde_json::json!({}), now())
}

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest { page, limit }
}

pub async fn one_task_runs_per_device_and_ends_once(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let d = device(a.id, "cam");
    store.insert_device(&d).await.unwrap();
    let s = scene(a.id, d.id, "line");
    store.insert_scene(&s).await.unwrap();
    let t0 = now() - Duration::hours(2);
    let first = AnalysisTask::start(
        a.id,
        d.id,
        s.id,
        TaskTrigger::Api,
        vec![Capability::Vlm],
        t0,
    );
    store
        .insert_task(&first, &ev(first.user_id, EventKind::AnalysisStarted))
        .await
        .unwrap();
    assert_eq!(
        store.get_task(a.id, first.id).await.unwrap(),
        Some(first.clone())
    );
    assert!(
        store.get_task(b.id, first.id).await.unwrap().is_none(),
        "other tenant"
    );
    // A second running task on the same device is refused, whoever starts it.
    let second = AnalysisTask::start(a.id, d.id, s.id, TaskTrigger::Schedule, vec![], t0);
    assert!(matches!(
        store
            .insert_task(&second, &ev(second.user_id, EventKind::AnalysisStarted))
            .await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        store
            .running_tasks()
            .await
            .unwrap()
            .iter()
            .filter(|t| t.device_id == d.id)
            .count(),
        1
    );
    // Ending succeeds once; the other tenant cannot end it.
    let end = TaskEnd::stopped(StopReason::User, t0 + Duration::minutes(30));
    assert!(
        !store
            .end_task(b.id, first.id, &end, &ev(b.id, EventKind::AnalysisStopped))
            .await
            .unwrap()
    );
    assert!(
        store
            .end_task(a.id, first.id, &end, &ev(a.id, EventKind::AnalysisStopped))
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_task(a.id, first.id, &end, &ev(a.id, EventKind::AnalysisStopped))
            .await
            .unwrap(),
        "already ended"
    );
    let ended = store.get_task(a.id, first.id).await.unwrap().unwrap();
    assert_eq!(ended.status, TaskStatus::Stopped);
    assert_eq!(ended.stop_reason, Some(StopReason::User));
    assert_eq!(ended.stopped_at, Some(end.at));
    assert!(
        !store
            .running_tasks()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == first.id)
    );
    // Now a new one may start; it is the latest, and a failure keeps its error.
    let third = AnalysisTask::start(
        a.id,
        d.id,
        s.id,
        TaskTrigger::Schedule,
        vec![],
        t0 + Duration::hours(1),
    );
    store
        .insert_task(&third, &ev(third.user_id, EventKind::AnalysisStarted))
        .await
        .unwrap();
    assert_eq!(
        store.latest_task(a.id, d.id).await.unwrap().unwrap().id,
        third.id
    );
    assert!(store.latest_task(b.id, d.id).await.unwrap().is_none());
    let fail = TaskEnd::failed(
        "the camera refused the credentials",
        t0 + Duration::minutes(90),
    );
    assert!(
        store
            .end_task(a.id, third.id, &fail, &ev(a.id, EventKind::AnalysisStopped))
            .await
            .unwrap()
    );
    let failed = store.get_task(a.id, third.id).await.unwrap().unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("the camera refused the credentials")
    );
    // Events went in with the writes that happened, and only those: two
    // starts and two ends (not the refused start nor the repeated ends).
    let kinds: Vec<_> = store
        .list_events(a.id, None, page(1, 100))
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    // Deleting the device deletes its tasks.
    assert!(store.delete_device(a.id, d.id).await.unwrap());
    assert!(store.get_task(a.id, first.id).await.unwrap().is_none());
}

fn at(base: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    base + Duration::seconds(seconds)
}

fn snapshot(
    user: UserId,
    scene: SceneId,
    d: panoptes_shared::ids::DeviceId,
    end: DateTime<Utc>,
    in_queue: u32,
) -> SceneSnapshot {
    SceneSnapshot {
        id: Uuid::now_v7(),
        user_id: user,
        scene_id: scene,
        device_id: d,
        task_id: TaskId::new(),
        window_start: end - Duration::seconds(10),
        window_end: end,
        current: CurrentMetrics {
            in_queue,
            in_service: 1,
            avg_in_queue: f64::from(in_queue) - 0.5,
            max_in_queue: in_queue + 1,
            avg_in_service: 0.75,
            max_in_service: 2,
        },
        compute_node_id: "node-a".into(),
        created_at: end,
    }
}

pub async fn analytics_history_filters_pages_and_prunes(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let d = device(a.id, "cam");
    store.insert_device(&d).await.unwrap();
    let (s, other) = (SceneId::new(), SceneId::new());
    let base = now() - Duration::days(1);
    // 25 snapshots 10 s apart, and one of another scene.
    for i in 0..25 {
        store
            .insert_snapshot(&snapshot(a.id, s, d.id, at(base, 10 * i), i as u32))
            .await
            .unwrap();
    }
    store
        .insert_snapshot(&snapshot(a.id, other, d.id, at(base, 5), 99))
        .await
        .unwrap();
    let all = store
        .list_snapshots(a.id, s, TimeRange::default(), page(1, 10))
        .await
        .unwrap();
    assert_eq!((all.total, all.items.len(), all.total_pages()), (25, 10, 3));
    assert_eq!(all.items[0].current.in_queue, 24, "newest first");
    assert_eq!(all.items[0], snapshot_like(&all.items[0]));
    let last = store
        .list_snapshots(a.id, s, TimeRange::default(), page(3, 10))
        .await
        .unwrap();
    assert_eq!(
        last.items
            .iter()
            .map(|x| x.current.in_queue)
            .collect::<Vec<_>>(),
        [4, 3, 2, 1, 0]
    );
    // startDate / endDate are inclusive bounds on windowEnd.
    let range = TimeRange::new(Some(at(base, 50)), Some(at(base, 100))).unwrap();
    let some = store
        .list_snapshots(a.id, s, range, page(1, 100))
        .await
        .unwrap();
    assert_eq!(
        some.items
            .iter()
            .map(|x| x.current.in_queue)
            .collect::<Vec<_>>(),
        [10, 9, 8, 7, 6, 5]
    );
    assert_eq!(some.total, 6);
    let snap = store.latest_snapshot(a.id, s).await.unwrap().unwrap();
    assert_eq!(snap.current.in_queue, 24);
    assert_eq!(snap.current.avg_in_queue, 23.5);
    assert_eq!(snap.compute_node_id, "node-a");
    // Another tenant sees nothing, even with the scene id.
    assert_eq!(
        store
            .list_snapshots(b.id, s, TimeRange::default(), page(1, 10))
            .await
            .unwrap()
            .total,
        0
    );
    assert!(store.latest_snapshot(b.id, s).await.unwrap().is_none());

    // Rolling rows: three windows per instant.
    let metrics = {
        let mut w = Window::total();
        w.arrival(1_000);
        w.departure(1_000, 31_000);
        w.metrics(60_000)
    };
    for i in 0..4 {
        let rows: Vec<RollingRow> = RollingWindow::ALL
            .iter()
            .map(|w| RollingRow {
                id: Uuid::now_v7(),
                user_id: a.id,
                scene_id: s,
                device_id: d.id,
                task_id: TaskId::new(),
                window: *w,
                window_start: base,
                window_end: at(base, 10 * i),
                metrics: metrics.clone(),
                compute_node_id: "node-b".into(),
                created_at: now(),
            })
            .collect();
        store.insert_rolling(&rows).await.unwrap();
    }
    let five = store
        .list_rolling(
            a.id,
            s,
            Some(RollingWindow::FiveMinutes),
            TimeRange::default(),
            page(1, 2),
        )
        .await
        .unwrap();
    assert_eq!((five.total, five.items.len()), (4, 2));
    assert!(
        five.items
            .iter()
            .all(|r| r.window == RollingWindow::FiveMinutes)
    );
    assert_eq!(five.items[0].window_end, at(base, 30));
    assert_eq!(five.items[0].metrics, metrics, "metrics round-trip");
    let every = store
        .list_rolling(
            a.id,
            s,
            None,
            TimeRange::new(Some(at(base, 20)), None).unwrap(),
            page(1, 100),
        )
        .await
        .unwrap();
    assert_eq!(every.total, 6, "two instants x three windows");
    let latest = store.latest_rolling(a.id, s).await.unwrap();
    assert_eq!(latest.len(), 3);
    assert!(latest.iter().all(|r| r.window_end == at(base, 30)));
    assert!(store.latest_rolling(b.id, s).await.unwrap().is_empty());

    // Retention: everything of `base` + less than 100 s goes.
    let removed = store.prune_analytics(at(base, 100)).await.unwrap();
    assert_eq!(removed, 10 + 1 + 12, "10 + 1 snapshots, 4 x 3 rolling rows");
    assert_eq!(
        store
            .list_snapshots(a.id, s, TimeRange::default(), page(1, 100))
            .await
            .unwrap()
            .total,
        15
    );
}

/// The same snapshot as stored (a helper that makes the equality explicit).
fn snapshot_like(s: &SceneSnapshot) -> SceneSnapshot {
    s.clone()
}

pub async fn status_transitions_and_events_are_recorded_once(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let mut d = device(a.id, "usb");
    d.device_type = DeviceType::UsbCamera;
    d.schedule = None;
    store.insert_device(&d).await.unwrap();
    // Only the call that changes the status reports it.
    assert!(
        store
            .transition_device_status(
                a.id,
                d.id,
                DeviceStatus::Online,
                &ev(a.id, EventKind::DeviceOnline)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition_device_status(
                a.id,
                d.id,
                DeviceStatus::Online,
                &ev(a.id, EventKind::DeviceOnline)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition_device_status(
                b.id,
                d.id,
                DeviceStatus::Offline,
                &ev(b.id, EventKind::DeviceOffline)
            )
            .await
            .unwrap()
    );
    // An edit does not undo a transition made since it read the device.
    let mut edited = d.clone();
    edited.name = "usb 2".into();
    assert_eq!(
        edited.status,
        DeviceStatus::Offline,
        "read before it went online"
    );
    assert!(store.update_device(a.id, &edited).await.unwrap());
    let stored = store.get_device(a.id, d.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.status),
        ("usb 2", DeviceStatus::Online)
    );
    // Contact: lastSeenAt only moves forward; silent push devices are found.
    let t = now();
    assert!(store.touch_device(a.id, d.id, t).await.unwrap());
    assert!(
        !store
            .touch_device(a.id, d.id, t - Duration::seconds(5))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_device(a.id, d.id)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        Some(t)
    );
    let silent = |before| {
        let store = store.clone();
        async move {
            store
                .silent_push_devices(before)
                .await
                .unwrap()
                .iter()
                .any(|x| x.id == d.id)
        }
    };
    assert!(!silent(t).await, "heard from at t");
    assert!(silent(t + Duration::seconds(1)).await);
    // Scheduled devices are listed across tenants.
    let scheduled = device(b.id, "scheduled");
    store.insert_device(&scheduled).await.unwrap();
    let listed = store.scheduled_devices().await.unwrap();
    assert!(listed.iter().any(|x| x.id == scheduled.id));
    assert!(!listed.iter().any(|x| x.id == d.id), "no schedule");
    // Idle pulled cameras (health checks): not push devices, not while a task runs.
    let idle = |store: SqlStore| async move { store.idle_pull_devices(100).await.unwrap() };
    let ids: Vec<_> = idle(store.clone()).await.iter().map(|x| x.id).collect();
    assert!(ids.contains(&scheduled.id) && !ids.contains(&d.id));
    let s = scene(b.id, scheduled.id, "line");
    store.insert_scene(&s).await.unwrap();
    let task = AnalysisTask::start(b.id, scheduled.id, s.id, TaskTrigger::Api, vec![], t);
    store
        .insert_task(&task, &ev(task.user_id, EventKind::AnalysisStarted))
        .await
        .unwrap();
    let ids: Vec<_> = idle(store.clone()).await.iter().map(|x| x.id).collect();
    assert!(
        !ids.contains(&scheduled.id),
        "a running task streams it instead"
    );

    // Events: newest first, by device, per tenant.
    for (i, kind) in [
        EventKind::DeviceOnline,
        EventKind::AnalysisStarted,
        EventKind::DeviceOffline,
    ]
    .into_iter()
    .enumerate()
    {
        let e = PlatformEvent::new(
            a.id,
            kind,
            Some(d.id),
            None,
            serde_json::json!({ "n": i }),
            t + Duration::seconds(i as i64),
        );
        store.record_event(&e).await.unwrap();
    }
    store
        .record_event(&PlatformEvent::new(
            a.id,
            EventKind::DeviceOnline,
            Some(scheduled.id),
            None,
            serde_json::json!({}),
            t,
        ))
        .await
        .unwrap();
    let mine = store
        .list_events(a.id, Some(d.id), page(1, 10))
        .await
        .unwrap();
    assert_eq!(
        mine.items.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [
            EventKind::DeviceOffline,
            EventKind::AnalysisStarted,
            EventKind::DeviceOnline
        ]
    );
    assert_eq!(mine.items[0].data["n"], 2);
    assert_eq!(
        store
            .list_events(a.id, None, page(1, 10))
            .await
            .unwrap()
            .total,
        5,
        "the four above and the one transition that happened"
    );
    assert_eq!(
        store
            .list_events(b.id, None, page(1, 10))
            .await
            .unwrap()
            .total,
        1,
        "the task b started; not the refused transition"
    );
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::$test(crate::backends::sqlite().await).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $test() { super::$test(crate::backends::postgres().await).await })*
        }
    };
}

for_each_backend!(
    one_task_runs_per_device_and_ends_once,
    analytics_history_filters_pages_and_prunes,
    status_transitions_and_events_are_recorded_once,
);
