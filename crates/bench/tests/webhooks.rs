#![allow(clippy::unwrap_used)]
//! Webhooks that only real media can cause: `track_published` and `track_unpublished`, sent
//! when a bot publishes over the real media runtime and when it leaves.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A webhook receiver on 127.0.0.1 that keeps every body (HTTP/1.1, one request per
/// connection).
async fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let keep = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break buf[end + 4..end + 4 + len].to_vec();
                    }
                };
                if let Ok(v) = serde_json::from_slice(&body) {
                    keep.lock().unwrap().push(v);
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, got)
}

async fn wait_for(got: &Arc<Mutex<Vec<serde_json::Value>>>, event: &str) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<_> = got
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["event"] == event)
            .cloned()
            .collect();
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {event} webhook in 15 s; got {:?}",
            got.lock()
                .unwrap()
                .iter()
                .map(|v| v["event"].clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_track_and_its_end_are_webhooks_naming_the_track_and_its_publisher() {
    let (url, got) = receiver().await;
    let (srv, _dir) =
        common::start_configured(enclave_server::config::MediaConfig::loopback(), |c| {
            c.webhooks.enable = true;
            c.webhooks.url = Some(url);
        })
        .await;
    common::create_room(&srv, "wh").await;
    let meeting = common::Meeting::start(&srv, "wh").await;
    let published = wait_for(&got, "track_published").await;
    // The room ends with the track still live: its end is reported before the room's.
    let ended = common::auth(&srv, "room/endRoom", r#"{"room_id":"wh"}"#).await;
    assert_eq!(ended["status"], true, "{ended}");
    let unpublished = wait_for(&got, "track_unpublished").await;
    meeting.stop().await;

    let p = &published[0];
    assert_eq!(p["participant"]["identity"], "wh-pub", "{p}");
    assert_eq!(p["room"]["room_id"], "wh");
    let sid = p["track"]["sid"].as_str().unwrap();
    assert!(sid.starts_with("TR_"), "{p}");
    let kind = p["track"]["type"].as_str().unwrap();
    assert!(kind == "AUDIO" || kind == "VIDEO", "{p}");
    // The same track ends, with the same publisher and kind.
    let u = unpublished
        .iter()
        .find(|u| u["track"]["sid"] == sid)
        .unwrap_or_else(|| panic!("no track_unpublished for {sid}: {unpublished:?}"));
    assert_eq!(u["participant"]["identity"], "wh-pub");
    assert_eq!(u["track"]["type"], kind);
    assert_eq!(published.len(), 1, "one track, one webhook: {published:?}");
    // LiveKit's order: the track, then its publisher, then the room; and the media server's
    // own unpublish, which follows, adds nothing.
    wait_for(&got, "room_finished").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let order: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["participant"]["identity"] == "wh-pub" || v["event"] == "room_finished")
        .map(|v| v["event"].as_str().unwrap_or_default().to_owned())
        .filter(|e| e.starts_with("track_") || e == "participant_left" || e == "room_finished")
        .collect();
    let at = |e: &str| order.iter().position(|x| x == e).unwrap_or(usize::MAX);
    assert!(
        at("track_unpublished") < at("participant_left")
            && at("participant_left") < at("room_finished"),
        "{order:?}"
    );
    assert_eq!(
        order.iter().filter(|e| *e == "track_unpublished").count(),
        1,
        "{order:?}"
    );
}
