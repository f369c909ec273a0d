//! The usage ledger (metering), run against SQLite and PostgreSQL: events
//! count once by id, aggregates per device, user and period, analysis time
//! metered by the minute while a task runs and split at a month boundary,
//! and usage that outlives its device.

use chrono::{DateTime, TimeZone, Utc};
use panoptes_infra::store::SqlStore;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::task::{AnalysisTask, StopReason, TaskEnd, TaskTrigger};
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::ids::{AlertId, DeviceId, UserId};
use panoptes_shared::metering::{analysis_seconds_used, meter_task};
use panoptes_shared::ports::{DeviceRepo, SceneRepo, TaskRepo, UsageRepo};

use crate::store_suite::{device, scene, user};

fn at(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    let (month, day) = if d > 30 { (12, d - 30) } else { (11, d) };
    Utc.with_ymd_and_hms(2026, month, day, h, m, s).unwrap()
}

fn vlm(user: UserId, device: DeviceId, id: &str, tokens: u64, t: DateTime<Utc>) -> UsageEvent {
    UsageEvent {
        id: format!("vlm:{id}"),
        user_id: user,
        device_id: device,
        feature: Feature::VlmTokens,
        quantity: tokens,
        occurred_at: t,
        source: serde_json::json!({ "requestId": id }),
    }
}

pub async fn events_count_once_and_add_up_per_device_user_and_period(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let (d1, d2) = (DeviceId::new(), DeviceId::new());
    let events = [
        vlm(a.id, d1, "r1", 100, at(30, 12, 0, 0)),
        vlm(a.id, d1, "r2", 50, at(31, 1, 0, 0)),
        vlm(a.id, d2, "r3", 7, at(31, 2, 0, 0)),
        UsageEvent::alert(a.id, d1, AlertId::new(), at(31, 3, 0, 0)),
    ];
    assert_eq!(store.record_usage(&events).await.unwrap(), 4);
    // A retry, a redelivery, a second replica: the same ids add nothing.
    assert_eq!(store.record_usage(&events).await.unwrap(), 0);
    assert_eq!(store.record_usage(&events[1..2]).await.unwrap(), 0);
    let totals = |user, device, period: &'static str| {
        let store = store.clone();
        async move { store.usage_totals(user, device, period).await.unwrap() }
    };
    let nov = totals(a.id, Some(d1), "2026-11").await;
    assert_eq!(nov.get(&Feature::VlmTokens), Some(&100));
    let dec = totals(a.id, Some(d1), "2026-12").await;
    assert_eq!(dec.get(&Feature::VlmTokens), Some(&50));
    assert_eq!(dec.get(&Feature::AlertCount), Some(&1));
    assert_eq!(dec.get(&Feature::AnalysisSeconds), None);
    let user_dec = totals(a.id, None, "2026-12").await;
    assert_eq!(user_dec.get(&Feature::VlmTokens), Some(&57));
    assert!(
        totals(b.id, None, "2026-12").await.is_empty(),
        "other tenant"
    );
    assert!(
        totals(b.id, Some(d1), "2026-12").await.is_empty(),
        "other tenant"
    );
}

pub async fn analysis_time_is_metered_by_the_minute_split_at_the_month_and_outlives_the_device(
    store: SqlStore,
) {
    let a = user(&store).await;
    let d = device(a.id, "cam");
    store.insert_device(&d).await.unwrap();
    let s = scene(a.id, d.id, "line");
    store.insert_scene(&s).await.unwrap();
    let started = at(30, 23, 58, 30);
    let task = AnalysisTask::start(a.id, d.id, s.id, TaskTrigger::Api, Vec::new(), started);
    let ev = |kind, t| {
        PlatformEvent::new(
            a.id,
            kind,
            Some(d.id),
            Some(task.id),
            serde_json::json!({}),
            t,
        )
    };
    store
        .insert_task(&task, &ev(EventKind::AnalysisStarted, started))
        .await
        .unwrap();
    // Running at 00:01:40 on the 1st: whole minutes that ended 30 s ago
    // are metered; two replicas at once write them once.
    let now = at(31, 0, 1, 40);
    let due = store.tasks_to_meter().await.unwrap();
    let (t, until) = due.iter().find(|(t, _)| t.id == task.id).unwrap().clone();
    assert_eq!(until, None);
    let (x, y) = tokio::join!(
        meter_task(&store, &t, until, now),
        meter_task(&store, &t, until, now)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(
        (x + y, x.min(y)),
        (150, 0),
        "one claimed the minutes, the other nothing"
    );
    let of = |period: &'static str| {
        let store = store.clone();
        async move {
            store
                .usage_totals(a.id, Some(d.id), period)
                .await
                .unwrap()
                .get(&Feature::AnalysisSeconds)
                .copied()
                .unwrap_or(0)
        }
    };
    assert_eq!((of("2026-11").await, of("2026-12").await), (90, 60));
    assert_eq!(
        store.task_metered_until(a.id, task.id).await.unwrap(),
        Some(at(31, 0, 1, 0))
    );
    // Used this month = the ledger plus the running time not metered yet.
    assert_eq!(
        analysis_seconds_used(&store, a.id, d.id, now)
            .await
            .unwrap(),
        100
    );
    // Stopped at 00:01:20. A replica still seeing it run (a stale view, or a
    // clock ahead) cannot meter past the stop.
    let stop = at(31, 0, 1, 20);
    assert!(
        store
            .end_task(
                a.id,
                task.id,
                &TaskEnd::stopped(StopReason::User, stop),
                &ev(EventKind::AnalysisStopped, stop)
            )
            .await
            .unwrap()
    );
    let metered = store.task_metered_until(a.id, task.id).await.unwrap();
    assert_eq!(
        meter_task(&store, &t, metered, at(31, 0, 3, 0))
            .await
            .unwrap(),
        0,
        "stale running view"
    );
    let ended = store.get_task(a.id, task.id).await.unwrap().unwrap();
    assert!(
        store
            .tasks_to_meter()
            .await
            .unwrap()
            .iter()
            .any(|(t, _)| t.id == task.id),
        "ended, not metered to its end"
    );
    assert_eq!(meter_task(&store, &ended, metered, stop).await.unwrap(), 20);
    assert!(
        !store
            .tasks_to_meter()
            .await
            .unwrap()
            .iter()
            .any(|(t, _)| t.id == task.id),
        "fully metered"
    );
    let metered = store.task_metered_until(a.id, task.id).await.unwrap();
    assert_eq!(meter_task(&store, &ended, metered, stop).await.unwrap(), 0);
    assert_eq!((of("2026-11").await, of("2026-12").await), (90, 80));
    assert_eq!(90 + 80, ended.seconds_within(started, stop));
    let (nov, dec) = (90, 80);
    // Deleting the device (and its tasks) leaves its usage history.
    assert!(store.delete_device(a.id, d.id).await.unwrap());
    assert_eq!((of("2026-11").await, of("2026-12").await), (nov, dec));
    assert_eq!(
        store
            .usage_totals(a.id, None, "2026-12")
            .await
            .unwrap()
            .get(&Feature::AnalysisSeconds),
        Some(&dec)
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
    events_count_once_and_add_up_per_device_user_and_period,
    analysis_time_is_metered_by_the_minute_split_at_the_month_and_outlives_the_device,
);
