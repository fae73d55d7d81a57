//! Who calls the browser API, and how it is answered.
//!
//! A handler names what it needs in its arguments: [`Caller`] (a valid join token for a live
//! session of its room, with the caller's invitation) or [`Admin`] (the same, an admin of the
//! room). A request without one is refused with the one error type before its body is read.
//! Replies are [`NoStore`]: never kept by a cache (one of them carries the session's secret).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode as Http};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use enclave_proto::browser::Answer;
use enclave_proto::ids::UserId;
use enclave_proto::user::JoinClaims;
use enclave_proto::StatusCode;

use crate::app::App;
use crate::auth::TokenError;
use crate::error::ApiError;
use crate::rooms::core::{Invitation, Standing};
use crate::rooms::{RoomGone, RoomHandle};

/// A caller with a valid join token for a live session of its room.
pub(crate) struct Caller {
    pub(crate) claims: JoinClaims,
    pub(crate) user: UserId,
    pub(crate) room: RoomHandle,
    /// Their invitation in this session, as the room gave it with their standing.
    pub(crate) invitation: Invitation,
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        caller(app, &parts.headers).await
    }
}

/// A [`Caller`] who is an admin of the room.
pub(crate) struct Admin(pub(crate) Caller);

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let c = caller(app, &parts.headers).await?;
        if c.claims.is_admin {
            Ok(Admin(c))
        } else {
            Err(forbidden("only admin can perform this task"))
        }
    }
}

/// A refusal of what the caller may not do (HTTP 403, `PERMISSION_DENIED`).
pub(crate) fn forbidden(msg: &str) -> ApiError {
    ApiError::new(StatusCode::PermissionDenied, msg).with_http(Http::FORBIDDEN)
}

/// A JSON reply that no cache keeps.
pub(crate) struct NoStore<T>(pub(crate) T);

impl<T: Serialize> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        ([(header::CACHE_CONTROL, "no-store")], Json(self.0)).into_response()
    }
}

/// What a browser API handler returns.
pub(crate) type Answered<T> = Result<NoStore<Answer<T>>, ApiError>;

/// `status: true`, `msg: success` and `body`'s fields.
pub(crate) fn success<T>(body: T) -> Answered<T> {
    Ok(NoStore(Answer::success(body)))
}

/// `status: true`, `msg` and `body`'s fields.
pub(crate) fn answer<T>(msg: impl Into<String>, body: T) -> Answered<T> {
    Ok(NoStore(Answer::ok(msg, body)))
}

/// The room ended while the request was handled (its owner task is gone).
impl From<RoomGone> for ApiError {
    fn from(_: RoomGone) -> Self {
        room_gone()
    }
}

pub(crate) fn room_gone() -> ApiError {
    ApiError::new(StatusCode::RoomNotFound, "notifications.room-not-active")
        .with_http(Http::UNAUTHORIZED)
}

pub(crate) fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(StatusCode::InvalidTokenOrSignature, msg).with_http(Http::UNAUTHORIZED)
}

pub(crate) fn no_invitation() -> ApiError {
    ApiError::new(
        StatusCode::UserNotFound,
        "notifications.user-info-not-found",
    )
    .with_http(Http::UNAUTHORIZED)
}

/// The raw join token of a request: `Authorization: <token>` as Plug-N-Meet's client sends it,
/// or `Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::MissingRequiredParameter,
                "notifications.auth-header-missing",
            )
            .with_http(Http::UNAUTHORIZED)
        })
}

async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let claims = app
        .keys
        .verify_join(&app.config.api_key, bearer(headers)?, None)
        .map_err(|e| match e {
            TokenError::Expired => unauthorized("notifications.token-expired"),
            _ => unauthorized("notifications.invalid-token"),
        })?;
    let user =
        UserId::parse(&claims.sub).map_err(|_| unauthorized("notifications.invalid-token"))?;
    let room = app.rooms.get_str(&claims.room_id).ok_or_else(room_gone)?;
    // A token is good for the session it was issued in: one from an earlier session of the
    // same room id finds no invitation in this one, nor does one whose holder an admin
    // removed.
    let m = room.membership(user.clone()).await?;
    match m.standing {
        Standing::Blocked => Err(ApiError::new(
            StatusCode::UserBlocked,
            "notifications.you-are-blocked",
        )
        .with_http(Http::FORBIDDEN)),
        Standing::Removed => Err(ApiError::new(
            StatusCode::UserNotFound,
            "notifications.you-are-removed",
        )
        .with_http(Http::UNAUTHORIZED)),
        Standing::Welcome => Ok(Caller {
            invitation: m.invitation.ok_or_else(no_invitation)?,
            claims,
            user,
            room,
        }),
    }
}
