//! The analytics role: the one owner of each device's results (a lease),
//! restoring capture order and publishing `analysis_result` events.
//! Tracking, zones and queue metrics plug in at [`event::FrameAnalysis`];
//! the tracks' person attributes are kept by `describe`.

mod describe;
pub mod dwell;
pub mod event;
mod order;
pub mod persist;
pub mod queue;
pub mod tracker;
mod worker;

pub use order::{Released, Reorder};
pub use worker::{AnalyticsPorts, AnalyticsSettings, AnalyticsWorker};

/// A result captured at `captured_ms` with `detections`, for unit tests.
#[cfg(test)]
pub(crate) fn test_result(
    captured_ms: u64,
    detections: Vec<panoptes_shared::domain::detection::Detection>,
) -> panoptes_shared::domain::detection::DetectionResult {
    panoptes_shared::domain::detection::DetectionResult {
        job_id: panoptes_shared::ids::JobId::new(),
        user_id: panoptes_shared::ids::UserId::new(),
        device_id: panoptes_shared::ids::DeviceId::new(),
        scene_id: panoptes_shared::ids::SceneId(uuid::Uuid::nil()),
        task_id: panoptes_shared::ids::TaskId(uuid::Uuid::nil()),
        captured_at_ms: captured_ms,
        width: 100,
        height: 100,
        detections,
        processing_ms: 1.0,
        node_id: "n".into(),
        snapshot_key: None,
        traceparent: None,
    }
}
