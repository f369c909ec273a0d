//! The scheduler role on a real store, with a hand-moved clock: schedules
//! start and stop analysis at slot boundaries in device local time (including
//! half-hour offsets), exactly once across replicas; quotas stop analysis;
//! silent push devices go offline.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use panoptes_infra::store::{SqlStore, StoreOptions};
use panoptes_shared::domain::device::{DeviceStatus, DeviceType};
use panoptes_shared::domain::event::EventKind;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::schedule::{SLOTS_PER_DAY, Schedule, UtcOffset};
use panoptes_shared::domain::task::{StopReason, TaskEnd, TaskStatus, TaskTrigger};
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::lifecycle::{StartRequest, end, start};
use panoptes_shared::ports::{DeviceRepo, EventRepo, SceneRepo, Store, TaskRepo, UsageRepo};
use panoptes_workers::scheduler::{Scheduler, SchedulerSettings};
use uuid::Uuid;

async fn store() -> Arc<SqlStore> {
    let dir = std::env::temp_dir().join(format!("panoptes-sched-{}", Uuid::new_v4()));
    let store = SqlStore::connect(&StoreOptions {
        url: format!("sqlite:{}", dir.join("t.db").display()),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

fn scheduler(store: &Arc<SqlStore>) -> Scheduler {
    Scheduler::new(
        store.clone() as Arc<dyn Store>,
        SchedulerSettings {
            offline_after: Duration::from_secs(30),
            retention: Duration::from_secs(30 * 86_400),
            quota_every: Duration::from_secs(30),
            prune_every: Duration::from_secs(3_600),
        },
    )
}

fn utc(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, m, s).unwrap()
}

/// 09:00-10:00 local every day on a UTC+5:30 device.
async fn scheduled_device(store: &SqlStore) -> (UserId, DeviceId) {
    let (user, device, _) = common::tenant(store).await;
    let mut d = store.get_device(user, device).await.unwrap().unwrap();
    let mut day = [false; SLOTS_PER_DAY];
    day[18] = true;
    day[19] = true;
    d.schedule = Some(Schedule {
        daily: Some(day),
        ..Default::default()
    });
    d.utc_offset = UtcOffset::parse("UTC+5:30").unwrap();
    d.status = DeviceStatus::Offline;
    assert!(store.update_device(user, &d).await.unwrap());
    (user, device)
}

async fn events(store: &SqlStore, user: UserId, device: DeviceId) -> Vec<EventKind> {
    let mut kinds: Vec<_> = store
        .list_events(
            user,
            Some(device),
            PageRequest {
                page: 1,
                limit: 100,
            },
        )
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.kind)
        .collect();
    kinds.reverse();
    kinds
}

#[tokio::test]
async fn a_schedule_starts_and_stops_analysis_at_local_slot_boundaries_once() {
    let store = store().await;
    let (user, device) = scheduled_device(&store).await;
    // Two replicas of the role, sharing the store.
    let (a, b) = (scheduler(&store), scheduler(&store));
    // 09:00 local at UTC+5:30 is 03:30 UTC.
    let before = a.step_at(utc(2, 3, 29, 59)).await.unwrap();
    assert!(before.started.is_empty(), "one second early");
    let (pa, pb) = tokio::join!(a.step_at(utc(2, 3, 30, 0)), b.step_at(utc(2, 3, 30, 0)));
    let started = pa.unwrap().started.len() + pb.unwrap().started.len();
    assert_eq!(started, 1, "exactly one replica starts it");
    let task = store.latest_task(user, device).await.unwrap().unwrap();
    assert_eq!(
        (task.status, task.trigger),
        (TaskStatus::Running, TaskTrigger::Schedule)
    );
    assert_eq!(task.started_at, utc(2, 3, 30, 0));
    // Later passes in the same run change nothing.
    for s in [
        a.step_at(utc(2, 3, 45, 0)).await,
        b.step_at(utc(2, 4, 0, 0)).await,
    ] {
        assert_eq!(s.unwrap().changes(), 0);
    }
    // The run ends at 10:00 local = 04:30 UTC: stopped once, by the schedule.
    assert!(
        a.step_at(utc(2, 4, 29, 59))
            .await
            .unwrap()
            .stopped
            .is_empty()
    );
    let (pa, pb) = tokio::join!(a.step_at(utc(2, 4, 30, 0)), b.step_at(utc(2, 4, 30, 0)));
    assert_eq!(pa.unwrap().stopped.len() + pb.unwrap().stopped.len(), 1);
    let ended = store.get_task(user, task.id).await.unwrap().unwrap();
    assert_eq!(ended.stop_reason, Some(StopReason::Schedule));
    assert_eq!(ended.stopped_at, Some(utc(2, 4, 30, 0)));
    // The next day it starts again; a user who stops it mid-run is not overridden.
    assert_eq!(a.step_at(utc(3, 3, 31, 0)).await.unwrap().started, [device]);
    let t2 = store.latest_task(user, device).await.unwrap().unwrap();
    assert_ne!(t2.id, task.id);
    assert!(
        end(
            store.as_ref(),
            &t2,
            TaskEnd::stopped(StopReason::User, utc(3, 3, 40, 0))
        )
        .await
        .unwrap()
        .is_some()
    );
    assert!(
        a.step_at(utc(3, 3, 50, 0))
            .await
            .unwrap()
            .started
            .is_empty()
    );
    assert_eq!(
        events(&store, user, device).await,
        [
            EventKind::AnalysisStarted,
            EventKind::AnalysisStopped,
            EventKind::AnalysisStarted,
            EventKind::AnalysisStopped
        ]
    );
}

#[tokio::test]
async fn a_task_a_user_started_outlives_the_schedule_and_quota_stops_analysis() {
    let store = store().await;
    let (user, device) = scheduled_device(&store).await;
    let s = scheduler(&store);
    let scene = store
        .list_scenes(user, Some(device), PageRequest::default())
        .await
        .unwrap()
        .items[0]
        .id;
    // Started by hand at 08:00 local, outside the schedule: it runs on.
    let t0 = utc(2, 2, 30, 0);
    let task = start(
        store.as_ref(),
        user,
        device,
        StartRequest {
            scene,
            capabilities: vec![],
            trigger: TaskTrigger::Api,
            require_online: false,
        },
        t0,
    )
    .await
    .unwrap();
    let pass = s.step_at(utc(2, 4, 30, 0)).await.unwrap();
    assert!(pass.stopped.is_empty() && pass.started.is_empty());
    // That pass metered its first two hours into the usage ledger, up to
    // the last minute that ended 30 s before.
    assert_eq!(pass.metered_seconds, 7_140);
    // A cap of three hours: metered time plus the running minute counts.
    let mut d = store.get_device(user, device).await.unwrap().unwrap();
    d.quota.analysis_seconds = Some(10_800);
    store.update_device(user, &d).await.unwrap();
    let pass = scheduler(&store)
        .step_at(t0 + chrono::Duration::seconds(10_799))
        .await
        .unwrap();
    assert!(pass.quota_stopped.is_empty(), "one second left");
    let pass = scheduler(&store)
        .step_at(t0 + chrono::Duration::seconds(10_800))
        .await
        .unwrap();
    assert_eq!(pass.quota_stopped, [device]);
    let ended = store.get_task(user, task.id).await.unwrap().unwrap();
    assert_eq!(ended.stop_reason, Some(StopReason::QuotaExhausted));
    // Stopping metered the rest: the ledger holds exactly the three hours.
    assert_eq!(
        store
            .usage_totals(user, Some(device), "2026-03")
            .await
            .unwrap()
            .get(&panoptes_shared::domain::usage::Feature::AnalysisSeconds),
        Some(&10_800)
    );
    // And the schedule cannot start it again this month.
    let pass = scheduler(&store).step_at(utc(3, 3, 30, 0)).await.unwrap();
    assert!(pass.started.is_empty());
    // quota_warning (80 %) and quota_exceeded (100 %) went out once each,
    // however many passes saw the crossing.
    let events = store
        .list_events(user, Some(device), PageRequest::default())
        .await
        .unwrap()
        .items;
    let notices: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::QuotaWarning | EventKind::QuotaExceeded))
        .collect();
    assert_eq!(notices.len(), 2, "{notices:?}");
    let exceeded = notices
        .iter()
        .find(|e| e.kind == EventKind::QuotaExceeded)
        .unwrap();
    assert_eq!(exceeded.data["feature"], "analysisSeconds");
    assert_eq!(exceeded.data["limit"], 10_800);
    assert_eq!(exceeded.data["threshold"], 100);
    assert_eq!(exceeded.data["period"], "2026-03");
    let warning = notices
        .iter()
        .find(|e| e.kind == EventKind::QuotaWarning)
        .unwrap();
    assert_eq!(warning.data["threshold"], 80);
}

#[tokio::test]
async fn a_silent_push_device_goes_offline_once() {
    let store = store().await;
    let (user, device, _) = common::tenant(store.as_ref()).await;
    let mut d = store.get_device(user, device).await.unwrap().unwrap();
    d.device_type = DeviceType::UsbCamera;
    store.update_device(user, &d).await.unwrap();
    let seen = utc(2, 12, 0, 0);
    store.touch_device(user, device, seen).await.unwrap();
    let s = scheduler(&store);
    assert!(
        s.step_at(seen + chrono::Duration::seconds(29))
            .await
            .unwrap()
            .went_offline
            .is_empty()
    );
    let pass = s
        .step_at(seen + chrono::Duration::seconds(31))
        .await
        .unwrap();
    assert_eq!(pass.went_offline, [device]);
    assert!(
        s.step_at(seen + chrono::Duration::seconds(40))
            .await
            .unwrap()
            .went_offline
            .is_empty()
    );
    assert_eq!(
        store
            .get_device(user, device)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Offline
    );
    assert_eq!(
        events(&store, user, device).await,
        [EventKind::DeviceOffline]
    );
}

#[tokio::test]
async fn the_previous_month_is_closed_once_with_each_users_usage() {
    use panoptes_shared::domain::usage::{Feature, UsageEvent};
    let store = store().await;
    let (user, device, _) = common::tenant(store.as_ref()).await;
    store
        .record_usage(&[UsageEvent {
            id: "fixture:february".into(),
            user_id: user,
            device_id: device,
            feature: Feature::AnalysisSeconds,
            quantity: 120,
            occurred_at: Utc.with_ymd_and_hms(2026, 2, 10, 12, 0, 0).unwrap(),
            source: serde_json::json!({}),
        }])
        .await
        .unwrap();
    let (one, two) = (scheduler(&store), scheduler(&store));
    // Within two minutes of midnight the last minutes may still be metered.
    let pass = one.step_at(utc(1, 0, 1, 0)).await.unwrap();
    assert_eq!(pass.cycles_closed, 0);
    let pass = one.step_at(utc(1, 0, 2, 30)).await.unwrap();
    assert_eq!(pass.cycles_closed, 1);
    let pass = one.step_at(utc(1, 0, 3, 30)).await.unwrap();
    assert_eq!(pass.cycles_closed, 0, "once per process");
    let pass = two.step_at(utc(1, 0, 4, 0)).await.unwrap();
    assert_eq!(pass.cycles_closed, 0, "once across replicas");
    let events = store
        .list_events(user, None, PageRequest::default())
        .await
        .unwrap()
        .items;
    let closed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::BillingCycleCompleted)
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].data["billingPeriod"], "2026-02");
    assert_eq!(closed[0].data["usage"]["analysisSeconds"], 120);
    assert_eq!(closed[0].data["usage"]["vlmTokens"], 0);
    assert_eq!(closed[0].data["periodEnd"], "2026-03-01T00:00:00Z");
}
