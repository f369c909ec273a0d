//! `JpegBody`: a frame pushed by an edge device (`image/jpeg`), read with
//! the edge frame limit (`edge.max_frame_bytes`), even without a
//! Content-Length. Like `JsonBody`, extraction only reads the bytes; the
//! handler checks credentials and scope first and [`JpegBody::check`]s after.

use poem::{Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};

use super::error::{ApiError, ErrorCode};

/// Largest frame, in bytes (set from `edge.max_frame_bytes`).
#[derive(Clone, Copy)]
pub struct FrameLimit(pub usize);

pub struct JpegBody {
    bytes: bytes::Bytes,
    /// Whether the request said `Content-Type: image/jpeg`.
    is_jpeg_type: bool,
}

fn is_jpeg(content_type: &str) -> bool {
    content_type
        .parse::<mime::Mime>()
        .is_ok_and(|m| m.type_() == "image" && m.subtype() == "jpeg")
}

impl JpegBody {
    /// The bytes, if the request is `image/jpeg` (415 otherwise) and they look
    /// like a JPEG (SOI marker, then a marker; 400 otherwise). A frame that
    /// passes but does not decode fails in the detector and is dead-lettered
    /// with its error.
    pub fn check<S>(self) -> Result<bytes::Bytes, ApiError<S>> {
        if !self.is_jpeg_type {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "frames must be sent with `Content-Type: image/jpeg`",
            ));
        }
        if self.bytes.len() < 4 || self.bytes[..3] != [0xFF, 0xD8, 0xFF] {
            return Err(ApiError::validation(
                "body",
                "must be a JPEG image (it does not start with a JPEG SOI marker)",
            ));
        }
        Ok(self.bytes)
    }
}

impl Payload for JpegBody {
    const CONTENT_TYPE: &'static str = "image/jpeg";

    /// Any media type is read; [`JpegBody::check`] refuses the wrong one
    /// after the credentials and scope checks, so the order of refusals is
    /// the same as for JSON endpoints.
    fn check_content_type(_content_type: &str) -> bool {
        true
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            format: Some("binary"),
            ..MetaSchema::new("string")
        }))
    }
}

impl ParsePayload for JpegBody {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let limit = request
            .data::<FrameLimit>()
            .copied()
            .unwrap_or(FrameLimit(4 * 1024 * 1024))
            .0;
        let bytes = body
            .take()?
            .into_bytes_limit(limit)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => ApiError::<()>::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the frame is larger than {limit} bytes (edge.max_frame_bytes)"),
                ),
                other => ApiError::new(
                    ErrorCode::ValidationError,
                    format!("could not read the frame: {other}"),
                ),
            })
            .map_err(poem::Error::from)?;
        Ok(Self {
            bytes,
            is_jpeg_type: request.content_type().is_some_and(is_jpeg),
        })
    }
}

poem_openapi::impl_apirequest_for_payload!(JpegBody,);
