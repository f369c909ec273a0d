//! A chat-completions response made into a [`VlmAnswer`] or the reason it
//! cannot be one: the first choice's refusal (or a content filter) is
//! `Refused`; content that is not the schema's JSON object, an answer cut
//! off at `max_tokens`, or a body that is not a chat completion is
//! `Malformed`. Both carry the usage, since the tokens were spent. Apart
//! from a refusal's own words, error texts quote positions and field
//! names, never what the server sent.

use std::time::Duration;

use panoptes_shared::ports::vlm::{TokenUsage, VlmAnswer, VlmError, VlmRequest};
use serde::Deserialize;
use serde_json::Value;

use super::http::{self, RawResponse};
use super::schema::{check_answer, one_line_summary};

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    /// A string, or (some servers) an array of `{type: "text", text}` parts.
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// A 2xx response made into the answer (latency and attempts filled in by
/// the caller); `asked_model` stands in when the server names none.
pub(super) fn answer(
    request: &VlmRequest,
    response: &RawResponse,
    asked_model: &str,
) -> Result<VlmAnswer, VlmError> {
    let malformed = |reason: String, usage| VlmError::Malformed { reason, usage };
    if response.truncated {
        return Err(malformed(
            format!(
                "the response is larger than {} MiB",
                http::RESPONSE_LIMIT / (1024 * 1024)
            ),
            None,
        ));
    }
    // Positions only: serde's messages may quote what the server sent.
    let completion: Completion = serde_json::from_slice(&response.body).map_err(|e| {
        malformed(
            format!(
                "the response is not a chat completion (at line {}, column {})",
                e.line(),
                e.column()
            ),
            None,
        )
    })?;
    let usage = completion.usage.map(|u| TokenUsage {
        prompt: u.prompt_tokens,
        completion: u.completion_tokens,
        total: u
            .total_tokens
            .unwrap_or(u.prompt_tokens + u.completion_tokens),
    });
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(malformed("the response has no choices".into(), usage));
    };
    let message = choice.message.unwrap_or(Message {
        content: None,
        refusal: None,
    });
    if let Some(refusal) = message.refusal.filter(|r| !r.trim().is_empty()) {
        return Err(VlmError::Refused {
            reason: refusal.split_whitespace().collect::<Vec<_>>().join(" "),
            usage,
        });
    }
    let finish = choice.finish_reason.unwrap_or_default();
    if finish == "content_filter" {
        return Err(VlmError::Refused {
            reason: "the provider's content filter stopped the answer".into(),
            usage,
        });
    }
    let text = match message.content {
        Some(Value::String(s)) => s,
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    let object: Value = match serde_json::from_str(strip_code_fence(&text)) {
        Ok(v) => v,
        Err(_) if finish == "length" => {
            return Err(malformed(
                "the answer was cut off at vlm.max_tokens".into(),
                usage,
            ));
        }
        Err(_) if text.trim().is_empty() => {
            return Err(malformed("the answer is empty".into(), usage));
        }
        Err(e) => {
            return Err(malformed(
                format!(
                    "the answer is not JSON (at line {}, column {})",
                    e.line(),
                    e.column()
                ),
                usage,
            ));
        }
    };
    check_answer(&request.schema, &object).map_err(|reason| malformed(reason, usage))?;
    Ok(VlmAnswer {
        summary: one_line_summary(&request.schema, &object),
        object,
        usage,
        model: completion
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| asked_model.to_owned()),
        latency: Duration::ZERO,
        attempts: 1,
    })
}

/// Servers that ignore `response_format` often wrap JSON in a Markdown fence.
fn strip_code_fence(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix("```")
        .and_then(|rest| rest.strip_suffix("```"))
        .map(|inner| inner.trim_start_matches("json").trim())
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_answer_is_unwrapped() {
        assert_eq!(strip_code_fence("```json\n{\"a\":1}\n```"), "{\"a\":1}");
        assert_eq!(strip_code_fence(" {\"a\":1} "), "{\"a\":1}");
    }
}
