//! Every RTSP session goes through a relay of ours. retina opens its own TCP
//! connection from a URL, so it is handed `rtsp://127.0.0.1:<port>/<path>`
//! instead: a loopback listener that accepts that one connection and carries
//! it over the connection [`Dialer`] made to the camera, which is
//!
//! - made by the outbound guard: public addresses only (unless
//!   `outbound.allow_private`), every resolved address checked, and the TCP
//!   connection opened to a checked address, so retina never resolves the
//!   name and DNS rebinding gains nothing;
//! - wrapped in TLS for `rtsps://` ([`super::tls`]);
//! - watched both ways, one RTSP message at a time. A request retina writes
//!   is held until complete and dropped, with the connection, when it
//!   carries credentials that must not leave: any, when the device's stored
//!   ones were withheld, or Basic on plain RTSP without the device's opt-in
//!   (the check is on each request, as a hostile camera may change its
//!   challenge between requests). What the camera sends must be RTSP; the
//!   status codes are noted. Failures are classified from these
//!   observations ([`Seen`]), never from retina's error text, which quotes
//!   the camera's bytes.
//!
//! The relay ends when either side closes; one relay serves one session.
//! Request URIs name the loopback address (as for RTSPS before), which RTSP
//! cameras ignore for routing; Digest responses are computed over them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes_shared::domain::device::RtspUrl;
use panoptes_shared::outbound::{OutboundError, OutboundGuard};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};
use url::Url;

use super::tls::Tls;
use panoptes_shared::domain::camera::SourceError;

/// retina connects right after the relay is set up; a relay nobody used by
/// then (or whose [`Relay`] was dropped first) is abandoned.
const ACCEPT_WITHIN: Duration = Duration::from_secs(30);
/// Longest message head (request/status line and headers) relayed.
const MAX_HEAD: usize = 64 * 1024;
/// Largest message body (SDP, parameters) relayed.
const MAX_BODY: usize = 1024 * 1024;
/// How a message from the camera may begin: a response, or one of the
/// requests a server may send its client.
const CAMERA_STARTS: &[&[u8]] = &[
    b"RTSP/",
    b"ANNOUNCE ",
    b"GET_PARAMETER ",
    b"SET_PARAMETER ",
    b"OPTIONS ",
    b"REDIRECT ",
    b"PLAY_NOTIFY ",
    b"TEARDOWN ",
];

/// Opens camera connections: the outbound guard, then TLS where the scheme
/// asks for it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Dialer {
    guard: Arc<OutboundGuard>,
    tls: Tls,
}

impl Dialer {
    pub fn new(guard: Arc<OutboundGuard>, tls: Tls) -> Self {
        Self { guard, tls }
    }

    pub fn guard(&self) -> &Arc<OutboundGuard> {
        &self.guard
    }

    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// Connect to the camera at `url` and return the relay retina should
    /// use. Requests may carry credentials as `auth` says.
    pub(crate) async fn dial(&self, url: &Url, auth: AuthRule) -> Result<Relay, SourceError> {
        let host = url.host_str().ok_or(SourceError::BlockedAddress)?;
        let port = url.port().unwrap_or(RtspUrl::default_port(url.scheme()));
        let tcp = self.guard.connect(host, port).await.map_err(|e| match e {
            OutboundError::Blocked(why) => {
                tracing::info!(%why, "camera connection refused by the outbound guard");
                SourceError::BlockedAddress
            }
            OutboundError::InvalidHost => SourceError::BlockedAddress,
            OutboundError::Unresolvable(_) | OutboundError::Connect(_) => {
                tracing::debug!(error = %e, "camera not reached");
                SourceError::Unreachable
            }
        })?;
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
            tracing::warn!(error = %e, "no loopback port for the RTSP relay");
            SourceError::Unreachable
        })?;
        let local = listener.local_addr().map_err(|e| {
            tracing::warn!(error = %e, "the RTSP relay's port is unknown");
            SourceError::Unreachable
        })?;
        let seen = Seen::default();
        let unused = CancellationToken::new();
        let stop = unused.clone();
        if url.scheme().eq_ignore_ascii_case("rtsps") {
            let tls = self.tls.connect(host, tcp).await?;
            tokio::spawn(serve(listener, tls, auth, seen.clone(), stop));
        } else {
            tokio::spawn(serve(listener, tcp, auth, seen.clone(), stop));
        }
        let mut plain = url.clone();
        let rewritten = plain.set_scheme("rtsp").is_ok()
            && plain.set_host(Some("127.0.0.1")).is_ok()
            && plain.set_port(Some(local.port())).is_ok();
        if !rewritten {
            return Err(SourceError::Protocol);
        }
        Ok(Relay {
            url: plain,
            seen,
            unused: unused.drop_guard(),
        })
    }
}

/// Which credentials a session's requests may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthRule {
    /// None: the device's credentials were withheld (or it has none).
    Nothing,
    /// Digest only: Basic would put the password on the wire in clear.
    DigestOnly,
    /// Basic or Digest (over TLS, or the device opted in).
    Any,
}

impl AuthRule {
    /// Whether a request head may be forwarded; notes the refusal otherwise.
    fn permits(self, head: &[u8], seen: &Seen) -> bool {
        for (name, value) in headers(head) {
            if !(name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("proxy-authorization"))
            {
                continue;
            }
            let scheme = value.split_whitespace().next().unwrap_or("");
            let refused = match self {
                Self::Nothing => true,
                Self::DigestOnly => !scheme.eq_ignore_ascii_case("digest"),
                Self::Any => false,
            };
            if refused {
                seen.update(|s| {
                    if self == Self::Nothing {
                        s.refused_credentials = true;
                    } else {
                        s.refused_insecure_auth = true;
                    }
                });
                return false;
            }
        }
        true
    }
}

/// The relay retina connects to.
pub(crate) struct Relay {
    /// `rtsp://127.0.0.1:<relay port>/<the camera URL's path and query>`.
    pub url: Url,
    pub seen: Seen,
    /// Dropped (keep it until retina has connected): a relay still waiting
    /// for its connection gives up, and closes the camera's.
    pub unused: DropGuard,
}

/// What the relay observed of one session.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Observed {
    /// RTSP responses from the camera.
    pub responses: u32,
    /// Status code of the latest response.
    pub last_status: Option<u16>,
    /// The camera's first message was not RTSP.
    pub not_rtsp: bool,
    /// A later message from the camera was not valid RTSP framing.
    pub malformed: bool,
    /// A request carried Basic (or another non-Digest scheme) where only
    /// Digest may go; it was not sent.
    pub refused_insecure_auth: bool,
    /// A request carried credentials where none may go; it was not sent.
    pub refused_credentials: bool,
    /// The camera closed the connection (or it broke).
    pub camera_closed: bool,
}

/// Shared view of [`Observed`]; a std mutex, never held across an await.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen(Arc<Mutex<Observed>>);

impl Seen {
    pub fn get(&self) -> Observed {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut Observed)) {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

async fn serve<S>(
    listener: TcpListener,
    camera: S,
    auth: AuthRule,
    seen: Seen,
    unused: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let accepted = tokio::select! {
        r = tokio::time::timeout(ACCEPT_WITHIN, listener.accept()) => r,
        () = unused.cancelled() => return,
    };
    let Ok(Ok((client, _))) = accepted else {
        return;
    };
    drop(listener);
    let (client_r, client_w) = client.into_split();
    let (camera_r, camera_w) = tokio::io::split(camera);
    let requests = pump(client_r, camera_w, None, |frame, bytes| match frame {
        Frame::Message { head, .. } => auth.permits(&bytes[..head], &seen),
        _ => true,
    });
    let responses = async {
        let end = pump(camera_r, client_w, Some(CAMERA_STARTS), |frame, bytes| {
            camera_message(frame, bytes, &seen)
        })
        .await;
        match end {
            End::Closed => seen.update(|s| s.camera_closed = true),
            End::Invalid => seen.update(|s| {
                if s.responses == 0 {
                    s.not_rtsp = true;
                } else {
                    s.malformed = true;
                }
            }),
            End::Stopped | End::PeerGone => {}
        }
    };
    // Either side ending ends the session: both connections close here.
    tokio::select! {
        _ = requests => {}
        () = responses => {}
    }
}

/// Note a message from the camera; `false` stops the relay.
fn camera_message(frame: Frame, bytes: &[u8], seen: &Seen) -> bool {
    match frame {
        Frame::Message { head, .. } if bytes.starts_with(b"RTSP/") => {
            let status = first_line(&bytes[..head])
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (100..=599).contains(c));
            match status {
                Some(code) => {
                    seen.update(|s| {
                        s.responses += 1;
                        s.last_status = Some(code);
                    });
                    true
                }
                None => {
                    seen.update(|s| {
                        if s.responses == 0 {
                            s.not_rtsp = true;
                        } else {
                            s.malformed = true;
                        }
                    });
                    false
                }
            }
        }
        // Interleaved data before any response is no RTSP camera.
        Frame::Data(_) if bytes.first() == Some(&b'$') && seen.get().responses == 0 => {
            seen.update(|s| s.not_rtsp = true);
            false
        }
        _ => true,
    }
}

/// How a pump ended.
enum End {
    /// The reading side closed or failed.
    Closed,
    /// The writing side is gone.
    PeerGone,
    /// Bytes that are not RTSP framing.
    Invalid,
    /// The inspector refused a message.
    Stopped,
}

/// One RTSP framing unit at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// Not RTSP framing.
    Invalid,
    /// A line break between messages, or `$`-interleaved data (RFC 2326
    /// 10.12), `n` bytes long.
    Data(usize),
    /// A request or response: `head` bytes of start line and headers, `len`
    /// bytes with the body.
    Message { head: usize, len: usize },
}

fn next_frame(buf: &[u8], starts: Option<&[&[u8]]>) -> Frame {
    let Some(&first) = buf.first() else {
        return Frame::Incomplete;
    };
    if first == b'$' {
        if buf.len() < 4 {
            return Frame::Incomplete;
        }
        let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        return if buf.len() < len {
            Frame::Incomplete
        } else {
            Frame::Data(len)
        };
    }
    if first == b'\r' || first == b'\n' {
        return Frame::Data(1);
    }
    if let Some(starts) = starts {
        let plausible = starts.iter().any(|p| {
            let n = buf.len().min(p.len());
            buf[..n] == p[..n]
        });
        if !plausible {
            return Frame::Invalid;
        }
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Frame::Invalid
        } else {
            Frame::Incomplete
        };
    };
    let head = end + 4;
    if head > MAX_HEAD {
        return Frame::Invalid;
    }
    let mut body = 0;
    for (name, value) in headers(&buf[..head]) {
        if name.eq_ignore_ascii_case("content-length") {
            match value.trim().parse::<usize>() {
                Ok(n) if n <= MAX_BODY => body = n,
                _ => return Frame::Invalid,
            }
        }
    }
    let len = head + body;
    if buf.len() < len {
        Frame::Incomplete
    } else {
        Frame::Message { head, len }
    }
}

fn first_line(head: &[u8]) -> &str {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    std::str::from_utf8(line).unwrap_or_default().trim_end()
}

/// `name: value` header lines of a message head (lines that are not UTF-8
/// or have no colon are skipped).
fn headers(head: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    head.split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim()))
}

/// Copy whole frames from `from` to `to`, each shown to `inspect` first
/// (`false`: not forwarded, and the pump stops). `starts`: how a message
/// must begin (`None`: not checked).
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    starts: Option<&[&[u8]]>,
    mut inspect: impl FnMut(Frame, &[u8]) -> bool,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let mut done = 0;
        let mut end = None;
        loop {
            let rest = &buf[done..];
            let frame = next_frame(rest, starts);
            let len = match frame {
                Frame::Incomplete => break,
                Frame::Invalid => {
                    end = Some(End::Invalid);
                    break;
                }
                Frame::Data(len) | Frame::Message { len, .. } => len,
            };
            if !inspect(frame, &rest[..len]) {
                end = Some(End::Stopped);
                break;
            }
            done += len;
        }
        if done > 0 {
            if to.write_all(&buf[..done]).await.is_err() {
                return End::PeerGone;
            }
            buf.drain(..done);
        }
        if let Some(end) = end {
            return end;
        }
        buf.reserve(16 * 1024);
        match from.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return End::Closed,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_at_message_and_interleaved_boundaries() {
        let resp = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 3\r\n\r\nv=0";
        assert_eq!(
            next_frame(resp, Some(CAMERA_STARTS)),
            Frame::Message {
                head: resp.len() - 3,
                len: resp.len()
            }
        );
        assert_eq!(
            next_frame(&resp[..20], Some(CAMERA_STARTS)),
            Frame::Incomplete
        );
        assert_eq!(
            next_frame(b"$\x00\x00\x02ab$", Some(CAMERA_STARTS)),
            Frame::Data(6)
        );
        assert_eq!(next_frame(b"RTS", Some(CAMERA_STARTS)), Frame::Incomplete);
        assert_eq!(
            next_frame(b"-ERR unknown command\r\n", Some(CAMERA_STARTS)),
            Frame::Invalid
        );
        assert_eq!(
            next_frame(b"HTTP/1.1 400 Bad Request\r\n", Some(CAMERA_STARTS)),
            Frame::Invalid
        );
        assert_eq!(
            next_frame(b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n", None),
            Frame::Invalid
        );
    }

    #[test]
    fn credentials_leave_only_as_the_rule_allows() {
        let basic = b"DESCRIBE rtsp://127.0.0.1:1/ RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Basic YTpi\r\n\r\n";
        let digest = b"DESCRIBE rtsp://127.0.0.1:1/ RTSP/1.0\r\nCSeq: 2\r\nauthorization:   Digest username=\"a\"\r\n\r\n";
        let none = b"DESCRIBE rtsp://127.0.0.1:1/ RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        let seen = Seen::default();
        assert!(AuthRule::Any.permits(basic, &seen));
        assert!(AuthRule::DigestOnly.permits(digest, &seen));
        assert!(AuthRule::Nothing.permits(none, &seen));
        assert!(!seen.get().refused_insecure_auth && !seen.get().refused_credentials);
        assert!(!AuthRule::DigestOnly.permits(basic, &seen));
        assert!(seen.get().refused_insecure_auth);
        assert!(!AuthRule::Nothing.permits(digest, &seen));
        assert!(seen.get().refused_credentials);
    }
}
