//! What the HTTP edge does about HTTPS: tells the web client whether and where the server
//! answers HTTPS (`GET /api/tls`, for its insecure-context page), serves the local certificate
//! authority (`GET /ca.crt`), redirects plain HTTP from other machines when
//! `client.tls.plain_http` is off, and answers the optional redirect port.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::listener::Scheme;
use crate::app::App;
use crate::config::IpNet;

/// Where the client finds the server's HTTPS.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TlsInfo {
    /// The port of the same host that answers HTTPS; `None`: the server does not serve HTTPS
    /// itself (a reverse proxy may).
    pub https_port: Option<u16>,
    /// Whether the certificate is issued by the server's own authority (downloadable at
    /// `/ca.crt`), which a device must trust before its browser accepts the page.
    pub local_ca: bool,
}

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/tls", get(tls_info))
        .route("/ca.crt", get(ca_certificate))
}

async fn tls_info(State(app): State<Arc<App>>) -> Json<TlsInfo> {
    Json(TlsInfo {
        https_port: app.tls.as_ref().map(|_| app.config.listen.port()),
        local_ca: app.tls.as_ref().is_some_and(|t| t.local_ca.is_some()),
    })
}

async fn ca_certificate(State(app): State<Arc<App>>) -> Response {
    match app.tls.as_ref().and_then(|t| t.local_ca.as_ref()) {
        Some(ca) => (
            [
                (header::CONTENT_TYPE, "application/x-x509-ca-cert"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"enclave-ca.crt\"",
                ),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            ca.ca_pem.clone(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "this server does not use a certificate authority of its own",
        )
            .into_response(),
    }
}

/// With `client.tls.plain_http` off, a plain-HTTP request from another machine is redirected
/// to the same URL over HTTPS. Loopback is served as it is (local tools, a proxy on this host),
/// and so is a trusted proxy that terminated HTTPS itself ([`https_at_proxy`]).
pub(super) async fn plain_http_policy(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Response {
    let redirect = match &app.tls {
        Some(tls) if !tls.config.plain_http => {
            let plain = req.extensions().get::<Scheme>() == Some(&Scheme::Http);
            let remote = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .is_some_and(|c| {
                    !c.0.ip().is_loopback()
                        && !https_at_proxy(c.0.ip(), req.headers(), &app.config.trusted_proxies)
                });
            plain && remote
        }
        _ => false,
    };
    if !redirect {
        return next.run(req).await;
    }
    to_https(req.headers(), req.uri(), app.config.listen.port())
}

/// Whether `peer` is a trusted proxy (`client.trusted_proxies`) that says the client reached
/// it over HTTPS (`X-Forwarded-Proto: https`; of a list, the first hop's). Redirecting such a
/// request to HTTPS would send the client round the same loop again.
fn https_at_proxy(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> bool {
    super::is_trusted_proxy(peer, trusted)
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// A 308 to the same host, path and query over HTTPS on `port`; 400 without a usable `Host`.
pub fn to_https(headers: &HeaderMap, uri: &Uri, port: u16) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host_only);
    let Some(host) = host else {
        return (
            StatusCode::BAD_REQUEST,
            "this server answers over HTTPS; the request had no usable Host header to redirect to",
        )
            .into_response();
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    };
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, location)],
        "this server answers over HTTPS",
    )
        .into_response()
}

/// The host part of a `Host` header (port dropped; IPv6 kept in brackets), or `None` when it
/// is not a plain host name or address (no user info, paths or stray characters: the value
/// goes into a `Location` header).
fn host_only(h: &str) -> Option<String> {
    let h = h.trim();
    let host = if let Some(rest) = h.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        let ip: std::net::Ipv6Addr = v6.parse().ok()?;
        format!("[{ip}]")
    } else {
        let name = h.rsplit_once(':').map_or(h, |(n, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                n
            } else {
                h
            }
        });
        if name.is_empty()
            || name.len() > 253
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        name.to_ascii_lowercase()
    };
    Some(host)
}

/// The router of `client.tls.http_redirect_port`: every request goes to HTTPS on `port`.
pub fn redirect_router(port: u16) -> Router {
    Router::new()
        .fallback(move |headers: HeaderMap, uri: Uri| async move { to_https(&headers, &uri, port) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(host: &str, uri: &str, port: u16) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        let r = to_https(&h, &uri.parse().unwrap(), port);
        r.headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn plain_http_is_sent_to_the_same_place_over_https() {
        assert_eq!(
            location("10.0.0.5:8080", "/?access_token=abc", 8080).as_deref(),
            Some("https://10.0.0.5:8080/?access_token=abc")
        );
        assert_eq!(
            location("Meet.Example.org", "/x", 443).as_deref(),
            Some("https://meet.example.org/x")
        );
        assert_eq!(
            location("[fd00::1]:80", "/", 8443).as_deref(),
            Some("https://[fd00::1]:8443/")
        );
    }

    #[test]
    fn a_trusted_proxy_that_terminated_https_is_not_redirected() {
        let trusted: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap()];
        let proxy: IpAddr = "192.0.2.10".parse().unwrap();
        let proto = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-proto", v.parse().unwrap());
            h
        };
        assert!(https_at_proxy(proxy, &proto("https"), &trusted));
        assert!(https_at_proxy(proxy, &proto("HTTPS"), &trusted));
        assert!(https_at_proxy(proxy, &proto("https, http"), &trusted));
        assert!(!https_at_proxy(proxy, &proto("http"), &trusted));
        assert!(!https_at_proxy(proxy, &HeaderMap::new(), &trusted));
        // Anyone else may say so; only a configured proxy is believed.
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(!https_at_proxy(stranger, &proto("https"), &trusted));
        assert!(!https_at_proxy(proxy, &proto("https"), &[]));
    }

    #[test]
    fn a_host_header_that_is_not_a_host_is_refused() {
        for bad in [
            "evil.example/path",
            "user@host",
            "[::1]x",
            "[notv6]:80",
            "a b",
            "",
        ] {
            assert_eq!(host_only(bad), None, "{bad:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "a/b".parse().unwrap());
        let r = to_https(&h, &"/".parse().unwrap(), 443);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
