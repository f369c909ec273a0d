//! What the detector finds in one frame, and the COCO classes it maps to the
//! scene's `person` / `vehicle`.

use crate::domain::attribute::PersonAttributes;
use crate::domain::scene::DetectClass;
use crate::ids::{DeviceId, JobId, SceneId, TaskId, UserId};
use serde::{Deserialize, Serialize};

/// A box in fractions of the frame (0-1, origin top-left).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BoundingBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width, as a fraction of the frame's width.
    pub width: f32,
    /// Height, as a fraction of the frame's height.
    pub height: f32,
}

impl BoundingBox {
    /// From pixel corners in an image of `w` x `h`, clamped to the image.
    pub fn from_corners(x1: f32, y1: f32, x2: f32, y2: f32, w: u32, h: u32) -> Self {
        let (w, h) = (w.max(1) as f32, h.max(1) as f32);
        let (x1, x2) = ((x1 / w).clamp(0.0, 1.0), (x2 / w).clamp(0.0, 1.0));
        let (y1, y2) = ((y1 / h).clamp(0.0, 1.0), (y2 / h).clamp(0.0, 1.0));
        Self {
            x: x1,
            y: y1,
            width: (x2 - x1).max(0.0),
            height: (y2 - y1).max(0.0),
        }
    }
}

/// One object found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    /// `person` or `vehicle`.
    #[serde(rename = "type", with = "class_name")]
    pub class: DetectClass,
    pub confidence: f32,
    pub bounding_box: BoundingBox,
    /// What the person looks like, read from the frame: only for people in
    /// frames of tasks that describe them (capability `attributes` on plan
    /// level_02). Absent in results from before this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<PersonAttributes>,
}

/// The detector's verdict on one frame job: written once per job id to the
/// device's detections stream, then ordered and published by analytics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectionResult {
    pub job_id: JobId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub scene_id: SceneId,
    pub task_id: TaskId,
    pub captured_at_ms: u64,
    /// Frame size in pixels.
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
    /// Decode + inference + post-processing of this frame (its share of the batch).
    pub processing_ms: f32,
    pub node_id: String,
    /// Blob key of the snapshot stored with this frame, if one was.
    pub snapshot_key: Option<String>,
    /// W3C `traceparent` of the detect span: analytics continues the frame's
    /// trace when it publishes. Absent in results from before this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// COCO-80 (0-based) class index to the scene class it counts as.
pub fn coco_class(index: usize) -> Option<DetectClass> {
    match index {
        0 => Some(DetectClass::Person),
        // bicycle, car, motorcycle, bus, truck
        1 | 2 | 3 | 5 | 7 => Some(DetectClass::Vehicle),
        _ => None,
    }
}

mod class_name {
    use super::DetectClass;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &DetectClass, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DetectClass, D::Error> {
        let s = String::deserialize(d)?;
        DetectClass::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown class `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_normalised_and_clamped() {
        let b = BoundingBox::from_corners(-10.0, 50.0, 400.0, 700.0, 800, 600);
        assert_eq!(b.x, 0.0);
        assert!((b.y - 50.0 / 600.0).abs() < 1e-6);
        assert!((b.width - 0.5).abs() < 1e-6);
        assert!((b.y + b.height - 1.0).abs() < 1e-6);
    }

    #[test]
    fn results_round_trip_as_camel_case_json() {
        let r = DetectionResult {
            job_id: JobId::new(),
            user_id: UserId::new(),
            device_id: DeviceId::new(),
            scene_id: SceneId::new(),
            task_id: TaskId::new(),
            captured_at_ms: 1,
            width: 768,
            height: 576,
            detections: vec![Detection {
                class: DetectClass::Person,
                confidence: 0.5,
                bounding_box: BoundingBox::from_corners(1.0, 2.0, 3.0, 4.0, 10, 10),
                attributes: None,
            }],
            processing_ms: 3.5,
            node_id: "n1".into(),
            snapshot_key: None,
            traceparent: None,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains("\"type\":\"person\"") && json.contains("boundingBox"),
            "{json}"
        );
        assert!(!json.contains("traceparent"), "{json}");
        assert!(!json.contains("attributes"), "{json}");
        assert_eq!(serde_json::from_str::<DetectionResult>(&json).unwrap(), r);
        let mut described = r.clone();
        described.detections[0].attributes = Some(PersonAttributes {
            upper_color: crate::domain::attribute::ColorName::Red,
            lower_color: crate::domain::attribute::ColorName::Blue,
            upper_color_share: 0.6,
            lower_color_share: 0.7,
        });
        let json = serde_json::to_string(&described).unwrap();
        assert!(json.contains("\"upperColor\":\"red\""), "{json}");
        assert_eq!(
            serde_json::from_str::<DetectionResult>(&json).unwrap(),
            described
        );
        let traced = DetectionResult {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ..r
        };
        let json = serde_json::to_string(&traced).unwrap();
        assert!(json.contains("\"traceparent\":\"00-4bf9"), "{json}");
        assert_eq!(
            serde_json::from_str::<DetectionResult>(&json).unwrap(),
            traced
        );
        assert_eq!(coco_class(0), Some(DetectClass::Person));
        assert_eq!(coco_class(2), Some(DetectClass::Vehicle));
        assert_eq!(coco_class(16), None);
    }
}
