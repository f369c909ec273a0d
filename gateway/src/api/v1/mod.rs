//! `/api/v1`: one module per resource.

pub mod admin;
pub mod alerts;
pub mod analytics;
pub mod api_keys;
pub mod auth;
pub mod devices;
pub mod edge;
pub mod enums;
pub mod scenes;
pub mod streams;
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
    /// Your webhook endpoint: signed delivery of every platform event.
    Webhooks,
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
