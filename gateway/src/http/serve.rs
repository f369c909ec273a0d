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
//! Shutdown: stop accepting, ask every connection to finish its in-flight
//! request and close, and give up on those still open after `grace`. Event
//! streams end themselves when shutdown starts (their clients resume on
//! another replica), so the grace period is for ordinary requests.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt, Request};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::direct_stream::{self, Sniffed};

type HyperBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// A client must send its request head within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `ep` on `listener` until `shutdown` fires, then drain for at most `grace`.
pub async fn serve<E>(
    listener: TcpListener,
    ep: E,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let ep = Arc::new(ep.map_to_response().boxed());
    let local = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connections = TaskTracker::new();
    let force = CancellationToken::new();
    loop {
        let (mut socket, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or memory: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let addrs = (local.clone(), RemoteAddr(Addr::SocketAddr(peer)));
        let (ep, http, shutdown, force) =
            (ep.clone(), http.clone(), shutdown.clone(), force.clone());
        connections.spawn(async move {
            match direct_stream::sniff(&mut socket, HEADER_READ_TIMEOUT).await {
                Sniffed::Stream(parts) => {
                    direct_stream::serve(socket, parts, &*ep, addrs, force).await;
                }
                // Boxed: the task of a direct stream does not carry hyper's state.
                Sniffed::Other => {
                    Box::pin(serve_hyper(socket, ep, addrs, &http, shutdown, force)).await;
                }
                Sniffed::Gone => {}
            }
        });
    }
    connections.close();
    tracing::info!(
        open = connections.len(),
        "stopped accepting; letting open connections finish"
    );
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        force.cancel();
        connections.wait().await;
    }
    Ok(())
}

/// One connection through hyper: keep-alive, pipelining, bodies, everything
/// but the direct streams.
async fn serve_hyper(
    socket: TcpStream,
    ep: Arc<BoxEndpoint<'static>>,
    (local, remote): (LocalAddr, RemoteAddr),
    http: &hyper::server::conn::http1::Builder,
    shutdown: CancellationToken,
    force: CancellationToken,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (ep, local, remote) = (ep.clone(), local.clone(), remote.clone());
        async move {
            let req = Request::from((req, local, remote, Scheme::HTTP));
            let resp: hyper::Response<HyperBody> = ep.get_response(req).await.into();
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http.serve_connection(TokioIo::new(socket), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = conn => {}
        () = force.cancelled() => {}
    }
}
