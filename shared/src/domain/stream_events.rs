//! The events of the live analysis stream (`GET .../analysis/stream`), as
//! sent: the analytics role serialises [`AnalysisResult`], the gateway
//! serialises [`StreamTokenEvent`], and the OpenAPI document takes both
//! schemas from these types, so what is sent and what is documented cannot
//! differ. Optional fields are absent when empty, never `null`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::attribute::PersonAttributes;
use crate::domain::detection::BoundingBox;
use crate::domain::device::string_enum;
use crate::domain::queue_metrics::QueueMetrics;
use crate::domain::scene::DetectClass;
use crate::ids::{DeviceId, SceneId, TaskId};

/// `event:` of one analysed frame.
pub const ANALYSIS_RESULT: &str = "analysis_result";
/// `event:` of the first event of every stream (no `id:`).
pub const STREAM_TOKEN: &str = "stream_token";

/// The stream of all of a user's devices.
pub const ALL_DEVICES_STREAM_PATH: &str = "/api/v1/devices/analysis/stream/all";
/// The stream of one device: `DEVICE_STREAM_PATH.0 + <deviceId> + DEVICE_STREAM_PATH.1`.
pub const DEVICE_STREAM_PATH: (&str, &str) = ("/api/v1/devices/", "/analysis/stream");

string_enum!(
    /// The scene zone a detection is in.
    Zone { Queue = "queue", Checkout = "checkout" }
);

/// One `analysis_result` event's `data`: one analysed frame. Sent as
/// `id: <analysisId>-<epochMillis>`, `event: analysis_result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisResult {
    /// The device the frame came from.
    pub device_id: DeviceId,
    /// The analysis task (`<analysisId>` of the event ids).
    pub analysis_id: TaskId,
    /// The scene whose zones and parameters were applied.
    pub scene_id: SceneId,
    /// When the frame was captured (RFC 3339, UTC, milliseconds).
    #[serde(with = "rfc3339_millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub timestamp: DateTime<Utc>,
    /// What was found in the frame, in the scene's class.
    pub detections: Vec<DetectedObject>,
    /// Queue metrics at this frame; absent when the scene has no zones to
    /// measure (for example, it was deleted while the task ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<QueueMetrics>,
    /// The worker node that ran the detector.
    pub compute_node_id: String,
    /// Decode, inference and post-processing time of this frame, in milliseconds.
    pub processing_ms: f32,
    /// A presigned link to the snapshot stored with this frame; absent when
    /// none was stored (at most one every `detector.snapshot_interval_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_url: Option<String>,
}

/// One object found in a frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectedObject {
    /// The object class the scene counts.
    #[serde(rename = "type")]
    pub class: DetectClass,
    /// Detector confidence, 0-1.
    pub confidence: f32,
    pub bounding_box: BoundingBox,
    /// The id of the track this object follows (`t<n>`, per device); absent
    /// when tracking has not assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<String>,
    /// The zone the object is in; absent outside both zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Zone>,
    /// What the person looks like: the track's latest description (made
    /// when the track is first seen, then at most every
    /// `analytics.attribute_refresh_seconds`). Only for people, on devices
    /// of plan level_02 whose task has the `attributes` capability; absent
    /// otherwise, and until the track is first described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<PersonAttributes>,
}

/// The `data` of the first event of every stream, `event: stream_token`
/// (no `id:`): the stream's token, also sent as the `Stream-Token` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamTokenEvent {
    /// Send back as `Stream-Token` or `streamToken` when reconnecting.
    pub stream_token: String,
}

impl AnalysisResult {
    /// The SSE event id: `<analysisId>-<epochMillis>` of the capture time.
    pub fn event_id(&self) -> String {
        format!("{}-{}", self.analysis_id, self.timestamp.timestamp_millis())
    }
}

/// The schemas of the stream events, for an OpenAPI 3.0 document: the
/// `(name, schema)` of each event type and of every type they use.
pub fn schemas() -> Vec<(String, serde_json::Value)> {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let mut out = Vec::new();
    for (name, root) in [
        (
            "AnalysisResult",
            generator.root_schema_for::<AnalysisResult>(),
        ),
        (
            "StreamTokenEvent",
            generator.root_schema_for::<StreamTokenEvent>(),
        ),
    ] {
        let mut root = root.to_value();
        if let Some(map) = root.as_object_mut() {
            map.remove("$schema");
            map.remove("components");
            map.remove("definitions");
            map.remove("$defs");
        }
        out.push((name.to_owned(), root));
    }
    for (name, schema) in generator.take_definitions(true) {
        out.push((name, schema));
    }
    for (_, schema) in &mut out {
        absent_is_not_null(schema);
        unwrap_lines(schema);
    }
    out
}

/// An optional field is left out when empty, never sent as `null`: only
/// required fields keep `nullable` (the wait figures of a window).
fn absent_is_not_null(schema: &mut serde_json::Value) {
    use serde_json::Value;
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, prop) in props.iter_mut() {
        if required.contains(name) {
            continue;
        }
        let Some(obj) = prop.as_object_mut() else {
            continue;
        };
        obj.remove("nullable");
        let reference = obj
            .get("anyOf")
            .and_then(Value::as_array)
            .and_then(|variants| {
                let mut refs = variants.iter().filter(|v| v.get("$ref").is_some());
                let only = refs.next()?.clone();
                refs.next().is_none().then_some(only)
            });
        if let Some(only) = reference {
            obj.remove("anyOf");
            obj.extend(
                only.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
    }
}

/// Doc comments wrap lines; descriptions should not (paragraphs stay).
fn unwrap_lines(schema: &mut serde_json::Value) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    other => unwrap_lines(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_lines),
        _ => {}
    }
}

mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_absent_not_null() {
        let event = AnalysisResult {
            device_id: DeviceId::new(),
            analysis_id: TaskId::new(),
            scene_id: SceneId::new(),
            timestamp: crate::time::from_millis(1_765_000_000_123),
            detections: vec![DetectedObject {
                class: DetectClass::Person,
                confidence: 0.5,
                bounding_box: BoundingBox {
                    x: 0.1,
                    y: 0.2,
                    width: 0.3,
                    height: 0.4,
                },
                track_id: None,
                zone: None,
                attributes: None,
            }],
            metrics: None,
            compute_node_id: "n1".into(),
            processing_ms: 1.5,
            snapshot_url: None,
        };
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains("null"), "{text}");
        assert!(
            text.contains("\"timestamp\":\"2025-12-06T05:46:40.123Z\""),
            "{text}"
        );
        let back: AnalysisResult = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
        assert_eq!(
            event.event_id(),
            format!("{}-1765000000123", event.analysis_id)
        );
    }

    #[test]
    fn schemas_name_every_referenced_type() {
        let schemas = schemas();
        let names: Vec<&str> = schemas.iter().map(|(n, _)| n.as_str()).collect();
        for name in [
            "AnalysisResult",
            "StreamTokenEvent",
            "DetectedObject",
            "QueueMetrics",
            "WindowMetrics",
            "BoundingBox",
            "DetectClass",
            "Zone",
            "PersonAttributes",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let text = serde_json::to_string(&schemas).unwrap();
        assert!(!text.contains("#/$defs"), "{text}");
    }
}
