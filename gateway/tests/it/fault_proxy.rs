//! A fault-injecting TCP proxy for outage tests: point the application at
//! [`FaultProxy::addr`] instead of Redis or PostgreSQL and switch what the
//! "network" does with [`FaultProxy::set`]:
//!
//! - [`Mode::Pass`]: bytes flow both ways as they arrive.
//! - [`Mode::Stall`]: connections stay open, but bytes are held in both
//!   directions (read and buffered here, so senders never block), and new
//!   connections are accepted and stalled the same way. Switching back to
//!   `Pass` delivers everything held, in order: a server that stalled and
//!   then catches up, running every command it was sent meanwhile.
//! - [`Mode::Refuse`]: every current connection is closed at once and new
//!   ones are closed as soon as they are accepted: the server is down. Bytes
//!   held at that moment are dropped. `Pass` afterwards serves new
//!   connections normally.
//!
//! Listens on 127.0.0.1 (a free port); each accepted connection gets its own
//! upstream connection. Dropping the proxy closes everything.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Stall,
    Refuse,
}

pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Start proxying to `upstream`, in [`Mode::Pass`].
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (mode, _) = watch::channel(Mode::Pass);
        let accept = tokio::spawn(accept_loop(listener, upstream, mode.clone()));
        FaultProxy { addr, mode, accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Change what the proxy does, for current and new connections alike.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Dropping the mode sender (after this) ends every pump.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, mode: watch::Sender<Mode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if *mode.borrow() == Mode::Refuse {
            drop(client);
            continue;
        }
        let rx = mode.subscribe();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return; // dropping the client closes it
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                pump(client_read, server_write, rx.clone()),
                pump(server_read, client_write, rx),
            );
        });
    }
}

/// One direction: read everything that arrives, deliver it while the mode is
/// `Pass`, hold it while `Stall`, drop the connection on `Refuse`.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>) {
    let mut held: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    loop {
        let now = *mode.borrow_and_update();
        if now == Mode::Refuse {
            return; // both halves of each socket end up dropped: closed
        }
        if now == Mode::Pass && held.is_empty() && eof {
            let _ = to.shutdown().await;
            return;
        }
        let deliver = now == Mode::Pass && !held.is_empty();
        tokio::select! {
            // `write` (not `write_all`) is cancel-safe: a mode change never
            // loses track of how much was delivered.
            written = to.write(&held), if deliver => match written {
                Ok(n) if n > 0 => {
                    held.drain(..n);
                }
                _ => return,
            },
            read = from.read(&mut buf), if !eof => match read {
                Ok(0) => eof = true,
                Ok(n) => held.extend_from_slice(&buf[..n]),
                Err(_) => return,
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return; // the proxy was dropped
                }
            }
        }
    }
}

#[tokio::test]
async fn the_proxy_passes_holds_in_order_and_refuses() {
    use std::time::Duration;
    // An echo server upstream.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let proxy = FaultProxy::start(upstream_addr).await;
    let wait = Duration::from_secs(5);
    let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut got = [0u8; 6];
    conn.write_all(b"pass-1").await.unwrap();
    tokio::time::timeout(wait, conn.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"pass-1");

    proxy.set(Mode::Stall);
    conn.write_all(b"held-1").await.unwrap();
    let mut late = TcpStream::connect(proxy.addr()).await.unwrap();
    late.write_all(b"held-2").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), conn.read(&mut got))
            .await
            .is_err(),
        "nothing arrives while stalled"
    );
    conn.write_all(b"held-3").await.unwrap();
    proxy.set(Mode::Pass);
    let mut both = [0u8; 12];
    tokio::time::timeout(wait, conn.read_exact(&mut both))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&both, b"held-1held-3", "held bytes arrive in order");
    tokio::time::timeout(wait, late.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &got, b"held-2",
        "a connection opened while stalled works too"
    );

    proxy.set(Mode::Refuse);
    let closed = tokio::time::timeout(wait, conn.read(&mut got))
        .await
        .unwrap();
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "current connections close"
    );
    let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
    let closed = tokio::time::timeout(wait, refused.read(&mut got))
        .await
        .unwrap();
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "new connections close at once"
    );

    proxy.set(Mode::Pass);
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    again.write_all(b"back!!").await.unwrap();
    tokio::time::timeout(wait, again.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"back!!");
}
