//! Breakout rooms in the browser API (`/api/breakoutRoom/*`, Plug-N-Meet's paths, as JSON).
//!
//! An admin splits the session into rooms for a number of minutes and assigns people; each
//! breakout room is a room of its own (`<parent>-<id>`), opened from the parent's settings, so
//! it has its own session, `sid` and, in an E2EE room, its own keys: the server-key mode draws a
//! fresh secret for it, and a passphrase gives other keys under another `sid`. Assigned people
//! are told on the server's topic (`JOIN_BREAKOUT_ROOM`), get a join token for their room from
//! `join`, and come back with `return` (ours), which answers even once the breakout room has
//! ended. Breakout rooms end when their time is up, when an admin ends them, or with their parent.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;

use enclave_proto::breakout::{
    BreakoutRoom, BreakoutRoomIdReq, BreakoutRoomRes, BroadcastBreakoutRoomMsgReq,
    CreateBreakoutRoomsReq, IncreaseBreakoutRoomDurationReq,
};
use enclave_proto::browser::ServerMessage;
use enclave_proto::ids::{RoomId, UserId};
use enclave_proto::json;
use enclave_proto::room::PreparedRoom;
use enclave_proto::user::JoinClaims;
use enclave_proto::StatusCode;

use super::caller::{
    bearer, forbidden, no_invitation, room_gone, unauthorized, Admin, Caller, NoStore,
};
use crate::app::App;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::rooms::breakouts::{self, BreakoutError, Breakouts};
use crate::rooms::core::{EndReason, Invitation, Standing};
use crate::rooms::RoomHandle;

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/breakoutRoom/create", post(create))
        .route("/api/breakoutRoom/join", post(join))
        .route("/api/breakoutRoom/listRooms", get(list))
        .route("/api/breakoutRoom/myRooms", get(mine))
        .route("/api/breakoutRoom/sendMsg", post(send_msg))
        .route(
            "/api/breakoutRoom/increaseDuration",
            post(increase_duration),
        )
        .route("/api/breakoutRoom/endRoom", post(end_one))
        .route("/api/breakoutRoom/endAllRooms", post(end_all))
        .route("/api/breakoutRoom/return", post(return_to_parent))
}

type Reply = Result<NoStore<BreakoutRoomRes>, ApiError>;

fn send(r: BreakoutRoomRes) -> Reply {
    Ok(NoStore(r))
}

fn refused(e: BreakoutError) -> ApiError {
    ApiError::invalid(e)
}

async fn with<T: Send + 'static>(
    room: &RoomHandle,
    f: impl FnOnce(&mut Breakouts) -> T + Send + 'static,
) -> Result<T, ApiError> {
    Ok(room.breakouts(f).await?)
}

/// A server data packet to `room` (everyone when `to` is empty).
fn tell(app: &App, room: &RoomHandle, msg: ServerMessage, to: Vec<String>) {
    if let Some(media) = &app.media {
        media.send_system(room.info.room_id.as_str(), &msg, to);
    }
}

/// The main room of a caller's session: breakout rooms are made there, not inside one.
fn main_room(c: &Caller) -> Result<(), ApiError> {
    if c.room.info.metadata.is_breakout_room {
        return Err(ApiError::invalid(
            "this is a breakout room: breakout rooms are made from the main room",
        ));
    }
    let allowed = c
        .room
        .info
        .features()
        .and_then(|f| f.breakout_room_features.as_ref())
        .is_none_or(|b| b.is_allow);
    if allowed {
        Ok(())
    } else {
        Err(forbidden("breakout rooms are turned off in this room"))
    }
}

/// A breakout room's settings: the parent's, for `minutes`, with what a breakout room does not
/// do switched off (breakout rooms of its own, a waiting room, recording and broadcasting).
fn breakout_room(
    parent: &RoomHandle,
    id: RoomId,
    title: &str,
    minutes: u64,
    welcome: Option<String>,
    now: i64,
) -> PreparedRoom {
    let mut metadata = parent.info.metadata.clone();
    metadata.room_title = title.trim().to_owned();
    metadata.is_breakout_room = true;
    metadata.parent_room_id = parent.info.room_id.to_string();
    metadata.started_at = now as u64;
    metadata.metadata_id = None;
    if let Some(w) = welcome.filter(|w| !w.trim().is_empty()) {
        metadata.welcome_message = Some(w);
    }
    if let Some(f) = metadata.room_features.as_mut() {
        f.room_duration = Some(minutes);
        if let Some(b) = f.breakout_room_features.as_mut() {
            b.is_allow = false;
            b.is_active = false;
        }
        if let Some(w) = f.waiting_room_features.as_mut() {
            w.is_active = false;
        }
        if let Some(r) = f.recording_features.as_mut() {
            r.is_allow = false;
            r.is_allow_cloud = false;
            r.enable_auto_cloud_recording = false;
        }
        if let Some(e) = f.external_broadcasting_features.as_mut() {
            e.is_allow = false;
        }
    }
    PreparedRoom {
        room_id: id,
        empty_timeout: parent.info.empty_timeout,
        max_participants: parent.info.max_participants,
        metadata,
    }
}

async fn create(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Reply {
    main_room(&c)?;
    let req: CreateBreakoutRoomsReq = json::decode(&body).map_err(ApiError::invalid)?;
    let features = c
        .room
        .info
        .metadata
        .room_features
        .clone()
        .unwrap_or_default();
    let max = features
        .breakout_room_features
        .as_ref()
        .map(|b| b.allowed_number_rooms)
        .filter(|n| *n > 0)
        .unwrap_or(breakouts::DEFAULT_MAX_ROOMS);
    let now = unix_now();
    let parent_left = features
        .room_duration
        .filter(|m| *m > 0)
        .map(|m| ((c.room.info.created + (m as i64) * 60 - now).max(0) / 60) as u64);
    breakouts::validate(&req, max, parent_left).map_err(refused)?;
    if with(&c.room, |b| b.is_active()).await? {
        return Err(refused(BreakoutError::Running));
    }
    // Everyone assigned must be someone of this session.
    for u in req.rooms.iter().flat_map(|r| &r.users) {
        let id = UserId::parse(&u.id).map_err(|e| ApiError::invalid(format!("users: {e}")))?;
        if c.room.invitation(id).await?.is_none() {
            return Err(ApiError::invalid(format!(
                "users: {:?} is not in this session",
                u.id
            )));
        }
    }
    let parent = c.room.info.room_id.to_string();
    let mut opened = Vec::new();
    for r in req.rooms {
        let id = RoomId::parse(&format!("{parent}-{}", r.id))
            .map_err(|e| ApiError::invalid(format!("rooms: {e}")))?;
        if app.rooms.get(&id).is_some() {
            return Err(ApiError::invalid(format!(
                "rooms: a room {id} is running already"
            )));
        }
        let prepared = breakout_room(
            &c.room,
            id.clone(),
            &r.title,
            req.duration,
            req.welcome_msg.clone(),
            now,
        );
        super::api::open_session(&app, prepared, now).await?;
        let room = BreakoutRoom {
            id: id.to_string(),
            title: r.title.trim().to_owned(),
            duration: req.duration,
            started: true,
            created: now as u64,
            ends_at: (now as u64) + req.duration * 60,
            users: r.users,
        };
        for u in &room.users {
            tell(
                &app,
                &c.room,
                ServerMessage::JoinBreakoutRoom {
                    breakout_room_id: room.id.clone(),
                    title: room.title.clone(),
                    ends_at: room.ends_at,
                },
                vec![u.id.clone()],
            );
        }
        opened.push(room.id.clone());
        with(&c.room, move |b| b.add(room)).await?;
    }
    tell(
        &app,
        &c.room,
        ServerMessage::BreakoutRoomsChanged,
        Vec::new(),
    );
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, rooms = ?opened, minutes = req.duration, "breakout rooms opened");
    send(BreakoutRoomRes::success())
}

/// Whether `user` of the parent is in a breakout room now (for the `joined` flags).
async fn joined(app: &App, room: &BreakoutRoom) -> Vec<String> {
    let Some(h) = app.rooms.get_str(&room.id) else {
        return Vec::new();
    };
    h.snapshot()
        .await
        .map(|s| {
            s.participants
                .iter()
                .map(|p| p.user_id.to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn with_joined(app: &App, mut room: BreakoutRoom) -> BreakoutRoom {
    let here = joined(app, &room).await;
    for u in &mut room.users {
        u.joined = here.contains(&u.id);
    }
    room
}

async fn list(State(app): State<Arc<App>>, Admin(c): Admin) -> Reply {
    let rooms = with(&c.room, |b| b.list()).await?;
    let mut out = Vec::with_capacity(rooms.len());
    for r in rooms {
        out.push(with_joined(&app, r).await);
    }
    send(BreakoutRoomRes {
        rooms: Some(out),
        ..BreakoutRoomRes::success()
    })
}

async fn mine(c: Caller) -> Reply {
    let me = c.user.to_string();
    let room = with(&c.room, move |b| b.of(&me)).await?;
    send(BreakoutRoomRes {
        room,
        ..BreakoutRoomRes::success()
    })
}

/// A join token for a breakout room: the caller's own (or, for an admin, any).
async fn join(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Reply {
    let req: BreakoutRoomIdReq = json::decode(&body).map_err(ApiError::invalid)?;
    let id = req.breakout_room_id.clone();
    let room = with(&c.room, move |b| b.get(&id)).await?.map_err(refused)?;
    if !c.claims.is_admin && !room.users.iter().any(|u| u.id == c.user.as_str()) {
        return Err(forbidden("user is not allowed to join this breakout room"));
    }
    let target = app
        .rooms
        .get_str(&room.id)
        .ok_or_else(|| refused(BreakoutError::NotFound))?;
    // The same person in the breakout room: their name, role and locks, nothing pending.
    let mut invitation: Invitation = c.invitation.clone();
    invitation.metadata.wait_for_approval = false;
    invitation.metadata.is_presenter = false;
    invitation.metadata.raised_hand = Some(Default::default());
    target
        .invite(c.user.clone(), invitation.clone())
        .await
        .map_err(|_| refused(BreakoutError::NotFound))?
        .map_err(|b| ApiError::new(StatusCode::UserBlocked, b.to_string()))?;
    let token = sign(
        &app,
        &c.user,
        &room.id,
        &invitation,
        &c.claims,
        c.room.info.room_id.as_str(),
    );
    tracing::info!(room_id = %c.room.info.room_id, user_id = %c.user, breakout_room_id = room.id, "breakout room token issued");
    send(BreakoutRoomRes {
        token: Some(token),
        room: Some(room),
        ..BreakoutRoomRes::success()
    })
}

fn sign(
    app: &App,
    user: &UserId,
    room_id: &str,
    inv: &Invitation,
    like: &JoinClaims,
    parent: &str,
) -> String {
    let claims = JoinClaims {
        sub: user.to_string(),
        name: inv.name.clone(),
        user_id: user.to_string(),
        room_id: room_id.to_owned(),
        is_admin: inv.is_admin,
        is_hidden: like.is_hidden,
        client_type: like.client_type,
        parent_room_id: parent.to_owned(),
        ..Default::default()
    };
    super::api::sign_join(app, claims).0
}

/// Admins: a breakout room runs `duration` minutes longer (its people are told, as is the
/// parent's list).
async fn increase_duration(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Reply {
    let req: IncreaseBreakoutRoomDurationReq = json::decode(&body).map_err(ApiError::invalid)?;
    if !(1..=breakouts::MAX_DURATION_MINUTES).contains(&req.duration) {
        return Err(refused(BreakoutError::Duration));
    }
    let id = req.breakout_room_id.clone();
    with(&c.room, move |b| b.get(&id)).await?.map_err(refused)?;
    let target = app
        .rooms
        .get_str(&req.breakout_room_id)
        .ok_or_else(|| refused(BreakoutError::NotFound))?;
    target
        .extend_duration(std::time::Duration::from_secs(req.duration * 60))
        .await
        .map_err(|_| refused(BreakoutError::NotFound))?;
    let (id, minutes) = (req.breakout_room_id.clone(), req.duration);
    let room = with(&c.room, move |b| b.extend(&id, minutes))
        .await?
        .map_err(refused)?;
    tell(
        &app,
        &target,
        ServerMessage::BreakoutRoomExtended {
            ends_at: room.ends_at,
        },
        Vec::new(),
    );
    tell(
        &app,
        &c.room,
        ServerMessage::BreakoutRoomsChanged,
        Vec::new(),
    );
    tracing::info!(room_id = %c.room.info.room_id, breakout_room_id = room.id, minutes, "breakout room extended");
    send(BreakoutRoomRes {
        room: Some(room),
        ..BreakoutRoomRes::success()
    })
}

/// Admins: a message to every breakout room's chat. Not in an E2EE room: the text would pass
/// through the server in clear, where each breakout room's keys are ones the admin does not hold.
async fn send_msg(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Reply {
    let req: BroadcastBreakoutRoomMsgReq = json::decode(&body).map_err(ApiError::invalid)?;
    if c.room.info.is_e2ee() {
        return Err(ApiError::invalid(
            "msg: this room is end-to-end encrypted, and a message to every breakout room would pass through the server in clear",
        ));
    }
    let msg = req.msg.trim();
    if msg.is_empty() || msg.chars().count() > 2000 {
        return Err(ApiError::invalid("msg: 1 to 2000 characters"));
    }
    let rooms = with(&c.room, |b| b.list()).await?;
    for r in &rooms {
        if let Some(h) = app.rooms.get_str(&r.id) {
            tell(
                &app,
                &h,
                ServerMessage::SystemChatMsg {
                    message: msg.to_owned(),
                },
                Vec::new(),
            );
        }
    }
    send(BreakoutRoomRes::success())
}

async fn end_rooms(app: &Arc<App>, parent: &RoomHandle, ids: Vec<String>) {
    for id in ids {
        if let Some(h) = app.rooms.get_str(&id) {
            let _ = h.end(EndReason::Requested).await;
        }
        // Its end tells the parent too (App::ended); this covers a room already gone.
        let gone = id.clone();
        if let Ok(true) = parent.breakouts(move |b| b.remove(&gone)).await {
            tell(
                app,
                parent,
                ServerMessage::BreakoutRoomEnded {
                    breakout_room_id: id,
                },
                Vec::new(),
            );
        }
    }
}

async fn end_one(State(app): State<Arc<App>>, Admin(c): Admin, body: Bytes) -> Reply {
    let req: BreakoutRoomIdReq = json::decode(&body).map_err(ApiError::invalid)?;
    let id = req.breakout_room_id.clone();
    with(&c.room, move |b| b.get(&id)).await?.map_err(refused)?;
    end_rooms(&app, &c.room, vec![req.breakout_room_id]).await;
    send(BreakoutRoomRes::success())
}

async fn end_all(State(app): State<Arc<App>>, Admin(c): Admin) -> Reply {
    let ids: Vec<String> = with(&c.room, |b| b.list())
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    end_rooms(&app, &c.room, ids).await;
    send(BreakoutRoomRes::success())
}

/// Ours: a join token for the main room, for someone holding a breakout room's token, even once
/// that room has ended (it names its parent). They must still be welcome in the main room.
async fn return_to_parent(State(app): State<Arc<App>>, headers: HeaderMap) -> Reply {
    let claims = app
        .keys
        .verify_join(&app.config.api_key, bearer(&headers)?, None)
        .map_err(|_| unauthorized("notifications.invalid-token"))?;
    if claims.parent_room_id.is_empty() {
        return Err(ApiError::invalid("this is not a breakout room's token"));
    }
    let user =
        UserId::parse(&claims.sub).map_err(|_| unauthorized("notifications.invalid-token"))?;
    let parent = app
        .rooms
        .get_str(&claims.parent_room_id)
        .ok_or_else(room_gone)?;
    let m = parent.membership(user.clone()).await?;
    if m.standing != Standing::Welcome {
        return Err(
            ApiError::new(StatusCode::UserNotFound, "notifications.you-are-removed")
                .with_http(axum::http::StatusCode::UNAUTHORIZED),
        );
    }
    let inv = m.invitation.ok_or_else(no_invitation)?;
    let token = sign(&app, &user, parent.info.room_id.as_str(), &inv, &claims, "");
    tracing::info!(room_id = %parent.info.room_id, user_id = %user, "back from a breakout room");
    send(BreakoutRoomRes {
        token: Some(token),
        ..BreakoutRoomRes::success()
    })
}
