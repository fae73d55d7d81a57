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
