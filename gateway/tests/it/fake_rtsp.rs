//! A fake camera for tests: a TCP server on 127.0.0.1 that answers every
//! request the same scripted way and records the request heads it received
//! (recorded before it answers, so they are all in once the client has
//! given up). Stopped on drop.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the fake camera answers.
#[derive(Clone, Copy)]
pub enum Reply {
    /// `401 Unauthorized` with this `WWW-Authenticate` value, every time.
    Challenge(&'static str),
    /// These bytes after the first request (not RTSP; e.g. what Redis says).
    Garbage(&'static [u8]),
}

pub struct FakeCamera {
    pub port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeCamera {
    pub async fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        let server = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, reply, recorded.clone()));
            }
        });
        Self {
            port,
            heads,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/live", self.port)
    }

    /// Every request head received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// The `Authorization` header values received, in order.
    pub fn authorizations(&self) -> Vec<String> {
        self.requests()
            .iter()
            .flat_map(|head| head.lines().map(str::to_owned).collect::<Vec<_>>())
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("authorization")
                    .then(|| value.trim().to_owned())
            })
            .collect()
    }
}

impl Drop for FakeCamera {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(mut conn: TcpStream, reply: Reply, heads: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let cseq = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("cseq"))
            .map_or("0".to_owned(), |(_, v)| v.trim().to_owned());
        heads.lock().unwrap().push(head);
        let answer = match reply {
            Reply::Challenge(challenge) => format!(
                "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: {challenge}\r\n\r\n"
            )
            .into_bytes(),
            Reply::Garbage(bytes) => bytes.to_vec(),
        };
        if conn.write_all(&answer).await.is_err() {
            return;
        }
    }
}
