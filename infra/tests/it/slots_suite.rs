//! The stream-slot behaviour suite, run against the in-process and Redis adapters.

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::slots::{MemorySlots, RedisSlots};
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::{SlotGrant, StreamSlots};

const TTL: Duration = Duration::from_secs(60);

async fn redis() -> Arc<dyn StreamSlots> {
    let client = ::redis::Client::open(crate::backends::redis_url()).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client, Default::default())
        .await
        .expect("Redis must be running for these tests");
    Arc::new(RedisSlots::new(
        conn,
        format!("panoptes-test:{}", uuid::Uuid::new_v4()),
    ))
}

fn memory() -> Arc<dyn StreamSlots> {
    Arc::new(MemorySlots::new())
}

pub async fn the_limit_holds_and_a_release_frees_a_slot(slots: Arc<dyn StreamSlots>) {
    let user = UserId::new();
    for i in 0..10 {
        assert_eq!(
            slots
                .acquire(user, &format!("s{i}"), 10, TTL, None)
                .await
                .unwrap(),
            SlotGrant::Granted
        );
    }
    match slots.acquire(user, "s10", 10, TTL, None).await.unwrap() {
        SlotGrant::Full { retry_after } => {
            assert!(retry_after <= TTL && retry_after > Duration::from_secs(50))
        }
        SlotGrant::Granted => panic!("the 11th stream must be refused"),
    }
    assert_eq!(
        slots
            .acquire(UserId::new(), "other", 10, TTL, None)
            .await
            .unwrap(),
        SlotGrant::Granted,
        "per user"
    );
    slots.release(user, "s3").await.unwrap();
    slots.release(user, "s3").await.unwrap();
    assert_eq!(
        slots.acquire(user, "s10", 10, TTL, None).await.unwrap(),
        SlotGrant::Granted
    );
}

pub async fn concurrent_acquires_never_exceed_the_limit(slots: Arc<dyn StreamSlots>) {
    let user = UserId::new();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = slots.clone();
            tokio::spawn(async move {
                s.acquire(user, &format!("c{i}"), 10, TTL, None)
                    .await
                    .unwrap()
                    == SlotGrant::Granted
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap());
    }
    assert_eq!(granted, 10);
}

pub async fn unrenewed_leases_lapse(slots: Arc<dyn StreamSlots>) {
    let user = UserId::new();
    let short = Duration::from_millis(50);
    assert_eq!(
        slots.acquire(user, "a", 1, short, None).await.unwrap(),
        SlotGrant::Granted
    );
    assert!(matches!(
        slots.acquire(user, "b", 1, short, None).await.unwrap(),
        SlotGrant::Full { .. }
    ));
    // Nothing renews "a" (its replica died): it lapses after its ttl.
    tokio::time::sleep(short + Duration::from_millis(30)).await;
    assert_eq!(
        slots.acquire(user, "b", 1, TTL, None).await.unwrap(),
        SlotGrant::Granted
    );
    assert!(
        !slots.renew(user, "a", TTL, 0).await.unwrap(),
        "a lapsed lease cannot be renewed"
    );
    assert!(slots.renew(user, "b", TTL, 0).await.unwrap());
}

pub async fn a_resuming_client_takes_over_its_own_previous_stream(slots: Arc<dyn StreamSlots>) {
    let user = UserId::new();
    for i in 0..10 {
        assert_eq!(
            slots
                .acquire(user, &format!("s{i}"), 10, TTL, None)
                .await
                .unwrap(),
            SlotGrant::Granted
        );
    }
    // Nine live streams have delivered up to t=2000; s4 (the vanished one) stopped at 1000.
    for i in 0..10 {
        let last = if i == 4 { 1000 } else { 2000 };
        assert!(
            slots
                .renew(user, &format!("s{i}"), TTL, last)
                .await
                .unwrap()
        );
    }
    assert!(
        matches!(
            slots
                .acquire(user, "new", 10, TTL, Some(999))
                .await
                .unwrap(),
            SlotGrant::Full { .. }
        ),
        "an id older than every stream takes nothing"
    );
    assert_eq!(
        slots
            .acquire(user, "new", 10, TTL, Some(1000))
            .await
            .unwrap(),
        SlotGrant::Granted
    );
    assert!(
        !slots.renew(user, "s4", TTL, 1000).await.unwrap(),
        "the old stream learns it was replaced"
    );
    assert!(slots.renew(user, "s5", TTL, 2000).await.unwrap());
}

macro_rules! for_each_slots {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $test() { super::$test(super::memory()).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $test() { super::$test(super::redis().await).await })*
        }
    };
}

for_each_slots!(
    the_limit_holds_and_a_release_frees_a_slot,
    concurrent_acquires_never_exceed_the_limit,
    unrenewed_leases_lapse,
    a_resuming_client_takes_over_its_own_previous_stream,
);
