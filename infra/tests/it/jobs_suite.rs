//! The job queue's behaviour, for each job type (frame jobs, insight jobs)
//! on the in-process adapter and on Redis streams: handed out once,
//! reclaimed after a dead consumer's claim lapses, dead-lettered when it
//! keeps failing, dropped when stale, bounded, and a waiting pull wakes when
//! a job arrives. Then what is Redis's own: the entry fields of each job type
//! (entries from before a field existed included), and that the two queues
//! under one prefix never see each other's jobs.

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::jobs::{JobStreams, MemoryJobQueue, RedisJobQueue};
use panoptes_shared::ids::{DeviceId, InsightId, JobId, SceneId, TaskId, UserId};
use panoptes_shared::ports::jobs::{
    Claimed, FrameJob, InsightJob, JobQueue, QueueJob, QueuePolicy, now_ms,
};
use uuid::Uuid;

/// A job type under test.
trait TestJob: QueueJob + PartialEq {
    /// Its queue on Redis.
    const STREAMS: JobStreams;
    /// A job of `device` made at `created_at_ms`, with a traceparent.
    fn sample(device: DeviceId, created_at_ms: u64) -> Self;
    /// The same job as made by a producer without a trace.
    fn without_traceparent(self) -> Self;
}

impl TestJob for FrameJob {
    const STREAMS: JobStreams = JobStreams::FRAMES;

    fn sample(device: DeviceId, captured_at_ms: u64) -> Self {
        FrameJob {
            id: JobId::new(),
            user: UserId::new(),
            device,
            scene: SceneId::new(),
            task: TaskId::new(),
            captured_at_ms,
            jpeg: vec![0xff, 0xd8, 0x00, 0x01, 0xff, 0xd9],
            traceparent: Some(panoptes_shared::telemetry::TraceParent::random().to_string()),
            // Varies with the device, so both values make the round trip.
            attributes: device.0.as_bytes()[15].is_multiple_of(2),
        }
    }

    fn without_traceparent(self) -> Self {
        FrameJob {
            traceparent: None,
            ..self
        }
    }
}

impl TestJob for InsightJob {
    const STREAMS: JobStreams = JobStreams::INSIGHTS;

    fn sample(device: DeviceId, enqueued_at_ms: u64) -> Self {
        let insight = InsightId::new();
        InsightJob {
            id: JobId(insight.0),
            user: UserId::new(),
            device,
            insight,
            enqueued_at_ms,
            traceparent: Some(panoptes_shared::telemetry::TraceParent::random().to_string()),
        }
    }

    fn without_traceparent(self) -> Self {
        InsightJob {
            traceparent: None,
            ..self
        }
    }
}

/// A queue under test, made with a policy.
type Made<J> = std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn JobQueue<J>>>>>;
type Factory<J> = fn(QueuePolicy) -> Made<J>;

fn memory<J: TestJob>(policy: QueuePolicy) -> Made<J> {
    Box::pin(async move { Arc::new(MemoryJobQueue::<J>::new(policy)) as Arc<dyn JobQueue<J>> })
}

fn redis<J: TestJob>(policy: QueuePolicy) -> Made<J> {
    Box::pin(async move {
        let (client, conn) = redis_connection().await;
        let prefix = format!("panoptes-test:{}", Uuid::new_v4());
        Arc::new(
            RedisJobQueue::<J>::connect_to(&client, conn, prefix, J::STREAMS, policy)
                .await
                .expect("queue connects"),
        ) as Arc<dyn JobQueue<J>>
    })
}

async fn redis_connection() -> (::redis::Client, panoptes_infra::redis_conn::RedisConn) {
    let client = ::redis::Client::open(crate::backends::redis_url()).expect("redis url");
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .expect("Redis must be running for these tests");
    (client, conn)
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

/// Pull until `n` jobs arrived or 5 s passed (each pull waits for work itself).
async fn pull_n<J: TestJob>(q: &Arc<dyn JobQueue<J>>, consumer: &str, n: usize) -> Vec<Claimed<J>> {
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

async fn a_job_is_handed_out_once_and_forgotten_when_acknowledged<J: TestJob>(make: Factory<J>) {
    let q = make(policy()).await;
    let mut jobs: Vec<J> = (0..5)
        .map(|_| J::sample(DeviceId::new(), now_ms()))
        .collect();
    // A job made without a trace.
    jobs[0] = jobs[0].clone().without_traceparent();
    for j in &jobs {
        q.enqueue(j).await.unwrap();
    }
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.waiting, stats.pending), (5, 0));
    let got = pull_n(&q, "a", 5).await;
    let mut ids: Vec<_> = got.iter().map(|c| c.job.job_id()).collect();
    let mut want: Vec<_> = jobs.iter().map(|j| j.job_id()).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    for c in &got {
        let original = jobs.iter().find(|j| j.job_id() == c.job.job_id()).unwrap();
        assert_eq!(
            &c.job, original,
            "every field (the traceparent or its absence too) and a frame's JPEG bytes survive"
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

async fn a_dead_consumers_job_is_reclaimed_once_by_another<J: TestJob>(make: Factory<J>) {
    let q = make(policy()).await;
    let j = J::sample(DeviceId::new(), now_ms());
    q.enqueue(&j).await.unwrap();
    let first = pull_n(&q, "doomed", 1).await;
    assert_eq!(first.len(), 1);
    // "doomed" never acknowledges. Before the claim lapses nobody else gets it.
    assert!(q.pull("b", 10, Duration::ZERO).await.unwrap().is_empty());
    let again = pull_n(&q, "b", 1).await;
    assert_eq!(again.len(), 1, "reclaimed after the visibility timeout");
    assert_eq!((again[0].job.job_id(), again[0].attempts), (j.job_id(), 2));
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

async fn a_job_that_keeps_failing_goes_to_the_dead_letters<J: TestJob>(make: Factory<J>) {
    let q = make(QueuePolicy {
        max_attempts: 2,
        ..policy()
    })
    .await;
    let j = J::sample(DeviceId::new(), now_ms());
    q.enqueue(&j).await.unwrap();
    let one = pull_n(&q, "a", 1).await;
    q.fail(&one[0], "decode error").await.unwrap();
    assert!(
        q.dead_letters(10).await.unwrap().is_empty(),
        "one failure is retried"
    );
    let two = pull_n(&q, "a", 1).await;
    assert_eq!((two[0].job.job_id(), two[0].attempts), (j.job_id(), 2));
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
        (j.job_id(), j.device(), 2, "decode error: bad marker")
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

async fn a_claim_that_lapses_on_its_last_attempt_is_dead_lettered<J: TestJob>(make: Factory<J>) {
    let q = make(QueuePolicy {
        max_attempts: 1,
        ..policy()
    })
    .await;
    let j = J::sample(DeviceId::new(), now_ms());
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
    assert_eq!(q.dead_letters(1).await.unwrap()[0].job_id, j.job_id());
}

async fn a_late_failure_of_a_lapsed_last_claim_adds_no_second_dead_letter<J: TestJob>(
    make: Factory<J>,
) {
    let q = make(QueuePolicy {
        max_attempts: 1,
        ..policy()
    })
    .await;
    let j = J::sample(DeviceId::new(), now_ms());
    q.enqueue(&j).await.unwrap();
    let slow = pull_n(&q, "slow", 1).await;
    // The claim lapses; the next pull dead-letters the job (out of attempts).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(q.pull("b", 1, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(q.dead_letters(10).await.unwrap().len(), 1);
    // Then the slow worker reports its failure.
    q.fail(&slow[0], "vlm: timed out").await.unwrap();
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(
        dead.iter().map(|d| d.job_id).collect::<Vec<_>>(),
        vec![j.job_id()],
        "one dead letter per job"
    );
    assert_eq!(q.stats().await.unwrap().dead_letters, 1);
}

async fn stale_jobs_are_dropped_and_counted<J: TestJob>(make: Factory<J>) {
    let q = make(QueuePolicy {
        max_age: Duration::from_secs(5),
        ..policy()
    })
    .await;
    let device = DeviceId::new();
    let (old, fresh) = (
        J::sample(device, now_ms() - 60_000),
        J::sample(device, now_ms()),
    );
    q.enqueue(&old).await.unwrap();
    q.enqueue(&fresh).await.unwrap();
    let got = pull_n(&q, "a", 1).await;
    assert!(q.pull("a", 10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(
        got.iter().map(|c| c.job.job_id()).collect::<Vec<_>>(),
        vec![fresh.job_id()]
    );
    assert_eq!(q.stats().await.unwrap().dropped_stale, 1);
}

async fn the_queue_keeps_only_the_newest_max_len_jobs<J: TestJob>(make: Factory<J>) {
    let q = make(QueuePolicy {
        shards: 1,
        max_len: 10,
        ..policy()
    })
    .await;
    let device = DeviceId::new();
    let jobs: Vec<J> = (0..15).map(|_| J::sample(device, now_ms())).collect();
    for j in &jobs {
        q.enqueue(j).await.unwrap();
    }
    assert_eq!(q.stats().await.unwrap().waiting, 10);
    let got = pull_n(&q, "a", 10).await;
    assert!(q.pull("a", 10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(
        got.iter().map(|c| c.job.job_id()).collect::<Vec<_>>(),
        jobs[5..].iter().map(|j| j.job_id()).collect::<Vec<_>>(),
        "the oldest were trimmed; one device's jobs come in order"
    );
}

async fn a_waiting_pull_wakes_when_a_job_arrives<J: TestJob>(make: Factory<J>) {
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
    let j = J::sample(DeviceId::new(), now_ms());
    q.enqueue(&j).await.unwrap();
    let (got, took) = waiter.await.unwrap();
    assert_eq!(
        got.iter().map(|c| c.job.job_id()).collect::<Vec<_>>(),
        vec![j.job_id()]
    );
    assert!(
        took < Duration::from_secs(5),
        "woke on arrival, not at the end of the wait ({took:?})"
    );
}

async fn stats_count_waiting_pending_and_the_oldest_age<J: TestJob>(make: Factory<J>) {
    let q = make(policy()).await;
    let empty = q.stats().await.unwrap();
    assert_eq!(
        (
            empty.waiting,
            empty.pending,
            empty.oldest_age_ms,
            empty.dead_letters
        ),
        (0, 0, None, 0)
    );
    let (old, new) = (
        J::sample(DeviceId::new(), now_ms() - 30_000),
        J::sample(DeviceId::new(), now_ms()),
    );
    q.enqueue(&old).await.unwrap();
    q.enqueue(&new).await.unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.waiting, stats.pending), (2, 0));
    let age = stats.oldest_age_ms.expect("jobs wait");
    assert!((30_000..40_000).contains(&age), "{age}");
    let got = pull_n(&q, "a", 2).await;
    assert_eq!(got.len(), 2);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.waiting, stats.pending), (0, 2));
    assert!(
        stats.oldest_age_ms.unwrap() >= 30_000,
        "claimed jobs count for the oldest age until acknowledged"
    );
}

/// An entry written to the Redis stream before jobs carried a traceparent
/// (no `tp` field) is still handed out, without one.
#[tokio::test]
async fn a_redis_job_from_before_traceparents_and_attributes_is_still_handed_out() {
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
    let j = FrameJob::sample(DeviceId::new(), now_ms());
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

/// An insight job's entry: its fields by name, the traceparent empty when
/// there is none (and absent in an entry written without it), and a job
/// that cannot be read is dead-lettered rather than handed out or retried.
#[tokio::test]
async fn an_insight_job_round_trips_through_its_redis_fields() {
    let (client, conn) = redis_connection().await;
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let q: Arc<dyn JobQueue<InsightJob>> = Arc::new(
        RedisJobQueue::<InsightJob>::connect_to(
            &client,
            conn,
            prefix.clone(),
            JobStreams::INSIGHTS,
            QueuePolicy {
                shards: 1,
                ..policy()
            },
        )
        .await
        .unwrap(),
    );
    let key = panoptes_infra::redis_keys::insight_jobs(&prefix, 0);
    assert_eq!(key, format!("{prefix}:jobs:{{insights}}:0"));
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let traced = InsightJob::sample(DeviceId::new(), now_ms());
    let untraced = InsightJob::sample(DeviceId::new(), now_ms()).without_traceparent();
    for j in [&traced, &untraced] {
        q.enqueue(j).await.unwrap();
    }
    let entries: ::redis::streams::StreamRangeReply = ::redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut raw)
        .await
        .unwrap();
    let text = |i: usize, f: &str| entries.ids[i].get::<String>(f).unwrap();
    assert_eq!(entries.ids.len(), 2);
    assert_eq!(
        text(0, "i"),
        traced.insight.to_string(),
        "the job is named by its insight"
    );
    assert_eq!(text(0, "u"), traced.user.to_string());
    assert_eq!(text(0, "d"), traced.device.to_string());
    assert_eq!(text(0, "n"), traced.insight.to_string());
    assert_eq!(text(0, "c"), traced.enqueued_at_ms.to_string());
    assert_eq!(&text(0, "tp"), traced.traceparent.as_ref().unwrap());
    assert_eq!(text(1, "tp"), "");
    // Written by a producer without the `tp` field, and one missing its insight.
    let bare = InsightJob::sample(DeviceId::new(), now_ms()).without_traceparent();
    let broken = InsightJob::sample(DeviceId::new(), now_ms());
    for (j, with_insight) in [(&bare, true), (&broken, false)] {
        let mut cmd = ::redis::cmd("XADD");
        cmd.arg(&key).arg("*");
        cmd.arg("i").arg(j.id.to_string());
        cmd.arg("u").arg(j.user.to_string());
        cmd.arg("d").arg(j.device.to_string());
        if with_insight {
            cmd.arg("n").arg(j.insight.to_string());
        }
        cmd.arg("c").arg(j.enqueued_at_ms);
        cmd.query_async::<()>(&mut raw).await.unwrap();
    }
    let got = pull_n(&q, "a", 3).await;
    let jobs: Vec<_> = got.iter().map(|c| c.job.clone()).collect();
    assert_eq!(jobs, vec![traced, untraced, bare]);
    assert!(
        q.pull("a", 10, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty()
    );
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error, "unreadable job");
}

/// Frame and insight queues under one prefix are apart: their own streams,
/// consumer groups, dead letters and stats.
#[tokio::test]
async fn frame_and_insight_queues_under_one_prefix_never_meet() {
    let (client, conn) = redis_connection().await;
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let frames: Arc<dyn JobQueue> = Arc::new(
        RedisJobQueue::connect(&client, conn.clone(), prefix.clone(), policy())
            .await
            .unwrap(),
    );
    let insights: Arc<dyn JobQueue<InsightJob>> = Arc::new(
        RedisJobQueue::<InsightJob>::connect_to(
            &client,
            conn,
            prefix.clone(),
            JobStreams::INSIGHTS,
            QueuePolicy {
                max_attempts: 1,
                ..policy()
            },
        )
        .await
        .unwrap(),
    );
    let device = DeviceId::new();
    let frame = FrameJob::sample(device, now_ms());
    let insight = InsightJob::sample(device, now_ms());
    frames.enqueue(&frame).await.unwrap();
    insights.enqueue(&insight).await.unwrap();
    let got = insights
        .pull("notify-1", 2, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|c| c.job.clone()).collect::<Vec<_>>(),
        vec![insight.clone()]
    );
    insights.fail(&got[0], "vlm: timed out").await.unwrap();
    let (f, i) = (
        frames.stats().await.unwrap(),
        insights.stats().await.unwrap(),
    );
    assert_eq!((f.waiting, f.pending, f.dead_letters), (1, 0, 0));
    assert_eq!((i.waiting, i.pending, i.dead_letters), (0, 0, 1));
    assert!(frames.dead_letters(10).await.unwrap().is_empty());
    assert_eq!(
        insights.dead_letters(10).await.unwrap()[0].job_id,
        JobId(insight.insight.0)
    );
    let got = frames
        .pull("detect-1", 2, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|c| c.job.clone()).collect::<Vec<_>>(),
        vec![frame]
    );
}

/// Each behaviour test for each adapter and each job type:
/// `<adapter>::<job>::<test>`.
macro_rules! for_each_queue {
    ($($test:ident),* $(,)?) => {
        for_each_queue!(@adapter memory, $($test),*);
        for_each_queue!(@adapter redis, $($test),*);
    };
    (@adapter $adapter:ident, $($test:ident),*) => {
        mod $adapter {
            mod frames {
                use panoptes_shared::ports::jobs::FrameJob;
                $(#[tokio::test] async fn $test() {
                    crate::jobs_suite::$test::<FrameJob>(crate::jobs_suite::$adapter::<FrameJob>).await
                })*
            }
            mod insights {
                use panoptes_shared::ports::jobs::InsightJob;
                $(#[tokio::test] async fn $test() {
                    crate::jobs_suite::$test::<InsightJob>(crate::jobs_suite::$adapter::<InsightJob>).await
                })*
            }
        }
    };
}

for_each_queue!(
    a_job_is_handed_out_once_and_forgotten_when_acknowledged,
    a_dead_consumers_job_is_reclaimed_once_by_another,
    a_job_that_keeps_failing_goes_to_the_dead_letters,
    a_claim_that_lapses_on_its_last_attempt_is_dead_lettered,
    a_late_failure_of_a_lapsed_last_claim_adds_no_second_dead_letter,
    stale_jobs_are_dropped_and_counted,
    the_queue_keeps_only_the_newest_max_len_jobs,
    a_waiting_pull_wakes_when_a_job_arrives,
    stats_count_waiting_pending_and_the_oldest_age,
);
