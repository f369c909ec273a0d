//! Typed identifiers. Every id is a UUID underneath, but a `DeviceId` cannot be
//! passed where a `SceneId` is expected, so a mixed-up argument is a compile error.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id: rows inserted together stay close in indexes.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        /// On the wire, a plain UUID string.
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                <Uuid as schemars::JsonSchema>::schema_name()
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                <Uuid as schemars::JsonSchema>::json_schema(generator)
            }
        }
    };
}

typed_id!(
    /// A tenant: one customer account.
    UserId
);
typed_id!(
    /// A login session; the `jti` of its session token.
    SessionId
);
typed_id!(
    /// An API key (the id, never the secret).
    ApiKeyId
);
typed_id!(
    /// A registered camera or frame source.
    DeviceId
);
typed_id!(
    /// An analysis scene (zones + parameters) on a device.
    SceneId
);
typed_id!(
    /// A frame job: one frame to analyse. Its detection result is recorded
    /// once per job id (a reclaimed job is not counted twice).
    JobId
);
typed_id!(
    /// An analysis task: one run of a scene's analysis on a device, started
    /// and stopped by the API or the schedule. The `<taskId>` of SSE event ids.
    TaskId
);
typed_id!(
    /// An alert rule: a condition on a scene's queue metrics.
    AlertRuleId
);
typed_id!(
    /// One firing of an alert rule.
    AlertId
);
typed_id!(
    /// A user's webhook endpoint configuration.
    WebhookId
);
typed_id!(
    /// One event sent (and maybe re-sent) to a webhook endpoint; its
    /// `webhook-id` header, the same on every attempt.
    DeliveryId
);
typed_id!(
    /// The VLM's reading of one alert (at most one per alert).
    InsightId
);
typed_id!(
    /// One person's attributes (clothing colours) as observed on one track at
    /// one time; a track gets a new record at most every refresh interval.
    AttributeId
);
