//! One room's media failing ends that room only, and `/healthCheck` tells the truth: against
//! the real server on 127.0.0.1, with meetings of bots in two rooms.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{create_room, is_active, start, Meeting};

async fn health(srv: &enclave_server::Server) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("http://{}/healthCheck", srv.addr))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_room_ends_that_room_and_the_other_goes_on() {
    let (srv, _dir) = start().await;
    create_room(&srv, "fails").await;
    create_room(&srv, "lives").await;
    let failing = Meeting::start(&srv, "fails").await;
    let living = Meeting::start(&srv, "lives").await;
    assert_eq!(health(&srv).await, (200, "Healthy".into()));

    let watcher = living.watch(Duration::from_secs(4));
    let before = living.received();
    srv.app.media.as_ref().unwrap().inject_panic("fails");

    // The failed room ends (its bots' signalling closes), the other does not notice.
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_active(&srv, "fails").await || !failing.ended() {
        assert!(
            Instant::now() < deadline,
            "the failed room is still active ({}) or its clients still connected ({})",
            is_active(&srv, "fails").await,
            !failing.ended()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let worst_gap = watcher.await.unwrap();
    assert!(
        worst_gap < Duration::from_millis(500),
        "the other room stalled {worst_gap:?}"
    );
    assert!(
        living.received() - before >= 300,
        "the other room's media flowed"
    );
    assert!(is_active(&srv, "lives").await);
    assert_eq!(
        health(&srv).await,
        (200, "Healthy".into()),
        "one failed room is not an unhealthy server"
    );
    let metrics = srv.app.metrics.encode();
    assert!(
        metrics.contains("enclave_room_failures_total 1"),
        "{metrics}"
    );

    // The room id starts a new session with nothing of the old one.
    create_room(&srv, "fails").await;
    let again = Meeting::start(&srv, "fails").await;
    assert!(again.received() >= 100);

    again.stop().await;
    living.stop().await;
    failing.stop().await;
    srv.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_reports_a_media_worker_that_stops_answering() {
    let (srv, _dir) = start().await;
    assert_eq!(health(&srv).await, (200, "Healthy".into()));
    srv.app
        .media
        .as_ref()
        .unwrap()
        .inject_stall(Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = health(&srv).await;
    assert_eq!((status, body.as_str()), (503, "media worker not answering"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        health(&srv).await,
        (200, "Healthy".into()),
        "healthy again once it answers"
    );
    srv.stop().await.unwrap();
}
