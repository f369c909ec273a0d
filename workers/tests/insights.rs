//! The insight pipeline on real PostgreSQL, Redis (the insight queue) and
//! an S3 protocol server (the alert's snapshot), asking a chat-completions
//! server on loopback that speaks the OpenAI wire format (structured output
//! included). Alerts fire through the rule evaluator; the insight worker is
//! driven a step at a time.

#[path = "../../infra/tests/it/backends.rs"]
#[allow(dead_code)]
mod backends;
mod common;
#[path = "../../infra/tests/it/test_ca.rs"]
#[allow(dead_code)]
mod test_ca;
#[path = "../../infra/tests/it/vlm_suite/server.rs"]
#[allow(dead_code)]
mod vlm_server;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use panoptes_infra::blobs::{S3Blobs, S3Options};
use panoptes_infra::bus::RedisBus;
use panoptes_infra::coord::RedisLeases;
use panoptes_infra::jobs::{JobStreams, RedisJobQueue};
use panoptes_infra::store::SqlStore;
use panoptes_shared::config::{Config, VlmProviderKind};
use panoptes_shared::domain::alert::{Alert, AlertStatus, StatusChange};
use panoptes_shared::domain::attribute::{AttributeRecord, ColorName, PersonAttributes};
use panoptes_shared::domain::detection::BoundingBox;
use panoptes_shared::domain::device::QuotaLimits;
use panoptes_shared::domain::event::{EventKind, PlatformEvent};
use panoptes_shared::domain::insight::{Insight, VlmStatus};
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::task::{AnalysisTask, Capability, TaskTrigger};
use panoptes_shared::domain::usage::Feature;
use panoptes_shared::ids::{AlertId, AttributeId, DeviceId, SceneId, TaskId, UserId};
use panoptes_shared::ports::jobs::{InsightJob, JobQueue, QueuePolicy};
use panoptes_shared::ports::prelude::*;
use panoptes_shared::ports::{BlobStore, EventBus, InsightFilter, UsageFilter, VlmProvider};
use panoptes_shared::time::now;
use panoptes_workers::metrics::WorkerMetrics;
use panoptes_workers::notify::{
    InsightPorts, InsightSettings, InsightWorker, RuleEvaluator, RulesPorts, RulesSettings,
};
use serde_json::json;
use uuid::Uuid;
use vlm_server::{ChatServer, Reply};

const WAIT: Duration = Duration::from_secs(10);

struct World {
    store: Arc<SqlStore>,
    queue: Arc<dyn JobQueue<InsightJob>>,
    bus: Arc<dyn EventBus>,
    leases: Arc<RedisLeases>,
    blobs: Arc<dyn BlobStore>,
    user: UserId,
    device: DeviceId,
    scene: SceneId,
}

fn insight_policy() -> QueuePolicy {
    QueuePolicy {
        shards: 1,
        max_len: 1_000,
        visibility: Duration::from_secs(30),
        max_attempts: 3,
        max_age: Duration::from_secs(86_400),
    }
}

async fn world() -> World {
    let client = redis::Client::open(backends::redis_url()).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .expect("Redis must be running for these tests");
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let s3 = S3Blobs::connect(S3Options {
        bucket: format!("pi-{}", &Uuid::new_v4().simple().to_string()[..12]),
        region: "us-east-1".into(),
        endpoint: Some(common::env(
            "PANOPTES_TEST_S3_ENDPOINT",
            "http://127.0.0.1:8014",
        )),
        path_style: true,
        access_key: Some(common::env("PANOPTES_TEST_S3_ACCESS_KEY", "panoptes-test")),
        secret_key: Some(common::env("PANOPTES_TEST_S3_SECRET_KEY", "panoptes-test-secret").into()),
    })
    .await
    .unwrap();
    s3.ensure_bucket()
        .await
        .expect("an S3 server must be running for these tests (bash .ci/test.sh starts s3s-fs)");
    let store = backends::postgres().await;
    let (user, device, scene) = common::tenant(&store).await;
    World {
        queue: Arc::new(
            RedisJobQueue::<InsightJob>::connect_to(
                &client,
                conn.clone(),
                prefix.clone(),
                JobStreams::INSIGHTS,
                insight_policy(),
            )
            .await
            .unwrap(),
        ),
        bus: Arc::new(
            RedisBus::connect(client, conn.clone(), prefix.clone())
                .await
                .unwrap(),
        ),
        leases: Arc::new(RedisLeases::new(conn, prefix)),
        blobs: Arc::new(s3),
        store: Arc::new(store),
        user,
        device,
        scene,
    }
}

/// The OpenAI-compatible client aimed at `server`: short timeouts, one retry.
fn provider(server: &ChatServer, timeout_ms: u64) -> Arc<dyn VlmProvider> {
    let mut cfg = Config::default();
    cfg.vlm.provider = VlmProviderKind::OpenAi;
    cfg.vlm.base_url = server.base_url("http");
    cfg.vlm.model = "gpt-4o-mini".into();
    cfg.vlm.api_key = "sk-test-insights-secret".into();
    cfg.vlm.timeout_ms = timeout_ms;
    cfg.vlm.max_retries = 1;
    cfg.vlm.retry_backoff_ms = 1;
    panoptes_infra::wiring::vlm_provider(&cfg).unwrap()
}

impl World {
    fn worker(&self, vlm: Arc<dyn VlmProvider>) -> InsightWorker {
        InsightWorker::new(
            InsightPorts {
                store: self.store.clone(),
                blobs: self.blobs.clone(),
                queue: self.queue.clone(),
                vlm,
                metrics: Arc::new(WorkerMetrics::default()),
            },
            InsightSettings {
                consumer: "n1".into(),
                batch: 1,
                wait: Duration::from_millis(50),
                max_attempts: 3,
                requeue_after: Duration::from_secs(600),
            },
        )
    }

    fn rules(&self) -> RuleEvaluator {
        RuleEvaluator::new(
            RulesPorts {
                store: self.store.clone(),
                insight_queue: self.queue.clone(),
                bus: self.bus.clone(),
                leases: self.leases.clone(),
                metrics: Arc::new(WorkerMetrics::default()),
            },
            RulesSettings {
                node: "n1".into(),
                lease_ttl: Duration::from_secs(15),
                refresh: Duration::ZERO,
                read_max: 1_000,
            },
        )
    }

    async fn set_plan(&self, plan: Plan, quota: QuotaLimits) {
        let mut d = self
            .store
            .get_device(self.user, self.device)
            .await
            .unwrap()
            .unwrap();
        d.plan = plan;
        d.quota = quota;
        self.store.update_device(self.user, &d).await.unwrap();
    }

    /// A running task on the device with `capabilities`.
    async fn task(&self, capabilities: Vec<Capability>) -> TaskId {
        let task = AnalysisTask::start(
            self.user,
            self.device,
            self.scene,
            TaskTrigger::Api,
            capabilities,
            now() - chrono::Duration::minutes(5),
        );
        let event = PlatformEvent::new(
            self.user,
            EventKind::AnalysisStarted,
            Some(self.device),
            Some(task.id),
            json!({}),
            task.started_at,
        );
        self.store.insert_task(&task, &event).await.unwrap();
        task.id
    }

    /// A snapshot JPEG stored at the key an `analysis_result` links to.
    async fn snapshot(&self, at: DateTime<Utc>) -> (String, Vec<u8>) {
        let jpeg = std::fs::read(common::fixtures().join("frames/vtest-200.jpg")).unwrap();
        let key = format!(
            "{}/snapshots/{}/{}-x.jpg",
            self.user,
            self.device,
            at.timestamp_millis()
        );
        self.blobs
            .put(&key, jpeg.clone(), "image/jpeg")
            .await
            .unwrap();
        (key, jpeg)
    }

    /// Publish a result with `in_queue` people queued, linking the snapshot.
    async fn publish(&self, task: TaskId, at: DateTime<Utc>, in_queue: u32) {
        let who = (self.user, self.device, self.scene);
        common::publish_queue(self.bus.as_ref(), who, task, at, in_queue).await;
    }

    /// Fire an alert through the rule evaluator (a `current.inQueue >= 5`
    /// rule, no duration) on `task`; the alert.
    async fn fire_through_rules(&self, task: TaskId) -> Alert {
        let rule = common::queue_rule(self.user, self.scene, self.device, 5.0, 0, 0);
        self.store.insert_rule(&rule).await.unwrap();
        let at = now() - chrono::Duration::seconds(1);
        self.snapshot(at).await;
        self.publish(task, at, 7).await;
        self.rules().step().await.unwrap();
        let alerts = self
            .store
            .list_alerts(
                self.user,
                &Default::default(),
                PageRequest { page: 1, limit: 10 },
            )
            .await
            .unwrap()
            .items;
        assert_eq!(alerts.len(), 1, "one alert fired");
        alerts.into_iter().next().unwrap()
    }

    /// An alert with its pending insight stored (as the evaluator fires
    /// them) and its job queued.
    async fn pending_insight(&self, task: TaskId, snapshot: Option<String>) -> Insight {
        let rule = common::queue_rule(self.user, self.scene, self.device, 5.0, 0, 0);
        self.store.insert_rule(&rule).await.unwrap();
        let at = now() - chrono::Duration::seconds(1);
        let alert = Alert {
            id: AlertId::new(),
            user_id: self.user,
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            scene_id: self.scene,
            device_id: self.device,
            task_id: Some(task),
            severity: rule.severity,
            metric_path: rule.metric_path.as_string(),
            operator: rule.operator,
            threshold: rule.threshold,
            value: 7.0,
            snapshot_key: snapshot,
            status: AlertStatus::Active,
            history: vec![StatusChange {
                status: AlertStatus::Active,
                at,
                by: "system".into(),
                note: None,
            }],
            breach_started_at: at,
            triggered_at: at,
            updated_at: at,
            suppressed: false,
        };
        let event = PlatformEvent::new(
            self.user,
            EventKind::AlertTriggered,
            Some(self.device),
            Some(task),
            json!({"alertId": alert.id}),
            at,
        );
        let insight = Insight::pending(&alert, now());
        assert!(
            self.store
                .fire_alert(&alert, &event, Some(&insight))
                .await
                .unwrap()
        );
        InsightWorker::enqueue(self.queue.as_ref(), &insight)
            .await
            .unwrap();
        insight
    }

    async fn insights(&self) -> Vec<Insight> {
        self.store
            .list_insights(
                self.user,
                &InsightFilter::default(),
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .items
    }

    async fn insight(&self, i: &Insight) -> Insight {
        self.store
            .get_insight(self.user, i.id)
            .await
            .unwrap()
            .unwrap()
    }

    /// `vlmTokens` usage events of the device: (count, total).
    async fn vlm_usage(&self) -> (usize, u64) {
        let events = self
            .store
            .list_usage_events(
                self.user,
                &UsageFilter {
                    device: Some(self.device),
                    feature: Some(Feature::VlmTokens),
                    ..UsageFilter::default()
                },
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .items;
        (events.len(), events.iter().map(|e| e.quantity).sum())
    }
}

/// The structured answer the scripted server gives.
fn answer(summary: &str) -> Reply {
    Reply::content(
        &json!({
            "summary": summary,
            "peopleInQueue": 7,
            "queueCondition": "congested",
            "observations": ["seven people wait at counter A", "one till is open"],
            "recommendedAction": "Open a second till.",
            "people": [{
                "zone": "queue",
                "upperClothing": "red hooded jacket",
                "lowerClothing": "blue jeans",
                "carrying": "shopping basket",
                "activity": "waiting"
            }]
        })
        .to_string(),
    )
}

#[tokio::test]
async fn an_alert_on_a_vlm_task_gets_one_insight_that_completes_with_the_servers_summary() {
    let w = world().await;
    w.set_plan(Plan::Level02, QuotaLimits::default()).await;
    let task = w.task(vec![Capability::Vlm, Capability::Attributes]).await;
    // A person described on the task just before the firing.
    let seen = now() - chrono::Duration::seconds(5);
    w.store
        .insert_attributes(&[AttributeRecord {
            id: AttributeId::new(),
            user_id: w.user,
            device_id: w.device,
            scene_id: w.scene,
            task_id: task,
            track_id: "t3".into(),
            attributes: PersonAttributes {
                upper_color: ColorName::Red,
                lower_color: ColorName::Blue,
                upper_color_share: 0.6,
                lower_color_share: 0.7,
            },
            confidence: 0.9,
            bounding_box: BoundingBox {
                x: 0.1,
                y: 0.1,
                width: 0.1,
                height: 0.4,
            },
            observed_at: seen,
            created_at: seen,
        }])
        .await
        .unwrap();
    let mut server = ChatServer::start(vec![answer(
        "Seven people queue at counter A while one till is open.",
    )])
    .await;
    let alert = w.fire_through_rules(task).await;

    let pending = w.insights().await;
    assert_eq!(pending.len(), 1, "one insight per alert");
    assert_eq!(pending[0].alert_id, alert.id);
    assert_eq!(pending[0].vlm_status, VlmStatus::Pending);

    let worker = w.worker(provider(&server, 5_000));
    let step = worker.step().await.unwrap();
    assert_eq!((step.jobs, step.completed), (1, 1));

    // What the model was sent: the snapshot as a data URL, the context, the schema.
    let request = server.next(WAIT, "the insight request").await.json();
    let (_, jpeg) = w.snapshot(alert.triggered_at).await;
    let data_url = format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&jpeg)
    );
    let text = request.to_string();
    assert!(text.contains(&data_url), "the alert's snapshot is sent");
    assert!(text.contains("current.inQueue"), "the alert's metric");
    assert!(text.contains("red top, blue bottom"), "the people in view");
    assert_eq!(request["response_format"]["type"], "json_schema");
    assert_eq!(
        request["response_format"]["json_schema"]["name"],
        "queue_alert_insight"
    );

    let done = w.insight(&pending[0]).await;
    assert_eq!(done.vlm_status, VlmStatus::Completed);
    assert_eq!(
        done.vlm_summary.as_deref(),
        Some("Seven people queue at counter A while one till is open.")
    );
    let structured = done.vlm_structured_result.clone().unwrap();
    assert_eq!(structured["queueCondition"], "congested");
    assert_eq!(structured["peopleInQueue"], 7);
    assert_eq!(
        structured["people"][0]["upperClothing"], "red hooded jacket",
        "the VLM's own reading of each person is kept"
    );
    assert_eq!(
        request["response_format"]["json_schema"]["schema"]["properties"]["people"]["items"]["required"],
        json!([
            "zone",
            "upperClothing",
            "lowerClothing",
            "carrying",
            "activity"
        ])
    );
    assert_eq!(done.total_tokens, Some(vlm_server::USAGE.2));
    assert_eq!(done.prompt_tokens, Some(vlm_server::USAGE.0));
    assert_eq!(done.model.as_deref(), Some(vlm_server::SERVED_MODEL));
    assert_eq!(done.attribute_count, 1, "the person in view is linked");
    assert_eq!(w.vlm_usage().await, (1, vlm_server::USAGE.2));

    // Found by the words of its summary and by the attributes in view.
    for q in ["till counter", "red"] {
        let found = w
            .store
            .list_insights(
                w.user,
                &InsightFilter {
                    q: Some(q.into()),
                    ..InsightFilter::default()
                },
                PageRequest { page: 1, limit: 10 },
            )
            .await
            .unwrap();
        assert_eq!(found.total, 1, "{q}");
    }

    // The same job again (a redelivery): no second request, no second charge.
    InsightWorker::enqueue(w.queue.as_ref(), &done)
        .await
        .unwrap();
    let again = worker.step().await.unwrap();
    assert_eq!((again.jobs, again.completed), (1, 0));
    assert!(server.drain().is_empty(), "the model is not asked twice");
    assert_eq!(w.insight(&done).await, done);
    assert_eq!(w.vlm_usage().await, (1, vlm_server::USAGE.2));
    assert_eq!(w.queue.stats().await.unwrap().pending, 0);
}

#[tokio::test]
async fn level_01_devices_and_tasks_without_vlm_get_no_insight() {
    for (plan, capabilities) in [
        (Plan::Level01, vec![]),
        (Plan::Level02, vec![Capability::Attributes]),
    ] {
        let w = world().await;
        w.set_plan(plan, QuotaLimits::default()).await;
        let task = w.task(capabilities.clone()).await;
        w.fire_through_rules(task).await;
        assert!(w.insights().await.is_empty(), "{plan:?} {capabilities:?}");
        let stats = w.queue.stats().await.unwrap();
        assert_eq!((stats.waiting, stats.pending), (0, 0), "no job queued");
    }
}

#[tokio::test]
async fn provider_errors_timeouts_and_malformed_answers_fail_the_insight_with_the_reason() {
    let w = world().await;
    w.set_plan(Plan::Level02, QuotaLimits::default()).await;
    let task = w.task(vec![Capability::Vlm]).await;
    let cases: Vec<(Vec<Reply>, &str)> = vec![
        (
            vec![
                Reply::json(503, json!({"error": {"message": "overloaded"}})),
                Reply::json(503, json!({"error": {"message": "overloaded"}})),
            ],
            "answered HTTP 503",
        ),
        (
            vec![Reply::json(
                401,
                json!({"error": {"message": "Incorrect API key provided: sk-test-***"}}),
            )],
            "answered HTTP 401",
        ),
        (
            vec![Reply::Hang, Reply::Hang],
            "did not answer within 300 ms",
        ),
        (
            vec![Reply::content("I think the queue is long.")],
            "unusable",
        ),
        (
            vec![Reply::content(&json!({"summary": "only this"}).to_string())],
            "no `peopleInQueue`",
        ),
    ];
    let mut failed = Vec::new();
    for (script, reason) in cases {
        let server = ChatServer::start(script).await;
        let insight = w.pending_insight(task, None).await;
        let worker = w.worker(provider(&server, 300));
        let step = worker.step().await.unwrap();
        assert_eq!((step.jobs, step.failed), (1, 1), "{reason}");
        let i = w.insight(&insight).await;
        assert_eq!(i.vlm_status, VlmStatus::Failed, "{reason}");
        let why = i.failure_reason.clone().unwrap();
        assert!(why.contains(reason), "{why:?} should say {reason:?}");
        assert!(!why.contains("sk-test"), "no key in the reason: {why}");
        assert!(i.vlm_summary.is_none());
        failed.push(i);
    }
    // Each failure stayed with its insight; the queue is empty.
    assert_eq!(w.insights().await.len(), failed.len());
    let stats = w.queue.stats().await.unwrap();
    assert_eq!(
        (stats.waiting, stats.pending, stats.dead_letters),
        (0, 0, 0)
    );
    // A malformed answer still cost tokens: metered.
    assert_eq!(w.vlm_usage().await.0, 2);
}

#[tokio::test]
async fn without_a_provider_the_insight_fails_saying_so() {
    let w = world().await;
    w.set_plan(Plan::Level02, QuotaLimits::default()).await;
    let task = w.task(vec![Capability::Vlm]).await;
    let insight = w.pending_insight(task, None).await;
    let worker = w.worker(Arc::new(panoptes_infra::vlm::DisabledVlm));
    assert_eq!(worker.step().await.unwrap().failed, 1);
    let i = w.insight(&insight).await;
    assert_eq!(i.vlm_status, VlmStatus::Failed);
    assert_eq!(
        i.failure_reason.as_deref(),
        Some("no VLM provider is configured (vlm.provider = off)")
    );
}

#[tokio::test]
async fn beyond_the_token_quota_the_model_is_not_asked() {
    let w = world().await;
    w.set_plan(
        Plan::Level02,
        QuotaLimits {
            vlm_tokens: Some(1_000),
            ..QuotaLimits::default()
        },
    )
    .await;
    let task = w.task(vec![Capability::Vlm]).await;
    let mut server = ChatServer::start(vec![answer("first"), answer("second")]).await;
    let worker = w.worker(provider(&server, 5_000));
    // The first request is admitted (nothing used yet) and costs 1,280.
    let first = w.pending_insight(task, None).await;
    assert_eq!(worker.step().await.unwrap().completed, 1);
    server.next(WAIT, "the first request").await;
    // Now the month's 1,000 tokens are used: refused without a request.
    let second = w.pending_insight(task, None).await;
    assert_eq!(worker.step().await.unwrap().failed, 1);
    assert!(server.drain().is_empty(), "no request beyond the quota");
    let i = w.insight(&second).await;
    assert_eq!(i.vlm_status, VlmStatus::Failed);
    assert!(
        i.failure_reason.as_deref().unwrap().contains("vlmTokens"),
        "{:?}",
        i.failure_reason
    );
    assert_eq!(w.insight(&first).await.vlm_status, VlmStatus::Completed);
    assert_eq!(w.vlm_usage().await, (1, vlm_server::USAGE.2));
}

#[tokio::test]
async fn a_pending_insight_whose_job_was_lost_is_queued_again_by_the_sweep() {
    let w = world().await;
    w.set_plan(Plan::Level02, QuotaLimits::default()).await;
    let task = w.task(vec![Capability::Vlm]).await;
    let insight = w.pending_insight(task, None).await;
    // Lose the job: take it and acknowledge it without doing the work.
    let taken = w
        .queue
        .pull("thief", 1, Duration::from_millis(50))
        .await
        .unwrap();
    w.queue.ack(&taken[0].receipt).await.unwrap();
    let server = ChatServer::start(vec![answer("found again")]).await;
    let mut worker = w.worker(provider(&server, 5_000));
    assert_eq!(worker.step().await.unwrap().jobs, 0);
    // Not stale yet: nothing queued.
    assert_eq!(worker.requeue_stale().await.unwrap(), 0);
    worker = InsightWorker::new(
        InsightPorts {
            store: w.store.clone(),
            blobs: w.blobs.clone(),
            queue: w.queue.clone(),
            vlm: provider(&server, 5_000),
            metrics: Arc::new(WorkerMetrics::default()),
        },
        InsightSettings {
            consumer: "n2".into(),
            batch: 1,
            wait: Duration::from_millis(50),
            max_attempts: 3,
            requeue_after: Duration::ZERO,
        },
    );
    assert_eq!(worker.requeue_stale().await.unwrap(), 1);
    assert_eq!(worker.step().await.unwrap().completed, 1);
    let i = w.insight(&insight).await;
    assert_eq!(i.vlm_summary.as_deref(), Some("found again"));
}
