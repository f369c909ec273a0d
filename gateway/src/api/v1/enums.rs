//! The enums of the API. Their spellings are the domain's (`string_enum!`
//! in `panoptes_shared::domain`), written nowhere else: each API enum lists
//! only its variant names, converts to and from its domain twin (an
//! exhaustive match, so a variant added on one side and not the other does
//! not compile), and takes its schema, parsing (JSON, parameters, serde for
//! request bodies, where an unknown value is a 400 naming the field) and
//! serialisation from the domain's `ALL`, `as_str` and `parse`.

use std::borrow::Cow;
use std::sync::OnceLock;

use panoptes_shared::domain::{
    alert, api_key, attribute, device, event, insight, metrics_history, plan, scene, task, webhook,
};
use poem_openapi::Enum;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde::{Deserialize, Deserializer};

macro_rules! api_enum {
    ($(#[doc = $doc:literal])* $name:ident => $domain:path { $($variant:ident),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($variant),+
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

        impl $name {
            pub fn as_str(self) -> &'static str {
                <$domain>::from(self).as_str()
            }

            pub fn parse(s: &str) -> Option<Self> {
                <$domain>::parse(s).map(Self::from)
            }

            fn spellings() -> impl Iterator<Item = &'static str> {
                <$domain>::ALL.iter().map(|v| v.as_str())
            }

            fn description() -> &'static str {
                static TEXT: OnceLock<String> = OnceLock::new();
                TEXT.get_or_init(|| doc_text(&[$($doc),*]))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(unknown(&s, Self::spellings()))
                })
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference(stringify!($name).to_owned())
            }

            fn register(registry: &mut Registry) {
                registry.create_schema::<Self, _>(stringify!($name).to_owned(), |_| MetaSchema {
                    description: Some(Self::description()),
                    enum_items: Self::spellings().map(|s| serde_json::Value::from(s)).collect(),
                    ..MetaSchema::new("string")
                });
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
                let value = value.unwrap_or_default();
                match value.as_str().and_then(Self::parse) {
                    Some(v) => Ok(v),
                    None => Err(ParseError::expected_type(value)),
                }
            }
        }

        impl ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                Self::parse(value).ok_or_else(|| ParseError::custom(unknown(value, Self::spellings())))
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<serde_json::Value> {
                Some(serde_json::Value::from(self.as_str()))
            }
        }
    };
}

/// A doc comment's lines as one description.
fn doc_text(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

fn unknown<'a>(value: &str, expected: impl Iterator<Item = &'a str>) -> String {
    let expected: Vec<String> = expected.map(|s| format!("`{s}`")).collect();
    format!(
        "unknown variant `{value}`, expected one of {}",
        expected.join(", ")
    )
}

api_enum!(
    /// API-key type; decides the key's prefix and default scopes.
    KeyType => api_key::KeyType { Device, Personal, Service }
);
api_enum!(
    /// Permission carried by an API key (session tokens have them all).
    Scope => api_key::Scope {
        DeviceRead,
        DeviceWrite,
        DeviceHeartbeat,
        DeviceSync,
        SceneRead,
        SceneWrite,
        TaskRead,
        TaskWrite,
        AnalyticsRead,
        AlertRead,
        AlertWrite,
        WebhookRead,
        WebhookWrite,
        BillingRead,
    }
);
api_enum!(
    /// Whether a key can be used.
    KeyStatus => api_key::KeyStatus { Active, Expired, Revoked }
);
api_enum!(
    /// Where the coordinates came from.
    GeoSource => device::GeoSource { Manual, Address, Device, Ip }
);
api_enum!(
    /// Kind of frame source.
    DeviceType => device::DeviceType { IpCamera, RtspSource, UsbCamera }
);
api_enum!(
    /// Connection state, driven by ingest.
    DeviceStatus => device::DeviceStatus { Online, Offline, Error }
);
api_enum!(
    /// Billing plan of a device.
    Plan => plan::Plan { Level01, Level02 }
);
api_enum!(
    /// Analysis type; only queue analysis exists.
    AnalysisType => scene::AnalysisType { QueueAnalysis }
);
api_enum!(
    /// A scene must be active for analysis to start.
    SceneStatus => scene::SceneStatus { Active, Inactive }
);
api_enum!(
    /// Object class the detector counts.
    DetectClass => scene::DetectClass { Person, Vehicle }
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
    Capability => task::Capability { Vlm, Attributes }
);
api_enum!(
    /// State of an analysis task.
    TaskStatus => task::TaskStatus { Running, Stopped, Failed }
);
api_enum!(
    /// Who started an analysis task.
    TaskTrigger => task::TaskTrigger { Api, Schedule, Edge }
);
api_enum!(
    /// Why an analysis task ended.
    StopReason => task::StopReason {
        User,
        Schedule,
        QuotaExhausted,
        SourceError,
        SceneUnavailable,
    }
);
api_enum!(
    /// A stored rolling window, named as its metric path.
    RollingWindow => metrics_history::RollingWindow {
        FiveMinutes,
        ThirtyMinutes,
        Total,
    }
);

api_enum!(
    /// How `metricPath` is compared with `threshold`.
    Operator => alert::Operator { Gt, Gte, Lt, Lte, Eq }
);
api_enum!(
    /// How urgent an alert is.
    Severity => alert::Severity { Warning, Critical }
);
api_enum!(
    /// `active` when fired, then `acknowledged` and/or `resolved` (final).
    AlertStatus => alert::AlertStatus { Active, Acknowledged, Resolved }
);
api_enum!(
    /// A platform event type (webhook `type`, `subscribedTypes`).
    EventType => event::EventKind {
        AnalysisStarted,
        AnalysisStopped,
        AnalysisError,
        AlertTriggered,
        DeviceOffline,
        DeviceOnline,
        DeviceAnalysisError,
        NodeOffline,
        NodeOnline,
        NodeError,
        QuotaWarning,
        QuotaExceeded,
        BillingCycleCompleted,
        MaintenanceScheduled,
    }
);
api_enum!(
    /// `pending` (its next attempt is scheduled), `succeeded` (a 2xx), or
    /// `failed` (retries used up, or 410 Gone).
    DeliveryStatus => webhook::DeliveryStatus { Pending, Succeeded, Failed }
);
api_enum!(
    /// Where an insight's VLM analysis is: `pending` (queued or running),
    /// `completed` (it has a summary) or `failed` (`failureReason` says why).
    VlmStatus => insight::VlmStatus { Pending, Completed, Failed }
);
api_enum!(
    /// A clothing colour, named from the dominant colour of a body region.
    ColorName => attribute::ColorName {
        Black,
        White,
        Gray,
        Red,
        Orange,
        Yellow,
        Green,
        Blue,
        Purple,
        Pink,
        Brown,
    }
);
