//! The `analysis_result` event of one frame, and the seam where per-device
//! analysis (tracking, zones, queue metrics) adds to it.

use panoptes_shared::domain::attribute::PersonAttributes;
use panoptes_shared::domain::detection::DetectionResult;
use panoptes_shared::domain::stream_events::{AnalysisResult, DetectedObject, Zone};

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
    pub per_detection: Vec<(Option<String>, Option<Zone>)>,
    /// `{inQueue, inService, rolling5Min, ...}`; `None` without queue analytics.
    pub metrics: Option<panoptes_shared::domain::queue_metrics::QueueMetrics>,
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

/// The `analysis_result` event of one frame (its documented type), with
/// each detection's track description from `attributes` (one per
/// detection; empty when the task describes nobody) and a presigned
/// `snapshotUrl` when a snapshot was stored with this frame.
pub fn analysis_result(
    r: &DetectionResult,
    analysis: &Analysis,
    attributes: &[Option<PersonAttributes>],
    snapshot_url: Option<&str>,
) -> AnalysisResult {
    let detections = r
        .detections
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (track_id, zone) = analysis.per_detection.get(i).cloned().unwrap_or_default();
            DetectedObject {
                class: d.class,
                confidence: d.confidence,
                bounding_box: d.bounding_box,
                track_id,
                zone,
                attributes: attributes.get(i).copied().flatten(),
            }
        })
        .collect();
    AnalysisResult {
        device_id: r.device_id,
        analysis_id: r.task_id,
        scene_id: r.scene_id,
        timestamp: panoptes_shared::time::from_millis(
            i64::try_from(r.captured_at_ms).unwrap_or(i64::MAX),
        ),
        detections,
        metrics: analysis.metrics.clone(),
        compute_node_id: r.node_id.clone(),
        processing_ms: r.processing_ms,
        snapshot_url: snapshot_url.map(str::to_owned),
    }
}
