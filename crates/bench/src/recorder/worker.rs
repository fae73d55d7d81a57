//! The worker: one phase in its own process (`enclave-bench recorder-worker`), so its memory
//! is not polluted by earlier phases. It receives the replays on its UDP sockets, parses them
//! into `SinkPacket`s and feeds them to a `Pipeline` (or drops them: the baseline), or starts
//! the peer ffmpeg; it talks to the parent in JSON lines on stdout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use enclave_server::recorder::pipeline::{Pipeline, PipelineConfig};
use enclave_server::recorder::{SinkCodec, SinkInput, SinkPacket, SinkTrack, SinkTrackId, Target};

use super::{
    ffmpeg, Arm, WorkerOpts, CLIP_SECS, FINISH_LIMIT, FPS, HEIGHT, PARTICIPANTS, PT_AUDIO,
    PT_VIDEO, WIDTH,
};
use enclave_bench::ports::udp_pair;
use enclave_bench::procfs::udp_port_bound;

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

/// Receives one replayed stream and hands it on as one track, announced first as the SFU does.
async fn forward(
    sock: UdpSocket,
    track: SinkTrack,
    tx: mpsc::Sender<SinkInput>,
    stats: Arc<InStats>,
) {
    let id = track.id;
    if tx.send(SinkInput::Track(track)).await.is_err() {
        return;
    }
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

/// Runs one phase of the arm `w.arm` and reports it to the parent.
pub(super) async fn worker(w: WorkerOpts) -> anyhow::Result<()> {
    let secs = w.secs;
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
    let r = match w.arm {
        Arm::Baseline | Arm::File | Arm::Rtmp => worker_ours(&w, secs, &abort).await,
        Arm::Peer => worker_peer(&w, secs, &abort).await,
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
    let mut pipeline = match w.arm {
        Arm::File => Some(Pipeline::start(
            cfg,
            Target::File {
                path: w.out.clone(),
            },
            rx,
            kf_tx,
        )?),
        Arm::Rtmp => Some(Pipeline::start(
            cfg,
            Target::Rtmp { url: w.url.clone() },
            rx,
            kf_tx,
        )?),
        Arm::Baseline | Arm::Peer => {
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
            let (rtp, rtcp_sock) = udp_pair()?;
            pair.push(rtp.local_addr()?.port());
            rtp.set_nonblocking(true)?;
            let sock = UdpSocket::from_std(rtp)?;
            let track = SinkTrack {
                id: SinkTrackId((2 * i + usize::from(!video)) as u32),
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
            let v = udp_pair()?;
            let a = udp_pair()?;
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
