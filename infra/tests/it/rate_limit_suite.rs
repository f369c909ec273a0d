//! The rate-limiter behaviour suite, run against the in-process and Redis adapters.

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::rate_limit::{MemoryRateLimiter, RedisRateLimiter};
use panoptes_shared::ports::RateLimiter;

async fn redis() -> Arc<dyn RateLimiter> {
    let client = ::redis::Client::open(crate::backends::redis_url()).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client, Default::default())
        .await
        .expect("Redis must be running for these tests");
    Arc::new(RedisRateLimiter::new(
        conn,
        format!("panoptes-test:{}", uuid::Uuid::new_v4()),
    ))
}

fn memory() -> Arc<dyn RateLimiter> {
    Arc::new(MemoryRateLimiter::new())
}

pub async fn admits_up_to_the_limit_then_refuses_with_reset_time(limiter: Arc<dyn RateLimiter>) {
    let window = Duration::from_secs(60);
    for i in 0..3 {
        let d = limiter.hit("user-a:create", 3, window).await.unwrap();
        assert!(d.allowed, "hit {i}");
        assert_eq!(d.info.remaining, 2 - i);
    }
    let d = limiter.hit("user-a:create", 3, window).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.info.remaining, 0);
    assert!(
        d.info.reset_after <= window && d.info.reset_after > Duration::from_secs(55),
        "{:?}",
        d.info
    );
    assert!(
        limiter
            .hit("user-b:create", 3, window)
            .await
            .unwrap()
            .allowed,
        "keys are independent"
    );
}

pub async fn concurrent_hits_never_exceed_the_limit(limiter: Arc<dyn RateLimiter>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let l = limiter.clone();
            tokio::spawn(async move {
                l.hit("burst", 10, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .allowed
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 10);
}

pub async fn peek_decides_without_counting(limiter: Arc<dyn RateLimiter>) {
    let window = Duration::from_secs(60);
    for _ in 0..5 {
        let d = limiter.peek("fails", 2, window).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.info.remaining, 2, "a peek counts nothing");
    }
    limiter.hit("fails", 2, window).await.unwrap();
    assert_eq!(
        limiter
            .peek("fails", 2, window)
            .await
            .unwrap()
            .info
            .remaining,
        1
    );
    limiter.hit("fails", 2, window).await.unwrap();
    let d = limiter.peek("fails", 2, window).await.unwrap();
    assert!(!d.allowed, "full after two hits");
    assert!(d.info.reset_after > Duration::from_secs(55), "{:?}", d.info);
}

pub async fn ping_answers(limiter: Arc<dyn RateLimiter>) {
    limiter.ping().await.unwrap();
}

macro_rules! for_each_limiter {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $test() { super::$test(super::memory()).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $test() { super::$test(super::redis().await).await })*
        }
    };
}

for_each_limiter!(
    admits_up_to_the_limit_then_refuses_with_reset_time,
    concurrent_hits_never_exceed_the_limit,
    peek_decides_without_counting,
    ping_answers
);
