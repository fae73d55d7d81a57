//! Where createRoom's time goes: its pieces, timed alone on the server's runtime after the
//! load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use crate::stats::percentile;

pub(super) async fn run(
    app: Arc<enclave_server::App>,
    n: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    use enclave_server::store::NewRoom;
    let new_room = |k: u64| NewRoom {
        room_id: format!("breakdown-{k}"),
        sid: uuid::Uuid::new_v4().to_string(),
        room_title: "Bench".into(),
        webhook_url: String::new(),
        created: enclave_server::clock::unix_now(),
    };
    let per_op = |start: Instant, n: u64| start.elapsed().as_secs_f64() * 1e6 / n as f64;

    let start = Instant::now();
    for _ in 0..n {
        tokio::task::spawn_blocking(|| ()).await?;
    }
    let hop = per_op(start, n);

    let start = Instant::now();
    let mut each = Vec::with_capacity(n as usize);
    for k in 0..n {
        let t0 = Instant::now();
        app.store.insert_room(new_room(k)).await?;
        each.push(t0.elapsed());
    }
    let insert_seq = per_op(start, n);
    each.sort_unstable();

    let next = Arc::new(AtomicU64::new(n));
    let end = 2 * n;
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let app = app.clone();
        let next = next.clone();
        set.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= end {
                    return Ok::<(), anyhow::Error>(());
                }
                app.store.insert_room(new_room(k)).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let insert_conc = n as f64 / start.elapsed().as_secs_f64();

    let policy = enclave_proto::room::RoomPolicy::default();
    let now = enclave_server::clock::unix_now() as u64;
    let start = Instant::now();
    let mut json_bytes = 0;
    for k in 0..n {
        let body = format!(
            r#"{{"room_id":"bench-{k}","metadata":{{"room_title":"Bench","room_features":{{}}}}}}"#
        );
        let prepared = enclave_proto::room::prepare_create(body.as_bytes(), &policy, now)
            .map_err(|e| anyhow::anyhow!("prepare_create: {e:?}"))?;
        json_bytes += serde_json::to_string(&prepared.metadata)?.len();
    }
    let prepare = per_op(start, n);

    let us = |p: f64| percentile(&each, p).unwrap_or_default().as_secs_f64() * 1e6;
    println!();
    println!("createRoom pieces, each timed alone on the server's runtime after the load ({n} ops each):");
    println!("- spawn_blocking round trip of an empty closure: {hop:.1} µs");
    println!(
        "- store.insert_room, one at a time (spawn_blocking + SQLite INSERT, WAL): mean {insert_seq:.1} µs, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs (WAL checkpoints)",
        us(50.0),
        us(99.0),
        us(100.0),
    );
    println!("- store.insert_room, {concurrency} at once: {insert_conc:.0} inserts/s");
    println!("- prepare_create (decode + validate the body) + metadata to JSON: {prepare:.1} µs (reply {} bytes)", json_bytes / n as usize);
    Ok(())
}
