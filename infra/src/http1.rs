//! One outbound HTTP/1.1 connection on a socket already connected (by the
//! outbound guard for webhooks, directly for the operator's VLM provider):
//! TLS with rustls over [`Tls`] for `https://`, then hyper's connection
//! handshake. Shared by the webhook sender and the VLM client.

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::camera::Tls;

trait Conn: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Conn for T {}

/// Why no connection was opened: a reason fit for the customer, and the
/// underlying error for the logs.
#[derive(Debug)]
pub(crate) struct OpenError {
    pub reason: &'static str,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A request sender on `tcp` (TLS for `host` when `https`), and the task
/// driving the connection: abort it once the exchange is over.
pub(crate) async fn open(
    tcp: TcpStream,
    host: &str,
    https: bool,
    tls: &Tls,
) -> Result<(SendRequest<Full<Bytes>>, JoinHandle<()>), OpenError> {
    let fail =
        |reason, source: Box<dyn std::error::Error + Send + Sync>| OpenError { reason, source };
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Conn> = if https {
        let name = ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
        .map_err(|e| fail("the host is not a valid TLS server name", e.into()))?;
        let stream = tokio_rustls::TlsConnector::from(tls.config())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                fail(
                    "the TLS handshake failed (certificate not trusted or not valid for the host)",
                    e.into(),
                )
            })?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| fail("the HTTP handshake failed", e.into()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, driver))
}
