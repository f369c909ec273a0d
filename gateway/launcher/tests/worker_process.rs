//! `panoptes-worker --role detect --role analytics` as its own process, on
//! Redis, S3 and a SQLite store shared with the test: a frame job goes in,
//! an `analysis_result` comes out on the bus, `/metrics` counts it, the node
//! heartbeats; SIGKILLed, it is reported offline.

#[path = "../../../workers/tests/common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use panoptes_infra::bus::RedisBus;
use panoptes_infra::coord::RedisNodes;
use panoptes_infra::jobs::RedisJobQueue;
use panoptes_infra::wiring::queue_policy;
use panoptes_shared::config::Config;
use panoptes_shared::ids::{JobId, TaskId};
use panoptes_shared::ports::jobs::{FrameJob, now_ms};
use panoptes_shared::ports::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use common::env;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_worker_binary_detects_publishes_reports_and_goes_offline_when_killed() {
    let redis_url = env("PANOPTES_TEST_REDIS_URL", "redis://127.0.0.1:6379");
    let prefix = format!("panoptes-test:{}", Uuid::new_v4());
    let dir = std::env::temp_dir().join(format!("panoptes-proc-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store_url = format!("sqlite:{}", dir.join("p.db").display());
    let store = panoptes_infra::store::SqlStore::connect(&panoptes_infra::store::StoreOptions {
        url: format!("{store_url}?mode=rwc"),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let (user, device, scene) = common::tenant(&store).await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bucket = format!("pp-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let child = Command::new(env!("CARGO_BIN_EXE_panoptes-worker"))
        .args(["--role", "detect", "--role", "analytics"])
        .env("PANOPTES__REDIS__URL", &redis_url)
        .env("PANOPTES__REDIS__KEY_PREFIX", &prefix)
        .env("PANOPTES__STORE__URL", &store_url)
        .env("PANOPTES__DATA__DIR", &dir)
        .env(
            "PANOPTES__AUTH__JWT_SECRET",
            "a-test-secret-that-is-long-enough-for-hs256",
        )
        .env("PANOPTES__BLOBS__BACKEND", "s3")
        .env("PANOPTES__BLOBS__S3_BUCKET", &bucket)
        .env(
            "PANOPTES__BLOBS__S3_ENDPOINT",
            env("PANOPTES_TEST_S3_ENDPOINT", "http://127.0.0.1:8014"),
        )
        .env("PANOPTES__BLOBS__S3_PATH_STYLE", "true")
        .env(
            "PANOPTES__BLOBS__S3_ACCESS_KEY",
            env("PANOPTES_TEST_S3_ACCESS_KEY", "panoptes-test"),
        )
        .env(
            "PANOPTES__BLOBS__S3_SECRET_KEY",
            env("PANOPTES_TEST_S3_SECRET_KEY", "panoptes-test-secret"),
        )
        .env("PANOPTES__DETECTOR__ORT_LIBRARY", common::ort_library())
        .env(
            "PANOPTES__DETECTOR__MODEL_PATH",
            common::root().join("workers/models/nanodet-m-416.onnx"),
        )
        .env("PANOPTES__DETECTOR__THREADS", "2")
        .env("PANOPTES__WORKER__NODE_ID", "proc-node")
        .env(
            "PANOPTES__WORKER__METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("PANOPTES__WORKER__HEARTBEAT_MS", "300")
        .env("PANOPTES__WORKER__NODE_TTL_MS", "2000")
        .env("PANOPTES__ANALYTICS__REORDER_WINDOW_MS", "100")
        .env("PANOPTES__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the worker binary starts");
    let mut child = Killed(child);
    let client = redis::Client::open(redis_url).unwrap();
    let conn = panoptes_infra::redis_conn::RedisConn::connect(client.clone(), Default::default())
        .await
        .unwrap();
    let bus = RedisBus::connect(client.clone(), conn.clone(), prefix.clone())
        .await
        .unwrap();
    let mut events = bus.subscribe(user).await.unwrap();
    let queue = RedisJobQueue::connect(
        &client,
        conn.clone(),
        prefix.clone(),
        queue_policy(&Config::default()),
    )
    .await
    .unwrap();
    let task = TaskId::new();
    queue
        .enqueue(&FrameJob {
            id: JobId::new(),
            user,
            device,
            scene,
            task,
            captured_at_ms: now_ms(),
            jpeg: std::fs::read(common::fixtures().join("frames/vtest-650.jpg")).unwrap(),
            traceparent: None,
            attributes: false,
        })
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("an analysis_result within a minute (model load included)")
        .expect("subscription open");
    let data: Value = common::documented_event(&event.data);
    assert_eq!(event.task, task);
    assert_eq!(data["deviceId"], device.to_string());
    assert_eq!(data["computeNodeId"], "proc-node");
    assert!(data["detections"].as_array().unwrap().len() >= 3, "{data}");
    let snapshot = data["snapshotUrl"]
        .as_str()
        .expect("the device's first frame has a snapshot");
    assert!(snapshot.contains(&bucket), "a presigned S3 URL: {snapshot}");
    assert_eq!(reqwest::get(snapshot).await.unwrap().status(), 200);
    // The event can reach us before the publisher has counted it: wait
    // (bounded) for the count rather than read it once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("panoptes_analytics_published_total 1")
            || tokio::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metrics.contains("panoptes_detect_frames_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("panoptes_analytics_published_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("panoptes_detect_frame_seconds_count 1"),
        "{metrics}"
    );
    common::promtool_check(&metrics);
    let nodes = RedisNodes::new(conn, prefix);
    let listed = nodes.list().await.unwrap();
    assert!(
        listed.iter().any(|n| n.info.id == "proc-node" && n.online),
        "{listed:?}"
    );
    // SIGKILL: no goodbye. Its heartbeat lapses and it is reported offline.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let gone = nodes.take_offline().await.unwrap();
        if gone.iter().any(|n| n.info.id == "proc-node") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the killed node never went offline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every series a worker can export, with samples, served by the worker's
/// own listener and checked by promtool (the binary test above checks what a
/// detect + analytics node exports after real traffic).
#[tokio::test]
async fn worker_metrics_pass_promtool() {
    use std::sync::Arc;

    use panoptes_shared::ports::QueueStats;
    use panoptes_workers::metrics::WorkerMetrics;

    let metrics = Arc::new(WorkerMetrics::default());
    metrics.observe_batch(4, 0.040, 0.012);
    metrics.observe_batch(1, 0.008, 0.009);
    for c in [&metrics.frames, &metrics.published, &metrics.ingest_frames] {
        c.add(5);
    }
    metrics.set_queue(QueueStats {
        waiting: 3,
        pending: 2,
        oldest_age_ms: Some(1_250),
        dropped_stale: 7,
        dead_letters: 1,
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(panoptes_workers::server::serve(
        format!("127.0.0.1:{port}"),
        metrics,
        shutdown.clone(),
    ));
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        match reqwest::get(&url).await {
            Ok(r) => break r.text().await.unwrap(),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the worker's /metrics never answered: {e}"),
        }
    };
    shutdown.cancel();
    for line in [
        "panoptes_detect_inference_seconds_bucket{le=\"0.01\"} 1\n",
        "panoptes_detect_frame_seconds_count 5\n",
        "panoptes_jobs_oldest_age_seconds 1.25\n",
        "# TYPE panoptes_jobs_dropped_stale_total counter\npanoptes_jobs_dropped_stale_total 7\n",
        "panoptes_build_info{version=\"",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    common::promtool_check(&text);
}
