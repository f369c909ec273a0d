//! The event-bus behaviour suite, run against the in-process and Redis adapters.

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::bus::{MemoryBus, RedisBus};
use panoptes_shared::ids::{DeviceId, TaskId, UserId};
use panoptes_shared::ports::bus::REPLAY_MIN_EVENTS;
use panoptes_shared::ports::{BusEvent, EventBus, Offset, Publication, Subscription};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(5);

async fn redis_bus() -> RedisBus {
    let client = ::redis::Client::open(crate::backends::redis_url()).expect("redis url");
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .expect("Redis must be running for these tests");
    RedisBus::connect(client, conn, format!("panoptes-test:{}", Uuid::new_v4()))
        .await
        .expect("bus connects")
}

async fn redis() -> Arc<dyn EventBus> {
    Arc::new(redis_bus().await)
}

fn memory() -> Arc<dyn EventBus> {
    Arc::new(MemoryBus::new())
}

fn publication(user: UserId, device: DeviceId, n: usize) -> Publication {
    Publication {
        user,
        device,
        task: TaskId::new(),
        data: format!("{{\"n\":{n}}}"),
    }
}

async fn next(sub: &mut Subscription) -> Option<BusEvent> {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an event or the end of the subscription within 5 s")
}

pub async fn published_events_are_delivered_live_and_replayed_in_order(bus: Arc<dyn EventBus>) {
    let (user, device) = (UserId::new(), DeviceId::new());
    let mut sub = bus.subscribe(user).await.unwrap();
    let mut published = Vec::new();
    for n in 0..5 {
        published.push(bus.publish(&publication(user, device, n)).await.unwrap());
    }
    for p in &published {
        assert_eq!(next(&mut sub).await.as_ref(), Some(p));
    }
    assert!(
        published.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets increase"
    );
    let replayed = bus.replay_after(user, Offset::START, 100).await.unwrap();
    assert_eq!(replayed, published);
    let tail = bus
        .replay_after(user, published[2].offset, 100)
        .await
        .unwrap();
    assert_eq!(tail, published[3..]);
    assert_eq!(
        bus.replay_after(user, Offset::START, 2).await.unwrap(),
        published[..2]
    );
}

pub async fn users_only_see_their_own_events(bus: Arc<dyn EventBus>) {
    let (alice, bob) = (UserId::new(), UserId::new());
    let mut bob_sub = bus.subscribe(bob).await.unwrap();
    bus.publish(&publication(alice, DeviceId::new(), 1))
        .await
        .unwrap();
    let mine = bus
        .publish(&publication(bob, DeviceId::new(), 2))
        .await
        .unwrap();
    assert_eq!(
        next(&mut bob_sub).await,
        Some(mine.clone()),
        "alice's event never reaches bob"
    );
    assert_eq!(
        bus.replay_after(bob, Offset::START, 10).await.unwrap(),
        vec![mine]
    );
}

pub async fn subscribe_then_replay_leaves_no_gap(bus: Arc<dyn EventBus>) {
    let (user, device) = (UserId::new(), DeviceId::new());
    let before: Vec<_> = futures_publish(&bus, user, device, 0..3).await;
    let mut sub = bus.subscribe(user).await.unwrap();
    let after: Vec<_> = futures_publish(&bus, user, device, 3..6).await;
    // What a resuming stream does: replay, then live events beyond the replay.
    let replayed = bus.replay_after(user, before[0].offset, 100).await.unwrap();
    let last = replayed.last().unwrap().offset;
    let mut seen: Vec<BusEvent> = replayed;
    while seen.len() < 5 {
        let e = next(&mut sub).await.unwrap();
        if e.offset > last {
            seen.push(e);
        }
    }
    assert_eq!(seen, [&before[1..], &after[..]].concat());
}

async fn futures_publish(
    bus: &Arc<dyn EventBus>,
    user: UserId,
    device: DeviceId,
    range: std::ops::Range<usize>,
) -> Vec<BusEvent> {
    let mut out = Vec::new();
    for n in range {
        out.push(bus.publish(&publication(user, device, n)).await.unwrap());
        // Let consumers on this (single-threaded) test runtime run, as they would on their own threads.
        tokio::task::yield_now().await;
    }
    out
}

pub async fn last_event_ids_resolve_to_resume_points(bus: Arc<dyn EventBus>) {
    let (user, device) = (UserId::new(), DeviceId::new());
    let events = futures_publish(&bus, user, device, 0..4).await;
    let point = bus
        .resolve(user, &events[1].event_id())
        .await
        .unwrap()
        .unwrap();
    assert!(point.exact);
    assert_eq!(
        bus.replay_after(user, point.after, 10).await.unwrap(),
        events[2..]
    );
    let unknown = bus
        .resolve(
            user,
            &format!("{}-{}", Uuid::new_v4(), events[3].offset.ms + 1),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!unknown.exact);
    assert!(
        bus.replay_after(user, unknown.after, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(bus.resolve(user, "not-an-event-id").await.unwrap(), None);
    assert_eq!(
        bus.resolve(user, "task-uuid-1738000000000").await.unwrap(),
        None
    );
}

pub async fn a_subscriber_that_stops_reading_is_ended_not_buffered(bus: Arc<dyn EventBus>) {
    let (user, device) = (UserId::new(), DeviceId::new());
    let mut slow = bus.subscribe(user).await.unwrap();
    let mut fast = bus.subscribe(user).await.unwrap();
    let total = 1100;
    // The fast consumer reads as events come.
    let reader = tokio::spawn(async move {
        let mut seen = 0;
        while seen < total {
            match tokio::time::timeout(WAIT, fast.next()).await {
                Ok(Some(_)) => seen += 1,
                _ => break,
            }
        }
        seen
    });
    futures_publish(&bus, user, device, 0..total).await;
    assert_eq!(
        reader.await.unwrap(),
        total,
        "the fast subscriber received everything"
    );
    let mut drained = 0;
    while next(&mut slow).await.is_some() {
        drained += 1;
    }
    assert!(
        drained < total,
        "the slow subscription ended instead of growing ({drained} queued)"
    );
}

pub async fn the_buffer_keeps_at_least_the_minimum_events(bus: Arc<dyn EventBus>) {
    let (user, device) = (UserId::new(), DeviceId::new());
    let n = REPLAY_MIN_EVENTS + 50;
    futures_publish(&bus, user, device, 0..n).await;
    // All are younger than the minimum age, so none may be trimmed.
    assert_eq!(
        bus.replay_after(user, Offset::START, 10_000)
            .await
            .unwrap()
            .len(),
        n
    );
}

macro_rules! for_each_bus {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $test() { super::$test(super::memory()).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $test() { super::$test(super::redis().await).await })*
        }
    };
}

for_each_bus!(
    published_events_are_delivered_live_and_replayed_in_order,
    users_only_see_their_own_events,
    subscribe_then_replay_leaves_no_gap,
    last_event_ids_resolve_to_resume_points,
    a_subscriber_that_stops_reading_is_ended_not_buffered,
    the_buffer_keeps_at_least_the_minimum_events,
);

#[tokio::test]
async fn redis_trims_only_events_beyond_the_minimum_count_and_older_than_the_minimum_age() {
    let url = crate::backends::redis_url();
    let client = ::redis::Client::open(url.as_str()).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .unwrap();
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let bus: Arc<dyn EventBus> = Arc::new(
        RedisBus::connect(client, conn, prefix)
            .await
            .unwrap()
            .with_replay_min_age_ms(0),
    );
    let (user, device) = (UserId::new(), DeviceId::new());
    let n = REPLAY_MIN_EVENTS + 50;
    let sent = futures_publish(&bus, user, device, 0..n).await;
    let kept = bus.replay_after(user, Offset::START, 10_000).await.unwrap();
    // Nothing is young enough to be protected: exactly the newest minimum remain, in order.
    assert_eq!(kept.len(), REPLAY_MIN_EVENTS);
    let kept: Vec<_> = kept.iter().map(|e| e.offset).collect();
    let newest: Vec<_> = sent[50..].iter().map(|e| e.offset).collect();
    assert_eq!(kept, newest);
}

#[tokio::test]
async fn redis_subscriptions_end_when_the_connection_drops_and_the_bus_recovers() {
    // A bus that logs in as its own ACL user, so killing its connections cannot
    // disturb the other tests running against the same server.
    let admin_client = ::redis::Client::open(crate::backends::redis_url()).unwrap();
    let mut admin = admin_client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let name = format!("panoptes-test-{}", Uuid::new_v4().simple());
    let _: () = ::redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&name)
        .arg("on")
        .arg("nopass")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query_async(&mut admin)
        .await
        .unwrap();
    let url = crate::backends::redis_url();
    let host = url
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .unwrap()
        .to_owned();
    let client = ::redis::Client::open(format!("redis://{name}:x@{host}")).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .unwrap();
    let bus = RedisBus::connect(client, conn, format!("panoptes-test:{}", Uuid::new_v4()))
        .await
        .unwrap();

    let (user, device) = (UserId::new(), DeviceId::new());
    let mut sub = bus.subscribe(user).await.unwrap();
    let _: i64 = ::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg(&name)
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        next(&mut sub).await,
        None,
        "the subscription ends: its consumer must resume by offset"
    );
    bus.wait_connected(WAIT)
        .await
        .expect("the reader reconnects");
    let mut again = bus.subscribe(user).await.unwrap();
    let e = bus.publish(&publication(user, device, 1)).await.unwrap();
    assert_eq!(next(&mut again).await, Some(e));
    let _: i64 = ::redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&name)
        .query_async(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn dropping_the_last_redis_subscription_unsubscribes() {
    let bus = redis_bus().await;
    let user = UserId::new();
    let channel_subscribers = || async {
        let client = ::redis::Client::open(crate::backends::redis_url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let channels: Vec<String> = ::redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(format!("*{user}*"))
            .query_async(&mut c)
            .await
            .unwrap();
        channels.len()
    };
    let a = bus.subscribe(user).await.unwrap();
    let b = bus.subscribe(user).await.unwrap();
    assert_eq!(
        channel_subscribers().await,
        1,
        "one Redis subscription per user per process"
    );
    drop(a);
    assert_eq!(channel_subscribers().await, 1);
    drop(b);
    // The UNSUBSCRIBE is sent by a task: wait for it with a bound, no sleeping.
    let deadline = tokio::time::Instant::now() + WAIT;
    while channel_subscribers().await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still subscribed after 5 s"
        );
        tokio::task::yield_now().await;
    }
}
