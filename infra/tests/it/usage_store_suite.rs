//! The usage ledger (metering), run against SQLite and PostgreSQL: events
//! count once by id, aggregates per device, user and period, analysis time
//! metered by the minute while a task runs and split at a month boundary,
//! and usage that outlives its device.

use chrono::{DateTime, TimeZone, Utc};
use panoptes_infra::store::SqlStore;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::quota::{ChangeKind, QuotaChange};
use panoptes_shared::domain::task::{AnalysisTask, StopReason, TaskEnd, TaskTrigger};
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::error::Error;
use panoptes_shared::ids::{AlertId, DeviceId};
use panoptes_shared::metering::{admit, analysis_seconds_used, meter, meter_task};
use panoptes_shared::ports::{DeviceRepo, EventRepo, SceneRepo, TaskRepo, UsageRepo};

use crate::store_suite::{device, scene, user};

fn at(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    let (month, day) = if d > 30 { (12, d - 30) } else { (11, d) };
    Utc.with_ymd_and_hms(2026, month, day, h, m, s).unwrap()
}

pub async fn events_count_once_and_add_up_per_device_user_and_period(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let (d1, d2) = (DeviceId::new(), DeviceId::new());
    let events = [
        UsageEvent::vlm(a.id, d1, "r1", 100, at(30, 12, 0, 0)),
        UsageEvent::vlm(a.id, d1, "r2", 50, at(31, 1, 0, 0)),
        UsageEvent::vlm(a.id, d2, "r3", 7, at(31, 2, 0, 0)),
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

/// Attributes and VLM tokens are admitted while the device's allowance
/// lasts, refused beyond it (and on a plan without them), metered once per
/// batch or request however often it is redelivered, with each notice once.
pub async fn attributes_and_vlm_are_admitted_within_the_allowance_and_metered_once(
    store: SqlStore,
) {
    let a = user(&store).await;
    let mut d = device(a.id, "premium");
    d.plan = Plan::Level02;
    store.insert_device(&d).await.unwrap();
    let t = at(31, 9, 0, 0);
    let limit = Plan::Level02.limits().attribute_count;
    assert_eq!(limit, 5_000);
    admit(&store, &d, Feature::AttributeCount, t).await.unwrap();
    // 3,999 attributes (just under 80 %), then a batch that crosses it,
    // delivered three times (a retry, a redelivery, a second replica).
    let first = UsageEvent::attributes(a.id, d.id, "frame-1", 3_999, t);
    assert!(meter(&store, &d, &first).await.unwrap());
    let crossing = UsageEvent::attributes(a.id, d.id, "frame-2", 2, t);
    let counted: Vec<bool> =
        futures::future::join_all((0..3).map(|_| meter(&store, &d, &crossing)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    assert_eq!(counted.iter().filter(|n| **n).count(), 1, "{counted:?}");
    let used = |f| {
        let store = store.clone();
        async move {
            store
                .usage_totals(a.id, Some(d.id), "2026-12")
                .await
                .unwrap()
                .get(&f)
                .copied()
                .unwrap_or(0)
        }
    };
    assert_eq!(used(Feature::AttributeCount).await, 4_001);
    admit(&store, &d, Feature::AttributeCount, t).await.unwrap();
    let last = UsageEvent::attributes(a.id, d.id, "frame-3", 999, t);
    assert!(meter(&store, &d, &last).await.unwrap());
    let err = admit(&store, &d, Feature::AttributeCount, t)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QuotaExceeded(_)), "{err:?}");
    assert!(err.to_string().contains("5000 of 5000"), "{err}");
    // Notices: 80 % and 100 %, once each, for attributes only.
    let notices = |kind| {
        let store = store.clone();
        async move {
            store
                .list_events(
                    a.id,
                    Some(d.id),
                    PageRequest {
                        page: 1,
                        limit: 100,
                    },
                )
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|e| e.kind == kind)
                .collect::<Vec<_>>()
        }
    };
    let warnings = notices(EventKind::QuotaWarning).await;
    let exceeded = notices(EventKind::QuotaExceeded).await;
    assert_eq!((warnings.len(), exceeded.len()), (1, 1));
    assert_eq!(warnings[0].data["feature"], "attributeCount");
    assert_eq!(exceeded[0].data["used"], 5_000);
    // VLM is separate: still admitted; a request's tokens count once.
    admit(&store, &d, Feature::VlmTokens, t).await.unwrap();
    let request = UsageEvent::vlm(a.id, d.id, "req-1", 1_234, t);
    assert!(meter(&store, &d, &request).await.unwrap());
    assert!(!meter(&store, &d, &request).await.unwrap());
    assert_eq!(used(Feature::VlmTokens).await, 1_234);
    // An admin grant for the month lets attributes through again.
    let grant = QuotaChange {
        id: uuid::Uuid::new_v4(),
        user_id: a.id,
        device_id: d.id,
        period: "2026-12".into(),
        kind: ChangeKind::Grant,
        feature: Some(Feature::AttributeCount),
        amount: Some(100),
        flag: None,
        reason: "pilot".into(),
        actor: "admin:test".into(),
        created_at: t,
    };
    assert!(store.record_quota_changes(&[grant], None).await.unwrap());
    admit(&store, &d, Feature::AttributeCount, t).await.unwrap();
    // Next month starts from zero.
    admit(
        &store,
        &d,
        Feature::AttributeCount,
        at(31, 0, 0, 0) + chrono::Duration::days(31),
    )
    .await
    .unwrap();
    // A level_01 device has no attributes nor VLM: PLAN_REQUIRED, not a quota.
    let mut basic = device(a.id, "basic");
    basic.plan = Plan::Level01;
    store.insert_device(&basic).await.unwrap();
    for f in [Feature::AttributeCount, Feature::VlmTokens] {
        let err = admit(&store, &basic, f, t).await.unwrap_err();
        assert!(matches!(err, Error::PlanRequired(_)), "{err:?}");
    }
    // Unlimited admits whatever was used.
    basic.quota.unlimited = true;
    admit(&store, &basic, Feature::VlmTokens, t).await.unwrap();
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
    attributes_and_vlm_are_admitted_within_the_allowance_and_metered_once,
);
