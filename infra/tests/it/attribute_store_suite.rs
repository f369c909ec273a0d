//! Person attribute records (a track's description), run against SQLite and
//! PostgreSQL: stored once per id (a redelivered frame writes nothing
//! twice), every field read back, every list filter (and the same filters
//! on the counts), newest-first pages, the counts per colour, and tenancy:
//! another user's records are never read, listed or counted.

use chrono::{DateTime, Duration, TimeZone, Utc};
use panoptes_infra::store::SqlStore;
use panoptes_shared::domain::attribute::{
    AttributeRecord, AttributeStats, ColorName, PersonAttributes,
};
use panoptes_shared::domain::detection::BoundingBox;
use panoptes_shared::domain::metrics_history::TimeRange;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::ids::{AttributeId, DeviceId, JobId, SceneId, TaskId, UserId};
use panoptes_shared::ports::{AttributeFilter, AttributeRepo};

use crate::store_suite::user;

fn at(second: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap()
        + Duration::milliseconds(second * 1000 + 250)
}

/// Where a record was seen: device, scene, task.
#[derive(Clone, Copy)]
struct Place {
    device: DeviceId,
    scene: SceneId,
    task: TaskId,
}

fn place() -> Place {
    Place {
        device: DeviceId::new(),
        scene: SceneId::new(),
        task: TaskId::new(),
    }
}

fn record(
    user: UserId,
    p: Place,
    track: &str,
    (upper, lower): (ColorName, ColorName),
    second: i64,
) -> AttributeRecord {
    AttributeRecord {
        id: AttributeRecord::id_for(p.task, track, JobId::new()),
        user_id: user,
        device_id: p.device,
        scene_id: p.scene,
        task_id: p.task,
        track_id: track.into(),
        attributes: PersonAttributes {
            upper_color: upper,
            lower_color: lower,
            upper_color_share: 0.625,
            lower_color_share: 0.375,
        },
        confidence: 0.8125,
        bounding_box: BoundingBox {
            x: 0.25,
            y: 0.125,
            width: 0.0625,
            height: 0.3125,
        },
        observed_at: at(second),
        created_at: at(second + 1),
    }
}

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest { page, limit }
}

/// The ids listed under `f` (all on one page, which counts them all).
async fn ids(store: &SqlStore, user: UserId, f: &AttributeFilter) -> Vec<AttributeId> {
    let p = store.list_attributes(user, f, page(1, 100)).await.unwrap();
    assert_eq!(p.total, p.items.len() as u64);
    p.items.into_iter().map(|a| a.id).collect()
}

use ColorName::{Black, Blue, Gray, Red, White};

pub async fn a_record_is_stored_once_and_read_back_whole(store: SqlStore) {
    let a = user(&store).await;
    let p = place();
    let first = record(a.id, p, "t1", (Red, Blue), 0);
    let second = record(a.id, p, "t2", (Black, Gray), 0);
    assert_eq!(store.insert_attributes(&[]).await.unwrap(), 0);
    assert_eq!(
        store
            .insert_attributes(&[first.clone(), second.clone()])
            .await
            .unwrap(),
        2
    );
    // The same frame again (redelivered, republished), with one more track:
    // only the new one is written; the stored ones are left as they were.
    let again = AttributeRecord {
        created_at: at(60),
        attributes: PersonAttributes {
            upper_color: White,
            ..first.attributes
        },
        ..first.clone()
    };
    let third = record(a.id, p, "t3", (White, Black), 0);
    assert_eq!(
        store
            .insert_attributes(&[again, second.clone(), third.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.get_attribute(a.id, first.id).await.unwrap(),
        Some(first.clone()),
        "every field round-trips, the first write stands"
    );
    assert_eq!(
        ids(&store, a.id, &AttributeFilter::default()).await.len(),
        3
    );
    assert_eq!(
        store.get_attribute(a.id, AttributeId::new()).await.unwrap(),
        None
    );
}

pub async fn another_users_records_are_never_read_listed_or_counted(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let p = place();
    let mine = record(a.id, p, "t1", (Red, Blue), 0);
    store
        .insert_attributes(std::slice::from_ref(&mine))
        .await
        .unwrap();
    // b asks with a's ids in every filter.
    assert_eq!(store.get_attribute(b.id, mine.id).await.unwrap(), None);
    let theirs = AttributeFilter {
        device: Some(p.device),
        scene: Some(p.scene),
        task: Some(p.task),
        track: Some("t1".into()),
        ..Default::default()
    };
    for f in [AttributeFilter::default(), theirs.clone()] {
        let listed = store.list_attributes(b.id, &f, page(1, 100)).await.unwrap();
        assert_eq!((listed.total, listed.items.len()), (0, 0));
        assert_eq!(
            store.attribute_stats(b.id, &f).await.unwrap(),
            AttributeStats::default()
        );
    }
    // b's own record beside a's: each sees only their own.
    let own = record(b.id, p, "t1", (White, Black), 0);
    store
        .insert_attributes(std::slice::from_ref(&own))
        .await
        .unwrap();
    assert_eq!(ids(&store, b.id, &theirs).await, vec![own.id]);
    assert_eq!(ids(&store, a.id, &theirs).await, vec![mine.id]);
    assert_eq!(store.attribute_stats(a.id, &theirs).await.unwrap().total, 1);
    assert_eq!(
        store
            .attribute_stats(b.id, &theirs)
            .await
            .unwrap()
            .upper_colors,
        vec![(White, 1)]
    );
}

pub async fn every_filter_narrows_the_list_and_the_counts_alike(store: SqlStore) {
    let a = user(&store).await;
    let (p1, p2) = (place(), place());
    // Another task of p1's device and scene.
    let p3 = Place {
        task: TaskId::new(),
        ..p1
    };
    let r1 = record(a.id, p1, "t1", (Red, Blue), 0);
    let r2 = record(a.id, p1, "t2", (Black, Blue), 10);
    let r3 = record(a.id, p2, "t1", (Red, Black), 20);
    let r4 = record(a.id, p3, "t1", (White, Gray), 30);
    store
        .insert_attributes(&[r1.clone(), r2.clone(), r3.clone(), r4.clone()])
        .await
        .unwrap();
    let cases = [
        (AttributeFilter::default(), vec![&r4, &r3, &r2, &r1]),
        (
            AttributeFilter {
                device: Some(p1.device),
                ..Default::default()
            },
            vec![&r4, &r2, &r1],
        ),
        (
            AttributeFilter {
                scene: Some(p2.scene),
                ..Default::default()
            },
            vec![&r3],
        ),
        (
            AttributeFilter {
                task: Some(p1.task),
                ..Default::default()
            },
            vec![&r2, &r1],
        ),
        (
            AttributeFilter {
                track: Some("t1".into()),
                ..Default::default()
            },
            vec![&r4, &r3, &r1],
        ),
        (
            AttributeFilter {
                upper_color: Some(Red),
                ..Default::default()
            },
            vec![&r3, &r1],
        ),
        (
            AttributeFilter {
                lower_color: Some(Blue),
                ..Default::default()
            },
            vec![&r2, &r1],
        ),
        (
            AttributeFilter {
                upper_color: Some(Red),
                lower_color: Some(Blue),
                ..Default::default()
            },
            vec![&r1],
        ),
        (
            AttributeFilter {
                task: Some(p1.task),
                track: Some("t1".into()),
                ..Default::default()
            },
            vec![&r1],
        ),
        // The range is inclusive at both ends.
        (
            AttributeFilter {
                range: TimeRange::new(Some(at(10)), Some(at(20))).unwrap(),
                ..Default::default()
            },
            vec![&r3, &r2],
        ),
        (
            AttributeFilter {
                range: TimeRange::new(Some(at(25)), None).unwrap(),
                ..Default::default()
            },
            vec![&r4],
        ),
        (
            AttributeFilter {
                range: TimeRange::new(None, Some(at(0))).unwrap(),
                ..Default::default()
            },
            vec![&r1],
        ),
        (
            AttributeFilter {
                upper_color: Some(ColorName::Green),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (f, want) in cases {
        let want: Vec<AttributeId> = want.iter().map(|r| r.id).collect();
        assert_eq!(ids(&store, a.id, &f).await, want, "{f:?}");
        assert_eq!(
            store.attribute_stats(a.id, &f).await.unwrap().total,
            want.len() as u64,
            "{f:?}"
        );
    }
}

pub async fn pages_are_newest_first_and_count_every_match(store: SqlStore) {
    let a = user(&store).await;
    let p = place();
    let mut records: Vec<AttributeRecord> = (0..5)
        .map(|i| record(a.id, p, &format!("t{i}"), (Black, Blue), i * 5))
        .collect();
    // Two seen in the same frame: the larger id first, on every backend.
    records[4].observed_at = records[3].observed_at;
    store.insert_attributes(&records).await.unwrap();
    let (hi, lo) = if records[3].id > records[4].id {
        (records[3].id, records[4].id)
    } else {
        (records[4].id, records[3].id)
    };
    let want = vec![hi, lo, records[2].id, records[1].id, records[0].id];
    let mut paged = Vec::new();
    for n in 1..=3 {
        let p = store
            .list_attributes(a.id, &AttributeFilter::default(), page(n, 2))
            .await
            .unwrap();
        assert_eq!(p.total, 5);
        assert_eq!(p.items.len(), if n < 3 { 2 } else { 1 });
        paged.extend(p.items.into_iter().map(|r| r.id));
    }
    assert_eq!(paged, want);
    let past = store
        .list_attributes(a.id, &AttributeFilter::default(), page(4, 2))
        .await
        .unwrap();
    assert_eq!((past.total, past.items.len()), (5, 0));
}

pub async fn stats_count_records_tracks_and_each_colour_most_first(store: SqlStore) {
    let a = user(&store).await;
    let (p1, p2) = (place(), place());
    store
        .insert_attributes(&[
            // t1 of p1 described twice (a refresh): one track.
            record(a.id, p1, "t1", (Red, Blue), 0),
            record(a.id, p1, "t1", (Red, Black), 40),
            record(a.id, p1, "t2", (Black, Blue), 5),
            // t1 of another task is another track.
            record(a.id, p2, "t1", (Blue, Blue), 5),
            record(a.id, p2, "t3", (Black, Gray), 5),
        ])
        .await
        .unwrap();
    let all = store
        .attribute_stats(a.id, &AttributeFilter::default())
        .await
        .unwrap();
    assert_eq!(
        all,
        AttributeStats {
            total: 5,
            tracks: 4,
            // Most first; ties by name.
            upper_colors: vec![(Black, 2), (Red, 2), (Blue, 1)],
            lower_colors: vec![(Blue, 3), (Black, 1), (Gray, 1)],
        }
    );
    let one_task = store
        .attribute_stats(
            a.id,
            &AttributeFilter {
                task: Some(p1.task),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((one_task.total, one_task.tracks), (3, 2));
    assert_eq!(one_task.upper_colors, vec![(Red, 2), (Black, 1)]);
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
    a_record_is_stored_once_and_read_back_whole,
    another_users_records_are_never_read_listed_or_counted,
    every_filter_narrows_the_list_and_the_counts_alike,
    pages_are_newest_first_and_count_every_match,
    stats_count_records_tracks_and_each_colour_most_first,
);
