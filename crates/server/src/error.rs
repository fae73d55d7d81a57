//! The one error type of the HTTP edge.
//!
//! Plug-N-Meet answers handler outcomes with HTTP 200 and puts the result in the envelope
//! (`status`, `msg`, `status_code`); only authentication failures (401), oversized bodies (413)
//! and download-token failures use HTTP status codes. Internal details are logged, never
//! returned.

use std::marker::PhantomData;

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

/// What an `/auth` handler returns: the reply, or a refusal that still writes every field of
/// the endpoint's body (empty), as protojson emits them. `?` on an [`ApiError`] refuses.
pub type AuthReply<T> = Result<Json<Reply<T>>, Refused<T>>;

/// A refused `/auth` call, answered in the shape of the endpoint's reply `T`.
#[derive(Debug)]
pub struct Refused<T>(pub ApiError, PhantomData<fn() -> T>);

impl<T> From<ApiError> for Refused<T> {
    fn from(e: ApiError) -> Self {
        Refused(e, PhantomData)
    }
}

impl<T> From<crate::store::StoreError> for Refused<T> {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl<T: Serialize + Default> IntoResponse for Refused<T> {
    fn into_response(self) -> Response {
        let e = self.0;
        (e.http, Json(Reply::<T>::fail(e.code, e.msg))).into_response()
    }
}

/// A successful `/auth` reply with the message `success`.
pub fn success<T: Default>(body: T) -> AuthReply<T> {
    Ok(Json(Reply::success(body)))
}
