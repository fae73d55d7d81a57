//! The web client, embedded at build time (see `build.rs`), served at `/` and by relative path.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn asset(path: &str) -> Option<&'static [u8]> {
    WEB_ASSETS.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// The file names under `assets/<kind>/` with the extension `.<kind>` (`js` or `css`), sorted:
/// what `getClientFiles` lists for a page that embeds the client.
pub(super) fn client_files(kind: &str) -> Vec<String> {
    let dir = format!("assets/{kind}/");
    let ext = format!(".{kind}");
    let mut files: Vec<String> = WEB_ASSETS
        .iter()
        .filter_map(|(p, _)| p.strip_prefix(dir.as_str()))
        .filter(|name| name.ends_with(ext.as_str()) && !name.contains('/'))
        .map(str::to_owned)
        .collect();
    files.sort();
    files
}

/// Whether a built web client is embedded.
pub fn has_client() -> bool {
    asset("index.html").is_some()
}

pub(super) async fn index() -> Response {
    match asset("index.html") {
        Some(b) => (
            [
                (header::CONTENT_TYPE, content_type("index.html")),
                (header::CACHE_CONTROL, "no-store"),
            ],
            b,
        )
            .into_response(),
        None => Html(include_str!("index.html")).into_response(),
    }
}

pub(super) async fn file(Path(path): Path<String>) -> Response {
    let path = format!("assets/{path}");
    match asset(&path) {
        // Asset names do not change between builds often enough to matter; a short cache keeps
        // reloads fast without pinning an old client for long.
        Some(b) => (
            [
                (header::CONTENT_TYPE, content_type(&path)),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            b,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub(super) async fn favicon() -> Response {
    match asset("favicon.svg") {
        Some(b) => ([(header::CONTENT_TYPE, "image/svg+xml")], b).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
