//! Abusive clients against the real server on 127.0.0.1, while a meeting goes on in another
//! room: a client flooding signalling and a client adding hundreds of tracks are removed, and
//! the other room's media does not stall. The meeting's participants are bots (str0m clients
//! on real UDP, `enclave_loadgen::bot`); the abusers are raw WebSockets.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as Ws;

use enclave_loadgen::bot::{self, Recv, Spec, Stats};
use enclave_sfu::proto::{
    self as lk, signal_request::Message as Req, signal_response::Message as Resp,
};

const KEY: &str = "abuse-key";
const SECRET: &str = "abuse-secret-0123456789abcdef";
const LK_KEY: &str = "abuse-lk-key";
const LK_SECRET: &str = "abuse-lk-secret-0123456789abcdef-0123";

async fn start() -> (enclave_server::Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = enclave_server::ServerConfig::for_tests(dir.path(), KEY, SECRET);
    cfg.livekit.api_key = LK_KEY.into();
    cfg.livekit.secret = Some(LK_SECRET.into());
    cfg.media = Some(enclave_server::media::MediaConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        public_addr: "127.0.0.1:0".parse().unwrap(),
        bandwidth_estimation: true,
    });
    (enclave_server::Server::start(cfg).await.unwrap(), dir)
}

async fn create_room(srv: &enclave_server::Server, room: &str) {
    let body = format!(
        r#"{{"room_id":"{room}","metadata":{{"room_title":"{room}","room_features":{{}}}}}}"#
    );
    let r = reqwest::Client::new()
        .post(format!("http://{}/auth/room/create", srv.addr))
        .header("Content-Type", "application/json")
        .header("API-KEY", KEY)
        .header(
            "HASH-SIGNATURE",
            enclave_server::auth::sign(SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["status"], true, "{v}");
}

fn url(srv: &enclave_server::Server, room: &str, identity: &str) -> String {
    let claims = enclave_server::media::token::AccessClaims {
        iss: LK_KEY.into(),
        sub: identity.into(),
        nbf: 0,
        exp: u64::MAX / 4,
        name: identity.into(),
        metadata: String::new(),
        video: enclave_server::media::token::VideoGrant {
            room_join: true,
            room: room.into(),
            ..Default::default()
        },
    };
    let token = enclave_server::auth::encode_jwt(LK_SECRET.as_bytes(), &claims);
    format!(
        "ws://{}/rtc?access_token={token}&auto_subscribe=1&protocol=17",
        srv.addr
    )
}

/// A raw signalling client: connects and reads up to its JoinResponse.
async fn raw_client(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a join response within 10 s")
            .unwrap()
            .unwrap();
        if let Ws::Binary(b) = m {
            let r = lk::SignalResponse::decode(b.as_ref()).unwrap();
            if matches!(r.message, Some(Resp::Join(_))) {
                return ws;
            }
        }
    }
}

fn frame(msg: Req) -> Ws {
    Ws::Binary(
        lk::SignalRequest { message: Some(msg) }
            .encode_to_vec()
            .into(),
    )
}

/// Sends `frames` as fast as the socket takes them, then reads until the server closes;
/// returns the leave reason it sent (if any), the close code, and how long it took.
async fn abuse(
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    frames: impl Iterator<Item = Ws>,
) -> (Option<i32>, Option<u16>, Duration) {
    let started = Instant::now();
    for f in frames {
        if ws.send(f).await.is_err() {
            break;
        }
    }
    let mut reason = None;
    let mut code = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        match m {
            Ws::Binary(b) => {
                if let Ok(lk::SignalResponse {
                    message: Some(Resp::Leave(l)),
                }) = lk::SignalResponse::decode(b.as_ref())
                {
                    reason = Some(l.reason);
                }
            }
            Ws::Close(c) => {
                code = c.map(|c| u16::from(c.code));
                break;
            }
            _ => {}
        }
    }
    (reason, code, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusive_clients_are_removed_and_another_rooms_media_keeps_flowing() {
    let (srv, _dir) = start().await;
    create_room(&srv, "calm").await;
    create_room(&srv, "storm").await;

    // The meeting: one publisher at 100 packets/s, one subscriber that checks every payload.
    let (rate_tx, rate_rx) = watch::channel(100.0);
    let (stop_tx, stop_rx) = watch::channel(false);
    let publisher = Arc::new(Stats::default());
    let probe = Arc::new(Stats::default());
    let mut tasks = Vec::new();
    for (identity, publishes, stats) in [("pub", Some(1), &publisher), ("sub", None, &probe)] {
        tasks.push(tokio::spawn(bot::run(
            Spec {
                identity: identity.into(),
                url: url(&srv, "calm", identity),
                publisher: publishes,
                recv: Recv::Probe,
                payload: 600,
            },
            rate_rx.clone(),
            stop_rx.clone(),
            stats.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.recv.load(Ordering::Relaxed) < 100 {
        assert!(
            Instant::now() < deadline,
            "media did not start: {:?} {:?}",
            publisher.error(),
            probe.error()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Watch the meeting while the storm goes on: every 100 ms window must see packets.
    let watcher = {
        let probe = probe.clone();
        tokio::spawn(async move {
            let mut last = probe.recv.load(Ordering::Relaxed);
            let mut worst_gap = Duration::ZERO;
            let mut since = Instant::now();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(6) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let now = probe.recv.load(Ordering::Relaxed);
                if now > last {
                    last = now;
                    since = Instant::now();
                } else {
                    worst_gap = worst_gap.max(since.elapsed());
                }
            }
            worst_gap
        })
    };
    let before = probe.recv.load(Ordering::Relaxed);

    // A flood: 5000 pings back to back.
    let flooder = raw_client(&url(&srv, "storm", "flooder")).await;
    let pings = (0..5000).map(|i| frame(Req::Ping(i)));
    let (reason, code, took) = abuse(flooder, pings).await;
    assert_eq!(
        reason,
        Some(lk::DisconnectReason::SignalClose as i32),
        "the flooder was told to leave"
    );
    assert_eq!(code, Some(1008), "closed as a policy violation");
    assert!(took < Duration::from_secs(5), "removed within {took:?}");

    // Hundreds of tracks: refused past the limit, then removed.
    let spammer = raw_client(&url(&srv, "storm", "spammer")).await;
    let tracks = (0..300).map(|i| {
        frame(Req::AddTrack(lk::AddTrackRequest {
            cid: format!("cid-{i}"),
            name: format!("t{i}"),
            r#type: lk::TrackType::Audio as i32,
            ..Default::default()
        }))
    });
    let (reason, _code, took) = abuse(spammer, tracks).await;
    assert_eq!(
        reason,
        Some(lk::DisconnectReason::SignalClose as i32),
        "the spammer was told to leave"
    );
    assert!(took < Duration::from_secs(5));

    let worst_gap = watcher.await.unwrap();
    let during = probe.recv.load(Ordering::Relaxed) - before;
    assert!(
        worst_gap < Duration::from_millis(500),
        "the other room's media stalled for {worst_gap:?}"
    );
    assert!(
        during >= 400,
        "the other room got {during} packets in 6 s at 100/s"
    );
    assert_eq!(probe.corrupt.load(Ordering::Relaxed), 0);
    let metrics = srv.app.metrics.encode();
    assert!(
        metrics.contains("enclave_participants_evicted_total 2"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("evicted"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("during the storm: {during} packets, worst gap {worst_gap:?}");

    let _ = stop_tx.send(true);
    drop(rate_tx);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    srv.stop().await.unwrap();
}
