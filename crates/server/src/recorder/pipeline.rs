//! One recording or broadcast: per-track `ffmpeg` decoders, a compositor clock, and one
//! `ffmpeg` encoder.
//!
//! ```text
//!  SinkInput ─▶ ingest ─RTP/UDP─▶ ffmpeg (per track) ─raw frames / PCM─▶ Mixer
//!                                                                          │
//!                     clock (fps) ◀────────── latest frame, buffered audio ┘
//!                       │ composed yuv420p            │ mixed s16le
//!                       ▼ stdin                       ▼ TCP (127.0.0.1)
//!                     ffmpeg encoder (H.264/AAC) ─▶ <path>.part ─rename─▶ <path>  |  RTMP
//! ```
//!
//! The clock writes exactly one frame and exactly 48000/fps samples per tick, so the encoder
//! timestamps both streams by count and they cannot drift apart; tracks that stall, restart or
//! join late only change what the tiles show. Every child process is `kill_on_drop`, and every
//! task is owned by the pipeline, so dropping a [`Pipeline`] leaves nothing running.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::compose::{self, AudioBuffer};
use super::{MediaKind, SinkInput, SinkPacket, Target};

/// A track's decoder is restarted at most this often before its tile is left frozen.
const MAX_DECODER_RESTARTS: u32 = 5;
/// How often a decoder that has not produced a frame yet asks for a keyframe.
const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);
/// How long ffmpeg may take to finalise after its inputs are closed.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the encoder may take to start listening for its audio input.
const AUDIO_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a fresh decoder to bind its UDP port before sending anyway.
const DECODER_READY_TIMEOUT: Duration = Duration::from_secs(3);
/// Tracks beyond this are ignored: each costs a decoder process.
const MAX_TRACKS: usize = 32;
/// Packets held per track while its decoder (re)starts, so the first keyframe is not lost.
const PENDING_PACKETS: usize = 512;
/// Composed frames queued for the encoder; each is a full canvas, so keep it short.
const VIDEO_QUEUE: usize = 4;
/// Seconds of mixed audio queued for the encoder. Generous because audio is tiny and the
/// encoder only starts reading it once it has opened its video input.
const AUDIO_QUEUE_SECONDS: u32 = 10;
/// stderr lines kept for error messages.
const STDERR_TAIL: usize = 6;
/// Our RTP towards the decoders; one fixed stream per decoder port.
const SSRC: u32 = 0x454e_434c;
const PT_VIDEO: u8 = 96;
const PT_AUDIO: u8 = 111;

/// How a pipeline runs; the defaults suit a 720p recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// The `ffmpeg` binary (searched on `PATH` if bare).
    pub ffmpeg: PathBuf,
    /// Canvas size; both must be even.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Scratch directory for the decoders' SDP files; created if missing. Several pipelines
    /// may share it.
    pub work_dir: PathBuf,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            ffmpeg: PathBuf::from("ffmpeg"),
            width: 1280,
            height: 720,
            fps: 25,
            work_dir: std::env::temp_dir().join("enclave-recorder"),
        }
    }
}

/// What a pipeline produced once it finished cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The final file, for [`Target::File`].
    pub path: Option<PathBuf>,
    /// Media duration written: frames written / fps.
    pub duration: Duration,
    /// The file's size, or for RTMP the bytes ffmpeg reported having sent.
    pub bytes: u64,
}

/// Why a pipeline could not start or did not finish. RTMP URLs appear with their stream key
/// redacted.
#[derive(thiserror::Error, Debug, Clone)]
pub enum PipelineError {
    #[error("ffmpeg not found at {path:?}: install ffmpeg or configure its path")]
    FfmpegNotFound { path: PathBuf },
    #[error("could not start ffmpeg ({path:?}): {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("invalid recorder configuration: {0}")]
    Config(String),
    #[error("recorder work directory {path:?}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("the recorder pipeline must be started inside a Tokio runtime")]
    NoRuntime,
    #[error("no free local port for the recorder: {0}")]
    NoPort(#[source] Arc<io::Error>),
    #[error("RTMP target {target} refused or dropped the connection (encoder {status}): {stderr}")]
    TargetLost {
        target: String,
        status: String,
        stderr: String,
    },
    #[error("writing {path:?} failed, disk full (encoder {status}): {stderr}")]
    DiskFull {
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("encoder for {target} {status} {phase}: {stderr}")]
    EncoderExited {
        target: String,
        status: String,
        phase: &'static str,
        stderr: String,
    },
    #[error(
        "encoder for {target} did not finish within {secs} s of the stop request and was killed"
    )]
    FinishTimeout { target: String, secs: u64 },
    #[error("encoder for {target} never accepted its audio input on 127.0.0.1:{port}: {reason}")]
    AudioInput {
        target: String,
        port: u16,
        reason: String,
    },
    #[error("could not finalise {from:?} as {to:?}: {source}")]
    Finalise {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("recorder pipeline: {0}")]
    Internal(String),
}

/// A running recording or broadcast. Dropping it kills everything without finalising (a
/// File target's `.part` is removed); call [`Pipeline::request_stop`] then
/// [`Pipeline::wait`] for a complete output.
#[derive(Debug)]
pub struct Pipeline {
    stop: CancellationToken,
    task: Option<JoinHandle<Result<Finished, PipelineError>>>,
    result: Option<Result<Finished, PipelineError>>,
}

impl Pipeline {
    /// Spawns the pipeline as tokio tasks and returns at once. Must be called inside a Tokio
    /// runtime. Fails here only for what can be known at once (bad config, ffmpeg missing,
    /// work dir unusable); everything later surfaces through [`Pipeline::wait`].
    pub fn start(
        cfg: PipelineConfig,
        target: Target,
        input: mpsc::Receiver<SinkInput>,
        keyframes: mpsc::UnboundedSender<String>,
    ) -> Result<Pipeline, PipelineError> {
        validate(&cfg)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(PipelineError::NoRuntime);
        }
        std::fs::create_dir_all(&cfg.work_dir).map_err(|e| PipelineError::WorkDir {
            path: cfg.work_dir.clone(),
            source: Arc::new(e),
        })?;
        let audio_port = free_tcp_port().map_err(|e| PipelineError::NoPort(Arc::new(e)))?;
        let target_desc = describe(&target);

        let mut child = encoder_command(&cfg, &target, audio_port)
            .spawn()
            .map_err(|e| spawn_error(&cfg.ffmpeg, e))?;
        // From here on the `.part` may exist, and is ours to remove unless finalised.
        let part = match &target {
            Target::File { path } => Some(PartGuard::new(part_path(path))),
            Target::Rtmp { .. } => None,
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(PipelineError::Internal(
                "the encoder's standard streams were not captured".into(),
            ));
        };

        let stop = CancellationToken::new();
        let mixer: SharedMixer = Arc::default();
        let frames = Arc::new(AtomicU64::new(0));
        let sent_bytes = Arc::new(AtomicU64::new(0));
        let tracks_seen = Arc::new(AtomicUsize::new(0));
        let max_lag_ms = Arc::new(AtomicU64::new(0));
        let (fatal_tx, fatal_rx) = mpsc::channel(4);
        let (video_tx, video_rx) = mpsc::channel::<Vec<u8>>(VIDEO_QUEUE);
        let (audio_tx, audio_rx) =
            mpsc::channel::<Vec<u8>>((cfg.fps * AUDIO_QUEUE_SECONDS) as usize);
        let mut tasks = AbortOnDrop::default();

        let tail = Tail::default();
        let redact = match &target {
            Target::Rtmp { url } => Some((url.clone(), target_desc.clone())),
            Target::File { .. } => None,
        };
        let log_target = target_desc.clone();
        let stderr_task = tokio::spawn(read_stderr(
            stderr,
            tail.clone(),
            redact,
            move |line| tracing::warn!(target = %log_target, "encoder: {line}"),
        ));
        tasks.push(&stderr_task);
        tasks.push(&tokio::spawn(read_progress(stdout, sent_bytes.clone())));

        let video_writer = tokio::spawn(write_video(stdin, video_rx, frames.clone()));
        tasks.push(&video_writer);
        let audio_writer = tokio::spawn(write_audio(
            audio_port,
            audio_rx,
            fatal_tx.clone(),
            target_desc.clone(),
        ));
        tasks.push(&audio_writer);
        let clock = tokio::spawn(run_clock(
            Canvas::of(&cfg),
            mixer.clone(),
            stop.clone(),
            video_tx,
            audio_tx,
            max_lag_ms.clone(),
        ));
        tasks.push(&clock);
        tasks.push(&tokio::spawn(run_ingest(
            input,
            stop.clone(),
            Ingest {
                cfg: cfg.clone(),
                stem: format!("rec-{}", uuid::Uuid::new_v4().simple()),
                mixer,
                keyframes,
                fatal: fatal_tx,
                tracks_seen: tracks_seen.clone(),
            },
        )));

        tracing::info!(
            target = %target_desc,
            width = cfg.width,
            height = cfg.height,
            fps = cfg.fps,
            "recorder pipeline started"
        );
        let running = Running {
            fps: cfg.fps,
            target,
            target_desc,
            child,
            part,
            stop: stop.clone(),
            clock,
            video_writer,
            audio_writer,
            stderr_task,
            tail,
            frames,
            sent_bytes,
            tracks_seen,
            max_lag_ms,
            fatal_rx,
            _tasks: tasks,
        };
        Ok(Pipeline {
            stop,
            task: Some(tokio::spawn(running.run())),
            result: None,
        })
    }

    /// Asks the pipeline to finish: stop reading input, close the encoder's inputs, let
    /// ffmpeg finalise. Idempotent.
    pub fn request_stop(&mut self) {
        self.stop.cancel();
    }

    /// Resolves once the pipeline has ended: Ok after a requested stop (or the input closing)
    /// finalised the output, Err if anything failed before or during. On Err a File target's
    /// `.part` has been removed. Cancel-safe; once resolved, later calls return the same result.
    pub async fn wait(&mut self) -> Result<Finished, PipelineError> {
        if let Some(r) = &self.result {
            return r.clone();
        }
        let Some(task) = self.task.as_mut() else {
            return Err(PipelineError::Internal("pipeline has no task".into()));
        };
        let r = match task.await {
            Ok(r) => r,
            Err(e) => Err(PipelineError::Internal(format!(
                "pipeline task failed: {e}"
            ))),
        };
        self.task = None;
        self.result = Some(r.clone());
        r
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

fn validate(cfg: &PipelineConfig) -> Result<(), PipelineError> {
    let dim_ok = |v: u32| (16..=4096).contains(&v) && v % 2 == 0;
    if !dim_ok(cfg.width) || !dim_ok(cfg.height) {
        return Err(PipelineError::Config(format!(
            "canvas {}x{} must be even and between 16 and 4096 on each side",
            cfg.width, cfg.height
        )));
    }
    if !(1..=60).contains(&cfg.fps) {
        return Err(PipelineError::Config(format!(
            "fps {} must be between 1 and 60",
            cfg.fps
        )));
    }
    Ok(())
}

fn spawn_error(ffmpeg: &Path, e: io::Error) -> PipelineError {
    if e.kind() == io::ErrorKind::NotFound {
        PipelineError::FfmpegNotFound {
            path: ffmpeg.to_owned(),
        }
    } else {
        PipelineError::Spawn {
            path: ffmpeg.to_owned(),
            source: Arc::new(e),
        }
    }
}

fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// How a target appears in logs and errors.
fn describe(target: &Target) -> String {
    match target {
        Target::File { path } => path.display().to_string(),
        Target::Rtmp { url } => redact_url(url),
    }
}

/// `rtmp://user:pw@host/app/KEY?x` → `rtmp://host/app/…`: RTMP services take the stream key
/// (a secret) as the last path segment.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let path = path.trim_end_matches('/');
    let path = match path.rfind('/') {
        Some(i) if i > 0 => format!("{}/…", &path[..i]),
        _ => path.to_owned(),
    };
    format!("{scheme}{host}{path}")
}

fn encoder_command(cfg: &PipelineConfig, target: &Target, audio_port: u16) -> Command {
    let size = format!("{}x{}", cfg.width, cfg.height);
    let fps = cfg.fps.to_string();
    let gop = (cfg.fps * 2).to_string();
    let rate = compose::SAMPLE_RATE.to_string();
    let audio_url = format!("tcp://127.0.0.1:{audio_port}?listen=1");
    let mut c = Command::new(&cfg.ffmpeg);
    #[rustfmt::skip]
    c.args([
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
        "-progress", "pipe:1",
        // The inputs' formats are given, so probing only delays the start: ffmpeg opens its
        // inputs in order and will not listen for the audio before it has read some video.
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", &size, "-r", &fps,
        "-probesize", "32", "-thread_queue_size", "16", "-i", "pipe:0",
        "-f", "s16le", "-ar", &rate, "-ac", "1",
        "-probesize", "32", "-thread_queue_size", "64", "-i", &audio_url,
        "-map", "0:v:0", "-map", "1:a:0",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-pix_fmt", "yuv420p", "-g", &gop,
        "-c:a", "aac", "-b:a", "128k",
        "-max_muxing_queue_size", "1024",
    ]);
    match target {
        Target::File { path } => {
            c.args(["-movflags", "+faststart", "-f", "mp4"])
                .arg(part_path(path));
        }
        Target::Rtmp { url } => {
            c.args(["-flvflags", "no_duration_filesize", "-f", "flv", url]);
        }
    }
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Removes a File target's `.part` unless disarmed after the rename.
#[derive(Debug)]
struct PartGuard {
    path: PathBuf,
    armed: bool,
}

impl PartGuard {
    fn new(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    fn remove_now(&mut self) {
        if self.armed {
            self.armed = false;
            match std::fs::remove_file(&self.path) {
                Ok(()) => {
                    tracing::info!(path = %self.path.display(), "removed incomplete recording")
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "could not remove incomplete recording")
                }
            }
        }
    }
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// Aborts the tasks it holds when dropped, so no task outlives the pipeline.
#[derive(Default)]
struct AbortOnDrop(Vec<AbortHandle>);

impl AbortOnDrop {
    fn push<T>(&mut self, handle: &JoinHandle<T>) {
        self.0.push(handle.abort_handle());
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// The last few lines a process wrote to stderr.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() == STDERR_TAIL {
            t.pop_front();
        }
        t.push_back(line);
    }

    fn text(&self) -> String {
        let t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if t.is_empty() {
            "(no error output)".to_owned()
        } else {
            t.iter().cloned().collect::<Vec<_>>().join(" | ")
        }
    }
}

/// Logs a child's stderr line by line and keeps its tail. `redact` replaces a secret (the
/// RTMP URL) with its redacted form.
async fn read_stderr<R: AsyncRead + Unpin>(
    stream: R,
    tail: Tail,
    redact: Option<(String, String)>,
    log: impl Fn(&str),
) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let mut line: String = String::from_utf8_lossy(&buf)
            .trim_end()
            .chars()
            .take(400)
            .collect();
        if line.is_empty() {
            continue;
        }
        if let Some((secret, shown)) = &redact {
            line = line.replace(secret.as_str(), shown);
        }
        log(&line);
        tail.push(line);
    }
}

/// Follows ffmpeg's `-progress` output for the bytes it has muxed (what an RTMP target got).
async fn read_progress(stdout: ChildStdout, bytes: Arc<AtomicU64>) {
    // Read to the end whatever arrives: closing this pipe early would fail ffmpeg's writes.
    let mut r = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if let Some(n) = String::from_utf8_lossy(&line)
            .strip_prefix("total_size=")
            .and_then(|v| v.trim().parse().ok())
        {
            bytes.store(n, Ordering::Relaxed);
        }
    }
}

async fn write_video(
    mut stdin: ChildStdin,
    mut rx: mpsc::Receiver<Vec<u8>>,
    frames: Arc<AtomicU64>,
) {
    while let Some(frame) = rx.recv().await {
        if let Err(e) = stdin.write_all(&frame).await {
            // The encoder is gone; the pipeline reports why from its exit.
            tracing::debug!(error = %e, "encoder video input closed");
            return;
        }
        frames.fetch_add(1, Ordering::Relaxed);
    }
    let _ = stdin.shutdown().await;
}

async fn write_audio(
    port: u16,
    mut rx: mpsc::Receiver<Vec<u8>>,
    fatal: mpsc::Sender<PipelineError>,
    target: String,
) {
    // Connect even if a stop came first: ffmpeg waits on this input before it can finalise.
    let deadline = Instant::now() + AUDIO_CONNECT_TIMEOUT;
    let mut stream = loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
            // Connecting to a port nobody listens on can, rarely, connect the socket to
            // itself (TCP simultaneous open): that is not ffmpeg.
            Ok(s) if s.local_addr().ok() == s.peer_addr().ok() => {
                drop(s);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => {
                let _ = fatal
                    .send(PipelineError::AudioInput {
                        target,
                        port,
                        reason: e.to_string(),
                    })
                    .await;
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let _ = stream.set_nodelay(true);
    while let Some(block) = rx.recv().await {
        if let Err(e) = stream.write_all(&block).await {
            tracing::debug!(error = %e, "encoder audio input closed");
            return;
        }
    }
    let _ = stream.shutdown().await;
}

#[derive(Clone, Copy)]
struct Canvas {
    width: u32,
    height: u32,
    fps: u32,
}

impl Canvas {
    fn of(cfg: &PipelineConfig) -> Self {
        Self {
            width: cfg.width,
            height: cfg.height,
            fps: cfg.fps,
        }
    }
}

/// Ticks at the canvas rate from a fixed start: frame `n` is due at `t0 + n/fps`. A late tick
/// is written at once rather than skipped, so frames written / fps is the media duration.
async fn run_clock(
    canvas: Canvas,
    mixer: SharedMixer,
    stop: CancellationToken,
    video: mpsc::Sender<Vec<u8>>,
    audio: mpsc::Sender<Vec<u8>>,
    max_lag_ms: Arc<AtomicU64>,
) {
    let t0 = Instant::now();
    let mut n: u64 = 0;
    let mut due = t0;
    // At least one tick is always written: an encoder given no frame at all cannot finish.
    loop {
        let lag = Instant::now().saturating_duration_since(due).as_millis() as u64;
        max_lag_ms.fetch_max(lag, Ordering::Relaxed);
        let (tiles, samples) = {
            let mut m = lock(&mixer);
            (m.visible(), m.mix(compose::samples_for_tick(n, canvas.fps)))
        };
        let frame = tokio::task::spawn_blocking(move || {
            let refs: Vec<Option<&[u8]>> = tiles
                .iter()
                .map(|t| t.as_deref().map(Vec::as_slice))
                .collect();
            let mut frame = vec![0u8; compose::frame_len(canvas.width, canvas.height)];
            compose::compose(&mut frame, canvas.width, canvas.height, &refs);
            frame
        })
        .await;
        let Ok(frame) = frame else {
            tracing::error!("compositor task failed; stopping the clock");
            break;
        };
        let pcm: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        if video.send(frame).await.is_err() || audio.send(pcm).await.is_err() {
            break;
        }
        n += 1;
        due = t0 + Duration::from_nanos(n * 1_000_000_000 / u64::from(canvas.fps));
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
    }
}

/// Latest decoded frame per video track, buffered audio per audio track.
#[derive(Default)]
struct Mixer {
    next_order: u64,
    video: HashMap<String, VideoSlot>,
    audio: HashMap<String, AudioBuffer>,
}

struct VideoSlot {
    /// Tiles keep the order tracks first appeared in.
    order: u64,
    frame: Option<Arc<Vec<u8>>>,
}

type SharedMixer = Arc<Mutex<Mixer>>;

fn lock(m: &Mutex<Mixer>) -> MutexGuard<'_, Mixer> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mixer {
    fn add_video(&mut self, sid: &str) {
        let order = self.next_order;
        self.next_order += 1;
        self.video
            .entry(sid.to_owned())
            .or_insert(VideoSlot { order, frame: None });
    }

    fn add_audio(&mut self, sid: &str) {
        self.audio.entry(sid.to_owned()).or_default();
    }

    fn remove(&mut self, sid: &str) {
        self.video.remove(sid);
        self.audio.remove(sid);
    }

    fn set_frame(&mut self, sid: &str, frame: Arc<Vec<u8>>) {
        if let Some(slot) = self.video.get_mut(sid) {
            slot.frame = Some(frame);
        }
    }

    fn push_audio(&mut self, sid: &str, samples: &[i16]) {
        if let Some(b) = self.audio.get_mut(sid) {
            b.push(samples);
        }
    }

    fn visible(&self) -> Vec<Option<Arc<Vec<u8>>>> {
        let mut slots: Vec<&VideoSlot> = self.video.values().collect();
        slots.sort_by_key(|s| s.order);
        slots
            .into_iter()
            .take(compose::MAX_TILES)
            .map(|s| s.frame.clone())
            .collect()
    }

    fn mix(&mut self, n: usize) -> Vec<i16> {
        compose::mix(self.audio.values_mut(), n)
    }
}

/// What ffmpeg 5.1 can depacketise and decode for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Vp8,
    Vp9,
    H264,
    Opus,
}

impl Codec {
    fn is_video(self) -> bool {
        self != Codec::Opus
    }

    fn clock_rate(self) -> u32 {
        if self.is_video() {
            90_000
        } else {
            48_000
        }
    }

    fn payload_type(self) -> u8 {
        if self.is_video() {
            PT_VIDEO
        } else {
            PT_AUDIO
        }
    }

    fn sdp(self, port: u16) -> String {
        let (media, rtpmap, fmtp) = match self {
            Codec::Vp8 => ("video", "VP8/90000", ""),
            Codec::Vp9 => ("video", "VP9/90000", ""),
            Codec::H264 => ("video", "H264/90000", "a=fmtp:96 packetization-mode=1\r\n"),
            Codec::Opus => ("audio", "opus/48000/2", ""),
        };
        let pt = self.payload_type();
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=enclave\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m={media} {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {rtpmap}\r\n{fmtp}"
        )
    }
}

/// What the ingest does with a new track.
enum Plan {
    Decode(Codec),
    /// A video tile that stays a placeholder (a codec ffmpeg cannot take from RTP).
    Placeholder(&'static str),
    Ignore(&'static str),
}

fn plan(kind: MediaKind, codec: &str) -> Plan {
    let is = |name: &str| codec.eq_ignore_ascii_case(name);
    match kind {
        _ if is("VP8") => Plan::Decode(Codec::Vp8),
        _ if is("VP9") => Plan::Decode(Codec::Vp9),
        _ if is("H264") => Plan::Decode(Codec::H264),
        _ if is("OPUS") => Plan::Decode(Codec::Opus),
        MediaKind::Video if is("AV1") => {
            Plan::Placeholder("ffmpeg 5.1 has no AV1 RTP depacketiser")
        }
        MediaKind::Video => Plan::Placeholder("unsupported video codec"),
        MediaKind::Audio => Plan::Ignore("unsupported audio codec"),
    }
}

struct Ingest {
    cfg: PipelineConfig,
    /// Unique per pipeline: SDP files of several pipelines share the work dir.
    stem: String,
    mixer: SharedMixer,
    keyframes: mpsc::UnboundedSender<String>,
    fatal: mpsc::Sender<PipelineError>,
    tracks_seen: Arc<AtomicUsize>,
}

struct Track {
    /// None: no decoder for this track.
    decoder: Option<TrackDecoder>,
}

struct TrackDecoder {
    codec: Codec,
    /// The decoder's RTP port; 0 while it (re)starts.
    port: Arc<AtomicU16>,
    pending: VecDeque<Vec<u8>>,
    supervisor: AbortHandle,
}

impl Drop for TrackDecoder {
    fn drop(&mut self) {
        // Kills the decoder: its Child is kill_on_drop inside the aborted task.
        self.supervisor.abort();
    }
}

async fn run_ingest(mut input: mpsc::Receiver<SinkInput>, stop: CancellationToken, ctx: Ingest) {
    let sock = match UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ctx.fatal.send(PipelineError::NoPort(Arc::new(e))).await;
            return;
        }
    };
    let mut tracks: HashMap<String, Track> = HashMap::new();
    let mut ended: HashSet<String> = HashSet::new();
    let mut datagram = Vec::with_capacity(1500);
    loop {
        let msg = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            m = input.recv() => m,
        };
        match msg {
            None => {
                tracing::info!("recorder input closed: finishing");
                stop.cancel();
                break;
            }
            Some(SinkInput::TrackEnded { track_sid }) => {
                if tracks.remove(&track_sid).is_some() {
                    tracing::info!(track = %track_sid, "track ended: tile and audio removed");
                }
                lock(&ctx.mixer).remove(&track_sid);
                ended.insert(track_sid);
            }
            Some(SinkInput::Packet(p)) => {
                // Packets still in flight after TrackEnded must not bring the track back.
                if ended.contains(&p.track_sid) {
                    continue;
                }
                if !tracks.contains_key(&p.track_sid) {
                    let decoding = tracks.values().filter(|t| t.decoder.is_some()).count();
                    let t = new_track(&ctx, &p, decoding);
                    tracks.insert(p.track_sid.clone(), t);
                }
                let Some(dec) = tracks
                    .get_mut(&p.track_sid)
                    .and_then(|t| t.decoder.as_mut())
                else {
                    continue;
                };
                rtp_datagram(&p, dec.codec.payload_type(), &mut datagram);
                let port = dec.port.load(Ordering::Acquire);
                if port == 0 {
                    if dec.supervisor.is_finished() {
                        // The decoder gave up; its tile stays frozen.
                        dec.pending.clear();
                        continue;
                    }
                    if dec.pending.len() == PENDING_PACKETS {
                        dec.pending.pop_front();
                    }
                    dec.pending.push_back(datagram.clone());
                    continue;
                }
                let to = (Ipv4Addr::LOCALHOST, port);
                // Loss on loopback is the decoder's problem (it conceals); never ours to fail on.
                for d in dec.pending.drain(..) {
                    let _ = sock.send_to(&d, to).await;
                }
                let _ = sock.send_to(&datagram, to).await;
            }
        }
    }
    // Dropping `tracks` aborts every decoder.
}

fn new_track(ctx: &Ingest, p: &SinkPacket, decoding: usize) -> Track {
    let sid = p.track_sid.as_str();
    if decoding >= MAX_TRACKS {
        tracing::warn!(
            track = sid,
            "more than {MAX_TRACKS} tracks: ignoring this one"
        );
        return Track { decoder: None };
    }
    ctx.tracks_seen.fetch_add(1, Ordering::Relaxed);
    let codec = match plan(p.kind, &p.codec) {
        Plan::Decode(c) => c,
        Plan::Placeholder(why) => {
            tracing::warn!(track = sid, codec = %p.codec, "{why}: the track's tile stays a placeholder");
            lock(&ctx.mixer).add_video(sid);
            return Track { decoder: None };
        }
        Plan::Ignore(why) => {
            tracing::warn!(track = sid, codec = %p.codec, "{why}: track not recorded");
            return Track { decoder: None };
        }
    };
    {
        let mut m = lock(&ctx.mixer);
        if codec.is_video() {
            m.add_video(sid);
        } else {
            m.add_audio(sid);
        }
    }
    tracing::info!(track = sid, participant = %p.participant_identity, codec = ?codec, "new track");
    if p.clock_rate != codec.clock_rate() {
        // The SDP states the standard rate; a different one would play at the wrong speed.
        tracing::warn!(
            track = sid,
            clock_rate = p.clock_rate,
            "unexpected RTP clock rate; decoding at {} Hz",
            codec.clock_rate()
        );
    }
    let port = Arc::new(AtomicU16::new(0));
    let index = ctx.tracks_seen.load(Ordering::Relaxed);
    let dctx = DecoderCtx {
        ffmpeg: ctx.cfg.ffmpeg.clone(),
        work_dir: ctx.cfg.work_dir.clone(),
        stem: format!("{}-{index}", ctx.stem),
        track_sid: sid.to_owned(),
        codec,
        width: ctx.cfg.width,
        height: ctx.cfg.height,
        mixer: ctx.mixer.clone(),
        port: port.clone(),
        keyframes: ctx.keyframes.clone(),
    };
    let supervisor = tokio::spawn(supervise_decoder(dctx)).abort_handle();
    Track {
        decoder: Some(TrackDecoder {
            codec,
            port,
            pending: VecDeque::new(),
            supervisor,
        }),
    }
}

/// A plain RTP packet (no CSRCs, no extensions) carrying the SFU's sequence number,
/// timestamp and marker under our own SSRC and payload type.
fn rtp_datagram(p: &SinkPacket, pt: u8, out: &mut Vec<u8>) {
    out.clear();
    out.push(0x80);
    out.push(if p.marker { 0x80 | pt } else { pt });
    out.extend_from_slice(&p.seq.to_be_bytes());
    out.extend_from_slice(&p.timestamp.to_be_bytes());
    out.extend_from_slice(&SSRC.to_be_bytes());
    out.extend_from_slice(&p.payload);
}

struct DecoderCtx {
    ffmpeg: PathBuf,
    work_dir: PathBuf,
    stem: String,
    track_sid: String,
    codec: Codec,
    width: u32,
    height: u32,
    mixer: SharedMixer,
    port: Arc<AtomicU16>,
    keyframes: mpsc::UnboundedSender<String>,
}

async fn supervise_decoder(ctx: DecoderCtx) {
    let mut restarts = 0u32;
    loop {
        let outcome = run_decoder(&ctx, restarts).await;
        ctx.port.store(0, Ordering::Release);
        if restarts >= MAX_DECODER_RESTARTS {
            tracing::warn!(track = %ctx.track_sid, "track decoder {outcome}; giving up after {restarts} restarts");
            return;
        }
        restarts += 1;
        tracing::warn!(track = %ctx.track_sid, "track decoder {outcome}; restarting ({restarts}/{MAX_DECODER_RESTARTS})");
        tokio::time::sleep(Duration::from_millis(200) * restarts).await;
    }
}

/// Removes an SDP file once its decoder is done with it.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs one decoder process until it ends; returns how it ended, for the log.
async fn run_decoder(ctx: &DecoderCtx, attempt: u32) -> String {
    let port = match free_udp_pair() {
        Ok(p) => p,
        Err(e) => return format!("could not start: no free UDP port pair: {e}"),
    };
    let sdp = TempFile(ctx.work_dir.join(format!("{}-{attempt}.sdp", ctx.stem)));
    if let Err(e) = tokio::fs::write(&sdp.0, ctx.codec.sdp(port)).await {
        return format!("could not start: writing {}: {e}", sdp.0.display());
    }
    let mut child = match decoder_command(ctx, &sdp.0).spawn() {
        Ok(c) => c,
        Err(e) => return format!("could not start: {}", spawn_error(&ctx.ffmpeg, e)),
    };
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return "could not start: standard streams not captured".to_owned();
    };
    let mut tasks = AbortOnDrop::default();
    let tail = Tail::default();
    let sid = ctx.track_sid.clone();
    tasks.push(&tokio::spawn(read_stderr(
        stderr,
        tail.clone(),
        None,
        move |line| tracing::debug!(track = %sid, "decoder: {line}"),
    )));
    let got_frame = Arc::new(AtomicBool::new(false));
    if ctx.codec.is_video() {
        tasks.push(&tokio::spawn(request_keyframes(
            ctx.track_sid.clone(),
            ctx.keyframes.clone(),
            got_frame.clone(),
        )));
    }
    wait_bound(port, &mut child).await;
    ctx.port.store(port, Ordering::Release);

    if ctx.codec.is_video() {
        read_frames(ctx, &mut stdout, &got_frame).await;
    } else {
        read_samples(ctx, &mut stdout).await;
    }
    ctx.port.store(0, Ordering::Release);
    let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(s)) => s.to_string(),
        Ok(Err(e)) => format!("unknown status ({e})"),
        Err(_) => {
            let _ = child.kill().await;
            "closed its output and was killed".to_owned()
        }
    };
    drop(tasks);
    format!("exited ({status}): {}", tail.text())
}

fn decoder_command(ctx: &DecoderCtx, sdp: &Path) -> Command {
    let (w, h) = (ctx.width, ctx.height);
    let mut c = Command::new(&ctx.ffmpeg);
    #[rustfmt::skip]
    c.args([
        "-hide_banner", "-nostdin", "-loglevel", "error",
        "-protocol_whitelist", "file,udp,rtp",
        // Never give up on a silent track (muted publishers send nothing), listen on loopback
        // only, and start decoding on the first packet instead of analysing for seconds.
        "-listen_timeout", "-1", "-localaddr", "127.0.0.1",
        "-reorder_queue_size", "16", "-buffer_size", "1048576",
        "-analyzeduration", "100000", "-probesize", "32",
        "-i",
    ]);
    c.arg(sdp);
    if ctx.codec.is_video() {
        // Every track at full canvas size: layout changes never need a decoder restart, and
        // shrinking into a tile is an integer box average.
        let vf = format!(
            "scale={w}:{h}:force_original_aspect_ratio=decrease,\
             pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,format=yuv420p"
        );
        #[rustfmt::skip]
        c.args([
            "-map", "0:v:0", "-an", "-vf", &vf, "-fps_mode", "passthrough",
            "-pix_fmt", "yuv420p", "-f", "rawvideo", "-flush_packets", "1", "pipe:1",
        ]);
    } else {
        let rate = compose::SAMPLE_RATE.to_string();
        #[rustfmt::skip]
        c.args([
            "-map", "0:a:0", "-vn", "-ac", "1", "-ar", &rate,
            "-f", "s16le", "-flush_packets", "1", "pipe:1",
        ]);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// A decoder can only start on a keyframe: ask for one now and every second until it
/// produced its first frame.
async fn request_keyframes(
    sid: String,
    keyframes: mpsc::UnboundedSender<String>,
    got_frame: Arc<AtomicBool>,
) {
    while !got_frame.load(Ordering::Relaxed) {
        if keyframes.send(sid.clone()).is_err() {
            return;
        }
        tokio::time::sleep(KEYFRAME_INTERVAL).await;
    }
}

async fn read_frames(ctx: &DecoderCtx, stdout: &mut ChildStdout, got_frame: &AtomicBool) {
    let len = compose::frame_len(ctx.width, ctx.height);
    loop {
        let mut frame = vec![0u8; len];
        if stdout.read_exact(&mut frame).await.is_err() {
            return;
        }
        got_frame.store(true, Ordering::Relaxed);
        lock(&ctx.mixer).set_frame(&ctx.track_sid, Arc::new(frame));
    }
}

async fn read_samples(ctx: &DecoderCtx, stdout: &mut ChildStdout) {
    let mut buf = vec![0u8; 8192];
    let mut carry: Option<u8> = None;
    let mut samples = Vec::with_capacity(4097);
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        samples.clear();
        let mut bytes = &buf[..n];
        if let (Some(lo), [hi, rest @ ..]) = (carry, bytes) {
            samples.push(i16::from_le_bytes([lo, *hi]));
            bytes = rest;
            carry = None;
        }
        let chunks = bytes.chunks_exact(2);
        if let [odd] = chunks.remainder() {
            carry = Some(*odd);
        }
        samples.extend(chunks.map(|c| i16::from_le_bytes([c[0], c[1]])));
        lock(&ctx.mixer).push_audio(&ctx.track_sid, &samples);
    }
}

/// Waits until the decoder has bound `port`, so the packets held meanwhile (with the
/// keyframe that let it start) are not sent into the void. Gives up quietly after a while.
async fn wait_bound(port: u16, child: &mut Child) {
    let deadline = Instant::now() + DECODER_READY_TIMEOUT;
    while Instant::now() < deadline {
        if udp_port_in_use(port) || !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn udp_port_in_use(port: u16) -> bool {
    match std::fs::read_to_string("/proc/net/udp") {
        // Reading the table cannot race ffmpeg's bind the way a test bind would.
        Ok(table) => {
            let suffix = format!(":{port:04X}");
            table.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(&suffix))
            })
        }
        Err(_) => std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_err(),
    }
}

/// An even UDP port `p` on loopback with `p + 1` also free (ffmpeg takes `p + 1` for RTCP).
/// Both are released again for ffmpeg to bind; a rare race only costs a decoder restart.
fn free_udp_pair() -> io::Result<u16> {
    let mut last = None;
    for _ in 0..64 {
        let first = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let p = first.local_addr()?.port();
        let (rtp, other) = if p % 2 == 0 {
            match p.checked_add(1) {
                Some(q) => (p, q),
                None => continue,
            }
        } else {
            (p - 1, p - 1)
        };
        match std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, other)) {
            Ok(_) => return Ok(rtp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::AddrNotAvailable, "no free UDP port pair")
    }))
}

fn free_tcp_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Everything the final task owns; dropping it kills the encoder, aborts every task and (if
/// not finalised) removes the `.part`.
struct Running {
    fps: u32,
    target: Target,
    target_desc: String,
    child: Child,
    part: Option<PartGuard>,
    stop: CancellationToken,
    clock: JoinHandle<()>,
    video_writer: JoinHandle<()>,
    audio_writer: JoinHandle<()>,
    stderr_task: JoinHandle<()>,
    tail: Tail,
    frames: Arc<AtomicU64>,
    sent_bytes: Arc<AtomicU64>,
    tracks_seen: Arc<AtomicUsize>,
    /// How far the clock fell behind real time at worst: the compositor or encoder could
    /// not keep up (an RTMP audience would have seen it stall).
    max_lag_ms: Arc<AtomicU64>,
    fatal_rx: mpsc::Receiver<PipelineError>,
    _tasks: AbortOnDrop,
}

enum Ended {
    Exited(io::Result<ExitStatus>),
    Stop,
    Fatal(PipelineError),
}

impl Running {
    async fn run(mut self) -> Result<Finished, PipelineError> {
        let result = self.drive().await;
        let frames = self.frames.load(Ordering::Relaxed);
        let tracks = self.tracks_seen.load(Ordering::Relaxed);
        let max_lag_ms = self.max_lag_ms.load(Ordering::Relaxed);
        match &result {
            Ok(f) => tracing::info!(
                target = %self.target_desc,
                tracks,
                frames,
                max_lag_ms,
                duration_ms = f.duration.as_millis() as u64,
                bytes = f.bytes,
                "recorder pipeline finished"
            ),
            Err(e) => {
                if let Some(p) = &mut self.part {
                    p.remove_now();
                }
                tracing::warn!(target = %self.target_desc, tracks, frames, error = %e, "recorder pipeline failed");
            }
        }
        result
    }

    async fn drive(&mut self) -> Result<Finished, PipelineError> {
        let ended = tokio::select! {
            st = self.child.wait() => Ended::Exited(st),
            _ = self.stop.cancelled() => Ended::Stop,
            Some(e) = self.fatal_rx.recv() => Ended::Fatal(e),
        };
        match ended {
            Ended::Exited(st) => {
                self.stop.cancel();
                let status = status_text(&st);
                let stderr = self.stderr_text().await;
                Err(self.failure(status, stderr, "before it was asked to stop"))
            }
            Ended::Fatal(e) => {
                self.stop.cancel();
                let _ = self.child.kill().await;
                Err(e)
            }
            Ended::Stop => self.finish().await,
        }
    }

    async fn finish(&mut self) -> Result<Finished, PipelineError> {
        let Running {
            clock,
            video_writer,
            audio_writer,
            child,
            fatal_rx,
            ..
        } = self;
        // The clock stops and drops its senders; the writers drain and close the encoder's
        // inputs; ffmpeg sees end of input on both and finalises.
        let drained = async {
            let _ = clock.await;
            let _ = video_writer.await;
            let _ = audio_writer.await;
            child.wait().await
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(FINISH_TIMEOUT, drained) => r,
            Some(e) = fatal_rx.recv() => {
                let _ = self.child.kill().await;
                return Err(e);
            }
        };
        let status = match outcome {
            Err(_) => {
                let _ = self.child.kill().await;
                return Err(PipelineError::FinishTimeout {
                    target: self.target_desc.clone(),
                    secs: FINISH_TIMEOUT.as_secs(),
                });
            }
            Ok(Err(e)) => {
                return Err(PipelineError::Internal(format!(
                    "waiting for the encoder: {e}"
                )))
            }
            Ok(Ok(status)) => status,
        };
        if !status.success() {
            let stderr = self.stderr_text().await;
            return Err(self.failure(status_text(&Ok(status)), stderr, "while finishing"));
        }
        let frames = self.frames.load(Ordering::Relaxed);
        let duration = Duration::from_nanos(frames * 1_000_000_000 / u64::from(self.fps));
        match (&self.target, &mut self.part) {
            (Target::File { path }, Some(part)) => {
                tokio::fs::rename(&part.path, path)
                    .await
                    .map_err(|e| PipelineError::Finalise {
                        from: part.path.clone(),
                        to: path.clone(),
                        source: Arc::new(e),
                    })?;
                part.armed = false;
                let bytes = tokio::fs::metadata(path)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(0);
                Ok(Finished {
                    path: Some(path.clone()),
                    duration,
                    bytes,
                })
            }
            _ => Ok(Finished {
                path: None,
                duration,
                bytes: self.sent_bytes.load(Ordering::Relaxed),
            }),
        }
    }

    /// The encoder's last stderr lines, once it has closed stderr (bounded: a stuck
    /// grandchild must not hold up the report).
    async fn stderr_text(&mut self) -> String {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.stderr_task).await;
        self.tail.text()
    }

    fn failure(&self, status: String, stderr: String, phase: &'static str) -> PipelineError {
        let lower = stderr.to_ascii_lowercase();
        if lower.contains("no space left on device") || lower.contains("disk quota exceeded") {
            if let Target::File { path } = &self.target {
                return PipelineError::DiskFull {
                    path: path.clone(),
                    status,
                    stderr,
                };
            }
        }
        if let Target::Rtmp { .. } = &self.target {
            const NETWORK: [&str; 12] = [
                "connection refused",
                "connection reset",
                "connection timed out",
                "broken pipe",
                "input/output error",
                "cannot open connection",
                "server error",
                "handshake",
                "network is unreachable",
                "no route to host",
                "failed to resolve",
                "end of file",
            ];
            if NETWORK.iter().any(|m| lower.contains(m)) {
                return PipelineError::TargetLost {
                    target: self.target_desc.clone(),
                    status,
                    stderr,
                };
            }
        }
        PipelineError::EncoderExited {
            target: self.target_desc.clone(),
            status,
            phase,
            stderr,
        }
    }
}

fn status_text(st: &io::Result<ExitStatus>) -> String {
    match st {
        Ok(s) => format!("exited with {s}"),
        Err(e) => format!("could not be waited for ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(marker: bool) -> SinkPacket {
        SinkPacket {
            track_sid: "TR_x".into(),
            participant_identity: "alice".into(),
            kind: MediaKind::Video,
            codec: "VP8".into(),
            clock_rate: 90_000,
            seq: 0xABCD,
            timestamp: 0x0102_0304,
            marker,
            payload: vec![9, 8, 7],
        }
    }

    #[test]
    fn rtp_header_carries_seq_timestamp_marker() {
        let mut out = Vec::new();
        rtp_datagram(&packet(true), PT_VIDEO, &mut out);
        assert_eq!(
            out,
            [
                0x80,
                0x80 | 96,
                0xAB,
                0xCD,
                1,
                2,
                3,
                4,
                0x45,
                0x4e,
                0x43,
                0x4c,
                9,
                8,
                7
            ]
        );
        rtp_datagram(&packet(false), PT_AUDIO, &mut out);
        assert_eq!(out[1], 111);
        assert_eq!(out.len(), 15);
    }

    #[test]
    fn stream_keys_are_redacted() {
        assert_eq!(
            redact_url("rtmp://a.example:1935/live/SECRET"),
            "rtmp://a.example:1935/live/…"
        );
        assert_eq!(
            redact_url("rtmps://user:pw@a.example/app/inst/SECRET/?k=v"),
            "rtmps://a.example/app/inst/…"
        );
        assert_eq!(redact_url("rtmp://h/live"), "rtmp://h/live");
        assert_eq!(redact_url("rtmp://h"), "rtmp://h");
        assert!(!describe(&Target::Rtmp {
            url: "rtmp://h/x/KEY".into()
        })
        .contains("KEY"));
    }

    #[test]
    fn codecs_are_planned() {
        assert!(matches!(
            plan(MediaKind::Video, "VP8"),
            Plan::Decode(Codec::Vp8)
        ));
        assert!(matches!(
            plan(MediaKind::Video, "h264"),
            Plan::Decode(Codec::H264)
        ));
        assert!(matches!(
            plan(MediaKind::Audio, "OPUS"),
            Plan::Decode(Codec::Opus)
        ));
        assert!(matches!(
            plan(MediaKind::Video, "AV1"),
            Plan::Placeholder(_)
        ));
        assert!(matches!(plan(MediaKind::Audio, "G722"), Plan::Ignore(_)));
        let sdp = Codec::H264.sdp(5004);
        assert!(sdp.contains("m=video 5004 RTP/AVP 96\r\n"));
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"));
        assert!(Codec::Opus
            .sdp(6000)
            .contains("m=audio 6000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2"));
    }

    #[test]
    fn udp_pairs_are_even_and_free() {
        for _ in 0..20 {
            let p = free_udp_pair().expect("a free pair");
            assert_eq!(p % 2, 0);
            let _a = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).expect("rtp port free");
            let _b =
                std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, p + 1)).expect("rtcp port free");
            assert!(udp_port_in_use(p));
        }
    }

    #[test]
    fn mixer_keeps_tile_order_and_forgets_ended_tracks() {
        let mut m = Mixer::default();
        m.add_video("b");
        m.add_video("a");
        m.add_audio("s");
        m.set_frame("a", Arc::new(vec![1]));
        let v = m.visible();
        assert_eq!(v.len(), 2);
        assert!(
            v[0].is_none(),
            "first-seen track first, still a placeholder"
        );
        assert_eq!(v[1].as_deref(), Some(&vec![1]));
        m.remove("b");
        assert_eq!(m.visible().len(), 1);
        m.push_audio("s", &[5; compose::PRIME_SAMPLES]);
        assert_eq!(m.mix(2), vec![5, 5]);
        m.remove("s");
        assert_eq!(m.mix(2), vec![0, 0]);
    }

    #[test]
    fn config_is_validated() {
        let ok = PipelineConfig::default();
        assert!(validate(&ok).is_ok());
        for bad in [
            PipelineConfig {
                width: 1279,
                ..ok.clone()
            },
            PipelineConfig {
                height: 8,
                ..ok.clone()
            },
            PipelineConfig {
                fps: 0,
                ..ok.clone()
            },
        ] {
            assert!(matches!(validate(&bad), Err(PipelineError::Config(_))));
        }
    }
}
