//! Files in the browser API (`/api/files/*`, `docs/content.md`): uploaded in chunks, kept for
//! the session, read by any participant.
//!
//! The room's task knows what was announced and which chunks arrived
//! ([`crate::rooms::files`]); the bytes are at `<uploads>/<session sid>/<file_id>/<index>`. A
//! file id is parsed ([`FileId`]: 16–64 of `A-Z a-z 0-9 _ -`) and an index is a number, so
//! nothing else from a request (never a file's name) becomes part of a path. A chunk is
//! written to a temporary name and renamed, so a reader never sees half of one. The session's
//! directory is removed when the session ends ([`remove_session`]) and, for a session an
//! earlier process left behind, at start ([`remove_leftovers`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode as Http};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::distributions::{Alphanumeric, DistString};

use enclave_proto::content::{
    ChunkReceived, ContentKind, FileId, FileIdBody, FileInfo, FilePurpose, FileStartReq,
};
use enclave_proto::ids::SessionId;
use enclave_proto::json;

use super::caller::{forbidden, success, Answered, Caller};
use crate::app::App;
use crate::error::ApiError;
use crate::rooms::files::{purpose_limit, FileError};
use crate::rooms::{locks, RoomHandle, RoomInfo};

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/files/start", post(start))
        .route(
            "/api/files/{file_id}/chunk/{index}",
            get(download).put(upload),
        )
        .route("/api/files/finish", post(finish))
        .route("/api/files/info", post(info))
}

/// A refused file request: `status:false` with the reason.
fn refused(e: FileError) -> ApiError {
    ApiError::invalid(e)
}

/// The directory of a session's files.
pub(crate) fn session_dir(uploads: &Path, info: &RoomInfo) -> PathBuf {
    uploads.join(info.sid.to_string())
}

fn file_dir(uploads: &Path, info: &RoomInfo, id: &FileId) -> PathBuf {
    session_dir(uploads, info).join(id.as_str())
}

fn parse_path(file_id: &str, index: &str) -> Result<(FileId, u32), ApiError> {
    let id = FileId::parse(file_id).map_err(|e| ApiError::invalid(format!("file_id: {e}")))?;
    let index = index
        .parse::<u32>()
        .map_err(|_| ApiError::invalid(format!("index: {index:?} is not a chunk number")))?;
    Ok((id, index))
}

async fn start(c: Caller, body: Bytes) -> Answered<FileIdBody> {
    let req: FileStartReq = json::decode(&body).map_err(ApiError::invalid)?;
    let admin = c.claims.is_admin;
    let l = c.invitation.metadata.lock_settings.as_ref();
    match req.purpose {
        FilePurpose::Chat if locks::chat_file_locked(admin, l) => {
            return Err(forbidden("sharing files in the chat is locked for you"));
        }
        FilePurpose::Chat => {}
        FilePurpose::Whiteboard | FilePurpose::Page => {
            super::content::may_write(&c, ContentKind::Whiteboard)?;
        }
    }
    let sealed = c.room.info.is_e2ee();
    let max =
        purpose_limit(req.purpose, c.room.info.features(), sealed, &req.name).map_err(refused)?;
    let id = req.file_id.clone();
    let from = c.user.to_string();
    let purpose = req.purpose;
    c.room
        .files(move |f| f.start(req, &from, max, sealed))
        .await?
        .map_err(refused)?;
    tracing::info!(room_id = %c.room.info.room_id, user_id = %c.user, file_id = %id, purpose = purpose.as_str(), "upload started");
    success(FileIdBody { file_id: id })
}

async fn upload(
    State(app): State<Arc<App>>,
    c: Caller,
    UrlPath((file_id, index)): UrlPath<(String, String)>,
    body: Bytes,
) -> Answered<ChunkReceived> {
    let (id, index) = parse_path(&file_id, &index)?;
    let len = body.len() as u64;
    let from = c.user.to_string();
    let i = id.clone();
    c.room
        .files(move |f| f.begin_chunk(&i, index, len, &from))
        .await?
        .map_err(refused)?;
    let dir = file_dir(&app.config.uploads_path, &c.room.info, &id);
    let written = write_chunk(&dir, index, &body).await;
    if let Err(e) = &written {
        tracing::error!(error = %e, file_id = %id, index, "could not store a chunk");
    }
    let ok = written.is_ok().then_some(len);
    let i = id.clone();
    let received = match c.room.files(move |f| f.end_chunk(&i, index, ok)).await {
        Ok(n) => n,
        Err(gone) => {
            // The session ended while the chunk was written (and its directory was removed
            // before this write made it again).
            remove_session(&app.config.uploads_path, &c.room.info).await;
            return Err(gone.into());
        }
    };
    if written.is_err() {
        return Err(ApiError::internal("could not store the chunk", "see above"));
    }
    success(ChunkReceived { received })
}

/// Writes a chunk to a temporary name beside it, then renames it into place.
async fn write_chunk(dir: &Path, index: u32, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!(
        "{index}.{}.part",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 12)
    ));
    tokio::fs::write(&tmp, bytes).await?;
    if let Err(e) = tokio::fs::rename(&tmp, dir.join(index.to_string())).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    Ok(())
}

async fn finish(c: Caller, body: Bytes) -> Answered<FileInfo> {
    let req: FileIdBody = json::decode(&body).map_err(ApiError::invalid)?;
    let from = c.user.to_string();
    let id = req.file_id.clone();
    let info = c
        .room
        .files(move |f| f.finish(&id, &from))
        .await?
        .map_err(refused)?;
    tracing::info!(room_id = %c.room.info.room_id, user_id = %c.user, file_id = %req.file_id, size = info.size, "upload finished");
    success(info)
}

async fn info(c: Caller, body: Bytes) -> Answered<FileInfo> {
    let req: FileIdBody = json::decode(&body).map_err(ApiError::invalid)?;
    let info = c
        .room
        .files(move |f| f.info(&req.file_id))
        .await?
        .map_err(refused)?;
    success(info)
}

async fn download(
    State(app): State<Arc<App>>,
    c: Caller,
    UrlPath((file_id, index)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, index) = parse_path(&file_id, &index)?;
    let i = id.clone();
    c.room
        .files(move |f| f.readable(&i, index))
        .await?
        .map_err(|e| refused(e).with_http(Http::NOT_FOUND))?;
    let path = file_dir(&app.config.uploads_path, &c.room.info, &id).join(index.to_string());
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::internal("could not read the chunk", e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}

/// Stores a finished file the server made itself (e.g. a page image of a converted document)
/// as `from` (a participant's identity, or [`crate::rooms::content::SYSTEM`]): writes its
/// chunks and registers it with the room. Returns its info (with the id drawn for it).
#[allow(dead_code)] // The document converter calls it.
pub(crate) async fn store_server_file(
    app: &App,
    room: &RoomHandle,
    purpose: FilePurpose,
    name: String,
    mime: String,
    from: &str,
    chunks: Vec<Vec<u8>>,
) -> Result<FileInfo, ApiError> {
    let id = FileId::parse(&Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24))
        .map_err(|e| ApiError::internal("could not draw a file id", e))?;
    let dir = file_dir(&app.config.uploads_path, &room.info, &id);
    for (index, chunk) in (0u32..).zip(&chunks) {
        if let Err(e) = write_chunk(&dir, index, chunk).await {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return Err(ApiError::internal("could not store a file", e));
        }
    }
    let lens: Vec<u64> = chunks.iter().map(|c| c.len() as u64).collect();
    let from = from.to_owned();
    let i = id.clone();
    let registered = room
        .files(move |f| f.register_finished(i, purpose, name, mime, &from, &lens))
        .await;
    match registered {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(e)) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            Err(refused(e))
        }
        Err(gone) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            Err(gone.into())
        }
    }
}

/// Removes a session's files (its session ended).
pub(crate) async fn remove_session(uploads: &Path, info: &RoomInfo) {
    let dir = session_dir(uploads, info);
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => tracing::info!(sid = %info.sid, "session files removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(error = %e, sid = %info.sid, "could not remove the session's files")
        }
    }
}

/// At start no session is live: removes every session directory an earlier process left
/// (only directories named like a session id, so a misconfigured path loses nothing else).
pub(crate) async fn remove_leftovers(uploads: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(uploads).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let is_session = name.to_str().is_some_and(|n| SessionId::parse(n).is_ok());
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        if is_session && is_dir {
            match tokio::fs::remove_dir_all(entry.path()).await {
                Ok(()) => tracing::info!(sid = ?name, "files of an earlier session removed"),
                Err(e) => {
                    tracing::error!(error = %e, sid = ?name, "could not remove an earlier session's files")
                }
            }
        }
    }
}
