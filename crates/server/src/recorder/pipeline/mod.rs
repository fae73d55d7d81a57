//! One recording or broadcast: per-track `ffmpeg` decoders, a compositor clock, and one
//! `ffmpeg` encoder.
//!
//! ```text
//!  SinkInput ─▶ ingest ─RTP/UDP─▶ ffmpeg (per track) ─raw frames / PCM─▶ Mixer
//!                                                                          │
//!        clock (fps) + compositor ◀────── latest frame, buffered audio ┘
//!                 writer │ composed yuv420p            │ mixed s16le
//!                       ▼ stdin                       ▼ TCP (127.0.0.1)
//!                     ffmpeg encoder (H.264/AAC) ─▶ <path>.part ─rename─▶ <path>  |  RTMP
//! ```
//!
//! The timeline follows the wall clock (see [`clock`]): every `1/fps` between start and stop
//! becomes exactly one frame and exactly 48000/fps samples, so the encoder timestamps both
//! streams by count, the output lasts as long as the recording ran, and picture and sound
//! cannot drift apart. A compositor that falls behind (a busy machine, a debug build) makes the
//! writer repeat frames, never shortens the output; tracks that stall, restart or join late
//! only change what the tiles show. Every child process is `kill_on_drop`, and every
//! task is owned by the pipeline, so dropping a [`Pipeline`] leaves nothing running.

mod clock;
mod decoder;
mod encoder;
mod ingest;
mod mixer;
mod pool;
mod ports;
mod process;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::clock::{run_clock, run_compositor, run_writer, Canvas, Timeline, TimelineStats};
use self::encoder::{encoder_command, read_progress, write_audio, write_video, PartGuard, Running};
use self::ingest::{run_ingest, Ingest};
use self::mixer::SharedMixer;
use self::ports::free_tcp_port;
use self::process::{read_stderr, AbortOnDrop, Tail};
use super::{SinkInput, Target};

/// Composed frames queued for the encoder; each is a full canvas, so keep it short.
const VIDEO_QUEUE: usize = 4;
/// Seconds of mixed audio queued for the encoder. Generous because audio is tiny and the
/// encoder only starts reading it once it has opened its video input.
const AUDIO_QUEUE_SECONDS: u32 = 10;

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
    /// Test knob, zero in production: every composition takes at least this long, to show
    /// that a compositor slower than the frame rate costs repeated frames, not duration or
    /// sync.
    #[doc(hidden)]
    pub compose_delay: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            ffmpeg: PathBuf::from("ffmpeg"),
            width: 1280,
            height: 720,
            fps: 25,
            work_dir: std::env::temp_dir().join("enclave-recorder"),
            compose_delay: Duration::ZERO,
        }
    }
}

/// What a pipeline produced once it finished cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The final file, for [`Target::File`].
    pub path: Option<PathBuf>,
    /// Media duration written: frames written / fps, which is the time between start and
    /// stop (rounded up to a frame) unless ticks were dropped.
    pub duration: Duration,
    /// Frames that repeat the one before because the compositor was late (a busy machine).
    pub frames_repeated: u64,
    /// Ticks (frame and audio) never written because the encoder fell far behind real time.
    pub ticks_dropped: u64,
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

impl PipelineError {
    /// What a room or an API caller may be told: the kind of failure, without ffmpeg's output,
    /// paths or URLs (those go to the server log).
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::FfmpegNotFound { .. } | Self::Spawn { .. } | Self::NoRuntime => {
                "the recorder is not available on this server"
            }
            Self::Config(_) | Self::WorkDir { .. } | Self::NoPort(_) | Self::Internal(_) => {
                "the recorder could not start (see the server log)"
            }
            Self::TargetLost { .. } => "the RTMP target refused or dropped the connection",
            Self::DiskFull { .. } => "the server's disk is full",
            Self::EncoderExited { .. } | Self::AudioInput { .. } => {
                "the encoder stopped unexpectedly (see the server log)"
            }
            Self::FinishTimeout { .. } => "the recording could not be finalised in time",
            Self::Finalise { .. } => "the finished recording could not be stored",
        }
    }
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
        let timeline_stats = Arc::new(TimelineStats::default());
        let (fatal_tx, fatal_rx) = mpsc::channel(4);
        let (video_tx, video_rx) = mpsc::channel::<Arc<Vec<u8>>>(VIDEO_QUEUE);
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
        let canvas = Canvas::of(&cfg);
        let timeline = Timeline::new(tokio::time::Instant::now(), cfg.fps);
        let (tick_tx, tick_rx) = mpsc::unbounded_channel();
        let compose_now = Arc::new(tokio::sync::Notify::new());
        let ring = Arc::default();
        let composed = Arc::new(tokio::sync::Notify::new());
        let compositor_stop = CancellationToken::new();
        let clock = tokio::spawn(run_clock(
            timeline,
            mixer.clone(),
            stop.clone(),
            tick_tx,
            compose_now.clone(),
            timeline_stats.clone(),
        ));
        tasks.push(&clock);
        tasks.push(&tokio::spawn(run_compositor(
            canvas,
            mixer.clone(),
            compose_now,
            Arc::clone(&ring),
            composed.clone(),
            compositor_stop.clone(),
            timeline_stats.clone(),
        )));
        let writer = tokio::spawn(run_writer(
            timeline,
            canvas,
            tick_rx,
            ring,
            composed,
            video_tx,
            audio_tx,
            compositor_stop,
            timeline_stats.clone(),
        ));
        tasks.push(&writer);
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
            writer,
            video_writer,
            audio_writer,
            stderr_task,
            tail,
            frames,
            sent_bytes,
            tracks_seen,
            timeline: timeline_stats,
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
/// (a secret) as the last path segment. The last segment goes even when it is the only one: a
/// URL without an application path gets the key as its first segment (found by fuzzing).
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let path = path.trim_end_matches('/');
    let path = match path.rfind('/') {
        Some(i) => format!("{}/…", &path[..i]),
        None => path.to_owned(),
    };
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(redact_url("rtmp://h/live"), "rtmp://h/…");
        assert_eq!(
            redact_url("rtmp://h/SECRET-KEY"),
            "rtmp://h/…",
            "a key right after the host"
        );
        assert_eq!(redact_url("rtmp://h"), "rtmp://h");
        assert!(!describe(&Target::Rtmp {
            url: "rtmp://h/x/KEY".into()
        })
        .contains("KEY"));
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
