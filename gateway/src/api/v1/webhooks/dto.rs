//! Webhook request and response bodies.

use chrono::{DateTime, Utc};
use panoptes_shared::domain::webhook::{self as domain};
use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::v1::enums::{DeliveryStatus, EventType};

#[derive(Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct CreateWebhookRequest {
    /// An `https://` URL of at most 500 characters, on a public address.
    #[oai(validator(min_length = 1, max_length = 500))]
    pub url: String,
    /// Display name, at most 100 characters.
    #[oai(validator(max_length = 100))]
    pub name: Option<String>,
    /// Signing secret, 16-128 characters; generated (`whsec_` + 32 random
    /// bytes, base64) when left out. A `whsec_` secret signs with its
    /// base64-decoded bytes, any other with its UTF-8 bytes.
    #[oai(validator(min_length = 16, max_length = 128))]
    pub secret: Option<String>,
    /// The event types to deliver; left out or empty: all of them.
    pub subscribed_types: Option<Vec<EventType>>,
    /// Per-attempt timeout, 1000-30000 ms, default 5000.
    #[oai(validator(minimum(value = "1000"), maximum(value = "30000")))]
    pub timeout_ms: Option<u32>,
    /// Retries after a failed attempt, 0-5, default 3.
    #[oai(validator(minimum(value = "0"), maximum(value = "5")))]
    pub max_retries: Option<u32>,
}

/// No `Debug`: it would print the secret.
impl std::fmt::Debug for CreateWebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateWebhookRequest")
            .field("url", &self.url)
            .field("has_secret", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Object, Deserialize)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct UpdateWebhookRequest {
    #[oai(validator(min_length = 1, max_length = 500))]
    pub url: Option<String>,
    /// `null` removes the name.
    #[serde(default)]
    #[oai(validator(max_length = 100))]
    pub name: MaybeUndefined<String>,
    /// `null` or empty: all event types.
    #[serde(default)]
    pub subscribed_types: MaybeUndefined<Vec<EventType>>,
    #[oai(validator(minimum(value = "1000"), maximum(value = "30000")))]
    pub timeout_ms: Option<u32>,
    #[oai(validator(minimum(value = "0"), maximum(value = "5")))]
    pub max_retries: Option<u32>,
    /// `true` re-enables an endpoint the platform disabled (410 Gone);
    /// `false` pauses deliveries (events meanwhile are not queued).
    pub enabled: Option<bool>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookDto {
    pub id: Uuid,
    pub url: String,
    pub name: Option<String>,
    /// Empty: every event type.
    pub subscribed_types: Vec<EventType>,
    pub timeout_ms: u32,
    pub max_retries: u32,
    pub enabled: bool,
    /// Why the platform disabled it (the receiver answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// Deliveries wait until then: the receiver failed or sent `Retry-After`.
    pub paused_until: Option<DateTime<Utc>>,
    /// The signing secret: only in the response that created it.
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookDto {
    pub fn new(w: &domain::Webhook, secret: Option<String>) -> Self {
        Self {
            id: w.id.0,
            url: w.url.clone(),
            name: w.name.clone(),
            subscribed_types: w.subscribed_types.iter().map(|t| (*t).into()).collect(),
            timeout_ms: w.timeout_ms,
            max_retries: w.max_retries,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            paused_until: w.paused_until.filter(|t| *t > Utc::now()),
            secret,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// The signing secret.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SecretDto {
    pub secret: String,
    /// After a regeneration, the previous secret also signs until then
    /// (`webhook-signature` carries both), so receivers can switch over.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// One attempt of a delivery.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AttemptDto {
    /// 1 for the first attempt; numbering continues across redeliveries.
    pub number: u32,
    pub started_at: DateTime<Utc>,
    /// The receiver's HTTP status; absent when there was no response.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// The first 1 KiB of the response body.
    pub response_body: Option<String>,
    /// Why there was no usable response (timeout, refused target, TLS...).
    pub error: Option<String>,
    pub succeeded: bool,
}

impl From<&domain::Attempt> for AttemptDto {
    fn from(a: &domain::Attempt) -> Self {
        Self {
            number: a.number,
            started_at: a.started_at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response_body: a.response_body.clone(),
            error: a.error.clone(),
            succeeded: a.succeeded,
        }
    }
}

/// One event sent (and maybe re-sent) to your endpoint.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeliveryDto {
    pub id: Uuid,
    /// The `webhook-id` header of every attempt (`msg_<id>`): de-duplicate on it.
    pub message_id: String,
    /// An event type, or `webhook_test` for a test.
    pub event_type: String,
    /// The platform event delivered (absent for tests).
    pub event_id: Option<Uuid>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// The exact JSON body sent (and signed).
    pub payload: String,
    /// Every attempt, oldest first (in single-delivery responses).
    pub attempt_log: Option<Vec<AttemptDto>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DeliveryDto {
    pub fn new(d: &domain::Delivery, attempts: Option<&[domain::Attempt]>) -> Self {
        Self {
            id: d.id.0,
            message_id: d.msg_id(),
            event_type: d.event_type.clone(),
            event_id: d.event_id,
            status: d.status.into(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            payload: d.payload.clone(),
            attempt_log: attempts.map(|a| a.iter().map(AttemptDto::from).collect()),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}
