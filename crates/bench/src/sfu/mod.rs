//! `enclave-bench sfu`: the embedded SFU under load, against the machine's ceiling, in one run.
//!
//! ```text
//! cargo run --release -p enclave-bench -- sfu [options]
//! ```
//!
//! The real server (`enclave_server::Server`, media runtime included) runs in a child process
//! (this executable as `enclave-bench sfu-server`) on 127.0.0.1; bots — str0m-based LiveKit
//! clients, see [`enclave_bench::bot`] — join rooms over `/rtc` and send RTP whose payloads
//! carry a counter, a send time and a checksum (no codec). Scenarios:
//!
//! - idle memory: participants join in steps with no media; server RSS per participant;
//! - 1 → N fan-out and N × N meetings, each: fixed-rate rounds (CPU per subscriber), a peak
//!   search (rate × step until loss > limit), rounds at the peak each next to a run of the
//!   ceiling (a bare UDP `send_to` loop of same-size datagrams), rounds at half the peak
//!   (latency percentiles).
//!
//! Server CPU is read from `/proc/<child>/task/*/schedstat`, so "per core" means per second of
//! server CPU, however the noisy, shared 2-core machine splits its time. Everything is bounded:
//! phases end by time, bots leave, the child stops when its stdin closes (or after its own
//! limit), and a watchdog ends the run after `--max-secs`.

mod report;
mod scenario;
pub(crate) mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use enclave_bench::{bot, procfs};
use scenario::{Bench, Lanes, Shape};

/// Progress on stderr.
fn say(msg: impl AsRef<str>) {
    eprintln!("[enclave-bench sfu] {}", msg.as_ref());
}

/// Options of the SFU benchmark.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Opts {
    /// Fan-out sizes (subscribers of one publisher); the flag alone skips them.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "10,25,50")]
    pub(crate) fanout: Vec<usize>,
    /// Meeting sizes (everyone publishes one stream and receives all others); the flag alone
    /// skips them.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "5,10")]
    pub(crate) meeting: Vec<usize>,
    /// RTP payload bytes.
    #[arg(long, default_value_t = 1000)]
    pub(crate) payload: usize,
    /// Fixed video-like rate per publisher (packets/s) for the CPU-per-subscriber rounds.
    #[arg(long, default_value_t = 300.0)]
    pub(crate) base_rate: f64,
    /// Rounds at the fixed rate, at the peak (each next to a ceiling run) and at half peak.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Length of one measured round (seconds).
    #[arg(long, default_value_t = 2.0)]
    pub(crate) phase_secs: f64,
    /// Unmeasured time after each rate change (ms).
    #[arg(long, default_value_t = 500)]
    pub(crate) warmup_ms: u64,
    /// Length of one peak-search step (seconds).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) ramp_secs: f64,
    /// Rate factor between peak-search steps.
    #[arg(long, default_value_t = 1.4)]
    pub(crate) ramp_step: f64,
    /// Forwarded packets/s of the first peak-search step.
    #[arg(long, default_value_t = 20_000.0)]
    pub(crate) ramp_start_fwd: f64,
    /// Cap on the forwarded packets/s the search asks for.
    #[arg(long, default_value_t = 1_000_000.0)]
    pub(crate) max_fwd: f64,
    /// Loss above which a rate is not sustained (fraction).
    #[arg(long, default_value_t = 0.01)]
    pub(crate) max_loss: f64,
    /// Idle participants for the memory measurement; 0 to skip.
    #[arg(long, default_value_t = 100)]
    pub(crate) idle: usize,
    /// Steps in which the idle participants join (the first carries one-time costs and is
    /// left out of the median when there are more).
    #[arg(long, default_value_t = 5)]
    pub(crate) idle_steps: usize,
    /// Subscribers per room that decrypt and verify every payload and measure latency.
    #[arg(long, default_value_t = 2)]
    pub(crate) probes: usize,
    /// Worker threads of the bots' main runtime (probes and the fan-out publisher get a
    /// thread each besides).
    #[arg(long, default_value_t = 2)]
    pub(crate) bot_threads: usize,
    /// Worker threads of the server's runtime (the `enclave` binary uses one per core).
    #[arg(long, default_value_t = default_threads())]
    pub(crate) server_threads: usize,
    /// Length of one ceiling run (seconds).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) ceiling_secs: f64,
    /// Hard limit on the whole run (seconds).
    #[arg(long, default_value_t = 900)]
    pub(crate) max_secs: u64,
    /// Also write the markdown report to this file.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A current-thread runtime on a thread of its own.
struct Lane {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lane {
    fn start(name: &str) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = rx.await;
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Self {
            handle,
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the benchmark and prints its markdown report.
pub(crate) fn run(opts: Opts) -> anyhow::Result<()> {
    // Watchdog: the run stops by itself. The child server sees its stdin close and stops too.
    {
        let limit = Duration::from_secs(opts.max_secs);
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                std::thread::sleep(limit);
                say(format!(
                    "time limit of {} s reached; exiting",
                    limit.as_secs()
                ));
                std::process::exit(2);
            })?;
    }
    let _ = bot::epoch();
    let machine = crate::report::Machine::read();
    let started = Instant::now();
    let srv =
        server::ServerProc::start(opts.server_threads, Duration::from_secs(opts.max_secs + 30))?;
    say(format!(
        "server pid {} on http://{} and udp {}",
        srv.pid, srv.http, srv.udp
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.bot_threads.max(1))
        .thread_name("bots")
        .enable_all()
        .build()?;
    let probes = Lane::start("probes")?;
    let pubs = Lane::start("pubs")?;
    let lanes = Lanes {
        bots: rt.handle().clone(),
        probes: probes.handle.clone(),
        pubs: pubs.handle.clone(),
    };
    let result = rt.block_on(async {
        let mut b = Bench::new(&opts, &srv, &lanes)?;
        let idle = if opts.idle > 0 {
            Some(b.idle_memory().await?)
        } else {
            None
        };
        let mut scenarios = Vec::new();
        for &n in &opts.fanout {
            scenarios.push(b.scenario(Shape::FanOut(n)).await?);
        }
        for &n in &opts.meeting {
            scenarios.push(b.scenario(Shape::Meeting(n)).await?);
        }
        anyhow::Ok((idle, scenarios))
    });
    drop(probes);
    drop(pubs);
    rt.shutdown_timeout(Duration::from_secs(2));
    let mut srv = srv;
    srv.stop();
    let (idle, scenarios) = result?;
    let load_end = procfs::loadavg().unwrap_or_default();
    let md = report::render(
        &opts,
        &machine,
        &load_end,
        idle.as_ref(),
        &scenarios,
        started.elapsed(),
    );
    println!("{md}");
    if let Some(p) = &opts.out {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
