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
use axum::http::StatusCode as Http;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use enclave_proto::browser::{
    Approved, Changed, Done, KeyEpochBody, MediaAccess, RenewedToken, Session, SessionE2ee,
    SessionRoom, SessionUser, Verified, Waiting, WaitingList, WaitingRoom, WaitingUser,
    WaitingUserSelf,
};
use enclave_proto::ids::UserId;
use enclave_proto::json;
use enclave_proto::StatusCode;

use super::caller::{answer, forbidden, no_invitation, success, Admin, Answered, Caller};
use crate::app::App;
use crate::auth::livekit::{AccessClaims, VideoGrant};
use crate::auth::TokenKind;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::recording::{rtmp_target, Job, RecorderError};
use crate::rooms::core::{EndReason, Invitation, Who};
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

async fn verify_token(State(app): State<Arc<App>>, c: Caller) -> Answered<Verified> {
    let mut inv = c.invitation.clone();
    let info = &c.room.info;
    let features = info.metadata.room_features.clone().unwrap_or_default();
    if inv.metadata.wait_for_approval {
        // The waiting room: nothing that lets them in (no media token, no secret, not even the
        // session id) until an admin approves. Each call is a knock that keeps them on the
        // admins' list; the page calls again every few seconds.
        match c.room.knock(c.user.clone()).await? {
            Some(msg) => {
                let msg = msg.unwrap_or_else(|| {
                    features
                        .waiting_room_features
                        .as_ref()
                        .map(|w| w.waiting_room_msg.clone())
                        .unwrap_or_default()
                });
                tracing::info!(room_id = %info.room_id, user_id = %c.user, "waiting for an admin's approval");
                return answer(
                    "notifications.waiting-for-approval",
                    Verified::Waiting(Waiting {
                        waiting: true,
                        waiting_room_msg: msg,
                        room: WaitingRoom {
                            room_id: info.room_id.to_string(),
                            title: info.title.clone(),
                        },
                        user: WaitingUserSelf {
                            user_id: c.user.to_string(),
                            name: c.claims.name.clone(),
                            is_admin: false,
                            is_hidden: c.claims.is_hidden,
                        },
                        expires_at: c.claims.exp,
                    }),
                );
            }
            None => {
                // Approved between the two asks (or rejected: then the next call says so).
                inv = c
                    .room
                    .invitation(c.user.clone())
                    .await?
                    .ok_or_else(no_invitation)?;
                if inv.metadata.wait_for_approval {
                    return Err(no_invitation());
                }
            }
        }
    }
    let e2ee = features
        .end_to_end_encryption_features
        .clone()
        .unwrap_or_default();
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
                can_publish_sources: Some(crate::rooms::locks::source_names(
                    &permission.can_publish_sources,
                )),
                hidden: info.effective_hidden(c.claims.is_hidden),
                can_update_own_metadata: None,
            },
            session: Some(info.sid.to_string()),
        },
    );
    let mut e2ee_reply = SessionE2ee {
        enabled: e2ee.is_enabled,
        mode,
        included_chat_messages: e2ee.included_chat_messages,
        included_whiteboard: e2ee.included_whiteboard,
        ..Default::default()
    };
    // A server-generated-key room draws a new key epoch for whoever comes in: nothing sent
    // before now can be read with it (everyone in the room moves to it too).
    if info.server_key {
        let a = c
            .room
            .admit(c.user.clone())
            .await?
            .ok_or_else(no_invitation)?;
        e2ee_reply.secret = Some(a.epoch.secret.expose().to_owned());
        e2ee_reply.generation = Some(a.epoch.generation);
        e2ee_reply.history_secret = Some(a.history.expose().to_owned());
        e2ee_reply.content_secret = Some(a.content.expose().to_owned());
    }
    tracing::info!(room_id = %info.room_id, user_id = %c.user, e2ee = mode, "browser session verified");
    let rec = app.recorders.state(info.room_id.as_str());
    let locks = inv.metadata.lock_settings.as_ref();
    answer(
        "token is valid",
        Verified::Session(Box::new(Session {
            room: SessionRoom {
                room_id: info.room_id.to_string(),
                title: info.title.clone(),
                sid: info.sid.to_string(),
                welcome_message: info.metadata.welcome_message.clone().unwrap_or_default(),
                is_breakout_room: info.metadata.is_breakout_room,
                parent_room_id: info.metadata.parent_room_id.clone(),
                ends_at: features
                    .room_duration
                    .filter(|m| *m > 0)
                    .map_or(0, |m| info.created + (m as i64) * 60),
                logout_url: info.metadata.logout_url.clone().unwrap_or_default(),
                features,
                default_lock_settings: info.metadata.default_lock_settings.clone(),
            },
            user: SessionUser {
                user_id: c.user.to_string(),
                name: c.claims.name.clone(),
                is_admin: c.claims.is_admin,
                is_hidden: info.effective_hidden(c.claims.is_hidden),
                lock_chat: crate::rooms::locks::chat_locked(c.claims.is_admin, locks),
                lock_private_chat: crate::rooms::locks::private_chat_locked(
                    c.claims.is_admin,
                    locks,
                ),
                lock_chat_file_share: crate::rooms::locks::chat_file_locked(
                    c.claims.is_admin,
                    locks,
                ),
                lock_whiteboard: crate::rooms::locks::whiteboard_locked(c.claims.is_admin, locks),
                lock_shared_notepad: crate::rooms::locks::notepad_locked(c.claims.is_admin, locks),
                is_observer: c.claims.is_hidden,
            },
            media: MediaAccess {
                url: lk.host.clone(),
                token: media_token,
            },
            e2ee: e2ee_reply,
            is_recording: rec.is_recording,
            is_active_rtmp: rec.is_active_rtmp,
            expires_at: c.claims.exp,
        })),
    )
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
    Admin(c): Admin,
    body: Bytes,
) -> Answered<Changed> {
    let req: PresenterReq = json::decode(&body).map_err(ApiError::invalid)?;
    let promote = match req.task.as_str() {
        "PROMOTE" => true,
        "DEMOTE" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "task: {other:?} is not PROMOTE or DEMOTE"
            )))
        }
    };
    let target = parse_user(&req.user_id)?;
    if c.room.invitation(target.clone()).await?.is_none() {
        return Err(
            ApiError::new(StatusCode::NotFound, "user not found in this session")
                .with_http(Http::NOT_FOUND),
        );
    }
    let changed = c
        .room
        .switch_presenter(target, promote, c.user.clone())
        .await?;
    publish_metadata(&app, &c.room, &changed);
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, user_id = req.user_id, promote, "presenter switched");
    success(Changed {
        changed: changed.len(),
    })
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
async fn raise_hand(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Answered<Changed> {
    let req: HandReq = json::decode(&body).map_err(ApiError::invalid)?;
    let own = req.user_id.is_empty() || req.user_id == c.user.as_str();
    let target = if own {
        Who::One(c.user.clone())
    } else {
        who(&req.user_id)?
    };
    if !own && (req.raise || !c.claims.is_admin) {
        return Err(forbidden(
            "only an admin can lower another participant's hand, and nobody can raise it",
        ));
    }
    let allowed = c
        .room
        .info
        .features()
        .and_then(|f| f.allow_raise_hand)
        .unwrap_or(true);
    if req.raise && !allowed {
        return Err(forbidden("raising hands is turned off in this room"));
    }
    let now_ms = crate::clock::unix_ms();
    let changed = c.room.set_hand(target, req.raise, now_ms).await?;
    publish_metadata(&app, &c.room, &changed);
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, user_id = req.user_id, raise = req.raise, changed = changed.len(), "hand raised or lowered");
    success(Changed {
        changed: changed.len(),
    })
}

/// The current key epoch of a server-generated-key room, for a participant who is in it (one
/// whose connection missed a delivery on the media server's data channel, e.g. while it
/// reconnected). Anyone else is refused: the key goes to the members in the room.
async fn e2ee_key(c: Caller) -> Answered<KeyEpochBody> {
    if !c.room.info.server_key {
        return Err(ApiError::invalid("this room has no server-generated key"));
    }
    let epoch = c.room.current_epoch(c.user.clone()).await?.ok_or_else(|| {
        forbidden("the key goes to participants in the room: join the meeting first")
    })?;
    success(KeyEpochBody {
        generation: epoch.generation,
        secret: epoch.secret.expose().to_owned(),
    })
}

async fn renew_token(State(app): State<Arc<App>>, c: Caller) -> Answered<RenewedToken> {
    let (token, expires_at) = super::api::sign_join(&app, c.claims);
    answer("token renewed", RenewedToken { token, expires_at })
}

async fn end_room(Admin(c): Admin) -> Answered<Done> {
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, "room ended by an admin");
    let _ = c.room.end(EndReason::Requested).await;
    success(Done {})
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
    Admin(c): Admin,
    body: Bytes,
) -> Answered<Done> {
    let req: TargetReq = json::decode(&body).map_err(ApiError::invalid)?;
    let target = parse_user(&req.user_id)?;
    // The room first: once it has applied the removal, the target's join token and media token
    // no longer admit them, so the connection closed next cannot come back.
    let _ = c.room.remove(target.clone(), req.block_user).await;
    if let Some(media) = &app.media {
        media.remove(c.room.info.room_id.as_str(), target.as_str());
    }
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, user_id = %target, blocked = req.block_user, "participant removed by an admin");
    success(Done {})
}

async fn mute_track(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Answered<Done> {
    let req: TargetReq = json::decode(&body).map_err(ApiError::invalid)?;
    let target = parse_user(&req.user_id)?;
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
    success(Done {})
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
async fn recording(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Answered<Done> {
    if !c.claims.is_admin {
        return Err(forbidden("only admin can start recording"));
    }
    c.room
        .info
        .permit(ServerMediaFeature::CloudRecording)
        .map_err(refused)?;
    let req: TaskReq =
        json::decode(&body).map_err(|e| ApiError::invalid(e).with_http(Http::BAD_REQUEST))?;
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
    answer(msg, Done {})
}

/// RTMP broadcasting: `{"task":"START_RTMP","url":…,"stream_key":…}` or
/// `{"task":"STOP_RTMP"}`, admins only. Refused in E2EE rooms before anything else is looked at.
async fn rtmp(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Answered<Done> {
    c.room
        .info
        .permit(ServerMediaFeature::RtmpBroadcast)
        .map_err(refused)?;
    let req: TaskReq =
        json::decode(&body).map_err(|e| ApiError::invalid(e).with_http(Http::BAD_REQUEST))?;
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
    answer(msg, Done {})
}

/// Admins: who waits in the waiting room now (those whose waiting page asked within the last
/// few seconds), longest first, and the message they see.
async fn waiting_list(Admin(c): Admin) -> Answered<WaitingList> {
    let users = c
        .room
        .waiting()
        .await?
        .into_iter()
        .map(|w| WaitingUser {
            user_id: w.user_id.to_string(),
            name: w.name,
            waiting_seconds: w.waiting_for.as_secs(),
        })
        .collect();
    let f = c
        .room
        .info
        .features()
        .and_then(|f| f.waiting_room_features.as_ref());
    success(WaitingList {
        is_active: f.is_some_and(|w| w.is_active),
        users,
    })
}

/// A request's `user_id`: one user.
fn parse_user(user_id: &str) -> Result<UserId, ApiError> {
    UserId::parse(user_id).map_err(|e| ApiError::invalid(format!("user_id: {e}")))
}

/// A request's `user_id`: one user, or `all`.
fn who(user_id: &str) -> Result<Who, ApiError> {
    match user_id {
        "" => Err(ApiError::invalid("user_id: value is required")),
        "all" => Ok(Who::All),
        u => parse_user(u).map(Who::One),
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ApproveReq {
    /// One waiting user, or `all` (Plug-N-Meet's `ApproveWaitingUsersReq`).
    pub(crate) user_id: String,
}

/// Admins: let one waiting user (or `all`) into the meeting. Their waiting page moves on by
/// itself at its next ask.
async fn approve_users(Admin(c): Admin, body: Bytes) -> Answered<Approved> {
    let req: ApproveReq = json::decode(&body).map_err(ApiError::invalid)?;
    let approved = c.room.approve(who(&req.user_id)?).await?;
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, approved = ?approved.iter().map(|u| u.as_str()).collect::<Vec<_>>(), "waiting users approved");
    success(Approved {
        approved: approved.iter().map(ToString::to_string).collect(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateMsgReq {
    msg: String,
}

/// A bound on the message every waiting page shows.
const MAX_WAITING_MSG: usize = 2_000;

/// Admins: change what the waiting room says, for the rest of the session.
async fn update_waiting_msg(Admin(c): Admin, body: Bytes) -> Answered<Done> {
    let req: UpdateMsgReq = json::decode(&body).map_err(ApiError::invalid)?;
    if req.msg.chars().count() > MAX_WAITING_MSG {
        return Err(ApiError::invalid(format!(
            "msg: at most {MAX_WAITING_MSG} characters"
        )));
    }
    c.room.set_waiting_msg(req.msg).await?;
    success(Done {})
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
    Admin(c): Admin,
    body: Bytes,
) -> Answered<Changed> {
    let req: LockReq = json::decode(&body).map_err(ApiError::invalid)?;
    let service =
        crate::rooms::locks::LockService::parse(&req.service).map_err(ApiError::invalid)?;
    let lock = match req.direction.as_str() {
        "lock" => true,
        "unlock" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "direction: {other:?} is not lock or unlock"
            )))
        }
    };
    let changed = c.room.set_lock(who(&req.user_id)?, service, lock).await?;
    if let Some(media) = &app.media {
        for (user, inv) in &changed {
            // Hidden participants are kept silent by the media server itself.
            let permission = c.room.publish_permission(Some(inv), false);
            media.set_permission(c.room.info.room_id.as_str(), user.as_str(), permission);
            // What the SFU's permission cannot say (chat) the participant's client is told on
            // the server's topic; the SFU drops their chat regardless.
            let locks = inv.metadata.lock_settings.as_ref();
            media.send_system(
                c.room.info.room_id.as_str(),
                &crate::rooms::locks::lock_message(false, locks),
                vec![user.to_string()],
            );
        }
    }
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, user_id = req.user_id, service = ?service, lock, changed = changed.len(), "lock settings changed");
    success(Changed {
        changed: changed.len(),
    })
}
