//! The HTTP edge: routes, the `/auth` signature check, body limits, tracing and metrics.

mod analytics;
mod api;
mod breakout;
pub(crate) mod browser;
pub(crate) mod caller;
pub(crate) mod content;
mod download;
pub(crate) mod files;
pub mod https;
pub mod listener;
mod polls;
pub(crate) mod rtc;
pub mod web;
mod whiteboard;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode as Http};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

use enclave_proto::StatusCode;

use crate::app::App;
use crate::auth::{check_signature, SignedRequest};
use crate::config::IpNet;
use crate::error::ApiError;
use crate::metrics::HttpLabels;

/// The whole HTTP surface of the server.
pub fn router(app: Arc<App>) -> Router {
    router_with(app, Router::new())
}

/// The server's router with `extra` routes merged under the same `/auth` signature check.
/// Benchmarks use it to add a ceiling endpoint that does nothing but the check.
pub fn router_with(app: Arc<App>, extra_auth: Router<Arc<App>>) -> Router {
    let auth = Router::new()
        .route("/auth/getClientFiles", post(api::get_client_files))
        .route("/auth/room/create", post(api::create_room))
        .route("/auth/room/getJoinToken", post(api::get_join_token))
        .route("/auth/room/isRoomActive", post(api::is_room_active))
        .route(
            "/auth/room/getActiveRoomInfo",
            post(api::get_active_room_info),
        )
        .route(
            "/auth/room/getActiveRoomsInfo",
            post(api::get_active_rooms_info),
        )
        .route("/auth/room/endRoom", post(api::end_room))
        .route("/auth/room/fetchPastRooms", post(api::fetch_past_rooms))
        .route("/auth/room/broadcastToRoom", post(api::broadcast_to_room))
        .route("/auth/recording/fetch", post(api::fetch_recordings))
        .route("/auth/recording/info", post(api::recording_info))
        .route("/auth/recording/recordingInfo", post(api::recording_info))
        .route(
            "/auth/recording/updateMetadata",
            post(api::update_recording_metadata),
        )
        .route("/auth/recording/delete", post(api::delete_recording))
        .route(
            "/auth/recording/mergeRecordings",
            post(api::merge_recordings),
        )
        .route(
            "/auth/recording/getDownloadToken",
            post(api::recording_download_token),
        )
        .route("/auth/analytics/fetch", post(analytics::fetch))
        .route("/auth/analytics/delete", post(analytics::delete))
        .route(
            "/auth/analytics/getDownloadToken",
            post(analytics::download_token_for),
        )
        .route("/auth/artifact/fetch", post(api::fetch_artifacts))
        .route("/auth/artifact/info", post(api::artifact_info))
        .route("/auth/artifact/delete", post(api::delete_artifact))
        .route(
            "/auth/artifact/getDownloadToken",
            post(api::artifact_download_token),
        )
        .merge(extra_auth)
        .route_layer(middleware::from_fn_with_state(app.clone(), check_auth))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            guard_credentials,
        ));
    // Routes whose credentials are tokens: a 401 counts against the caller's address.
    let tokens = Router::new()
        .route("/download/recording/{token}", get(download::recording))
        .route("/download/artifact/{token}", get(download::artifact))
        .route("/download/analytics/{token}", get(download::artifact))
        .route(
            "/download/uploadedFile/{sid}/{file_id}",
            get(download::uploaded_file),
        )
        .merge(rtc::routes())
        .merge(browser::routes())
        .merge(polls::routes())
        .merge(breakout::routes())
        .merge(content::routes())
        .merge(files::routes())
        .merge(whiteboard::routes())
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            guard_credentials,
        ));

    let mut r = Router::new()
        .route("/", get(web::index))
        .route("/assets/{*path}", get(web::file))
        .route("/favicon.svg", get(web::favicon))
        .route("/healthCheck", any(health_check))
        .merge(https::routes())
        .merge(auth)
        .merge(tokens)
        .merge(
            whiteboard::auth_routes().route_layer(middleware::from_fn_with_state(
                app.clone(),
                guard_credentials,
            )),
        );
    let p = &app.config.prometheus;
    if p.enable && p.listen.is_none() {
        r = r.merge(metrics_router(&app));
    }
    let csp = content_security_policy(&app.config);
    r.fallback(|| async { (Http::NOT_FOUND, "not found") })
        .layer(middleware::from_fn_with_state(csp, security_headers))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            https::plain_http_policy,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), read_body))
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_else(|| "unmatched".into());
            tracing::info_span!("http", method = %req.method(), route)
        }))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([
                    Method::POST,
                    Method::GET,
                    Method::PUT,
                    Method::OPTIONS,
                    Method::HEAD,
                ])
                .allow_headers(Any),
        )
        .with_state(app)
}

/// Reads the body (up to the configured limit) and checks `API-KEY` and `HASH-SIGNATURE`
/// before any handler runs. Failures are 401 with Plug-N-Meet's messages.
///
/// Two shapes are refused because a signature over them would not vouch for what a handler
/// reads:
/// - `multipart/form-data` (before the signature is looked at): Plug-N-Meet signs only the
///   `Room-Id` header there (the body is a file), and no route here takes a file;
/// - a body that is not a JSON object (after it): every handler reads one, and the only other
///   text signed with the API secret, a webhook's JWT, is base64url.
async fn check_auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type
        .to_ascii_lowercase()
        .contains("multipart/form-data")
    {
        return ApiError::new(
            StatusCode::InvalidParameters,
            "multipart/form-data is not accepted on this route; send the JSON body",
        )
        .with_http(Http::UNSUPPORTED_MEDIA_TYPE)
        .into_response();
    }
    let limit = app.config.max_body_bytes;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::InvalidParameters,
                format!("request body is larger than the limit of {limit} bytes"),
            )
            .with_http(Http::PAYLOAD_TOO_LARGE)
            .into_response()
        }
    };
    let h = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let signed = SignedRequest {
        api_key: h("API-KEY"),
        signature: h("HASH-SIGNATURE"),
        content_type: h(header::CONTENT_TYPE.as_str()),
        room_id_header: h("Room-Id"),
        body: &bytes,
    };
    if let Err(e) = check_signature(&signed, &app.config.api_key, &app.config.api_secret) {
        tracing::info!(error = %e, "API request refused");
        return ApiError::new(e.status_code(), e.to_string())
            .with_http(Http::UNAUTHORIZED)
            .into_response();
    }
    if !is_json_object_or_empty(&bytes) {
        // What a handler's decoder would answer, said before any handler can run.
        return ApiError::invalid("(body): the request body must be a JSON object").into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Reads a request's whole body before routing, within `conn_limits.body_read_timeout` in all
/// (not per chunk: a client trickling one byte at a time is cut off) and `max_body_bytes`.
/// Every handler reads a small JSON body whole anyway; requests without one pass untouched.
async fn read_body(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let limit = body_limit(
        &parts.method,
        parts.uri.path(),
        app.config.max_body_bytes,
        whiteboard::upload_body_limit(&app),
    );
    let timeout = app.config.conn_limits.body_read_timeout;
    let bytes = match tokio::time::timeout(timeout, read_limited(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(BodyRead::TooLarge)) => {
            return ApiError::new(
                StatusCode::InvalidParameters,
                format!("request body is larger than the limit of {limit} bytes"),
            )
            .with_http(Http::PAYLOAD_TOO_LARGE)
            .into_response()
        }
        Ok(Err(BodyRead::Broken)) => {
            return ApiError::new(
                StatusCode::InvalidParameters,
                "request body could not be read (the connection broke off)",
            )
            .with_http(Http::BAD_REQUEST)
            .into_response()
        }
        Err(_) => {
            tracing::info!(
                secs = timeout.as_secs(),
                "request body not received in time"
            );
            return ApiError::new(
                StatusCode::InvalidParameters,
                format!(
                    "request body was not received within {} s",
                    timeout.as_secs()
                ),
            )
            .with_http(Http::REQUEST_TIMEOUT)
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The body limit of a request: `max_body_bytes`, raised on the three routes whose bodies are
/// larger by design — a file's chunk (`PUT /api/files/{file_id}/chunk/{index}`), a document's
/// snapshot (`POST /api/content/snapshot`, its body JSON-escaped) and a whiteboard document
/// from the API (`/auth/room/uploadWhiteboardFile`, multipart). Their handlers hold them to
/// their own limits.
fn body_limit(method: &Method, path: &str, configured: usize, whiteboard_upload: usize) -> usize {
    let raised =
        if *method == Method::PUT && path.starts_with("/api/files/") && path.contains("/chunk/") {
            crate::rooms::files::MAX_CHUNK_BYTES as usize
        } else if *method == Method::POST && path == "/api/content/snapshot" {
            SNAPSHOT_REQUEST_BYTES
        } else if *method == Method::POST && path == "/auth/room/uploadWhiteboardFile" {
            whiteboard_upload
        } else {
            0
        };
    configured.max(raised)
}

/// A snapshot request: the body (at most `MAX_SNAPSHOT_BYTES`) JSON-escaped (a plain room's
/// JSON body grows by its escaped quotes; twice is ample) and the request's other fields.
const SNAPSHOT_REQUEST_BYTES: usize = 2 * crate::rooms::content::MAX_SNAPSHOT_BYTES + 64 * 1024;

enum BodyRead {
    TooLarge,
    Broken,
}

/// How much of a body over the limit is still read (and thrown away) before the 413: a
/// reverse proxy that buffered the whole request writes all of it before it reads the answer,
/// and a connection closed under it turns the server's 413 into the proxy's 502.
const DRAIN_FACTOR: usize = 8;

/// Reads a body of at most `limit` bytes. A longer one is read on (without keeping it) up to
/// `DRAIN_FACTOR` times the limit, so that the answer reaches a client still sending.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyRead> {
    use futures_util::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    let mut over = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyRead::Broken)?;
        seen = seen.saturating_add(chunk.len());
        if !over && seen > limit {
            over = true;
            buf = bytes::BytesMut::new();
        }
        if over {
            if seen > limit.saturating_mul(DRAIN_FACTOR) {
                break;
            }
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    if over {
        Err(BodyRead::TooLarge)
    } else {
        Ok(buf.freeze())
    }
}

/// The client address of a request that came through the listener (tests that drive the
/// router in-process have none): the socket's peer, or what a trusted proxy says it is (see
/// [`peer_ip`]).
fn request_peer_ip(req: &Request, trusted: &[IpNet]) -> Option<IpAddr> {
    let socket = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(peer_ip(
        socket,
        req.headers().get_all(X_FORWARDED_FOR),
        trusted,
    ))
}

/// `X-Forwarded-For`: the addresses a request passed through, each proxy appending the address
/// it received the request from.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Whether `ip` is one of `client.trusted_proxies`.
pub(crate) fn is_trusted_proxy(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client's address, from the socket's peer and the request's `X-Forwarded-For` lines
/// (in the order they came).
///
/// - A peer that is not a trusted proxy is the client; the header is ignored (anyone can send
///   one).
/// - From a trusted proxy the header is read from the right, one address at a time: each
///   address was appended by the hop to its right, so it is believed as long as that hop is a
///   trusted proxy. The first address that is not a trusted proxy is the client.
/// - An entry that is not an address (`unknown`, garbage, non-ASCII) ends the walk, as does the
///   end of the list: the client is then the nearest address read (a trusted one; a client
///   inside a trusted range cannot pick the address it is counted under by prepending one), or
///   the socket's peer when none was.
pub(crate) fn peer_ip<V: AsRef<[u8]>>(
    socket: IpAddr,
    forwarded_for: impl IntoIterator<Item = V>,
    trusted: &[IpNet],
) -> IpAddr {
    let socket = socket.to_canonical();
    if !is_trusted_proxy(socket, trusted) {
        return socket;
    }
    let lines: Vec<V> = forwarded_for.into_iter().collect();
    let mut nearest = None;
    for line in lines.iter().rev() {
        let Ok(text) = std::str::from_utf8(line.as_ref()) else {
            break;
        };
        for entry in text.rsplit(',').map(str::trim) {
            // Empty list elements are allowed (RFC 9110 §5.6.1) and mean nothing.
            if entry.is_empty() {
                continue;
            }
            let Some(ip) = forwarded_addr(entry) else {
                return nearest.unwrap_or(socket);
            };
            if !is_trusted_proxy(ip, trusted) {
                return ip;
            }
            nearest.get_or_insert(ip);
        }
    }
    nearest.unwrap_or(socket)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`192.0.2.1:5000`,
/// `[2001:db8::1]:5000`) or in brackets (`[2001:db8::1]`), as some proxies write them.
pub(crate) fn forwarded_addr(entry: &str) -> Option<IpAddr> {
    let ip = if let Ok(ip) = entry.parse::<IpAddr>() {
        ip
    } else if let Ok(sa) = entry.parse::<SocketAddr>() {
        sa.ip()
    } else {
        entry
            .strip_prefix('[')?
            .strip_suffix(']')?
            .parse::<std::net::Ipv6Addr>()
            .ok()?
            .into()
    };
    Some(ip.to_canonical())
}

/// Answers 429 to an address that presented bad credentials too often; otherwise runs the
/// route and counts a 401 against the address.
async fn guard_credentials(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(ip) = request_peer_ip(&req, &app.config.trusted_proxies) else {
        return next.run(req).await;
    };
    if let Err(wait) = app.throttle.check(ip, std::time::Instant::now()) {
        app.metrics.credential_failures_throttled.inc();
        let secs = wait.as_secs().max(1);
        tracing::info!(%ip, retry_after = secs, "too many failed credentials; refused");
        let mut res = ApiError::new(
            StatusCode::PermissionDenied,
            format!("too many failed attempts from this address; retry in {secs} s"),
        )
        .with_http(Http::TOO_MANY_REQUESTS)
        .into_response();
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let res = next.run(req).await;
    if res.status() == Http::UNAUTHORIZED {
        app.throttle.fail(ip, std::time::Instant::now());
    }
    res
}

/// A JSON object (first non-blank byte `{`) or nothing at all.
fn is_json_object_or_empty(body: &[u8]) -> bool {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(b) => *b == b'{',
    }
}

async fn count_requests(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    app.metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            status: res.status().as_u16(),
        })
        .inc();
    res
}

/// How long each part of the server has to answer a health check.
const HEALTH_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Healthy only if every part that serves a meeting answers: the history store, the media
/// worker, and every live room's owner task. A stuck part makes it 503 naming which.
async fn health_check(State(app): State<Arc<App>>) -> Response {
    let unhealthy = |what: String| {
        tracing::error!(what, "health check failed");
        (Http::SERVICE_UNAVAILABLE, what).into_response()
    };
    if let Err(e) = app.store.ping().await {
        tracing::error!(error = %e, "health check: database unreachable");
        return unhealthy("DB connection error".to_owned());
    }
    if let Some(media) = &app.media {
        if !media.ping(HEALTH_WITHIN).await {
            return unhealthy("media worker not answering".to_owned());
        }
    }
    let rooms = app.rooms.all();
    let answers = futures_util::future::join_all(
        rooms
            .iter()
            .map(|r| tokio::time::timeout(HEALTH_WITHIN, r.snapshot())),
    )
    .await;
    for (room, answer) in rooms.iter().zip(answers) {
        // A room that ended meanwhile answers "gone", which is fine; silence is not.
        if answer.is_err() {
            return unhealthy(format!("room {} not answering", room.info.room_id));
        }
    }
    (Http::OK, "Healthy").into_response()
}

/// `/metrics` alone: merged into the main router, or served on `prometheus.listen`.
pub fn metrics_router(app: &Arc<App>) -> Router<Arc<App>> {
    Router::new().route(&app.config.prometheus.metrics_path, get(metrics))
}

/// The web client's Content-Security-Policy: its own scripts and workers only, media and
/// WebSockets to this origin (and the configured LiveKit host), framing by the configured
/// ancestors (an LMS embedding the client names its origin in `client.frame_ancestors`).
fn content_security_policy(config: &crate::config::ServerConfig) -> header::HeaderValue {
    let mut connect = vec!["'self'".to_owned()];
    let host = config.livekit.host.trim_end_matches('/');
    if let Some((scheme, rest)) = host.split_once("://") {
        let origin = rest.split('/').next().unwrap_or(rest);
        if !origin.is_empty() {
            connect.push(format!("{scheme}://{origin}"));
            // The SDK also calls /rtc/validate over HTTP(S) on the same host.
            let http = match scheme {
                "wss" => "https",
                "ws" => "http",
                s => s,
            };
            connect.push(format!("{http}://{origin}"));
        }
    }
    let policy = format!(
        "default-src 'self'; script-src 'self'; worker-src 'self' blob:; connect-src {}; \
         img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
         style-src 'self' 'unsafe-inline'; font-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors {}",
        connect.join(" "),
        config.frame_ancestors.join(" ")
    );
    header::HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        // Only configuration could make it invalid, and the binary validates that.
        header::HeaderValue::from_static("default-src 'self'; frame-ancestors 'self'")
    })
}

/// Headers on every response: no MIME sniffing, no referrer (join links carry tokens), and
/// on pages the Content-Security-Policy.
async fn security_headers(
    State(csp): State<header::HeaderValue>,
    req: Request,
    next: Next,
) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    res
}

async fn metrics(State(app): State<Arc<App>>, headers: header::HeaderMap) -> Response {
    if let Some(token) = &app.config.prometheus.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        use subtle::ConstantTimeEq;
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return (
                Http::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need the configured bearer token",
            )
                .into_response();
        }
    }
    app.metrics.rooms_active.set(app.rooms.len() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_chunks_snapshots_and_whiteboard_uploads_get_a_larger_body() {
        let chunk = crate::rooms::files::MAX_CHUNK_BYTES as usize;
        let path = "/api/files/0123456789abcdef/chunk/3";
        assert_eq!(body_limit(&Method::PUT, path, 1000, 7), chunk);
        assert_eq!(body_limit(&Method::POST, path, 1000, 7), 1000);
        assert_eq!(body_limit(&Method::PUT, path, 9 * chunk, 7), 9 * chunk);
        assert_eq!(
            body_limit(&Method::POST, "/api/content/snapshot", 1000, 7),
            SNAPSHOT_REQUEST_BYTES
        );
        assert_eq!(
            body_limit(&Method::POST, "/api/content/append", 1000, 7),
            1000
        );
        assert_eq!(
            body_limit(&Method::POST, "/auth/room/create", 1000, 7),
            1000
        );
        assert_eq!(
            body_limit(&Method::POST, "/auth/room/uploadWhiteboardFile", 1000, 5000),
            5000
        );
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const PROXY: &str = "10.0.0.2";

    fn through_proxy(lines: &[&str], trusted: &[&str]) -> IpAddr {
        peer_ip(ip(PROXY), lines, &nets(trusted))
    }

    #[test]
    fn peer_ip_ignores_the_header_from_a_peer_that_is_not_trusted() {
        let trusted = nets(&["10.0.0.2/32"]);
        assert_eq!(
            peer_ip(ip("198.51.100.7"), ["203.0.113.9"], &trusted),
            ip("198.51.100.7")
        );
        // No proxies configured: nobody's header counts, not even loopback's.
        assert_eq!(
            peer_ip(ip("127.0.0.1"), ["203.0.113.9"], &[]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn peer_ip_from_a_trusted_proxy_is_the_rightmost_untrusted_address() {
        assert_eq!(
            through_proxy(&["203.0.113.9"], &["10.0.0.0/8"]),
            ip("203.0.113.9")
        );
        // A client that sends its own header cannot choose: the proxy appended the real one.
        assert_eq!(
            through_proxy(&["1.2.3.4, 203.0.113.9"], &["10.0.0.0/8"]),
            ip("203.0.113.9")
        );
        // A chain of trusted proxies is walked past.
        assert_eq!(
            through_proxy(
                &["1.2.3.4, 203.0.113.9, 10.0.0.7, 10.0.0.8"],
                &["10.0.0.0/8"]
            ),
            ip("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(through_proxy(&[], &["10.0.0.0/8"]), ip(PROXY));
        assert_eq!(through_proxy(&[""], &["10.0.0.0/8"]), ip(PROXY));
    }

    #[test]
    fn peer_ip_reads_several_header_lines_in_order() {
        assert_eq!(
            through_proxy(&["1.2.3.4", "203.0.113.9, 10.0.0.7"], &["10.0.0.0/8"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            through_proxy(&["203.0.113.9", "10.0.0.7", "10.0.0.8,"], &["10.0.0.0/8"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn peer_ip_stops_at_a_malformed_entry_without_panicking() {
        let t = &["10.0.0.0/8"];
        // Garbage right of any address: the proxy is all we know.
        assert_eq!(through_proxy(&["203.0.113.9, unknown"], t), ip(PROXY));
        // Garbage left of trusted hops: the nearest address read.
        assert_eq!(through_proxy(&["nonsense, 10.0.0.7"], t), ip("10.0.0.7"));
        // Garbage left of the client: never reached.
        assert_eq!(through_proxy(&["x;y, 203.0.113.9"], t), ip("203.0.113.9"));
        for bad in [
            "999.1.1.1",
            "1.2.3",
            "[::1",
            "::1]",
            "[1.2.3.4]",
            "1.2.3.4:notaport",
            ",,,",
            " ",
            "\u{fffd}",
        ] {
            assert_eq!(through_proxy(&[bad], t), ip(PROXY), "{bad:?}");
        }
        let not_utf8 = axum::http::HeaderValue::from_bytes(b"203.0.113.9\xff").unwrap();
        assert_eq!(peer_ip(ip(PROXY), [&not_utf8], &nets(t)), ip(PROXY));
    }

    #[test]
    fn peer_ip_when_every_address_is_trusted_is_the_nearest() {
        assert_eq!(
            through_proxy(&["10.9.9.9, 10.0.0.7"], &["10.0.0.0/8"]),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn peer_ip_understands_ipv6_ports_and_mapped_addresses() {
        let t = &["::1/128", "fd00::/64", "127.0.0.1/32"];
        assert_eq!(
            peer_ip(ip("::1"), ["2001:db8::7"], &nets(t)),
            ip("2001:db8::7")
        );
        assert_eq!(
            peer_ip(ip("::1"), ["[2001:db8::7]:4711, fd00::3"], &nets(t)),
            ip("2001:db8::7")
        );
        assert_eq!(
            peer_ip(ip("::1"), ["[2001:db8::7]"], &nets(t)),
            ip("2001:db8::7")
        );
        assert_eq!(
            peer_ip(ip("::1"), ["192.0.2.1:5000"], &nets(t)),
            ip("192.0.2.1")
        );
        // An IPv4 proxy reaching a dual-stack socket arrives as ::ffff:127.0.0.1.
        assert_eq!(
            peer_ip(ip("::ffff:127.0.0.1"), ["::ffff:192.0.2.1"], &nets(t)),
            ip("192.0.2.1")
        );
        // An untrusted mapped peer is reported as the IPv4 address it is.
        assert_eq!(
            peer_ip(ip("::ffff:192.0.2.5"), ["1.2.3.4"], &nets(t)),
            ip("192.0.2.5")
        );
    }
}
