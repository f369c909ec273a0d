//! `/api/v1`: one module per resource.

pub mod admin;
pub mod alerts;
pub mod analytics;
pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod devices;
pub mod edge;
pub mod enums;
pub mod insights;
pub mod scenes;
pub mod streams;
pub mod usage;
pub mod webhooks;

use panoptes_shared::Error;
use panoptes_shared::domain::page::PageRequest;
use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Sign up, log in, log out, the current user.
    Auth,
    /// API keys (session token only).
    ApiKeys,
    /// Cameras and other frame sources.
    Devices,
    /// Queue-analysis scenes: zones and parameters.
    Scenes,
    /// Frames and heartbeats pushed by edge devices (device keys).
    Edge,
    /// Stored queue metrics: snapshots and rolling windows.
    Analytics,
    /// Alert rules on queue metrics, and the alerts they fire.
    Alerts,
    /// VLM insights on alerts, person attributes (level_02) and
    /// plain-language search over them.
    Insights,
    /// Your webhook endpoint: signed delivery of every platform event.
    ///
    /// Each event is a `POST` of `{"type": "<event type>", "timestamp": "<RFC 3339>",
    /// "data": {"eventId", "deviceId"?, "taskId"?, ...}}` (`Content-Type:
    /// application/json`) with the Standard Webhooks headers: `webhook-id`
    /// (`msg_<id>`, the same on every attempt: de-duplicate on it),
    /// `webhook-timestamp` (Unix seconds) and `webhook-signature`
    /// (`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`,
    /// keyed with the base64-decoded part of a `whsec_` secret, or the UTF-8
    /// bytes of a secret you chose; after a regeneration two signatures,
    /// space-separated, for 24 h). Answer 2xx within `timeoutMs`; 3xx is not
    /// followed; 410 disables the endpoint; 429 and 503 are retried after
    /// `Retry-After`; anything else after 5 s, 5 min, 30 min, 2 h and 5 h
    /// (with jitter) up to `maxRetries`. Deliveries go out one at a time, in
    /// event order; a failed one pauses the endpoint 5 s (or its `Retry-After`).
    Webhooks,
    /// Usage of each metered feature against the monthly allowance.
    Usage,
    /// The billing dashboard: quota, summaries, usage events, trend, comparison, forecast.
    Billing,
    /// Live analysis results over Server-Sent Events.
    Streams,
    /// Platform administration (admin session only).
    Admin,
    /// Health, readiness and metrics.
    Ops,
}

/// `page`/`limit` query parameters, validated.
pub fn page(page: Option<u32>, limit: Option<u32>) -> Result<PageRequest, Error> {
    PageRequest::parse(page, limit).map_err(Error::from)
}
