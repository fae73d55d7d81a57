//! Documents put on the whiteboard of a plain room: an office or PDF file converted on the
//! server into page images (docs/content.md, "Whiteboard documents").
//!
//! Three ways in, one pipeline: a participant who may draw converts a finished upload of
//! purpose `whiteboard` (`POST /api/whiteboard/convert`); an integrator uploads one
//! (`/auth/room/uploadWhiteboardFile`, multipart, Plug-N-Meet's route); a room is created with
//! `whiteboard_features.preload_file`. The conversion runs in the background in limited
//! children ([`crate::convert`]); its pages are stored as files of purpose `page` and the
//! document is appended to whiteboard document `documents`, which every client follows. A
//! failure is told to whoever asked (a notification) and logged.
//!
//! An end-to-end encrypted room refuses all three: the server would see the document. Its
//! browsers render PDF pages themselves and upload them sealed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode as Http};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use rand::distributions::{Alphanumeric, DistString};
use serde::Serialize;

use enclave_proto::browser::ServerMessage;
use enclave_proto::content::{ContentKind, ConvertStarted, DocId, FileIdBody, FilePurpose};
use enclave_proto::json;
use enclave_proto::reply::{Empty, Reply};
use enclave_proto::{CommonResponse, StatusCode};

use super::caller::{success, Answered, Caller};
use crate::app::App;
use crate::auth::{check_signature, SignedRequest};
use crate::convert::Claim;
use crate::error::ApiError;
use crate::rooms::content::SYSTEM;
use crate::rooms::files::MAX_CHUNK_BYTES;
use crate::rooms::RoomHandle;
use crate::uploads;

/// The refusal of every route here in an end-to-end encrypted room.
const ENCRYPTED: &str =
    "this room is end-to-end encrypted: the server must not see its documents; \
     the browser renders a PDF's pages itself (office files: export them as PDF first)";
/// How long fetching a document from a link may take.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// A page image is stored in chunks of this size (the file store's chunk).
const PAGE_CHUNK: usize = 1024 * 1024;
/// A document's name as shown on the board, in characters.
const MAX_NAME_CHARS: usize = 200;

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/whiteboard/convert", post(convert_upload))
}

/// The multipart route: its signature covers the `Room-Id` header only (Plug-N-Meet's rule; the
/// body is a file), so it cannot sit behind the JSON routes' check.
pub(super) fn auth_routes() -> Router<Arc<App>> {
    Router::new().route(
        "/auth/room/uploadWhiteboardFile",
        post(upload_whiteboard_file),
    )
}

/// The largest body `/auth/room/uploadWhiteboardFile` reads: the whiteboard's file limit and
/// room for the multipart framing.
pub(super) fn upload_body_limit(app: &App) -> usize {
    let mb = app.config.room_policy.whiteboard_max_size_mb as usize;
    mb.saturating_mul(1024 * 1024).saturating_add(64 * 1024)
}

/// A participant who may draw puts a finished `whiteboard` upload on the board.
async fn convert_upload(
    State(app): State<Arc<App>>,
    c: Caller,
    body: Bytes,
) -> Answered<ConvertStarted> {
    if c.room.info.is_e2ee() {
        return Err(ApiError::invalid(ENCRYPTED));
    }
    super::content::may_write(&c, ContentKind::Whiteboard)?;
    let req: FileIdBody = json::decode(&body).map_err(ApiError::invalid)?;
    let id = req.file_id.clone();
    let info = c
        .room
        .files(move |f| f.info(&id))
        .await?
        .map_err(ApiError::invalid)?;
    if info.purpose != FilePurpose::Whiteboard || !info.complete {
        return Err(ApiError::invalid(format!(
            "file_id: {} is not a finished upload of purpose whiteboard",
            req.file_id
        )));
    }
    let claim = claim(&app, &c.room)?;
    let dir = uploads::file_dir(&app.config.uploads_path, &c.room.info.sid, &req.file_id);
    let mut bytes = Vec::with_capacity(info.size as usize);
    for index in 0..info.chunks {
        let chunk = tokio::fs::read(dir.join(index.to_string()))
            .await
            .map_err(|e| ApiError::internal("could not read the uploaded document", e))?;
        bytes.extend_from_slice(&chunk);
    }
    let document_id = new_document_id();
    tracing::info!(room_id = %c.room.info.room_id, by = %c.user, file_id = %req.file_id, document_id, bytes = bytes.len(), "whiteboard document to convert");
    tokio::spawn(put_on_board(
        app.clone(),
        c.room.clone(),
        claim,
        Job {
            bytes,
            name: info.name,
            from: c.user.to_string(),
            tell: Some(c.user.to_string()),
            document_id: document_id.clone(),
        },
    ));
    success(ConvertStarted { document_id })
}

/// `/auth/room/uploadWhiteboardFile`: form field `document` (a file) or `document_link` (a URL
/// the server fetches). Errors carry a real HTTP status, as Plug-N-Meet answers them.
async fn upload_whiteboard_file(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    match upload(app, headers, multipart).await {
        Ok(()) => Json(Reply {
            common: CommonResponse::ok("file uploaded successfully"),
            body: Empty {},
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn upload(
    app: Arc<App>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(), ApiError> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let content_type = h("content-type").unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(bad(
            "send multipart/form-data with a document or document_link field",
        ));
    }
    let signed = SignedRequest {
        api_key: h("API-KEY"),
        signature: h("HASH-SIGNATURE"),
        content_type: Some(content_type),
        room_id_header: h("Room-Id"),
        body: &[],
    };
    if let Err(e) = check_signature(&signed, &app.config.api_key, &app.config.api_secret) {
        tracing::info!(error = %e, "whiteboard upload refused");
        return Err(ApiError::new(e.status_code(), e.to_string()).with_http(Http::UNAUTHORIZED));
    }
    let room_id = h("Room-Id").unwrap_or_default();
    let room = app
        .rooms
        .get_str(room_id)
        .ok_or_else(|| bad(format!("Room-Id: room {room_id:?} is not active")))?;
    if room.info.is_e2ee() {
        return Err(bad(ENCRYPTED));
    }
    let mut multipart = multipart.map_err(|e| bad(format!("the form could not be read: {e}")))?;
    let max = upload_body_limit(&app) - 64 * 1024;
    let mut document: Option<(String, Vec<u8>)> = None;
    let mut link: Option<String> = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("the form could not be read: {e}")))?
    {
        match field.name() {
            Some("document") => {
                let name = field.file_name().unwrap_or("document").to_owned();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| bad(format!("document: could not be read: {e}")))?;
                document = Some((name, bytes.to_vec()));
            }
            Some("document_link") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| bad(format!("document_link: could not be read: {e}")))?;
                link = Some(text.trim().to_owned());
            }
            _ => {}
        }
    }
    let claim = claim(&app, &room)?;
    let (name, bytes) = match (document, link) {
        (Some(d), _) => d,
        (None, Some(url)) if !url.is_empty() => fetch(&url, max).await.map_err(bad)?,
        _ => {
            return Err(bad(
                "a document (file) or document_link (URL) field is required",
            ))
        }
    };
    if bytes.len() > max {
        return Err(bad(format!(
            "document: {} bytes, more than the whiteboard's limit of {max}",
            bytes.len()
        )));
    }
    let document_id = new_document_id();
    tracing::info!(room_id = %room.info.room_id, document_id, bytes = bytes.len(), "whiteboard document uploaded through the API");
    tokio::spawn(put_on_board(
        app.clone(),
        room,
        claim,
        Job {
            bytes,
            name,
            from: SYSTEM.to_owned(),
            tell: None,
            document_id,
        },
    ));
    Ok(())
}

/// `whiteboard_features.preload_file` of a new plain room: fetched and put on its board in the
/// background (at most `max_size_whiteboard_file`); an encrypted room ignores it.
pub(super) fn preload(app: Arc<App>, room: RoomHandle, url: String) {
    if room.info.is_e2ee() {
        tracing::warn!(room_id = %room.info.room_id, "preload_file ignored: the room is end-to-end encrypted and the server must not see its documents");
        return;
    }
    let Some(claim) = app.conversions.claim(room.info.room_id.as_str()) else {
        return;
    };
    tokio::spawn(async move {
        let max = upload_body_limit(&app) - 64 * 1024;
        match fetch(&url, max).await {
            Ok((name, bytes)) => {
                let job = Job {
                    bytes,
                    name,
                    from: SYSTEM.to_owned(),
                    tell: None,
                    document_id: new_document_id(),
                };
                put_on_board(app, room, claim, job).await;
            }
            Err(e) => {
                tracing::warn!(room_id = %room.info.room_id, error = %e, "preload_file could not be fetched");
            }
        }
    });
}

/// One document to convert.
struct Job {
    bytes: Vec<u8>,
    name: String,
    /// Who the pages and the document are from: the uploader, or `system`.
    from: String,
    /// Whom to tell when it fails (the uploader), if anyone.
    tell: Option<String>,
    document_id: String,
}

/// The room's claim on converting, or the 409 Plug-N-Meet answers while one runs.
fn claim(app: &App, room: &RoomHandle) -> Result<Claim, ApiError> {
    if let Err(missing) = app.conversions.converter().tools_available() {
        return Err(ApiError::new(
            StatusCode::InternalServerError,
            format!("this server cannot convert documents: {missing}"),
        ));
    }
    app.conversions
        .claim(room.info.room_id.as_str())
        .ok_or_else(|| {
            // Plug-N-Meet's words for it.
            ApiError::invalid("Another whiteboard file upload is already in progress for this room")
                .with_http(Http::CONFLICT)
        })
}

async fn put_on_board(app: Arc<App>, room: RoomHandle, claim: Claim, job: Job) {
    let started = std::time::Instant::now();
    let result = convert_and_store(&app, &room, &job).await;
    drop(claim);
    match result {
        Ok(pages) => {
            tracing::info!(room_id = %room.info.room_id, document_id = job.document_id, pages, ms = started.elapsed().as_millis() as u64, "whiteboard document on the board");
        }
        Err(why) => {
            tracing::warn!(room_id = %room.info.room_id, document_id = job.document_id, error = %why, "whiteboard document not converted");
            if let (Some(user), Some(media)) = (&job.tell, &app.media) {
                media.send_system(
                    room.info.room_id.as_str(),
                    &ServerMessage::SystemNotification {
                        id: None,
                        notification_type: "error".into(),
                        msg: format!("{:?} could not be put on the whiteboard: {why}", job.name),
                        with_sound: None,
                        sent_at: None,
                    },
                    vec![user.clone()],
                );
            }
        }
    }
}

#[derive(Serialize)]
struct BoardDocument<'a> {
    document_id: &'a str,
    name: &'a str,
    pages: Vec<BoardPage>,
}

#[derive(Serialize)]
struct BoardPage {
    file_id: String,
    width: u32,
    height: u32,
}

/// Converts in a fresh work directory (removed afterwards), stores the pages, appends the
/// document. Returns the number of pages, or why it failed (said to the uploader).
async fn convert_and_store(app: &Arc<App>, room: &RoomHandle, job: &Job) -> Result<usize, String> {
    let _turn = app.conversions.turn().await;
    let work =
        app.config
            .uploads_path
            .join(format!("{}{}", uploads::CONVERT_PREFIX, new_document_id()));
    let result = async {
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| format!("the server could not make a work directory: {e}"))?;
        let input = work.join("upload");
        tokio::fs::write(&input, &job.bytes)
            .await
            .map_err(|e| format!("the server could not store the document: {e}"))?;
        let pages = app
            .conversions
            .converter()
            .convert(&input, &work.join("out"))
            .await
            .map_err(|e| e.to_string())?;
        let name: String = job.name.chars().take(MAX_NAME_CHARS).collect();
        let mut stored = Vec::with_capacity(pages.len());
        for (n, page) in pages.iter().enumerate() {
            let png = tokio::fs::read(&page.path)
                .await
                .map_err(|e| format!("page {}: could not be read: {e}", n + 1))?;
            let chunks: Vec<Vec<u8>> = png
                .chunks(PAGE_CHUNK.min(MAX_CHUNK_BYTES as usize))
                .map(<[u8]>::to_vec)
                .collect();
            let info = super::files::store_server_file(
                app,
                room,
                FilePurpose::Page,
                format!("{name} {}.png", n + 1),
                "image/png".into(),
                &job.from,
                chunks,
            )
            .await
            .map_err(|e| format!("page {}: {}", n + 1, e.msg))?;
            stored.push(BoardPage {
                file_id: info.file_id,
                width: page.width,
                height: page.height,
            });
        }
        let count = stored.len();
        let doc = serde_json::to_vec(&BoardDocument {
            document_id: &job.document_id,
            name: &name,
            pages: stored,
        })
        .map_err(|e| format!("the document could not be written: {e}"))?;
        // Bodies are base64 of the client's bytes, as a browser in a plain room sends them.
        let body = base64::engine::general_purpose::STANDARD.encode(doc);
        let documents = DocId::parse("documents").expect("a valid document id");
        super::content::append_as(
            app,
            room,
            ContentKind::Whiteboard,
            documents,
            &job.from,
            body,
        )
        .await
        .map_err(|e| e.msg)?;
        Ok(count)
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

/// Fetches a document from `url` (http or https), at most `max` bytes; its name is the URL's
/// last path segment.
async fn fetch(url: &str, max: usize) -> Result<(String, Vec<u8>), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("document_link: {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "document_link: {url:?} is not an http or https URL"
        ));
    }
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .unwrap_or("document")
        .to_owned();
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| format!("the server could not fetch documents: {e}"))?;
    let mut res = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| format!("document_link: could not be fetched: {e}"))?;
    if !res.status().is_success() {
        return Err(format!(
            "document_link: the server answered {}",
            res.status()
        ));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("document_link: the download broke off: {e}"))?
    {
        if bytes.len() + chunk.len() > max {
            return Err(format!(
                "document_link: larger than the whiteboard's limit of {max} bytes"
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((name, bytes))
}

fn bad(msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(msg).with_http(Http::BAD_REQUEST)
}

fn new_document_id() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 16)
}
