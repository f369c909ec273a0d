//! The `text/event-stream` response: already-encoded frames written straight
//! to the connection, and the stream's token in the `Stream-Token` header.
//!
//! poem's `SSE` (behind poem-openapi's `EventStream`) turns the stream into an
//! `AsyncRead` and back into a stream through a 4 KiB `ReaderStream` buffer
//! and a boxed keep-alive interval per connection. Idle streams are what an
//! SSE gateway holds most of, so frames go to the body as they are and the
//! keep-alive rides on the stream's own lease-renewal timer.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use poem::{Body, IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::Type;

/// The documented schema of an `analysis_result` event's data (from
/// `panoptes_shared::domain::stream_events`, added by `openapi_doc`).
pub const EVENT_SCHEMA: &str = "AnalysisResult";

/// The response header that carries a stream's token.
pub const STREAM_TOKEN_HEADER: &str = "Stream-Token";

/// An event stream whose items are complete SSE frames.
pub struct SseBody {
    pub frames: BoxStream<'static, Bytes>,
    /// Sent as `Stream-Token` (and in the stream's first event).
    pub stream_token: String,
}

impl Payload for SseBody {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(EVENT_SCHEMA.to_owned())
    }

    fn register(registry: &mut Registry) {
        register_event_placeholder(registry);
    }
}

/// poem-openapi wants every referenced schema registered; `openapi_doc`
/// replaces this stand-in with the event type's own schema.
fn register_event_placeholder(registry: &mut Registry) {
    registry.create_schema::<SseBody, _>(EVENT_SCHEMA.to_owned(), |_| MetaSchema::new("object"));
}

impl IntoResponse for SseBody {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .header("Cache-Control", "no-cache")
            // Tells nginx-style proxies not to buffer the stream.
            .header("X-Accel-Buffering", "no")
            .header(STREAM_TOKEN_HEADER, self.stream_token)
            .body(Body::from_bytes_stream(
                self.frames.map(Ok::<_, std::io::Error>),
            ))
    }
}

impl ApiResponse for SseBody {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "`text/event-stream`: `retry:`, then a `stream_token` event (`StreamTokenEvent`, no `id:`), then `analysis_result` events (`id: <analysisId>-<epochMillis>`; `data` is one `AnalysisResult` object), with `:` keep-alive comments.",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![MetaHeader {
                    name: STREAM_TOKEN_HEADER.to_owned(),
                    description: Some(
                        "This stream's token (also the `data` of its first `stream_token` event, \
                         for `EventSource`, which cannot read headers). Send it back as \
                         `Stream-Token` or `streamToken` when reconnecting: the new stream then \
                         replaces this one's slot, even at the stream limit, and this stream ends. \
                         Each token replaces at most once; the new stream has a new token."
                            .to_owned(),
                    ),
                    required: true,
                    deprecated: false,
                    schema: String::schema_ref(),
                }],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        register_event_placeholder(registry);
    }
}

/// `retry: <ms>` advice.
pub fn retry_frame(ms: u64) -> Bytes {
    Bytes::from(format!("retry: {ms}\n\n"))
}

/// A comment that keeps proxies and clients from timing the stream out.
pub fn keep_alive_frame() -> Bytes {
    Bytes::from_static(b":\n\n")
}

/// The event that hands a client its stream token: no `id:`, so a browser's
/// last event id (its resume point) stays where it was.
pub fn stream_token_frame(token: &str) -> Bytes {
    let data = serde_json::to_string(&panoptes_shared::domain::stream_events::StreamTokenEvent {
        stream_token: token.to_owned(),
    })
    .unwrap_or_default();
    let event = super::stream::TOKEN_EVENT_NAME;
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// One event. `data` is split into one `data:` line per line, as the SSE
/// grammar requires (a client joins them back with `\n`).
pub fn event_frame(id: &str, event: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(id.len() + event.len() + data.len() + 32);
    out.push_str("id: ");
    out.push_str(id);
    out.push_str("\nevent: ");
    out.push_str(event);
    out.push('\n');
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_sse_grammar() {
        assert_eq!(retry_frame(3000), "retry: 3000\n\n");
        assert_eq!(keep_alive_frame(), ":\n\n");
        assert_eq!(
            stream_token_frame("abc_-"),
            "event: stream_token\ndata: {\"streamToken\":\"abc_-\"}\n\n"
        );
        assert_eq!(
            event_frame("t-1", "analysis_result", "{\"a\":1}"),
            "id: t-1\nevent: analysis_result\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            event_frame("t-2", "e", "one\ntwo\r\nthree"),
            "id: t-2\nevent: e\ndata: one\ndata: two\ndata: three\n\n"
        );
    }
}
