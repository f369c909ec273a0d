//! The webhook sender: one HTTP/1.1 POST per attempt over a connection the
//! outbound guard opened (the host resolved once, every address vetted, the
//! socket made to a vetted address: no DNS rebinding), TLS with rustls for
//! `https://`. Redirects are never followed (hyper's connection API has no
//! such thing: a 3xx is just a status). The whole exchange, body included,
//! is bounded by the request's timeout; only the first bytes of the body
//! are read.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use panoptes_shared::outbound::{OutboundError, OutboundGuard};
use panoptes_shared::ports::webhooks::{OutboundRequest, OutboundResponse, WebhookSender};

use crate::camera::Tls;

pub struct HttpWebhookSender {
    guard: Arc<OutboundGuard>,
    tls: Tls,
    /// Response body bytes kept.
    body_limit: usize,
    user_agent: String,
}

impl HttpWebhookSender {
    pub fn new(guard: Arc<OutboundGuard>, tls: Tls, body_limit: usize) -> Self {
        Self {
            guard,
            tls,
            body_limit,
            user_agent: format!("Panoptes-Webhooks/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    async fn exchange(&self, req: &OutboundRequest) -> Result<OutboundResponse, String> {
        let url = url::Url::parse(&req.url).map_err(|_| "the URL is not valid".to_owned())?;
        let host = url.host_str().ok_or("the URL has no host")?.to_owned();
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err("only http(s) URLs are delivered to".into()),
        };
        let port = url.port().unwrap_or(if https { 443 } else { 80 });
        let tcp = self
            .guard
            .connect(&host, port)
            .await
            .map_err(|e| refusal(&e))?;
        let (mut sender, driver) = crate::http1::open(tcp, &host, https, &self.tls)
            .await
            .map_err(|e| {
                tracing::debug!(error = %e.source, "webhook connection not opened");
                e.reason.to_owned()
            })?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", host),
            None => host.clone(),
        };
        let mut builder = hyper::Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, &self.user_agent)
            .header(hyper::header::CONTENT_LENGTH, req.body.len());
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(Full::new(Bytes::copy_from_slice(&req.body)))
            .map_err(|_| "the request could not be built".to_owned())?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|_| "the receiver closed the connection without a response".to_owned())?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = response.into_body();
            let mut kept = Vec::new();
            while kept.len() < self.body_limit {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            let room = self.body_limit - kept.len();
                            kept.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                    // A body cut short still leaves a status to go by.
                    Some(Err(_)) | None => break,
                }
            }
            Ok(OutboundResponse::Response {
                status,
                retry_after,
                body: kept,
            })
        }
        .await;
        driver.abort();
        result
    }
}

/// Why the guard refused or could not connect, in words for the customer.
fn refusal(e: &OutboundError) -> String {
    match e {
        OutboundError::Blocked(why) => format!(
            "refused: the host resolves to a {why} address; webhooks are delivered to public addresses only"
        ),
        OutboundError::InvalidHost => "the host is not a valid name or address".into(),
        OutboundError::Unresolvable(_) => "the host name could not be resolved".into(),
        OutboundError::Connect(_) => "the connection was refused or failed".into(),
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, req: &OutboundRequest) -> OutboundResponse {
        match tokio::time::timeout(req.timeout, self.exchange(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(why)) => OutboundResponse::Failed(why),
            Err(_) => OutboundResponse::Failed(format!(
                "no response within {} ms",
                req.timeout.as_millis()
            )),
        }
    }
}

/// How long a sender waits at most, whatever the endpoint asks (30 s, the
/// API's `timeoutMs` ceiling).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
