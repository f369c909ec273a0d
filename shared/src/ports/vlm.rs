//! Asking a vision-language model (VLM) about an alert: a prompt, the
//! alert's context as text, a few JPEG snapshots and a JSON Schema the
//! answer must satisfy; back comes the answer as a JSON object, the tokens it
//! cost and how long it took. The insight pipeline stores the answer on the
//! insight, or the error's message as the insight's failure `reason`.
//!
//! Contract every adapter keeps:
//! - A [`VlmAnswer`] is a JSON object that has every field the schema
//!   `required`s at the top level, each of its declared basic JSON type;
//!   anything else is [`VlmError::Malformed`].
//! - Transient failures (timeouts, connection errors, 429, 5xx) are retried
//!   inside [`VlmProvider::ask`] as configured, with the same `request_id`
//!   on every attempt; what comes back is final for this call.
//! - Error messages ([`VlmError`]'s `Display`) are fit to show the customer
//!   and store: they never contain the API key or the request's content.
//! - A call is not idempotent at the provider: a retry after a timeout may be
//!   billed twice by it. Callers call once per insight.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::BoxError;

/// One question to the model.
#[derive(Clone)]
pub struct VlmRequest {
    /// Correlates logs and attempts (the insight's id, or the alert's).
    pub request_id: String,
    /// The instructions (the role, what to look at, how to answer).
    pub system_prompt: String,
    /// The alert's context: scene, zone, metric values, recent history.
    pub user_text: String,
    /// JPEG snapshots, oldest first; sent as `data:image/jpeg;base64,` URLs.
    pub images: Vec<Vec<u8>>,
    /// A name for the schema (`[A-Za-z0-9_-]`, at most 64 characters, as
    /// OpenAI's structured outputs require).
    pub schema_name: String,
    /// The JSON Schema of the answer: an object schema.
    pub schema: serde_json::Value,
}

impl std::fmt::Debug for VlmRequest {
    /// Sizes, not contents: the prompt and images are customer data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VlmRequest")
            .field("request_id", &self.request_id)
            .field("system_prompt_len", &self.system_prompt.len())
            .field("user_text_len", &self.user_text.len())
            .field(
                "image_bytes",
                &self.images.iter().map(Vec::len).collect::<Vec<_>>(),
            )
            .field("schema_name", &self.schema_name)
            .finish()
    }
}

/// Tokens one call cost, as the provider reported them (what `vlmTokens`
/// quotas are metered in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub prompt: u64,
    pub completion: u64,
    pub total: u64,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct VlmAnswer {
    /// The answer: a JSON object satisfying the request's schema (see the
    /// module's contract for how far that is checked).
    pub object: serde_json::Value,
    /// The answer's `summary` on one line, when the schema declares a
    /// `summary` string field and the answer has one.
    pub summary: Option<String>,
    /// `None` when the provider reported no usage.
    pub usage: Option<TokenUsage>,
    /// The model as the provider names it in its response.
    pub model: String,
    /// From the first attempt's start to the answer, retries included.
    pub latency: Duration,
    /// Attempts made (1 when the first one answered).
    pub attempts: u32,
}

/// Why there is no answer. `Display` is the human reason stored on a failed
/// insight: it names what went wrong and what to check, never the API key.
#[derive(Debug, thiserror::Error)]
pub enum VlmError {
    /// `vlm.provider = off`.
    #[error("no VLM provider is configured (vlm.provider = off)")]
    Disabled,
    /// The last attempt got no complete response within the per-attempt
    /// timeout (earlier ones failed as well, in whatever way); `attempts`
    /// made in all.
    #[error(
        "the VLM provider did not answer within {} ms ({attempts} attempt{})",
        per_attempt.as_millis(),
        if *attempts == 1 { "" } else { "s" }
    )]
    Timeout {
        attempts: u32,
        per_attempt: Duration,
    },
    /// The provider answered with an error status (the last attempt's, when
    /// a retryable one persisted). `message` is the provider's own error
    /// message, shortened, with anything key-like removed.
    #[error(
        "the VLM provider answered HTTP {status}{}{}",
        if message.is_empty() { "" } else { ": " },
        message
    )]
    Status {
        status: u16,
        /// Whether the status is a transient one (429, 408, 5xx): asking
        /// again later may succeed. 401/403/400 will not without a change.
        retryable: bool,
        message: String,
    },
    /// The provider could not be reached or the exchange broke off (DNS,
    /// connection refused or reset, TLS), on every attempt.
    #[error("the VLM provider could not be reached: {reason}")]
    Transport {
        reason: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The provider answered, but not with an answer that fits: not the
    /// chat-completions format, content that is not JSON, a field the schema
    /// requires missing or of the wrong type, cut off at `max_tokens`.
    #[error("the VLM answer is unusable: {reason}")]
    Malformed {
        reason: String,
        /// The tokens the unusable answer cost, when it came with usage.
        usage: Option<TokenUsage>,
    },
    /// The model declined to answer (its refusal, or a content filter).
    #[error("the VLM declined to answer: {reason}")]
    Refused {
        reason: String,
        usage: Option<TokenUsage>,
    },
}

impl VlmError {
    /// A stable class name, for metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Timeout { .. } => "timeout",
            Self::Status { .. } => "status",
            Self::Transport { .. } => "transport",
            Self::Malformed { .. } => "malformed",
            Self::Refused { .. } => "refused",
        }
    }

    /// Whether asking again later may succeed without a configuration change.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Status { retryable, .. } => *retryable,
            Self::Disabled | Self::Malformed { .. } | Self::Refused { .. } => false,
        }
    }

    /// Tokens spent on a failed call (the provider answered, but the answer
    /// could not be used); they count against the quota like an answer's.
    pub fn usage(&self) -> Option<TokenUsage> {
        match self {
            Self::Malformed { usage, .. } | Self::Refused { usage, .. } => *usage,
            Self::Disabled
            | Self::Timeout { .. }
            | Self::Status { .. }
            | Self::Transport { .. } => None,
        }
    }
}

#[async_trait]
pub trait VlmProvider: Send + Sync {
    /// Ask the model `request`, retrying transient failures as configured.
    /// Returns an answer that satisfies the schema's top-level contract, or
    /// the final error.
    async fn ask(&self, request: &VlmRequest) -> Result<VlmAnswer, VlmError>;

    /// Which provider this is (`off`, `openai`), for logs and insights.
    fn provider(&self) -> &str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sentences_a_customer_can_read() {
        assert_eq!(
            VlmError::Disabled.to_string(),
            "no VLM provider is configured (vlm.provider = off)"
        );
        let timeout = VlmError::Timeout {
            attempts: 3,
            per_attempt: Duration::from_millis(30_000),
        };
        assert_eq!(
            timeout.to_string(),
            "the VLM provider did not answer within 30000 ms (3 attempts)"
        );
        let status = VlmError::Status {
            status: 401,
            retryable: false,
            message: String::new(),
        };
        assert_eq!(status.to_string(), "the VLM provider answered HTTP 401");
        assert!(timeout.is_transient() && !status.is_transient());
        assert_eq!(status.class(), "status");
    }

    #[test]
    fn debug_of_a_request_shows_sizes_not_content() {
        let request = VlmRequest {
            request_id: "r1".into(),
            system_prompt: "secret instructions".into(),
            user_text: "queue of 12 at checkout 3".into(),
            images: vec![vec![0xFF, 0xD8, 0xFF]],
            schema_name: "insight".into(),
            schema: serde_json::json!({"type": "object"}),
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("r1") && shown.contains("[3]"), "{shown}");
        assert!(!shown.contains("secret") && !shown.contains("checkout"));
    }
}
