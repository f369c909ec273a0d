//! A user's webhook endpoint, the deliveries of events to it, their attempts,
//! and the rules of delivery: Standard Webhooks signing, the retry schedule
//! with jitter, and what each response means.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::domain::device::{Sealed, string_enum};
use crate::domain::event::EventKind;
use crate::error::FieldError;
use crate::ids::{DeliveryId, UserId, WebhookId};

pub const MAX_URL_LEN: usize = 500;
pub const MAX_NAME_LEN: usize = 100;
pub const SECRET_MIN_LEN: usize = 16;
pub const SECRET_MAX_LEN: usize = 128;
pub const TIMEOUT_MS_RANGE: (u32, u32) = (1_000, 30_000);
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;
pub const MAX_RETRIES: u32 = 5;
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// How long the previous secret still signs after a regeneration, so
/// receivers can switch without dropping a delivery.
pub const SECRET_ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);
/// Response bodies kept per attempt, in bytes.
pub const RESPONSE_BODY_LIMIT: usize = 1_024;
/// The event type of `POST /users/me/webhook/test` (not subscribable).
pub const TEST_EVENT_TYPE: &str = "webhook_test";

/// Check a webhook URL: `https://` (or `http://` where `allow_http`), at
/// most 500 characters, a host, no credentials and no fragment.
pub fn parse_url(raw: &str, allow_http: bool) -> Result<url::Url, FieldError> {
    let bad = |m: &str| FieldError::new("url", m);
    if raw.len() > MAX_URL_LEN {
        return Err(bad("must be at most 500 characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(bad("must be an https:// URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials; verify the signature instead",
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    Ok(url)
}

/// A signing secret: Standard Webhooks' `whsec_<base64>` (generated ones),
/// or any 16-128 printable characters a customer chose.
#[derive(Clone)]
pub struct SigningSecret(SecretString);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl SigningSecret {
    /// 32 random bytes as `whsec_<base64>`.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(format!("whsec_{}", B64.encode(bytes)).into())
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let n = raw.chars().count();
        if !(SECRET_MIN_LEN..=SECRET_MAX_LEN).contains(&n) {
            return Err(FieldError::new(
                "secret",
                "must be 16-128 characters (or left out to have one generated)",
            ));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(FieldError::new(
                "secret",
                "must not contain spaces or control characters",
            ));
        }
        if let Some(b64) = raw.strip_prefix("whsec_")
            && B64.decode(b64).is_err()
        {
            return Err(FieldError::new(
                "secret",
                "a `whsec_` secret must be base64 after the prefix",
            ));
        }
        Ok(Self(raw.to_owned().into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The HMAC key: the base64-decoded part of a `whsec_` secret (as the
    /// Standard Webhooks libraries read it), else the secret's UTF-8 bytes.
    pub fn key(&self) -> Vec<u8> {
        let s = self.expose();
        s.strip_prefix("whsec_")
            .and_then(|b| B64.decode(b).ok())
            .unwrap_or_else(|| s.as_bytes().to_vec())
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{payload}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key()).expect("HMAC takes keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub user_id: UserId,
    pub url: String,
    pub name: Option<String>,
    /// The signing secret, encrypted at rest.
    pub secret: Sealed,
    /// The secret before the last regeneration, signing next to the new one
    /// until `previous_secret_until`.
    pub previous_secret: Option<Sealed>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Empty = every event type.
    pub subscribed_types: Vec<EventKind>,
    pub timeout_ms: u32,
    pub max_retries: u32,
    pub enabled: bool,
    /// Why the platform disabled it (`410 Gone` from the receiver).
    pub disabled_reason: Option<String>,
    /// Nothing is sent before then: the receiver failed or asked us to wait
    /// (`Retry-After`); the endpoint's deliveries resume in order after it.
    pub paused_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    pub fn subscribes_to(&self, kind: EventKind) -> bool {
        self.subscribed_types.is_empty() || self.subscribed_types.contains(&kind)
    }
}

string_enum!(
    /// Where a delivery stands: `pending` (waiting for its next attempt),
    /// `succeeded` (a 2xx), or `failed` (retries used up, or the endpoint
    /// answered 410 Gone).
    DeliveryStatus { Pending = "pending", Succeeded = "succeeded", Failed = "failed" }
);

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The `webhook-id` header: the same on every attempt and redelivery.
    pub id: DeliveryId,
    pub user_id: UserId,
    pub webhook_id: WebhookId,
    /// The platform event (none for test deliveries).
    pub event_id: Option<uuid::Uuid>,
    pub event_type: String,
    /// The exact bytes sent (and signed).
    pub payload: String,
    pub status: DeliveryStatus,
    /// Attempts made, all rounds.
    pub attempts: u32,
    /// Attempts made since the delivery was last (re)queued.
    pub round_attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Delivery {
    /// The delivery of `event` to `webhook`, due at once: its id is the
    /// event's, so the `webhook-id` receivers de-duplicate on is the event's
    /// identity; its payload is fixed now (every attempt signs the same bytes).
    pub fn for_event(event: &crate::domain::event::PlatformEvent, webhook: &Webhook) -> Self {
        Self {
            id: DeliveryId(event.id),
            user_id: event.user_id,
            webhook_id: webhook.id,
            event_id: Some(event.id),
            event_type: event.kind.as_str().to_owned(),
            payload: event.payload().to_string(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            round_attempts: 0,
            next_attempt_at: Some(event.created_at),
            last_status_code: None,
            last_error: None,
            created_at: event.created_at,
            updated_at: event.created_at,
        }
    }

    pub fn msg_id(&self) -> String {
        format!("msg_{}", self.id.0.simple())
    }
}

/// What one attempt got back, before it is judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptResult {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    /// The response body's first bytes, as text.
    pub body: Option<String>,
    /// Why there was no response.
    pub error: Option<String>,
    pub latency_ms: u64,
}

impl Delivery {
    /// Judge attempt `r` (started at `started_at`, judged at `now`): update
    /// the delivery (status, counts, next attempt after `wait(round)` or the
    /// receiver's `Retry-After`, capped budget of `1 + max_retries` attempts
    /// per round) and return the attempt's record and what it meant.
    pub fn record(
        &mut self,
        r: AttemptResult,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        max_retries: u32,
        wait: impl FnOnce(u32) -> Duration,
    ) -> (Attempt, Outcome) {
        let outcome = classify(r.status, r.retry_after);
        self.attempts += 1;
        self.round_attempts += 1;
        self.last_status_code = r.status;
        self.updated_at = now;
        self.last_error = r.error.clone().or_else(|| match (r.status, &outcome) {
            (Some(code), Outcome::Retry { .. } | Outcome::Gone) => {
                Some(format!("the receiver answered {code}"))
            }
            _ => None,
        });
        self.next_attempt_at = None;
        match &outcome {
            Outcome::Delivered => self.status = DeliveryStatus::Succeeded,
            Outcome::Gone => self.status = DeliveryStatus::Failed,
            Outcome::Retry { .. } if self.round_attempts > max_retries => {
                self.status = DeliveryStatus::Failed;
            }
            Outcome::Retry { after } => {
                let wait = after.unwrap_or_else(|| wait(self.round_attempts));
                self.status = DeliveryStatus::Pending;
                self.next_attempt_at = Some(
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)),
                );
            }
        }
        let attempt = Attempt {
            delivery_id: self.id,
            number: self.attempts,
            started_at,
            status_code: r.status,
            latency_ms: r.latency_ms,
            response_body: r.body,
            error: r.error,
            succeeded: outcome == Outcome::Delivered,
        };
        (attempt, outcome)
    }
}

/// One HTTP attempt of a delivery, as the log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// The first 1 KiB of the response body, lossy UTF-8.
    pub response_body: Option<String>,
    /// Why there is no usable response (timeout, refused target, ...).
    pub error: Option<String>,
    pub succeeded: bool,
}

/// What the receiver's answer (or its absence) means.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// 410 Gone: the receiver asks us to stop; the endpoint is disabled.
    Gone,
    /// Try again; `after` when the receiver said when (429/503 `Retry-After`).
    Retry {
        after: Option<Duration>,
    },
}

/// The meaning of a response status (`None`: no response at all).
pub fn classify(status: Option<u16>, retry_after: Option<Duration>) -> Outcome {
    match status {
        Some(200..=299) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        Some(429 | 503) => Outcome::Retry { after: retry_after },
        _ => Outcome::Retry { after: None },
    }
}

/// The longest `Retry-After` honoured; later ones are capped to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// A `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(raw: &str, now: DateTime<Utc>) -> Option<Duration> {
    let raw = raw.trim();
    let d = if let Ok(secs) = raw.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(raw).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// The wait before retry `n` (1 = the first retry): the schedule's entry
/// (the last one repeats), scaled by a random factor in `[1 - jitter, 1 + jitter]`.
pub fn backoff(schedule: &[Duration], n: u32, jitter: f64) -> Duration {
    let base = schedule
        .get(n.saturating_sub(1) as usize)
        .or(schedule.last())
        .copied()
        .unwrap_or(Duration::from_secs(5));
    let j = jitter.clamp(0.0, 1.0);
    let factor = 1.0 + rand::random_range(-j..=j);
    base.mul_f64(factor.max(0.0))
}

/// Svix's schedule, cut to the 5 retries the API allows: 5 s, 5 min,
/// 30 min, 2 h, 5 h.
pub const DEFAULT_RETRY_SCHEDULE_SECONDS: [u64; 5] = [5, 300, 1_800, 7_200, 18_000];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let payload = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, payload),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let custom = SigningSecret::parse("a-customer-chosen-secret").unwrap();
        assert_eq!(custom.key(), b"a-customer-chosen-secret");
    }

    #[test]
    fn generated_secrets_are_whsec_with_32_bytes() {
        let s = SigningSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(s.key().len(), 32);
        assert!(SigningSecret::parse(s.expose()).is_ok());
        assert!(SigningSecret::parse("short").is_err());
        assert!(SigningSecret::parse(&"x".repeat(129)).is_err());
        assert!(SigningSecret::parse("has a space in it!!").is_err());
        assert!(SigningSecret::parse("whsec_!!!not-base64!!!").is_err());
    }

    #[test]
    fn urls_must_be_https_without_credentials() {
        assert!(parse_url("https://hooks.example.com/in", false).is_ok());
        assert!(parse_url("http://hooks.example.com/in", false).is_err());
        assert!(parse_url("http://127.0.0.1:9/in", true).is_ok());
        assert!(parse_url("ftp://hooks.example.com/in", true).is_err());
        assert!(parse_url("https://u:p@hooks.example.com/", false).is_err());
        assert!(parse_url(&format!("https://e.com/{}", "a".repeat(500)), false).is_err());
    }

    #[test]
    fn responses_are_classified_as_standard_webhooks_says() {
        assert_eq!(classify(Some(204), None), Outcome::Delivered);
        assert_eq!(classify(Some(410), None), Outcome::Gone);
        assert_eq!(classify(Some(301), None), Outcome::Retry { after: None });
        assert_eq!(classify(None, None), Outcome::Retry { after: None });
        let d = Some(Duration::from_secs(7));
        assert_eq!(classify(Some(429), d), Outcome::Retry { after: d });
        let now = Utc::now();
        assert_eq!(parse_retry_after("7", now), d);
        let date = (now + chrono::Duration::seconds(30)).to_rfc2822();
        let parsed = parse_retry_after(&date, now).unwrap();
        assert!((29..=30).contains(&parsed.as_secs()), "{parsed:?}");
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_follows_the_schedule_with_bounded_jitter() {
        let s = [Duration::from_secs(5), Duration::from_secs(300)];
        for _ in 0..100 {
            let d = backoff(&s, 1, 0.2).as_secs_f64();
            assert!((4.0..=6.0).contains(&d), "{d}");
            let d = backoff(&s, 9, 0.2).as_secs_f64();
            assert!((240.0..=360.0).contains(&d), "{d}");
        }
        assert_eq!(backoff(&s, 2, 0.0), Duration::from_secs(300));
    }
}
