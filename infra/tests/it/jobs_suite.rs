//! The frame-job queue's behaviour, on the in-process adapter and on Redis
//! streams: handed out once, reclaimed after a dead consumer's claim lapses,
//! dead-lettered when it keeps failing, dropped when stale, bounded, and a
//! waiting pull wakes when a job arrives.

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::jobs::{MemoryJobQueue, RedisJobQueue};
use panoptes_shared::ids::{DeviceId, JobId, SceneId, TaskId, UserId};
use panoptes_shared::ports::jobs::{Claimed, FrameJob, JobQueue, QueuePolicy, now_ms};
use uuid::Uuid;

/// A queue under test, made with a policy.
type Made = std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn JobQueue>>>>;
type Factory = fn(QueuePolicy) -> Made;

fn memory(policy: QueuePolicy) -> Made {
    Box::pin(async move { Arc::new(MemoryJobQueue::new(policy)) as Arc<dyn JobQueue> })
}

fn redis(policy: QueuePolicy) -> Made {
    Box::pin(async move {
        let client = ::redis::Client::open(crate::backends::redis_url()).expect("redis url");
        let conn =
            panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
                .await
                .expect("Redis must be running for these tests");
        let prefix = format!("panoptes-test:{}", Uuid::new_v4());
        Arc::new(
            RedisJobQueue::connect(&client, conn, prefix, policy)
                .await
                .expect("queue connects"),
        ) as Arc<dyn JobQueue>
    })
}

fn policy() -> QueuePolicy {
    QueuePolicy {
        shards: 3,
        max_len: 1000,
        visibility: Duration::from_millis(200),
        max_attempts: 3,
        max_age: Duration::from_secs(60),
    }
}

fn job(device: DeviceId, captured_at_ms: u64) -> FrameJob {
    FrameJob {
        id: JobId::new(),
        user: UserId::new(),
        device,
        scene: SceneId::new(),
        task: TaskId::new(),
        captured_at_ms,
        jpeg: vec![0xff, 0xd8, 0x00, 0x01, 0xff, 0xd9],
        traceparent: Some(panoptes_shared::telemetry::TraceParent::random().to_string()),
        attributes: false,
    }
}

/// Pull until `n` jobs arrived or 5 s passed (each pull waits for work itself).
async fn pull_n(q: &Arc<dyn JobQueue>, consumer: &str, n: usize) -> Vec<Claimed> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < n && tokio::time::Instant::now() < deadline {
        got.extend(
            q.pull(consumer, n - got.len(), Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    got
}

async fn a_job_is_handed_out_once_and_forgotten_when_acknowledged(make: Factory) {
    let q = make(policy()).await;
    let mut jobs: Vec<_> = (0..5).map(|_| job(DeviceId::new(), now_ms())).collect();
    // A job enqueued before jobs carried a traceparent.
    jobs[0].traceparent = None;
    // One whose people are to be described.
    jobs[1].attributes = true;
    for j in &jobs {
        q.enqueue(j).await.unwrap();
    }
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.waiting, stats.pending), (5, 0));
    let got = pull_n(&q, "a", 5).await;
    let mut ids: Vec<_> = got.iter().map(|c| c.job.id).collect();
    let mut want: Vec<_> = jobs.iter().map(|j| j.id).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    for c in &got {
        let original = jobs.iter().find(|j| j.id == c.job.id).unwrap();
        assert_eq!(
            &c.job, original,
            "every field (the traceparent or its absence too) and the JPEG bytes survive"
        );
    }
    assert!(got.iter().all(|c| c.attempts == 1));
    assert!(
        q.pull("b", 10, Duration::ZERO).await.unwrap().is_empty(),
        "claimed jobs are not handed out twice"
    );
    assert_eq!(q.stats().await.unwrap().pending, 5);
    for c in &got {
        q.ack(&c.receipt).await.unwrap();
    }
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.waiting, stats.pending, stats.oldest_age_ms),
        (0, 0, None)
    );
}

async fn a_dead_consumers_job_is_reclaimed_once_by_another(make: Factory) {
    let q = make(policy()).await;
    let j = job(DeviceId::new(), now_ms());
    q.enqueue(&j).await.unwrap();
    let first = pull_n(&q, "doomed", 1).await;
    assert_eq!(first.len(), 1);
    // "doomed" never acknowledges. Before the claim lapses nobody else gets it.
    assert!(q.pull("b", 10, Duration::ZERO).await.unwrap().is_empty());
    let again = pull_n(&q, "b", 1).await;
    assert_eq!(again.len(), 1, "reclaimed after the visibility timeout");
    assert_eq!((again[0].job.id, again[0].attempts), (j.id, 2));
    q.ack(&again[0].receipt).await.unwrap();
    // The dead consumer's late acknowledgement is harmless; nothing is left.
    q.ack(&first[0].receipt).await.unwrap();
    assert!(
        q.pull("c", 10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(q.stats().await.unwrap().pending, 0);
}

async fn a_job_that_keeps_failing_goes_to_the_dead_letters(make: Factory) {
    let q = make(QueuePolicy {
        max_attempts: 2,
        ..policy()
    })
    .await;
    let j = job(DeviceId::new(), now_ms());
    q.enqueue(&j).await.unwrap();
    let one = pull_n(&q, "a", 1).await;
    q.fail(&one[0], "decode error").await.unwrap();
    assert!(
        q.dead_letters(10).await.unwrap().is_empty(),
        "one failure is retried"
    );
    let two = pull_n(&q, "a", 1).await;
    assert_eq!((two[0].job.id, two[0].attempts), (j.id, 2));
    q.fail(&two[0], "decode error: bad marker").await.unwrap();
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].job_id,
            dead[0].device,
            dead[0].attempts,
            dead[0].error.as_str()
        ),
        (j.id, j.device, 2, "decode error: bad marker")
    );
    assert!(
        q.pull("a", 10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.waiting, stats.dead_letters),
        (0, 0, 1)
    );
}

async fn a_claim_that_lapses_on_its_last_attempt_is_dead_lettered(make: Factory) {
    let q = make(QueuePolicy {
        max_attempts: 1,
        ..policy()
    })
    .await;
    let j = job(DeviceId::new(), now_ms());
    q.enqueue(&j).await.unwrap();
    assert_eq!(pull_n(&q, "doomed", 1).await.len(), 1);
    // Nobody acknowledges; after the claim lapses it is not handed out again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while q.dead_letters(1).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "not dead-lettered");
        assert!(
            q.pull("b", 1, Duration::from_millis(100))
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(q.dead_letters(1).await.unwrap()[0].job_id, j.id);
}

async fn stale_frames_are_dropped_and_counted(make: Factory) {
    let q = make(QueuePolicy {
        max_age: Duration::from_secs(5),
        ..policy()
    })
    .await;
    let device = DeviceId::new();
    let (old, fresh) = (job(device, now_ms() - 60_000), job(device, now_ms()));
    q.enqueue(&old).await.unwrap();
    q.enqueue(&fresh).await.unwrap();
    let got = pull_n(&q, "a", 1).await;
    assert!(q.pull("a", 10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(
        got.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        vec![fresh.id]
    );
    assert_eq!(q.stats().await.unwrap().dropped_stale, 1);
}

async fn the_queue_keeps_only_the_newest_max_len_jobs(make: Factory) {
    let q = make(QueuePolicy {
        shards: 1,
        max_len: 10,
        ..policy()
    })
    .await;
    let device = DeviceId::new();
    let jobs: Vec<_> = (0..15).map(|_| job(device, now_ms())).collect();
    for j in &jobs {
        q.enqueue(j).await.unwrap();
    }
    assert_eq!(q.stats().await.unwrap().waiting, 10);
    let got = pull_n(&q, "a", 10).await;
    assert!(q.pull("a", 10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(
        got.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        jobs[5..].iter().map(|j| j.id).collect::<Vec<_>>(),
        "the oldest were trimmed; one device's frames come in order"
    );
}

async fn a_waiting_pull_wakes_when_a_job_arrives(make: Factory) {
    let q = make(policy()).await;
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let got = q.pull("a", 10, Duration::from_secs(10)).await.unwrap();
            (got, started.elapsed())
        })
    };
    // Give the pull a moment to start waiting, then enqueue.
    tokio::task::yield_now().await;
    let j = job(DeviceId::new(), now_ms());
    q.enqueue(&j).await.unwrap();
    let (got, took) = waiter.await.unwrap();
    assert_eq!(got.iter().map(|c| c.job.id).collect::<Vec<_>>(), vec![j.id]);
    assert!(
        took < Duration::from_secs(5),
        "woke on arrival, not at the end of the wait ({took:?})"
    );
}

/// An entry written to the Redis stream before jobs carried a traceparent
/// (no `tp` field) is still handed out, without one.
#[tokio::test]
async fn a_redis_job_from_before_traceparents_is_still_handed_out() {
    let client = ::redis::Client::open(crate::backends::redis_url()).expect("redis url");
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .expect("Redis must be running for these tests");
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let policy = QueuePolicy {
        shards: 1,
        ..policy()
    };
    let q = RedisJobQueue::connect(&client, conn, prefix.clone(), policy)
        .await
        .unwrap();
    let j = FrameJob {
        attributes: true,
        ..job(DeviceId::new(), now_ms())
    };
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    ::redis::cmd("XADD")
        .arg(panoptes_infra::redis_keys::frame_jobs(&prefix, 0))
        .arg("*")
        .arg("i")
        .arg(j.id.to_string())
        .arg("u")
        .arg(j.user.to_string())
        .arg("d")
        .arg(j.device.to_string())
        .arg("s")
        .arg(j.scene.to_string())
        .arg("t")
        .arg(j.task.to_string())
        .arg("c")
        .arg(j.captured_at_ms)
        .arg("j")
        .arg(&j.jpeg)
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    let got = q.pull("a", 1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].job,
        FrameJob {
            traceparent: None,
            attributes: false,
            ..j
        }
    );
}

macro_rules! for_each_queue {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $test() { super::$test(super::memory).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $test() { super::$test(super::redis).await })*
        }
    };
}

for_each_queue!(
    a_job_is_handed_out_once_and_forgotten_when_acknowledged,
    a_dead_consumers_job_is_reclaimed_once_by_another,
    a_job_that_keeps_failing_goes_to_the_dead_letters,
    a_claim_that_lapses_on_its_last_attempt_is_dead_lettered,
    stale_frames_are_dropped_and_counted,
    the_queue_keeps_only_the_newest_max_len_jobs,
    a_waiting_pull_wakes_when_a_job_arrives,
);
