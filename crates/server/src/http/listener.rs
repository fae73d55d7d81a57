//! The HTTP listener: accepts TCP connections under caps, and serves each with hyper's HTTP/1
//! under a header read timeout, so that no client can hold connections (file descriptors)
//! without using them.
//!
//! - At most [`ConnLimits::max_connections`] connections at once, and at most
//!   [`ConnLimits::max_connections_per_ip`] from one address (a trusted reverse proxy is held
//!   to the first cap only): beyond them a new connection is closed at once (and counted in
//!   `enclave_http_connections_refused_total`).
//! - A request's headers must arrive within [`ConnLimits::header_read_timeout`]. hyper starts
//!   that timer again while a kept-alive connection waits for its next request, so it is also
//!   the idle timeout. A client that trickles one header byte every few seconds is cut off.
//! - Body reads are bounded by a timeout layer on the router (`http::router`).
//! - Upgraded connections (`/rtc` WebSockets) leave hyper; their silence is bounded by the
//!   signalling ping timeout (`http::rtc`).
//!
//! - With TLS configured, the port serves HTTPS and plain HTTP both: the first byte of a
//!   connection tells them apart (a TLS handshake record starts with 0x16; no HTTP method
//!   does). The handshake is bounded by the header read timeout as well.
//!
//! Every connection carries its peer address to the handlers as `ConnectInfo<SocketAddr>`, and
//! how it arrived as [`Scheme`].

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ConnLimits;
use crate::config::IpNet;
use crate::metrics::Metrics;
use crate::tls::Tls;

/// How a request reached the server: a request extension set by the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// The first byte of a TLS handshake record (RFC 8446 §5.1, `ContentType.handshake`).
const TLS_HANDSHAKE: u8 = 0x16;

/// How long a shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// Open connections per address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection; releases its place when dropped.
struct Admitted {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
    _global: tokio::sync::OwnedSemaphorePermit,
}

impl PerIp {
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        cap: usize,
        global: tokio::sync::OwnedSemaphorePermit,
    ) -> Option<Admitted> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Admitted {
            per_ip: self.clone(),
            ip,
            _global: global,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut map = self.per_ip.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets the
/// requests in flight finish (at most [`DRAIN`]).
///
/// Connections from `trusted_proxies` are held to the server's cap only, not to the
/// per-address one: behind a reverse proxy every client arrives from the proxy's address.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    tls: Option<Arc<Tls>>,
    trusted_proxies: Arc<[IpNet]>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let global = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors or a similar passing condition: wait rather than
                    // spin, and keep serving what is open.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let admitted = global.clone().try_acquire_owned().ok().and_then(|g| {
            let share = if super::is_trusted_proxy(peer.ip(), &trusted_proxies) {
                limits.max_connections
            } else {
                limits.max_connections_per_ip
            };
            per_ip.admit(peer.ip(), share, g)
        });
        let Some(admitted) = admitted else {
            metrics.http_connections_refused.inc();
            tracing::debug!(%peer, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            accept_connection(stream, peer, router, limits, tls, stop).await;
            drop(admitted);
        });
    }
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    Ok(())
}

/// Tells TLS from plain HTTP by the first byte, completes the handshake, and serves.
async fn accept_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnLimits,
    tls: Option<Arc<Tls>>,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return serve_connection(stream, peer, Scheme::Http, router, limits, stop).await;
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(limits.header_read_timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        // Closed, failed, or silent for the whole header timeout.
        _ => return,
    }
    if first[0] != TLS_HANDSHAKE {
        return serve_connection(stream, peer, Scheme::Http, router, limits, stop).await;
    }
    match tokio::time::timeout(limits.header_read_timeout, tls.acceptor.accept(stream)).await {
        Ok(Ok(s)) => {
            // An ACME validation handshake (TLS-ALPN-01) ends there: it speaks no HTTP.
            if s.get_ref().1.alpn_protocol() == Some(crate::tls::acme::ACME_TLS_ALPN) {
                tracing::debug!(%peer, "ACME validation handshake answered");
                return;
            }
            serve_connection(s, peer, Scheme::Https, router, limits, stop).await
        }
        Ok(Err(e)) => {
            // Mostly a client that does not trust the certificate (yet): worth a debug line.
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
        }
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    scheme: Scheme,
    router: Router,
    limits: ConnLimits,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(scheme);
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts, resets and malformed requests: the client's problem, not ours.
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
