//! Leases and the node registry, in-process and on Redis: one owner at a
//! time, renewal by the owner, lapse and release; nodes online while they
//! heartbeat, reported offline exactly once when they stop.

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::coord::{MemoryLeases, MemoryNodes, RedisLeases, RedisNodes};
use panoptes_shared::ports::coord::{Leases, NodeInfo, NodeRegistry};
use uuid::Uuid;

type Made =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Arc<dyn Leases>, Arc<dyn NodeRegistry>)>>>;
type Factory = fn() -> Made;

fn memory() -> Made {
    Box::pin(async {
        (
            Arc::new(MemoryLeases::new()) as Arc<dyn Leases>,
            Arc::new(MemoryNodes::new()) as Arc<dyn NodeRegistry>,
        )
    })
}

fn redis() -> Made {
    Box::pin(async {
        let client = ::redis::Client::open(crate::backends::redis_url()).expect("redis url");
        let conn = panoptes_infra::redis_conn::RedisConn::connect(client, Default::default())
            .await
            .expect("Redis must be running for these tests");
        let prefix = format!("panoptes-test:{}", Uuid::new_v4());
        (
            Arc::new(RedisLeases::new(conn.clone(), prefix.clone())) as Arc<dyn Leases>,
            Arc::new(RedisNodes::new(conn, prefix)) as Arc<dyn NodeRegistry>,
        )
    })
}

/// Poll `check` until it holds or `within` passes (TTLs lapse in real time).
async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_lease_has_one_owner_until_it_lapses(make: Factory) {
    let (leases, _) = make().await;
    // Long enough that a stalled CI machine does not lapse it between calls.
    let ttl = Duration::from_millis(1500);
    assert!(leases.acquire("device-1", "a", ttl).await.unwrap());
    assert!(
        !leases.acquire("device-1", "b", ttl).await.unwrap(),
        "held by a"
    );
    assert!(
        leases.acquire("device-1", "a", ttl).await.unwrap(),
        "the owner renews"
    );
    assert!(
        leases.acquire("device-2", "b", ttl).await.unwrap(),
        "other keys are free"
    );
    // a stops renewing: b gets it once the lease lapses.
    assert!(
        eventually(Duration::from_secs(10), || async {
            leases.acquire("device-1", "b", ttl).await.unwrap()
        })
        .await,
        "a lapsed lease is taken over"
    );
    assert!(!leases.acquire("device-1", "a", ttl).await.unwrap());
}

async fn only_the_owner_releases_a_lease(make: Factory) {
    let (leases, _) = make().await;
    let ttl = Duration::from_secs(30);
    assert!(leases.acquire("k", "a", ttl).await.unwrap());
    leases.release("k", "b").await.unwrap();
    assert!(
        !leases.acquire("k", "b", ttl).await.unwrap(),
        "b cannot free a's lease"
    );
    leases.release("k", "a").await.unwrap();
    assert!(
        leases.acquire("k", "b", ttl).await.unwrap(),
        "free once a released it"
    );
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        roles: vec!["detect".into()],
        execution_provider: Some("cpu".into()),
        started_at_ms: 1,
    }
}

async fn a_silent_node_goes_offline_and_is_reported_once(make: Factory) {
    let (_, nodes) = make().await;
    nodes
        .heartbeat(&node("alive"), Duration::from_secs(30))
        .await
        .unwrap();
    nodes
        .heartbeat(&node("dying"), Duration::from_millis(1500))
        .await
        .unwrap();
    let listed = nodes.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|n| n.online));
    assert!(
        nodes.take_offline().await.unwrap().is_empty(),
        "nobody is late yet"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            nodes
                .list()
                .await
                .unwrap()
                .iter()
                .any(|n| n.info.id == "dying" && !n.online)
        })
        .await
    );
    let gone = nodes.take_offline().await.unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].info, node("dying"));
    assert!(!gone[0].online && gone[0].last_seen_ms > 0);
    assert!(
        nodes.take_offline().await.unwrap().is_empty(),
        "reported once"
    );
    let ids: Vec<String> = nodes
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.info.id)
        .collect();
    assert_eq!(ids, vec!["alive".to_string()]);
    // It comes back: registered (and online) again.
    nodes
        .heartbeat(&node("dying"), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        nodes
            .list()
            .await
            .unwrap()
            .iter()
            .filter(|n| n.online)
            .count(),
        2
    );
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $test() { super::$test(super::memory).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $test() { super::$test(super::redis).await })*
        }
    };
}

for_each_backend!(
    a_lease_has_one_owner_until_it_lapses,
    only_the_owner_releases_a_lease,
    a_silent_node_goes_offline_and_is_reported_once,
);
