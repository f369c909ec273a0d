//! Realistic `analysis_result` events for tests, demos and load tools: a
//! queue that fills and drains, people with tracked boxes in two zones.
//! There is no public endpoint to publish: results come from analytics only.

use panoptes_shared::Result;
use panoptes_shared::domain::detection::BoundingBox;
use panoptes_shared::domain::queue_metrics::{QueueMetrics, WindowMetrics};
use panoptes_shared::domain::scene::DetectClass;
use panoptes_shared::domain::stream_events::{AnalysisResult, DetectedObject, Zone};
use panoptes_shared::ids::{DeviceId, SceneId, TaskId, UserId};
use panoptes_shared::ports::{BusEvent, EventBus, Publication};
use uuid::Uuid;

/// The `n`-th demo event of a task, captured at `at_ms`: the documented
/// event type, as analytics sends it.
pub fn analysis_result(
    device: DeviceId,
    task: Uuid,
    scene: Uuid,
    n: u64,
    at_ms: i64,
) -> AnalysisResult {
    let in_queue = (n % 7) as u32;
    let in_service = (n % 3).min(2) as u32;
    let detections = (0..in_queue + in_service)
        .map(|i| {
            let queued = i < in_queue;
            DetectedObject {
                class: DetectClass::Person,
                confidence: 0.62 + (f64::from(i) * 0.037 % 0.35) as f32,
                bounding_box: BoundingBox {
                    x: (0.08 + 0.07 * f64::from(i) % 0.8) as f32,
                    y: if queued { 0.35 } else { 0.62 },
                    width: 0.06,
                    height: 0.21,
                },
                track_id: Some(format!("t{}", (n / 5) * 10 + u64::from(i))),
                zone: Some(if queued { Zone::Queue } else { Zone::Checkout }),
                attributes: None,
            }
        })
        .collect();
    let window = |scale: u64| WindowMetrics {
        avg_in_queue: f64::from(in_queue) * 0.9,
        max_in_queue: in_queue.max(6),
        avg_in_service: f64::from(in_service),
        arrivals: n * scale / 2,
        departures: n * scale / 3,
        avg_wait_seconds: (n > 3).then_some(42.0),
        median_wait_seconds: (n > 3).then_some(38.0),
        p90_wait_seconds: (n > 3).then_some(71.0),
        wait_samples: n * scale / 3,
        estimated_wait_seconds: (n > 3).then_some(35.0),
    };
    AnalysisResult {
        device_id: device,
        analysis_id: TaskId(task),
        scene_id: SceneId(scene),
        timestamp: panoptes_shared::time::from_millis(at_ms),
        detections,
        metrics: Some(QueueMetrics {
            in_queue,
            in_service,
            rolling5_min: window(1),
            rolling30_min: window(6),
            total: window(12),
            first_ms: 0,
        }),
        compute_node_id: "demo".to_owned(),
        processing_ms: 12.5,
        snapshot_url: None,
    }
}

/// Publish demo events `range` of one analysis task of a device.
pub async fn publish(
    bus: &dyn EventBus,
    user: UserId,
    device: DeviceId,
    task: Uuid,
    range: std::ops::Range<u64>,
) -> Result<Vec<BusEvent>> {
    // One scene per task, derived so a task's events agree without state.
    let scene = Uuid::from_u128(task.as_u128().rotate_left(64));
    let mut out = Vec::with_capacity(range.clone().count());
    for n in range {
        let event = analysis_result(
            device,
            task,
            scene,
            n,
            chrono::Utc::now().timestamp_millis(),
        );
        let data = serde_json::to_string(&event)
            .map_err(|e| panoptes_shared::Error::internal(format!("event encoding: {e}")))?;
        out.push(
            bus.publish(&Publication {
                user,
                device,
                task: task.into(),
                data,
            })
            .await?,
        );
    }
    Ok(out)
}
