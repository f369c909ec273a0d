//! Scene request and response bodies, and their conversion to domain values.

use chrono::{DateTime, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::polygon::Polygon;
use panoptes_shared::domain::scene::{self as domain, SceneParameters, Zones};
use panoptes_shared::domain::validate::{optional_multiline, range, text};
use panoptes_shared::error::FieldError;
use panoptes_shared::ids::{DeviceId, SceneId, UserId};
use panoptes_shared::time::now;
use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::v1::enums::{AnalysisType, DetectClass, SceneStatus, ZoneType};

/// A polygon in frame fractions (0-1): 3-20 `[x, y]` points, not self-intersecting.
#[derive(Debug, Clone, Object, Deserialize)]
pub struct ZoneDto {
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub zone_type: ZoneType,
    #[oai(validator(min_items = 3, max_items = 20))]
    pub points: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ZonesDto {
    pub queue_zone: Option<ZoneDto>,
    pub checkout_zone: Option<ZoneDto>,
}

/// Algorithm parameters; absent ones take their defaults on create and stay unchanged on update.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ParametersDto {
    /// 0.0-1.0, default 0.6.
    #[oai(validator(minimum(value = "0"), maximum(value = "1")))]
    pub confidence_threshold: Option<f64>,
    /// Default `person`.
    pub class: Option<DetectClass>,
    /// Seconds inside the queue zone before a track counts as queued: 1-60, default 3.
    #[oai(validator(minimum(value = "1"), maximum(value = "60")))]
    pub entry_threshold_seconds: Option<f64>,
    /// Seconds outside before a track counts as gone: 1-60, default 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "60")))]
    pub exit_threshold_seconds: Option<f64>,
    /// Seconds a lost track is kept for re-association: 1-60, default 5.
    #[oai(validator(minimum(value = "1"), maximum(value = "60")))]
    pub tracking_max_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct SceneConfigDto {
    /// `queueZone` and/or `checkoutZone`; at least one is required.
    pub zones: Option<ZonesDto>,
    pub parameters: Option<ParametersDto>,
}

#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct CreateSceneRequest {
    pub device_id: Uuid,
    /// 1-100 characters.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    pub analysis_type: AnalysisType,
    pub config: Option<SceneConfigDto>,
    /// Default `active`.
    pub status: Option<SceneStatus>,
}

#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct UpdateSceneRequest {
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<String>,
    #[serde(default)]
    #[oai(validator(max_length = 500))]
    pub description: MaybeUndefined<String>,
    /// `zones`, when given, replace the scene's zones; `parameters` merge field by field.
    pub config: Option<SceneConfigDto>,
    pub status: Option<SceneStatus>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SceneDto {
    pub id: Uuid,
    pub device_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub analysis_type: AnalysisType,
    pub config: SceneConfigDto,
    pub status: SceneStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn zone_dto(p: &Polygon) -> ZoneDto {
    ZoneDto {
        zone_type: ZoneType::Polygon,
        points: p.to_raw(),
    }
}

impl From<&domain::Scene> for SceneDto {
    fn from(s: &domain::Scene) -> Self {
        let p = &s.parameters;
        Self {
            id: s.id.0,
            device_id: s.device_id.0,
            name: s.name.clone(),
            description: s.description.clone(),
            analysis_type: s.analysis_type.into(),
            config: SceneConfigDto {
                zones: Some(ZonesDto {
                    queue_zone: s.zones.queue.as_ref().map(zone_dto),
                    checkout_zone: s.zones.checkout.as_ref().map(zone_dto),
                }),
                parameters: Some(ParametersDto {
                    confidence_threshold: Some(p.confidence_threshold),
                    class: Some(p.class.into()),
                    entry_threshold_seconds: Some(p.entry_threshold_seconds),
                    exit_threshold_seconds: Some(p.exit_threshold_seconds),
                    tracking_max_age_seconds: Some(p.tracking_max_age_seconds),
                }),
            },
            status: s.status.into(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

fn zones(z: Option<ZonesDto>) -> Result<Zones, FieldError> {
    let z = z.ok_or_else(|| {
        FieldError::new(
            "config.zones",
            "queue_analysis needs a queueZone and/or a checkoutZone",
        )
    })?;
    let poly = |zone: Option<ZoneDto>, name: &str| {
        zone.map(|zone| {
            Polygon::parse(&zone.points).map_err(|e| e.within(&format!("config.zones.{name}")))
        })
        .transpose()
    };
    Zones::new(
        poly(z.queue_zone, "queueZone")?,
        poly(z.checkout_zone, "checkoutZone")?,
    )
}

fn merge_parameters(
    base: SceneParameters,
    p: Option<ParametersDto>,
) -> Result<SceneParameters, FieldError> {
    let Some(p) = p else { return Ok(base) };
    let (lo, hi) = SceneParameters::SECONDS_RANGE;
    let seconds = |field: &str, v: Option<f64>, current: f64| {
        v.map_or(Ok(current), |v| {
            range(&format!("config.parameters.{field}"), v, lo, hi)
        })
    };
    Ok(SceneParameters {
        confidence_threshold: p
            .confidence_threshold
            .map_or(Ok(base.confidence_threshold), |v| {
                range("config.parameters.confidenceThreshold", v, 0.0, 1.0)
            })?,
        class: p.class.map_or(base.class, Into::into),
        entry_threshold_seconds: seconds(
            "entryThresholdSeconds",
            p.entry_threshold_seconds,
            base.entry_threshold_seconds,
        )?,
        exit_threshold_seconds: seconds(
            "exitThresholdSeconds",
            p.exit_threshold_seconds,
            base.exit_threshold_seconds,
        )?,
        tracking_max_age_seconds: seconds(
            "trackingMaxAgeSeconds",
            p.tracking_max_age_seconds,
            base.tracking_max_age_seconds,
        )?,
    })
}

impl CreateSceneRequest {
    /// Validate into a scene of `owner` on `device` (whose ownership the caller checked).
    pub fn into_scene(self, owner: UserId, device: DeviceId) -> Result<domain::Scene, Error> {
        let config = self.config.unwrap_or(SceneConfigDto {
            zones: None,
            parameters: None,
        });
        let t = now();
        Ok(domain::Scene {
            id: SceneId::new(),
            user_id: owner,
            device_id: device,
            name: text("name", &self.name, 1, 100)?,
            description: optional_multiline("description", self.description.as_deref(), 500)?,
            analysis_type: self.analysis_type.into(),
            zones: zones(config.zones)?,
            parameters: merge_parameters(SceneParameters::default(), config.parameters)?,
            status: self.status.map_or(domain::SceneStatus::Active, Into::into),
            created_at: t,
            updated_at: t,
        })
    }
}

impl UpdateSceneRequest {
    pub fn apply(self, s: &mut domain::Scene) -> Result<(), Error> {
        if let Some(name) = self.name {
            s.name = text("name", &name, 1, 100)?;
        }
        match self.description {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => s.description = None,
            MaybeUndefined::Value(d) => {
                s.description = optional_multiline("description", Some(&d), 500)?
            }
        }
        if let Some(config) = self.config {
            if config.zones.is_some() {
                s.zones = zones(config.zones)?;
            }
            s.parameters = merge_parameters(s.parameters, config.parameters)?;
        }
        if let Some(status) = self.status {
            s.status = status.into();
        }
        s.updated_at = now();
        Ok(())
    }
}
