//! The `/auth` handlers. Each decodes with protojson's rules, answers HTTP 200 with the
//! envelope for every handler-level outcome, and names the offending field on bad input.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

use enclave_proto::browser::ServerMessage;
use enclave_proto::history::{
    ArtifactIdReq, ArtifactInfo, ArtifactInfoBody, FetchArtifactsReq, FetchArtifactsResult,
    FetchPastRoomsReq, FetchPastRoomsResult, FetchRecordingsReq, FetchRecordingsResult, Page,
    PastRoomInfo, RecordIdReq, RecordingInfo, RecordingInfoBody, ResultBody,
    UpdateRecordingMetadataReq,
};
use enclave_proto::ids::{SessionId, UserId};
use enclave_proto::json::{self, DecodeError};
use enclave_proto::reply::{
    ActiveRoomBody, ActiveRoomInfo, ActiveRoomWithParticipant, ActiveRoomsBody, ClientFilesBody,
    CreateRoomBody, Empty, IsRoomActiveBody, ParticipantInfo, Reply, TokenBody,
};
use enclave_proto::room::{prepare_create, PreparedRoom};
use enclave_proto::user::{GenerateTokenReq, JoinClaims, JoinRequestError, UserRaisedHand};
use enclave_proto::validate::Violations;
use enclave_proto::{CommonResponse, StatusCode};

use crate::app::App;
use crate::auth::{DownloadClaims, TokenKind};
use crate::clock::unix_now;
use crate::error::{success, ApiError, AuthReply};
use crate::rooms::core::{EndReason, Invitation};
use crate::rooms::participant_info;
use crate::rooms::{RoomHandle, RoomInfo};
use crate::store::{ArtifactRow, Filter, NewRoom, RecordingRow, RoomRow};
use crate::webhook::NotifyEvent;

type ApiResult<T> = Result<Reply<T>, ApiError>;

pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    json::decode(body).map_err(|e: DecodeError| ApiError::invalid(e))
}

/// protovalidate's `required` rule for a string field.
pub(super) fn require(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        let mut v = Violations::default();
        v.push(field, "value is required", "required");
        return Err(ApiError::invalid(v));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RoomIdReq {
    room_id: String,
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn plain_datetime(unix: i64) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&f).ok())
        .unwrap_or_default()
}

fn active_info(
    info: &RoomInfo,
    joined: i64,
    rec: crate::recording::RecorderState,
) -> ActiveRoomInfo {
    ActiveRoomInfo {
        room_title: info.title.clone(),
        room_id: info.room_id.to_string(),
        sid: info.sid.to_string(),
        joined_participants: joined,
        is_running: 1,
        is_recording: rec.is_recording.into(),
        is_active_rtmp: rec.is_active_rtmp.into(),
        webhook_url: info.webhook_url.clone(),
        is_breakout_room: 0,
        parent_room_id: String::new(),
        creation_time: info.created,
        metadata: info.metadata_json.clone(),
    }
}

async fn with_participants(app: &App, room: &RoomHandle) -> Option<ActiveRoomWithParticipant> {
    let snap = room.snapshot().await.ok()?;
    let rec = app.recorders.state(room.info.room_id.as_str());
    Some(ActiveRoomWithParticipant {
        room_info: Some(active_info(&room.info, snap.joined_total, rec)),
        // Waiting users too, as Plug-N-Meet lists them: `JOINING`, metadata with
        // `wait_for_approval`.
        participants_info: snap
            .participants
            .iter()
            .map(participant_info)
            .chain(snap.waiting.iter().map(|w| ParticipantInfo {
                state: "JOINING",
                ..participant_info(w)
            }))
            .collect(),
    })
}

fn past_room(row: &RoomRow, dates: fn(i64) -> String) -> PastRoomInfo {
    PastRoomInfo {
        room_title: row.room_title.clone(),
        room_id: row.room_id.clone(),
        room_sid: row.sid.clone(),
        joined_participants: row.joined_participants,
        webhook_url: row.webhook_url.clone(),
        created: dates(row.created),
        ended: row.ended.map(dates).unwrap_or_default(),
        analytics_file_id: None,
    }
}

/// The web client's scripts and styles (file names under `/assets/js/` and `/assets/css/`), from
/// which an LMS plugin builds its own page around a `#plugNmeet-app` element.
pub(super) async fn get_client_files() -> AuthReply<ClientFilesBody> {
    let (js, css) = (
        super::web::client_files("js"),
        super::web::client_files("css"),
    );
    // Plug-N-Meet never sets the status code of this reply.
    Ok(Json(Reply {
        common: CommonResponse {
            status: true,
            msg: "success".into(),
            status_code: StatusCode::UnknownStatus,
        },
        body: ClientFilesBody {
            css: css.clone(),
            js: js.clone(),
            css_files: css,
            js_files: js,
            static_assets_path: None,
        },
    }))
}

pub(super) async fn create_room(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<CreateRoomBody> {
    let now = unix_now();
    let prepared =
        prepare_create(&body, &app.config.room_policy, now as u64).map_err(ApiError::invalid)?;
    Ok(Json(open_session(&app, prepared, now).await?))
}

/// Opens a session of a prepared room (a `room/create`, or a breakout room made from its parent's
/// settings), or answers with the active one of the same id.
pub(super) async fn open_session(
    app: &Arc<App>,
    prepared: PreparedRoom,
    now: i64,
) -> ApiResult<CreateRoomBody> {
    // An active room is returned as it is; the new request's settings are ignored.
    if let Some(room) = app.rooms.get(&prepared.room_id) {
        return Ok(Reply::success(CreateRoomBody {
            room_info: with_participants(app, &room)
                .await
                .and_then(|r| r.room_info),
        }));
    }
    let _creating = app.rooms.creation_guard(&prepared.room_id).await;
    if let Some(room) = app.rooms.get(&prepared.room_id) {
        return Ok(Reply::success(CreateRoomBody {
            room_info: with_participants(app, &room)
                .await
                .and_then(|r| r.room_info),
        }));
    }

    let e2ee = prepared.e2ee().clone();
    let server_key = e2ee.is_enabled && !e2ee.enabled_self_insert_encryption_key;
    let duration = prepared
        .features()
        .room_duration
        .filter(|m| *m > 0)
        .map(|m| Duration::from_secs(m.saturating_mul(60)));
    let mut metadata = prepared.metadata;
    metadata.metadata_id = Some(uuid::Uuid::new_v4().to_string());
    let metadata_json = serde_json::to_string(&metadata).expect("room metadata always serialises");
    let webhook_url = metadata.webhook_url.clone().unwrap_or_default();
    let sid = SessionId::new_v4();
    let db_id = app
        .store
        .insert_room(NewRoom {
            room_id: prepared.room_id.to_string(),
            sid: sid.to_string(),
            room_title: metadata.room_title.clone(),
            webhook_url: webhook_url.clone(),
            created: now,
        })
        .await?;
    let info = RoomInfo {
        room_id: prepared.room_id,
        sid,
        db_id,
        title: metadata.room_title.clone(),
        webhook_url,
        created: now,
        empty_timeout: prepared.empty_timeout,
        max_participants: prepared.max_participants,
        metadata,
        metadata_json,
        server_key,
    };
    let reply = active_info(&info, 0, Default::default());
    let webhooks = app.webhooks.room_queue(&info.webhook_url);
    if let Some(q) = &webhooks {
        q.send(NotifyEvent::for_room("room_created", &info, 0, None));
    }
    let mode = match (e2ee.is_enabled, e2ee.enabled_self_insert_encryption_key) {
        (false, _) => "off",
        (true, false) => "server-generated key",
        (true, true) => "self-inserted key",
    };
    tracing::info!(room_id = %info.room_id, sid = %info.sid, e2ee = mode, "room created");
    // A document to put on the board when the room opens (not in a breakout room: Plug-N-Meet
    // preloads only the main room's).
    let preload = (!info.metadata.is_breakout_room)
        .then(|| {
            info.features()
                .and_then(|f| f.whiteboard_features.as_ref())
                .and_then(|w| w.preload_file.clone())
                .filter(|u| !u.is_empty())
        })
        .flatten();
    let room_id = info.room_id.clone();
    app.rooms.start(app.clone(), info, duration, webhooks);
    if let (Some(url), Some(room)) = (preload, app.rooms.get(&room_id)) {
        super::whiteboard::preload(app.clone(), room, url);
    }
    app.metrics.rooms_created.inc();
    app.metrics.rooms_active.set(app.rooms.len() as i64);
    Ok(Reply::success(CreateRoomBody {
        room_info: Some(reply),
    }))
}

pub(super) async fn get_join_token(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<TokenBody> {
    let req: GenerateTokenReq = decode(&body)?;
    let join = req.into_join_request().map_err(|e| match e {
        JoinRequestError::Invalid(v) => ApiError::invalid(v),
        JoinRequestError::Reserved(m) => ApiError::new(StatusCode::InternalServerError, m),
    })?;
    let room = app
        .rooms
        .get(&join.room_id)
        .ok_or_else(|| ApiError::new(StatusCode::RoomNotFound, "room is not active"))?;
    let features = room.info.metadata.room_features.clone().unwrap_or_default();
    let user_id = if features.auto_gen_user_id == Some(true) {
        UserId::parse(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid user id")
    } else {
        join.user_id.ok_or_else(|| {
            let mut v = Violations::default();
            v.push(
                "user_info.user_id",
                "value is required unless the room generates user ids",
                "required",
            );
            ApiError::invalid(v)
        })?
    };

    let mut meta = join.metadata;
    meta.is_admin = join.is_admin;
    meta.raised_hand.get_or_insert_with(UserRaisedHand::default);
    meta.ex_user_id.get_or_insert_with(|| user_id.to_string());
    meta.record_webcam.get_or_insert(true);
    if join.is_admin {
        meta.wait_for_approval = false;
        meta.lock_settings = Some(Default::default());
    } else {
        let room_locks = room
            .info
            .metadata
            .default_lock_settings
            .clone()
            .unwrap_or_default();
        // The room's default locks, under every lock the request set itself.
        let mut locks = room_locks;
        if let Some(own) = &meta.lock_settings {
            crate::rooms::locks::overlay(&mut locks, own);
        }
        meta.lock_settings = Some(locks);
        if features
            .waiting_room_features
            .as_ref()
            .is_some_and(|w| w.is_active)
        {
            meta.wait_for_approval = true;
        }
    }
    let invitation = Invitation {
        name: join.name.clone(),
        is_admin: join.is_admin,
        metadata: meta,
    };
    room.invite(user_id.clone(), invitation)
        .await
        .map_err(|_| ApiError::new(StatusCode::RoomNotFound, "room is not active"))?
        .map_err(|b| ApiError::new(StatusCode::UserBlocked, b.to_string()))?;

    let (token, _) = sign_join(
        app.as_ref(),
        JoinClaims {
            sub: user_id.to_string(),
            name: join.name,
            user_id: user_id.to_string(),
            room_id: join.room_id.to_string(),
            is_admin: join.is_admin,
            is_hidden: join.is_hidden,
            client_type: join.client_type.number(),
            ..Default::default()
        },
    );
    tracing::info!(room_id = %join.room_id, user_id = %user_id, is_admin = join.is_admin, "join token issued");
    success(TokenBody { token: Some(token) })
}

pub(super) async fn is_room_active(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<IsRoomActiveBody> {
    let req: RoomIdReq = decode(&body)?;
    require("room_id", &req.room_id)?;
    Ok(Json(match app.rooms.get_str(&req.room_id) {
        Some(_) => Reply {
            common: CommonResponse::ok("room is active"),
            body: IsRoomActiveBody { is_active: true },
        },
        // Plug-N-Meet answers `status: true` here: the call worked, the room is not there.
        None => Reply {
            common: CommonResponse {
                status: true,
                msg: "room not found".into(),
                status_code: StatusCode::RoomNotFound,
            },
            body: IsRoomActiveBody { is_active: false },
        },
    }))
}

pub(super) async fn get_active_room_info(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<ActiveRoomBody> {
    let req: RoomIdReq = decode(&body)?;
    require("room_id", &req.room_id)?;
    let not_found = || ApiError::new(StatusCode::RoomNotFound, "room not found in active state");
    let room = app.rooms.get_str(&req.room_id).ok_or_else(not_found)?;
    let room = with_participants(&app, &room).await.ok_or_else(not_found)?;
    success(ActiveRoomBody { room: Some(room) })
}

pub(super) async fn get_active_rooms_info(
    State(app): State<Arc<App>>,
) -> AuthReply<ActiveRoomsBody> {
    let mut rooms = Vec::new();
    for room in app.rooms.all() {
        if let Some(r) = with_participants(&app, &room).await {
            rooms.push(r);
        }
    }
    if rooms.is_empty() {
        return Err(ApiError::new(StatusCode::NotFound, "no active room found").into());
    }
    success(ActiveRoomsBody { rooms })
}

pub(super) async fn end_room(State(app): State<Arc<App>>, body: Bytes) -> AuthReply<Empty> {
    let req: RoomIdReq = decode(&body)?;
    require("room_id", &req.room_id)?;
    let room = app
        .rooms
        .get_str(&req.room_id)
        .ok_or_else(|| ApiError::new(StatusCode::RoomNotFound, "room not found or not active"))?;
    // A room that ended while we asked has ended all the same.
    let _ = room.end(EndReason::Requested).await;
    success(Empty {})
}

/// The id of a session's analytics file (its `MEETING_ANALYTICS` artifact), if it left one.
async fn analytics_file_id(app: &App, sid: &str) -> Result<Option<String>, ApiError> {
    let filter = Filter {
        room_ids: Vec::new(),
        room_sid: Some(sid.to_owned()),
    };
    let (_, rows) = app
        .store
        .artifacts(
            &filter,
            Some(enclave_proto::history::RoomArtifactType::MeetingAnalytics),
            &Page::new(0, 1, String::new()),
        )
        .await?;
    Ok(rows.into_iter().next().map(|a| a.artifact_id))
}

pub(super) async fn fetch_past_rooms(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<ResultBody<FetchPastRoomsResult>> {
    let req: FetchPastRoomsReq = decode(&body)?;
    let page = Page::new(req.from, req.limit, req.order_by);
    let (total, rows) = app
        .store
        .past_rooms(
            &Filter {
                room_ids: req.room_ids,
                room_sid: None,
            },
            &page,
        )
        .await?;
    if total == 0 {
        return Err(ApiError::new(StatusCode::NotFound, "no room found").into());
    }
    let mut rooms_list = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut info = past_room(r, rfc3339);
        info.analytics_file_id = analytics_file_id(&app, &r.sid).await?;
        rooms_list.push(info);
    }
    success(ResultBody {
        result: Some(FetchPastRoomsResult {
            total_rooms: total,
            from: page.from,
            limit: page.limit,
            order_by: page.order_by,
            rooms_list,
        }),
    })
}

fn to_recording_info(r: &RecordingRow) -> RecordingInfo {
    RecordingInfo {
        record_id: r.record_id.clone(),
        room_id: r.room_id.clone(),
        room_sid: r.room_sid.clone(),
        file_path: r.file_path.clone(),
        file_size: (r.size_mb * 100.0).round() / 100.0,
        creation_time: r.created,
        room_creation_time: r.room_created,
        metadata: r
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok()),
    }
}

async fn recording_row(app: &App, record_id: &str) -> Result<RecordingRow, ApiError> {
    require("record_id", record_id)?;
    app.store
        .recording(record_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NotFound, "recording not found"))
}

pub(super) fn download_token(app: &App, sub: &str, validity: Duration) -> String {
    let now = unix_now() as u64;
    app.keys.sign(
        TokenKind::Download,
        &DownloadClaims {
            iss: app.config.api_key.clone(),
            sub: sub.to_owned(),
            nbf: now,
            exp: now + validity.as_secs(),
        },
    )
}

pub(super) async fn fetch_recordings(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<ResultBody<FetchRecordingsResult>> {
    let req: FetchRecordingsReq = decode(&body)?;
    let page = Page::new(req.from, req.limit, req.order_by);
    let filter = Filter {
        room_ids: req.room_ids,
        room_sid: req.room_sid.filter(|s| !s.is_empty()),
    };
    let (total, rows) = app.store.recordings(&filter, &page).await?;
    if total == 0 {
        return Err(ApiError::new(StatusCode::NotFound, "no recording found").into());
    }
    success(ResultBody {
        result: Some(FetchRecordingsResult {
            total_recordings: total,
            from: page.from,
            limit: page.limit,
            order_by: page.order_by,
            recordings_list: rows.iter().map(to_recording_info).collect(),
        }),
    })
}

pub(super) async fn recording_info(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<RecordingInfoBody> {
    let req: RecordIdReq = decode(&body)?;
    let rec = recording_row(&app, &req.record_id).await?;
    let room = app.store.room_by_sid(&rec.room_sid).await?;
    success(RecordingInfoBody {
        recording_info: Some(to_recording_info(&rec)),
        room_info: room.as_ref().map(|r| past_room(r, plain_datetime)),
    })
}

pub(super) async fn update_recording_metadata(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<Empty> {
    let req: UpdateRecordingMetadataReq = decode(&body)?;
    require("record_id", &req.record_id)?;
    let meta = serde_json::to_string(&req.metadata.unwrap_or_default())
        .expect("recording metadata always serialises");
    if !app
        .store
        .update_recording_metadata(&req.record_id, &meta)
        .await?
    {
        return Err(ApiError::new(StatusCode::NotFound, "recording not found").into());
    }
    success(Empty {})
}

/// Resolves a stored relative path inside `base`, refusing anything that could leave it.
pub(super) fn contained_path(base: &std::path::Path, rel: &str) -> Option<std::path::PathBuf> {
    let rel = std::path::Path::new(rel);
    rel.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then(|| base.join(rel))
}

pub(super) async fn remove_file(base: &std::path::Path, rel: &str) {
    let Some(path) = contained_path(base, rel) else {
        tracing::warn!(
            rel,
            "refusing to delete a path outside the storage directory"
        );
        return;
    };
    match tokio::fs::remove_file(&path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not delete file"),
    }
}

/// Moves a stored file to the same relative path under `backup`.
async fn move_file(
    base: &std::path::Path,
    backup: &std::path::Path,
    rel: &str,
) -> Result<(), ApiError> {
    let (Some(from), Some(to)) = (contained_path(base, rel), contained_path(backup, rel)) else {
        tracing::warn!(rel, "refusing to move a path outside the storage directory");
        return Ok(());
    };
    let failed = |e: std::io::Error| {
        tracing::error!(from = %from.display(), to = %to.display(), error = %e, "could not back up a deleted recording");
        ApiError::new(
            StatusCode::InternalServerError,
            "could not move the recording to the backup directory",
        )
    };
    if let Some(dir) = to.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(failed)?;
    }
    match tokio::fs::rename(&from, &to).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        // Another file system: copy, then remove.
        Err(_) => {
            tokio::fs::copy(&from, &to).await.map_err(failed)?;
            tokio::fs::remove_file(&from).await.map_err(failed)
        }
    }
}

pub(super) async fn delete_recording(State(app): State<Arc<App>>, body: Bytes) -> AuthReply<Empty> {
    let req: RecordIdReq = decode(&body)?;
    let rec = recording_row(&app, &req.record_id).await?;
    match &app.config.recording_backup_path {
        Some(backup) => move_file(&app.config.recording_files_path, backup, &rec.file_path).await?,
        None => remove_file(&app.config.recording_files_path, &rec.file_path).await,
    }
    app.store.delete_recording(&rec.record_id).await?;
    tracing::info!(record_id = %rec.record_id, "recording deleted");
    success(Empty {})
}

/// Registers a merge of a session's (or of listed) recordings into one file; the new recording
/// arrives with `recording_proceeded` (see `recording::merge`).
pub(super) async fn merge_recordings(State(app): State<Arc<App>>, body: Bytes) -> AuthReply<Empty> {
    let req: enclave_proto::history::MergeRecordingsReq = decode(&body)?;
    let all = Page::new(0, enclave_proto::history::MAX_LIMIT, "ASC".into());
    let mut rows = match (req.by_session, req.by_ids) {
        (Some(s), None) => {
            require("by_session.room_sid", &s.room_sid)?;
            if app.store.room_by_sid(&s.room_sid).await?.is_none() {
                return Err(ApiError::new(StatusCode::RoomNotFound, "room not found").into());
            }
            let filter = Filter {
                room_ids: Vec::new(),
                room_sid: Some(s.room_sid.clone()),
            };
            let (_, rows) = app.store.recordings(&filter, &all).await?;
            if rows.is_empty() {
                return Err(ApiError::new(StatusCode::NotFound, "recording not found").into());
            }
            rows.into_iter()
                .filter(|r| !s.exclude_recording_ids.contains(&r.record_id))
                .collect::<Vec<_>>()
        }
        (None, Some(ids)) => {
            require("by_ids.room_id", &ids.room_id)?;
            let mut rows = Vec::new();
            for id in &ids.recording_ids {
                match app.store.recording(id).await? {
                    Some(r) if r.room_id == ids.room_id => rows.push(r),
                    _ => {
                        return Err(ApiError::new(
                            StatusCode::NotFound,
                            "one or more requested recordings were not found",
                        )
                        .into())
                    }
                }
            }
            rows
        }
        _ => {
            return Err(
                ApiError::invalid("merge_scope: give exactly one of by_session or by_ids").into(),
            )
        }
    };
    rows.sort_by_key(|r| r.created);
    if rows.len() < 2 {
        return Err(ApiError::invalid(crate::recording::merge::MergeRefused::TooFew).into());
    }
    let last = rows.last().map(|r| r.room_sid.clone()).unwrap_or_default();
    let room = app
        .store
        .room_by_sid(&last)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::RoomNotFound, "room not found"))?;
    let record_id = app.recorders.merge(room, rows).map_err(|e| match e {
        crate::recording::merge::MergeRefused::Running => {
            ApiError::new(StatusCode::Conflict, e.to_string())
        }
        e => ApiError::invalid(e),
    })?;
    tracing::info!(record_id, "merging recordings");
    Ok(Json(Reply {
        common: CommonResponse::ok("successfully registered new recording merging task"),
        body: Empty {},
    }))
}

pub(super) async fn recording_download_token(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<TokenBody> {
    let req: RecordIdReq = decode(&body)?;
    let rec = recording_row(&app, &req.record_id).await?;
    success(TokenBody {
        token: Some(download_token(
            &app,
            &rec.file_path,
            app.config.download_token_validity,
        )),
    })
}

fn to_artifact_info(a: &ArtifactRow) -> ArtifactInfo {
    ArtifactInfo {
        artifact_id: a.artifact_id.clone(),
        room_id: a.room_id.clone(),
        kind: a.kind,
        created: rfc3339(a.created),
        metadata: serde_json::from_str(&a.metadata).ok(),
    }
}

pub(super) async fn artifact_row(app: &App, artifact_id: &str) -> Result<ArtifactRow, ApiError> {
    require("artifact_id", artifact_id)?;
    app.store
        .artifact(artifact_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NotFound, "artifact not found"))
}

pub(super) async fn fetch_artifacts(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<ResultBody<FetchArtifactsResult>> {
    let req: FetchArtifactsReq = decode(&body)?;
    let page = Page::new(req.from, req.limit, req.order_by);
    let filter = Filter {
        room_ids: req.room_ids,
        room_sid: req.room_sid.filter(|s| !s.is_empty()),
    };
    let (total, rows) = app.store.artifacts(&filter, req.kind, &page).await?;
    if total == 0 {
        return Err(ApiError::new(StatusCode::NotFound, "no artifact found").into());
    }
    success(ResultBody {
        result: Some(FetchArtifactsResult {
            total_artifacts: total,
            from: page.from.into(),
            limit: page.limit.into(),
            order_by: page.order_by,
            kind: req.kind,
            artifacts_list: rows.iter().map(to_artifact_info).collect(),
        }),
    })
}

pub(super) async fn artifact_info(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<ArtifactInfoBody> {
    let req: ArtifactIdReq = decode(&body)?;
    let a = artifact_row(&app, &req.artifact_id).await?;
    let room = app.store.room_by_sid(&a.room_sid).await?;
    success(ArtifactInfoBody {
        artifact_info: Some(to_artifact_info(&a)),
        room_info: room.as_ref().map(|r| past_room(r, rfc3339)),
    })
}

pub(super) fn artifact_file(a: &ArtifactRow) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&a.metadata).ok()?;
    v.get("file_info")?
        .get("file_path")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Deletes an artifact's file (if it has one) and its row.
pub(super) async fn remove_artifact(app: &App, a: &ArtifactRow) -> Result<(), ApiError> {
    if let Some(file) = artifact_file(a) {
        remove_file(&app.config.artifacts_path, &file).await;
    }
    app.store.delete_artifact(&a.artifact_id).await?;
    Ok(())
}

/// Signs a join token for `claims` (issuer, not-before and expiry set here: valid from now for
/// the configured validity); returns it with its expiry.
pub(super) fn sign_join(app: &App, claims: JoinClaims) -> (String, u64) {
    let now = unix_now() as u64;
    let claims = JoinClaims {
        iss: app.config.api_key.clone(),
        nbf: now,
        exp: now + app.config.token_validity.as_secs(),
        ..claims
    };
    (app.keys.sign(TokenKind::Join, &claims), claims.exp)
}

/// A download token for an artifact's file.
pub(super) fn artifact_token(app: &App, a: &ArtifactRow) -> AuthReply<TokenBody> {
    let file = artifact_file(a)
        .ok_or_else(|| ApiError::new(StatusCode::NotFound, "artifact has no downloadable file"))?;
    success(TokenBody {
        token: Some(download_token(
            app,
            &file,
            app.config.download_token_validity,
        )),
    })
}

pub(super) async fn delete_artifact(State(app): State<Arc<App>>, body: Bytes) -> AuthReply<Empty> {
    let req: ArtifactIdReq = decode(&body)?;
    let a = artifact_row(&app, &req.artifact_id).await?;
    remove_artifact(&app, &a).await?;
    success(Empty {})
}

pub(super) async fn artifact_download_token(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<TokenBody> {
    let req: ArtifactIdReq = decode(&body)?;
    let a = artifact_row(&app, &req.artifact_id).await?;
    if !a.kind.is_downloadable() {
        return Err(ApiError::new(
            StatusCode::InvalidParameters,
            format!("'{}' artifact type is not downloadable", a.kind.as_str()),
        )
        .into());
    }
    artifact_token(&app, &a)
}

pub(super) async fn broadcast_to_room(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> AuthReply<Empty> {
    let req: enclave_proto::user::BroadcastToRoomReq = decode(&body)?;
    req.validate().map_err(ApiError::invalid)?;
    let room = app
        .rooms
        .get_str(&req.room_id)
        .ok_or_else(|| ApiError::new(StatusCode::RoomNotFound, "room not found"))?;
    let snap = room
        .snapshot()
        .await
        .map_err(|_| ApiError::new(StatusCode::RoomNotFound, "room not found"))?;
    let mut to: Vec<String> = Vec::new();
    if req.only_to_admins {
        if snap.participants.is_empty() {
            return Err(ApiError::new(StatusCode::UserNotFound, "no online user found").into());
        }
        to.extend(
            snap.participants
                .iter()
                .filter(|p| p.is_admin)
                .map(|p| p.user_id.to_string()),
        );
        if to.is_empty() {
            return Err(
                ApiError::new(StatusCode::UserNotFound, "no online admin user found").into(),
            );
        }
    }
    if let Some(u) = req.to_user_id.clone().filter(|u| !u.is_empty()) {
        if !to.contains(&u) {
            to.push(u);
        }
    }
    let payload = match (&req.chat_msg, &req.notification_msg) {
        (Some(c), _) => ServerMessage::SystemChatMsg {
            message: c.message.clone(),
        },
        (_, Some(n)) => ServerMessage::SystemNotification {
            id: Some(uuid::Uuid::new_v4().to_string()),
            notification_type: n.kind.as_str().to_owned(),
            msg: n.text.clone(),
            with_sound: Some(n.with_sound),
            sent_at: Some((unix_now() * 1000).to_string()),
        },
        (None, None) => unreachable!("validated: exactly one payload"),
    };
    match &app.media {
        Some(media) => media.send_system(room.info.room_id.as_str(), &payload, to),
        None => tracing::warn!("broadcastToRoom: no media runtime, nobody can receive it"),
    }
    success(Empty {})
}
