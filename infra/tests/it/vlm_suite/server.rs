//! A chat-completions server on loopback for the VLM tests: plain HTTP/1.1
//! (or TLS with a throwaway CA), answering each request from a script and
//! handing every request it got, with its arrival time, to the test.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, extra headers, body.
    Raw(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Read the request, never answer (until the client hangs up).
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self::Raw(status, vec![], body.to_string().into_bytes())
    }

    /// A 200 chat completion whose message content is `content`.
    pub fn content(content: &str) -> Self {
        Self::json(200, completion(json!(content), Value::Null, "stop"))
    }

    pub fn with_header(self, name: &'static str, value: &str) -> Self {
        match self {
            Self::Raw(status, mut headers, body) => {
                headers.push((name, value.to_owned()));
                Self::Raw(status, headers, body)
            }
            Self::Hang => Self::Hang,
        }
    }
}

/// The usage every scripted completion reports.
pub const USAGE: (u64, u64, u64) = (1_200, 80, 1_280);
pub const SERVED_MODEL: &str = "gpt-4o-mini-2024-07-18";

/// A chat-completions response body.
pub fn completion(content: Value, refusal: Value, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": SERVED_MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal},
            "finish_reason": finish_reason
        }],
        "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1, "total_tokens": USAGE.2}
    })
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

pub struct ChatServer {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Received>,
}

impl ChatServer {
    /// Plain HTTP; once the script runs out it answers 500.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::serve(script, None).await
    }

    /// HTTPS with a certificate for `127.0.0.1` signed by a new CA; returns
    /// the server and the CA certificate (PEM) that trusts it.
    pub async fn start_tls(script: Vec<Reply>) -> (Self, String) {
        let crate::test_ca::TestCa { ca_pem, leaf, key } = crate::test_ca::issue(&["127.0.0.1"]);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Self::serve(script, Some(acceptor)).await, ca_pem)
    }

    async fn serve(script: Vec<Reply>, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, requests) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (tx, script, tls) = (tx.clone(), script.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                connection(stream, tx, script).await;
                            }
                        }
                        None => connection(tcp, tx, script).await,
                    }
                });
            }
        });
        Self { addr, requests }
    }

    /// The `vlm.base_url` that reaches this server.
    pub fn base_url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/v1", self.addr)
    }

    /// The next request, or a panic naming `what` after `within`.
    pub async fn next(&mut self, within: Duration, what: &str) -> Received {
        tokio::time::timeout(within, self.requests.recv())
            .await
            .unwrap_or_else(|_| panic!("no request within {within:?}: {what}"))
            .expect("the server stopped")
    }

    /// The requests received so far and not yet taken.
    pub fn drain(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.requests.try_recv().ok()).collect()
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    tx: mpsc::UnboundedSender<Received>,
    script: Arc<Mutex<VecDeque<Reply>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let _ = tx.send(Received {
            at: Instant::now(),
            path,
            headers,
            body,
        });
        // std Mutex: never held across an await.
        let reply =
            script.lock().unwrap().pop_front().unwrap_or_else(|| {
                Reply::json(500, json!({"error": {"message": "script ran out"}}))
            });
        match reply {
            Reply::Hang => {
                // Wait for the client to give up and hang up.
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
            Reply::Raw(status, extra, body) => {
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (k, v) in extra {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                bytes.extend_from_slice(&body);
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
                let _ = stream.flush().await;
            }
        }
    }
}
