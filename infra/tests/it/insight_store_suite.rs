//! Insights (the VLM's reading of an alert), run against SQLite and
//! PostgreSQL: one per alert, final once completed or failed, every list
//! filter, full-text `q` over the summary through each backend's index (words,
//! case-insensitive, no stemming) that takes any input as plain words, and
//! tenancy on every read.

use chrono::{DateTime, Duration, TimeZone, Utc};
use panoptes_infra::store::SqlStore;
use panoptes_shared::domain::alert::{Alert, AlertStatus, Operator, Severity};
use panoptes_shared::domain::insight::{Insight, VlmResult, VlmStatus};
use panoptes_shared::domain::metrics_history::TimeRange;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::ids::{AlertId, AlertRuleId, DeviceId, InsightId, SceneId, UserId};
use panoptes_shared::ports::{DeviceRepo, InsightFilter, InsightRepo};

use crate::store_suite::{device, user};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap() + Duration::minutes(minute)
}

fn alert(user: UserId, device: DeviceId, scene: SceneId, severity: Severity, minute: i64) -> Alert {
    Alert {
        id: AlertId::new(),
        user_id: user,
        rule_id: AlertRuleId::new(),
        rule_name: "long queue".into(),
        scene_id: scene,
        device_id: device,
        task_id: None,
        severity,
        metric_path: "rolling5Min.avgWaitSeconds".into(),
        operator: Operator::Gt,
        threshold: 120.0,
        value: 150.0,
        snapshot_key: Some(format!("{user}/snapshots/{device}/1-x.jpg")),
        status: AlertStatus::Active,
        history: Vec::new(),
        breach_started_at: at(minute),
        triggered_at: at(minute),
        updated_at: at(minute),
        suppressed: false,
    }
}

fn answer(summary: &str) -> VlmResult {
    VlmResult {
        summary: summary.into(),
        structured: Some(serde_json::json!({ "people": 3, "summary": summary })),
        model: Some("qwen2.5-vl".into()),
        prompt_tokens: Some(900),
        completion_tokens: Some(100),
        total_tokens: Some(1000),
    }
}

/// A stored insight for a new alert, completed with `summary` when given.
async fn stored(
    store: &SqlStore,
    user: UserId,
    device: DeviceId,
    scene: SceneId,
    minute: i64,
    summary: Option<&str>,
) -> Insight {
    let a = alert(user, device, scene, Severity::Warning, minute);
    let i = Insight::pending(&a, at(minute));
    assert!(store.insert_insight_for_alert(&i).await.unwrap());
    if let Some(s) = summary {
        assert!(
            store
                .complete_insight(user, i.id, &answer(s), 1, at(minute + 1))
                .await
                .unwrap()
        );
    }
    store.get_insight(user, i.id).await.unwrap().unwrap()
}

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest { page, limit }
}

async fn ids(store: &SqlStore, user: UserId, f: &InsightFilter) -> Vec<InsightId> {
    let p = store.list_insights(user, f, page(1, 100)).await.unwrap();
    assert_eq!(p.total, p.items.len() as u64);
    p.items.into_iter().map(|i| i.id).collect()
}

fn q(terms: &str) -> InsightFilter {
    InsightFilter {
        q: Some(terms.into()),
        ..Default::default()
    }
}

pub async fn an_alert_has_one_insight_that_only_its_tenant_sees(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let al = alert(a.id, DeviceId::new(), SceneId::new(), Severity::Critical, 0);
    let first = Insight::pending(&al, at(0));
    assert!(store.insert_insight_for_alert(&first).await.unwrap());
    // A redelivered job makes its own pending insight for the same alert.
    let again = Insight::pending(&al, at(5));
    assert!(!store.insert_insight_for_alert(&again).await.unwrap());
    assert!(store.get_insight(a.id, again.id).await.unwrap().is_none());

    let found = store.get_insight(a.id, first.id).await.unwrap().unwrap();
    assert_eq!(found, first);
    assert_eq!(found.severity, Severity::Critical, "the alert's");
    assert_eq!(found.triggered_at, al.triggered_at);

    // Another tenant: not by id, not in a list, not by a transition.
    assert!(store.get_insight(b.id, first.id).await.unwrap().is_none());
    let theirs = store
        .list_insights(b.id, &InsightFilter::default(), page(1, 20))
        .await
        .unwrap();
    assert_eq!((theirs.total, theirs.items.len()), (0, 0));
    assert!(
        !store
            .complete_insight(b.id, first.id, &answer("stolen"), 1, at(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .fail_insight(b.id, first.id, "x", 1, at(1))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_insight(a.id, first.id).await.unwrap().unwrap(),
        first
    );
}

pub async fn a_pending_insight_ends_once_and_then_stays_as_it_is(store: SqlStore) {
    let a = user(&store).await;
    let (d, s) = (DeviceId::new(), SceneId::new());
    let i = stored(&store, a.id, d, s, 0, None).await;
    assert_eq!(i.vlm_status, VlmStatus::Pending);

    assert!(
        store
            .complete_insight(a.id, i.id, &answer("two people wait"), 2, at(1))
            .await
            .unwrap()
    );
    let done = store.get_insight(a.id, i.id).await.unwrap().unwrap();
    let mut expected = i.clone();
    assert!(expected.complete(answer("two people wait"), 2, at(1)));
    assert_eq!(done, expected, "every field round-trips");

    // A redelivered job: neither a second answer nor a failure lands.
    assert!(
        !store
            .complete_insight(a.id, i.id, &answer("overwritten"), 3, at(2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .fail_insight(a.id, i.id, "late", 3, at(2))
            .await
            .unwrap()
    );
    assert_eq!(store.get_insight(a.id, i.id).await.unwrap().unwrap(), done);

    let f = stored(&store, a.id, d, s, 10, None).await;
    assert!(
        store
            .fail_insight(a.id, f.id, "snapshot missing", 3, at(11))
            .await
            .unwrap()
    );
    assert!(
        !store
            .complete_insight(a.id, f.id, &answer("too late"), 4, at(12))
            .await
            .unwrap()
    );
    let failed = store.get_insight(a.id, f.id).await.unwrap().unwrap();
    assert_eq!(failed.vlm_status, VlmStatus::Failed);
    assert_eq!(failed.failure_reason.as_deref(), Some("snapshot missing"));
    assert_eq!((failed.attempts, failed.vlm_summary), (3, None));
    assert_eq!(failed.completed_at, Some(at(11)));
}

pub async fn every_filter_narrows_the_list_and_pages_count_them_all(store: SqlStore) {
    let a = user(&store).await;
    let (d1, d2, s1, s2) = (
        DeviceId::new(),
        DeviceId::new(),
        SceneId::new(),
        SceneId::new(),
    );
    let old = stored(&store, a.id, d1, s1, 0, Some("quiet lobby")).await;
    let pending = stored(&store, a.id, d1, s2, 10, None).await;
    let other_device = stored(&store, a.id, d2, s1, 20, Some("busy lobby")).await;
    let critical = {
        let al = alert(a.id, d2, s2, Severity::Critical, 30);
        let i = Insight::pending(&al, at(30));
        assert!(store.insert_insight_for_alert(&i).await.unwrap());
        assert!(
            store
                .fail_insight(a.id, i.id, "timeout", 3, at(31))
                .await
                .unwrap()
        );
        i
    };

    // Newest firing first.
    let all = ids(&store, a.id, &InsightFilter::default()).await;
    assert_eq!(all, [critical.id, other_device.id, pending.id, old.id]);

    let f = |f: InsightFilter| {
        let store = store.clone();
        async move { ids(&store, a.id, &f).await }
    };
    let device = InsightFilter {
        device: Some(d1),
        ..Default::default()
    };
    assert_eq!(f(device).await, [pending.id, old.id]);
    let scene = InsightFilter {
        scene: Some(s2),
        ..Default::default()
    };
    assert_eq!(f(scene).await, [critical.id, pending.id]);
    let severity = InsightFilter {
        severity: Some(Severity::Critical),
        ..Default::default()
    };
    assert_eq!(f(severity).await, [critical.id]);
    for (status, expected) in [
        (VlmStatus::Completed, vec![other_device.id, old.id]),
        (VlmStatus::Pending, vec![pending.id]),
        (VlmStatus::Failed, vec![critical.id]),
    ] {
        let by_status = InsightFilter {
            vlm_status: Some(status),
            ..Default::default()
        };
        assert_eq!(f(by_status).await, expected, "{status:?}");
    }
    let range = InsightFilter {
        range: TimeRange::new(Some(at(10)), Some(at(20))).unwrap(),
        ..Default::default()
    };
    assert_eq!(f(range).await, [other_device.id, pending.id], "inclusive");
    let with_summary = InsightFilter {
        has_vlm_summary: Some(true),
        ..Default::default()
    };
    assert_eq!(f(with_summary).await, [other_device.id, old.id]);
    let without = InsightFilter {
        has_vlm_summary: Some(false),
        ..Default::default()
    };
    assert_eq!(f(without).await, [critical.id, pending.id]);
    let combined = InsightFilter {
        q: Some("lobby".into()),
        device: Some(d1),
        ..Default::default()
    };
    assert_eq!(f(combined).await, [old.id]);

    // Pages: the total counts every match, the items only the page's.
    let second = store
        .list_insights(a.id, &InsightFilter::default(), page(2, 3))
        .await
        .unwrap();
    assert_eq!(second.total, 4);
    assert_eq!(second.total_pages(), 2);
    assert_eq!(
        second.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        [old.id]
    );
    let lobby = store
        .list_insights(a.id, &q("lobby"), page(1, 1))
        .await
        .unwrap();
    assert_eq!((lobby.total, lobby.items.len()), (2, 1));
    assert_eq!(lobby.items[0].id, other_device.id);
}

pub async fn q_finds_whole_words_of_the_summary_whatever_their_case(store: SqlStore) {
    let a = user(&store).await;
    let (d, s) = (DeviceId::new(), SceneId::new());
    let red = stored(
        &store,
        a.id,
        d,
        s,
        0,
        Some("A man in a RED coat waits at the counter"),
    )
    .await;
    let blue = stored(
        &store,
        a.id,
        d,
        s,
        1,
        Some("Two people queue; one wears a blue coat"),
    )
    .await;
    let pending = stored(&store, a.id, d, s, 2, None).await;

    assert_eq!(ids(&store, a.id, &q("red")).await, [red.id]);
    assert_eq!(ids(&store, a.id, &q("Coat")).await, [blue.id, red.id]);
    // Every word must appear.
    assert_eq!(ids(&store, a.id, &q("red coat")).await, [red.id]);
    assert!(ids(&store, a.id, &q("red queue")).await.is_empty());
    // Words, not stems or substrings.
    assert!(ids(&store, a.id, &q("coats")).await.is_empty());
    assert!(ids(&store, a.id, &q("wait")).await.is_empty());
    assert!(ids(&store, a.id, &q("ounte")).await.is_empty());

    // The index follows the summary: a pending insight is found once it completes.
    assert!(ids(&store, a.id, &q("umbrella")).await.is_empty());
    assert!(
        store
            .complete_insight(
                a.id,
                pending.id,
                &answer("a wet umbrella by the door"),
                1,
                at(3)
            )
            .await
            .unwrap()
    );
    assert_eq!(ids(&store, a.id, &q("umbrella")).await, [pending.id]);

    // Another tenant's words are not searched.
    let b = user(&store).await;
    assert!(ids(&store, b.id, &q("coat")).await.is_empty());
}

pub async fn search_syntax_in_q_is_taken_as_plain_words(store: SqlStore) {
    let a = user(&store).await;
    let (d, s) = (DeviceId::new(), SceneId::new());
    let and = stored(&store, a.id, d, s, 0, Some("a man and a dog near the door")).await;
    let red = stored(&store, a.id, d, s, 1, Some("red coat, no dog")).await;
    stored(&store, a.id, d, s, 2, Some("empty hall")).await;

    // Nothing searchable: nothing matches (and nothing errors).
    for nothing in [
        "\"", "*", "(", ")", "\"\"", "-", "^", ":", "* ( \" )", "   ",
    ] {
        assert!(
            ids(&store, a.id, &q(nothing)).await.is_empty(),
            "{nothing:?}"
        );
    }
    // Operators are words: `AND` finds the summary with the word "and".
    assert_eq!(ids(&store, a.id, &q("AND")).await, [and.id]);
    assert_eq!(ids(&store, a.id, &q("NEAR")).await, [and.id]);
    assert!(ids(&store, a.id, &q("red OR hall")).await.is_empty());
    // Syntax around words is dropped, the words still count.
    assert_eq!(ids(&store, a.id, &q("red*")).await, [red.id]);
    assert_eq!(ids(&store, a.id, &q("\"red coat")).await, [red.id]);
    assert_eq!(ids(&store, a.id, &q("(dog")).await, [red.id, and.id]);
    assert_eq!(ids(&store, a.id, &q("vlm_summary:red")).await, []);
    assert_eq!(ids(&store, a.id, &q("-dog")).await, [red.id, and.id]);
    assert_eq!(ids(&store, a.id, &q("dog:*")).await, [red.id, and.id]);
}

pub async fn insights_outlive_their_device_like_its_alerts(store: SqlStore) {
    let a = user(&store).await;
    let d = device(a.id, "cam");
    store.insert_device(&d).await.unwrap();
    let i = stored(&store, a.id, d.id, SceneId::new(), 0, Some("kept")).await;
    assert!(store.delete_device(a.id, d.id).await.unwrap());
    assert_eq!(store.get_insight(a.id, i.id).await.unwrap().unwrap(), i);
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
    an_alert_has_one_insight_that_only_its_tenant_sees,
    a_pending_insight_ends_once_and_then_stays_as_it_is,
    every_filter_narrows_the_list_and_pages_count_them_all,
    q_finds_whole_words_of_the_summary_whatever_their_case,
    search_syntax_in_q_is_taken_as_plain_words,
    insights_outlive_their_device_like_its_alerts,
);

/// On PostgreSQL, `q` is answered from the GIN index on the generated
/// tsvector, not by scanning summaries.
#[tokio::test]
async fn q_uses_the_full_text_index_on_postgres() {
    let store = crate::backends::postgres().await;
    let a = user(&store).await;
    // Many summaries, a rare word in a few of them.
    sqlx::query(
        "INSERT INTO insights (id, user_id, alert_id, device_id, scene_id, severity, vlm_status, \
         vlm_summary, attempts, triggered_at, created_at, updated_at) \
         SELECT gen_random_uuid()::text, $1, gen_random_uuid()::text, gen_random_uuid()::text, \
         gen_random_uuid()::text, 'warning', 'completed', \
         CASE WHEN n % 1000 = 0 THEN 'an umbrella by the door' ELSE 'people queue at counter ' || n END, \
         1, n, n, n FROM generate_series(1, 20000) AS n",
    )
    .bind(a.id.to_string())
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE insights")
        .execute(store.pool())
        .await
        .unwrap();
    let found = store
        .list_insights(a.id, &q("Umbrella"), page(1, 100))
        .await
        .unwrap();
    assert_eq!(found.total, 20);

    // The list's statement (infra/src/store/insights.rs), no other filter set.
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT COUNT(*) FROM insights WHERE user_id = $1 AND (device_id = $2 OR $2 = '') \
         AND (scene_id = $3 OR $3 = '') AND (severity = $4 OR $4 = '') \
         AND (vlm_status = $5 OR $5 = '') AND triggered_at >= $6 AND triggered_at <= $7 \
         AND ($8 < 0 OR (CASE WHEN vlm_summary IS NULL THEN 0 ELSE 1 END) = $8) \
         AND ($9 < 0 OR (CASE WHEN attribute_count > 0 THEN 1 ELSE 0 END) = $9) \
         AND search_tsv @@ plainto_tsquery('simple', $10)",
    )
    .bind(a.id.to_string())
    .bind("")
    .bind("")
    .bind("")
    .bind("")
    .bind(i64::MIN)
    .bind(i64::MAX)
    .bind(-1_i64)
    .bind(-1_i64)
    .bind("umbrella")
    .fetch_all(store.pool())
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("insights_search_fts"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    println!("{plan}");
}

/// On SQLite, `q` is answered from the FTS5 table (its MATCH index), not by
/// scanning summaries.
#[tokio::test]
async fn q_uses_the_full_text_index_on_sqlite() {
    let store = crate::backends::sqlite().await;
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM insights WHERE user_id = $1 \
         AND seq IN (SELECT rowid FROM insights_fts WHERE insights_fts MATCH $2)",
    )
    .bind("u")
    .bind("\"umbrella\"")
    .fetch_all(store.pool())
    .await
    .unwrap();
    let plan: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    // `M`: the FTS5 MATCH constraint is handed to the full-text index.
    assert!(
        plan.iter()
            .any(|d| d.contains("insights_fts VIRTUAL TABLE INDEX 0:M")),
        "{plan:?}"
    );
    assert!(!plan.contains(&"SCAN insights"), "{plan:?}");
}

/// The triggers keep the FTS5 table in step with `insights` through inserts,
/// summary updates and deletes (FTS5's integrity check, with rank 1,
/// compares the index with the content table).
#[tokio::test]
async fn the_fts5_index_follows_every_change_on_sqlite() {
    let store = crate::backends::sqlite().await;
    let a = user(&store).await;
    let (d, s) = (DeviceId::new(), SceneId::new());
    let kept = stored(&store, a.id, d, s, 0, Some("red coat")).await;
    let gone = stored(&store, a.id, d, s, 1, Some("blue umbrella")).await;
    stored(&store, a.id, d, s, 2, None).await;
    sqlx::query("DELETE FROM insights WHERE id = $1")
        .bind(gone.id.to_string())
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO insights_fts (insights_fts, rank) VALUES ('integrity-check', 1)")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(ids(&store, a.id, &q("umbrella")).await.is_empty());
    assert_eq!(ids(&store, a.id, &q("coat")).await, [kept.id]);
}
