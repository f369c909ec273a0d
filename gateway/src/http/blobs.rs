//! `GET /blobs/<key>?expires=..&signature=..`: the target of presigned URLs
//! when snapshots are kept in a local directory (with S3 the URL points at S3
//! itself). The signature is the credential: no API key, like an S3 URL.

use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Response, handler};
use serde::Deserialize;

use crate::http::error::{ApiError, ErrorCode};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct Signed {
    expires: Option<u64>,
    signature: Option<String>,
}

fn refuse(code: ErrorCode, message: &str) -> Response {
    poem::Error::from(ApiError::<()>::new(code, message)).into_response()
}

#[handler]
pub async fn get_blob(
    Path(key): Path<String>,
    Query(q): Query<Signed>,
    Data(state): Data<&AppState>,
) -> Response {
    let Some(local) = &state.blobs.local else {
        return refuse(
            ErrorCode::NotFound,
            "snapshots are not served by the gateway (S3 URLs point at S3)",
        );
    };
    let (Some(expires), Some(signature)) = (q.expires, q.signature.as_deref()) else {
        return refuse(
            ErrorCode::Unauthorized,
            "a snapshot link needs its `expires` and `signature` parameters",
        );
    };
    if !local.verify(&key, expires, signature) {
        return refuse(
            ErrorCode::Forbidden,
            "this snapshot link is invalid or has expired",
        );
    }
    match state.blobs.store.get(&key).await {
        Ok(Some(bytes)) => Response::builder()
            .status(StatusCode::OK)
            .content_type("image/jpeg")
            .header("Cache-Control", "private, max-age=300")
            .body(bytes),
        Ok(None) => refuse(ErrorCode::NotFound, "this snapshot no longer exists"),
        Err(e) => poem::Error::from(ApiError::<()>::from(e)).into_response(),
    }
}
