//! A minimal SSE client for the tests: reads the body as it arrives and
//! parses events across arbitrary chunk boundaries (poem does not align
//! events with HTTP chunks).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }
}

/// Incremental parser: feed bytes, take complete events.
#[derive(Default)]
pub struct Parser {
    buf: String,
}

impl Parser {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        // Normalise after appending: a CRLF may straddle two chunks.
        if self.buf.contains('\r') {
            self.buf = self.buf.replace("\r\n", "\n");
        }
    }

    /// The next complete event (comment-only blocks are skipped).
    pub fn next(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buf.find("\n\n")?;
            let block: String = self.buf.drain(..end + 2).collect();
            let mut ev = SseEvent::default();
            let mut has_field = false;
            let mut data = Vec::new();
            for line in block.lines() {
                if line.is_empty() || line.starts_with(':') {
                    continue;
                }
                let (field, value) = line
                    .split_once(':')
                    .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
                has_field = true;
                match field {
                    "id" => ev.id = Some(value.to_owned()),
                    "event" => ev.event = Some(value.to_owned()),
                    "data" => data.push(value.to_owned()),
                    "retry" => ev.retry = value.parse().ok(),
                    _ => {}
                }
            }
            if has_field {
                ev.data = data.join("\n");
                return Some(ev);
            }
        }
    }
}

pub struct SseClient {
    pub headers: reqwest::header::HeaderMap,
    resp: reqwest::Response,
    parser: Parser,
}

pub enum Opened {
    Stream(SseClient),
    Refused {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: serde_json::Value,
    },
}

impl Opened {
    #[track_caller]
    pub fn stream(self) -> SseClient {
        match self {
            Self::Stream(s) => s,
            Self::Refused { status, body, .. } => panic!("stream refused with {status}: {body}"),
        }
    }

    #[track_caller]
    pub fn refused(self) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        match self {
            Self::Stream(_) => panic!("the stream was expected to be refused"),
            Self::Refused {
                status,
                headers,
                body,
            } => (status, headers, body),
        }
    }
}

pub async fn open(url: &str, token: Option<&str>, last_event_id: Option<&str>) -> Opened {
    open_with(url, token, last_event_id, None).await
}

/// [`open`], also presenting the `Stream-Token` of the stream this one replaces.
pub async fn open_with(
    url: &str,
    token: Option<&str>,
    last_event_id: Option<&str>,
    stream_token: Option<&str>,
) -> Opened {
    let mut req = reqwest::Client::new()
        .get(url)
        .header("accept", "text/event-stream");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    if let Some(t) = stream_token {
        req = req.header("stream-token", t);
    }
    let resp = req.send().await.expect("request reaches the server");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    if status != 200 {
        let body = resp.json().await.unwrap_or_default();
        return Opened::Refused {
            status,
            headers,
            body,
        };
    }
    Opened::Stream(SseClient {
        headers,
        resp,
        parser: Parser::default(),
    })
}

impl SseClient {
    /// This stream's token (the `Stream-Token` response header).
    pub fn stream_token(&self) -> String {
        self.headers["stream-token"]
            .to_str()
            .expect("the stream token is ASCII")
            .to_owned()
    }

    /// Read until the server ends the stream, skipping whatever it still
    /// sends; panics if it has not ended within `wait`.
    pub async fn ended_within(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while self
            .next_within(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
            .is_some()
        {}
    }

    /// The next event; `None` when the server ended the stream. Panics after `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(ev) = self.parser.next() {
                return Some(ev);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("an event within the wait");
            match chunk {
                Ok(Some(bytes)) => self.parser.feed(&bytes),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    pub async fn next(&mut self) -> Option<SseEvent> {
        self.next_within(Duration::from_secs(5)).await
    }

    /// The next `analysis_result` (skipping `retry` and `stream_token`), or `None` at the end.
    pub async fn next_result(&mut self) -> Option<SseEvent> {
        loop {
            let ev = self.next().await?;
            if ev.event.as_deref() == Some("analysis_result") {
                // Every event a test reads is held to the published schema.
                crate::event_schema::documented_event(&ev.data);
                return Some(ev);
            }
        }
    }
}

#[test]
fn events_split_across_chunks_at_any_byte_are_parsed() {
    let stream = "retry: 3000\n\n: keep-alive\n\nid: a-1\nevent: analysis_result\ndata: {\"x\":1}\n\nid: a-2\r\ndata: line1\r\ndata: line2\r\n\r\n";
    for split in 0..stream.len() {
        let mut p = Parser::default();
        let mut got = Vec::new();
        for part in [&stream[..split], &stream[split..]] {
            p.feed(part.as_bytes());
            while let Some(e) = p.next() {
                got.push(e);
            }
        }
        assert_eq!(got.len(), 3, "split at {split}");
        assert_eq!(got[0].retry, Some(3000));
        assert_eq!(
            (
                got[1].id.as_deref(),
                got[1].event.as_deref(),
                got[1].data.as_str()
            ),
            (Some("a-1"), Some("analysis_result"), "{\"x\":1}")
        );
        assert_eq!(got[2].data, "line1\nline2");
    }
}
