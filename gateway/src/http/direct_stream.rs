//! Event streams written straight to the socket.
//!
//! An idle SSE connection is what this gateway holds most of. Served through
//! hyper, each one keeps an 8 KiB header write buffer and an 8 KiB read buffer
//! (allocated just to notice EOF) for its whole life. So the connection loop
//! peeks at a new connection's first request: when it is a complete
//! `GET` of an event-stream route with no body, the head is parsed here, the
//! request goes through the same poem endpoint tree (middleware, auth,
//! tenancy, limits, logging and metrics all apply), and a `text/event-stream`
//! answer is written as chunked frames directly on the socket. Anything else
//! (other routes, a head split across packets, a body, HTTP/1.0, upgrades) is
//! left unread for hyper.
//!
//! A direct connection carries that one request: a non-stream answer (401,
//! 404, 429...) is sent with `Connection: close`, and when the stream ends the
//! last chunk is written and the connection closed. A client closing its side
//! is noticed at once (the socket reads EOF).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use poem::http::uri::Scheme;
use poem::http::{HeaderName, HeaderValue, Method, StatusCode, Version, header};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Body, Endpoint, Request, RequestParts, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest request head looked at (longer ones go to hyper).
const PEEK_BYTES: usize = 8192;
/// Most headers a direct request may carry.
const MAX_HEADERS: usize = 48;
/// A client that takes longer than this to accept a write is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames ready at once are written together, up to this many bytes.
const BATCH_BYTES: usize = 64 * 1024;

/// What the first request of a connection is.
pub enum Sniffed {
    /// A stream request, its head already consumed from the socket.
    Stream(Box<poem::http::request::Parts>),
    /// Anything else: nothing was consumed.
    Other,
    /// Nothing arrived by the deadline.
    Idle,
    /// The peer went away.
    Gone,
}

/// Is `path` (no query) one of the event-stream routes?
pub fn is_stream_path(path: &str) -> bool {
    use panoptes_shared::domain::stream_events::{ALL_DEVICES_STREAM_PATH, DEVICE_STREAM_PATH};
    let (prefix, suffix) = DEVICE_STREAM_PATH;
    path == ALL_DEVICES_STREAM_PATH
        || path
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Look at the first request on `socket` without consuming it unless it is
/// a stream request; give up on a client that sends nothing by `deadline`.
pub async fn sniff(socket: &mut TcpStream, deadline: Instant) -> Sniffed {
    // No buffer until bytes arrive: a connection that sends nothing costs
    // none. (`readable()` would not do: tokio reports a new socket readable
    // until a read or peek finds it empty.)
    match tokio::time::timeout_at(deadline, socket.peek(&mut [0u8; 1])).await {
        Ok(Ok(n)) if n > 0 => {}
        Ok(_) => return Sniffed::Gone,
        Err(_) => return Sniffed::Idle,
    }
    let mut buf = vec![0u8; PEEK_BYTES];
    let n = match tokio::time::timeout_at(deadline, socket.peek(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => n,
        Ok(_) => return Sniffed::Gone,
        Err(_) => return Sniffed::Idle,
    };
    let Some((parts, head_len)) = parse_stream_request(&buf[..n]) else {
        return Sniffed::Other;
    };
    // The head is already in the socket buffer: this read does not wait.
    match tokio::io::AsyncReadExt::read_exact(socket, &mut buf[..head_len]).await {
        Ok(_) => Sniffed::Stream(Box::new(parts)),
        Err(_) => Sniffed::Gone,
    }
}

/// A complete, bodiless HTTP/1.1 `GET` of a stream route, and its head length.
fn parse_stream_request(bytes: &[u8]) -> Option<(poem::http::request::Parts, usize)> {
    if !bytes.starts_with(b"GET /api/v1/devices/") {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = req.parse(bytes).ok()? else {
        return None;
    };
    let target = req.path?;
    if req.version != Some(1) || !is_stream_path(target.split('?').next().unwrap_or_default()) {
        return None;
    }
    let mut builder = poem::http::Request::builder()
        .method(Method::GET)
        .uri(target)
        .version(Version::HTTP_11);
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        // Bodies, upgrades and 100-continue are hyper's business.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || name == header::UPGRADE
        {
            return None;
        }
        builder = builder.header(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    let (parts, ()) = builder.body(()).ok()?.into_parts();
    Some((parts, len))
}

/// Answer the stream request on `socket`.
pub async fn serve<E: Endpoint<Output = Response>>(
    mut socket: TcpStream,
    parts: Box<poem::http::request::Parts>,
    ep: &E,
    addrs: (LocalAddr, RemoteAddr),
    force: CancellationToken,
) {
    let parts = RequestParts::from((*parts, addrs.0, addrs.1, Scheme::HTTP));
    let resp = tokio::select! {
        resp = ep.get_response(Request::from_parts(parts, Body::empty())) => resp,
        () = force.cancelled() => return,
    };
    let is_stream = resp.status() == StatusCode::OK
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        let _ = write_whole(&mut socket, resp).await;
        return;
    }
    let _ = stream_body(&mut socket, resp, force).await;
}

/// A short answer with a length, then close.
async fn write_whole(socket: &mut TcpStream, resp: Response) -> io::Result<()> {
    let (parts, body) = resp.into_parts();
    let body = body
        .into_bytes()
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut out = head(parts.status, &parts.headers);
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    write(socket, &out).await?;
    socket.shutdown().await
}

/// The stream as chunked frames, until it ends, the client leaves or the
/// node gives up on draining.
async fn stream_body(
    socket: &mut TcpStream,
    resp: Response,
    force: CancellationToken,
) -> io::Result<()> {
    let (parts, body) = resp.into_parts();
    let mut out = head(parts.status, &parts.headers);
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    write(socket, &out).await?;
    drop(out);
    let mut frames = body.into_bytes_stream();
    loop {
        tokio::select! {
            frame = frames.next() => {
                let Some(Ok(first)) = frame else {
                    write(socket, b"0\r\n\r\n").await?;
                    return socket.shutdown().await;
                };
                // Whatever else is ready goes in the same write.
                let mut out = Vec::with_capacity(first.len() + 16);
                chunk(&mut out, &first);
                while out.len() < BATCH_BYTES {
                    match frames.next().now_or_never() {
                        Some(Some(Ok(more))) => chunk(&mut out, &more),
                        _ => break,
                    }
                }
                write(socket, &out).await?;
            }
            ready = socket.readable() => {
                ready?;
                let mut scratch = [0u8; 64];
                match socket.try_read(&mut scratch) {
                    // The client closed its side.
                    Ok(0) => return Ok(()),
                    // A pipelined request is not answered: this connection ends with the stream.
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            () = force.cancelled() => return Ok(()),
        }
    }
}

fn chunk(out: &mut Vec<u8>, data: &Bytes) {
    if data.is_empty() {
        return; // an empty chunk would end the body
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn head(status: StatusCode, headers: &poem::http::HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    // An origin server with a clock sends Date (RFC 9110 6.6.1), as hyper does.
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(
            chrono::Utc::now()
                .format("date: %a, %d %b %Y %H:%M:%S GMT\r\n")
                .to_string()
                .as_bytes(),
        );
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn write(socket: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(bytes))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stream_routes_are_taken() {
        assert!(is_stream_path("/api/v1/devices/analysis/stream/all"));
        assert!(is_stream_path(
            "/api/v1/devices/0f8fad5b-d9cb-469f-a165-70867728950e/analysis/stream"
        ));
        assert!(!is_stream_path("/api/v1/devices//analysis/stream"));
        assert!(!is_stream_path("/api/v1/devices/a/b/analysis/stream"));
        assert!(!is_stream_path("/api/v1/devices/x"));
        assert!(!is_stream_path("/api/v1/devices/analysis/stream/all/"));
    }

    #[test]
    fn a_complete_bodiless_get_is_parsed_and_anything_else_is_left() {
        let ok = b"GET /api/v1/devices/analysis/stream/all?ticket=t HTTP/1.1\r\nHost: x\r\nLast-Event-ID: a-1\r\n\r\n";
        let (parts, len) = parse_stream_request(ok).unwrap();
        assert_eq!(len, ok.len());
        assert_eq!(parts.uri.query(), Some("ticket=t"));
        assert_eq!(parts.headers["last-event-id"], "a-1");
        // Pipelined bytes after the head are not part of it.
        let mut more = ok.to_vec();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(parse_stream_request(&more).unwrap().1, ok.len());
        for other in [
            &b"GET /api/v1/devices/analysis/stream/all HTTP/1.1\r\nHost: x\r\n"[..],
            b"GET /api/v1/devices/analysis/stream/all HTTP/1.0\r\n\r\n",
            b"POST /api/v1/devices/analysis/stream/all HTTP/1.1\r\n\r\n",
            b"GET /api/v1/devices HTTP/1.1\r\n\r\n",
            b"GET /api/v1/devices/analysis/stream/all HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /api/v1/devices/analysis/stream/all HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /api/v1/devices/analysis/stream/all HTTP/1.1\r\nX: \x01\r\n\r\n",
        ] {
            assert!(
                parse_stream_request(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn frames_are_chunked_and_empty_ones_skipped() {
        let mut out = Vec::new();
        chunk(&mut out, &Bytes::from_static(b":\n\n"));
        chunk(&mut out, &Bytes::new());
        chunk(&mut out, &Bytes::from(vec![b'x'; 26]));
        let mut want = b"3\r\n:\n\n\r\n1a\r\n".to_vec();
        want.extend_from_slice(&[b'x'; 26]);
        want.extend_from_slice(b"\r\n");
        assert_eq!(out, want);
    }
}
