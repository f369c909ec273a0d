//! The alerts and webhooks half of the repository suite (rules, firings,
//! alert counts, the outbox, deliveries and attempts), run against SQLite
//! and PostgreSQL.

use chrono::{DateTime, Duration, Utc};
use panoptes_infra::store::SqlStore;
use panoptes_shared::domain::alert::{
    Alert, AlertRule, AlertStatus, MetricPath, Operator, Severity, StatusChange, month_of,
};
use panoptes_shared::domain::device::Sealed;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::metrics_history::TimeRange;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::webhook::{Attempt, Delivery, DeliveryStatus, Webhook};
use panoptes_shared::ids::{AlertId, AlertRuleId, DeviceId, SceneId, UserId, WebhookId};
use panoptes_shared::ports::{
    AlertFilter, AlertRepo, DeliveryFilter, DeviceRepo, EventRepo, RuleFilter, SceneRepo,
    WebhookRepo,
};
use panoptes_shared::time::now;

use crate::store_suite::{device, scene, user};

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest { page, limit }
}

fn rule(user: UserId, scene: SceneId, device: DeviceId, cooldown: u32) -> AlertRule {
    let t = now();
    AlertRule {
        id: AlertRuleId::new(),
        user_id: user,
        scene_id: scene,
        device_id: device,
        name: "long queue".into(),
        metric_path: MetricPath::parse("rolling5Min.avgWaitSeconds").unwrap(),
        operator: Operator::Gt,
        threshold: 120.0,
        duration_seconds: 30,
        cooldown_seconds: cooldown,
        severity: Severity::Critical,
        active_slots: Some([true; 48]),
        enabled: true,
        last_fired_at: None,
        breach_open: false,
        created_at: t,
        updated_at: t,
    }
}

fn firing(r: &AlertRule, at: DateTime<Utc>, breach: DateTime<Utc>) -> (Alert, PlatformEvent) {
    let alert = Alert {
        id: AlertId::new(),
        user_id: r.user_id,
        rule_id: r.id,
        rule_name: r.name.clone(),
        scene_id: r.scene_id,
        device_id: r.device_id,
        task_id: None,
        severity: r.severity,
        metric_path: r.metric_path.as_string(),
        operator: r.operator,
        threshold: r.threshold,
        value: 150.0,
        snapshot_key: Some(format!("{}/snapshots/{}/1-x.jpg", r.user_id, r.device_id)),
        status: AlertStatus::Active,
        history: vec![StatusChange {
            status: AlertStatus::Active,
            at,
            by: "system".into(),
            note: None,
        }],
        breach_started_at: breach,
        triggered_at: at,
        updated_at: at,
        suppressed: false,
    };
    let event = PlatformEvent::new(
        r.user_id,
        EventKind::AlertTriggered,
        Some(r.device_id),
        None,
        serde_json::json!({ "alertId": alert.id }),
        at,
    );
    (alert, event)
}

async fn setup(store: &SqlStore) -> (UserId, DeviceId, SceneId) {
    let u = user(store).await;
    let d = device(u.id, "cam");
    store.insert_device(&d).await.unwrap();
    let s = scene(u.id, d.id, "line");
    store.insert_scene(&s).await.unwrap();
    (u.id, d.id, s.id)
}

pub async fn rules_round_trip_filter_and_stay_with_their_tenant(store: SqlStore) {
    let (u, d, s) = setup(&store).await;
    let other = user(&store).await;
    let r = rule(u, s, d, 300);
    store.insert_rule(&r).await.unwrap();
    assert_eq!(store.get_rule(u, r.id).await.unwrap().unwrap(), r);
    assert!(store.get_rule(other.id, r.id).await.unwrap().is_none());
    let mut changed = r.clone();
    changed.threshold = 60.0;
    changed.active_slots = None;
    changed.enabled = false;
    assert!(store.update_rule(u, &changed).await.unwrap());
    assert!(!store.update_rule(other.id, &changed).await.unwrap());
    assert_eq!(store.get_rule(u, r.id).await.unwrap().unwrap(), changed);
    let all = store
        .list_rules(u, &RuleFilter::default(), page(1, 20))
        .await
        .unwrap();
    assert_eq!(all.total, 1);
    let enabled = RuleFilter {
        enabled: Some(true),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_rules(u, &enabled, page(1, 20))
            .await
            .unwrap()
            .total,
        0
    );
    assert!(
        !store
            .enabled_rules()
            .await
            .unwrap()
            .iter()
            .any(|(x, _)| x.id == r.id),
        "disabled rules are not evaluated"
    );
    store.update_rule(u, &r).await.unwrap();
    let (found, offset) = store
        .enabled_rules()
        .await
        .unwrap()
        .into_iter()
        .find(|(x, _)| x.id == r.id)
        .unwrap();
    assert_eq!(found, r);
    assert_eq!(offset.to_string(), "UTC+5:30", "the device's offset");
    // Deleting the scene deletes its rules.
    store.delete_scene(u, s).await.unwrap();
    assert!(store.get_rule(u, r.id).await.unwrap().is_none());
}

pub async fn a_breach_fires_exactly_once_however_many_evaluators_race(store: SqlStore) {
    let (u, d, s) = setup(&store).await;
    let r = rule(u, s, d, 60);
    store.insert_rule(&r).await.unwrap();
    let t0 = now() - Duration::minutes(10);
    // Eight evaluators fire the same breach at once: one wins.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, r) = (store.clone(), r.clone());
        racers.spawn(async move {
            let (a, e) = firing(&r, t0 + Duration::seconds(30), t0);
            store.fire_alert(&a, &e, None).await.unwrap()
        });
    }
    let wins = racers.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(wins, 1);
    let stored = store.get_rule(u, r.id).await.unwrap().unwrap();
    assert!(stored.breach_open);
    assert_eq!(stored.last_fired_at, Some(t0 + Duration::seconds(30)));
    // While the breach is open nothing fires, even after the cooldown.
    let (a, e) = firing(&r, t0 + Duration::seconds(200), t0 + Duration::seconds(190));
    assert!(!store.fire_alert(&a, &e, None).await.unwrap());
    // An evaluator behind the firing (its clearing sample is older) closes nothing.
    store
        .close_breach(r.id, t0 + Duration::seconds(29))
        .await
        .unwrap();
    assert!(store.get_rule(u, r.id).await.unwrap().unwrap().breach_open);
    store
        .close_breach(r.id, t0 + Duration::seconds(31))
        .await
        .unwrap();
    // Closed, but inside the cooldown (60 s after 30 s): refused.
    let (a, e) = firing(&r, t0 + Duration::seconds(80), t0 + Duration::seconds(70));
    assert!(!store.fire_alert(&a, &e, None).await.unwrap());
    // After it: fires.
    let (a, e) = firing(&r, t0 + Duration::seconds(90), t0 + Duration::seconds(85));
    assert!(store.fire_alert(&a, &e, None).await.unwrap());
    // Two alerts, each with its alert_triggered event in the outbox, counted for the month.
    let alerts = store
        .list_alerts(u, &AlertFilter::default(), page(1, 20))
        .await
        .unwrap();
    assert_eq!(alerts.total, 2);
    assert_eq!(alerts.items[0].id, a.id, "newest first");
    assert_eq!(alerts.items[0], a);
    let events = store.list_events(u, Some(d), page(1, 50)).await.unwrap();
    assert_eq!(
        events
            .items
            .iter()
            .filter(|e| e.kind == EventKind::AlertTriggered)
            .count(),
        2
    );
    let (m1, m2) = (
        month_of(t0 + Duration::seconds(30)),
        month_of(t0 + Duration::seconds(90)),
    );
    let counted = if m1 == m2 {
        store.alert_count(u, d, &m1).await.unwrap()
    } else {
        store.alert_count(u, d, &m1).await.unwrap() + store.alert_count(u, d, &m2).await.unwrap()
    };
    assert_eq!(counted, 2, "every firing counts against the device's month");
    // The same breach fired again (the unique index): lost, not an error.
    store
        .close_breach(r.id, t0 + Duration::seconds(91))
        .await
        .unwrap();
    let (mut again, e) = firing(&r, t0 + Duration::seconds(300), t0 + Duration::seconds(85));
    again.id = AlertId::new();
    assert!(!store.fire_alert(&again, &e, None).await.unwrap());
    assert_eq!(
        store
            .list_alerts(u, &AlertFilter::default(), page(1, 20))
            .await
            .unwrap()
            .total,
        2
    );
    // A disabled rule never fires.
    store
        .close_breach(r.id, t0 + Duration::seconds(301))
        .await
        .unwrap();
    let mut off = r.clone();
    off.enabled = false;
    store.update_rule(u, &off).await.unwrap();
    let (a, e) = firing(&r, t0 + Duration::hours(1), t0 + Duration::hours(1));
    assert!(!store.fire_alert(&a, &e, None).await.unwrap());
}

pub async fn alerts_filter_and_change_status_once(store: SqlStore) {
    let (u, d, s) = setup(&store).await;
    let r = rule(u, s, d, 0);
    store.insert_rule(&r).await.unwrap();
    let t0 = now() - Duration::hours(3);
    let (mut a, e) = firing(&r, t0, t0);
    store.fire_alert(&a, &e, None).await.unwrap();
    let f = |status, range| AlertFilter {
        device: Some(d),
        status,
        range,
        ..Default::default()
    };
    let p = page(1, 20);
    assert_eq!(
        store
            .list_alerts(u, &f(None, TimeRange::default()), p)
            .await
            .unwrap()
            .total,
        1
    );
    let later = TimeRange::new(Some(t0 + Duration::seconds(1)), None).unwrap();
    assert_eq!(
        store
            .list_alerts(u, &f(None, later), p)
            .await
            .unwrap()
            .total,
        0
    );
    let acked = f(Some(AlertStatus::Acknowledged), TimeRange::default());
    assert_eq!(store.list_alerts(u, &acked, p).await.unwrap().total, 0);
    a.transition(AlertStatus::Acknowledged, "user:x".into(), None, now())
        .unwrap();
    assert!(
        store
            .update_alert_status(u, &a, AlertStatus::Active)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_alert_status(u, &a, AlertStatus::Active)
            .await
            .unwrap(),
        "a second change from the same state loses"
    );
    assert_eq!(store.list_alerts(u, &acked, p).await.unwrap().total, 1);
    let got = store.get_alert(u, a.id).await.unwrap().unwrap();
    assert_eq!(got.history.len(), 2);
    let other = user(&store).await;
    assert!(store.get_alert(other.id, a.id).await.unwrap().is_none());
}

fn webhook(user: UserId) -> Webhook {
    let t = now();
    Webhook {
        id: WebhookId::new(),
        user_id: user,
        url: "https://hooks.example.com/in".into(),
        name: Some("ops".into()),
        secret: Sealed("sealed-secret".into()),
        previous_secret: None,
        previous_secret_until: None,
        subscribed_types: vec![EventKind::AlertTriggered, EventKind::DeviceOffline],
        timeout_ms: 5_000,
        max_retries: 3,
        enabled: true,
        disabled_reason: None,
        paused_until: None,
        created_at: t,
        updated_at: t,
    }
}

pub async fn one_webhook_per_user_and_the_outbox_dispatches_each_event_once(store: SqlStore) {
    let u = user(&store).await;
    let w = webhook(u.id);
    store.create_webhook(&w).await.unwrap();
    let again = store.create_webhook(&webhook(u.id)).await.unwrap_err();
    assert!(
        matches!(again, panoptes_shared::Error::Conflict(_)),
        "{again:?}"
    );
    assert_eq!(store.get_webhook(u.id).await.unwrap().unwrap(), w);
    // Events recorded with their changes wait in the outbox, oldest first.
    let t0 = now();
    let e1 = PlatformEvent::new(
        u.id,
        EventKind::NodeOnline,
        None,
        None,
        serde_json::json!({}),
        t0,
    );
    let e2 = PlatformEvent::new(
        u.id,
        EventKind::DeviceOffline,
        None,
        None,
        serde_json::json!({}),
        t0 + Duration::milliseconds(1),
    );
    store.record_event(&e2).await.unwrap();
    store.record_event(&e1).await.unwrap();
    let waiting: Vec<_> = store
        .undispatched_events(1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.user_id == u.id)
        .collect();
    assert_eq!(waiting, vec![e1.clone(), e2.clone()]);
    assert!(store.dispatch_event(&e1, None, now()).await.unwrap());
    let d2 = Delivery::for_event(&e2, &w);
    assert!(store.dispatch_event(&e2, Some(&d2), now()).await.unwrap());
    assert!(
        !store.dispatch_event(&e2, Some(&d2), now()).await.unwrap(),
        "a second dispatcher gets nothing"
    );
    assert!(
        !store
            .undispatched_events(1_000)
            .await
            .unwrap()
            .iter()
            .any(|e| e.user_id == u.id)
    );
    assert!(
        store
            .users_with_due_deliveries(now(), 1_000)
            .await
            .unwrap()
            .contains(&u.id)
    );
    let due = store.due_deliveries(u.id, now(), 10).await.unwrap();
    assert_eq!(due, vec![d2.clone()]);
    // An attempt is recorded with the delivery's new state.
    let mut d = d2.clone();
    d.attempts = 1;
    d.round_attempts = 1;
    d.last_status_code = Some(500);
    d.last_error = Some("the receiver answered 500".into());
    d.next_attempt_at = Some(now() + Duration::seconds(5));
    let attempt = Attempt {
        delivery_id: d.id,
        number: 1,
        started_at: now(),
        status_code: Some(500),
        latency_ms: 12,
        response_body: Some("oops".into()),
        error: None,
        succeeded: false,
    };
    assert!(store.record_attempt(&d, &attempt, None).await.unwrap());
    assert!(
        !store.record_attempt(&d, &attempt, None).await.unwrap(),
        "a second sender's record of the same attempt is refused"
    );
    assert!(
        store
            .due_deliveries(u.id, now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .due_deliveries(u.id, now() + Duration::seconds(6), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let attempts = store.list_attempts(u.id, d.id).await.unwrap();
    let mut stored = attempts[0].clone();
    stored.started_at = attempt.started_at;
    assert_eq!(stored, attempt);
    let failed = DeliveryFilter {
        status: Some(DeliveryStatus::Pending),
        event_type: Some("device_offline".into()),
    };
    assert_eq!(
        store
            .list_deliveries(u.id, &failed, page(1, 20))
            .await
            .unwrap()
            .total,
        1
    );
    let other_type = DeliveryFilter {
        event_type: Some("alert_triggered".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_deliveries(u.id, &other_type, page(1, 20))
            .await
            .unwrap()
            .total,
        0
    );
    // A paused endpoint has nothing due until the pause ends.
    let due_at = now() + Duration::seconds(6);
    store
        .pause_webhook(w.id, due_at + Duration::seconds(10))
        .await
        .unwrap();
    assert!(
        !store
            .users_with_due_deliveries(due_at, 1_000)
            .await
            .unwrap()
            .contains(&u.id)
    );
    assert!(
        store
            .users_with_due_deliveries(due_at + Duration::seconds(10), 1_000)
            .await
            .unwrap()
            .contains(&u.id)
    );
    // A configuration written from a stale read is refused.
    let fresh = store.get_webhook(u.id).await.unwrap().unwrap();
    let mut changed = fresh.clone();
    changed.url = "https://elsewhere.example.com/".into();
    changed.updated_at = fresh.updated_at + Duration::milliseconds(5);
    assert!(
        store
            .update_webhook(u.id, &changed, fresh.updated_at)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_webhook(u.id, &changed, fresh.updated_at)
            .await
            .unwrap()
    );
    // A disabled endpoint has nothing due; requeue resets the round.
    assert!(store.disable_webhook(u.id, w.id, "410 Gone").await.unwrap());
    assert!(
        !store
            .users_with_due_deliveries(now() + Duration::seconds(6), 1_000)
            .await
            .unwrap()
            .contains(&u.id)
    );
    assert!(store.requeue_delivery(u.id, d.id, now()).await.unwrap());
    let requeued = store.get_delivery(u.id, d.id).await.unwrap().unwrap();
    assert_eq!((requeued.round_attempts, requeued.attempts), (0, 1));
    let other = user(&store).await;
    assert!(store.get_delivery(other.id, d.id).await.unwrap().is_none());
    assert!(
        store
            .list_attempts(other.id, d.id)
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting the endpoint deletes its log.
    assert!(store.delete_webhook(u.id).await.unwrap());
    assert!(store.get_delivery(u.id, d.id).await.unwrap().is_none());
}

pub async fn node_and_maintenance_events_reach_the_users_concerned(store: SqlStore) {
    let u = user(&store).await;
    let n = store
        .record_for_all_users(
            EventKind::MaintenanceScheduled,
            &serde_json::json!({"message": "upgrade"}),
            now(),
        )
        .await
        .unwrap();
    assert!(n >= 1);
    let mine = store.list_events(u.id, None, page(1, 10)).await.unwrap();
    assert_eq!(mine.items[0].kind, EventKind::MaintenanceScheduled);
    // Without a running task, a node event is not this user's concern.
    store
        .record_for_running_users(EventKind::NodeOffline, &serde_json::json!({}), now())
        .await
        .unwrap();
    let mine = store.list_events(u.id, None, page(1, 10)).await.unwrap();
    assert_eq!(mine.total, 1);
}

pub async fn an_alerts_insight_is_written_with_it_or_not_at_all(store: SqlStore) {
    use panoptes_shared::domain::insight::{Insight, VlmStatus};
    use panoptes_shared::ports::{InsightFilter, InsightRepo};
    let (u, d, s) = setup(&store).await;
    let r = rule(u, s, d, 0);
    store.insert_rule(&r).await.unwrap();
    let t0 = now() - Duration::hours(1);
    let (a, e) = firing(&r, t0, t0);
    let insight = Insight::pending(&a, t0);
    assert!(store.fire_alert(&a, &e, Some(&insight)).await.unwrap());
    let stored = store.get_insight(u, insight.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.alert_id, stored.vlm_status),
        (a.id, VlmStatus::Pending)
    );
    // A lost race writes neither the alert nor its insight.
    let (late, e2) = firing(&r, t0 + Duration::seconds(1), t0);
    let other = Insight::pending(&late, t0);
    assert!(!store.fire_alert(&late, &e2, Some(&other)).await.unwrap());
    assert!(store.get_insight(u, other.id).await.unwrap().is_none());
    // A suppressed alert (beyond the alert quota) gets no insight.
    store
        .close_breach(r.id, t0 + Duration::seconds(2))
        .await
        .unwrap();
    let (mut quiet, e3) = firing(&r, t0 + Duration::seconds(5), t0 + Duration::seconds(3));
    quiet.suppressed = true;
    let none = Insight::pending(&quiet, t0);
    assert!(store.fire_alert(&quiet, &e3, Some(&none)).await.unwrap());
    assert!(store.get_insight(u, none.id).await.unwrap().is_none());
    let all = store
        .list_insights(u, &InsightFilter::default(), page(1, 10))
        .await
        .unwrap();
    assert_eq!(all.total, 1);
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
    rules_round_trip_filter_and_stay_with_their_tenant,
    a_breach_fires_exactly_once_however_many_evaluators_race,
    alerts_filter_and_change_status_once,
    one_webhook_per_user_and_the_outbox_dispatches_each_event_once,
    node_and_maintenance_events_reach_the_users_concerned,
    an_alerts_insight_is_written_with_it_or_not_at_all,
);
