//! The adapters behind [`VlmProvider`](panoptes_shared::ports::VlmProvider),
//! chosen by `vlm.provider` ([`crate::wiring::vlm_provider`]):
//! - [`DisabledVlm`] (`off`, the default): every call fails, saying so.
//! - [`OpenAiVlm`] (`openai`): any OpenAI-compatible chat-completions
//!   endpoint that takes images, with retries and per-attempt timeouts.
//!
//! [`schema`] holds the answer check every adapter applies.

mod completion;
mod disabled;
mod http;
mod openai;
pub mod schema;

pub use disabled::DisabledVlm;
pub use http::RESPONSE_LIMIT;
pub use openai::{MAX_RETRY_AFTER, OpenAiOptions, OpenAiVlm};
