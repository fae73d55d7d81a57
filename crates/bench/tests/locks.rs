#![allow(clippy::unwrap_used)]
//! Locks the media server enforces, against a client that ignores them: the str0m bots publish
//! a camera track whatever their permission says, as a modified client would.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use enclave_bench::bot::{self, Recv, Spec, Stats};

/// A publisher bot on `pub_url` and a probe bot on a plain LiveKit token, at 100 packets/s.
struct Pair {
    publisher: Arc<Stats>,
    probe: Arc<Stats>,
    stop: watch::Sender<bool>,
    _rate: watch::Sender<f64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pair {
    fn start(srv: &enclave_server::Server, room: &str, publisher: &str, pub_url: String) -> Self {
        let (rate_tx, rate_rx) = watch::channel(100.0);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (p, q) = (Arc::new(Stats::default()), Arc::new(Stats::default()));
        let probe_id = format!("{room}-probe");
        let tasks = [
            (publisher.to_owned(), pub_url, Some(1), p.clone()),
            (
                probe_id.clone(),
                common::url(srv, room, &probe_id),
                None,
                q.clone(),
            ),
        ]
        .into_iter()
        .map(|(identity, url, publisher, stats)| {
            tokio::spawn(bot::run(
                Spec {
                    identity,
                    url,
                    publisher,
                    recv: Recv::Probe,
                    payload: 600,
                },
                rate_rx.clone(),
                stop_rx.clone(),
                stats,
            ))
        })
        .collect();
        Self {
            publisher: p,
            probe: q,
            stop: stop_tx,
            _rate: rate_tx,
            tasks,
        }
    }

    fn received(&self) -> u64 {
        self.probe.recv.load(Ordering::Relaxed)
    }

    async fn wait_received(&self, n: u64, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        while self.received() < n {
            assert!(
                Instant::now() < deadline,
                "{what}: {} received; errors {:?} {:?}",
                self.received(),
                self.publisher.error(),
                self.probe.error()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

async fn browser_api(
    srv: &enclave_server::Server,
    path: &str,
    token: &str,
    body: &str,
) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/{path}", srv.addr))
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

async fn join_token(srv: &enclave_server::Server, room: &str, user: &str, admin: bool) -> String {
    let body = format!(
        r#"{{"room_id":"{room}","user_info":{{"name":"{user}","user_id":"{user}","is_admin":{admin}}}}}"#
    );
    let v = common::auth(srv, "room/getJoinToken", &body).await;
    v["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_without_webcams_forwards_no_camera_from_a_client_that_publishes_one_anyway() {
    let (srv, _dir) = common::start().await;
    let v = common::auth(
        &srv,
        "room/create",
        r#"{"room_id":"nocam","metadata":{"room_title":"nocam","room_features":{"allow_webcams":false}}}"#,
    )
    .await;
    assert_eq!(v["status"], true, "{v}");
    common::create_room(&srv, "control").await;
    // The control room shows the bots work at all.
    let control = Pair::start(&srv, "control", "cam", common::url(&srv, "control", "cam"));
    control
        .wait_received(100, Duration::from_secs(30), "control room")
        .await;
    let locked = Pair::start(&srv, "nocam", "cam", common::url(&srv, "nocam", "cam"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        control.received() > 300,
        "control still flowing: {}",
        control.received()
    );
    assert_eq!(
        locked.received(),
        0,
        "a camera reached the probe in a room without webcams"
    );
    control.stop().await;
    locked.stop().await;
    srv.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webcam_lock_set_live_stops_the_camera_within_a_second() {
    let (srv, _dir) = common::start().await;
    common::create_room(&srv, "class").await;
    let teacher = join_token(&srv, "class", "teacher", true).await;
    let pupil = join_token(&srv, "class", "pupil", false).await;
    let v = browser_api(&srv, "verifyToken", &pupil, "{}").await;
    let media = v["media"]["token"].as_str().unwrap();
    let pub_url = format!(
        "ws://{}/rtc?access_token={media}&auto_subscribe=1&protocol=17",
        srv.addr
    );
    let pair = Pair::start(&srv, "class", "pupil", pub_url);
    pair.wait_received(100, Duration::from_secs(30), "before the lock")
        .await;

    // A pupil cannot lock anyone.
    let v = browser_api(
        &srv,
        "updateLockSettings",
        &pupil,
        r#"{"user_id":"all","service":"webcam","direction":"lock"}"#,
    )
    .await;
    assert_eq!(v["status"], false, "{v}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flowing = pair.received();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        pair.received() > flowing,
        "still flowing after the refused lock"
    );

    let v = browser_api(
        &srv,
        "updateLockSettings",
        &teacher,
        r#"{"user_id":"pupil","service":"webcam","direction":"lock"}"#,
    )
    .await;
    assert_eq!(
        (v["status"].as_bool(), v["changed"].as_u64()),
        (Some(true), Some(1)),
        "{v}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_lock = pair.received();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pair.received(),
        at_lock,
        "packets kept reaching the probe after the webcam lock"
    );
    // The next verifyToken's media token carries the lock as well.
    let v = browser_api(&srv, "verifyToken", &pupil, "{}").await;
    let claims = enclave_server::auth::livekit::verify(
        &srv.app.keys,
        common::LK_KEY,
        v["media"]["token"].as_str().unwrap(),
    )
    .unwrap();
    let sources = claims.video.can_publish_sources.unwrap();
    assert!(
        !sources.iter().any(|s| s == "camera") && sources.iter().any(|s| s == "microphone"),
        "{sources:?}"
    );
    pair.stop().await;
    srv.stop().await.unwrap();
}
