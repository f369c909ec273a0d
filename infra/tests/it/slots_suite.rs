//! The stream-slot behaviour suite, run against the in-process and Redis
//! adapters. Each test gets two handles on the same slots: for Redis two
//! adapters with their own connections (two replicas), for memory the same
//! adapter twice.

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::slots::{MemorySlots, RedisSlots};
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::{SlotGrant, StreamSlots};

const TTL: Duration = Duration::from_secs(60);
const GRANTED: SlotGrant = SlotGrant::Granted { replaced: false };
const REPLACED: SlotGrant = SlotGrant::Granted { replaced: true };

type Replicas = (Arc<dyn StreamSlots>, Arc<dyn StreamSlots>);

async fn redis_adapter(prefix: &str) -> Arc<dyn StreamSlots> {
    let client = ::redis::Client::open(crate::backends::redis_url()).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .expect("Redis must be running for these tests");
    Arc::new(
        RedisSlots::connect(client, conn, prefix)
            .await
            .expect("the takeover listener subscribes"),
    )
}

async fn redis() -> Replicas {
    let prefix = format!("panoptes-test:{}", uuid::Uuid::new_v4());
    (redis_adapter(&prefix).await, redis_adapter(&prefix).await)
}

fn memory() -> Replicas {
    let slots: Arc<dyn StreamSlots> = Arc::new(MemorySlots::new());
    (slots.clone(), slots)
}

/// Fill `user`'s ten slots with leases `s0`..`s9`.
async fn fill(slots: &dyn StreamSlots, user: UserId) {
    for i in 0..10 {
        let lease = format!("s{i}");
        assert_eq!(
            slots.acquire(user, &lease, 10, TTL, None).await.unwrap(),
            GRANTED
        );
    }
}

async fn is_full(slots: &dyn StreamSlots, user: UserId) -> bool {
    let probe = uuid::Uuid::new_v4().to_string();
    match slots.acquire(user, &probe, 10, TTL, None).await.unwrap() {
        SlotGrant::Full { .. } => true,
        _ => {
            slots.release(user, &probe).await.unwrap();
            false
        }
    }
}

pub async fn the_limit_holds_and_a_release_frees_a_slot((slots, _): Replicas) {
    let user = UserId::new();
    fill(slots.as_ref(), user).await;
    match slots.acquire(user, "s10", 10, TTL, None).await.unwrap() {
        SlotGrant::Full { retry_after } => {
            assert!(retry_after <= TTL && retry_after > Duration::from_secs(50))
        }
        other => panic!("the 11th stream must be refused, got {other:?}"),
    }
    assert_eq!(
        slots
            .acquire(UserId::new(), "other", 10, TTL, None)
            .await
            .unwrap(),
        GRANTED,
        "per user"
    );
    slots.release(user, "s3").await.unwrap();
    slots.release(user, "s3").await.unwrap();
    assert_eq!(
        slots.acquire(user, "s10", 10, TTL, None).await.unwrap(),
        GRANTED
    );
    assert_eq!(
        slots.acquire(user, "s10", 10, TTL, None).await.unwrap(),
        GRANTED,
        "acquiring a held lease again renews it and takes nothing more"
    );
}

pub async fn concurrent_acquires_never_exceed_the_limit((a, b): Replicas) {
    let user = UserId::new();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                s.acquire(user, &format!("c{i}"), 10, TTL, None)
                    .await
                    .unwrap()
                    == GRANTED
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap());
    }
    assert_eq!(granted, 10);
}

pub async fn unrenewed_leases_lapse((slots, _): Replicas) {
    let user = UserId::new();
    let short = Duration::from_millis(50);
    assert_eq!(
        slots.acquire(user, "a", 1, short, None).await.unwrap(),
        GRANTED
    );
    assert!(matches!(
        slots.acquire(user, "b", 1, short, None).await.unwrap(),
        SlotGrant::Full { .. }
    ));
    // Nothing renews "a" (its replica died): it lapses after its ttl.
    tokio::time::sleep(short + Duration::from_millis(30)).await;
    assert_eq!(
        slots.acquire(user, "b", 1, TTL, None).await.unwrap(),
        GRANTED
    );
    assert!(
        !slots.renew(user, "a", TTL).await.unwrap(),
        "a lapsed lease cannot be renewed"
    );
    assert!(slots.renew(user, "b", TTL).await.unwrap());
}

pub async fn only_the_named_lease_is_replaced_and_only_once((a, b): Replicas) {
    let (user, other) = (UserId::new(), UserId::new());
    fill(a.as_ref(), user).await;
    fill(a.as_ref(), other).await;
    for unknown in ["nope", "new"] {
        assert!(
            matches!(
                b.acquire(user, "new", 10, TTL, Some(unknown))
                    .await
                    .unwrap(),
                SlotGrant::Full { .. }
            ),
            "naming a lease that is not held takes nothing ({unknown})"
        );
    }
    assert_eq!(
        b.acquire(user, "new", 10, TTL, Some("s4")).await.unwrap(),
        REPLACED,
        "the client's own previous stream makes room, on any replica"
    );
    assert!(
        !a.renew(user, "s4", TTL).await.unwrap(),
        "the old stream learns it was replaced"
    );
    assert!(a.renew(user, "s5", TTL).await.unwrap());
    assert!(
        matches!(
            b.acquire(user, "again", 10, TTL, Some("s4")).await.unwrap(),
            SlotGrant::Full { .. }
        ),
        "a lease is replaced once"
    );
    assert!(is_full(a.as_ref(), user).await);
    assert!(
        is_full(a.as_ref(), other).await,
        "another user's lease of the same name was not touched"
    );
    // Below the limit the named lease is replaced too, so the count stays right.
    a.release(user, "s0").await.unwrap();
    assert_eq!(
        a.acquire(user, "newer", 10, TTL, Some("new"))
            .await
            .unwrap(),
        REPLACED
    );
    assert!(!a.renew(user, "new", TTL).await.unwrap());
    assert_eq!(a.acquire(user, "s0", 10, TTL, None).await.unwrap(), GRANTED);
    assert!(is_full(a.as_ref(), user).await);
}

pub async fn concurrent_takeovers_with_one_lease_replace_it_once((a, b): Replicas) {
    let user = UserId::new();
    fill(a.as_ref(), user).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                s.acquire(user, &format!("t{i}"), 10, TTL, Some("s0"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut grants = Vec::new();
    for t in tasks {
        grants.push(t.await.unwrap());
    }
    assert_eq!(grants.iter().filter(|g| **g == REPLACED).count(), 1);
    assert!(
        grants
            .iter()
            .all(|g| *g == REPLACED || matches!(g, SlotGrant::Full { .. })),
        "{grants:?}"
    );
    assert!(is_full(b.as_ref(), user).await);
}

pub async fn a_takeover_is_told_to_the_replica_serving_the_old_stream((a, b): Replicas) {
    let user = UserId::new();
    fill(a.as_ref(), user).await;
    let mut replaced = a.watch(user, "s4");
    let mut kept = a.watch(user, "s5");
    assert_eq!(
        b.acquire(user, "new", 10, TTL, Some("s4")).await.unwrap(),
        REPLACED
    );
    tokio::time::timeout(Duration::from_secs(5), replaced.wait())
        .await
        .expect("the replaced stream's watch fires");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), kept.wait())
            .await
            .is_err(),
        "the other streams are not told anything"
    );
}

pub async fn an_abandoned_lease_is_never_held_whichever_arrives_first((a, b): Replicas) {
    let user = UserId::new();
    // The acquire ran before the abandon: the abandon gives the slot back.
    assert_eq!(
        a.acquire(user, "late", 1, TTL, None).await.unwrap(),
        GRANTED
    );
    b.abandon(user, "late", TTL).await.unwrap();
    assert!(!a.renew(user, "late", TTL).await.unwrap());
    // The abandon ran first: the acquire that arrives afterwards takes nothing.
    b.abandon(user, "later", TTL).await.unwrap();
    b.abandon(user, "later", TTL).await.unwrap();
    assert_eq!(
        a.acquire(user, "later", 1, TTL, None).await.unwrap(),
        SlotGrant::Abandoned
    );
    assert!(!a.renew(user, "later", TTL).await.unwrap());
    assert_eq!(
        a.acquire(user, "fresh", 1, TTL, None).await.unwrap(),
        GRANTED,
        "the one slot is free"
    );
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
    only_the_named_lease_is_replaced_and_only_once,
    concurrent_takeovers_with_one_lease_replace_it_once,
    a_takeover_is_told_to_the_replica_serving_the_old_stream,
    an_abandoned_lease_is_never_held_whichever_arrives_first,
);
