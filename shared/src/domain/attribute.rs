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
use crate::ids::{AttributeId, DeviceId, SceneId, TaskId, UserId};

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

/// What one person looks like: the `attributes` of a detection on the live
/// stream, and the body of an [`AttributeRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonAttributes {
    /// Dominant colour of the upper body (torso) clothing.
    #[schemars(with = "String")]
    pub upper_color: ColorName,
    /// Dominant colour of the lower body (legs) clothing.
    #[schemars(with = "String")]
    pub lower_color: ColorName,
    /// Share (0-1) of the upper region's pixels that have the upper colour.
    pub upper_color_share: f32,
    /// Share (0-1) of the lower region's pixels that have the lower colour.
    pub lower_color_share: f32,
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
