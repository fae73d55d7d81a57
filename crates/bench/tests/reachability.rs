//! Media reachability against the real server: a server with two local addresses (127.0.0.1
//! and 127.0.0.2, both local on Linux) offers both, over UDP and TCP, and a str0m client's
//! checks to each are answered from that same address; ICE over TCP connects; TURN servers
//! reach clients with credentials of their own. (The same with real interfaces in network
//! namespaces: crates/enclave/tests/netns.rs and tests/network/.)

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use enclave_bench::probe::probe;
use enclave_server::config::{MediaAddr, MediaConfig, TurnCredentials, TurnProtocol, TurnServer};

const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

async fn two_address_server() -> (enclave_server::Server, tempfile::TempDir) {
    let media = MediaConfig {
        bind_ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        tcp_port: Some(0),
        addresses: [A, B]
            .map(|ip| MediaAddr {
                advertised: ip,
                local: Some(ip),
            })
            .to_vec(),
        turn_servers: vec![TurnServer {
            host: "turn.example.org".into(),
            port: 3478,
            protocol: TurnProtocol::Udp,
            credentials: TurnCredentials::Secret {
                secret: "turn-secret".into(),
                ttl: Duration::from_secs(600),
            },
        }],
        ..MediaConfig::loopback()
    };
    common::start_with(media).await
}

#[tokio::test]
async fn a_check_to_either_address_is_answered_from_that_address() {
    let (srv, _dir) = two_address_server().await;
    common::create_room(&srv, "two").await;
    let seen = probe(
        &common::url(&srv, "two", "alice"),
        A,
        false,
        Duration::from_secs(4),
    )
    .await
    .unwrap();
    let port = srv.app.media.as_ref().unwrap().udp_port;
    let both = [A, B].map(|ip| SocketAddr::new(ip, port));
    assert_eq!(seen.offered_udp, both.into(), "{seen:?}");
    for addr in both {
        assert!(
            seen.sent_to.contains(&addr),
            "no check went to {addr}: {seen:?}"
        );
        assert!(
            seen.answered_from.contains(&addr),
            "no answer came from {addr}: {seen:?}"
        );
    }
    assert!(
        seen.answered_from.is_subset(&seen.sent_to),
        "an answer came from an address the client never sent to: {seen:?}"
    );
    assert!(seen.connected, "{seen:?}");
}

#[tokio::test]
async fn ice_over_tcp_connects_through_the_tcp_candidate() {
    let (srv, _dir) = two_address_server().await;
    common::create_room(&srv, "tcp").await;
    let seen = probe(
        &common::url(&srv, "tcp", "bob"),
        A,
        true,
        Duration::from_secs(4),
    )
    .await
    .unwrap();
    let port = srv.app.media.as_ref().unwrap().tcp_port.unwrap();
    assert_eq!(
        seen.offered_tcp,
        [A, B].map(|ip| SocketAddr::new(ip, port)).into(),
        "{seen:?}"
    );
    assert!(seen.connected, "ICE over TCP did not connect: {seen:?}");
}

#[tokio::test]
async fn every_client_gets_turn_credentials_of_its_own() {
    let (srv, _dir) = two_address_server().await;
    common::create_room(&srv, "turn").await;
    let mut names = Vec::new();
    for who in ["carol", "dave"] {
        let seen = probe(
            &common::url(&srv, "turn", who),
            A,
            false,
            Duration::from_millis(200),
        )
        .await
        .unwrap();
        let [s] = &seen.ice_servers[..] else {
            panic!("one TURN server expected: {:?}", seen.ice_servers)
        };
        assert_eq!(s.urls, ["turn:turn.example.org:3478?transport=udp"]);
        let (expiry, name) = s.username.split_once(':').unwrap();
        let expiry: u64 = expiry.parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            (now + 590..=now + 610).contains(&expiry),
            "{expiry} vs {now}"
        );
        assert_eq!(name, who);
        assert!(!s.credential.is_empty());
        names.push(s.username.clone());
    }
    assert_ne!(names[0], names[1]);
}

/// coturn from Debian, as a plain STUN server on 127.0.0.1; killed on drop.
struct Coturn {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Coturn {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = enclave_bench::ports::free_udp_port().unwrap();
        let child = std::process::Command::new("turnserver")
            .args(["-n", "--stun-only", "--no-cli", "--no-tls", "--no-dtls"])
            .args([
                "--listening-ip=127.0.0.1",
                &format!("--listening-port={port}"),
            ])
            .arg(format!("--pidfile={}", dir.path().join("pid").display()))
            .arg(format!("--userdb={}", dir.path().join("db").display()))
            .args(["--log-file=stdout", "--simple-log"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("coturn's turnserver is needed for this test (apt-get install coturn)");
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn use_external_ip_advertises_the_address_a_stun_server_saw_first() {
    let stun = Coturn::start();
    let media = MediaConfig {
        bind_ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        addresses: vec![MediaAddr {
            advertised: B,
            local: Some(B),
        }],
        external_ip_stun: vec![format!("127.0.0.1:{}", stun.port)],
        ..MediaConfig::loopback()
    };
    // coturn takes a moment to listen; the server asks again every 500 ms for 3 s.
    let (srv, _dir) = common::start_with(media).await;
    let m = srv.app.media.as_ref().unwrap();
    assert_eq!(
        m.advertised_ips(),
        [A, B],
        "the STUN-learned address comes first"
    );
    // And it works: checks to it are answered from it.
    common::create_room(&srv, "stun").await;
    let seen = probe(
        &common::url(&srv, "stun", "erin"),
        A,
        false,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert!(
        seen.answered_from.contains(&SocketAddr::new(A, m.udp_port)),
        "{seen:?}"
    );
}

#[tokio::test]
async fn use_external_ip_without_an_answer_refuses_to_start_and_says_why() {
    let silent = enclave_bench::ports::udp().unwrap();
    let media = MediaConfig {
        external_ip_stun: vec![silent.local_addr().unwrap().to_string()],
        ..MediaConfig::loopback()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = enclave_server::ServerConfig::for_tests(dir.path(), "k", "s");
    cfg.media = Some(media);
    let err = enclave_server::Server::start(cfg)
        .await
        .err()
        .expect("no start");
    let text = format!("{err:#}");
    assert!(
        text.contains("rtc.use_external_ip") && text.contains("no answer"),
        "{text}"
    );
}

#[tokio::test]
async fn a_tcp_media_connection_that_is_no_rooms_ice_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (srv, _dir) = two_address_server().await;
    let port = srv.app.media.as_ref().unwrap().tcp_port.unwrap();
    // A framed packet that no room accepts (not a STUN check of any room's credentials).
    let mut c = tokio::net::TcpStream::connect(SocketAddr::new(A, port))
        .await
        .unwrap();
    c.write_all(&[0, 4, 1, 2, 3, 4]).await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "still open: {r:?}");
    // The largest frame the framing allows, of garbage, is read and refused as well.
    let mut c = tokio::net::TcpStream::connect(SocketAddr::new(A, port))
        .await
        .unwrap();
    c.write_all(&[0xff, 0xff]).await.unwrap();
    c.write_all(&vec![7u8; 70_000]).await.ok();
    let r = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "still open: {r:?}");
}

#[tokio::test]
async fn one_address_holds_at_most_32_tcp_media_connections() {
    use tokio::io::AsyncReadExt;
    let (srv, _dir) = two_address_server().await;
    let port = srv.app.media.as_ref().unwrap().tcp_port.unwrap();
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(
            tokio::net::TcpStream::connect(SocketAddr::new(A, port))
                .await
                .unwrap(),
        );
    }
    // The 33rd is accepted by the kernel and closed at once by the server.
    let mut extra = tokio::net::TcpStream::connect(SocketAddr::new(A, port))
        .await
        .unwrap();
    let mut buf = [0u8; 4];
    let r = tokio::time::timeout(Duration::from_secs(3), extra.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "the 33rd stayed open: {r:?}"
    );
    // The 32 are still open (they have 10 s to send their first check).
    let r = tokio::time::timeout(Duration::from_millis(300), held[0].read(&mut buf)).await;
    assert!(r.is_err(), "an admitted connection was closed: {r:?}");
}
