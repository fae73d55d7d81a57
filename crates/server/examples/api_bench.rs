//! Room API throughput against its ceiling, side by side in one run.
//!
//! Drives `createRoom`, `getJoinToken` and `isRoomActive` over HTTP on 127.0.0.1 and, in the
//! same run, a bare `/auth/bench/ceiling` endpoint that does only the HMAC check (the same
//! middleware as every `/auth` route) and returns a constant reply: the ceiling.
//!
//! ```text
//! cargo run --release -p enclave-server --example api_bench -- [options]
//!
//!   --concurrency N     closed-loop workers                          (default 32)
//!   --phase-secs S      length of one closed-loop phase              (default 3)
//!   --rounds N          closed-loop rounds                           (default 5)
//!   --open-secs S       length of one open-loop (half-peak) phase    (default 3)
//!   --open-rounds N     open-loop rounds                             (default 3)
//!   --warmup-ms MS      unmeasured warm-up before every phase        (default 300)
//!   --seed-rooms N      rooms created up front for join/active       (default 1000)
//!   --server-threads N  worker threads of the server's runtime       (default 2)
//!   --client-threads N  worker threads of the load generator         (default 2)
//!   --open-workers N    open-loop sender tasks (connections)         (default 256)
//!   --only LIST         comma list of ceiling,create,join,active     (default all;
//!                       without the ceiling no ratios are printed: for profiling)
//!   --breakdown N       createRoom cost pieces, N ops each; 0 skips  (default 2000)
//! ```
//!
//! Method (see docs/benchmarks.md):
//! - The server runs on its own multi-thread tokio runtime (threads `bench-srv`), the load
//!   generator on another (threads `bench-cli`), so neither scheduler steals the other's
//!   tasks; the OS shares the cores between them. Per-thread CPU time from
//!   `/proc/self/task/*/schedstat` splits the cost into server and client, which is less
//!   sensitive to a noisy machine than wall-clock rates.
//! - Peak: a closed loop of `concurrency` workers on a keep-alive `reqwest` pool for a fixed
//!   time. Rounds are interleaved (every round measures every endpoint, the order rotates),
//!   and each endpoint's rate is divided by the ceiling's rate of the same round.
//! - Latency: an open loop at half of each endpoint's median peak, wrk2-style: request `i` is
//!   due at `start + i / rate`, and a pool of sender tasks (one keep-alive connection each)
//!   takes the next due slot, sleeps until it is due, or sends at once if it is already late:
//!   the semantics of `tokio::time::interval` with `MissedTickBehavior::Burst`, so the
//!   schedule never shifts and the offered rate holds (Delay or Skip would silently lower it,
//!   and tokio's 1 ms timer makes every sub-millisecond period "late"). Latency is reported
//!   from the issue and from the schedule; the latter also counts waiting for a free sender,
//!   so a stalled server cannot hide behind the generator (no coordinated omission).
//! - Every reply must be HTTP 200 with `"status":true` (and `"is_active":true` for
//!   isRoomActive); anything else counts as an error and is reported.
//!
//! Everything is bounded: phases end by time, requests time out after 10 s, and the server's
//! runtime and data directory are removed at the end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::http::header;
use tokio::task::JoinSet;

const API_KEY: &str = "bench-key";
const API_SECRET: &str = "bench-secret-0123456789abcdef0123";
const CEILING_PATH: &str = "/auth/bench/ceiling";
const CEILING_REPLY: &str = r#"{"status":true,"msg":"success","status_code":"SUCCESS"}"#;
/// A safety cap on the requests of one phase, besides its time limit.
const MAX_REQUESTS_PER_PHASE: u64 = 5_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Endpoint {
    Ceiling,
    CreateRoom,
    GetJoinToken,
    IsRoomActive,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [
        Endpoint::Ceiling,
        Endpoint::CreateRoom,
        Endpoint::GetJoinToken,
        Endpoint::IsRoomActive,
    ];

    fn name(self) -> &'static str {
        match self {
            Endpoint::Ceiling => "ceiling (HMAC check only)",
            Endpoint::CreateRoom => "createRoom",
            Endpoint::GetJoinToken => "getJoinToken",
            Endpoint::IsRoomActive => "isRoomActive",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Endpoint::Ceiling => "ceiling",
            Endpoint::CreateRoom => "create",
            Endpoint::GetJoinToken => "join",
            Endpoint::IsRoomActive => "active",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Endpoint::Ceiling => CEILING_PATH,
            Endpoint::CreateRoom => "/auth/room/create",
            Endpoint::GetJoinToken => "/auth/room/getJoinToken",
            Endpoint::IsRoomActive => "/auth/room/isRoomActive",
        }
    }
}

#[derive(Debug, Clone)]
struct Opts {
    concurrency: usize,
    phase: Duration,
    rounds: usize,
    open: Duration,
    open_rounds: usize,
    warmup: Duration,
    seed_rooms: u64,
    server_threads: usize,
    client_threads: usize,
    open_workers: usize,
    only: Vec<Endpoint>,
    breakdown: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            concurrency: 32,
            phase: Duration::from_secs(3),
            rounds: 5,
            open: Duration::from_secs(3),
            open_rounds: 3,
            warmup: Duration::from_millis(300),
            seed_rooms: 1000,
            server_threads: 2,
            client_threads: 2,
            open_workers: 256,
            only: Endpoint::ALL.to_vec(),
            breakdown: 2000,
        }
    }
}

fn parse_args() -> anyhow::Result<Opts> {
    let mut o = Opts::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("see the header of crates/server/examples/api_bench.rs for the options");
            std::process::exit(0);
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let num = || -> anyhow::Result<u64> {
            value
                .parse::<u64>()
                .with_context(|| format!("{flag}: '{value}' is not a whole number"))
        };
        let secs = || -> anyhow::Result<Duration> {
            let s: f64 = value
                .parse()
                .with_context(|| format!("{flag}: '{value}' is not a number of seconds"))?;
            if !(s > 0.0 && s <= 60.0) {
                bail!("{flag}: must be in (0, 60] seconds");
            }
            Ok(Duration::from_secs_f64(s))
        };
        match flag.as_str() {
            "--concurrency" => o.concurrency = num()?.clamp(1, 1024) as usize,
            "--phase-secs" => o.phase = secs()?,
            "--rounds" => o.rounds = num()?.clamp(1, 20) as usize,
            "--open-secs" => o.open = secs()?,
            "--open-rounds" => o.open_rounds = num()?.clamp(0, 20) as usize,
            "--warmup-ms" => o.warmup = Duration::from_millis(num()?.min(10_000)),
            "--seed-rooms" => o.seed_rooms = num()?.clamp(1, 100_000),
            "--server-threads" => o.server_threads = num()?.clamp(1, 64) as usize,
            "--client-threads" => o.client_threads = num()?.clamp(1, 64) as usize,
            "--open-workers" => o.open_workers = num()?.clamp(1, 4096) as usize,
            "--breakdown" => o.breakdown = num()?.min(100_000),
            "--only" => {
                let mut only = Vec::new();
                for part in value.split(',') {
                    match Endpoint::ALL.iter().find(|e| e.short() == part.trim()) {
                        Some(e) => only.push(*e),
                        None => bail!("--only: unknown endpoint '{part}'"),
                    }
                }
                o.only = only;
            }
            other => bail!("unknown option {other} (try --help)"),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux). Absent elsewhere: the figures are then left out.

#[derive(Debug, Clone, Default)]
struct CpuSnap {
    /// Thread id → (is a server thread, CPU nanoseconds).
    threads: HashMap<u32, (bool, u64)>,
    /// Machine-wide busy and steal time, nanoseconds, from /proc/stat.
    machine_busy_ns: u64,
    machine_steal_ns: u64,
    at: Option<Instant>,
}

fn read_thread_cpu_ns(dir: &std::path::Path) -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string(dir.join("schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
            return Some(ns);
        }
    }
    // Fallback: utime + stime in clock ticks (assumed 100 Hz).
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

fn cpu_snapshot() -> CpuSnap {
    let mut snap = CpuSnap {
        at: Some(Instant::now()),
        ..CpuSnap::default()
    };
    if let Ok(entries) = std::fs::read_dir("/proc/self/task") {
        for e in entries.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let dir = e.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if let Some(ns) = read_thread_cpu_ns(&dir) {
                snap.threads
                    .insert(tid, (comm.trim_end().starts_with("bench-srv"), ns));
            }
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
        if let Some(line) = stat.lines().next() {
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            if f.len() >= 8 {
                let tick = 10_000_000; // USER_HZ = 100
                snap.machine_busy_ns = (f[0] + f[1] + f[2] + f[5] + f[6]) * tick;
                snap.machine_steal_ns = f[7] * tick;
            }
        }
    }
    snap
}

#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    server_ns: u64,
    client_ns: u64,
    /// CPU used on the machine by anything but this process, in cores (averaged).
    foreign_cores: f64,
    steal_cores: f64,
    available: bool,
}

fn cpu_delta(a: &CpuSnap, b: &CpuSnap) -> CpuUse {
    let (Some(t0), Some(t1)) = (a.at, b.at) else {
        return CpuUse::default();
    };
    if b.threads.is_empty() {
        return CpuUse::default();
    }
    let mut u = CpuUse {
        available: true,
        ..CpuUse::default()
    };
    for (tid, (server, ns)) in &b.threads {
        let before = a.threads.get(tid).map(|t| t.1).unwrap_or(0);
        let d = ns.saturating_sub(before);
        if *server {
            u.server_ns += d;
        } else {
            u.client_ns += d;
        }
    }
    let wall = t1.duration_since(t0).as_secs_f64().max(1e-9);
    let busy = b.machine_busy_ns.saturating_sub(a.machine_busy_ns) as f64;
    let ours = (u.server_ns + u.client_ns) as f64;
    u.foreign_cores = ((busy - ours) / 1e9 / wall).max(0.0);
    u.steal_cores = b.machine_steal_ns.saturating_sub(a.machine_steal_ns) as f64 / 1e9 / wall;
    u
}

// ---------------------------------------------------------------------------------------------
// The load generator.

struct Target {
    client: reqwest::Client,
    base: String,
    /// Number of the next room createRoom makes.
    next_room: AtomicU64,
    /// Sequence number for join/active requests (picks the room and the user).
    seq: AtomicU64,
    /// Rooms `bench-0 .. bench-(seed_rooms-1)` exist; join/active use only these.
    seed_rooms: u64,
}

impl Target {
    fn body(&self, ep: Endpoint) -> String {
        match ep {
            Endpoint::Ceiling => {
                let k = self.seq.fetch_add(1, Ordering::Relaxed);
                format!(r#"{{"room_id":"bench-{}"}}"#, k % self.seed_rooms)
            }
            Endpoint::CreateRoom => {
                let n = self.next_room.fetch_add(1, Ordering::Relaxed);
                format!(
                    r#"{{"room_id":"bench-{n}","metadata":{{"room_title":"Bench","room_features":{{}}}}}}"#
                )
            }
            Endpoint::GetJoinToken => {
                let k = self.seq.fetch_add(1, Ordering::Relaxed);
                format!(
                    r#"{{"room_id":"bench-{}","user_info":{{"name":"U","user_id":"u{k}"}}}}"#,
                    k % self.seed_rooms
                )
            }
            Endpoint::IsRoomActive => {
                let k = self.seq.fetch_add(1, Ordering::Relaxed);
                format!(r#"{{"room_id":"bench-{}"}}"#, k % self.seed_rooms)
            }
        }
    }

    /// One signed request; `true` when the reply is a success.
    async fn call(&self, ep: Endpoint) -> bool {
        let body = self.body(ep);
        let sig = enclave_server::auth::sign(API_SECRET, body.as_bytes());
        let res = self
            .client
            .post(format!("{}{}", self.base, ep.path()))
            .header(header::CONTENT_TYPE, "application/json")
            .header("API-KEY", API_KEY)
            .header("HASH-SIGNATURE", sig)
            .body(body)
            .send()
            .await;
        let Ok(res) = res else { return false };
        let ok_status = res.status() == reqwest::StatusCode::OK;
        let Ok(bytes) = res.bytes().await else {
            return false;
        };
        ok_status
            && contains(&bytes, br#""status":true"#)
            && (ep != Endpoint::IsRoomActive || contains(&bytes, br#""is_active":true"#))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[derive(Debug, Clone, Copy)]
struct Closed {
    ok: u64,
    errors: u64,
    rate: f64,
    secs: f64,
    cpu: CpuUse,
}

impl Closed {
    fn server_us_per_req(&self) -> Option<f64> {
        (self.cpu.available && self.ok > 0)
            .then(|| self.cpu.server_ns as f64 / 1e3 / (self.ok + self.errors) as f64)
    }
    /// Cores this process kept busy (server + client), averaged over the phase.
    fn busy_cores(&self) -> f64 {
        (self.cpu.server_ns + self.cpu.client_ns) as f64 / 1e9 / self.secs.max(1e-9)
    }
    fn client_us_per_req(&self) -> Option<f64> {
        (self.cpu.available && self.ok > 0)
            .then(|| self.cpu.client_ns as f64 / 1e3 / (self.ok + self.errors) as f64)
    }
}

/// `concurrency` workers, each sending its next request as soon as the previous one is
/// answered, until `dur` has passed.
async fn closed_loop(t: &Arc<Target>, ep: Endpoint, concurrency: usize, dur: Duration) -> Closed {
    let sent = Arc::new(AtomicU64::new(0));
    let before = cpu_snapshot();
    let start = Instant::now();
    let deadline = start + dur;
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let t = t.clone();
        let sent = sent.clone();
        set.spawn(async move {
            let (mut ok, mut err) = (0u64, 0u64);
            while Instant::now() < deadline
                && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS_PER_PHASE
            {
                if t.call(ep).await {
                    ok += 1;
                } else {
                    err += 1;
                }
            }
            (ok, err)
        });
    }
    let (mut ok, mut errors) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r {
            Ok((o, e)) => {
                ok += o;
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = start.elapsed();
    let after = cpu_snapshot();
    Closed {
        ok,
        errors,
        rate: ok as f64 / elapsed.as_secs_f64(),
        secs: elapsed.as_secs_f64(),
        cpu: cpu_delta(&before, &after),
    }
}

#[derive(Debug, Clone)]
struct Open {
    target_rate: f64,
    offered_rate: f64,
    ok: u64,
    errors: u64,
    /// Slots never sent because the phase overran its hard stop.
    dropped: u64,
    /// Latency from issue to complete reply, sorted.
    latency: Vec<Duration>,
    /// How late each request was issued against its schedule, sorted.
    lag: Vec<Duration>,
    /// Latency counted from the scheduled time (lag + latency), sorted.
    from_schedule: Vec<Duration>,
    /// Most requests outstanding at once. Below the number of senders, no request ever
    /// waited for a free sender, so issue→reply latency misses no server stall.
    peak_in_flight: usize,
    cpu: CpuUse,
}

/// Requests at a fixed `rate` for `dur`, whatever the replies do (wrk2-style): request `i` is
/// due at `start + i / rate`. `workers` tasks take the next due slot, sleep until it is due
/// (not at all if it is already late: tokio's `MissedTickBehavior::Burst` semantics, so the
/// schedule never shifts and the offered rate holds), send, and record the latency both from
/// the issue and from the schedule. Latency from the schedule also counts the time a request
/// waited for a free worker, so a stalled server cannot hide its stall (no coordinated
/// omission); it also counts the generator's own timer and scheduling delays. The peak number
/// of requests in flight shows whether a request ever had to wait for a free worker.
async fn open_loop(
    t: &Arc<Target>,
    ep: Endpoint,
    rate: f64,
    dur: Duration,
    workers: usize,
) -> Open {
    let total = ((rate * dur.as_secs_f64()) as u64).clamp(1, MAX_REQUESTS_PER_PHASE);
    let next = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let before = cpu_snapshot();
    let start = tokio::time::Instant::now() + Duration::from_millis(2);
    let hard_stop = start + dur + Duration::from_secs(10);
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let t = t.clone();
        let next = next.clone();
        let (busy, peak) = (busy.clone(), peak.clone());
        set.spawn(async move {
            let mut out = Vec::with_capacity((total as usize / workers.max(1)) + 16);
            let mut dropped = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if tokio::time::Instant::now() > hard_stop {
                    dropped += 1;
                    continue;
                }
                tokio::time::sleep_until(due).await;
                let issued = Instant::now();
                peak.fetch_max(busy.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
                let ok = t.call(ep).await;
                let done = Instant::now();
                busy.fetch_sub(1, Ordering::Relaxed);
                out.push((
                    ok,
                    done - issued,
                    issued.saturating_duration_since(due.into_std()),
                ));
            }
            (out, dropped)
        });
    }
    let mut o = Open {
        target_rate: rate,
        offered_rate: 0.0,
        ok: 0,
        errors: 0,
        dropped: 0,
        latency: Vec::with_capacity(total as usize),
        lag: Vec::with_capacity(total as usize),
        from_schedule: Vec::with_capacity(total as usize),
        peak_in_flight: 0,
        cpu: CpuUse::default(),
    };
    while let Some(r) = set.join_next().await {
        match r {
            Ok((rows, dropped)) => {
                o.dropped += dropped;
                for (ok, lat, lag) in rows {
                    if ok {
                        o.ok += 1;
                    } else {
                        o.errors += 1;
                    }
                    o.latency.push(lat);
                    o.lag.push(lag);
                    o.from_schedule.push(lat + lag);
                }
            }
            Err(_) => o.errors += 1,
        }
    }
    o.peak_in_flight = peak.load(Ordering::Relaxed);
    o.cpu = cpu_delta(&before, &cpu_snapshot());
    let span = start.elapsed().as_secs_f64().max(1e-9);
    o.offered_rate = (o.ok + o.errors) as f64 / span;
    o.latency.sort_unstable();
    o.lag.sort_unstable();
    o.from_schedule.sort_unstable();
    o
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Where createRoom's time goes: its pieces, timed alone on the server's runtime after the load.

async fn breakdown(
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

    println!();
    println!("createRoom pieces, each timed alone on the server's runtime after the load ({n} ops each):");
    println!("- spawn_blocking round trip of an empty closure: {hop:.1} µs");
    println!(
        "- store.insert_room, one at a time (spawn_blocking + SQLite INSERT, WAL): mean {insert_seq:.1} µs, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs (WAL checkpoints)",
        pct(&each, 50.0).as_secs_f64() * 1e6,
        pct(&each, 99.0).as_secs_f64() * 1e6,
        each.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
    println!("- store.insert_room, {concurrency} at once: {insert_conc:.0} inserts/s");
    println!("- prepare_create (decode + validate the body) + metadata to JSON: {prepare:.1} µs (reply {} bytes)", json_bytes / n as usize);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The server, on its own runtime.

fn start_server(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
) -> anyhow::Result<(SocketAddr, Arc<enclave_server::App>)> {
    let cfg = enclave_server::ServerConfig::for_tests(dir, API_KEY, API_SECRET);
    rt.block_on(async move {
        let app = enclave_server::App::new(cfg).await?;
        let ceiling = axum::Router::new().route(
            CEILING_PATH,
            axum::routing::post(|| async {
                ([(header::CONTENT_TYPE, "application/json")], CEILING_REPLY)
            }),
        );
        let router = enclave_server::http::router_with(app.clone(), ceiling);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("server stopped: {e}");
            }
        });
        Ok((addr, app))
    })
}

fn main() -> anyhow::Result<()> {
    let opts = parse_args()?;
    let dir = std::env::temp_dir().join(format!(
        "enclave-api-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir)?;

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.server_threads)
        .thread_name("bench-srv")
        .thread_keep_alive(Duration::from_secs(600))
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads)
        .thread_name("bench-cli")
        .enable_all()
        .build()?;

    let result = start_server(&server_rt, &dir).and_then(|(addr, app)| {
        client_rt.block_on(run(opts.clone(), addr))?;
        if opts.breakdown > 0 {
            server_rt.block_on(breakdown(app, opts.breakdown, opts.concurrency))?;
        }
        Ok(())
    });

    client_rt.shutdown_timeout(Duration::from_secs(2));
    server_rt.shutdown_timeout(Duration::from_secs(5));
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
    result
}

async fn run(opts: Opts, addr: SocketAddr) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(120))
        .timeout(Duration::from_secs(10))
        .build()?;
    let t = Arc::new(Target {
        client,
        base: format!("http://{addr}"),
        next_room: AtomicU64::new(0),
        seq: AtomicU64::new(0),
        seed_rooms: opts.seed_rooms,
    });
    let wall = Instant::now();

    // Seed rooms for getJoinToken and isRoomActive, all checked.
    let mut seeded = 0;
    let mut set = JoinSet::new();
    for _ in 0..opts.seed_rooms {
        let t = t.clone();
        set.spawn(async move { t.call(Endpoint::CreateRoom).await });
        if set.len() >= opts.concurrency {
            if let Some(Ok(true)) = set.join_next().await {
                seeded += 1;
            }
        }
    }
    while let Some(r) = set.join_next().await {
        if let Ok(true) = r {
            seeded += 1;
        }
    }
    if seeded != opts.seed_rooms {
        bail!(
            "only {seeded} of {} seed rooms were created",
            opts.seed_rooms
        );
    }
    eprintln!("seeded {seeded} rooms; server on {addr}");

    // Closed loop, interleaved rounds with a rotating order.
    let eps = opts.only.clone();
    let mut closed: HashMap<Endpoint, Vec<Closed>> = HashMap::new();
    let mut round_ratio: HashMap<Endpoint, Vec<f64>> = HashMap::new();
    for round in 0..opts.rounds {
        let mut order = eps.clone();
        order.rotate_left(round % eps.len());
        let mut this_round: HashMap<Endpoint, Closed> = HashMap::new();
        for ep in order {
            if !opts.warmup.is_zero() {
                closed_loop(&t, ep, opts.concurrency, opts.warmup).await;
            }
            let r = closed_loop(&t, ep, opts.concurrency, opts.phase).await;
            eprintln!(
                "round {} {:<8} {:>9.0} req/s  ok {:>7}  err {:>3}  srv {:>6.1} µs/req  cli {:>6.1} µs/req  busy {:.2} cores  others {:.2} cores  steal {:.2}",
                round + 1,
                ep.short(),
                r.rate,
                r.ok,
                r.errors,
                r.server_us_per_req().unwrap_or(f64::NAN),
                r.client_us_per_req().unwrap_or(f64::NAN),
                r.busy_cores(),
                r.cpu.foreign_cores,
                r.cpu.steal_cores,
            );
            this_round.insert(ep, r);
            closed.entry(ep).or_default().push(r);
        }
        if let Some(c) = this_round.get(&Endpoint::Ceiling) {
            for (ep, r) in &this_round {
                round_ratio
                    .entry(*ep)
                    .or_default()
                    .push(r.rate / c.rate.max(1e-9));
            }
        }
    }

    // Open loop at half of each endpoint's median peak.
    let peak: HashMap<Endpoint, f64> = eps
        .iter()
        .map(|ep| {
            let rates: Vec<f64> = closed[ep].iter().map(|c| c.rate).collect();
            (*ep, median(&rates))
        })
        .collect();
    let mut open: HashMap<Endpoint, Vec<Open>> = HashMap::new();
    for round in 0..opts.open_rounds {
        let mut order = eps.clone();
        order.rotate_left(round % eps.len());
        for ep in order {
            let rate = peak[&ep] / 2.0;
            if !opts.warmup.is_zero() {
                closed_loop(&t, ep, opts.open_workers, opts.warmup).await;
            }
            let o = open_loop(&t, ep, rate, opts.open, opts.open_workers).await;
            eprintln!(
                "open {} {:<8} target {:>8.0}/s offered {:>8.0}/s  p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  lag p99 {:.3} ms  from-schedule p99 {:.3} ms  peak in flight {}/{}  others {:.2} cores  err {} dropped {}",
                round + 1,
                ep.short(),
                o.target_rate,
                o.offered_rate,
                ms(pct(&o.latency, 50.0)),
                ms(pct(&o.latency, 99.0)),
                ms(pct(&o.latency, 99.9)),
                ms(o.latency.last().copied().unwrap_or_default()),
                ms(pct(&o.lag, 99.0)),
                ms(pct(&o.from_schedule, 99.0)),
                o.peak_in_flight,
                opts.open_workers,
                o.cpu.foreign_cores,
                o.errors,
                o.dropped,
            );
            open.entry(ep).or_default().push(o);
        }
    }

    report(&opts, &eps, &closed, &round_ratio, &open, wall.elapsed());
    Ok(())
}

fn report(
    opts: &Opts,
    eps: &[Endpoint],
    closed: &HashMap<Endpoint, Vec<Closed>>,
    round_ratio: &HashMap<Endpoint, Vec<f64>>,
    open: &HashMap<Endpoint, Vec<Open>>,
    elapsed: Duration,
) {
    let closed_med = |ep: Endpoint, f: &dyn Fn(&Closed) -> Option<f64>| {
        median(
            &closed
                .get(&ep)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(f)
                .collect::<Vec<_>>(),
        )
    };
    let open_med = |ep: Endpoint, f: &dyn Fn(&Open) -> f64| {
        median(
            &open
                .get(&ep)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(f)
                .collect::<Vec<_>>(),
        )
    };
    let ratio_of = |ep: Endpoint| median(round_ratio.get(&ep).map(Vec::as_slice).unwrap_or(&[]));
    let p50 = |o: &Open| ms(pct(&o.latency, 50.0));
    let p99 = |o: &Open| ms(pct(&o.latency, 99.0));
    let p99s = |o: &Open| ms(pct(&o.from_schedule, 99.0));
    let ceiling_rate = closed_med(Endpoint::Ceiling, &|c| Some(c.rate));
    let ceiling_cpu = closed_med(Endpoint::Ceiling, &Closed::server_us_per_req);

    println!();
    println!(
        "api_bench: {} rounds × {:.1} s closed loop (C={}), {} rounds × {:.1} s open loop at half peak ({} senders); server {} threads, client {} threads; {:.0} s in all",
        opts.rounds,
        opts.phase.as_secs_f64(),
        opts.concurrency,
        opts.open_rounds,
        opts.open.as_secs_f64(),
        opts.open_workers,
        opts.server_threads,
        opts.client_threads,
        elapsed.as_secs_f64(),
    );
    println!();
    println!("| endpoint | req/s (median) | min – max | ratio to ceiling (median of per-round) | server CPU µs/req | client CPU µs/req | busy cores | half-peak rate | p50 | p99 | p99 from schedule | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total_errors = 0;
    for &ep in eps {
        let runs = closed.get(&ep).map(Vec::as_slice).unwrap_or(&[]);
        let rates: Vec<f64> = runs.iter().map(|c| c.rate).collect();
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        let opens = open.get(&ep).map(Vec::as_slice).unwrap_or(&[]);
        let errors = runs.iter().map(|c| c.errors).sum::<u64>()
            + opens.iter().map(|o| o.errors + o.dropped).sum::<u64>();
        total_errors += errors;
        let lat = |v: f64| {
            if opens.is_empty() {
                "–".to_owned()
            } else {
                format!("{v:.2} ms")
            }
        };
        println!(
            "| {} | {:.0} | {:.0} – {:.0} | {:.1}% | {:.1} | {:.1} | {:.2} | {:.0}/s | {} | {} | {} | {} |",
            ep.name(),
            median(&rates),
            lo,
            hi,
            ratio_of(ep) * 100.0,
            closed_med(ep, &Closed::server_us_per_req),
            closed_med(ep, &Closed::client_us_per_req),
            closed_med(ep, &|c| Some(c.busy_cores())),
            open_med(ep, &|o| o.offered_rate),
            lat(open_med(ep, &p50)),
            lat(open_med(ep, &p99)),
            lat(open_med(ep, &p99s)),
            errors,
        );
    }
    let foreign: Vec<f64> = closed
        .values()
        .flatten()
        .filter(|c| c.cpu.available)
        .map(|c| c.cpu.foreign_cores)
        .collect();
    let foreign_open: Vec<f64> = open
        .values()
        .flatten()
        .filter(|o| o.cpu.available)
        .map(|o| o.cpu.foreign_cores)
        .collect();
    if !foreign.is_empty() {
        println!();
        println!(
            "Noise: other processes on the machine used {:.2} cores (median), {:.2} (max) during the closed-loop phases, {:.2} (median), {:.2} (max) during the open-loop phases; {} CPUs online.",
            median(&foreign),
            foreign.iter().copied().fold(0.0, f64::max),
            median(&foreign_open),
            foreign_open.iter().copied().fold(0.0, f64::max),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        );
    }
    println!();
    println!("Server CPU per request relative to the ceiling (ceiling µs ÷ endpoint µs):");
    for &ep in eps {
        let srv = closed_med(ep, &Closed::server_us_per_req);
        println!("- {}: {:.1}%", ep.name(), ceiling_cpu / srv * 100.0);
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!();
    println!("Aims (ceiling median {ceiling_rate:.0} req/s):");
    if eps.contains(&Endpoint::IsRoomActive) {
        let r = ratio_of(Endpoint::IsRoomActive);
        println!(
            "- isRoomActive ≥ 50% of ceiling: {:.1}% → {}",
            r * 100.0,
            verdict(r >= 0.5)
        );
    }
    if eps.contains(&Endpoint::CreateRoom) {
        let r = ratio_of(Endpoint::CreateRoom);
        println!(
            "- createRoom ≥ 20% of ceiling: {:.1}% → {}",
            r * 100.0,
            verdict(r >= 0.2)
        );
    }
    for &ep in eps {
        let Some(os) = open.get(&ep).filter(|o| !o.is_empty()) else {
            continue;
        };
        let worst = os.iter().map(p99).fold(0.0, f64::max);
        let peak = os.iter().map(|o| o.peak_in_flight).max().unwrap_or(0);
        let (a, b) = (open_med(ep, &p99), open_med(ep, &p99s));
        println!(
            "- {} p99 < 5 ms at half peak: issue→reply {:.2} ms → {} (worst round {:.2} ms); from schedule {:.2} ms → {}; peak in flight {}/{} senders",
            ep.name(),
            a,
            verdict(a < 5.0),
            worst,
            b,
            verdict(b < 5.0),
            peak,
            opts.open_workers,
        );
    }
    println!();
    if total_errors > 0 {
        println!("WARNING: {total_errors} requests failed or were dropped; the figures above include a run with errors.");
    } else {
        println!("No errors: every reply was HTTP 200 with \"status\":true.");
    }
}
