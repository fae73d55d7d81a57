//! `enclave-bench api`: room API throughput against its ceiling, side by side in one run.
//!
//! Drives `createRoom`, `getJoinToken` and `isRoomActive` over HTTP on 127.0.0.1 and, in the
//! same run, a bare `/auth/bench/ceiling` endpoint that does only the HMAC check (the same
//! middleware as every `/auth` route) and returns a constant reply: the ceiling.
//!
//! ```text
//! cargo run --release -p enclave-bench -- api [options]     # options: --help
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

mod breakdown;
mod load;
mod report;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::task::JoinSet;

use crate::auth::{API_KEY, API_SECRET};
use crate::stats::median;
use load::{closed_loop, ms, open_loop, Closed, Open, Target};

const CEILING_PATH: &str = "/auth/bench/ceiling";
const CEILING_REPLY: &str = r#"{"status":true,"msg":"success","status_code":"SUCCESS"}"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub(crate) enum Endpoint {
    /// The HMAC check alone and a constant reply.
    #[value(name = "ceiling")]
    Ceiling,
    #[value(name = "create")]
    CreateRoom,
    #[value(name = "join")]
    GetJoinToken,
    #[value(name = "active")]
    IsRoomActive,
}

impl Endpoint {
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

/// A length of time in seconds, in (0, 60].
fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if v > 0.0 && v <= 60.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err("must be in (0, 60] seconds".into())
    }
}

/// Options of the room API benchmark.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Opts {
    /// Closed-loop workers.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub(crate) concurrency: u64,
    /// Length of one closed-loop phase (seconds).
    #[arg(long = "phase-secs", default_value = "3", value_parser = secs)]
    pub(crate) phase: Duration,
    /// Closed-loop rounds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub(crate) rounds: u64,
    /// Length of one open-loop (half-peak) phase (seconds).
    #[arg(long = "open-secs", default_value = "3", value_parser = secs)]
    pub(crate) open: Duration,
    /// Open-loop rounds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub(crate) open_rounds: u64,
    /// Unmeasured warm-up before every phase (ms).
    #[arg(long = "warmup-ms", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub(crate) warmup_ms: u64,
    /// Rooms created up front for join/active.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) seed_rooms: u64,
    /// Worker threads of the server's runtime.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub(crate) server_threads: u64,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub(crate) client_threads: u64,
    /// Open-loop sender tasks (connections).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(crate) open_workers: u64,
    /// Endpoints to measure (without the ceiling no ratios are printed: for profiling).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ceiling,create,join,active"
    )]
    pub(crate) only: Vec<Endpoint>,
    /// createRoom cost pieces, this many ops each; 0 skips them.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub(crate) breakdown: u64,
}

impl Opts {
    fn warmup(&self) -> Duration {
        Duration::from_millis(self.warmup_ms)
    }
}

/// The server, on its own runtime, with the ceiling route besides the real ones.
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
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    CEILING_REPLY,
                )
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

/// Runs the benchmark and prints its report.
pub(crate) fn run(opts: Opts) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("enclave-api-bench-")
        .tempdir()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.server_threads as usize)
        .thread_name("bench-srv")
        .thread_keep_alive(Duration::from_secs(600))
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads as usize)
        .thread_name("bench-cli")
        .enable_all()
        .build()?;

    let result = start_server(&server_rt, dir.path()).and_then(|(addr, app)| {
        client_rt.block_on(drive(opts.clone(), addr))?;
        if opts.breakdown > 0 {
            server_rt.block_on(breakdown::run(
                app,
                opts.breakdown,
                opts.concurrency as usize,
            ))?;
        }
        Ok(())
    });

    client_rt.shutdown_timeout(Duration::from_secs(2));
    server_rt.shutdown_timeout(Duration::from_secs(5));
    let path = dir.path().to_owned();
    if let Err(e) = dir.close() {
        eprintln!("could not remove {}: {e}", path.display());
    }
    result
}

/// Seeds rooms, then the closed-loop rounds and the open-loop rounds; prints the report.
async fn drive(opts: Opts, addr: SocketAddr) -> anyhow::Result<()> {
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
    let concurrency = opts.concurrency as usize;
    let open_workers = opts.open_workers as usize;

    // Seed rooms for getJoinToken and isRoomActive, all checked.
    let mut seeded = 0;
    let mut set = JoinSet::new();
    for _ in 0..opts.seed_rooms {
        let t = t.clone();
        set.spawn(async move { t.call(Endpoint::CreateRoom).await });
        if set.len() >= concurrency {
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
    for round in 0..opts.rounds as usize {
        let mut order = eps.clone();
        order.rotate_left(round % eps.len());
        let mut this_round: HashMap<Endpoint, Closed> = HashMap::new();
        for ep in order {
            if !opts.warmup().is_zero() {
                closed_loop(&t, ep, concurrency, opts.warmup()).await;
            }
            let r = closed_loop(&t, ep, concurrency, opts.phase).await;
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
    for round in 0..opts.open_rounds as usize {
        let mut order = eps.clone();
        order.rotate_left(round % eps.len());
        for ep in order {
            let rate = peak[&ep] / 2.0;
            if !opts.warmup().is_zero() {
                closed_loop(&t, ep, open_workers, opts.warmup()).await;
            }
            let o = open_loop(&t, ep, rate, opts.open, open_workers).await;
            eprintln!(
                "open {} {:<8} target {:>8.0}/s offered {:>8.0}/s  p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  lag p99 {:.3} ms  from-schedule p99 {:.3} ms  peak in flight {}/{}  others {:.2} cores  err {} dropped {}",
                round + 1,
                ep.short(),
                o.target_rate,
                o.offered_rate,
                ms(&o.latency, 50.0),
                ms(&o.latency, 99.0),
                ms(&o.latency, 99.9),
                ms(&o.latency, 100.0),
                ms(&o.lag, 99.0),
                ms(&o.from_schedule, 99.0),
                o.peak_in_flight,
                opts.open_workers,
                o.cpu.foreign_cores,
                o.errors,
                o.dropped,
            );
            open.entry(ep).or_default().push(o);
        }
    }

    print!(
        "{}",
        report::render(&opts, &eps, &closed, &round_ratio, &open, wall.elapsed())
    );
    Ok(())
}
