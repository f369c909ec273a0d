//! Sending one signed webhook request. The adapter connects only through the
//! outbound guard (every resolved address vetted at connect time), never
//! follows redirects, and bounds the whole exchange by the request's timeout.

use std::time::Duration;

use async_trait::async_trait;

/// One POST to a webhook endpoint.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub url: String,
    /// Header name/value pairs (the `webhook-*` headers).
    pub headers: Vec<(&'static str, String)>,
    pub body: bytes_like::Body,
    /// Connect, send and read the response head and body within this.
    pub timeout: Duration,
}

impl OutboundRequest {
    /// A Standard Webhooks request: `payload` signed by each of `secrets`
    /// (`webhook-signature` lists them all, so receivers switching secrets
    /// accept either), `webhook-id` = `msg_id`, `webhook-timestamp` = `timestamp`.
    pub fn signed(
        url: &str,
        msg_id: &str,
        payload: &str,
        secrets: &[crate::domain::webhook::SigningSecret],
        timestamp: i64,
        timeout: Duration,
    ) -> Self {
        let body: bytes_like::Body = std::sync::Arc::from(payload.as_bytes());
        let signature = secrets
            .iter()
            .map(|s| s.sign(msg_id, timestamp, &body))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            url: url.to_owned(),
            headers: vec![
                ("webhook-id", msg_id.to_owned()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
            body,
            timeout,
        }
    }
}

/// The body bytes (shared, cheap to clone).
pub mod bytes_like {
    pub type Body = std::sync::Arc<[u8]>;
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundResponse {
    Response {
        status: u16,
        /// The `Retry-After` header, as sent.
        retry_after: Option<String>,
        /// The first bytes of the body (up to the sender's limit).
        body: Vec<u8>,
    },
    /// No response: the reason, safe to show the customer (no internals).
    Failed(String),
}

impl OutboundResponse {
    /// The attempt's result: the body cut to
    /// [`RESPONSE_BODY_LIMIT`](crate::domain::webhook::RESPONSE_BODY_LIMIT)
    /// bytes (lossy UTF-8), `Retry-After` read against `now`.
    pub fn into_result(
        self,
        latency_ms: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> crate::domain::webhook::AttemptResult {
        use crate::domain::webhook::{AttemptResult, RESPONSE_BODY_LIMIT, parse_retry_after};
        match self {
            Self::Response {
                status,
                retry_after,
                body,
            } => AttemptResult {
                status: Some(status),
                retry_after: retry_after.and_then(|r| parse_retry_after(&r, now)),
                body: Some(
                    String::from_utf8_lossy(&body[..body.len().min(RESPONSE_BODY_LIMIT)])
                        .into_owned(),
                ),
                error: None,
                latency_ms,
            },
            Self::Failed(why) => AttemptResult {
                error: Some(why),
                latency_ms,
                ..AttemptResult::default()
            },
        }
    }
}

#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn send(&self, request: &OutboundRequest) -> OutboundResponse;
}
