//! Realistic `analysis_result` events for tests, demos and load tools: a
//! queue that fills and drains, people with tracked boxes in two zones.
//! There is no public endpoint to publish: results come from analytics only.

use panoptes_shared::Result;
use panoptes_shared::ids::{DeviceId, UserId};
use panoptes_shared::ports::{BusEvent, EventBus, Publication};
use serde_json::json;
use uuid::Uuid;

/// The `data` of the `n`-th demo event of a task. Two fields beyond the
/// documented payload serve load tools: `seq` (= `n`, to check for gaps) and
/// `sentAtUs` (epoch microseconds, for publish-to-client latency).
pub fn analysis_result(
    device: DeviceId,
    task: Uuid,
    scene: Uuid,
    n: u64,
    sent_at_us: u64,
) -> String {
    let in_queue = (n % 7) as usize;
    let in_service = (n % 3).min(2) as usize;
    let detections: Vec<_> = (0..in_queue + in_service)
        .map(|i| {
            let queued = i < in_queue;
            json!({
                "type": "person",
                "confidence": 0.62 + (i as f64 * 0.037) % 0.35,
                "boundingBox": {"x": 0.08 + 0.07 * i as f64 % 0.8, "y": if queued { 0.35 } else { 0.62 }, "width": 0.06, "height": 0.21},
                "trackId": format!("t{}", (n / 5) * 10 + i as u64),
                "zone": if queued { "queue" } else { "checkout" },
            })
        })
        .collect();
    json!({
        "deviceId": device,
        "analysisId": task,
        "sceneId": scene,
        "timestamp": panoptes_shared::time::rfc3339(chrono::Utc::now()),
        "detections": detections,
        "metrics": {"inQueue": in_queue, "inService": in_service},
        "seq": n,
        "sentAtUs": sent_at_us,
    })
    .to_string()
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
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let data = analysis_result(device, task, scene, n, now_us);
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
