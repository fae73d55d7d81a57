//! Abusive clients against the real server on 127.0.0.1, while a meeting goes on in another
//! room: a client flooding signalling and a client adding hundreds of tracks are removed, and
//! the other room's media does not stall. The meeting's participants are bots (str0m clients
//! on real UDP, `enclave_bench::bot`); the abusers are raw WebSockets.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message as Ws;

use common::{create_room, start, url, Meeting};
use enclave_sfu::proto::{
    self as lk, signal_request::Message as Req, signal_response::Message as Resp,
};

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

    let meeting = Meeting::start(&srv, "calm").await;
    // Watch the meeting while the storm goes on.
    let watcher = meeting.watch(Duration::from_secs(6));
    let before = meeting.received();

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
    let during = meeting.received() - before;
    assert!(
        worst_gap < Duration::from_millis(500),
        "the other room's media stalled for {worst_gap:?}"
    );
    assert!(
        during >= 400,
        "the other room got {during} packets in 6 s at 100/s"
    );
    assert_eq!(meeting.probe.corrupt.load(Ordering::Relaxed), 0);
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

    meeting.stop().await;
    srv.stop().await.unwrap();
}
