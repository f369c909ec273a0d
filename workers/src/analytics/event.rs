//! The `analysis_result` event of one frame, and the seam where per-device
//! analysis (tracking, zones, queue metrics) adds to it.

use panoptes_shared::domain::detection::DetectionResult;
use serde_json::{Value, json};

/// Per-device analysis of consecutive frames (in capture order). [`Tracked`]
/// gives track ids; queue analytics (zones, wait times) extends it.
pub trait FrameAnalysis: Send + Sync {
    /// Per-detection fields (`trackId`, `zone`) and the frame's `metrics`.
    fn analyze(&mut self, result: &DetectionResult) -> Analysis;
}

/// What analysis adds to one frame's event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// One per detection, in order: `(trackId, zone)`.
    pub per_detection: Vec<(Option<String>, Option<String>)>,
    /// `{inQueue, inService, rolling5Min, ...}`; `None` without queue analytics.
    pub metrics: Option<super::queue::QueueMetrics>,
}

/// Track ids only: each detection gets the id of the person it follows
/// (`t<n>`, per device). Zones and queue metrics come with queue analytics.
pub struct Tracked {
    tracker: super::tracker::Tracker,
}

impl Tracked {
    pub fn new(max_age_ms: u64) -> Self {
        Self {
            tracker: super::tracker::Tracker::new(max_age_ms),
        }
    }
}

impl FrameAnalysis for Tracked {
    fn analyze(&mut self, result: &DetectionResult) -> Analysis {
        let boxes: Vec<_> = result.detections.iter().map(|d| d.bounding_box).collect();
        Analysis {
            per_detection: self
                .tracker
                .update(&boxes, result.captured_at_ms)
                .into_iter()
                .map(|id| (Some(format!("t{id}")), None))
                .collect(),
            metrics: None,
        }
    }
}

/// The documented payload: `{deviceId, analysisId, sceneId, timestamp,
/// detections[{type, confidence, boundingBox, trackId, zone}], metrics}`, plus
/// `computeNodeId`, `processingMs` and, when a snapshot was stored with this
/// frame, a presigned `snapshotUrl`.
pub fn analysis_result(
    r: &DetectionResult,
    analysis: &Analysis,
    snapshot_url: Option<&str>,
) -> String {
    let detections: Vec<Value> = r
        .detections
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (track, zone) = analysis.per_detection.get(i).cloned().unwrap_or_default();
            json!({
                "type": d.class.as_str(),
                "confidence": d.confidence,
                "boundingBox": d.bounding_box,
                "trackId": track,
                "zone": zone,
            })
        })
        .collect();
    let captured =
        chrono::DateTime::from_timestamp_millis(r.captured_at_ms as i64).unwrap_or_default();
    let mut event = json!({
        "deviceId": r.device_id,
        "analysisId": r.task_id,
        "sceneId": r.scene_id,
        "timestamp": panoptes_shared::time::rfc3339(captured),
        "detections": detections,
        "computeNodeId": r.node_id,
        "processingMs": r.processing_ms,
    });
    if let Some(m) = &analysis.metrics {
        event["metrics"] = json!(m);
    }
    if let Some(url) = snapshot_url {
        event["snapshotUrl"] = json!(url);
    }
    event.to_string()
}
