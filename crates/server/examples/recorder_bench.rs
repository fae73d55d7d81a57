//! The cloud recorder and the RTMP broadcast of a 4-participant 720p meeting: CPU and memory,
//! side by side in one run with one plain `ffmpeg` doing the same composition (the peer), and
//! the time from the stop request to a finished file.
//!
//! ```text
//! cargo run --release -p enclave-server --example recorder_bench -- [options]
//!
//!   --secs S        length of every measured recording / broadcast / peer run  (default 60)
//!   --rounds N      rounds of baseline, ours (file), peer, ours (RTMP)         (default 3)
//!   --long          afterwards, one recording of --long-secs (stop → finished file)
//!   --long-secs S   length of the --long recording                             (default 600)
//!   --warmup S      seconds after the start left out of the CPU/RSS medians    (default 5)
//!   --baseline-secs S  length of the baseline (replay + parse only) phases     (default 30)
//! ```
//!
//! Prints a markdown report on stdout, progress on stderr. Needs ffmpeg, ffprobe, nginx and
//! its RTMP module (Debian: ffmpeg nginx-light libnginx-mod-rtmp).
//!
//! Method (see docs/benchmarks.md):
//! - Four different 30 s clips (1280x720 25 fps VP8 at ~1.5 Mbit/s with a keyframe every 2 s,
//!   Opus 48 kHz mono with a tone of its own) are generated once per run. Each participant is
//!   one `ffmpeg -re -stream_loop` that only copies a clip into RTP (video and audio) on
//!   127.0.0.1: no encoding while measuring.
//! - Every phase runs in a fresh child process of this bench (`--worker <arm>`), so its memory
//!   is not polluted by earlier phases. The arms:
//!   - `baseline`: the replays, received on the worker's UDP sockets and parsed into
//!     `SinkPacket`s, which are dropped. Its CPU and RSS are the bench's own overhead.
//!   - `file`: the same packets fed to a `Pipeline` with `Target::File`.
//!   - `rtmp`: the same with `Target::Rtmp` to a local nginx-rtmp (`live on`, no record).
//!   - `peer`: the replays go straight to one plain ffmpeg with 4 SDP inputs that scales each
//!     video to 640x360, `xstack`s them 2x2, `amix`es the audio, and encodes with our
//!     encoder's settings to an MP4.
//! - Every second the parent reads utime+stime and RSS from /proc for the worker and every
//!   process below it, classified by command line: the worker itself (the compositor, after
//!   subtracting the baseline worker of the same round), the track decoders, the encoder, the
//!   peer; the replays are left out (their pids are also reported by the worker). Medians of
//!   those 1 s samples over the recording, after the warm-up; peaks from the samples and from
//!   each process's VmHWM.
//! - Stop → finished: inside the worker, from `request_stop()` to `wait()` returning Ok (the
//!   MP4 finalised and renamed); for the peer, from sending `q` to its exit.
//! - Every output is checked with ffprobe (one H.264 1280x720 video and one AAC audio stream,
//!   duration ≈ the recording's length, all four tiles showing a picture, audible mix); a phase
//!   that fails its check is reported as broken and left out of the figures.
//! - Everything is on 127.0.0.1 and bounded in time; only processes this bench started are
//!   killed, by pid; the temp directory is removed at the end.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use enclave_server::recorder::pipeline::{Pipeline, PipelineConfig};
use enclave_server::recorder::{SinkCodec, SinkInput, SinkPacket, SinkTrack, SinkTrackId, Target};

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

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Opts {
    secs: u64,
    rounds: usize,
    long: bool,
    long_secs: u64,
    warmup: u64,
    baseline_secs: u64,
    worker: Option<WorkerOpts>,
}

#[derive(Debug, Clone, Default)]
struct WorkerOpts {
    arm: String,
    dir: PathBuf,
    out: PathBuf,
    url: String,
}

fn parse_args() -> anyhow::Result<Opts> {
    let mut o = Opts {
        secs: 60,
        rounds: 3,
        long: false,
        long_secs: 600,
        warmup: 5,
        baseline_secs: 30,
        worker: None,
    };
    let mut w = WorkerOpts::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => {
                println!("see the header of crates/server/examples/recorder_bench.rs");
                std::process::exit(0);
            }
            "--long" => {
                o.long = true;
                continue;
            }
            _ => {}
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let num = || -> anyhow::Result<u64> {
            value
                .parse::<u64>()
                .with_context(|| format!("{flag}: '{value}' is not a whole number"))
        };
        match flag.as_str() {
            "--secs" => o.secs = num()?.clamp(10, 3600),
            "--rounds" => o.rounds = num()?.min(20) as usize,
            "--long-secs" => o.long_secs = num()?.clamp(10, 7200),
            "--warmup" => o.warmup = num()?.min(60),
            "--baseline-secs" => o.baseline_secs = num()?.clamp(10, 3600),
            "--worker" => w.arm = value.clone(),
            "--dir" => w.dir = PathBuf::from(&value),
            "--out" => w.out = PathBuf::from(&value),
            "--url" => w.url = value.clone(),
            other => bail!("unknown option {other} (try --help)"),
        }
    }
    if !w.arm.is_empty() {
        o.worker = Some(w);
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let opts = parse_args()?;
    if let Some(w) = opts.worker.clone() {
        // As the server would run it on this machine: a multi-thread runtime.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        return rt.block_on(worker(w, opts.secs));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(orchestrate(opts))
}

// ---------------------------------------------------------------------------------------------
// Small helpers

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

fn max_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn mib(kb: f64) -> f64 {
    kb / 1024.0
}

/// Binds an even UDP port and the odd one above it (the replays send RTCP to `port + 1`).
fn bind_pair() -> anyhow::Result<(std::net::UdpSocket, std::net::UdpSocket)> {
    for _ in 0..128 {
        let a = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let p = a.local_addr()?.port();
        if p % 2 != 0 || p == u16::MAX {
            continue;
        }
        if let Ok(b) = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, p + 1)) {
            return Ok((a, b));
        }
    }
    bail!("no free even UDP port pair on 127.0.0.1")
}

fn udp_port_bound(port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&suffix))
        })
}

fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
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
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

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

// ---------------------------------------------------------------------------------------------
// RTP in: the replays and the parser

/// Minimal RTP parsing (version 2, CSRCs, header extension, padding); RTCP is skipped.
fn parse_rtp(b: &[u8]) -> Option<(u16, u32, bool, &[u8])> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let pt = b[1] & 0x7f;
    if (72..=76).contains(&pt) {
        return None;
    }
    let mut off = 12 + 4 * usize::from(b[0] & 0x0f);
    if b[0] & 0x10 != 0 {
        let ext = b.get(off + 2..off + 4)?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        let pad = usize::from(*b.last()?);
        if pad == 0 || pad > end.saturating_sub(off) {
            return None;
        }
        end -= pad;
    }
    if off > end {
        return None;
    }
    let seq = u16::from_be_bytes([b[2], b[3]]);
    let ts = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    Some((seq, ts, b[1] & 0x80 != 0, &b[off..end]))
}

#[derive(Default)]
struct InStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
}

/// Receives one replayed stream and hands it on as one track, announced first.
async fn forward(
    sock: UdpSocket,
    track: SinkTrack,
    tx: mpsc::Sender<SinkInput>,
    stats: Arc<InStats>,
) {
    let id = track.id;
    let _ = tx.send(SinkInput::Track(track)).await;
    let mut buf = vec![0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf).await {
        let Some((seq, timestamp, marker, payload)) = parse_rtp(&buf[..n]) else {
            continue;
        };
        stats.packets.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        let p = SinkPacket {
            track: id,
            seq,
            timestamp,
            marker,
            payload: payload.to_vec(),
        };
        // After the stop the pipeline no longer reads: a closed channel is not a drop.
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(SinkInput::Packet(p)) {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One participant: an ffmpeg copying clip `i` into RTP, video to `vport`, audio to `aport`,
/// bounded to `secs + 60` s of output so nothing outlives a lost bench.
fn spawn_replay(dir: &Path, i: usize, vport: u16, aport: u16, secs: u64) -> anyhow::Result<Child> {
    let bound = secs + 60;
    let loops = (bound / CLIP_SECS + 1).to_string();
    let bound = bound.to_string();
    let clip = dir.join(format!("clip{i}.webm"));
    let mut c = ffmpeg();
    #[rustfmt::skip]
    c.args(["-re", "-stream_loop", &loops, "-i"]).arg(&clip).args([
        "-map", "0:v:0", "-c", "copy", "-t", &bound, "-payload_type", &PT_VIDEO.to_string(),
        "-f", "rtp", &format!("rtp://127.0.0.1:{vport}"),
        "-map", "0:a:0", "-c", "copy", "-t", &bound, "-payload_type", &PT_AUDIO.to_string(),
        "-f", "rtp", &format!("rtp://127.0.0.1:{aport}"),
    ]);
    c.stdin(Stdio::null()).stdout(Stdio::null());
    c.spawn().context("starting a replay ffmpeg")
}

// ---------------------------------------------------------------------------------------------
// The worker: one phase in its own process. Talks to the parent in JSON lines on stdout.

fn emit(v: Value) {
    println!("{v}");
}

/// What the pipeline logged when it finished (its lag is not in the public API).
#[derive(Default, Clone, Copy)]
struct PipelineLog {
    max_lag_ms: Option<u64>,
    frames: Option<u64>,
    tracks: Option<u64>,
    decoder_restarts: u64,
}

static PIPELINE_LOG: Mutex<PipelineLog> = Mutex::new(PipelineLog {
    max_lag_ms: None,
    frames: None,
    tracks: None,
    decoder_restarts: 0,
});

#[derive(Default)]
struct Fields {
    message: String,
    max_lag_ms: Option<u64>,
    frames: Option<u64>,
    tracks: Option<u64>,
}

impl tracing::field::Visit for Fields {
    fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
        match f.name() {
            // How far behind a tick's time the output ran, at worst.
            "writer_lag_ms" => self.max_lag_ms = Some(v),
            "frames" => self.frames = Some(v),
            "tracks" => self.tracks = Some(v),
            _ => {}
        }
    }
    fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
        self.record_u64(f, v.max(0) as u64);
    }
    fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
        if f.name() == "message" {
            self.message = v.to_owned();
        }
    }
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        if f.name() == "message" {
            self.message = format!("{v:?}");
        }
    }
}

struct Capture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut f = Fields::default();
        event.record(&mut f);
        let mut log = PIPELINE_LOG.lock().unwrap_or_else(|e| e.into_inner());
        if f.message.contains("recorder pipeline finished") {
            log.max_lag_ms = f.max_lag_ms;
            log.frames = f.frames;
            log.tracks = f.tracks;
        } else if f.message.contains("track decoder") {
            log.decoder_restarts += 1;
        }
    }
}

fn init_worker_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::new(
        std::env::var("RUST_LOG").unwrap_or_else(|_| "enclave_server::recorder=info".into()),
    );
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .with(Capture)
        .try_init();
}

async fn worker(w: WorkerOpts, secs: u64) -> anyhow::Result<()> {
    init_worker_tracing();
    // The parent holds our stdin open; if it goes away, so do we (and our children).
    let abort = CancellationToken::new();
    std::thread::spawn({
        let abort = abort.clone();
        move || {
            use std::io::Read as _;
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            abort.cancel();
        }
    });
    let r = match w.arm.as_str() {
        "baseline" | "file" | "rtmp" => worker_ours(&w, secs, &abort).await,
        "peer" => worker_peer(&w, secs, &abort).await,
        other => Err(anyhow::anyhow!("unknown arm {other}")),
    };
    match r {
        Ok(v) => {
            emit(v);
            Ok(())
        }
        Err(e) => {
            emit(json!({ "ev": "result", "ok": false, "error": format!("{e:#}") }));
            Err(e)
        }
    }
}

async fn stop_replays(replays: &mut [Child]) {
    for c in replays.iter_mut() {
        let _ = c.start_kill();
    }
    for c in replays.iter_mut() {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
    }
}

async fn worker_ours(
    w: &WorkerOpts,
    secs: u64,
    abort: &CancellationToken,
) -> anyhow::Result<Value> {
    let (tx, rx) = mpsc::channel::<SinkInput>(8192);
    let (kf_tx, mut kf_rx) = mpsc::unbounded_channel::<String>();
    let kf_count = Arc::new(AtomicU64::new(0));
    tokio::spawn({
        let kf_count = kf_count.clone();
        async move {
            while kf_rx.recv().await.is_some() {
                kf_count.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let cfg = PipelineConfig {
        work_dir: w.dir.join("work"),
        ..PipelineConfig::default()
    };
    let mut pipeline = match w.arm.as_str() {
        "file" => Some(Pipeline::start(
            cfg,
            Target::File {
                path: w.out.clone(),
            },
            rx,
            kf_tx,
        )?),
        "rtmp" => Some(Pipeline::start(
            cfg,
            Target::Rtmp { url: w.url.clone() },
            rx,
            kf_tx,
        )?),
        _ => {
            // The baseline: the packets are parsed and handed over exactly as for the
            // pipeline, then dropped.
            drop(kf_tx);
            let mut rx = rx;
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            None
        }
    };

    let stats = Arc::new(InStats::default());
    let mut forwarders = Vec::new();
    let mut ports = Vec::new();
    let mut rtcp = Vec::new();
    for i in 0..PARTICIPANTS {
        let mut pair = Vec::new();
        for video in [true, false] {
            let (rtp, rtcp_sock) = bind_pair()?;
            pair.push(rtp.local_addr()?.port());
            rtp.set_nonblocking(true)?;
            let sock = UdpSocket::from_std(rtp)?;
            let track = SinkTrack {
                id: SinkTrackId(2 * i as u32 + u32::from(video)),
                track_sid: if video {
                    format!("TR_cam{i}")
                } else {
                    format!("TR_mic{i}")
                },
                participant_identity: format!("participant-{i}"),
                video,
                codec: if video {
                    SinkCodec::Vp8
                } else {
                    SinkCodec::Opus
                },
                clock_rate: if video { 90_000 } else { 48_000 },
            };
            forwarders.push(tokio::spawn(forward(
                sock,
                track,
                tx.clone(),
                stats.clone(),
            )));
            rtcp.push(rtcp_sock);
        }
        ports.push((pair[0], pair[1]));
    }
    drop(tx);
    let mut replays = Vec::new();
    for (i, (v, a)) in ports.iter().enumerate() {
        replays.push(spawn_replay(&w.dir, i, *v, *a, secs)?);
    }
    let replay_pids: Vec<u32> = replays.iter().filter_map(Child::id).collect();
    emit(json!({ "ev": "started", "replays": replay_pids }));

    let aborted = tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(secs)) => false,
        _ = abort.cancelled() => true,
    };
    if aborted {
        stop_replays(&mut replays).await;
        bail!("the bench went away");
    }
    emit(json!({ "ev": "stopping" }));
    let t0 = Instant::now();
    let finished = match pipeline.as_mut() {
        Some(p) => {
            p.request_stop();
            let r = tokio::time::timeout(FINISH_LIMIT, p.wait()).await;
            Some(match r {
                Ok(r) => r.context("the pipeline failed")?,
                Err(_) => bail!("the pipeline did not finish within {FINISH_LIMIT:?}"),
            })
        }
        None => None,
    };
    let stop_s = t0.elapsed().as_secs_f64();
    stop_replays(&mut replays).await;
    for f in forwarders {
        f.abort();
    }
    drop(rtcp);
    let log = *PIPELINE_LOG.lock().unwrap_or_else(|e| e.into_inner());
    Ok(json!({
        "ev": "result",
        "ok": true,
        "stop_s": finished.is_some().then_some(stop_s),
        "bytes": finished.as_ref().map(|f| f.bytes),
        "duration_s": finished.as_ref().map(|f| f.duration.as_secs_f64()),
        "frames_repeated": finished.as_ref().map(|f| f.frames_repeated),
        "packets": stats.packets.load(Ordering::Relaxed),
        "bytes_in": stats.bytes.load(Ordering::Relaxed),
        "dropped": stats.dropped.load(Ordering::Relaxed),
        "kf_requests": kf_count.load(Ordering::Relaxed),
        "max_lag_ms": log.max_lag_ms,
        "frames": log.frames,
        "tracks": log.tracks,
        "decoder_restarts": log.decoder_restarts,
    }))
}

/// The peer's command: one ffmpeg, 4 SDP inputs, scale + xstack + amix, our encoder settings.
fn peer_command(sdps: &[PathBuf], out: &Path, log: std::fs::File) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostats", "-loglevel", "error", "-y"]);
    for sdp in sdps {
        #[rustfmt::skip]
        c.args([
            "-protocol_whitelist", "file,udp,rtp", "-reorder_queue_size", "16",
            "-buffer_size", "1048576", "-analyzeduration", "100000", "-probesize", "32",
            "-thread_queue_size", "1024", "-i",
        ]);
        c.arg(sdp);
    }
    let (tw, th) = (WIDTH / 2, HEIGHT / 2);
    let mut graph = String::new();
    for i in 0..sdps.len() {
        let _ = write!(
            graph,
            "[{i}:v:0]scale={tw}:{th}:force_original_aspect_ratio=decrease,\
             pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2,setsar=1[v{i}];"
        );
    }
    for i in 0..sdps.len() {
        let _ = write!(graph, "[v{i}]");
    }
    let _ = write!(
        graph,
        "xstack=inputs={}:layout=0_0|w0_0|0_h0|w0_h0[v];",
        sdps.len()
    );
    for i in 0..sdps.len() {
        let _ = write!(graph, "[{i}:a:0]");
    }
    let _ = write!(
        graph,
        "amix=inputs={}:duration=longest:dropout_transition=0[a]",
        sdps.len()
    );
    let fps = FPS.to_string();
    let gop = (FPS * 2).to_string();
    #[rustfmt::skip]
    c.args([
        "-filter_complex", &graph, "-map", "[v]", "-map", "[a]",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-pix_fmt", "yuv420p", "-g", &gop, "-r", &fps,
        "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "1",
        "-max_muxing_queue_size", "1024",
        "-movflags", "+faststart", "-f", "mp4",
    ]);
    c.arg(out);
    c.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    c
}

async fn worker_peer(
    w: &WorkerOpts,
    secs: u64,
    abort: &CancellationToken,
) -> anyhow::Result<Value> {
    let mut sdps = Vec::new();
    let mut ports = Vec::new();
    // Found free and held until the peer starts, so no two inputs get the same port; then
    // released for the peer to bind. Another process may still take one in between (the
    // phase then fails with "Address already in use" and is run again once).
    let mut held = Vec::new();
    for i in 0..PARTICIPANTS {
        let (v, a) = {
            let v = bind_pair()?;
            let a = bind_pair()?;
            let ports = (v.0.local_addr()?.port(), a.0.local_addr()?.port());
            held.push((v, a));
            ports
        };
        let sdp = format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=peer-{i}\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=video {v} RTP/AVP {PT_VIDEO}\r\na=rtpmap:{PT_VIDEO} VP8/90000\r\n\
             m=audio {a} RTP/AVP {PT_AUDIO}\r\na=rtpmap:{PT_AUDIO} opus/48000/2\r\n"
        );
        let path = w
            .out
            .with_file_name(format!("{}-in{i}.sdp", file_stem(&w.out)));
        std::fs::write(&path, sdp)?;
        sdps.push(path);
        ports.push((v, a));
    }
    let log_path = w.out.with_extension("log");
    let log = std::fs::File::create(&log_path)?;
    drop(held);
    let mut peer = peer_command(&sdps, &w.out, log)
        .spawn()
        .context("starting the peer ffmpeg")?;
    // ffmpeg opens its inputs one after the other; the first must listen before the replays
    // start, the others follow within a keyframe interval.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !udp_port_bound(ports[0].0) {
        if Instant::now() > deadline || !matches!(peer.try_wait(), Ok(None)) {
            let _ = peer.start_kill();
            bail!(
                "the peer never listened on {}: {}",
                ports[0].0,
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut replays = Vec::new();
    for (i, (v, a)) in ports.iter().enumerate() {
        replays.push(spawn_replay(&w.dir, i, *v, *a, secs)?);
    }
    let replay_pids: Vec<u32> = replays.iter().filter_map(Child::id).collect();
    emit(json!({ "ev": "started", "replays": replay_pids, "peer": peer.id() }));
    // Taken now: tokio's `Child::wait` closes stdin, and `q` on stdin is how ffmpeg is stopped.
    let Some(mut stdin) = peer.stdin.take() else {
        let _ = peer.start_kill();
        stop_replays(&mut replays).await;
        bail!("the peer's stdin was not captured");
    };
    let ended_early = tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(secs)) => None,
        _ = abort.cancelled() => Some("the bench went away".to_owned()),
        st = peer.wait() => Some(format!("the peer exited early ({st:?})")),
    };
    if let Some(why) = ended_early {
        let _ = peer.start_kill();
        stop_replays(&mut replays).await;
        bail!(
            "{why}: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    emit(json!({ "ev": "stopping" }));
    let t0 = Instant::now();
    // `q` on stdin: ffmpeg stops reading, flushes and finalises the MP4 (faststart included).
    let _ = stdin.write_all(b"q").await;
    let _ = stdin.flush().await;
    let status = tokio::time::timeout(FINISH_LIMIT, peer.wait()).await;
    let stop_s = t0.elapsed().as_secs_f64();
    stop_replays(&mut replays).await;
    let status = match status {
        Ok(s) => s?,
        Err(_) => {
            let _ = peer.start_kill();
            bail!("the peer did not finish within {FINISH_LIMIT:?}");
        }
    };
    if !status.success() {
        bail!(
            "the peer failed ({status}): {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    let bytes = std::fs::metadata(&w.out).map(|m| m.len()).ok();
    Ok(json!({ "ev": "result", "ok": true, "stop_s": stop_s, "bytes": bytes }))
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into())
}

// ---------------------------------------------------------------------------------------------
// Sampling /proc

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    /// The worker process: compositor + ingest (+ the bench's RTP parsing).
    Worker,
    VideoDecoder,
    AudioDecoder,
    Encoder,
    Peer,
    Replay,
    Nginx,
    Other,
}

impl Kind {
    fn of(cmdline: &str) -> Kind {
        let has = |s: &str| cmdline.contains(s);
        if has("-stream_loop") {
            Kind::Replay
        } else if has("xstack") {
            Kind::Peer
        } else if has(".sdp") && has("rawvideo") {
            Kind::VideoDecoder
        } else if has(".sdp") && has("s16le") {
            Kind::AudioDecoder
        } else if has("libx264") {
            Kind::Encoder
        } else {
            Kind::Other
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Worker => "worker process",
            Kind::VideoDecoder => "video decoders",
            Kind::AudioDecoder => "audio decoders",
            Kind::Encoder => "encoder",
            Kind::Peer => "peer ffmpeg",
            Kind::Replay => "replays",
            Kind::Nginx => "nginx-rtmp",
            Kind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ProcInfo {
    kind: Kind,
    ticks: u64,
    rss_kb: u64,
    /// Proportional set size: shared pages (ffmpeg's libraries) split among the processes
    /// mapping them, so sums over processes do not count them several times.
    pss_kb: u64,
    hwm_kb: u64,
}

struct Snapshot {
    at: Instant,
    procs: HashMap<u32, ProcInfo>,
    machine_busy: u64,
    self_ticks: u64,
    /// Compiler processes (rustc, cargo, cc, ld) anywhere on the machine.
    builds: usize,
}

const BUILD_TOOLS: [&str; 6] = ["rustc", "cargo", "cc1", "cc1plus", "ld", "collect2"];

fn clk_tck() -> f64 {
    100.0 // USER_HZ on Linux
}

/// (ppid, utime + stime, comm) of a process.
fn read_stat(pid: u32) -> Option<(u32, u64, String)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, after) = s.rsplit_once(')')?;
    let comm = head
        .split_once('(')
        .map(|x| x.1)
        .unwrap_or_default()
        .to_owned();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((ppid, ticks, comm))
}

fn read_pss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// How many compiler processes run on the machine now.
fn build_processes() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter_map(read_stat)
        .filter(|(_, _, comm)| BUILD_TOOLS.contains(&comm.as_str()))
        .count()
}

/// (VmRSS, VmHWM) in kB.
fn read_rss(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq (steal left out: not this VM's work)
    if f.len() >= 7 {
        f[0] + f[1] + f[2] + f[5] + f[6]
    } else {
        0
    }
}

/// The worker `root` and every process below it, plus `extra` (e.g. nginx).
fn snapshot(root: u32, extra: &[(u32, Kind)], kinds: &mut HashMap<u32, Kind>) -> Snapshot {
    let at = Instant::now();
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut ticks: HashMap<u32, u64> = HashMap::new();
    let mut builds = 0;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, t, comm)) = read_stat(pid) {
                parent.insert(pid, ppid);
                ticks.insert(pid, t);
                if BUILD_TOOLS.contains(&comm.as_str()) {
                    builds += 1;
                }
            }
        }
    }
    let mut procs = HashMap::new();
    let add = |pid: u32, kind: Kind, procs: &mut HashMap<u32, ProcInfo>| {
        if let Some(&t) = ticks.get(&pid) {
            let (rss_kb, hwm_kb) = read_rss(pid);
            procs.insert(
                pid,
                ProcInfo {
                    kind,
                    ticks: t,
                    rss_kb,
                    pss_kb: read_pss(pid),
                    hwm_kb,
                },
            );
        }
    };
    // Descendants of root, breadth first.
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, &ppid) in &parent {
        children.entry(ppid).or_default().push(pid);
    }
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        let kind = if pid == root {
            Kind::Worker
        } else if let Some(k) = kinds.get(&pid) {
            *k
        } else {
            let k = Kind::of(&cmdline(pid));
            // A child seen between fork and exec still shows our command line: ask again.
            if k != Kind::Other {
                kinds.insert(pid, k);
            }
            k
        };
        add(pid, kind, &mut procs);
        if let Some(c) = children.get(&pid) {
            queue.extend(c.iter().copied());
        }
    }
    for &(pid, kind) in extra {
        add(pid, kind, &mut procs);
    }
    Snapshot {
        at,
        procs,
        machine_busy: machine_busy_ticks(),
        self_ticks: read_stat(std::process::id()).map(|s| s.1).unwrap_or(0),
        builds,
    }
}

/// One sampling interval: cores per kind over it, RSS per kind at its end.
#[derive(Debug, Clone)]
struct Interval {
    start: Instant,
    end: Instant,
    cores: BTreeMap<Kind, f64>,
    rss_kb: BTreeMap<Kind, f64>,
    pss_kb: BTreeMap<Kind, f64>,
    machine_cores: f64,
    builds: usize,
    /// Everything this bench runs (all kinds, replays included, and the parent itself).
    bench_cores: f64,
}

fn interval(a: &Snapshot, b: &Snapshot) -> Interval {
    let dt = b.at.duration_since(a.at).as_secs_f64().max(1e-6);
    let mut cores: BTreeMap<Kind, f64> = BTreeMap::new();
    let mut rss: BTreeMap<Kind, f64> = BTreeMap::new();
    let mut pss: BTreeMap<Kind, f64> = BTreeMap::new();
    let mut bench = 0.0;
    for (pid, p) in &b.procs {
        // A process born during the interval counts from zero.
        let before = a.procs.get(pid).map(|q| q.ticks).unwrap_or(0);
        let c = p.ticks.saturating_sub(before) as f64 / clk_tck() / dt;
        *cores.entry(p.kind).or_default() += c;
        *rss.entry(p.kind).or_default() += p.rss_kb as f64;
        *pss.entry(p.kind).or_default() += p.pss_kb as f64;
        bench += c;
    }
    bench += b.self_ticks.saturating_sub(a.self_ticks) as f64 / clk_tck() / dt;
    Interval {
        start: a.at,
        end: b.at,
        cores,
        rss_kb: rss,
        pss_kb: pss,
        machine_cores: b.machine_busy.saturating_sub(a.machine_busy) as f64 / clk_tck() / dt,
        bench_cores: bench,
        builds: a.builds.max(b.builds),
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: phases, checks, report

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

#[derive(Debug, Clone, Default)]
struct Probe {
    ok: bool,
    problems: Vec<String>,
    duration_s: Option<f64>,
    video_frames: Option<u64>,
    tile_stddev: Vec<f64>,
    audio_rms: Option<f64>,
    /// The MP4's `moov` box comes before `mdat` (`+faststart` applied).
    moov_first: Option<bool>,
    took_s: f64,
}

#[derive(Debug, Clone)]
struct PhaseResult {
    arm: Arm,
    round: usize,
    secs: u64,
    /// Median cores per kind over the measured window.
    cores: BTreeMap<Kind, f64>,
    /// Median RSS per kind (MiB) over the window, and the peak of 1 s samples over the phase.
    rss_med: BTreeMap<Kind, f64>,
    pss_med: BTreeMap<Kind, f64>,
    rss_peak: BTreeMap<Kind, f64>,
    /// Sum of VmHWM (MiB) per kind: each process's own peak.
    hwm: BTreeMap<Kind, f64>,
    /// Median of the per-sample sums over the counted kinds (the worker not yet corrected
    /// for the baseline).
    total_cores: f64,
    total_rss: f64,
    total_rss_peak: f64,
    total_pss: f64,
    total_pss_peak: f64,
    /// Samples of the window during which a compiler ran on the machine.
    build_samples: usize,
    /// RSS in the first and the last minute of the window (leak check for long runs).
    rss_first_min: f64,
    rss_last_min: f64,
    machine_cores: f64,
    others_cores: f64,
    samples: usize,
    result: Value,
    probe: Probe,
    error: Option<String>,
    started_at: String,
}

impl PhaseResult {
    fn valid(&self) -> bool {
        self.error.is_none() && self.probe.ok
    }
    fn stop_s(&self) -> Option<f64> {
        self.result["stop_s"].as_f64()
    }
    fn bytes(&self) -> Option<u64> {
        self.result["bytes"].as_u64()
    }
    fn core(&self, k: Kind) -> f64 {
        self.cores.get(&k).copied().unwrap_or(0.0)
    }
    fn rss(&self, k: Kind) -> f64 {
        self.rss_med.get(&k).copied().unwrap_or(0.0)
    }
    fn pss(&self, k: Kind) -> f64 {
        self.pss_med.get(&k).copied().unwrap_or(0.0)
    }
}

struct Ctx {
    dir: PathBuf,
    warmup: u64,
    nginx: Option<(u32, u16)>,
}

fn now_utc() -> String {
    first_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])
}

/// Waits (at most 30 min) until no compiler has been seen for three polls 2 s apart: a cargo
/// build next to a phase would be measured with it.
async fn wait_quiet() {
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut quiet = 0;
    let mut said = false;
    while quiet < 3 {
        if build_processes() == 0 {
            quiet += 1;
        } else {
            quiet = 0;
            if !said {
                eprintln!("a compiler is running on this machine: waiting before measuring");
                said = true;
            }
        }
        if Instant::now() > deadline {
            eprintln!("compilers still running after 30 min: measuring anyway (see the notes)");
            return;
        }
        if quiet < 3 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

async fn run_phase(ctx: &Ctx, arm: Arm, round: usize, secs: u64) -> PhaseResult {
    wait_quiet().await;
    let started_at = now_utc();
    let tag = format!("{}-r{round}", arm.flag());
    let out = ctx.dir.join("out").join(format!("{tag}.mp4"));
    let url = ctx
        .nginx
        .map(|(_, port)| format!("rtmp://127.0.0.1:{port}/live/bench-{round}"))
        .unwrap_or_default();
    eprintln!("[{tag}] {} for {secs} s (load {})", arm.title(), loadavg());
    let mut r = PhaseResult {
        arm,
        round,
        secs,
        cores: BTreeMap::new(),
        rss_med: BTreeMap::new(),
        pss_med: BTreeMap::new(),
        rss_peak: BTreeMap::new(),
        hwm: BTreeMap::new(),
        total_cores: f64::NAN,
        total_rss: f64::NAN,
        total_rss_peak: f64::NAN,
        total_pss: f64::NAN,
        total_pss_peak: f64::NAN,
        build_samples: 0,
        rss_first_min: f64::NAN,
        rss_last_min: f64::NAN,
        machine_cores: f64::NAN,
        others_cores: f64::NAN,
        samples: 0,
        result: Value::Null,
        probe: Probe::default(),
        error: None,
        started_at,
    };
    if let Err(e) = measure(ctx, arm, secs, &out, &url, &mut r).await {
        let e = format!("{e:#}");
        if e.contains("Address already in use") {
            // A port picked for the peer was taken by another process before the peer bound
            // it: nothing was measured, so run the phase again once.
            eprintln!("[{tag}] a port was taken meanwhile ({e}); running the phase again");
            r.started_at = now_utc();
            if let Err(e) = measure(ctx, arm, secs, &out, &url, &mut r).await {
                r.error = Some(format!("{e:#}"));
            }
        } else {
            r.error = Some(e);
        }
    }
    if r.error.is_none() {
        r.probe = match arm {
            Arm::File | Arm::Peer => probe_file(&out, secs, arm).await,
            Arm::Rtmp => r.probe.clone(),
            Arm::Baseline => Probe {
                ok: true,
                ..Probe::default()
            },
        };
        if arm == Arm::Rtmp {
            // The live probe ran during the phase; the pipeline's own count must match too.
            let written = r.result["duration_s"].as_f64().unwrap_or(0.0);
            if (written - secs as f64).abs() > duration_tolerance(secs) {
                r.probe.ok = false;
                r.probe
                    .problems
                    .push(format!("broadcast {written:.2} s for a {secs} s run"));
            }
            if r.bytes().unwrap_or(0) == 0 {
                r.probe.ok = false;
                r.probe.problems.push("no bytes sent".into());
            }
            r.probe.duration_s = Some(written);
        }
    }
    let _ = std::fs::remove_file(&out);
    eprintln!(
        "[{tag}] {}: cores {:.3} (others on the machine {:.2}), RSS {:.1} MiB, stop→finished {}{}",
        if r.valid() { "ok" } else { "BROKEN" },
        r.total_cores,
        r.others_cores,
        r.total_rss,
        r.stop_s()
            .map(|s| format!("{s:.2} s"))
            .unwrap_or_else(|| "–".into()),
        r.error
            .as_deref()
            .map(|e| format!("; error: {e}"))
            .or_else(|| (!r.probe.ok).then(|| format!("; check: {}", r.probe.problems.join("; "))))
            .unwrap_or_default()
    );
    r
}

fn duration_tolerance(secs: u64) -> f64 {
    (secs as f64 * 0.03).max(3.0)
}

async fn measure(
    ctx: &Ctx,
    arm: Arm,
    secs: u64,
    out: &Path,
    url: &str,
    r: &mut PhaseResult,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--worker", arm.flag(), "--secs", &secs.to_string(), "--dir"])
        .arg(&ctx.dir)
        .arg("--out")
        .arg(out)
        .args(["--url", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting a worker")?;
    let root = child.id().context("worker pid")?;
    let _stdin = child.stdin.take(); // held: its closing tells the worker to quit
    let stdout = child.stdout.take().context("worker stdout")?;
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(Instant, Value)>();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&l) {
                let _ = ev_tx.send((Instant::now(), v));
            }
        }
    });
    let extra: Vec<(u32, Kind)> = match (arm, ctx.nginx) {
        (Arm::Rtmp, Some((pid, _))) => vec![(pid, Kind::Nginx)],
        _ => Vec::new(),
    };
    let mut kinds = HashMap::new();
    let mut hwm: HashMap<u32, (Kind, u64)> = HashMap::new();
    let mut prev = snapshot(root, &extra, &mut kinds);
    let mut intervals = Vec::new();
    let mut started: Option<Instant> = None;
    let mut stopping: Option<Instant> = None;
    let mut result = Value::Null;
    let mut live_probe: Option<tokio::task::JoinHandle<Probe>> = None;
    let mut replay_pids: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs + WORKER_GRACE);
    let mut next = tokio::time::Instant::now() + Duration::from_secs(1);
    let exit = loop {
        tokio::time::sleep_until(next).await;
        next += Duration::from_secs(1);
        let snap = snapshot(root, &extra, &mut kinds);
        for (pid, p) in &snap.procs {
            let e = hwm.entry(*pid).or_insert((p.kind, 0));
            e.1 = e.1.max(p.hwm_kb);
        }
        intervals.push(interval(&prev, &snap));
        prev = snap;
        while let Ok((at, v)) = ev_rx.try_recv() {
            match v["ev"].as_str() {
                Some("started") => {
                    started = Some(at);
                    replay_pids = v["replays"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default();
                    if arm == Arm::Rtmp {
                        let url = url.to_owned();
                        live_probe = Some(tokio::spawn(async move { probe_live(&url).await }));
                    }
                }
                Some("stopping") => stopping = Some(at),
                Some("result") => result = v,
                _ => {}
            }
        }
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) => {}
            Err(e) => break Err(anyhow::anyhow!("waiting for the worker: {e}")),
        }
        if Instant::now() > deadline {
            // Everything below the worker is ours: kill it by pid, then the worker.
            for pid in prev.procs.keys() {
                if *pid != root {
                    signal(*pid, "KILL");
                }
            }
            let _ = child.kill().await;
            break Err(anyhow::anyhow!(
                "the worker ran {} s past its recording and was killed",
                WORKER_GRACE
            ));
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    while let Ok((at, v)) = ev_rx.try_recv() {
        match v["ev"].as_str() {
            Some("started") => started = Some(at),
            Some("stopping") => stopping = Some(at),
            Some("result") => result = v,
            _ => {}
        }
    }
    if let Some(p) = live_probe {
        r.probe = p.await.unwrap_or_default();
    }
    r.result = result.clone();
    let status = exit?;
    if result["ok"].as_bool() != Some(true) {
        bail!(
            "worker {status}: {}",
            result["error"].as_str().unwrap_or("no result")
        );
    }
    // The replays the worker reported must be the ones classified as replays.
    let classified: Vec<u64> = kinds
        .iter()
        .filter(|(_, k)| **k == Kind::Replay)
        .map(|(p, _)| u64::from(*p))
        .collect();
    for p in &replay_pids {
        if !classified.contains(p) {
            bail!("replay pid {p} was not recognised as a replay: its CPU may have been counted");
        }
    }
    let (Some(s), Some(e)) = (started, stopping) else {
        bail!("the worker never reported its start and stop");
    };
    let from = s + Duration::from_secs(ctx.warmup);
    let window: Vec<&Interval> = intervals
        .iter()
        .filter(|i| i.start >= from && i.end <= e)
        .collect();
    if window.len() < 3 {
        bail!("only {} samples in the measured window", window.len());
    }
    r.samples = window.len();
    let all_kinds: Vec<Kind> = {
        let mut k: Vec<Kind> = intervals
            .iter()
            .flat_map(|i| i.cores.keys().copied())
            .collect();
        k.sort();
        k.dedup();
        k
    };
    for &k in &all_kinds {
        let c: Vec<f64> = window
            .iter()
            .map(|i| i.cores.get(&k).copied().unwrap_or(0.0))
            .collect();
        let m: Vec<f64> = window
            .iter()
            .map(|i| mib(i.rss_kb.get(&k).copied().unwrap_or(0.0)))
            .collect();
        let all: Vec<f64> = intervals
            .iter()
            .filter(|i| i.start >= s)
            .map(|i| mib(i.rss_kb.get(&k).copied().unwrap_or(0.0)))
            .collect();
        let ps: Vec<f64> = window
            .iter()
            .map(|i| mib(i.pss_kb.get(&k).copied().unwrap_or(0.0)))
            .collect();
        r.cores.insert(k, median(&c));
        r.rss_med.insert(k, median(&m));
        r.pss_med.insert(k, median(&ps));
        r.rss_peak.insert(k, max_of(&all));
    }
    for (k, h) in hwm.values() {
        *r.hwm.entry(*k).or_default() += mib(*h as f64);
    }
    let counted = arm.counted();
    let sum = |m: &BTreeMap<Kind, f64>| -> f64 {
        counted
            .iter()
            .map(|k| m.get(k).copied().unwrap_or(0.0))
            .sum()
    };
    let tc: Vec<f64> = window.iter().map(|i| sum(&i.cores)).collect();
    let tr: Vec<f64> = window.iter().map(|i| mib(sum(&i.rss_kb))).collect();
    let tr_all: Vec<f64> = intervals
        .iter()
        .filter(|i| i.start >= s)
        .map(|i| mib(sum(&i.rss_kb)))
        .collect();
    let tp: Vec<f64> = window.iter().map(|i| mib(sum(&i.pss_kb))).collect();
    let tp_all: Vec<f64> = intervals
        .iter()
        .filter(|i| i.start >= s)
        .map(|i| mib(sum(&i.pss_kb)))
        .collect();
    r.total_cores = median(&tc);
    r.total_rss = median(&tr);
    r.total_rss_peak = max_of(&tr_all);
    r.total_pss = median(&tp);
    r.total_pss_peak = max_of(&tp_all);
    r.build_samples = window.iter().filter(|i| i.builds > 0).count();
    let n = tr.len();
    let minute = 60.min(n / 2).max(1);
    r.rss_first_min = median(&tr[..minute]);
    r.rss_last_min = median(&tr[n - minute..]);
    let machine: Vec<f64> = window.iter().map(|i| i.machine_cores).collect();
    let others: Vec<f64> = window
        .iter()
        .map(|i| (i.machine_cores - i.bench_cores).max(0.0))
        .collect();
    r.machine_cores = median(&machine);
    r.others_cores = median(&others);
    Ok(())
}

async fn ffprobe_json(args: &[&str], target: &str, limit: Duration) -> anyhow::Result<Value> {
    let out = tokio::time::timeout(
        limit,
        Command::new("ffprobe")
            .args(["-v", "error"])
            .args(args)
            .args(["-of", "json", target])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("ffprobe timed out")??;
    if !out.status.success() {
        bail!("ffprobe: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Stream checks common to files and the live stream.
fn check_streams(probe: &Value, p: &mut Probe) {
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    let of = |t: &str| {
        streams
            .iter()
            .filter(|s| s["codec_type"] == t)
            .collect::<Vec<_>>()
    };
    let (v, a) = (of("video"), of("audio"));
    if v.len() != 1 || a.len() != 1 {
        p.problems
            .push(format!("{} video and {} audio streams", v.len(), a.len()));
        return;
    }
    let (v, a) = (v[0], a[0]);
    if v["codec_name"] != "h264" || v["width"] != WIDTH || v["height"] != HEIGHT {
        p.problems.push(format!(
            "video is {} {}x{}",
            v["codec_name"], v["width"], v["height"]
        ));
    }
    if a["codec_name"] != "aac" {
        p.problems.push(format!("audio is {}", a["codec_name"]));
    }
    p.video_frames = v["nb_frames"].as_str().and_then(|s| s.parse().ok());
}

async fn probe_live(url: &str) -> Probe {
    let t0 = Instant::now();
    // Let the encoder get going, then play the stream back from nginx like a viewer would.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut p = Probe::default();
    match ffprobe_json(
        &[
            "-rw_timeout",
            "15000000",
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
        ],
        url,
        Duration::from_secs(20),
    )
    .await
    {
        Ok(v) => check_streams(&v, &mut p),
        Err(e) => p.problems.push(format!("live stream: {e:#}")),
    }
    p.took_s = t0.elapsed().as_secs_f64();
    p.ok = p.problems.is_empty();
    p
}

/// Whether the top-level `moov` box precedes `mdat`; None if neither is found.
fn moov_first(path: &Path) -> Option<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut pos = 0u64;
    while pos + 8 <= len {
        f.seek(SeekFrom::Start(pos)).ok()?;
        let mut h = [0u8; 16];
        f.read_exact(&mut h[..8]).ok()?;
        let size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        let size = match size {
            0 => len - pos,
            1 => {
                f.read_exact(&mut h[8..16]).ok()?;
                u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]])
            }
            n => n,
        };
        match &h[4..8] {
            b"moov" => return Some(true),
            b"mdat" => return Some(false),
            _ => {}
        }
        if size < 8 {
            return None;
        }
        pos += size;
    }
    None
}

async fn probe_file(path: &Path, secs: u64, arm: Arm) -> Probe {
    let t0 = Instant::now();
    let mut p = Probe {
        moov_first: moov_first(path),
        ..Probe::default()
    };
    let target = path.to_string_lossy().into_owned();
    match ffprobe_json(
        &[
            "-show_entries",
            "stream=codec_type,codec_name,width,height,nb_frames:format=duration",
        ],
        &target,
        Duration::from_secs(60),
    )
    .await
    {
        Ok(v) => {
            check_streams(&v, &mut p);
            let d = v["format"]["duration"]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok());
            p.duration_s = d;
            match d {
                Some(d) if (d - secs as f64).abs() <= duration_tolerance(secs) => {}
                Some(d) => p
                    .problems
                    .push(format!("{d:.2} s long for a {secs} s {}", arm.flag())),
                None => p.problems.push("no duration".into()),
            }
        }
        Err(e) => p.problems.push(format!("{e:#}")),
    }
    if p.problems.is_empty() {
        // Every tile shows a picture (not the flat placeholder or black), the mix is audible.
        let at = format!("{:.2}", secs as f64 / 2.0);
        let frame = ffmpeg()
            .args(["-ss", &at, "-i", &target])
            .args(["-frames:v", "1", "-vf", "scale=64:36", "-pix_fmt", "gray"])
            .args(["-f", "rawvideo", "pipe:1"])
            .output()
            .await;
        match frame {
            Ok(o) if o.stdout.len() == 64 * 36 => {
                for (qx, qy) in [(0, 0), (32, 0), (0, 18), (32, 18)] {
                    let px: Vec<f64> = (qy..qy + 18)
                        .flat_map(|y| (qx..qx + 32).map(move |x| (x, y)))
                        .map(|(x, y)| f64::from(o.stdout[y * 64 + x]))
                        .collect();
                    let mean = px.iter().sum::<f64>() / px.len() as f64;
                    let sd = (px.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / px.len() as f64)
                        .sqrt();
                    p.tile_stddev.push(sd);
                }
                if p.tile_stddev.iter().any(|&sd| sd < 3.0) {
                    p.problems.push(format!(
                        "a tile is flat at {at} s (luma stddev {:?})",
                        p.tile_stddev
                    ));
                }
            }
            Ok(o) => p.problems.push(format!(
                "no frame at {at} s: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => p.problems.push(format!("decoding a frame: {e}")),
        }
        let audio = ffmpeg()
            .args(["-ss", &at, "-t", "1", "-i", &target])
            .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "pipe:1"])
            .output()
            .await;
        match audio {
            Ok(o) if o.stdout.len() > 40_000 * 2 => {
                let s: Vec<f64> = o
                    .stdout
                    .chunks_exact(2)
                    .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
                    .collect();
                let rms = (s.iter().map(|v| v * v).sum::<f64>() / s.len() as f64).sqrt();
                p.audio_rms = Some(rms);
                if rms < 300.0 {
                    p.problems.push(format!("audio RMS {rms:.0} at {at} s"));
                }
            }
            Ok(o) => p.problems.push(format!(
                "no second of audio at {at} s ({} bytes)",
                o.stdout.len()
            )),
            Err(e) => p.problems.push(format!("decoding audio: {e}")),
        }
    }
    p.took_s = t0.elapsed().as_secs_f64();
    p.ok = p.problems.is_empty();
    p
}

/// The four participants' clips: moving content with sensor-like noise so the VP8 encoder
/// actually spends its bitrate, a hue of their own, and a tone of their own.
async fn generate_clips(dir: &Path) -> anyhow::Result<Vec<String>> {
    let size = format!("{WIDTH}x{HEIGHT}");
    // Temporal noise stands in for a camera sensor; the amounts bring each clip near
    // 1.5 Mbit/s with libvpx's rate control (life's cells are 8x8 pixels for the same reason).
    let sources = [
        format!("testsrc2=size={size}:rate={FPS},noise=alls=10:allf=t"),
        format!("smptebars=size={size}:rate={FPS},hue=H=2*PI*t/8,noise=alls=10:allf=t"),
        format!(
            "mandelbrot=size=640x360:rate={FPS},scale={WIDTH}:{HEIGHT},hue=h=120,\
             noise=alls=4:allf=t"
        ),
        format!(
            "life=size=160x90:rate={FPS}:mold=10:ratio=0.3:life_color=#ffcc00:\
             death_color=#203060,scale={WIDTH}:{HEIGHT}:flags=neighbor,hue=h=240,\
             noise=alls=6:allf=t"
        ),
    ];
    let mut info = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let t0 = Instant::now();
        let out = dir.join(format!("clip{i}.webm"));
        let video = format!("{src},format=yuv420p");
        let audio = format!("sine=frequency={}:sample_rate=48000", TONES[i]);
        let secs = CLIP_SECS.to_string();
        let gop = (FPS * 2).to_string();
        #[rustfmt::skip]
        let o = ffmpeg()
            .args(["-y", "-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio, "-t", &secs,
                "-map", "0:v", "-map", "1:a",
                "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
                "-b:v", "1500k", "-minrate", "1500k", "-maxrate", "1500k",
                "-g", &gop, "-keyint_min", &gop, "-auto-alt-ref", "0", "-lag-in-frames", "0",
                "-c:a", "libopus", "-b:a", "32k", "-ac", "1", "-ar", "48000"])
            .arg(&out)
            .output()
            .await
            .context("running ffmpeg to generate a clip")?;
        if !o.status.success() {
            bail!(
                "generating clip {i}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        let probe = ffprobe_json(
            &["-show_entries", "format=duration,bit_rate"],
            &out.to_string_lossy(),
            Duration::from_secs(30),
        )
        .await?;
        let kbps = probe["format"]["bit_rate"]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1000.0;
        let line = format!(
            "clip {i}: `{src}`, {} Hz tone; {kbps:.0} kbit/s overall (generated in {:.1} s)",
            TONES[i],
            t0.elapsed().as_secs_f64()
        );
        eprintln!("{line}");
        info.push(line);
    }
    Ok(info)
}

struct Nginx {
    child: Child,
    pid: u32,
    port: u16,
}

async fn start_nginx(dir: &Path) -> anyhow::Result<Nginx> {
    if !Path::new(RTMP_MODULE).exists() {
        bail!("nginx's RTMP module is missing at {RTMP_MODULE} (Debian: libnginx-mod-rtmp)");
    }
    let ndir = dir.join("nginx");
    std::fs::create_dir_all(&ndir)?;
    let port = free_tcp_port()?;
    let conf = ndir.join("nginx.conf");
    let error_log = ndir.join("error.log");
    std::fs::write(
        &conf,
        format!(
            "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\npid {pid};\n\
             error_log {err} warn;\nevents {{ worker_connections 64; }}\n\
             rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    application live {{\n      \
             live on;\n    }}\n  }}\n}}\n",
            pid = ndir.join("nginx.pid").display(),
            err = error_log.display(),
        ),
    )?;
    let mut child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(format!("{}/", ndir.display()))
        .arg("-e")
        .arg(&error_log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting nginx (Debian: nginx-light)")?;
    let pid = child.id().context("nginx pid")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_ok()
        {
            return Ok(Nginx { child, pid, port });
        }
        if !matches!(child.try_wait(), Ok(None)) || Instant::now() > deadline {
            let _ = child.start_kill();
            bail!(
                "nginx did not listen on 127.0.0.1:{port}: {}",
                std::fs::read_to_string(&error_log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop_nginx(mut n: Nginx) {
    signal(n.pid, "TERM");
    if tokio::time::timeout(Duration::from_secs(5), n.child.wait())
        .await
        .is_err()
    {
        let _ = n.child.kill().await;
    }
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
        "cargo run --release -p enclave-server --example recorder_bench -- {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let load_start = loadavg();
    let date_start = now_utc();
    let tmp = tempfile::Builder::new()
        .prefix("enclave-recorder-bench-")
        .tempdir()?;
    let dir = tmp.path().to_owned();
    std::fs::create_dir_all(dir.join("out"))?;
    eprintln!("recorder bench in {} (load {load_start})", dir.display());
    let clips = generate_clips(&dir).await?;
    let nginx = if opts.rounds > 0 {
        Some(start_nginx(&dir).await?)
    } else {
        None
    };
    let ctx = Ctx {
        dir: dir.clone(),
        warmup: opts.warmup,
        nginx: nginx.as_ref().map(|n| (n.pid, n.port)),
    };
    let mut phases = Vec::new();
    for round in 1..=opts.rounds {
        phases.push(run_phase(&ctx, Arm::Baseline, round, opts.baseline_secs).await);
        phases.push(run_phase(&ctx, Arm::File, round, opts.secs).await);
        phases.push(run_phase(&ctx, Arm::Peer, round, opts.secs).await);
        phases.push(run_phase(&ctx, Arm::Rtmp, round, opts.secs).await);
    }
    if let Some(n) = nginx {
        stop_nginx(n).await;
    }
    let mut long = Vec::new();
    if opts.long {
        let round = opts.rounds + 1;
        long.push(run_phase(&ctx, Arm::Baseline, round, opts.baseline_secs).await);
        long.push(run_phase(&ctx, Arm::File, round, opts.long_secs).await);
    }
    let load_end = loadavg();
    let date_end = now_utc();
    let report = Report {
        opts: &opts,
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

// ---------------------------------------------------------------------------------------------
// The report

struct Report<'a> {
    opts: &'a Opts,
    command: String,
    clips: Vec<String>,
    load_start: String,
    load_end: String,
    date_start: String,
    date_end: String,
    phases: &'a [PhaseResult],
    long: &'a [PhaseResult],
}

fn f3(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "–".into()
    }
}

fn f2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "–".into()
    }
}

fn f1(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "–".into()
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.0}%", v * 100.0)
    } else {
        "–".into()
    }
}

fn opt_f2(v: Option<f64>) -> String {
    v.map(f2).unwrap_or_else(|| "–".into())
}

fn mib_of(bytes: Option<u64>) -> String {
    f1(bytes.map(|b| b as f64 / 1048576.0).unwrap_or(f64::NAN))
}

/// One phase of ours with the worker corrected by the same round's baseline.
#[derive(Debug, Clone, Copy)]
struct Ours {
    comp_cores: f64,
    comp_rss: f64,
    comp_pss: f64,
    comp_hwm: f64,
    total_cores: f64,
    total_rss: f64,
    total_pss: f64,
    total_rss_peak: f64,
    total_pss_peak: f64,
}

fn corrected(p: &PhaseResult, base: Option<&PhaseResult>) -> Ours {
    let b = base.filter(|b| b.valid());
    let get = |f: &dyn Fn(&PhaseResult) -> f64| b.map(f).unwrap_or(f64::NAN);
    let bc = get(&|b| b.core(Kind::Worker));
    let br = get(&|b| b.rss(Kind::Worker));
    let bp = get(&|b| b.pss(Kind::Worker));
    let bh = get(&|b| b.hwm.get(&Kind::Worker).copied().unwrap_or(f64::NAN));
    Ours {
        comp_cores: p.core(Kind::Worker) - bc,
        comp_rss: p.rss(Kind::Worker) - br,
        comp_pss: p.pss(Kind::Worker) - bp,
        comp_hwm: p.hwm.get(&Kind::Worker).copied().unwrap_or(f64::NAN) - bh,
        total_cores: p.total_cores - bc,
        total_rss: p.total_rss - br,
        total_pss: p.total_pss - bp,
        total_rss_peak: p.total_rss_peak - br,
        total_pss_peak: p.total_pss_peak - bp,
    }
}

impl Report<'_> {
    fn ours(&self, list: &[PhaseResult], p: &PhaseResult) -> Ours {
        let base = list
            .iter()
            .find(|b| b.arm == Arm::Baseline && b.round == p.round);
        corrected(p, base)
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let o = self.opts;
        let _ = writeln!(s, "# Recorder benchmark: 4 participants, 720p\n");
        let _ = writeln!(s, "Command: `{}`\n", self.command);
        let _ = writeln!(
            s,
            "* Machine: nproc = {}, {}, {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|c| c
                    .lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
                .unwrap_or_else(|| "?".into()),
            first_line("uname", &["-sr"]),
        );
        let _ = writeln!(s, "* {}", first_line("ffmpeg", &["-version"]));
        let _ = writeln!(
            s,
            "* Start {} (load average {}), end {} (load average {})",
            self.date_start, self.load_start, self.date_end, self.load_end
        );
        let _ = writeln!(
            s,
            "* {} s per phase, {} rounds of: baseline {} s, ours → MP4, peer → MP4, ours → RTMP; \
             the first {} s of each phase are left out of the medians; 1 s samples",
            o.secs, o.rounds, o.baseline_secs, o.warmup
        );
        for c in &self.clips {
            let _ = writeln!(s, "* {c}");
        }
        let _ = writeln!(s);
        self.render_phases(&mut s);
        self.render_summary(&mut s);
        self.render_long(&mut s);
        s
    }

    fn render_phases(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "## Every phase (medians of 1 s samples; cores = CPU s per s; memory in MiB)\n"
        );
        let _ = writeln!(
            s,
            "| round | arm | start (UTC) | check | samples | worker | video dec ×4 | audio dec ×4 | encoder | peer | total cores | RSS median / peak / ΣHWM | PSS median / peak | machine / others cores | stop→finished s | output | notes |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---|---|"
        );
        for p in self.phases.iter().chain(self.long) {
            let hwm: f64 = p
                .arm
                .counted()
                .iter()
                .map(|k| p.hwm.get(k).copied().unwrap_or(0.0))
                .sum();
            let output = match p.arm {
                Arm::Baseline => {
                    let mbit =
                        p.result["bytes_in"].as_f64().unwrap_or(0.0) * 8.0 / 1e6 / p.secs as f64;
                    format!("RTP in {mbit:.2} Mbit/s, {} dropped", p.result["dropped"])
                }
                Arm::File | Arm::Peer => format!(
                    "{} MiB, {} s, {} frames, {}",
                    mib_of(p.bytes()),
                    opt_f2(p.probe.duration_s),
                    p.probe
                        .video_frames
                        .map(|f| f.to_string())
                        .unwrap_or("–".into()),
                    match p.probe.moov_first {
                        Some(true) => "moov first",
                        Some(false) => "moov last",
                        None => "no moov?",
                    },
                ),
                Arm::Rtmp => format!(
                    "{} MiB sent, {} s",
                    mib_of(p.bytes()),
                    opt_f2(p.probe.duration_s)
                ),
            };
            let mut notes = Vec::new();
            if let Some(e) = &p.error {
                notes.push(format!("error: {e}"));
            }
            if !p.probe.problems.is_empty() {
                notes.push(format!("check: {}", p.probe.problems.join("; ")));
            }
            if matches!(p.arm, Arm::File | Arm::Rtmp) && p.error.is_none() {
                notes.push(format!(
                    "max output lag {} ms, {} frames repeated, {} decoder restarts, {} packets \
                     dropped in",
                    p.result["max_lag_ms"],
                    p.result["frames_repeated"],
                    p.result["decoder_restarts"],
                    p.result["dropped"]
                ));
            }
            if let Some(n) = p.cores.get(&Kind::Nginx) {
                notes.push(format!("nginx {n:.3} cores"));
            }
            if let Some(n) = p.cores.get(&Kind::Other).filter(|c| **c > 0.0) {
                notes.push(format!("unclassified {n:.3} cores"));
            }
            if p.build_samples > 0 {
                notes.push(format!(
                    "**a compiler ran during {} of {} samples**",
                    p.build_samples, p.samples
                ));
            }
            // Error text may hold newlines or pipes, which would break the table.
            let notes = notes
                .join("; ")
                .replace(['\n', '\r'], " ")
                .replace('|', "/");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} | {} / {} | {} | {} | {} |",
                p.round,
                p.arm.title(),
                p.started_at.split(' ').nth(1).unwrap_or("?"),
                if p.valid() { "ok" } else { "**BROKEN**" },
                p.samples,
                f3(p.core(Kind::Worker)),
                f3(p.core(Kind::VideoDecoder)),
                f3(p.core(Kind::AudioDecoder)),
                f3(p.core(Kind::Encoder)),
                f3(p.core(Kind::Peer)),
                f3(p.total_cores),
                f1(p.total_rss),
                f1(p.total_rss_peak),
                f1(hwm),
                f1(p.total_pss),
                f1(p.total_pss_peak),
                f2(p.machine_cores),
                f2(p.others_cores),
                opt_f2(p.stop_s()),
                output,
                notes,
            );
        }
        let _ = writeln!(s);
    }

    fn render_summary(&self, s: &mut String) {
        let valid = |arm: Arm| -> Vec<&PhaseResult> {
            self.phases
                .iter()
                .filter(|p| p.arm == arm && p.valid())
                .collect()
        };
        let (base, file, peer, rtmp) = (
            valid(Arm::Baseline),
            valid(Arm::File),
            valid(Arm::Peer),
            valid(Arm::Rtmp),
        );
        if file.is_empty() && peer.is_empty() && rtmp.is_empty() {
            return;
        }
        let med = |v: Vec<f64>| median(&v);
        let ours = |l: &[&PhaseResult]| -> Vec<Ours> {
            l.iter().map(|p| self.ours(self.phases, p)).collect()
        };
        let (fo, ro) = (ours(&file), ours(&rtmp));
        let m = |v: &[Ours], f: fn(&Ours) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());

        let _ = writeln!(s, "## Medians across rounds\n");
        let _ = writeln!(
            s,
            "Baseline (replay + parse in the worker, subtracted from ours): {} cores, RSS {} MiB, PSS {} MiB.\n",
            f3(med(base.iter().map(|p| p.core(Kind::Worker)).collect())),
            f1(med(base.iter().map(|p| p.rss(Kind::Worker)).collect())),
            f1(med(base.iter().map(|p| p.pss(Kind::Worker)).collect())),
        );
        let _ = writeln!(
            s,
            "| component | ours → MP4 cores | % of a core | RSS MiB | PSS MiB | peak ΣHWM MiB | ours → RTMP cores | RTMP PSS MiB |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| compositor + ingest (worker − baseline) | {} | {} | {} | {} | {} | {} | {} |",
            f3(m(&fo, |o| o.comp_cores)),
            pct(m(&fo, |o| o.comp_cores)),
            f1(m(&fo, |o| o.comp_rss)),
            f1(m(&fo, |o| o.comp_pss)),
            f1(m(&fo, |o| o.comp_hwm)),
            f3(m(&ro, |o| o.comp_cores)),
            f1(m(&ro, |o| o.comp_pss)),
        );
        for k in [Kind::VideoDecoder, Kind::AudioDecoder, Kind::Encoder] {
            let c = |l: &[&PhaseResult]| med(l.iter().map(|p| p.core(k)).collect());
            let h = med(file
                .iter()
                .map(|p| p.hwm.get(&k).copied().unwrap_or(0.0))
                .collect());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                k.name(),
                f3(c(&file)),
                pct(c(&file)),
                f1(med(file.iter().map(|p| p.rss(k)).collect())),
                f1(med(file.iter().map(|p| p.pss(k)).collect())),
                f1(h),
                f3(c(&rtmp)),
                f1(med(rtmp.iter().map(|p| p.pss(k)).collect())),
            );
        }
        let _ = writeln!(
            s,
            "| **ours, total** | **{}** | **{}** | **{}** (peak {}) | **{}** (peak {}) | | **{}** | **{}** |",
            f3(m(&fo, |o| o.total_cores)),
            pct(m(&fo, |o| o.total_cores)),
            f1(m(&fo, |o| o.total_rss)),
            f1(m(&fo, |o| o.total_rss_peak)),
            f1(m(&fo, |o| o.total_pss)),
            f1(m(&fo, |o| o.total_pss_peak)),
            f3(m(&ro, |o| o.total_cores)),
            f1(m(&ro, |o| o.total_pss)),
        );
        let pc = med(peer.iter().map(|p| p.total_cores).collect());
        let _ = writeln!(
            s,
            "| **peer ffmpeg** (decode + swscale + xstack + amix + encode) | **{}** | **{}** | **{}** (peak {}) | **{}** (peak {}) | {} | | |\n",
            f3(pc),
            pct(pc),
            f1(med(peer.iter().map(|p| p.total_rss).collect())),
            f1(med(peer.iter().map(|p| p.total_rss_peak).collect())),
            f1(med(peer.iter().map(|p| p.total_pss).collect())),
            f1(med(peer.iter().map(|p| p.total_pss_peak).collect())),
            f1(med(peer
                .iter()
                .map(|p| p.hwm.get(&Kind::Peer).copied().unwrap_or(0.0))
                .collect())),
        );

        // Ratios per round, then their median.
        let mut ratios: [Vec<f64>; 4] = Default::default();
        let _ = writeln!(
            s,
            "| round | ours → MP4 cores | peer cores | **ours / peer CPU** | ours / peer RSS | **ours / peer PSS** | ours → RTMP / peer CPU |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
        let mut rounds: Vec<usize> = self.phases.iter().map(|p| p.round).collect();
        rounds.dedup();
        for round in rounds {
            let get = |arm: Arm| {
                self.phases
                    .iter()
                    .find(|p| p.arm == arm && p.round == round && p.valid())
            };
            let (Some(f), Some(p)) = (get(Arm::File), get(Arm::Peer)) else {
                continue;
            };
            let o = self.ours(self.phases, f);
            let row = [
                o.total_cores / p.total_cores,
                o.total_rss / p.total_rss,
                o.total_pss / p.total_pss,
                get(Arm::Rtmp)
                    .map(|r| self.ours(self.phases, r).total_cores / p.total_cores)
                    .unwrap_or(f64::NAN),
            ];
            for (v, r) in ratios.iter_mut().zip(row) {
                if r.is_finite() {
                    v.push(r);
                }
            }
            let _ = writeln!(
                s,
                "| {round} | {} | {} | {} | {} | {} | {} |",
                f3(o.total_cores),
                f3(p.total_cores),
                f2(row[0]),
                f2(row[1]),
                f2(row[2]),
                f2(row[3]),
            );
        }
        let _ = writeln!(
            s,
            "| **median** | | | **{}** | {} | **{}** | {} |\n",
            f2(median(&ratios[0])),
            f2(median(&ratios[1])),
            f2(median(&ratios[2])),
            f2(median(&ratios[3])),
        );

        let stops = |l: &[&PhaseResult]| -> String {
            let v: Vec<f64> = l.iter().filter_map(|p| p.stop_s()).collect();
            format!(
                "median **{}** s ({})",
                f2(median(&v)),
                v.iter().map(|x| f2(*x)).collect::<Vec<_>>().join(", ")
            )
        };
        let sizes = |l: &[&PhaseResult]| -> String {
            let v: Vec<f64> = l
                .iter()
                .filter_map(|p| p.bytes())
                .map(|b| b as f64 / 1048576.0)
                .collect();
            format!("{} MiB", f1(median(&v)))
        };
        let _ = writeln!(s, "Stop → finished, {} s runs:\n", self.opts.secs);
        let _ = writeln!(
            s,
            "* ours → MP4 (`request_stop()` → `wait()` Ok, `.part` renamed): {}; file {}",
            stops(&file),
            sizes(&file)
        );
        let _ = writeln!(
            s,
            "* ours → RTMP (`request_stop()` → `wait()` Ok): {}",
            stops(&rtmp)
        );
        let _ = writeln!(
            s,
            "* peer (`q` on stdin → exit, MP4 finalised): {}; file {}\n",
            stops(&peer),
            sizes(&peer)
        );
        let others: Vec<f64> = self
            .phases
            .iter()
            .filter(|p| p.others_cores.is_finite())
            .map(|p| p.others_cores)
            .collect();
        let _ = writeln!(
            s,
            "Noise: the rest of the machine used {} cores (median of the phases' medians; highest {}).\n",
            f2(median(&others)),
            f2(max_of(&others))
        );
    }

    fn render_long(&self, s: &mut String) {
        let Some(p) = self.long.iter().find(|p| p.arm == Arm::File) else {
            return;
        };
        let o = self.ours(self.long, p);
        let _ = writeln!(s, "## Long recording ({} s)\n", p.secs);
        let _ = writeln!(
            s,
            "* check: {}{}",
            if p.valid() { "ok" } else { "**BROKEN**" },
            if p.probe.problems.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.probe.problems.join("; "))
            }
        );
        let _ = writeln!(
            s,
            "* stop → finished: **{} s**; file {} MiB{}; ffprobe duration {} s, {} video frames; the pipeline wrote {} s",
            opt_f2(p.stop_s()),
            mib_of(p.bytes()),
            match p.probe.moov_first {
                Some(true) => " (moov first: faststart applied)",
                Some(false) => " (moov last: no faststart)",
                None => "",
            },
            opt_f2(p.probe.duration_s),
            p.probe
                .video_frames
                .map(|f| f.to_string())
                .unwrap_or("–".into()),
            opt_f2(p.result["duration_s"].as_f64()),
        );
        let _ = writeln!(
            s,
            "* median cores: total {} (compositor {}, video decoders {}, audio decoders {}, encoder {}); the rest of the machine {}",
            f3(o.total_cores),
            f3(o.comp_cores),
            f3(p.core(Kind::VideoDecoder)),
            f3(p.core(Kind::AudioDecoder)),
            f3(p.core(Kind::Encoder)),
            f2(p.others_cores),
        );
        let _ = writeln!(
            s,
            "* memory: RSS median {} MiB (peak {}), PSS median {} MiB (peak {}), compositor PSS {} MiB; total RSS in the first minute {} MiB, in the last minute {} MiB (uncorrected)",
            f1(o.total_rss),
            f1(o.total_rss_peak),
            f1(o.total_pss),
            f1(o.total_pss_peak),
            f1(o.comp_pss),
            f1(p.rss_first_min),
            f1(p.rss_last_min),
        );
        let _ = writeln!(
            s,
            "* max output lag {} ms, {} frames repeated, {} decoder restarts, {} packets dropped \
             in{}\n",
            p.result["max_lag_ms"],
            p.result["frames_repeated"],
            p.result["decoder_restarts"],
            p.result["dropped"],
            if p.build_samples > 0 {
                format!(
                    "; **a compiler ran during {} of {} samples**",
                    p.build_samples, p.samples
                )
            } else {
                String::new()
            }
        );
    }
}
