//! A real server on 127.0.0.1 (media runtime included) and what the end-to-end tests of its
//! limits need around it: signed `/auth` calls, LiveKit tokens, meetings of bots.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use enclave_bench::bot::{self, Recv, Spec, Stats};

pub const KEY: &str = "e2e-key";
pub const SECRET: &str = "e2e-secret-0123456789abcdef";
pub const LK_KEY: &str = "e2e-lk-key";
pub const LK_SECRET: &str = "e2e-lk-secret-0123456789abcdef-0123";

pub async fn start() -> (enclave_server::Server, tempfile::TempDir) {
    start_with(enclave_server::config::MediaConfig::loopback()).await
}

/// A server with these media settings.
pub async fn start_with(
    media: enclave_server::config::MediaConfig,
) -> (enclave_server::Server, tempfile::TempDir) {
    start_configured(media, |_| {}).await
}

/// A server with these media settings and whatever else `f` sets.
pub async fn start_configured(
    media: enclave_server::config::MediaConfig,
    f: impl FnOnce(&mut enclave_server::ServerConfig),
) -> (enclave_server::Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = enclave_server::ServerConfig::for_tests(dir.path(), KEY, SECRET);
    cfg.livekit.api_key = LK_KEY.into();
    cfg.livekit.secret = Some(LK_SECRET.into());
    cfg.media = Some(media);
    f(&mut cfg);
    (enclave_server::Server::start(cfg).await.unwrap(), dir)
}

/// A signed `/auth` call; the reply as JSON.
pub async fn auth(srv: &enclave_server::Server, path: &str, body: &str) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(format!("http://{}/auth/{path}", srv.addr))
        .header("Content-Type", "application/json")
        .header("API-KEY", KEY)
        .header(
            "HASH-SIGNATURE",
            enclave_server::auth::sign(SECRET, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

pub async fn create_room(srv: &enclave_server::Server, room: &str) {
    let v = auth(
        srv,
        "room/create",
        &format!(
            r#"{{"room_id":"{room}","metadata":{{"room_title":"{room}","room_features":{{}}}}}}"#
        ),
    )
    .await;
    assert_eq!(v["status"], true, "{v}");
}

pub async fn is_active(srv: &enclave_server::Server, room: &str) -> bool {
    let v = auth(
        srv,
        "room/isRoomActive",
        &format!(r#"{{"room_id":"{room}"}}"#),
    )
    .await;
    v["is_active"] == true
}

/// `/rtc` URL with a LiveKit token for `identity` in `room`.
pub fn url(srv: &enclave_server::Server, room: &str, identity: &str) -> String {
    let claims = enclave_server::auth::livekit::AccessClaims {
        iss: LK_KEY.into(),
        sub: identity.into(),
        nbf: 0,
        exp: u64::MAX / 4,
        name: identity.into(),
        metadata: String::new(),
        video: enclave_server::auth::livekit::VideoGrant {
            room_join: true,
            room: room.into(),
            ..Default::default()
        },
        session: None,
    };
    let token = enclave_server::auth::encode_jwt(LK_SECRET.as_bytes(), &claims);
    format!(
        "ws://{}/rtc?access_token={token}&auto_subscribe=1&protocol=17",
        srv.addr
    )
}

/// Two bots in a room: a publisher at 100 packets/s and a subscriber that checks every
/// payload (`probe`).
pub struct Meeting {
    pub publisher: Arc<Stats>,
    pub probe: Arc<Stats>,
    stop: watch::Sender<bool>,
    _rate: watch::Sender<f64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Meeting {
    /// Starts the bots and waits (bounded) until media flows.
    pub async fn start(srv: &enclave_server::Server, room: &str) -> Self {
        let (rate_tx, rate_rx) = watch::channel(100.0);
        let (stop_tx, stop_rx) = watch::channel(false);
        let publisher = Arc::new(Stats::default());
        let probe = Arc::new(Stats::default());
        let mut tasks = Vec::new();
        for (identity, publishes, stats) in [
            (format!("{room}-pub"), Some(1), &publisher),
            (format!("{room}-sub"), None, &probe),
        ] {
            tasks.push(tokio::spawn(bot::run(
                Spec {
                    url: url(srv, room, &identity),
                    identity,
                    publisher: publishes,
                    recv: Recv::Probe,
                    payload: 600,
                },
                rate_rx.clone(),
                stop_rx.clone(),
                stats.clone(),
            )));
        }
        let m = Self {
            publisher,
            probe,
            stop: stop_tx,
            _rate: rate_tx,
            tasks,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while m.received() < 100 {
            assert!(
                Instant::now() < deadline,
                "media did not start in {room}: {:?} {:?}",
                m.publisher.error(),
                m.probe.error()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        m
    }

    pub fn received(&self) -> u64 {
        self.probe.recv.load(Ordering::Relaxed)
    }

    /// Watches the subscriber for `for_`: the longest stretch without a packet.
    pub fn watch(&self, for_: Duration) -> tokio::task::JoinHandle<Duration> {
        let probe = self.probe.clone();
        tokio::spawn(async move {
            let mut last = probe.recv.load(Ordering::Relaxed);
            let mut worst_gap = Duration::ZERO;
            let mut since = Instant::now();
            let started = Instant::now();
            while started.elapsed() < for_ {
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
    }

    /// Whether both bots have ended (their signalling closed).
    pub fn ended(&self) -> bool {
        self.publisher.done.load(Ordering::Acquire) && self.probe.done.load(Ordering::Acquire)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}
