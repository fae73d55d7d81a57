//! `enclave-bench recorder`: the cloud recorder and the RTMP broadcast of a 4-participant 720p
//! meeting: CPU and memory, side by side in one run with one plain `ffmpeg` doing the same
//! composition (the peer), and the time from the stop request to a finished file.
//!
//! ```text
//! cargo run --release -p enclave-bench -- recorder [options]     # options: --help
//! ```
//!
//! Prints a markdown report on stdout, progress on stderr. Needs ffmpeg, ffprobe, nginx and
//! its RTMP module (Debian: ffmpeg nginx-light libnginx-mod-rtmp).
//!
//! Method (see docs/benchmarks.md):
//! - Four different 30 s clips (1280x720 25 fps VP8 at ~1.5 Mbit/s with a keyframe every 2 s,
//!   Opus 48 kHz mono with a tone of its own) are generated once per run ([`media`]). Each
//!   participant is one `ffmpeg -re -stream_loop` that only copies a clip into RTP (video and
//!   audio) on 127.0.0.1: no encoding while measuring.
//! - Every phase runs in a fresh child process of this bench (`enclave-bench recorder-worker
//!   --arm <arm>`, [`worker`]), so its memory is not polluted by earlier phases. The arms:
//!   - `baseline`: the replays, received on the worker's UDP sockets and parsed into
//!     `SinkPacket`s, which are dropped. Its CPU and RSS are the bench's own overhead.
//!   - `file`: the same packets fed to a `Pipeline` with `Target::File`.
//!   - `rtmp`: the same with `Target::Rtmp` to a local nginx-rtmp (`live on`, no record).
//!   - `peer`: the replays go straight to one plain ffmpeg with 4 SDP inputs that scales each
//!     video to 640x360, `xstack`s them 2x2, `amix`es the audio, and encodes with our
//!     encoder's settings to an MP4.
//! - Every second the parent reads utime+stime and RSS from /proc for the worker and every
//!   process below it ([`sample`]), classified by command line: the worker itself (the
//!   compositor, after subtracting the baseline worker of the same round), the track decoders,
//!   the encoder, the peer; the replays are left out (their pids are also reported by the
//!   worker). Medians of those 1 s samples over the recording, after the warm-up; peaks from
//!   the samples and from each process's VmHWM ([`phase`]).
//! - Stop → finished: inside the worker, from `request_stop()` to `wait()` returning Ok (the
//!   MP4 finalised and renamed); for the peer, from sending `q` to its exit.
//! - Every output is checked with ffprobe (one H.264 1280x720 video and one AAC audio stream,
//!   duration ≈ the recording's length, all four tiles showing a picture, audible mix,
//!   [`check`]); a phase that fails its check is reported as broken and left out of the
//!   figures ([`report`]).
//! - Everything is on 127.0.0.1 and bounded in time; only processes this bench started are
//!   killed, by pid; the temp directory is removed at the end.

mod check;
mod media;
mod phase;
mod report;
mod sample;
mod worker;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::bail;
use tokio::process::Command;

use enclave_bench::procfs;
use phase::{run_phase, Ctx};
use sample::Kind;

const PARTICIPANTS: usize = 4;
const CLIP_SECS: u64 = 30;
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const FPS: u32 = 25;
const TONES: [u32; PARTICIPANTS] = [220, 330, 440, 550];
const PT_VIDEO: u8 = 96;
const PT_AUDIO: u8 = 111;
/// Seconds a worker may run beyond its recording before it is killed.
const WORKER_GRACE: u64 = 240;
/// How long a worker waits for a pipeline or the peer to finish after the stop.
const FINISH_LIMIT: Duration = Duration::from_secs(180);
const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// Options of the recorder benchmark.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Opts {
    /// Length of every measured recording / broadcast / peer run (seconds).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(10..=3600))]
    secs: u64,
    /// Rounds of baseline, ours (file), peer, ours (RTMP).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=20))]
    rounds: u64,
    /// Afterwards, one recording of --long-secs (stop → finished file).
    #[arg(long)]
    long: bool,
    /// Length of the --long recording (seconds).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(10..=7200))]
    long_secs: u64,
    /// Seconds after the start left out of the CPU/RSS medians.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=60))]
    warmup: u64,
    /// Length of the baseline (replay + parse only) phases (seconds).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(10..=3600))]
    baseline_secs: u64,
}

/// Options of one worker (started by the benchmark itself).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct WorkerOpts {
    #[arg(long, value_enum)]
    arm: Arm,
    /// Length of the recording (seconds).
    #[arg(long)]
    secs: u64,
    /// The run's directory (the clips, the pipeline's work directory).
    #[arg(long)]
    dir: PathBuf,
    /// The output file (its directory also holds the peer's SDP files and log).
    #[arg(long)]
    out: PathBuf,
    /// The RTMP URL of the `rtmp` arm.
    #[arg(long, default_value = "")]
    url: String,
}

/// What one phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
enum Arm {
    Baseline,
    File,
    Peer,
    Rtmp,
}

impl Arm {
    fn flag(self) -> &'static str {
        match self {
            Arm::Baseline => "baseline",
            Arm::File => "file",
            Arm::Peer => "peer",
            Arm::Rtmp => "rtmp",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Arm::Baseline => "baseline (replay + parse)",
            Arm::File => "ours → MP4",
            Arm::Peer => "peer ffmpeg → MP4",
            Arm::Rtmp => "ours → RTMP",
        }
    }

    /// The kinds whose CPU and memory make up this arm's cost.
    fn counted(self) -> &'static [Kind] {
        match self {
            Arm::Baseline => &[Kind::Worker],
            Arm::File | Arm::Rtmp => &[
                Kind::Worker,
                Kind::VideoDecoder,
                Kind::AudioDecoder,
                Kind::Encoder,
            ],
            Arm::Peer => &[Kind::Peer],
        }
    }
}

fn mib(kb: f64) -> f64 {
    kb / 1024.0
}

/// Sends `signal` to one pid we started.
fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn ffmpeg() -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-loglevel", "error"]);
    c.kill_on_drop(true);
    c
}

fn loadavg() -> String {
    procfs::loadavg().unwrap_or_else(|| "?".into())
}

fn now_utc() -> String {
    crate::report::now(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ))
}

/// The first line a program prints (on stdout, else on stderr).
fn first_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let s = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&s)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_else(|e| format!("({cmd}: {e})"))
}

/// Runs the benchmark and prints its markdown report.
pub(crate) fn run(opts: Opts) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(orchestrate(opts))
}

/// Runs one worker.
pub(crate) fn run_worker(w: WorkerOpts) -> anyhow::Result<()> {
    // As the server would run it on this machine: a multi-thread runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(worker::worker(w))
}

async fn orchestrate(opts: Opts) -> anyhow::Result<()> {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = std::process::Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            bail!("`{tool}` is required (Debian: apt-get install ffmpeg)");
        }
    }
    let command = format!(
        "cargo run --release -p enclave-bench -- recorder {}",
        std::env::args()
            .skip_while(|a| a != "recorder")
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let machine = crate::report::Machine::read();
    let load_start = loadavg();
    let date_start = now_utc();
    let tmp = tempfile::Builder::new()
        .prefix("enclave-recorder-bench-")
        .tempdir()?;
    let dir = tmp.path().to_owned();
    std::fs::create_dir_all(dir.join("out"))?;
    eprintln!("recorder bench in {} (load {load_start})", dir.display());
    let clips = media::generate_clips(&dir).await?;
    let nginx = if opts.rounds > 0 {
        Some(media::start_nginx(&dir).await?)
    } else {
        None
    };
    let ctx = Ctx {
        dir: dir.clone(),
        warmup: opts.warmup,
        nginx: nginx.as_ref().map(|n| (n.pid, n.port)),
    };
    let rounds = opts.rounds as usize;
    let mut phases = Vec::new();
    for round in 1..=rounds {
        phases.push(run_phase(&ctx, Arm::Baseline, round, opts.baseline_secs).await);
        phases.push(run_phase(&ctx, Arm::File, round, opts.secs).await);
        phases.push(run_phase(&ctx, Arm::Peer, round, opts.secs).await);
        phases.push(run_phase(&ctx, Arm::Rtmp, round, opts.secs).await);
    }
    if let Some(n) = nginx {
        media::stop_nginx(n).await;
    }
    let mut long = Vec::new();
    if opts.long {
        let round = rounds + 1;
        long.push(run_phase(&ctx, Arm::Baseline, round, opts.baseline_secs).await);
        long.push(run_phase(&ctx, Arm::File, round, opts.long_secs).await);
    }
    let load_end = loadavg();
    let date_end = now_utc();
    let report = report::Report {
        opts: &opts,
        machine,
        command,
        clips,
        load_start,
        load_end,
        date_start,
        date_end,
        phases: &phases,
        long: &long,
    };
    print!("{}", report.render());
    drop(tmp);
    let broken = phases.iter().chain(&long).filter(|p| !p.valid()).count();
    if broken > 0 {
        bail!("{broken} phase(s) broken: see the report");
    }
    Ok(())
}
