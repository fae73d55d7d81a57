//! The one error type of the HTTP edge.
//!
//! Plug-N-Meet answers handler outcomes with HTTP 200 and puts the result in the envelope
//! (`status`, `msg`, `status_code`); only authentication failures (401), oversized bodies (413)
//! and download-token failures use HTTP status codes. Internal details are logged, never
//! returned.

use axum::http::StatusCode as Http;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use enclave_proto::reply::Reply;
use enclave_proto::{CommonResponse, StatusCode};

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub http: Http,
    pub code: StatusCode,
    pub msg: String,
}

impl ApiError {
    /// A handler-level failure: HTTP 200 with `status:false`.
    pub fn new(code: StatusCode, msg: impl Into<String>) -> Self {
        Self {
            http: Http::OK,
            code,
            msg: msg.into(),
        }
    }

    /// `INVALID_PARAMETERS`.
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::InvalidParameters, msg.to_string())
    }

    /// `INTERNAL_SERVER_ERROR`, logging the detail and returning none of it.
    pub fn internal(what: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "{what}");
        Self::new(StatusCode::InternalServerError, what)
    }

    /// With another HTTP status.
    pub fn with_http(mut self, http: Http) -> Self {
        self.http = http;
        self
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal("database error", e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.http, Json(CommonResponse::fail(self.code, self.msg))).into_response()
    }
}

/// Writes a handler's result: the reply on success, or the envelope with an empty body of the
/// endpoint's shape on failure (every field present, as protojson emits them).
pub fn respond<T: Serialize + Default>(r: Result<Reply<T>, ApiError>) -> Response {
    match r {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => (e.http, Json(Reply::<T>::fail(e.code, e.msg))).into_response(),
    }
}
