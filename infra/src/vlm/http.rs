//! One POST to the provider: a fresh HTTP/1.1 connection (TLS with rustls
//! for `https://`, over the same [`Tls`] plumbing as webhooks and cameras),
//! the JSON body, and at most [`RESPONSE_LIMIT`] bytes of the response read
//! back. A VLM call takes seconds, so a connection per attempt costs little
//! and leaves nothing to go stale between alerts. The caller bounds the
//! whole exchange with its per-attempt timeout.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use panoptes_shared::error::BoxError;

use crate::camera::Tls;

/// The most response bytes read; a chat completion with an 800-token answer
/// is a few KiB.
pub const RESPONSE_LIMIT: usize = 1024 * 1024;

/// Where requests go, worked out once from `vlm.base_url`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    https: bool,
    /// To connect to: a name or an IP address (no brackets).
    host: String,
    port: u16,
    /// The `Host` header.
    authority: String,
    /// `<base path>/chat/completions`.
    path: String,
}

impl Endpoint {
    /// `<base_url>/chat/completions`; `base_url` must be http(s) with a host.
    pub fn chat_completions(base_url: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(base_url).map_err(|_| "vlm.base_url is not a valid URL".to_owned())?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err("vlm.base_url must be http:// or https://".into()),
        };
        let host = url
            .host_str()
            .ok_or("vlm.base_url has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(if https { 443 } else { 80 });
        let authority = match (url.host(), url.port()) {
            (Some(url::Host::Ipv6(ip)), Some(p)) => format!("[{ip}]:{p}"),
            (Some(url::Host::Ipv6(ip)), None) => format!("[{ip}]"),
            (_, Some(p)) => format!("{host}:{p}"),
            (_, None) => host.clone(),
        };
        let path = format!("{}/chat/completions", url.path().trim_end_matches('/'));
        Ok(Self {
            https,
            host,
            port,
            authority,
            path,
        })
    }
}

/// What came back from one attempt.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    /// Up to [`RESPONSE_LIMIT`] bytes.
    pub body: Vec<u8>,
    /// The body was longer than [`RESPONSE_LIMIT`] (and cut there).
    pub truncated: bool,
}

/// Why an attempt got no response: words for the customer (no address, no
/// key) and the underlying error for the logs.
#[derive(Debug)]
pub struct TransportError {
    pub reason: &'static str,
    pub source: Option<BoxError>,
}

impl TransportError {
    fn new(reason: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            reason,
            source: Some(source.into()),
        }
    }
}

/// POST `body` to `endpoint` with `headers` (besides `Host`, `Content-Type`,
/// `Content-Length`), and read the response.
pub async fn post(
    endpoint: &Endpoint,
    tls: &Tls,
    headers: &[(header::HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<RawResponse, TransportError> {
    let tcp = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| TransportError::new("the connection was refused or failed", e))?;
    let (mut sender, driver) = crate::http1::open(tcp, &endpoint.host, endpoint.https, tls)
        .await
        .map_err(|e| TransportError {
            reason: e.reason,
            source: Some(e.source),
        })?;
    let result = async {
        let mut builder = hyper::Request::post(endpoint.path.as_str())
            .header(header::HOST, endpoint.authority.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| TransportError::new("the request could not be built", e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| TransportError::new("the connection closed before a response came", e))?;
        let status = response.status().as_u16();
        let (parts, mut incoming) = response.into_parts();
        let mut kept = Vec::new();
        let mut truncated = false;
        while let Some(frame) = incoming.frame().await {
            let frame =
                frame.map_err(|e| TransportError::new("the response broke off mid-body", e))?;
            if let Some(data) = frame.data_ref() {
                let room = RESPONSE_LIMIT - kept.len();
                if data.len() > room {
                    kept.extend_from_slice(&data[..room]);
                    truncated = true;
                    break;
                }
                kept.extend_from_slice(data);
            }
        }
        Ok(RawResponse {
            status,
            headers: parts.headers,
            body: kept,
            truncated,
        })
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_the_base_path_plus_chat_completions() {
        let e = Endpoint::chat_completions("https://api.openai.com/v1").unwrap();
        assert_eq!(
            (e.https, e.host.as_str(), e.port, e.authority.as_str()),
            (true, "api.openai.com", 443, "api.openai.com")
        );
        assert_eq!(e.path, "/v1/chat/completions");
        let e = Endpoint::chat_completions("http://[::1]:8000/").unwrap();
        assert_eq!(
            (
                e.host.as_str(),
                e.port,
                e.authority.as_str(),
                e.path.as_str()
            ),
            ("::1", 8000, "[::1]:8000", "/chat/completions")
        );
        assert!(Endpoint::chat_completions("ftp://x/v1").is_err());
    }
}
