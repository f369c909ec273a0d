//! Scenes: what to analyse on a device. Only `queue_analysis` exists: a queue
//! zone and/or a checkout zone plus tracking parameters.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::device::string_enum;
use crate::domain::polygon::Polygon;
use crate::error::FieldError;
use crate::ids::{DeviceId, SceneId, UserId};

string_enum!(
    /// The only analysis type; `crowd_analysis` and `intrusion_detection` were removed.
    AnalysisType { QueueAnalysis = "queue_analysis" }
);
string_enum!(
    /// Scenes must be `active` for analysis to start.
    SceneStatus { Active = "active", Inactive = "inactive" }
);
string_enum!(
    /// What the detector counts.
    DetectClass { Person = "person", Vehicle = "vehicle" }
);

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Zones {
    pub queue: Option<Polygon>,
    pub checkout: Option<Polygon>,
}

impl Zones {
    pub fn new(queue: Option<Polygon>, checkout: Option<Polygon>) -> Result<Self, FieldError> {
        if queue.is_none() && checkout.is_none() {
            return Err(FieldError::new(
                "config.zones",
                "queue_analysis needs a queueZone and/or a checkoutZone",
            ));
        }
        Ok(Self { queue, checkout })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneParameters {
    pub confidence_threshold: f64,
    pub class: DetectClass,
    pub entry_threshold_seconds: f64,
    pub exit_threshold_seconds: f64,
    pub tracking_max_age_seconds: f64,
}

impl Default for SceneParameters {
    fn default() -> Self {
        Self {
            confidence_threshold: 0.6,
            class: DetectClass::Person,
            entry_threshold_seconds: 3.0,
            exit_threshold_seconds: 1.0,
            // Not captured in the product pages: long enough to bridge a short
            // occlusion at a few frames per second, short enough not to merge people.
            tracking_max_age_seconds: 5.0,
        }
    }
}

impl SceneParameters {
    pub const SECONDS_RANGE: (f64, f64) = (1.0, 60.0);
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub id: SceneId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub name: String,
    pub description: Option<String>,
    pub analysis_type: AnalysisType,
    pub zones: Zones,
    pub parameters: SceneParameters,
    pub status: SceneStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a scene's configuration is stored: the API's JSON shape, one column.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSceneConfig {
    pub queue_zone: Option<Vec<Vec<f64>>>,
    pub checkout_zone: Option<Vec<Vec<f64>>>,
    pub confidence_threshold: f64,
    pub class: String,
    pub entry_threshold_seconds: f64,
    pub exit_threshold_seconds: f64,
    pub tracking_max_age_seconds: f64,
}

impl StoredSceneConfig {
    pub fn from_scene(zones: &Zones, p: &SceneParameters) -> Self {
        Self {
            queue_zone: zones.queue.as_ref().map(Polygon::to_raw),
            checkout_zone: zones.checkout.as_ref().map(Polygon::to_raw),
            confidence_threshold: p.confidence_threshold,
            class: p.class.as_str().to_owned(),
            entry_threshold_seconds: p.entry_threshold_seconds,
            exit_threshold_seconds: p.exit_threshold_seconds,
            tracking_max_age_seconds: p.tracking_max_age_seconds,
        }
    }

    /// Back to domain values; the config was validated when it was written,
    /// so a failure here means the row was edited by hand.
    pub fn into_parts(self) -> Result<(Zones, SceneParameters), FieldError> {
        let poly = |p: Option<Vec<Vec<f64>>>| p.map(|p| Polygon::parse(&p)).transpose();
        let zones = Zones {
            queue: poly(self.queue_zone)?,
            checkout: poly(self.checkout_zone)?,
        };
        let class = DetectClass::parse(&self.class)
            .ok_or_else(|| FieldError::new("class", "unknown class"))?;
        Ok((
            zones,
            SceneParameters {
                confidence_threshold: self.confidence_threshold,
                class,
                entry_threshold_seconds: self.entry_threshold_seconds,
                exit_threshold_seconds: self.exit_threshold_seconds,
                tracking_max_age_seconds: self.tracking_max_age_seconds,
            },
        ))
    }
}
