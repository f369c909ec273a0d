//! The detect and analytics roles end to end on real Redis (frame jobs,
//! detection log, leases, bus) and a real S3 protocol server (snapshots),
//! driven a step at a time.

#[path = "pipeline/attributes.rs"]
mod attributes;
#[path = "../../infra/tests/it/backends.rs"]
#[allow(dead_code)]
mod backends;
mod common;

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::blobs::{S3Blobs, S3Options};
use panoptes_infra::bus::RedisBus;
use panoptes_infra::coord::{RedisLeases, RedisNodes};
use panoptes_infra::detections::RedisDetectionLog;
use panoptes_infra::jobs::RedisJobQueue;
use panoptes_infra::store::{SqlStore, StoreOptions};
use panoptes_shared::ids::{DeviceId, JobId, SceneId, TaskId, UserId};
use panoptes_shared::ports::bus::Offset;
use panoptes_shared::ports::jobs::{FrameJob, QueuePolicy, now_ms};
use panoptes_shared::ports::prelude::*;
use panoptes_shared::ports::{
    BlobStore, DetectionLog, EventBus, JobQueue, Leases, NodeInfo, Store,
};
use panoptes_shared::telemetry::TraceParent;
use panoptes_workers::analytics::{AnalyticsPorts, AnalyticsSettings, AnalyticsWorker};
use panoptes_workers::detect::{DetectPorts, DetectSettings, DetectWorker, SceneCache};
use panoptes_workers::metrics::WorkerMetrics;
use panoptes_workers::node::Heartbeat;
use serde_json::Value;
use uuid::Uuid;

use common::env;
use common::rtsp::RtspServer;
use panoptes_shared::domain::device::{DeviceStatus, RtspUrl};
use panoptes_shared::domain::event::EventKind;
use panoptes_shared::domain::metrics_history::TimeRange;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::task::{StopReason, TaskEnd, TaskTrigger};
use panoptes_shared::lifecycle::{StartRequest, end, start};
use panoptes_workers::ingest::{IngestPorts, IngestSettings, IngestWorker};

/// Everything a test needs, each run in its own Redis prefix and S3 bucket.
struct World {
    store: Arc<SqlStore>,
    queue: Arc<dyn JobQueue>,
    log: Arc<dyn DetectionLog>,
    leases: Arc<dyn Leases>,
    bus: Arc<dyn EventBus>,
    blobs: Arc<dyn BlobStore>,
    conn: panoptes_infra::redis_conn::RedisConn,
    prefix: String,
    user: UserId,
    device: DeviceId,
    scene: SceneId,
    engine: Arc<panoptes_workers::inference::engine::Engine>,
}

async fn world(policy: QueuePolicy) -> World {
    let dir = std::env::temp_dir().join(format!("panoptes-wk-{}", Uuid::new_v4()));
    let store = SqlStore::connect(&StoreOptions {
        url: format!("sqlite:{}", dir.join("t.db").display()),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    world_on(policy, store).await
}

/// A world on `store` (migrated).
async fn world_on(policy: QueuePolicy, store: SqlStore) -> World {
    let client =
        redis::Client::open(env("PANOPTES_TEST_REDIS_URL", "redis://127.0.0.1:6379")).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .expect("Redis must be running for these tests");
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let s3 = S3Blobs::connect(S3Options {
        bucket: format!("pw-{}", &Uuid::new_v4().simple().to_string()[..12]),
        region: "us-east-1".into(),
        endpoint: Some(env("PANOPTES_TEST_S3_ENDPOINT", "http://127.0.0.1:8014")),
        path_style: true,
        access_key: Some(env("PANOPTES_TEST_S3_ACCESS_KEY", "panoptes-test")),
        secret_key: Some(env("PANOPTES_TEST_S3_SECRET_KEY", "panoptes-test-secret").into()),
    })
    .await
    .unwrap();
    s3.ensure_bucket()
        .await
        .expect("an S3 server must be running for these tests (bash .ci/test.sh starts s3s-fs)");
    let (user, device, scene) = common::tenant(&store).await;
    World {
        queue: Arc::new(
            RedisJobQueue::connect(&client, conn.clone(), prefix.clone(), policy)
                .await
                .unwrap(),
        ),
        log: Arc::new(RedisDetectionLog::new(conn.clone(), prefix.clone())),
        leases: Arc::new(RedisLeases::new(conn.clone(), prefix.clone())),
        bus: Arc::new(
            RedisBus::connect(client, conn.clone(), prefix.clone())
                .await
                .unwrap(),
        ),
        blobs: Arc::new(s3),
        store: Arc::new(store),
        conn,
        prefix,
        user,
        device,
        scene,
        engine: Arc::new(common::nanodet()),
    }
}

fn policy() -> QueuePolicy {
    QueuePolicy {
        shards: 2,
        max_len: 1000,
        visibility: Duration::from_millis(300),
        max_attempts: 2,
        max_age: Duration::from_secs(60),
    }
}

fn frame(n: u32) -> Vec<u8> {
    std::fs::read(common::fixtures().join(format!("frames/vtest-{n}.jpg"))).unwrap()
}

impl World {
    fn job(&self, jpeg: Vec<u8>, captured_at_ms: u64, task: TaskId) -> FrameJob {
        FrameJob {
            id: JobId::new(),
            user: self.user,
            device: self.device,
            scene: self.scene,
            task,
            captured_at_ms,
            jpeg,
            traceparent: Some(TraceParent::random().to_string()),
            attributes: false,
        }
    }

    fn detector(&self, node: &str, batch: usize) -> (DetectWorker, Arc<WorkerMetrics>) {
        let metrics = Arc::new(WorkerMetrics::default());
        let store: Arc<dyn Store> = self.store.clone();
        (
            DetectWorker::new(
                DetectPorts {
                    queue: self.queue.clone(),
                    scenes: Arc::new(SceneCache::new(store, Duration::from_secs(10))),
                    blobs: self.blobs.clone(),
                    log: self.log.clone(),
                    leases: self.leases.clone(),
                    engine: self.engine.clone(),
                    metrics: metrics.clone(),
                },
                DetectSettings {
                    node: node.into(),
                    batch_size: batch,
                    batch_wait: Duration::from_millis(50),
                    snapshot_interval: Duration::from_secs(60),
                },
            ),
            metrics,
        )
    }

    fn analytics(
        &self,
        node: &str,
        window: Duration,
        lease: Duration,
    ) -> (AnalyticsWorker, Arc<WorkerMetrics>) {
        let metrics = Arc::new(WorkerMetrics::default());
        (
            AnalyticsWorker::new(
                AnalyticsPorts {
                    store: self.store.clone(),
                    log: self.log.clone(),
                    leases: self.leases.clone(),
                    bus: self.bus.clone(),
                    blobs: self.blobs.clone(),
                    scenes: Arc::new(SceneCache::new(self.store.clone(), Duration::from_secs(10))),
                    metrics: metrics.clone(),
                },
                AnalyticsSettings {
                    node: node.into(),
                    lease_ttl: lease,
                    reorder_window: window,
                    active_within: Duration::from_secs(60),
                    read_max: 100,
                    persist_every: Duration::from_secs(10),
                    snapshot_url_ttl: Duration::from_secs(300),
                    attribute_refresh: Duration::from_secs(30),
                },
            ),
            metrics,
        )
    }

    async fn results(&self) -> Vec<panoptes_shared::domain::detection::DetectionResult> {
        self.log
            .read(self.device, Offset::START, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }
}

/// Run `step` until `done` or 10 s pass; each step waits for work itself.
async fn until<F, Fut>(mut step: F, mut done: impl FnMut() -> bool)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        step().await;
    }
}

#[tokio::test]
async fn a_frame_is_detected_once_with_a_snapshot_readable_through_a_presigned_url() {
    let w = world(policy()).await;
    let (detector, metrics) = w.detector("node-a", 4);
    let job = w.job(frame(200), now_ms(), TaskId::new());
    w.queue.enqueue(&job).await.unwrap();
    assert_eq!(detector.step().await.unwrap(), 1);
    let results = w.results().await;
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(
        (r.job_id, r.node_id.as_str(), r.width, r.height),
        (job.id, "node-a", 768, 576)
    );
    assert!(
        r.detections.len() >= 5,
        "the walkers of frame 200: {:?}",
        r.detections
    );
    assert!(r.detections.iter().all(|d| d.confidence >= 0.4));
    assert!(r.detections.iter().all(|d| {
        let b = d.bounding_box;
        b.x >= 0.0 && b.y >= 0.0 && b.x + b.width <= 1.0 && b.y + b.height <= 1.0 && b.width > 0.0
    }));
    assert!(r.processing_ms > 0.0);
    // The result continues the job's trace, from the detect span.
    let traced = |tp: &Option<String>| TraceParent::parse(tp.as_deref().unwrap()).unwrap();
    let (sent, handed) = (traced(&job.traceparent), traced(&r.traceparent));
    assert_eq!(handed.trace_id, sent.trace_id);
    assert_ne!(handed.span_id, sent.span_id);
    let stats = w.queue.stats().await.unwrap();
    assert_eq!((stats.waiting, stats.pending), (0, 0), "acknowledged");
    // The snapshot: in S3 under the tenant's prefix, readable by URL.
    let key = r
        .snapshot_key
        .clone()
        .expect("first frame of the device stores a snapshot");
    assert!(
        key.starts_with(&format!("{}/snapshots/{}/", w.user, w.device)),
        "{key}"
    );
    let url = w
        .blobs
        .presign_get(&key, Duration::from_secs(60))
        .await
        .unwrap();
    let got = reqwest::get(&url).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), frame(200).as_slice());
    // The next frame within the interval stores none. It was enqueued
    // without a traceparent (as before they existed): a trace of its own.
    let untraced = FrameJob {
        traceparent: None,
        ..w.job(frame(350), now_ms(), job.task)
    };
    w.queue.enqueue(&untraced).await.unwrap();
    assert_eq!(detector.step().await.unwrap(), 1);
    let second = &w.results().await[1];
    assert!(second.snapshot_key.is_none());
    assert_ne!(traced(&second.traceparent).trace_id, sent.trace_id);
    assert_eq!(metrics.snapshots.get(), 1);
    assert_eq!(metrics.frames.get(), 2);
    assert!(
        metrics
            .render()
            .contains("panoptes_detect_batch_size_count 2")
    );
}

#[tokio::test]
async fn a_dead_consumers_job_is_reclaimed_and_finished_once() {
    let w = world(policy()).await;
    let job = w.job(frame(50), now_ms(), TaskId::new());
    w.queue.enqueue(&job).await.unwrap();
    // A detector takes the job and dies before acknowledging it.
    let taken = w
        .queue
        .pull("node-dead", 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    // Another detector reclaims it once the claim lapses (its pull waits for that).
    let (survivor, metrics) = w.detector("node-b", 4);
    until(
        || async {
            survivor.step().await.unwrap();
        },
        || metrics.frames.get() == 1,
    )
    .await;
    let results = w.results().await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].node_id, "node-b");
    // The dead node was only slow: its late result is not recorded twice.
    let mut late = results[0].clone();
    late.node_id = "node-dead".into();
    assert!(!w.log.append(&late).await.unwrap());
    assert_eq!(w.results().await.len(), 1);
    assert!(w.queue.ack(&taken[0].receipt).await.is_ok());
    let stats = w.queue.stats().await.unwrap();
    assert_eq!(
        (stats.waiting, stats.pending, stats.dead_letters),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_poison_frame_goes_to_the_dead_letters_and_a_stale_one_is_dropped() {
    let w = world(policy()).await;
    let (detector, metrics) = w.detector("node-a", 4);
    let poison = w.job(
        b"\xff\xd8 this is not a jpeg".to_vec(),
        now_ms(),
        TaskId::new(),
    );
    w.queue.enqueue(&poison).await.unwrap();
    until(
        || async {
            detector.step().await.unwrap();
        },
        || metrics.frame_failures.get() >= 2,
    )
    .await;
    // The last attempt failed: the next pull moves it to the dead letters.
    w.queue
        .pull("node-a", 1, Duration::from_millis(400))
        .await
        .unwrap();
    let dead = w.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].job_id, poison.id);
    assert!(
        dead[0].error.contains("not a decodable JPEG"),
        "{}",
        dead[0].error
    );
    assert!(w.results().await.is_empty());
    // A frame captured long ago is dropped and counted, not detected.
    let stale = w.job(frame(50), now_ms() - 120_000, TaskId::new());
    w.queue.enqueue(&stale).await.unwrap();
    assert_eq!(detector.step().await.unwrap(), 0);
    assert_eq!(w.queue.stats().await.unwrap().dropped_stale, 1);
    assert!(w.results().await.is_empty());
}

#[tokio::test]
async fn results_are_published_in_capture_order_when_detectors_finish_out_of_order() {
    let w = world(policy()).await;
    let task = TaskId::new();
    let mut sub = w.bus.subscribe(w.user).await.unwrap();
    let (a, _) = w.detector("node-a", 1);
    let (b, _) = w.detector("node-b", 1);
    let t = now_ms();
    // Node a finishes the later capture first, node b the earlier one after it.
    w.queue
        .enqueue(&w.job(frame(350), t + 200, task))
        .await
        .unwrap();
    assert_eq!(a.step().await.unwrap(), 1);
    w.queue
        .enqueue(&w.job(frame(200), t + 100, task))
        .await
        .unwrap();
    assert_eq!(b.step().await.unwrap(), 1);
    let arrived: Vec<u64> = w.results().await.iter().map(|r| r.captured_at_ms).collect();
    assert_eq!(
        arrived,
        vec![t + 200, t + 100],
        "the log holds them out of order"
    );
    let window = Duration::from_millis(500);
    let (analytics, metrics) = w.analytics("an-1", window, Duration::from_secs(10));
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        analytics.step_at(t0).await.unwrap(),
        0,
        "both wait for the window"
    );
    assert_eq!(analytics.step_at(t0 + window).await.unwrap(), 2);
    let mut published = Vec::new();
    for _ in 0..2 {
        let e = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        published.push(common::documented_event(&e.data));
        assert_eq!(e.task, task);
    }
    let stamps: Vec<&str> = published
        .iter()
        .map(|p| p["timestamp"].as_str().unwrap())
        .collect();
    assert!(stamps[0] < stamps[1], "capture order: {stamps:?}");
    let first = &published[0];
    assert_eq!(first["deviceId"], w.device.to_string());
    assert_eq!(first["sceneId"], w.scene.to_string());
    assert_eq!(first["analysisId"], task.to_string());
    assert_eq!(first["detections"][0]["type"], "person");
    let track = first["detections"][0]["trackId"].as_str().unwrap();
    assert!(track.starts_with('t'), "a track id: {track}");
    // The scene's queue covers the frame, but nobody has stood in it for the
    // 3 s entry threshold yet: counted as zero, with the windows beside.
    assert_eq!(first["metrics"]["inQueue"], 0);
    assert_eq!(first["metrics"]["rolling5Min"]["arrivals"], 0);
    assert!(first["metrics"]["total"].get("p90WaitSeconds").is_some());
    assert!(
        first["detections"][0]["boundingBox"]["width"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        published[1]["snapshotUrl"].as_str().is_some(),
        "the first frame processed stored the snapshot"
    );
    // A result captured before what was published is late: dropped, counted.
    w.queue
        .enqueue(&w.job(frame(50), t + 50, task))
        .await
        .unwrap();
    assert_eq!(a.step().await.unwrap(), 1);
    assert_eq!(analytics.step_at(t0 + window * 3).await.unwrap(), 0);
    assert_eq!(metrics.late_dropped.get(), 1);
    assert_eq!(
        w.log.checkpoint(w.device).await.unwrap(),
        w.log.read(w.device, Offset::START, 10).await.unwrap()[2].0
    );
}

#[tokio::test]
async fn one_analytics_node_owns_a_device_and_another_takes_over_when_it_dies() {
    let w = world(policy()).await;
    let task = TaskId::new();
    let mut sub = w.bus.subscribe(w.user).await.unwrap();
    let (detector, _) = w.detector("node-a", 4);
    let lease = Duration::from_millis(1500);
    let (first, _) = w.analytics("an-1", Duration::ZERO, lease);
    let (second, _) = w.analytics("an-2", Duration::ZERO, lease);
    let t = now_ms();
    w.queue.enqueue(&w.job(frame(50), t, task)).await.unwrap();
    assert_eq!(detector.step().await.unwrap(), 1);
    assert_eq!(first.step().await.unwrap(), 1);
    assert_eq!(second.step().await.unwrap(), 0, "an-1 owns the device");
    assert_eq!(first.owned().await, vec![w.device]);
    assert!(second.owned().await.is_empty());
    // an-1 dies (stops stepping). New results wait until its lease lapses,
    // then an-2 continues from an-1's checkpoint: nothing twice, nothing lost.
    w.queue
        .enqueue(&w.job(frame(200), t + 100, task))
        .await
        .unwrap();
    assert_eq!(detector.step().await.unwrap(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut taken_over = 0;
    while taken_over == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        taken_over = second.step().await.unwrap();
        if taken_over == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(taken_over, 1);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let e = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        seen.push(
            common::documented_event(&e.data)["timestamp"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(seen[0] < seen[1]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sub.next())
            .await
            .is_err(),
        "no duplicate"
    );
}

#[tokio::test]
async fn nodes_heartbeat_and_export_the_queue_lag() {
    let w = world(policy()).await;
    let nodes = Arc::new(RedisNodes::new(w.conn.clone(), w.prefix.clone()));
    let metrics = Arc::new(WorkerMetrics::default());
    for n in 0..3 {
        w.queue
            .enqueue(&w.job(frame(50), now_ms(), TaskId::new()))
            .await
            .unwrap();
        let _ = n;
    }
    let beat = Heartbeat {
        nodes: nodes.clone(),
        store: w.store.clone(),
        queue: w.queue.clone(),
        metrics: metrics.clone(),
        info: NodeInfo {
            id: "node-x".into(),
            roles: vec!["detect".into()],
            execution_provider: Some("cpu".into()),
            started_at_ms: now_ms(),
        },
        every: Duration::from_millis(100),
        ttl: Duration::from_secs(5),
    };
    assert!(beat.beat().await.unwrap().is_empty());
    let listed = nodes.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].online);
    let text = metrics.render();
    assert!(text.contains("panoptes_jobs_waiting 3"), "{text}");
    assert!(text.contains("panoptes_jobs_lag 3"), "{text}");
    // Another node that stops beating is reported offline by this one, once.
    let other = Heartbeat {
        info: NodeInfo {
            id: "node-y".into(),
            ..beat.info.clone()
        },
        nodes: nodes.clone(),
        store: w.store.clone(),
        queue: w.queue.clone(),
        metrics: Arc::new(WorkerMetrics::default()),
        every: beat.every,
        ttl: Duration::from_millis(150),
    };
    other.beat().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let offline = loop {
        let gone = beat.beat().await.unwrap();
        if !gone.is_empty() {
            break gone;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node-y never went offline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].info.id, "node-y");
    assert!(beat.beat().await.unwrap().is_empty(), "reported once");
}

/// Poll `check` every 50 ms until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl World {
    fn ingest(&self, node: &str) -> Arc<IngestWorker> {
        let cipher = panoptes_infra::crypto::AesGcmCipher::from_base64(
            &panoptes_infra::crypto::AesGcmCipher::generate_key(),
        )
        .unwrap();
        let cipher: Arc<dyn panoptes_shared::ports::SecretCipher> = Arc::new(cipher);
        // The RTSP test server is on loopback: private targets allowed.
        let dialer = panoptes_infra::camera::Dialer::new(
            Arc::new(panoptes_shared::outbound::OutboundGuard::new(
                Arc::new(panoptes_infra::resolver::SystemResolver),
                true,
            )),
            panoptes_infra::camera::Tls::system(),
        );
        Arc::new(IngestWorker::new(
            IngestPorts {
                store: self.store.clone(),
                jobs: self.queue.clone(),
                leases: self.leases.clone(),
                cipher: cipher.clone(),
                probe: Arc::new(panoptes_workers::ingest::DecodingProbe::new(
                    cipher,
                    dialer.clone(),
                )),
                dialer,
                metrics: Arc::new(WorkerMetrics::default()),
            },
            IngestSettings {
                node: node.into(),
                sample_fps: 4.0,
                jpeg_quality: 85,
                max_width: 1280,
                reconnect_min: Duration::from_millis(200),
                reconnect_max: Duration::from_millis(800),
                connect_timeout: Duration::from_secs(5),
                stall_timeout: Duration::from_secs(3),
                lease_ttl: Duration::from_secs(5),
                max_streams: 8,
                health_every: Some(Duration::from_millis(500)),
                health_in_flight: 2,
            },
        ))
    }

    /// The tenant's camera becomes the RTSP server's clip; it starts offline.
    async fn point_at(&self, server: &RtspServer) {
        let mut d = self
            .store
            .get_device(self.user, self.device)
            .await
            .unwrap()
            .unwrap();
        d.rtsp_url = RtspUrl::parse(&server.url("vtest")).unwrap().0;
        self.store.update_device(self.user, &d).await.unwrap();
        panoptes_shared::lifecycle::set_device_status(
            self.store.as_ref(),
            self.user,
            self.device,
            DeviceStatus::Offline,
            None,
            panoptes_shared::time::now(),
        )
        .await
        .unwrap();
    }

    async fn status(&self) -> DeviceStatus {
        self.store
            .get_device(self.user, self.device)
            .await
            .unwrap()
            .unwrap()
            .status
    }
}

#[tokio::test]
async fn a_camera_is_pulled_by_one_node_detected_tracked_measured_and_stored() {
    let server = RtspServer::start().await;
    let port = server.port;
    let w = world(policy()).await;
    w.point_at(&server).await;
    let task = start(
        w.store.as_ref(),
        w.user,
        w.device,
        StartRequest {
            scene: w.scene,
            capabilities: vec![],
            trigger: TaskTrigger::Schedule,
            require_online: false,
        },
        panoptes_shared::time::now(),
    )
    .await
    .unwrap();
    let mut events = w.bus.subscribe(w.user).await.unwrap();

    // Two ingest nodes: exactly one pulls the camera.
    let (a, b) = (w.ingest("ingest-a"), w.ingest("ingest-b"));
    assert_eq!(a.step().await.unwrap() + b.step().await.unwrap(), 1);
    assert_eq!(a.streaming().await.len() + b.streaming().await.len(), 1);

    // Frames flow: detect and analytics a step at a time, until analytics
    // has stored a snapshot (persisted every second of capture time).
    let (detector, _) = w.detector("detect-a", 4);
    let metrics = Arc::new(WorkerMetrics::default());
    let analytics = AnalyticsWorker::new(
        AnalyticsPorts {
            store: w.store.clone(),
            log: w.log.clone(),
            leases: w.leases.clone(),
            bus: w.bus.clone(),
            blobs: w.blobs.clone(),
            scenes: Arc::new(SceneCache::new(w.store.clone(), Duration::from_secs(10))),
            metrics: metrics.clone(),
        },
        AnalyticsSettings {
            node: "analytics-a".into(),
            lease_ttl: Duration::from_secs(5),
            reorder_window: Duration::from_millis(100),
            active_within: Duration::from_secs(60),
            read_max: 100,
            persist_every: Duration::from_secs(1),
            snapshot_url_ttl: Duration::from_secs(300),
            attribute_refresh: Duration::from_secs(30),
        },
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while metrics.persisted.get() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stored snapshot in 30 s"
        );
        detector.step().await.unwrap();
        analytics.step().await.unwrap();
    }
    assert_eq!(w.status().await, DeviceStatus::Online);
    // The live event carries detections with tracks and the queue metrics.
    let e = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    let v: Value = common::documented_event(&e.data);
    assert_eq!(v["analysisId"], task.id.to_string());
    assert_eq!(e.task, task.id);
    assert!(v["metrics"]["inQueue"].is_u64(), "{v}");
    assert!(v["metrics"]["rolling5Min"]["avgInQueue"].is_number(), "{v}");
    let people = v["detections"].as_array().unwrap();
    assert!(
        !people.is_empty(),
        "vtest.avi has walkers in every frame: {v}"
    );
    assert!(people.iter().all(|p| p["trackId"].is_string()));
    // Each ingested frame started a trace that detect continued.
    let traces: std::collections::HashSet<u128> = w
        .results()
        .await
        .iter()
        .map(|r| {
            TraceParent::parse(r.traceparent.as_deref().expect("set by ingest, via detect"))
                .unwrap()
                .trace_id
        })
        .collect();
    assert_eq!(traces.len(), w.results().await.len(), "one trace per frame");
    // Stored rows, readable through the data query port.
    let snaps = w
        .store
        .list_snapshots(
            w.user,
            w.scene,
            TimeRange::default(),
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(snaps.total >= 2);
    let s = &snaps.items[0];
    assert_eq!(
        (s.task_id, s.compute_node_id.as_str()),
        (task.id, "analytics-a")
    );
    assert!(s.window_end > s.window_start);
    assert_eq!(
        w.store.latest_rolling(w.user, w.scene).await.unwrap().len(),
        3
    );

    // The camera goes away: offline (once); it comes back: online again.
    server.stop().await;
    eventually(
        Duration::from_secs(15),
        "the device to go offline",
        || async { w.status().await == DeviceStatus::Offline },
    )
    .await;
    let _server = RtspServer::start_on(port).await;
    eventually(
        Duration::from_secs(15),
        "the device to come back online",
        || async { w.status().await == DeviceStatus::Online },
    )
    .await;
    let kinds: Vec<EventKind> = w
        .store
        .list_events(w.user, Some(w.device), PageRequest::default())
        .await
        .unwrap()
        .items
        .iter()
        .rev()
        .map(|e| e.kind)
        .filter(|k| k.as_str().starts_with("device_"))
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::DeviceOffline, // set up by the test
            EventKind::DeviceOnline,
            EventKind::DeviceOffline,
            EventKind::DeviceOnline
        ]
    );

    // The node streaming it hangs (stops renewing): once its lease lapses the
    // other node takes the camera over, and the hung one, when it wakes,
    // finds the lease lost and stops its stream.
    let (owner, other) = if a.streaming().await.is_empty() {
        (&b, &a)
    } else {
        (&a, &b)
    };
    owner.step().await.unwrap(); // renews its lease
    other.step().await.unwrap();
    assert!(other.streaming().await.is_empty(), "the lease is held");
    eventually(
        Duration::from_secs(15),
        "the other node to take over",
        || async {
            other.step().await.unwrap();
            !other.streaming().await.is_empty()
        },
    )
    .await;
    owner.step().await.unwrap();
    assert!(
        owner.streaming().await.is_empty(),
        "the hung node gave it up"
    );

    // The task ends: the stream stops and its lease is given back.
    end(
        w.store.as_ref(),
        &task,
        TaskEnd::stopped(StopReason::User, panoptes_shared::time::now()),
    )
    .await
    .unwrap();
    a.step().await.unwrap();
    b.step().await.unwrap();
    assert!(a.streaming().await.is_empty() && b.streaming().await.is_empty());
}

#[tokio::test]
async fn cameras_without_a_task_are_checked_periodically_and_their_status_follows() {
    let server = RtspServer::start().await;
    let w = world(policy()).await;
    w.point_at(&server).await;
    // Two nodes check it; it is probed, not streamed (no task).
    let (a, b) = (w.ingest("ingest-a"), w.ingest("ingest-b"));
    eventually(
        Duration::from_secs(15),
        "the camera to be found online",
        || async {
            a.step().await.unwrap();
            b.step().await.unwrap();
            w.status().await == DeviceStatus::Online
        },
    )
    .await;
    assert!(a.streaming().await.is_empty() && b.streaming().await.is_empty());
    assert!(
        w.store
            .get_device(w.user, w.device)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at
            .is_some()
    );
    server.stop().await;
    eventually(
        Duration::from_secs(15),
        "the camera to be found offline",
        || async {
            a.step().await.unwrap();
            b.step().await.unwrap();
            w.status().await == DeviceStatus::Offline
        },
    )
    .await;
    let kinds: Vec<EventKind> = w
        .store
        .list_events(w.user, Some(w.device), PageRequest::default())
        .await
        .unwrap()
        .items
        .iter()
        .rev()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::DeviceOffline, // set up by the test
            EventKind::DeviceOnline,
            EventKind::DeviceOffline
        ]
    );
}

/// Usage from a real run lands in the ledger exactly once: the task's time,
/// metered while it runs by two scheduler replicas at once and to its end
/// when it stops, and the one alert its results fire; with a frame job
/// redelivered (its first taker died, then turned in a late result) and
/// sent twice by its producer, two detectors, two analytics replicas and
/// two notify replicas, all on PostgreSQL.
#[tokio::test]
async fn a_runs_usage_is_metered_once_with_redelivered_frames_and_replicas() {
    use panoptes_shared::domain::usage::Feature;
    use panoptes_shared::metering::meter_all;
    use panoptes_shared::ports::AlertFilter;
    use panoptes_workers::notify::{RuleEvaluator, RulesPorts, RulesSettings};

    let w = world_on(policy(), backends::postgres().await).await;
    let store: &dyn Store = w.store.as_ref();
    // The task started 150 s ago (its start is the controlled clock: whole
    // minutes of it are due for metering while it runs).
    let started = panoptes_shared::time::now() - chrono::Duration::milliseconds(150_500);
    let task = start(
        store,
        w.user,
        w.device,
        StartRequest {
            scene: w.scene,
            capabilities: vec![],
            trigger: TaskTrigger::Api,
            require_online: false,
        },
        started,
    )
    .await
    .unwrap();
    // A rule every result breaches; its cooldown holds it to one alert.
    w.store
        .insert_rule(&common::queue_rule(
            w.user, w.scene, w.device, 0.0, 0, 3_600,
        ))
        .await
        .unwrap();

    // Four frames; the producer sends the last one twice (a retry).
    let captured = now_ms();
    let jobs: Vec<FrameJob> = [50, 200, 350, 500]
        .into_iter()
        .enumerate()
        .map(|(i, n)| w.job(frame(n), captured + i as u64 * 250, task.id))
        .collect();
    for job in jobs.iter().chain(std::iter::once(&jobs[3])) {
        w.queue.enqueue(job).await.unwrap();
    }
    // A detector takes the first job and dies before acknowledging it.
    let dead = w
        .queue
        .pull("detect-dead", 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);

    let (da, dma) = w.detector("detect-a", 2);
    let (db, dmb) = w.detector("detect-b", 2);
    // The reorder window outlasts the dead detector's claim (the queue's
    // 300 ms visibility) and the detection after it, even on a busy
    // machine: its frame, captured first, is not dropped as late (with
    // 100 ms it was, now and then, when the test ran beside others).
    let window = Duration::from_secs(3);
    let (aa, ama) = w.analytics("analytics-a", window, Duration::from_secs(10));
    let (ab, amb) = w.analytics("analytics-b", window, Duration::from_secs(10));
    let rules = |node: &str| {
        RuleEvaluator::new(
            RulesPorts {
                store: w.store.clone(),
                insight_queue: Arc::new(panoptes_infra::jobs::MemoryJobQueue::<
                    panoptes_shared::ports::jobs::InsightJob,
                >::new(QueuePolicy::default())),
                bus: w.bus.clone(),
                leases: w.leases.clone(),
                metrics: Arc::new(WorkerMetrics::default()),
            },
            RulesSettings {
                node: node.into(),
                lease_ttl: Duration::from_secs(15),
                refresh: Duration::ZERO,
                read_max: 1_000,
            },
        )
    };
    let (ra, rb) = (rules("notify-a"), rules("notify-b"));
    let alerts = || async {
        w.store
            .list_alerts(
                w.user,
                &AlertFilter::default(),
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .items
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (a, b) = tokio::join!(da.step(), db.step());
        a.unwrap();
        b.unwrap();
        let (a, b) = tokio::join!(aa.step(), ab.step());
        a.unwrap();
        b.unwrap();
        let (a, b) = tokio::join!(ra.step(), rb.step());
        a.unwrap();
        b.unwrap();
        let stats = w.queue.stats().await.unwrap();
        if ama.published.get() + amb.published.get() == 4
            && stats.waiting + stats.pending == 0
            && !alerts().await.is_empty()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not finish in 30 s: {stats:?}, {} late",
            ama.late_dropped.get() + amb.late_dropped.get()
        );
    }
    // Each frame was detected and published once, by one analytics owner.
    assert_eq!(w.results().await.len(), 4);
    assert_eq!(dma.duplicate_results.get() + dmb.duplicate_results.get(), 1);
    assert!(ama.published.get() == 0 || amb.published.get() == 0);
    // The dead detector was only slow: its late result is refused.
    let mut late = w.results().await[0].clone();
    late.node_id = "detect-dead".into();
    assert!(!w.log.append(&late).await.unwrap());

    // Two scheduler replicas meter the running task at once.
    let now = panoptes_shared::time::now();
    let (a, b) = tokio::join!(meter_all(store, now), meter_all(store, now));
    let while_running = a.unwrap() + b.unwrap();
    assert!(
        while_running > 0,
        "the minutes settled 30 s ago are due while it runs"
    );
    let stopped_at = panoptes_shared::time::now();
    end(store, &task, TaskEnd::stopped(StopReason::User, stopped_at))
        .await
        .unwrap();
    let (a, b) = tokio::join!(meter_all(store, stopped_at), meter_all(store, stopped_at));
    assert_eq!(
        a.unwrap() + b.unwrap(),
        0,
        "metered to its end when it stopped"
    );

    let period = panoptes_shared::domain::plan::billing_period(started).0;
    let totals = w
        .store
        .usage_totals(w.user, Some(w.device), &period)
        .await
        .unwrap();
    let ran = (stopped_at.timestamp() - started.timestamp()) as u64;
    assert_eq!(totals.get(&Feature::AnalysisSeconds), Some(&ran));
    let fired = alerts().await;
    assert_eq!(fired.len(), 1);
    assert_eq!(totals.get(&Feature::AlertCount), Some(&1));
    // The ledger's events: one per minute of the task touched, one alert.
    let events = w
        .store
        .list_usage_events(
            w.user,
            &Default::default(),
            PageRequest {
                page: 1,
                limit: 100,
            },
        )
        .await
        .unwrap()
        .items;
    let minutes = events
        .iter()
        .filter(|e| e.feature == Feature::AnalysisSeconds)
        .count();
    let first_minute = started.timestamp() / 60;
    let last_minute = (stopped_at.timestamp() - 1) / 60;
    assert_eq!(minutes as i64, last_minute - first_minute + 1);
    let alert_events: Vec<_> = events
        .iter()
        .filter(|e| e.feature == Feature::AlertCount)
        .collect();
    assert_eq!(alert_events.len(), 1);
    assert_eq!(alert_events[0].id, format!("alert:{}", fired[0].id));
}
