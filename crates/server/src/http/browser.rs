//! The browser API (`/api/*`, JSON): what the web client needs to join a meeting, renew its
//! token, and act as an admin. Authenticated by the join token in `Authorization` (raw, as
//! Plug-N-Meet's client sends it, or `Bearer <token>`).
//!
//! The server-generated E2EE secret leaves the server in exactly one place: the
//! `verifyToken` reply to an authenticated participant of that live session, marked
//! `Cache-Control: no-store`. Nothing logs it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode as Http};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use enclave_proto::ids::UserId;
use enclave_proto::json;
use enclave_proto::user::JoinClaims;
use enclave_proto::StatusCode;

use crate::app::App;
use crate::auth::livekit::{AccessClaims, VideoGrant};
use crate::auth::{TokenError, TokenKind};
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::recording::{rtmp_target, Job, RecorderError};
use crate::rooms::core::{EndReason, Invitation, Standing, Who};
use crate::rooms::{FeatureRefused, RoomHandle, ServerMediaFeature};

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/verifyToken", post(verify_token))
        .route("/api/renewToken", post(renew_token))
        .route("/api/endRoom", post(end_room))
        .route("/api/removeParticipant", post(remove_participant))
        .route("/api/muteTrack", post(mute_track))
        .route("/api/recording", post(recording))
        .route("/api/rtmp", post(rtmp))
        .route("/api/waitingRoom/list", post(waiting_list))
        .route("/api/waitingRoom/approveUsers", post(approve_users))
        .route("/api/waitingRoom/updateMsg", post(update_waiting_msg))
        .route("/api/updateLockSettings", post(update_lock_settings))
        .route("/api/e2eeKey", post(e2ee_key))
        .route("/api/raiseHand", post(raise_hand))
        .route("/api/switchPresenter", post(switch_presenter))
}

/// A caller with a valid join token for a live session of its room.
pub(super) struct Caller {
    pub(super) claims: JoinClaims,
    pub(super) user: UserId,
    pub(super) room: RoomHandle,
    /// Their invitation in this session, as `caller` found it.
    pub(super) invitation: Invitation,
}

/// Handlers take a [`Caller`] as an argument; a request without one is refused with the one
/// error type, before the body is read.
impl axum::extract::FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Arc<App>,
    ) -> Result<Self, ApiError> {
        caller(app, &parts.headers).await
    }
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(StatusCode::InvalidTokenOrSignature, msg).with_http(Http::UNAUTHORIZED)
}

async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let raw = headers
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
        })?;
    let claims = app
        .keys
        .verify_join(&app.config.api_key, raw, None)
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
    match room.standing(user.clone()).await {
        Ok(Standing::Blocked) => {
            return Err(
                ApiError::new(StatusCode::UserBlocked, "notifications.you-are-blocked")
                    .with_http(Http::FORBIDDEN),
            )
        }
        Ok(Standing::Removed) => {
            return Err(
                ApiError::new(StatusCode::UserNotFound, "notifications.you-are-removed")
                    .with_http(Http::UNAUTHORIZED),
            )
        }
        _ => {}
    }
    let Ok(Some(invitation)) = room.invitation(user.clone()).await else {
        return Err(no_invitation());
    };
    Ok(Caller {
        claims,
        user,
        room,
        invitation,
    })
}

fn no_invitation() -> ApiError {
    ApiError::new(
        StatusCode::UserNotFound,
        "notifications.user-info-not-found",
    )
    .with_http(Http::UNAUTHORIZED)
}

pub(super) fn admin(c: &Caller) -> Result<(), ApiError> {
    if c.claims.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::PermissionDenied,
            "only admin can perform this task",
        )
        .with_http(Http::FORBIDDEN))
    }
}

pub(super) fn reply(v: serde_json::Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(v)).into_response()
}

fn result(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn verify_token(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    result(async {
        let c = caller(&app, &headers).await?;
        let mut inv = c.invitation.clone();
        let info = &c.room.info;
        let features = info.metadata.room_features.clone().unwrap_or_default();
        if inv.metadata.wait_for_approval {
            // The waiting room: nothing that lets them in (no media token, no secret, not even
            // the session id) until an admin approves. Each call is a knock that keeps them on
            // the admins' list; the page calls again every few seconds.
            match c.room.knock(c.user.clone()).await {
                Ok(Some(msg)) => {
                    let msg = msg.unwrap_or_else(|| {
                        features.waiting_room_features.as_ref().map(|w| w.waiting_room_msg.clone()).unwrap_or_default()
                    });
                    tracing::info!(room_id = %info.room_id, user_id = %c.user, "waiting for an admin's approval");
                    return Ok(reply(json!({
                        "status": true,
                        "msg": "notifications.waiting-for-approval",
                        "waiting": true,
                        "waiting_room_msg": msg,
                        "room": { "room_id": info.room_id.to_string(), "title": info.title },
                        "user": {
                            "user_id": c.user.to_string(),
                            "name": c.claims.name,
                            "is_admin": false,
                            "is_hidden": c.claims.is_hidden,
                        },
                        "expires_at": c.claims.exp,
                    })));
                }
                Ok(None) => {
                    // Approved between the two asks (or rejected: then caller() says so next time).
                    inv = c.room.invitation(c.user.clone()).await.ok().flatten().ok_or_else(no_invitation)?;
                    if inv.metadata.wait_for_approval {
                        return Err(no_invitation());
                    }
                }
                Err(_) => return Err(room_gone()),
            }
        }
        let e2ee = features.end_to_end_encryption_features.clone().unwrap_or_default();
        let mode = match (e2ee.is_enabled, e2ee.enabled_self_insert_encryption_key) {
            (false, _) => "off",
            (true, false) => "server_key",
            (true, true) => "self_insert",
        };
        let now = unix_now() as u64;
        let lk = &app.config.livekit;
        let permission = c.room.publish_permission(Some(&inv), c.claims.is_hidden);
        let media_token = app.keys.sign(
            TokenKind::LivekitAccess,
            &AccessClaims {
                iss: lk.api_key.clone(),
                sub: c.user.to_string(),
                nbf: now.saturating_sub(5),
                exp: now + app.config.token_validity.as_secs(),
                name: c.claims.name.clone(),
                metadata: inv.metadata_json(),
                video: VideoGrant {
                    room_join: true,
                    room: info.room_id.to_string(),
                    can_publish: Some(permission.can_publish),
                    can_subscribe: Some(true),
                    can_publish_data: Some(permission.can_publish_data),
                    can_publish_sources: Some(crate::rooms::locks::source_names(&permission.can_publish_sources)),
                    hidden: info.effective_hidden(c.claims.is_hidden),
                    can_update_own_metadata: None,
                },
                session: Some(info.sid.to_string()),
            },
        );
        let mut e2ee_json = json!({
            "enabled": e2ee.is_enabled,
            "mode": mode,
            "included_chat_messages": e2ee.included_chat_messages,
            "included_whiteboard": e2ee.included_whiteboard,
        });
        // A server-generated-key room draws a new key epoch for whoever comes in: nothing sent
        // before now can be read with it (everyone in the room moves to it too).
        if info.server_key {
            let a = c.room.admit(c.user.clone()).await.map_err(|_| room_gone())?.ok_or_else(no_invitation)?;
            e2ee_json["secret"] = json!(a.epoch.secret.expose());
            e2ee_json["generation"] = json!(a.epoch.generation);
            // Seals the chat history this browser keeps; the same at every admission, so a
            // reload (a new epoch) still opens what it kept.
            e2ee_json["history_secret"] = json!(a.history.expose());
            // Seals what late joiners must read too (poll texts): the session's, not an epoch's.
            e2ee_json["content_secret"] = json!(a.content.expose());
        }
        tracing::info!(room_id = %info.room_id, user_id = %c.user, e2ee = mode, "browser session verified");
        let rec = app.recorders.state(info.room_id.as_str());
        Ok(reply(json!({
            "status": true,
            "msg": "token is valid",
            "room": {
                "room_id": info.room_id.to_string(),
                "title": info.title,
                "sid": info.sid.to_string(),
                "welcome_message": info.metadata.welcome_message.clone().unwrap_or_default(),
                "is_breakout_room": info.metadata.is_breakout_room,
                "parent_room_id": info.metadata.parent_room_id,
                // When `room_duration` ends the session (Unix seconds; 0: no limit).
                "ends_at": info.metadata.room_features.as_ref().and_then(|f| f.room_duration).filter(|m| *m > 0).map_or(0, |m| info.created + (m as i64) * 60),
                "logout_url": info.metadata.logout_url.clone().unwrap_or_default(),
                "features": features,
                "default_lock_settings": info.metadata.default_lock_settings,
            },
            "user": {
                "user_id": c.user.to_string(),
                "name": c.claims.name,
                "is_admin": c.claims.is_admin,
                "is_hidden": info.effective_hidden(c.claims.is_hidden),
                "lock_chat": crate::rooms::locks::chat_locked(c.claims.is_admin, inv.metadata.lock_settings.as_ref()),
                "lock_private_chat": crate::rooms::locks::private_chat_locked(c.claims.is_admin, inv.metadata.lock_settings.as_ref()),
                // Asked to be hidden in an encrypted room: shown to everyone as an observer.
                "is_observer": c.claims.is_hidden,
            },
            "media": { "url": lk.host, "token": media_token },
            "e2ee": e2ee_json,
            "is_recording": rec.is_recording,
            "is_active_rtmp": rec.is_active_rtmp,
            "expires_at": c.claims.exp,
        })))
    }
    .await)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PresenterReq {
    /// `PROMOTE` or `DEMOTE` (Plug-N-Meet's `SwitchPresenterTask`).
    pub(crate) task: String,
    pub(crate) user_id: String,
}

/// An admin makes a participant the presenter (the previous one stops being it), or takes it
/// from them (the admin becomes the presenter). The presenter is `is_presenter` in the
/// participant's metadata, which the media server sends to everyone.
async fn switch_presenter(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c)?;
            let req: PresenterReq = json::decode(&body).map_err(ApiError::invalid)?;
            let promote = match req.task.as_str() {
                "PROMOTE" => true,
                "DEMOTE" => false,
                other => return Err(ApiError::invalid(format!("task: {other:?} is not PROMOTE or DEMOTE"))),
            };
            let target = UserId::parse(&req.user_id).map_err(|e| ApiError::invalid(format!("user_id: {e}")))?;
            if c.room.invitation(target.clone()).await.map_err(|_| room_gone())?.is_none() {
                return Err(ApiError::new(StatusCode::NotFound, "user not found in this session").with_http(Http::NOT_FOUND));
            }
            let changed = c.room.switch_presenter(target, promote, c.user.clone()).await.map_err(|_| room_gone())?;
            publish_metadata(&app, &c.room, &changed);
            tracing::info!(room_id = %c.room.info.room_id, by = %c.user, user_id = req.user_id, promote, "presenter switched");
            Ok(reply(json!({ "status": true, "msg": "success", "changed": changed.len() })))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct HandReq {
    /// Raise (true) or lower (false).
    pub(crate) raise: bool,
    /// Whose hand: empty for the caller's own; another user id or `all` (admins lowering).
    pub(crate) user_id: String,
}

/// Raises or lowers a hand. Anyone raises and lowers their own (unless the room turned raising
/// hands off); admins lower anyone's, or everyone's (`all`). The hand is in the participant's
/// metadata (`raised_hand`, Plug-N-Meet's shape, `raised_at` ordering the queue), which the
/// media server sends to everyone.
async fn raise_hand(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            let req: HandReq = json::decode(&body).map_err(ApiError::invalid)?;
            let own = req.user_id.is_empty() || req.user_id == c.user.as_str();
            let target = if own { Who::One(c.user.clone()) } else { who(&req.user_id)? };
            if !own && (req.raise || !c.claims.is_admin) {
                return Err(ApiError::new(StatusCode::PermissionDenied, "only an admin can lower another participant's hand, and nobody can raise it")
                    .with_http(Http::FORBIDDEN));
            }
            let allowed = c.room.info.metadata.room_features.as_ref().and_then(|f| f.allow_raise_hand).unwrap_or(true);
            if req.raise && !allowed {
                return Err(ApiError::new(StatusCode::PermissionDenied, "raising hands is turned off in this room").with_http(Http::FORBIDDEN));
            }
            let now_ms = crate::clock::unix_ms();
            let changed = c.room.set_hand(target, req.raise, now_ms).await.map_err(|_| room_gone())?;
            publish_metadata(&app, &c.room, &changed);
            tracing::info!(room_id = %c.room.info.room_id, by = %c.user, user_id = req.user_id, raise = req.raise, changed = changed.len(), "hand raised or lowered");
            Ok(reply(json!({ "status": true, "msg": "success", "changed": changed.len() })))
        }
        .await,
    )
}

/// The current key epoch of a server-generated-key room, for a participant who is in it (one
/// whose connection missed a delivery on the media server's data channel, e.g. while it
/// reconnected). Anyone else is refused: the key goes to the members in the room.
async fn e2ee_key(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            if !c.room.info.server_key {
                return Err(ApiError::invalid("this room has no server-generated key"));
            }
            let epoch = c
                .room
                .current_epoch(c.user.clone())
                .await
                .map_err(|_| room_gone())?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::PermissionDenied,
                        "the key goes to participants in the room: join the meeting first",
                    )
                    .with_http(Http::FORBIDDEN)
                })?;
            Ok(reply(json!({
                "status": true,
                "msg": "success",
                "generation": epoch.generation,
                "secret": epoch.secret.expose(),
            })))
        }
        .await,
    )
}

async fn renew_token(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    result(async {
        let c = caller(&app, &headers).await?;
        let now = unix_now() as u64;
        let claims = JoinClaims { nbf: now, exp: now + app.config.token_validity.as_secs(), ..c.claims };
        Ok(reply(json!({ "status": true, "msg": "token renewed", "token": app.keys.sign(TokenKind::Join, &claims), "expires_at": claims.exp })))
    }
    .await)
}

async fn end_room(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c)?;
            tracing::info!(room_id = %c.room.info.room_id, by = %c.user, "room ended by an admin");
            let _ = c.room.end(EndReason::Requested).await;
            Ok(reply(json!({ "status": true, "msg": "success" })))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TargetReq {
    pub(crate) user_id: String,
    pub(crate) track_sid: String,
    pub(crate) muted: bool,
    /// `removeParticipant`: also put them on the session's block list.
    pub(crate) block_user: bool,
}

async fn remove_participant(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(async {
        let c = caller(&app, &headers).await?;
        admin(&c)?;
        let req: TargetReq = json::decode(&body).map_err(ApiError::invalid)?;
        let target = UserId::parse(&req.user_id).map_err(|e| ApiError::invalid(format!("user_id: {e}")))?;
        // The room first: once it has applied the removal, the target's join token and media
        // token no longer admit them, so the connection closed next cannot come back.
        let _ = c.room.remove(target.clone(), req.block_user).await;
        if let Some(media) = &app.media {
            media.remove(c.room.info.room_id.as_str(), target.as_str());
        }
        tracing::info!(room_id = %c.room.info.room_id, by = %c.user, user_id = %target, blocked = req.block_user, "participant removed by an admin");
        Ok(reply(json!({ "status": true, "msg": "success" })))
    }
    .await)
}

async fn mute_track(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c)?;
            let req: TargetReq = json::decode(&body).map_err(ApiError::invalid)?;
            let target = UserId::parse(&req.user_id)
                .map_err(|e| ApiError::invalid(format!("user_id: {e}")))?;
            if req.track_sid.is_empty() {
                return Err(ApiError::invalid("track_sid: value is required"));
            }
            if let Some(media) = &app.media {
                media.mute(
                    c.room.info.room_id.as_str(),
                    target.as_str(),
                    &req.track_sid,
                    req.muted,
                );
            }
            Ok(reply(json!({ "status": true, "msg": "success" })))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TaskReq {
    pub(crate) task: String,
    pub(crate) url: String,
    pub(crate) stream_key: String,
}

fn refused(e: FeatureRefused) -> ApiError {
    ApiError::new(StatusCode::PermissionDenied, e.to_string()).with_http(Http::FORBIDDEN)
}

fn recorder_error(e: RecorderError) -> ApiError {
    match e {
        RecorderError::Refused(r) => refused(r),
        e @ RecorderError::SinkRefused { .. } => {
            ApiError::new(StatusCode::PermissionDenied, e.to_string()).with_http(Http::FORBIDDEN)
        }
        e @ (RecorderError::AlreadyRunning(_) | RecorderError::NotRunning(_)) => {
            ApiError::new(StatusCode::Conflict, e.to_string()).with_http(Http::CONFLICT)
        }
        e @ (RecorderError::BadUrl
        | RecorderError::UnresolvedTarget(_)
        | RecorderError::PrivateTarget(_)) => {
            ApiError::invalid(e.to_string()).with_http(Http::BAD_REQUEST)
        }
        e @ RecorderError::NoMedia => ApiError::new(StatusCode::InternalServerError, e.to_string())
            .with_http(Http::SERVICE_UNAVAILABLE),
        RecorderError::Pipeline { job, source } => {
            tracing::warn!(%job, error = %source, "recorder did not start");
            ApiError::new(
                StatusCode::InternalServerError,
                format!("could not start the {job}: {}", source.public_message()),
            )
            .with_http(Http::INTERNAL_SERVER_ERROR)
        }
        e @ RecorderError::Io(_) => {
            tracing::warn!(error = %e, "recorder did not start");
            ApiError::new(
                StatusCode::InternalServerError,
                "could not prepare the recording directory (see the server log)",
            )
            .with_http(Http::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Cloud recording: `{"task":"START_RECORDING"|"STOP_RECORDING"}`, admins only. Refused in
/// E2EE rooms before anything else is looked at (and by the SFU core again behind that).
async fn recording(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c).map_err(|_| {
                ApiError::new(
                    StatusCode::PermissionDenied,
                    "only admin can start recording",
                )
                .with_http(Http::FORBIDDEN)
            })?;
            c.room
                .info
                .permit(ServerMediaFeature::CloudRecording)
                .map_err(refused)?;
            let req: TaskReq = json::decode(&body)
                .map_err(|e| ApiError::invalid(e).with_http(Http::BAD_REQUEST))?;
            let room_id = c.room.info.room_id.to_string();
            tracing::info!(room_id, task = req.task, user_id = %c.user, "recording requested");
            let msg = match req.task.as_str() {
                "START_RECORDING" | "start-recording" | "START" => {
                    app.recorders
                        .start(&c.room.info, Job::Recording, None)
                        .await
                        .map_err(recorder_error)?;
                    "recording started"
                }
                "STOP_RECORDING" | "END_RECORDING" | "stop-recording" | "STOP" => {
                    app.recorders
                        .stop(&room_id, Job::Recording)
                        .map_err(recorder_error)?;
                    "recording stopping; the file is being finalised"
                }
                other => {
                    return Err(ApiError::invalid(format!(
                        "task: {other:?} is not START_RECORDING or STOP_RECORDING"
                    ))
                    .with_http(Http::BAD_REQUEST))
                }
            };
            Ok(reply(json!({"status": true, "msg": msg})))
        }
        .await,
    )
}

/// RTMP broadcasting: `{"task":"START_RTMP","url":…,"stream_key":…}` or
/// `{"task":"STOP_RTMP"}`, admins only. Refused in E2EE rooms before anything else is looked at.
async fn rtmp(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c)?;
            c.room
                .info
                .permit(ServerMediaFeature::RtmpBroadcast)
                .map_err(refused)?;
            let req: TaskReq = json::decode(&body)
                .map_err(|e| ApiError::invalid(e).with_http(Http::BAD_REQUEST))?;
            let room_id = c.room.info.room_id.to_string();
            tracing::info!(room_id, task = req.task, user_id = %c.user, "RTMP requested");
            let msg = match req.task.as_str() {
                "START_RTMP" | "start-rtmp" | "START" => {
                    let url = rtmp_target(&req.url, &req.stream_key).map_err(recorder_error)?;
                    crate::recording::check_rtmp_host(&url, app.config.rtmp_allow_private_targets)
                        .await
                        .map_err(recorder_error)?;
                    app.recorders
                        .start(&c.room.info, Job::Rtmp, Some(url))
                        .await
                        .map_err(recorder_error)?;
                    "broadcast started"
                }
                "STOP_RTMP" | "END_RTMP" | "stop-rtmp" | "STOP" => {
                    app.recorders
                        .stop(&room_id, Job::Rtmp)
                        .map_err(recorder_error)?;
                    "broadcast stopping"
                }
                other => {
                    return Err(ApiError::invalid(format!(
                        "task: {other:?} is not START_RTMP or STOP_RTMP"
                    ))
                    .with_http(Http::BAD_REQUEST))
                }
            };
            Ok(reply(json!({"status": true, "msg": msg})))
        }
        .await,
    )
}

/// Admins: who waits in the waiting room now (those whose waiting page asked within the last
/// few seconds), longest first, and the message they see.
async fn waiting_list(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c)?;
            let waiting = c.room.waiting().await.map_err(|_| room_gone())?;
            let users: Vec<_> = waiting
                .iter()
                .map(|w| {
                    json!({
                        "user_id": w.user_id.to_string(),
                        "name": w.name,
                        "waiting_seconds": w.waiting_for.as_secs(),
                    })
                })
                .collect();
            let f = c
                .room
                .info
                .metadata
                .room_features
                .as_ref()
                .and_then(|f| f.waiting_room_features.as_ref());
            Ok(reply(json!({
                "status": true,
                "msg": "success",
                "is_active": f.is_some_and(|w| w.is_active),
                "users": users,
            })))
        }
        .await,
    )
}

/// A request's `user_id`: one user, or `all`.
fn who(user_id: &str) -> Result<Who, ApiError> {
    match user_id {
        "" => Err(ApiError::invalid("user_id: value is required")),
        "all" => Ok(Who::All),
        u => UserId::parse(u)
            .map(Who::One)
            .map_err(|e| ApiError::invalid(format!("user_id: {e}"))),
    }
}

/// Sends the media server the new metadata of the invitations an admin action changed (hands,
/// presenter), for everyone in the room to see.
fn publish_metadata(app: &App, room: &RoomHandle, changed: &[(UserId, Invitation)]) {
    if let Some(media) = &app.media {
        for (user, inv) in changed {
            media.set_metadata(
                room.info.room_id.as_str(),
                user.as_str(),
                inv.metadata_json(),
            );
        }
    }
}

pub(super) fn room_gone() -> ApiError {
    ApiError::new(StatusCode::RoomNotFound, "notifications.room-not-active")
        .with_http(Http::UNAUTHORIZED)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ApproveReq {
    /// One waiting user, or `all` (Plug-N-Meet's `ApproveWaitingUsersReq`).
    pub(crate) user_id: String,
}

/// Admins: let one waiting user (or `all`) into the meeting. Their waiting page moves on by
/// itself at its next ask.
async fn approve_users(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c)?;
            let req: ApproveReq = json::decode(&body).map_err(ApiError::invalid)?;
            let which = who(&req.user_id)?;
            let approved = c.room.approve(which).await.map_err(|_| room_gone())?;
            tracing::info!(room_id = %c.room.info.room_id, by = %c.user, approved = ?approved.iter().map(|u| u.as_str()).collect::<Vec<_>>(), "waiting users approved");
            Ok(reply(json!({
                "status": true,
                "msg": "success",
                "approved": approved.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
            })))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateMsgReq {
    msg: String,
}

/// A bound on the message every waiting page shows.
const MAX_WAITING_MSG: usize = 2_000;

/// Admins: change what the waiting room says, for the rest of the session.
async fn update_waiting_msg(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c)?;
            let req: UpdateMsgReq = json::decode(&body).map_err(ApiError::invalid)?;
            if req.msg.chars().count() > MAX_WAITING_MSG {
                return Err(ApiError::invalid(format!(
                    "msg: at most {MAX_WAITING_MSG} characters"
                )));
            }
            c.room
                .set_waiting_msg(req.msg)
                .await
                .map_err(|_| room_gone())?;
            Ok(reply(json!({ "status": true, "msg": "success" })))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LockReq {
    /// One user, or `all` (every non-admin).
    pub(crate) user_id: String,
    pub(crate) service: String,
    /// `lock` or `unlock`.
    pub(crate) direction: String,
}

/// Admins: set or lift a lock for one participant or everyone (Plug-N-Meet's
/// `UpdateUserLockSettingsReq`). Microphone, webcam and screen-share locks are enforced by the
/// media server at once: a published track of a locked source is unpublished, and announcing
/// one is refused.
async fn update_lock_settings(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let c = caller(&app, &headers).await?;
            admin(&c)?;
            let req: LockReq = json::decode(&body).map_err(ApiError::invalid)?;
            let service = crate::rooms::locks::LockService::parse(&req.service)
                .map_err(ApiError::invalid)?;
            let lock = match req.direction.as_str() {
                "lock" => true,
                "unlock" => false,
                other => {
                    return Err(ApiError::invalid(format!(
                        "direction: {other:?} is not lock or unlock"
                    )))
                }
            };
            let who = who(&req.user_id)?;
            let changed = c
                .room
                .set_lock(who, service, lock)
                .await
                .map_err(|_| room_gone())?;
            if let Some(media) = &app.media {
                for (user, inv) in &changed {
                    // Hidden participants are kept silent by the media server itself.
                    let permission = c.room.publish_permission(Some(inv), false);
                    media.set_permission(
                        c.room.info.room_id.as_str(),
                        user.as_str(),
                        permission,
                    );
                    // What the SFU's permission cannot say (chat) the participant's client is
                    // told on the server's topic; the SFU drops their chat regardless.
                    let locks = inv.metadata.lock_settings.as_ref();
                    let chat = crate::rooms::locks::chat_locked(false, locks);
                    let private = crate::rooms::locks::private_chat_locked(false, locks);
                    media.send_system(
                        c.room.info.room_id.as_str(),
                        &json!({ "type": "LOCK_SETTINGS", "lock_chat": chat, "lock_private_chat": private }),
                        vec![user.to_string()],
                    );
                }
            }
            tracing::info!(room_id = %c.room.info.room_id, by = %c.user, user_id = req.user_id, service = ?service, lock, changed = changed.len(), "lock settings changed");
            Ok(reply(json!({ "status": true, "msg": "success", "changed": changed.len() })))
        }
        .await,
    )
}
