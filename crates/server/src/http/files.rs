//! Files in the browser API (`/api/files/*`, `docs/content.md`): uploaded in chunks, kept for
//! the session, read by any participant.
//!
//! The room's task knows what was announced and which chunks arrived
//! ([`crate::rooms::files`]); the bytes are on disk ([`crate::uploads`]). A file id is parsed
//! ([`FileId`]: 16–64 of `A-Z a-z 0-9 _ -`) and an index is a number, so nothing else from a
//! request (never a file's name) becomes part of a path.

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
use enclave_proto::json;

use super::caller::{forbidden, success, Answered, Caller};
use crate::app::App;
use crate::error::ApiError;
use crate::rooms::files::{purpose_limit, FileError};
use crate::rooms::{locks, RoomHandle};
use crate::uploads;

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
    // Checked, written and recorded in a task of its own: a request dropped half-way (the
    // client went away) must not leave the chunk marked as being written, which would block
    // `finish` for good.
    let task = store_chunk(
        c.room.clone(),
        app.config.uploads_path.clone(),
        c.user.to_string(),
        id,
        index,
        body,
    );
    let received = tokio::spawn(task)
        .await
        .map_err(|e| ApiError::internal("could not store the chunk", e))??;
    success(ChunkReceived { received })
}

/// Chunk `index` of file `id` from `from`: the room checks and marks it, it is written, the
/// room records it (or forgets it if the write failed). Returns how many chunks the file holds.
async fn store_chunk(
    room: RoomHandle,
    uploads_path: std::path::PathBuf,
    from: String,
    id: FileId,
    index: u32,
    body: Bytes,
) -> Result<u32, ApiError> {
    let len = body.len() as u64;
    let i = id.clone();
    room.files(move |f| f.begin_chunk(&i, index, len, &from))
        .await?
        .map_err(refused)?;
    let dir = uploads::file_dir(&uploads_path, &room.info.sid, &id);
    let written = uploads::write_chunk(&dir, index, &body).await;
    let ok = written.as_ref().ok().map(|()| len);
    let i = id.clone();
    let received = match room.files(move |f| f.end_chunk(&i, index, ok)).await {
        Ok(n) => n,
        Err(gone) => {
            // The session ended while the chunk was written (and its directory may have been
            // removed before this write made it again).
            uploads::remove_session(&uploads_path, &room.info.sid).await;
            return Err(gone.into());
        }
    };
    if let Err(e) = written {
        return Err(ApiError::internal(
            "could not store the chunk",
            format!("file {id} chunk {index}: {e}"),
        ));
    }
    Ok(received)
}

async fn finish(State(app): State<Arc<App>>, c: Caller, body: Bytes) -> Answered<FileInfo> {
    let req: FileIdBody = json::decode(&body).map_err(ApiError::invalid)?;
    let from = c.user.to_string();
    let id = req.file_id.clone();
    let info = c
        .room
        .files(move |f| f.finish(&id, &from))
        .await?
        .map_err(refused)?;
    tracing::info!(room_id = %c.room.info.room_id, user_id = %c.user, file_id = %req.file_id, size = info.size, "upload finished");
    let dir = uploads::file_dir(&app.config.uploads_path, &c.room.info.sid, &req.file_id);
    if let Err(e) = uploads::write_meta(&dir, &info).await {
        // Only a kept session needs it (to serve the file after the session).
        tracing::error!(error = %e, file_id = %req.file_id, "could not write the file's info");
    }
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
    let path =
        uploads::file_dir(&app.config.uploads_path, &c.room.info.sid, &id).join(index.to_string());
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
    let dir = uploads::file_dir(&app.config.uploads_path, &room.info.sid, &id);
    for (index, chunk) in (0u32..).zip(&chunks) {
        if let Err(e) = uploads::write_chunk(&dir, index, chunk).await {
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
        Ok(Ok(info)) => {
            if let Err(e) = uploads::write_meta(&dir, &info).await {
                tracing::error!(error = %e, file_id = %info.file_id, "could not write the file's info");
            }
            Ok(info)
        }
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use enclave_proto::content::DocId;

    use super::*;
    use crate::rooms::content::SYSTEM;

    #[tokio::test]
    async fn the_server_stores_its_own_files_and_writes_documents_as_system() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "a-test-secret-0123456789abcdef-01";
        let app = App::new(crate::ServerConfig::for_tests(dir.path(), "key", secret))
            .await
            .unwrap();
        let body = r#"{"room_id":"r","metadata":{"room_title":"R","room_features":{}}}"#;
        let req = Request::post("/auth/room/create")
            .header("Content-Type", "application/json")
            .header("API-KEY", "key")
            .header("HASH-SIGNATURE", crate::auth::sign(secret, body.as_bytes()))
            .body(Body::from(body))
            .unwrap();
        let res = crate::http::router(app.clone()).oneshot(req).await.unwrap();
        assert!(res.status().is_success());
        let room = app.rooms.get_str("r").unwrap();

        let info = store_server_file(
            &app,
            &room,
            FilePurpose::Page,
            "page-1.png".into(),
            "image/png".into(),
            SYSTEM,
            vec![b"abc".to_vec(), b"de".to_vec()],
        )
        .await
        .unwrap();
        assert!(info.complete);
        assert_eq!((info.size, info.chunks, info.from.as_str()), (5, 2, SYSTEM));
        let id = FileId::parse(&info.file_id).unwrap();
        let on_disk = uploads::file_dir(&app.config.uploads_path, &room.info.sid, &id).join("1");
        assert_eq!(std::fs::read(on_disk).unwrap(), b"de");
        let i = id.clone();
        room.files(move |f| f.readable(&i, 1))
            .await
            .unwrap()
            .unwrap();

        let update = format!(
            r#"{{"document_id":"d1","name":"slides.pdf","pages":[{{"file_id":"{id}","width":800,"height":600}}]}}"#
        );
        let doc = DocId::parse("documents").unwrap();
        let seq = super::super::content::append_as(
            &app,
            &room,
            ContentKind::Whiteboard,
            doc.clone(),
            SYSTEM,
            update.clone(),
        )
        .await
        .unwrap();
        assert_eq!(seq, 1);
        let log = room
            .documents(move |d| d.log(ContentKind::Whiteboard, &doc, 0))
            .await
            .unwrap()
            .into_reply();
        assert_eq!(log.updates[0].from, SYSTEM);
        assert_eq!(log.updates[0].body, update);
    }
}
