//! The VLM provider port: the OpenAI-compatible client against a scripted
//! chat-completions server on loopback (what it sends, how it retries, what
//! it makes of each kind of answer), and the `off` adapter. Every provider is
//! built from configuration through `wiring::vlm_provider`, as a process
//! builds it.

mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use panoptes_infra::wiring::vlm_provider;
use panoptes_shared::config::Config;
use panoptes_shared::ports::vlm::{TokenUsage, VlmError, VlmProvider, VlmRequest};
use serde_json::{Value, json};

use server::{ChatServer, Reply, SERVED_MODEL, USAGE, completion};

const API_KEY: &str = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz";
const MODEL: &str = "gpt-4o-mini";
/// Long enough for any one exchange on loopback; the tests that wait on it
/// set their own.
const WAIT: Duration = Duration::from_secs(5);

/// A provider for `server` built from `vlm.*` settings, with quick retries;
/// `extra` overrides (`("TIMEOUT_MS", "300")`).
fn provider(base_url: &str, extra: &[(&str, &str)]) -> Arc<dyn VlmProvider> {
    let env: Vec<(String, String)> = [
        ("PROVIDER", "openai"),
        ("BASE_URL", base_url),
        ("MODEL", MODEL),
        ("API_KEY", API_KEY),
        ("TIMEOUT_MS", "5000"),
        ("MAX_RETRIES", "2"),
        ("RETRY_BACKOFF_MS", "10"),
        ("MAX_TOKENS", "500"),
    ]
    .iter()
    .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
    .chain(extra)
    .map(|(k, v)| (format!("PANOPTES__VLM__{k}"), (*v).to_owned()))
    .collect();
    let cfg = Config::load_from(None, env).expect("a valid vlm config");
    vlm_provider(&cfg).expect("the provider builds")
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
            "peopleInQueue": {"type": "integer"},
            "causes": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["summary", "severity", "peopleInQueue", "causes"],
        "additionalProperties": false
    })
}

/// Two tiny "JPEGs" (the adapter does not decode them).
fn request() -> VlmRequest {
    VlmRequest {
        request_id: format!("ins_{}", uuid::Uuid::new_v4().simple()),
        system_prompt: "You explain queue alerts in retail stores.".into(),
        user_text: "Scene: checkout. Zone: queue. inQueue 14 for 120 s (threshold 10).".into(),
        images: vec![
            vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9],
            vec![0xFF, 0xD8, 0xFF, 0xE0, 4, 5, 6, 0xFF, 0xD9],
        ],
        schema_name: "queue_insight".into(),
        schema: schema(),
    }
}

fn good_answer() -> String {
    json!({
        "summary": "Fourteen people queue\nat checkout; one till is open.",
        "severity": "warning",
        "peopleInQueue": 14,
        "causes": ["one till open"]
    })
    .to_string()
}

fn expected_usage() -> Option<TokenUsage> {
    Some(TokenUsage {
        prompt: USAGE.0,
        completion: USAGE.1,
        total: USAGE.2,
    })
}

#[tokio::test]
async fn a_structured_answer_comes_back_with_its_summary_and_token_counts() {
    let mut server = ChatServer::start(vec![Reply::content(&good_answer())]).await;
    let vlm = provider(&server.base_url("http"), &[]);
    let req = request();

    let answer = vlm.ask(&req).await.expect("an answer");

    // What was asked: the model, both messages, the images as data URLs,
    // the schema in strict mode, the bearer key, the request id.
    let sent = server.next(WAIT, "the completion request").await;
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.headers["authorization"], format!("Bearer {API_KEY}"));
    assert_eq!(sent.headers["x-request-id"], req.request_id);
    assert_eq!(sent.headers["content-type"], "application/json");
    let body = sent.json();
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["max_tokens"], 500);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], req.system_prompt);
    assert_eq!(body["messages"][1]["role"], "user");
    let parts = body["messages"][1]["content"].as_array().unwrap();
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(parts[0], json!({"type": "text", "text": req.user_text}));
    for (part, jpeg) in parts[1..].iter().zip(&req.images) {
        assert_eq!(part["type"], "image_url");
        let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
        assert_eq!(
            part["image_url"]["url"],
            format!("data:image/jpeg;base64,{b64}")
        );
    }
    assert_eq!(
        body["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": {"name": "queue_insight", "schema": schema(), "strict": true}
        })
    );

    // What came back.
    assert_eq!(
        answer.object,
        serde_json::from_str::<Value>(&good_answer()).unwrap()
    );
    assert_eq!(
        answer.summary.as_deref(),
        Some("Fourteen people queue at checkout; one till is open.")
    );
    assert_eq!(answer.usage, expected_usage());
    assert_eq!(answer.model, SERVED_MODEL);
    assert_eq!(answer.attempts, 1);
    assert!(answer.latency > Duration::ZERO && answer.latency < WAIT);
    assert_eq!(vlm.provider(), "openai");
}

#[tokio::test]
async fn a_server_error_is_retried_with_the_same_request_id_and_body() {
    let mut server = ChatServer::start(vec![
        Reply::json(
            500,
            json!({"error": {"message": "The server had an error"}}),
        ),
        Reply::content(&good_answer()),
    ])
    .await;
    let vlm = provider(&server.base_url("http"), &[]);
    let req = request();

    let answer = vlm.ask(&req).await.expect("the retry answers");

    assert_eq!(answer.attempts, 2);
    assert_eq!(answer.object["peopleInQueue"], 14);
    let first = server.next(WAIT, "the first attempt").await;
    let second = server.next(WAIT, "the retry").await;
    assert_eq!(first.headers["x-request-id"], req.request_id);
    assert_eq!(second.headers["x-request-id"], req.request_id);
    assert_eq!(first.body, second.body);
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_it_asks_for() {
    let mut server = ChatServer::start(vec![
        Reply::json(429, json!({"error": {"message": "Rate limit reached"}}))
            .with_header("retry-after", "1"),
        Reply::content(&good_answer()),
    ])
    .await;
    // The backoff alone would retry after about 10 ms.
    let vlm = provider(&server.base_url("http"), &[]);

    let answer = vlm.ask(&request()).await.expect("the retry answers");

    assert_eq!(answer.attempts, 2);
    let first = server.next(WAIT, "the first attempt").await;
    let second = server.next(WAIT, "the retry").await;
    let gap = second.at - first.at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(3), "retried after {gap:?}");
}

#[tokio::test]
async fn a_429_asking_for_longer_than_a_call_waits_ends_the_call_at_once() {
    let mut server = ChatServer::start(vec![
        Reply::json(429, json!({"error": {"message": "quota"}})).with_header("retry-after", "3600"),
    ])
    .await;
    let vlm = provider(&server.base_url("http"), &[]);
    let started = Instant::now();

    let err = vlm.ask(&request()).await.unwrap_err();

    assert!(
        matches!(
            err,
            VlmError::Status {
                status: 429,
                retryable: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(3));
    server.next(WAIT, "the only attempt").await;
    assert!(server.drain().is_empty(), "not retried");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_after_every_attempt() {
    let mut server = ChatServer::start(vec![Reply::Hang, Reply::Hang, Reply::Hang]).await;
    let vlm = provider(
        &server.base_url("http"),
        &[("TIMEOUT_MS", "300"), ("MAX_RETRIES", "2")],
    );
    let started = Instant::now();

    let err = vlm.ask(&request()).await.unwrap_err();

    let took = started.elapsed();
    assert!(
        matches!(
            err,
            VlmError::Timeout {
                attempts: 3,
                per_attempt
            } if per_attempt == Duration::from_millis(300)
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the VLM provider did not answer within 300 ms (3 attempts)"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    for n in 1..=3 {
        server.next(WAIT, &format!("attempt {n}")).await;
    }
    assert!(server.drain().is_empty());
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_a_transport_error() {
    // A port nothing listens on any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let vlm = provider(&format!("http://{addr}/v1"), &[("MAX_RETRIES", "1")]);

    let err = vlm.ask(&request()).await.unwrap_err();

    assert!(matches!(err, VlmError::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "the VLM provider could not be reached: the connection was refused or failed"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
}

#[tokio::test]
async fn content_that_is_not_json_is_malformed_and_not_retried() {
    let mut server = ChatServer::start(vec![Reply::content("Fourteen people are queueing.")]).await;
    let vlm = provider(&server.base_url("http"), &[]);

    let err = vlm.ask(&request()).await.unwrap_err();

    assert!(matches!(err, VlmError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("not JSON"), "{err}");
    assert_eq!(err.usage(), expected_usage(), "the tokens were spent");
    assert!(!err.is_transient());
    server.next(WAIT, "the only attempt").await;
    assert!(server.drain().is_empty());
}

#[tokio::test]
async fn an_answer_cut_off_at_max_tokens_says_so() {
    let server = ChatServer::start(vec![Reply::json(
        200,
        completion(json!("{\"summary\": \"Fourteen peo"), Value::Null, "length"),
    )])
    .await;
    let vlm = provider(&server.base_url("http"), &[]);

    let err = vlm.ask(&request()).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        "the VLM answer is unusable: the answer was cut off at vlm.max_tokens"
    );
}

#[tokio::test]
async fn an_answer_missing_a_required_field_is_malformed() {
    let answer = json!({"summary": "Queue.", "severity": "warning", "causes": []}).to_string();
    let server = ChatServer::start(vec![Reply::content(&answer)]).await;
    let vlm = provider(&server.base_url("http"), &[]);

    let err = vlm.ask(&request()).await.unwrap_err();

    assert!(matches!(err, VlmError::Malformed { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the VLM answer is unusable: the answer has no `peopleInQueue` (required by the schema)"
    );
}

#[tokio::test]
async fn an_answer_field_of_the_wrong_type_is_malformed() {
    let answer = json!({"summary": "Queue.", "severity": "warning", "peopleInQueue": "14",
                        "causes": []})
    .to_string();
    let server = ChatServer::start(vec![Reply::content(&answer)]).await;
    let vlm = provider(&server.base_url("http"), &[]);

    let err = vlm.ask(&request()).await.unwrap_err();

    assert!(
        err.to_string()
            .contains("`peopleInQueue` is a string, the schema wants integer"),
        "{err}"
    );
}

#[tokio::test]
async fn a_refusal_is_refused_and_not_retried() {
    let mut server = ChatServer::start(vec![Reply::json(
        200,
        completion(
            Value::Null,
            json!("I'm sorry, I can't help with\nthat."),
            "stop",
        ),
    )])
    .await;
    let vlm = provider(&server.base_url("http"), &[]);

    let err = vlm.ask(&request()).await.unwrap_err();

    assert!(matches!(err, VlmError::Refused { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the VLM declined to answer: I'm sorry, I can't help with that."
    );
    assert_eq!(err.usage(), expected_usage());
    server.next(WAIT, "the only attempt").await;
    assert!(server.drain().is_empty());
}

#[tokio::test]
async fn a_rejected_key_is_not_retried_and_never_shown() {
    // As OpenAI answers a wrong key: its message quotes the key, masked.
    let masked = format!("{}****{}", &API_KEY[..7], &API_KEY[API_KEY.len() - 4..]);
    let mut server = ChatServer::start(vec![Reply::json(
        401,
        json!({"error": {
            "message": format!("Incorrect API key provided: {masked}. Also sent: {API_KEY}"),
            "type": "invalid_request_error",
            "code": "invalid_api_key"
        }}),
    )])
    .await;
    let vlm = provider(&server.base_url("http"), &[]);

    let err = vlm.ask(&request()).await.unwrap_err();

    assert!(
        matches!(
            err,
            VlmError::Status {
                status: 401,
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(API_KEY), "{shown}");
    assert!(!shown.contains(&masked), "{shown}");
    assert!(!shown.contains(&API_KEY[API_KEY.len() - 8..]), "{shown}");
    assert!(
        err.to_string()
            .starts_with("the VLM provider answered HTTP 401: Incorrect API key provided:"),
        "{err}"
    );
    server.next(WAIT, "the only attempt").await;
    assert!(server.drain().is_empty(), "a 401 is not retried");
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_malformed() {
    let mut huge = completion(json!(good_answer()), Value::Null, "stop");
    huge["padding"] = json!("x".repeat(panoptes_infra::vlm::RESPONSE_LIMIT + 1));
    let server = ChatServer::start(vec![Reply::json(200, huge)]).await;
    let vlm = provider(&server.base_url("http"), &[]);

    let err = vlm.ask(&request()).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        "the VLM answer is unusable: the response is larger than 1 MiB"
    );
}

#[tokio::test]
async fn an_https_endpoint_is_trusted_through_vlm_tls_ca_file_only() {
    let (mut server, ca_pem) = ChatServer::start_tls(vec![Reply::content(&good_answer())]).await;
    let dir = std::env::temp_dir().join(format!("panoptes-vlm-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let base_url = server.base_url("https");

    // The system roots do not know the CA: no request reaches the server.
    let untrusting = provider(&base_url, &[("MAX_RETRIES", "0")]);
    let err = untrusting.ask(&request()).await.unwrap_err();
    assert!(
        matches!(err, VlmError::Transport { .. }) && err.to_string().contains("TLS"),
        "{err:?}"
    );
    assert!(server.drain().is_empty());

    let trusting = provider(&base_url, &[("TLS_CA_FILE", ca.to_str().unwrap())]);
    let answer = trusting.ask(&request()).await.expect("an answer over TLS");
    assert_eq!(answer.object["severity"], "warning");
    let sent = server.next(WAIT, "the request over TLS").await;
    assert_eq!(sent.headers["authorization"], format!("Bearer {API_KEY}"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_disabled_provider_says_no_provider_is_configured() {
    let vlm = vlm_provider(&Config::default()).expect("off needs nothing");

    let err = vlm.ask(&request()).await.unwrap_err();

    assert_eq!(vlm.provider(), "off");
    assert!(matches!(err, VlmError::Disabled), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no VLM provider is configured (vlm.provider = off)"
    );
    assert!(!err.is_transient());
}
