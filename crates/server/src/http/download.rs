//! `GET /download/{recording,artifact}/<token>`: the token is a download JWT whose subject is
//! the file's path relative to its storage directory.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode as Http};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use crate::app::App;
use crate::auth::{DownloadClaims, TokenError, TokenKind};

pub(super) async fn recording(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    serve(&app, &token, &app.config.recording_files_path).await
}

pub(super) async fn artifact(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    serve(&app, &token, &app.config.artifacts_path).await
}

async fn serve(app: &App, token: &str, base: &std::path::Path) -> Response {
    let claims: DownloadClaims =
        match app
            .keys
            .verify(TokenKind::Download, &app.config.api_key, token)
        {
            Ok(c) => c,
            Err(e @ TokenError::Expired) => {
                return (Http::UNAUTHORIZED, e.to_string()).into_response()
            }
            Err(e) => return (Http::UNAUTHORIZED, e.to_string()).into_response(),
        };
    let Some(path) = super::api::contained_path(base, &claims.sub) else {
        return (Http::BAD_REQUEST, "invalid file path").into_response();
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return (Http::NOT_FOUND, "requested file not found").into_response(),
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("download")
        .replace('"', "");
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response()
}

/// `GET /download/uploadedFile/<sid>/<file_id>`: a file of a session whose files the server
/// keeps (`upload_file_settings.keep_forever`, plain rooms only). No token, as Plug-N-Meet
/// serves them: the session id (a random UUID) in the path is what guards it. A live session's
/// files are not here (participants fetch them through `/api/files` with their token).
/// Served as an attachment of no particular type, so a kept HTML file never renders on this
/// origin.
pub(super) async fn uploaded_file(
    State(app): State<Arc<App>>,
    Path((sid, file_id)): Path<(String, String)>,
) -> Response {
    let not_found = || (Http::NOT_FOUND, "requested file not found").into_response();
    let (Ok(sid), Ok(id)) = (
        enclave_proto::ids::SessionId::parse(&sid),
        enclave_proto::content::FileId::parse(&file_id),
    ) else {
        return not_found();
    };
    let Some((info, dir)) = crate::uploads::kept_file(&app.config.uploads_path, &sid, &id).await
    else {
        return not_found();
    };
    let mut bytes = Vec::with_capacity(info.size as usize);
    for index in 0..info.chunks {
        match tokio::fs::read(dir.join(index.to_string())).await {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(_) => return not_found(),
        }
    }
    // The name as the uploader gave it, reduced to what a header can carry safely.
    let name: String = info
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response()
}
