//! Limits on the HTTP door, against the real listener on 127.0.0.1: slow and idle clients are
//! cut off, no address holds more than its share of connections, and an address that keeps
//! presenting bad credentials is answered 429.
//!
//! Other addresses are simulated by binding the client to 127.0.0.2 (all of 127/8 is
//! loopback on Linux).

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use enclave_server::config::{ConnLimits, FailureBudget};
use enclave_server::{Server, ServerConfig};

const KEY: &str = "limits-key";
const SECRET: &str = "limits-secret-0123456789abcdef";

async fn server(f: impl FnOnce(&mut ServerConfig)) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::for_tests(dir.path(), KEY, SECRET);
    f(&mut cfg);
    (Server::start(cfg).await.unwrap(), dir)
}

async fn connect_from(ip: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(IpAddr::V4(ip), 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// Reads until the peer closes (or `limit` passes); returns what was read and when it closed.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Instant>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, Some(Instant::now())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, None),
        }
    }
}

fn fast_limits(c: &mut ServerConfig) {
    c.conn_limits = ConnLimits {
        header_read_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(2),
        ..ConnLimits::default()
    };
}

#[test]
fn the_default_timeouts_cut_a_slow_client_off_within_30_seconds() {
    let d = ConnLimits::default();
    assert!(d.header_read_timeout <= Duration::from_secs(30));
    assert!(d.body_read_timeout <= Duration::from_secs(30));
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let (srv, _dir) = server(fast_limits).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(b"GET /healthCheck HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header byte every 500 ms: the request's headers never complete.
    let trickle = async {
        for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter().cycle() {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(15), trickle).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(6),
        "the trickling client was cut off after {elapsed:?} (header timeout 2 s)"
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let (srv, _dir) = server(fast_limits).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /healthCheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (got, closed) = read_to_close(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let closed = closed.expect("the idle connection is closed");
    assert!(
        closed - started < Duration::from_secs(5),
        "closed {:?} after the answer",
        closed - started
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_with_408() {
    let (srv, _dir) = server(fast_limits).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(
        b"POST /auth/room/isRoomActive HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let writer = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if s.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), writer).await;
    let (got, _) = read_to_close(&mut s, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("not received within 2 s"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(8));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn a_trusted_proxy_is_held_to_the_servers_cap_not_an_addresss_share() {
    let (srv, _dir) = server(|c| {
        c.conn_limits = ConnLimits {
            max_connections_per_ip: 2,
            max_connections: 5,
            header_read_timeout: Duration::from_secs(20),
            ..ConnLimits::default()
        };
        c.trusted_proxies = vec!["127.0.0.2/32".parse().unwrap()];
    })
    .await;
    let proxy = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(proxy, srv.addr).await);
    }
    // The fifth from the proxy is still served: it is the proxy's fifth client.
    let mut fifth = connect_from(proxy, srv.addr).await;
    fifth
        .write_all(b"GET /healthCheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_to_close(&mut fifth, Duration::from_secs(3)).await;
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // The server's cap holds for the proxy too (four held, the fifth may still be closing).
    held.push(connect_from(proxy, srv.addr).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = connect_from(proxy, srv.addr).await;
    let (got, closed) = read_to_close(&mut over, Duration::from_secs(3)).await;
    assert!(closed.is_some() && got.is_empty(), "the server's cap holds");
    // An address that is not a proxy keeps its share: two.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other = Ipv4Addr::LOCALHOST;
    let _a = connect_from(other, srv.addr).await;
    let _b = connect_from(other, srv.addr).await;
    let mut third = connect_from(other, srv.addr).await;
    let _ = third
        .write_all(b"GET /healthCheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (got, closed) = read_to_close(&mut third, Duration::from_secs(3)).await;
    assert!(
        closed.is_some() && got.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn an_address_cannot_hold_more_than_its_share_of_connections() {
    let (srv, _dir) = server(|c| {
        c.conn_limits = ConnLimits {
            max_connections_per_ip: 4,
            max_connections: 6,
            header_read_timeout: Duration::from_secs(20),
            ..ConnLimits::default()
        }
    })
    .await;
    let a = Ipv4Addr::LOCALHOST;
    let b = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(a, srv.addr).await);
    }
    // The fifth from the same address is closed at once, without an answer.
    let mut fifth = connect_from(a, srv.addr).await;
    let _ = fifth
        .write_all(b"GET /healthCheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (got, closed) = read_to_close(&mut fifth, Duration::from_secs(3)).await;
    assert!(
        closed.is_some() && got.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // Another address still gets in, up to the server's own cap (6 in all).
    let mut other = connect_from(b, srv.addr).await;
    other
        .write_all(b"GET /healthCheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_to_close(&mut other, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    held.push(connect_from(b, srv.addr).await);
    held.push(connect_from(b, srv.addr).await);
    let mut seventh = connect_from(b, srv.addr).await;
    let (got, closed) = read_to_close(&mut seventh, Duration::from_secs(3)).await;
    assert!(closed.is_some() && got.is_empty(), "the server's cap holds");

    // Closing one frees its place.
    held.remove(0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(a, srv.addr).await;
    again
        .write_all(b"GET /healthCheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_to_close(&mut again, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    let metrics = srv.app.metrics.encode();
    assert!(
        metrics.contains("enclave_http_connections_refused_total 2"),
        "{metrics}"
    );
    drop(held);
    srv.stop().await.unwrap();
}

async fn auth_call(from: Ipv4Addr, srv: &Server, signature: &str) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(from))
        .build()
        .unwrap();
    client
        .post(format!("http://{}/auth/room/isRoomActive", srv.addr))
        .header("Content-Type", "application/json")
        .header("API-KEY", KEY)
        .header("HASH-SIGNATURE", signature)
        .body(r#"{"room_id":"r"}"#)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_address_that_keeps_failing_credentials_is_answered_429() {
    let (srv, _dir) = server(|c| {
        c.failure_budget = FailureBudget {
            max_failures: 3,
            window: Duration::from_secs(60),
        }
    })
    .await;
    let good = enclave_server::auth::sign(SECRET, br#"{"room_id":"r"}"#);
    let a = Ipv4Addr::LOCALHOST;
    let b = Ipv4Addr::new(127, 0, 0, 2);
    for _ in 0..3 {
        assert_eq!(auth_call(a, &srv, "bad").await.status(), 401);
    }
    let r = auth_call(a, &srv, "bad").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Held back even with good credentials, until the window ends.
    assert_eq!(auth_call(a, &srv, &good).await.status(), 429);
    // Another address is not affected.
    assert_eq!(auth_call(b, &srv, "bad").await.status(), 401);
    assert_eq!(auth_call(b, &srv, &good).await.status(), 200);

    // Browser-API tokens count too.
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(b))
        .build()
        .unwrap();
    for _ in 0..2 {
        let r = client
            .post(format!("http://{}/api/verifyToken", srv.addr))
            .header("Authorization", "not-a-token")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = client
        .get(format!(
            "http://{}/download/recording/not-a-token",
            srv.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the third failure of b used its budget");
    assert!(srv
        .app
        .metrics
        .encode()
        .contains("enclave_credential_failures_throttled_total"));
    srv.stop().await.unwrap();
}
