//! Cross-origin requests from browser pages (CORS, Fetch standard §3.2) for
//! the origins in `server.cors_allowed_origins` (none by default).
//!
//! Credentials travel in the `Authorization` header or the stream ticket
//! (`?ticket=`), never in cookies, so responses never allow credentials: an
//! allowed page sends its bearer token itself, and no other page can ride
//! on a user's browser session. Preflights from allowed origins are answered
//! here (204, as the outermost layer) with the methods the path accepts and the request headers the
//! API reads (`Last-Event-ID` and `Stream-Token` included, so a page can
//! resume a stream with `fetch`); the response headers clients need
//! (`X-Request-Id`, `RateLimit*`, `Retry-After`, `Stream-Token`) are exposed.
//! Requests from other origins are served as if CORS did not exist (the
//! browser withholds the answer from the page); their preflights get 403.

use std::sync::Arc;

use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use super::allow::AllowTable;
use super::error::{ApiError, ErrorCode};

/// Request headers a page may send.
const ALLOW_HEADERS: &str =
    "authorization, content-type, last-event-id, stream-token, x-request-id, x-captured-at";
/// Response headers a page may read.
const EXPOSE_HEADERS: &str = "x-request-id, ratelimit, ratelimit-policy, retry-after, stream-token";

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    any: bool,
    origins: Vec<String>,
    max_age_seconds: u64,
}

impl CorsPolicy {
    /// From `server.cors_allowed_origins`: `*`, or origins such as
    /// `https://app.example.com` / `http://127.0.0.1:3000`.
    pub fn new(origins: &[String], max_age_seconds: u64) -> Result<Self, String> {
        let mut policy = Self {
            any: false,
            origins: Vec::new(),
            max_age_seconds,
        };
        for raw in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            if raw == "*" {
                policy.any = true;
                continue;
            }
            policy.origins.push(normalise(raw).ok_or_else(|| {
                format!(
                    "server.cors_allowed_origins: {raw:?} is not an origin \
                     (scheme://host[:port], no path), or *"
                )
            })?);
        }
        Ok(policy)
    }

    pub fn is_enabled(&self) -> bool {
        self.any || !self.origins.is_empty()
    }

    fn allows(&self, origin: &str) -> bool {
        self.any || normalise(origin).is_some_and(|o| self.origins.contains(&o))
    }
}

/// `scheme://host[:port]`, lower case, default port dropped; `None` if `raw`
/// is not an origin.
fn normalise(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    let plain = matches!(url.path(), "" | "/") && url.query().is_none() && url.fragment().is_none();
    if !plain || !url.username().is_empty() || !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

pub struct Cors {
    pub policy: Arc<CorsPolicy>,
    pub allow: Arc<AllowTable>,
}

impl<E: Endpoint> Middleware<E> for Cors {
    type Output = CorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CorsEndpoint {
            inner,
            policy: self.policy.clone(),
            allow: self.allow.clone(),
        }
    }
}

pub struct CorsEndpoint<E> {
    inner: E,
    policy: Arc<CorsPolicy>,
    allow: Arc<AllowTable>,
}

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let Some(origin) = origin.filter(|_| self.policy.is_enabled()) else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let allowed = self.policy.allows(&origin);
        if preflight {
            if !allowed {
                let refusal = ApiError::<()>::new(
                    ErrorCode::Forbidden,
                    "this origin may not call the API from a browser (server.cors_allowed_origins)",
                );
                return Ok(poem::Error::from(refusal).into_response());
            }
            let methods = self
                .allow
                .allowed(req.uri().path())
                .unwrap_or_else(|| "GET, POST, PATCH, DELETE".to_owned());
            let mut resp = Response::builder().status(StatusCode::NO_CONTENT).finish();
            let headers = resp.headers_mut();
            allow_origin(headers, &origin);
            insert(headers, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
            insert(headers, header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
            insert(
                headers,
                header::ACCESS_CONTROL_MAX_AGE,
                &self.policy.max_age_seconds.to_string(),
            );
            return Ok(resp);
        }
        // Outermost layer: what comes back is already the final response
        // (errors included, as envelopes), and the page may read it all.
        let mut resp = self.inner.call(req).await?.into_response();
        if allowed {
            allow_origin(resp.headers_mut(), &origin);
            insert(
                resp.headers_mut(),
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                EXPOSE_HEADERS,
            );
        } else {
            resp.headers_mut()
                .append(header::VARY, HeaderValue::from_static("origin"));
        }
        Ok(resp)
    }
}

fn allow_origin(headers: &mut HeaderMap, origin: &str) {
    insert(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_normalised() {
        let p = CorsPolicy::new(
            &[
                "https://App.Example.com:443".into(),
                "http://127.0.0.1:3000".into(),
            ],
            600,
        )
        .unwrap();
        assert!(p.allows("https://app.example.com"));
        assert!(p.allows("http://127.0.0.1:3000"));
        assert!(!p.allows("http://127.0.0.1:3001"));
        assert!(!p.allows("https://app.example.com.evil.test"));
        assert!(!p.allows("null"));
        assert!(
            CorsPolicy::new(&["*".into()], 1)
                .unwrap()
                .allows("https://any.test")
        );
        assert!(!CorsPolicy::default().is_enabled());
    }

    #[test]
    fn paths_and_other_schemes_are_not_origins() {
        for bad in [
            "https://app.example.com/path",
            "ftp://x.test",
            "app.example.com",
            "https://u:p@x.test",
        ] {
            assert!(CorsPolicy::new(&[bad.into()], 1).is_err(), "{bad}");
        }
    }
}
