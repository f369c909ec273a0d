//! The detection log's behaviour, in-process and on Redis: once per job id,
//! per-device order with increasing offsets, checkpoints that outlive readers,
//! and the list of recently active devices.

use std::sync::Arc;
use std::time::Duration;

use panoptes_infra::detections::{MemoryDetectionLog, RedisDetectionLog};
use panoptes_shared::domain::attribute::{ColorName, PersonAttributes};
use panoptes_shared::domain::detection::{BoundingBox, Detection, DetectionResult};
use panoptes_shared::domain::scene::DetectClass;
use panoptes_shared::ids::{DeviceId, JobId, SceneId, TaskId, UserId};
use panoptes_shared::ports::bus::Offset;
use panoptes_shared::ports::detections::DetectionLog;
use uuid::Uuid;

type Made = std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn DetectionLog>>>>;
type Factory = fn() -> Made;

fn memory() -> Made {
    Box::pin(async { Arc::new(MemoryDetectionLog::new()) as Arc<dyn DetectionLog> })
}

fn redis() -> Made {
    Box::pin(async {
        let client = ::redis::Client::open(crate::backends::redis_url()).expect("redis url");
        let conn = panoptes_infra::redis_conn::RedisConn::connect(client, Default::default())
            .await
            .expect("Redis must be running for these tests");
        Arc::new(RedisDetectionLog::new(
            conn,
            format!("panoptes-test:{}", Uuid::new_v4()),
        )) as Arc<dyn DetectionLog>
    })
}

fn result(device: DeviceId, captured: u64) -> DetectionResult {
    DetectionResult {
        job_id: JobId::new(),
        user_id: UserId::new(),
        device_id: device,
        scene_id: SceneId::new(),
        task_id: TaskId::new(),
        captured_at_ms: captured,
        width: 768,
        height: 576,
        detections: vec![Detection {
            class: DetectClass::Person,
            confidence: 0.8,
            bounding_box: BoundingBox::from_corners(10.0, 20.0, 50.0, 120.0, 768, 576),
            // Read back as written (results of tasks that describe people).
            attributes: Some(PersonAttributes {
                upper_color: ColorName::Red,
                lower_color: ColorName::Blue,
                upper_color_share: 0.5,
                lower_color_share: 0.25,
            }),
        }],
        processing_ms: 12.5,
        node_id: "node-a".into(),
        snapshot_key: Some("u/snapshots/d/1-j.jpg".into()),
        traceparent: Some(panoptes_shared::telemetry::TraceParent::random().to_string()),
    }
}

async fn a_jobs_result_is_recorded_once(make: Factory) {
    let log = make().await;
    let d = DeviceId::new();
    let r = result(d, 1);
    assert!(log.append(&r).await.unwrap());
    let mut again = r.clone();
    again.node_id = "node-b".into(); // reclaimed and processed by another node
    assert!(
        !log.append(&again).await.unwrap(),
        "second result of the job refused"
    );
    let read = log.read(d, Offset::START, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].1, r, "the first result stands, whole");
}

async fn results_are_read_in_append_order_per_device(make: Factory) {
    let log = make().await;
    let (a, b) = (DeviceId::new(), DeviceId::new());
    for c in [30, 10, 20] {
        log.append(&result(a, c)).await.unwrap();
    }
    log.append(&result(b, 5)).await.unwrap();
    let read = log.read(a, Offset::START, 10).await.unwrap();
    let captured: Vec<u64> = read.iter().map(|(_, r)| r.captured_at_ms).collect();
    assert_eq!(
        captured,
        vec![30, 10, 20],
        "append order, not capture order"
    );
    assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
    let after_first = log.read(a, read[0].0, 10).await.unwrap();
    assert_eq!(after_first.len(), 2, "read is strictly after the offset");
    assert_eq!(
        log.read(a, read[0].0, 1).await.unwrap().len(),
        1,
        "max honoured"
    );
    assert_eq!(log.read(b, Offset::START, 10).await.unwrap().len(), 1);
    assert!(
        log.read(DeviceId::new(), Offset::START, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_checkpoint_outlives_its_reader(make: Factory) {
    let log = make().await;
    let d = DeviceId::new();
    assert_eq!(log.checkpoint(d).await.unwrap(), Offset::START);
    log.append(&result(d, 1)).await.unwrap();
    log.append(&result(d, 2)).await.unwrap();
    let read = log.read(d, Offset::START, 10).await.unwrap();
    log.commit(d, read[0].0).await.unwrap();
    // A new owner continues after the committed offset.
    let cursor = log.checkpoint(d).await.unwrap();
    assert_eq!(cursor, read[0].0);
    let rest = log.read(d, cursor, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.captured_at_ms, 2);
}

async fn devices_with_recent_results_are_active(make: Factory) {
    let log = make().await;
    let d = DeviceId::new();
    assert!(
        !log.active_devices(Duration::from_secs(60))
            .await
            .unwrap()
            .contains(&d)
    );
    log.append(&result(d, 1)).await.unwrap();
    assert!(
        log.active_devices(Duration::from_secs(60))
            .await
            .unwrap()
            .contains(&d)
    );
}

macro_rules! for_each_log {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $test() { super::$test(super::memory).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $test() { super::$test(super::redis).await })*
        }
    };
}

for_each_log!(
    a_jobs_result_is_recorded_once,
    results_are_read_in_append_order_per_device,
    a_checkpoint_outlives_its_reader,
    devices_with_recent_results_are_active,
);
