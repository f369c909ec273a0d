//! Enum values as the API spells them. Each is derived twice, for the OpenAPI
//! schema (`Enum`) and for parsing (`Deserialize`, so an unknown value is a
//! 400 naming the field), and converts to and from its domain twin.

use panoptes_shared::domain::{api_key, device, metrics_history, plan, scene, task};
use poem_openapi::Enum;
use serde::Deserialize;

macro_rules! api_enum {
    ($(#[$doc:meta])* $name:ident => $domain:path { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
        pub enum $name {
            $(#[oai(rename = $s)] #[serde(rename = $s)] $variant),+
        }

        impl From<$name> for $domain {
            fn from(v: $name) -> Self {
                match v { $($name::$variant => <$domain>::$variant),+ }
            }
        }

        impl From<$domain> for $name {
            fn from(v: $domain) -> Self {
                match v { $(<$domain>::$variant => $name::$variant),+ }
            }
        }
    };
}

api_enum!(
    /// API-key type; decides the key's prefix and default scopes.
    KeyType => api_key::KeyType { Device = "device", Personal = "personal", Service = "service" }
);
api_enum!(
    /// Permission carried by an API key (session tokens have them all).
    Scope => api_key::Scope {
        DeviceRead = "device:read",
        DeviceWrite = "device:write",
        DeviceHeartbeat = "device:heartbeat",
        DeviceSync = "device:sync",
        SceneRead = "scene:read",
        SceneWrite = "scene:write",
        TaskRead = "task:read",
        TaskWrite = "task:write",
        AnalyticsRead = "analytics:read",
        AlertRead = "alert:read",
        AlertWrite = "alert:write",
        WebhookRead = "webhook:read",
        WebhookWrite = "webhook:write",
        BillingRead = "billing:read",
    }
);
api_enum!(
    /// Whether a key can be used.
    KeyStatus => api_key::KeyStatus { Active = "active", Expired = "expired", Revoked = "revoked" }
);
api_enum!(
    /// Where the coordinates came from.
    GeoSource => device::GeoSource { Manual = "manual", Address = "address", Device = "device", Ip = "ip" }
);
api_enum!(
    /// Kind of frame source.
    DeviceType => device::DeviceType { IpCamera = "ip_camera", RtspSource = "rtsp_source", UsbCamera = "usb_camera" }
);
api_enum!(
    /// Connection state, driven by ingest.
    DeviceStatus => device::DeviceStatus { Online = "online", Offline = "offline", Error = "error" }
);
api_enum!(
    /// Billing plan of a device.
    Plan => plan::Plan { Level01 = "level_01", Level02 = "level_02" }
);
api_enum!(
    /// Analysis type; only queue analysis exists.
    AnalysisType => scene::AnalysisType { QueueAnalysis = "queue_analysis" }
);
api_enum!(
    /// A scene must be active for analysis to start.
    SceneStatus => scene::SceneStatus { Active = "active", Inactive = "inactive" }
);
api_enum!(
    /// Object class the detector counts.
    DetectClass => scene::DetectClass { Person = "person", Vehicle = "vehicle" }
);

/// Zone geometry type; always `polygon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
pub enum ZoneType {
    #[oai(rename = "polygon")]
    #[serde(rename = "polygon")]
    Polygon,
}
api_enum!(
    /// Optional capability of an analysis task; both need plan `level_02`.
    Capability => task::Capability { Vlm = "vlm", Attributes = "attributes" }
);
api_enum!(
    /// State of an analysis task.
    TaskStatus => task::TaskStatus { Running = "running", Stopped = "stopped", Failed = "failed" }
);
api_enum!(
    /// Who started an analysis task.
    TaskTrigger => task::TaskTrigger { Api = "api", Schedule = "schedule", Edge = "edge" }
);
api_enum!(
    /// Why an analysis task ended.
    StopReason => task::StopReason {
        User = "user",
        Schedule = "schedule",
        QuotaExhausted = "quota_exhausted",
        SourceError = "source_error",
        SceneUnavailable = "scene_unavailable",
    }
);
api_enum!(
    /// A stored rolling window, named as its metric path.
    RollingWindow => metrics_history::RollingWindow {
        FiveMinutes = "rolling5Min",
        ThirtyMinutes = "rolling30Min",
        Total = "total",
    }
);
