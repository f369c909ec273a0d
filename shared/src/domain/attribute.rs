//! Person attributes (plan level_02, capability `attributes`): what a tracked
//! person looks like, read from the person's crop in the frame. At least the
//! upper and lower clothing colour, each one of a fixed set of names so they
//! can be filtered, counted and searched as words.
//!
//! A track is described once when first seen and again at most every
//! refresh interval; each description is one [`AttributeRecord`] (stored,
//! counted against the `attributeCount` quota, and attached to that track's
//! detections on the live stream until the next one).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::detection::BoundingBox;
use crate::domain::device::string_enum;
use crate::ids::{AttributeId, DeviceId, JobId, SceneId, TaskId, UserId};

string_enum!(
    /// A clothing colour, named from the dominant colour of a body region.
    ColorName {
        Black = "black",
        White = "white",
        Gray = "gray",
        Red = "red",
        Orange = "orange",
        Yellow = "yellow",
        Green = "green",
        Blue = "blue",
        Purple = "purple",
        Pink = "pink",
        Brown = "brown",
    }
);

/// What one person looks like (clothing colours): the `attributes` of a
/// detection on the live stream, and the body of a stored attribute record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonAttributes {
    /// Dominant colour of the upper body (torso) clothing.
    #[schemars(schema_with = "color_schema")]
    pub upper_color: ColorName,
    /// Dominant colour of the lower body (legs) clothing.
    #[schemars(schema_with = "color_schema")]
    pub lower_color: ColorName,
    /// Share (0-1) of the upper region's pixels that have the upper colour.
    pub upper_color_share: f32,
    /// Share (0-1) of the lower region's pixels that have the lower colour.
    pub lower_color_share: f32,
}

/// The schema of a colour: a string, one of the names (inline, so no
/// definition of its own meets the API's `ColorName` in one document).
fn color_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = ColorName::ALL.iter().map(|c| c.as_str()).collect();
    schemars::json_schema!({ "type": "string", "enum": names })
}

/// One stored description of one track.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeRecord {
    pub id: AttributeId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub scene_id: SceneId,
    pub task_id: TaskId,
    /// The track (`t<n>`, per device and task).
    pub track_id: String,
    pub attributes: PersonAttributes,
    /// The detector's confidence in the person.
    pub confidence: f32,
    pub bounding_box: BoundingBox,
    /// The frame's capture time.
    pub observed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl AttributeRecord {
    /// The id of the description of `track` (of `task`) made from frame job
    /// `job`: the same inputs give the same id (a UUID of version 8 from a
    /// SHA-256 of them), so a frame described twice (redelivered, or
    /// republished by the device's next owner) is stored once.
    pub fn id_for(task: TaskId, track: &str, job: JobId) -> AttributeId {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"panoptes-attribute\0")
            .chain_update(task.0.as_bytes())
            .chain_update(job.0.as_bytes())
            .chain_update(track.as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        AttributeId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// The words full-text search matches for this record, e.g.
    /// `"upper red lower blue red blue"`.
    pub fn search_text(&self) -> String {
        let (u, l) = (
            self.attributes.upper_color.as_str(),
            self.attributes.lower_color.as_str(),
        );
        format!("upper {u} lower {l} {u} {l}")
    }
}

/// How many records have each value, most first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributeStats {
    pub total: u64,
    /// Distinct tracks described.
    pub tracks: u64,
    pub upper_colors: Vec<(ColorName, u64)>,
    pub lower_colors: Vec<(ColorName, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_the_same_for_the_same_frame_and_track_only() {
        let (task, job) = (TaskId::new(), JobId::new());
        let id = AttributeRecord::id_for(task, "t1", job);
        assert_eq!(id, AttributeRecord::id_for(task, "t1", job));
        assert_eq!(id.0.get_version_num(), 8);
        assert_ne!(id, AttributeRecord::id_for(task, "t2", job));
        assert_ne!(id, AttributeRecord::id_for(task, "t1", JobId::new()));
        assert_ne!(id, AttributeRecord::id_for(TaskId::new(), "t1", job));
    }

    #[test]
    fn attributes_are_camel_case_on_the_wire() {
        let a = PersonAttributes {
            upper_color: ColorName::Red,
            lower_color: ColorName::Blue,
            upper_color_share: 0.5,
            lower_color_share: 0.75,
        };
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"upperColor": "red", "lowerColor": "blue", "upperColorShare": 0.5, "lowerColorShare": 0.75})
        );
        assert_eq!(serde_json::from_value::<PersonAttributes>(json).unwrap(), a);
    }
}
