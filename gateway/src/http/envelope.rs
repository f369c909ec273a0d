//! The success envelope: `{success, statusCode, message, data, meta}`; lists
//! add `meta.pagination {page, limit, total, totalPages}`.

use panoptes_shared::domain::page::Page;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ParseFromJSON, ToJSON, Type};
use poem_openapi::{ApiResponse, Object};

use super::context;

#[derive(Debug, Clone, Object)]
pub struct Pagination {
    pub page: u32,
    pub limit: u32,
    pub total: u64,
    #[oai(rename = "totalPages")]
    pub total_pages: u64,
}

#[derive(Debug, Clone, Object)]
pub struct Meta {
    /// When the response was produced (RFC 3339, UTC).
    pub timestamp: String,
    /// The request's `X-Request-Id` (generated when not sent).
    #[oai(rename = "requestId")]
    pub request_id: String,
    #[oai(skip_serializing_if_is_none)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Clone, Object)]
pub struct Envelope<T: ParseFromJSON + ToJSON> {
    pub success: bool,
    #[oai(rename = "statusCode")]
    pub status_code: u16,
    pub message: String,
    pub data: T,
    pub meta: Meta,
}

/// A successful response with status `STATUS` (200 or 201).
pub struct Reply<T: ParseFromJSON + ToJSON, const STATUS: u16 = 200>(pub Envelope<T>);

/// 201 Created.
pub type Created<T> = Reply<T, 201>;

/// 202 Accepted: queued for processing.
pub type Accepted<T> = Reply<T, 202>;

impl<T: ParseFromJSON + ToJSON, const STATUS: u16> Reply<T, STATUS> {
    pub fn new(message: &str, data: T) -> Self {
        Self(Envelope {
            success: true,
            status_code: STATUS,
            message: message.to_owned(),
            data,
            meta: context::meta(),
        })
    }
}

impl<T: ParseFromJSON + ToJSON> Reply<Vec<T>, 200> {
    pub fn page(message: &str, page: Page<T>) -> Self {
        let total_pages = page.total_pages();
        let mut reply = Self::new(message, page.items);
        reply.0.meta.pagination = Some(Pagination {
            page: page.request.page,
            limit: page.request.limit,
            total: page.total,
            total_pages,
        });
        reply
    }
}

impl<T: ParseFromJSON + ToJSON, const STATUS: u16> IntoResponse for Reply<T, STATUS> {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(STATUS).unwrap_or(StatusCode::OK);
        poem::web::Json(self.0.to_json())
            .with_status(status)
            .into_response()
    }
}

impl<T: ParseFromJSON + ToJSON, const STATUS: u16> ApiResponse for Reply<T, STATUS> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: match STATUS {
                    201 => "Created",
                    202 => "Accepted",
                    _ => "OK",
                },
                status: Some(STATUS),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: Envelope::<T>::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        Envelope::<T>::register(registry);
    }
}

/// `data` of responses that carry nothing (deletes, logout).
#[derive(Debug, Clone, Object)]
pub struct Empty {}
