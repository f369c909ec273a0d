//! The connection loop: HTTP/1.1 over hyper, each request handed to the poem
//! endpoint tree.
//!
//! poem's own `Server` serves every connection through hyper-util's
//! HTTP/1-or-2 sniffing builder, whose rewound first read makes hyper grow
//! its read buffer from 8 KiB to 16 KiB on every connection. For an SSE
//! gateway that holds tens of thousands of idle connections, those bytes are
//! most of the memory, so connections are served here by hyper's HTTP/1.1
//! builder directly (TLS and HTTP/2 end at the load balancer), and a
//! connection that opens with an event-stream request skips hyper altogether
//! (see [`super::direct_stream`]).
//!
//! Admission ([`super::connections`]): room for a connection is taken before
//! it is accepted, so a full gateway leaves new connections in the kernel's
//! backlog; a client over its cap is answered 429 and closed; past the global
//! cap a few reserved connections serve the health routes only.
//!
//! Idle connections: one that has no complete request head
//! `idle_connection_timeout_ms` after it opened, or after its previous
//! response, is closed. hyper's header read timeout covers every head it
//! reads (its clock starts when it starts reading one); the first head also
//! has a deadline from the accept, which covers the time spent in
//! `direct_stream::sniff` waiting for the first bytes.
//!
//! Accept errors: a failure of the peer's (aborted, reset) is retried at
//! once; anything else (out of file descriptors or memory) backs off
//! exponentially up to a second, warns at most every 10 s, and is counted.
//!
//! Shutdown: stop accepting, ask every connection to finish its in-flight
//! request and close, and give up on those still open after `grace`. Event
//! streams end themselves when shutdown starts (their clients resume on
//! another replica), so the grace period is for ordinary requests.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt, Request};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connections::{
    ConnectionLimits, Gate, Permit, is_health_path, over_cap_response, refusal_body,
};
use super::direct_stream::{self, Sniffed};
use super::error::ErrorCode;
use super::metrics::{CloseReason, HttpMetrics};

type HyperBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// First and last pause after a failed accept.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));
/// At most one warning about failed accepts this often.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// How the loop serves, besides the endpoint.
pub struct ServeOptions {
    /// How long in-flight requests may finish after shutdown starts.
    pub grace: Duration,
    pub limits: ConnectionLimits,
    /// Where the connection gauges and counters go (`/metrics`).
    pub metrics: Arc<HttpMetrics>,
}

/// What every connection task shares.
struct Shared {
    ep: BoxEndpoint<'static>,
    local: LocalAddr,
    http: hyper::server::conn::http1::Builder,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
    force: CancellationToken,
}

/// Serve `ep` on `listener` until `shutdown` fires, then drain for at most `options.grace`.
pub async fn serve<E>(
    listener: TcpListener,
    ep: E,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let gate = Gate::new(options.limits, options.metrics);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(gate.idle_timeout());
    let shared = Arc::new(Shared {
        ep: ep.map_to_response().boxed(),
        local: LocalAddr(Addr::SocketAddr(listener.local_addr()?)),
        http,
        gate: gate.clone(),
        shutdown: shutdown.clone(),
        force: CancellationToken::new(),
    });
    let connections = TaskTracker::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        // Room first: while the gateway is full, connections wait in the backlog.
        let room = tokio::select! {
            () = shutdown.cancelled() => break,
            room = gate.room() => match room {
                Some(room) => room,
                None => break,
            },
        };
        let (socket, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff.succeeded();
                    a
                }
                Err(e) => {
                    gate.metrics().accept_failed();
                    if let Some(pause) = backoff.failed(&e) {
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(pause) => {}
                        }
                    }
                    continue;
                }
            },
        };
        let opened = Instant::now();
        let Ok(permit) = gate.admit(room, peer.ip()) else {
            refuse(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let remote = RemoteAddr(Addr::SocketAddr(peer));
        connections.spawn(serve_connection(
            socket,
            permit,
            remote,
            opened + gate.idle_timeout(),
            shared.clone(),
        ));
    }
    connections.close();
    tracing::info!(
        open = connections.len(),
        "stopped accepting; letting open connections finish"
    );
    if tokio::time::timeout(options.grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        shared.force.cancel();
        connections.wait().await;
    }
    Ok(())
}

/// One connection, from accept to close; `permit` is its slot.
async fn serve_connection(
    mut socket: TcpStream,
    permit: Permit,
    remote: RemoteAddr,
    first_head_by: Instant,
    shared: Arc<Shared>,
) {
    if permit.reserved() {
        Box::pin(serve_hyper(socket, remote, first_head_by, true, &shared)).await;
        return;
    }
    match direct_stream::sniff(&mut socket, first_head_by).await {
        // Both boxed: the task of a connection that has sent nothing yet
        // carries neither state, and that of a direct stream not hyper's.
        Sniffed::Stream(parts) => {
            let addrs = (shared.local.clone(), remote);
            let force = shared.force.clone();
            Box::pin(direct_stream::serve(
                socket, parts, &shared.ep, addrs, force,
            ))
            .await;
        }
        Sniffed::Other => {
            Box::pin(serve_hyper(socket, remote, first_head_by, false, &shared)).await;
        }
        Sniffed::Idle => shared.gate.metrics().count_close(CloseReason::Idle),
        Sniffed::Gone => {}
    }
    drop(permit);
}

/// A client over its cap: the answer is written only if the socket takes it
/// at once (a fresh socket's send buffer does), then the connection closes.
fn refuse(socket: TcpStream) {
    // Drop what already arrived, so that closing sends FIN, not a reset that
    // could destroy the answer before the client reads it.
    let mut scratch = [0u8; 2048];
    for _ in 0..4 {
        if !matches!(socket.try_read(&mut scratch), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = socket.try_write(&over_cap_response());
}

/// One connection through hyper: keep-alive, pipelining, bodies, everything
/// but the direct streams. A `health_only` connection carries one request,
/// and only to the health routes.
async fn serve_hyper(
    socket: TcpStream,
    remote: RemoteAddr,
    first_head_by: Instant,
    health_only: bool,
    shared: &Arc<Shared>,
) {
    let started = Arc::new(AtomicBool::new(false));
    let service = {
        let (shared, started) = (shared.clone(), started.clone());
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            started.store(true, Ordering::Relaxed);
            let (shared, remote) = (shared.clone(), remote.clone());
            async move {
                if health_only && !is_health_path(req.uri().path()) {
                    shared.gate.metrics().count_close(CloseReason::HealthOnly);
                    return Ok::<_, Infallible>(health_only_refusal());
                }
                let req = Request::from((req, shared.local.clone(), remote, Scheme::HTTP));
                let resp: hyper::Response<HyperBody> = shared.ep.get_response(req).await.into();
                Ok(resp)
            }
        })
    };
    let mut http = shared.http.clone();
    if health_only {
        http.keep_alive(false);
    }
    let conn = http.serve_connection(TokioIo::new(socket), service);
    tokio::pin!(conn);
    tokio::select! {
        done = conn.as_mut() => {
            if let Err(e) = done && e.is_timeout() {
                shared.gate.metrics().count_close(CloseReason::Idle);
            }
            return;
        }
        () = first_head_missed(first_head_by, &started) => {
            shared.gate.metrics().count_close(CloseReason::Idle);
            return;
        }
        () = shared.shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = conn => {}
        () = shared.force.cancelled() => {}
    }
}

/// Resolves at `deadline` if the connection's first request has not begun by then.
async fn first_head_missed(deadline: Instant, started: &AtomicBool) {
    tokio::time::sleep_until(deadline).await;
    if started.load(Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
}

/// 503 for a non-health request on a reserved connection (hyper adds
/// `Connection: close`: keep-alive is off there).
fn health_only_refusal() -> hyper::Response<HyperBody> {
    let code = ErrorCode::ServiceUnavailable;
    let (json, request_id) =
        refusal_body(code, "the server is at its connection limit; retry later");
    let body = http_body_util::Full::new(bytes::Bytes::from(json))
        .map_err(|never| -> io::Error { match never {} });
    let mut resp = hyper::Response::new(body.boxed());
    *resp.status_mut() = code.status();
    let headers = resp.headers_mut();
    headers.insert(
        poem::http::header::CONTENT_TYPE,
        poem::http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(id) = poem::http::HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", id);
    }
    resp
}

/// Pauses after failed accepts, and throttled warnings about them.
struct AcceptBackoff {
    next: Duration,
    last_warning: Option<Instant>,
    suppressed: u64,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self {
            next: ACCEPT_BACKOFF.0,
            last_warning: None,
            suppressed: 0,
        }
    }
}

impl AcceptBackoff {
    /// How long to pause after `e`; `None`: retry at once (the peer's failure).
    fn failed(&mut self, e: &io::Error) -> Option<Duration> {
        use io::ErrorKind::*;
        if matches!(
            e.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
        ) {
            tracing::debug!(error = %e, "accept failed");
            return None;
        }
        let pause = self.next;
        self.next = (self.next * 2).min(ACCEPT_BACKOFF.1);
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|at| now - at >= ACCEPT_WARN_EVERY)
        {
            tracing::warn!(
                error = %e,
                pause_ms = pause.as_millis(),
                suppressed = self.suppressed,
                "accept failed (out of file descriptors or memory?); backing off"
            );
            self.last_warning = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        Some(pause)
    }

    fn succeeded(&mut self) {
        self.next = ACCEPT_BACKOFF.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_exponentially_up_to_a_cap_and_warn_rarely() {
        let mut b = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..10).map(|_| b.failed(&emfile).unwrap()).collect();
        assert_eq!(pauses[0], Duration::from_millis(5));
        assert_eq!(pauses[1], Duration::from_millis(10));
        assert_eq!(*pauses.last().unwrap(), Duration::from_secs(1));
        assert_eq!(b.suppressed, 9, "one warning, the rest counted");
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(b.failed(&aborted), None);
        b.succeeded();
        assert_eq!(b.failed(&emfile), Some(Duration::from_millis(5)));
    }

    #[tokio::test]
    async fn the_health_only_refusal_is_a_503_envelope() {
        let resp = health_only_refusal();
        assert_eq!(resp.status(), 503);
        assert!(resp.headers().contains_key("x-request-id"));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "SERVICE_UNAVAILABLE");
    }
}
