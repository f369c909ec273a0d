//! `JsonBody<T>`: the request-body extractor of every endpoint. The schema
//! comes from `T`'s `Object` derive (so the OpenAPI document is exact), but
//! parsing goes through serde with `serde_path_to_error`, so a wrong type, an
//! unknown enum value or malformed JSON is a 400 that names the field
//! (`config.zones.queueZone.points[2]`), which poem-openapi's parser cannot do.
//!
//! Extraction only checks the media type and reads the bytes (with a hard
//! size limit, even without a Content-Length); the handler calls
//! [`JsonBody::parse`] after its scope check, so the order of refusals is
//! always: credentials (401), scope (403), then the body (400).

use poem::{Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};

/// Largest JSON body, in bytes (set from config by the application).
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

pub struct JsonBody<T> {
    bytes: bytes::Bytes,
    /// The published constraints (set on every served request).
    constraints: Option<std::sync::Arc<super::constraints::Constraints>>,
    _into: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Type> JsonBody<T> {
    /// Parse the body, naming the offending field on failure, then hold it
    /// to the constraints the OpenAPI document publishes for `T` (see
    /// [`super::constraints`]): the document's rules are the ones enforced.
    pub fn parse<S>(&self) -> Result<T, ApiError<S>> {
        let value = parse(&self.bytes).map_err(ApiError::cast)?;
        if let Some(constraints) = &self.constraints
            && let Ok(json) = serde_json::from_slice::<serde_json::Value>(&self.bytes)
        {
            constraints
                .check(&T::name(), &json)
                .map_err(|v| ApiError::validation(&v.field, v.reason))?;
        }
        Ok(value)
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        content_type.parse::<mime::Mime>().is_ok_and(|m| {
            m.type_() == "application"
                && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        })
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let limit = request
            .data::<BodyLimit>()
            .copied()
            .unwrap_or(BodyLimit(1024 * 1024))
            .0;
        let bytes = body
            .take()?
            .into_bytes_limit(limit)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => ApiError::<()>::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is larger than {limit} bytes"),
                ),
                other => ApiError::new(
                    ErrorCode::ValidationError,
                    format!("could not read the request body: {other}"),
                ),
            })
            .map_err(into_poem)?;
        Ok(Self {
            bytes,
            constraints: request
                .data::<std::sync::Arc<super::constraints::Constraints>>()
                .cloned(),
            _into: std::marker::PhantomData,
        })
    }
}

fn into_poem(e: ApiError<()>) -> poem::Error {
    poem::Error::from(e)
}

/// Parse JSON into `T`, naming the offending field on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError<()>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation("body", "a JSON object is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = clean_reason(&inner);
        let missing = reason
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'));
        if inner.is_syntax() || inner.is_eof() {
            ApiError::validation("body", format!("malformed JSON: {reason}"))
        } else if let Some(field) = missing {
            let field = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            ApiError::validation(&field, "is required")
        } else if path == "." {
            ApiError::validation("body", reason)
        } else {
            ApiError::validation(&path, reason)
        }
    })
}

/// serde's message without its " at line 1 column 17" suffix.
fn clean_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned);

/// A JSON body the client may leave out (no `Content-Type`, no bytes):
/// [`OptionalJsonBody::parse`] gives `None` then.
pub struct OptionalJsonBody<T>(Option<JsonBody<T>>);

impl<T: DeserializeOwned + Type> OptionalJsonBody<T> {
    pub fn parse<S>(&self) -> Result<Option<T>, ApiError<S>> {
        match &self.0 {
            Some(body) if !body.bytes.iter().all(u8::is_ascii_whitespace) => body.parse().map(Some),
            _ => Ok(None),
        }
    }
}

impl<'a, T: Type + DeserializeOwned> poem_openapi::ApiExtractor<'a> for OptionalJsonBody<T> {
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<poem_openapi::registry::MetaRequest> {
        Some(poem_openapi::registry::MetaRequest {
            description: None,
            content: vec![poem_openapi::registry::MetaMediaType {
                content_type: <JsonBody<T> as Payload>::CONTENT_TYPE,
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: poem_openapi::ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            None => Ok(Self(None)),
            Some(ct) if JsonBody::<T>::check_content_type(ct) => Ok(Self(Some(
                <JsonBody<T> as ParsePayload>::from_request(request, body).await?,
            ))),
            Some(ct) => Err(poem_openapi::error::ContentTypeError::NotSupported {
                content_type: ct.to_string(),
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(serde::Deserialize, Debug)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Inner {
        points: Vec<Vec<f64>>,
    }

    #[test]
    fn errors_name_the_nested_field() {
        let err = parse::<Outer>(br#"{"name":"a","inner":{"points":[[0.1,0.2],[0.3,"x"]]}}"#)
            .unwrap_err();
        assert_eq!(err.reply.details.unwrap()["field"], "inner.points[1][1]");
        let err = parse::<Outer>(br#"{"name":5}"#).unwrap_err();
        assert_eq!(err.reply.details.unwrap()["field"], "name");
        let err = parse::<Outer>(br#"{"name":"#).unwrap_err();
        assert!(
            err.reply.message.contains("malformed JSON"),
            "{}",
            err.reply.message
        );
        let err = parse::<Outer>(br#"{"name":"a"}"#).unwrap_err();
        assert_eq!(err.reply.details.unwrap()["field"], "inner");
    }
}
