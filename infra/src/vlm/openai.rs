//! An OpenAI-compatible chat-completions client (OpenAI, vLLM, Ollama,
//! llama.cpp's server, ...): one POST to `<base_url>/chat/completions` with a
//! system message, a user message of text and `data:image/jpeg;base64,`
//! image parts, `max_tokens`, and `response_format` asking for the request's
//! JSON Schema in strict mode (the caller's schema must suit strict mode:
//! every property required, `additionalProperties: false`).
//!
//! Failure modes:
//! - Timeouts (per attempt: connect to the last body byte), connection
//!   errors, 408, 429 and 5xx are retried up to `max_retries` times; the
//!   wait doubles from `retry_backoff` with ±25 % jitter, and a 429's
//!   `Retry-After` (or OpenAI's `retry-after-ms`) is waited out when longer.
//!   One longer than [`MAX_RETRY_AFTER`] ends the call at once (the caller
//!   can come back later). Every attempt carries the same `X-Request-Id`.
//! - Other statuses end the call: `Status { retryable: false }`, with the
//!   provider's error message (anything key-like removed).
//! - A 200 whose content is not the schema's JSON object is `Malformed`; a
//!   refusal or a content filter is `Refused`; both carry the usage.
//! - The API key is sent only in `Authorization` (a header marked
//!   sensitive) and appears in no error or log line.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use panoptes_shared::ports::vlm::{VlmAnswer, VlmError, VlmProvider, VlmRequest};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::completion::answer;
use super::http::{self, Endpoint, TransportError};
use crate::camera::Tls;

/// The longest `Retry-After` waited out inside one call.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The longest wait between two attempts from the backoff alone.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The provider's error messages kept in a [`VlmError::Status`], in characters.
const MESSAGE_LIMIT: usize = 300;

/// How to reach the provider and how hard to try.
pub struct OpenAiOptions {
    /// `https://api.openai.com/v1`; requests go to `<base_url>/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// Empty: no `Authorization` header.
    pub api_key: SecretString,
    /// Per attempt: connect, send, and read the whole response.
    pub timeout: Duration,
    pub max_retries: u32,
    /// Before the first retry; doubles each time.
    pub retry_backoff: Duration,
    pub max_tokens: u32,
    pub tls: Tls,
}

pub struct OpenAiVlm {
    endpoint: Endpoint,
    model: String,
    /// `Bearer <key>`, marked sensitive; kept to redact provider messages.
    authorization: Option<(HeaderValue, SecretString)>,
    timeout: Duration,
    max_retries: u32,
    retry_backoff: Duration,
    max_tokens: u32,
    tls: Tls,
    user_agent: HeaderValue,
}

impl OpenAiVlm {
    /// Fails (naming the setting) when the URL or the key cannot be used.
    pub fn new(options: OpenAiOptions) -> Result<Self, String> {
        let endpoint = Endpoint::chat_completions(&options.base_url)?;
        let key = options.api_key.expose_secret();
        let authorization = if key.is_empty() {
            None
        } else {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| "vlm.api_key holds characters an HTTP header cannot carry")?;
            value.set_sensitive(true);
            Some((value, options.api_key.clone()))
        };
        let user_agent =
            HeaderValue::from_str(&format!("Panoptes-Insights/{}", env!("CARGO_PKG_VERSION")))
                .map_err(|e| e.to_string())?;
        Ok(Self {
            endpoint,
            model: options.model,
            authorization,
            timeout: options.timeout,
            max_retries: options.max_retries,
            retry_backoff: options.retry_backoff,
            max_tokens: options.max_tokens,
            tls: options.tls,
            user_agent,
        })
    }

    /// The chat-completions request body.
    fn body(&self, request: &VlmRequest) -> Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut content = vec![json!({"type": "text", "text": request.user_text})];
        content.extend(request.images.iter().map(|jpeg| {
            json!({
                "type": "image_url",
                "image_url": {"url": format!("data:image/jpeg;base64,{}", b64.encode(jpeg))}
            })
        }));
        json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": request.system_prompt},
                {"role": "user", "content": content}
            ],
            "max_tokens": self.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.schema,
                    "strict": true
                }
            }
        })
    }

    fn headers(&self, request_id: &str) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![
            (header::ACCEPT, HeaderValue::from_static("application/json")),
            (header::USER_AGENT, self.user_agent.clone()),
        ];
        if let Some((value, _)) = &self.authorization {
            headers.push((header::AUTHORIZATION, value.clone()));
        }
        // An id a header cannot carry is left out rather than failing the call.
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.push((HeaderName::from_static("x-request-id"), id));
        }
        headers
    }

    /// The wait before retry `n` (1 = the first retry).
    fn backoff(&self, n: u32) -> Duration {
        let base = self
            .retry_backoff
            .saturating_mul(1 << n.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        base.mul_f64(rand::random_range(0.75..=1.25))
    }

    /// The provider's error message from an error body, shortened and with
    /// anything key-like removed; empty when the body says nothing usable.
    fn provider_message(&self, body: &[u8]) -> String {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return String::new();
        };
        let text = value
            .pointer("/error/message")
            .or_else(|| value.get("error"))
            .or_else(|| value.get("message"))
            .or_else(|| value.get("detail"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = self.authorization.as_ref().map(|(_, k)| k.expose_secret());
        let redacted = text
            .split_whitespace()
            .map(|word| {
                let key_like = word.contains("sk-")
                    || word.contains("***")
                    || key.is_some_and(|k| word.contains(k));
                if key_like { "[redacted]" } else { word }
            })
            .collect::<Vec<_>>()
            .join(" ");
        match redacted.char_indices().nth(MESSAGE_LIMIT) {
            Some((cut, _)) => format!("{}...", &redacted[..cut]),
            None => redacted,
        }
    }
}

/// How one attempt ended, when it did not produce the call's result.
enum Failure {
    Timeout,
    Transport(TransportError),
    /// A retryable status, the provider's message, how long it asked to wait.
    Status(u16, String, Option<Duration>),
}

impl Failure {
    /// For the logs.
    fn describe(&self) -> String {
        match self {
            Self::Timeout => "no response in time".into(),
            Self::Transport(e) => match &e.source {
                Some(source) => format!("{}: {source}", e.reason),
                None => e.reason.to_owned(),
            },
            Self::Status(status, ..) => format!("HTTP {status}"),
        }
    }

    /// The call's error when this was its last attempt (`attempts` made).
    fn into_error(self, attempts: u32, per_attempt: Duration) -> VlmError {
        match self {
            Self::Timeout => VlmError::Timeout {
                attempts,
                per_attempt,
            },
            Self::Transport(e) => VlmError::Transport {
                reason: e.reason.to_owned(),
                source: e.source,
            },
            Self::Status(status, message, _) => VlmError::Status {
                status,
                retryable: true,
                message,
            },
        }
    }
}

#[async_trait]
impl VlmProvider for OpenAiVlm {
    #[tracing::instrument(
        name = "vlm.ask",
        skip_all,
        fields(request_id = %request.request_id, provider = "openai", model = %self.model)
    )]
    async fn ask(&self, request: &VlmRequest) -> Result<VlmAnswer, VlmError> {
        // Encoded once: every attempt sends the same bytes.
        let body = Bytes::from(self.body(request).to_string());
        let headers = self.headers(&request.request_id);
        let started = Instant::now();
        let attempts = self.max_retries + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let exchange = http::post(&self.endpoint, &self.tls, &headers, body.clone());
            let attempt_started = Instant::now();
            let failure = match tokio::time::timeout(self.timeout, exchange).await {
                Err(_) => Failure::Timeout,
                Ok(Err(e)) => Failure::Transport(e),
                Ok(Ok(response)) => {
                    let status = response.status;
                    tracing::debug!(
                        attempt,
                        status,
                        latency_ms = attempt_started.elapsed().as_millis() as u64,
                        "VLM provider answered"
                    );
                    match status {
                        200..=299 => {
                            return answer(request, &response, &self.model).map(|mut a| {
                                a.latency = started.elapsed();
                                a.attempts = attempt;
                                a
                            });
                        }
                        408 | 429 | 500..=599 => Failure::Status(
                            status,
                            self.provider_message(&response.body),
                            retry_after(&response.headers),
                        ),
                        _ => {
                            return Err(VlmError::Status {
                                status,
                                retryable: false,
                                message: self.provider_message(&response.body),
                            });
                        }
                    }
                }
            };
            let asked = match &failure {
                Failure::Status(_, _, asked) => *asked,
                Failure::Timeout | Failure::Transport(_) => None,
            };
            if let Some(asked) = asked
                && asked > MAX_RETRY_AFTER
            {
                tracing::warn!(
                    attempt,
                    retry_after_s = asked.as_secs(),
                    "VLM provider asks for a longer wait than one call makes; giving up"
                );
                return Err(failure.into_error(attempt, self.timeout));
            }
            if attempt >= attempts {
                tracing::warn!(
                    attempt,
                    failure = %failure.describe(),
                    "VLM request failed; no attempts left"
                );
                return Err(failure.into_error(attempt, self.timeout));
            }
            let wait = self.backoff(attempt).max(asked.unwrap_or_default());
            tracing::warn!(
                attempt,
                failure = %failure.describe(),
                retry_in_ms = wait.as_millis() as u64,
                "VLM request failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn provider(&self) -> &str {
        "openai"
    }
}

/// `retry-after-ms` (OpenAI's), else `Retry-After` (seconds or a date).
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    text("retry-after")
        .and_then(|v| panoptes_shared::domain::webhook::parse_retry_after(v, chrono::Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_milliseconds_wins_over_seconds() {
        let mut h = hyper::HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }

    #[test]
    fn provider_messages_lose_anything_key_like() {
        let vlm = OpenAiVlm::new(OpenAiOptions {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "m".into(),
            api_key: "plain-key-0123456789".into(),
            timeout: Duration::from_secs(1),
            max_retries: 0,
            retry_backoff: Duration::from_millis(1),
            max_tokens: 10,
            tls: Tls::system(),
        })
        .unwrap();
        let body = br#"{"error":{"message":"Incorrect API key provided: plain-key-0123456789 (sk-ab***yz)."}}"#;
        assert_eq!(
            vlm.provider_message(body),
            "Incorrect API key provided: [redacted] [redacted]"
        );
        assert_eq!(vlm.provider_message(b"<html>502</html>"), "");
    }
}
