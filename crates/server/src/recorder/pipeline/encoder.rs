//! The encoder: one ffmpeg that takes composed frames on stdin and mixed audio over TCP,
//! and how it is finalised or reported failed.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::clock::TimelineStats;
use super::process::{for_each_line, AbortOnDrop, Tail};
use super::{part_path, Finished, PipelineConfig, PipelineError};
use crate::recorder::compose;
use crate::recorder::Target;

/// How long ffmpeg may take to finalise after its inputs are closed.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the encoder may take to start listening for its audio input.
const AUDIO_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) fn encoder_command(cfg: &PipelineConfig, target: &Target, audio_port: u16) -> Command {
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
pub(super) struct PartGuard {
    pub(super) path: PathBuf,
    pub(super) armed: bool,
}

impl PartGuard {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    pub(super) fn remove_now(&mut self) {
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

/// Follows ffmpeg's `-progress` output for the bytes it has muxed (what an RTMP target got).
pub(super) async fn read_progress(stdout: ChildStdout, bytes: Arc<AtomicU64>) {
    for_each_line(stdout, |line| {
        if let Some(n) = String::from_utf8_lossy(line)
            .strip_prefix("total_size=")
            .and_then(|v| v.trim().parse().ok())
        {
            bytes.store(n, Ordering::Relaxed);
        }
    })
    .await;
}

pub(super) async fn write_video(
    mut stdin: ChildStdin,
    mut rx: mpsc::Receiver<Arc<Vec<u8>>>,
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

pub(super) async fn write_audio(
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

/// Everything the final task owns; dropping it kills the encoder, aborts every task and (if
/// not finalised) removes the `.part`.
pub(super) struct Running {
    pub(super) fps: u32,
    pub(super) target: Target,
    pub(super) target_desc: String,
    pub(super) child: Child,
    pub(super) part: Option<PartGuard>,
    pub(super) stop: CancellationToken,
    pub(super) clock: JoinHandle<()>,
    pub(super) writer: JoinHandle<()>,
    pub(super) video_writer: JoinHandle<()>,
    pub(super) audio_writer: JoinHandle<()>,
    pub(super) stderr_task: JoinHandle<()>,
    pub(super) tail: Tail,
    pub(super) frames: Arc<AtomicU64>,
    pub(super) sent_bytes: Arc<AtomicU64>,
    pub(super) tracks_seen: Arc<AtomicUsize>,
    /// Ticks written, repeated and dropped; how late the clock and the writer ran.
    pub(super) timeline: Arc<TimelineStats>,
    pub(super) fatal_rx: mpsc::Receiver<PipelineError>,
    pub(super) _tasks: AbortOnDrop,
}

pub(super) enum Ended {
    Exited(io::Result<ExitStatus>),
    Stop,
    Fatal(PipelineError),
}

impl Running {
    pub(super) async fn run(mut self) -> Result<Finished, PipelineError> {
        let result = self.drive().await;
        let frames = self.frames.load(Ordering::Relaxed);
        let tracks = self.tracks_seen.load(Ordering::Relaxed);
        let t = &self.timeline;
        let composed = t.composed.load(Ordering::Relaxed);
        let clock_lag_ms = t.max_clock_lag_ms.load(Ordering::Relaxed);
        let writer_lag_ms = t.max_writer_lag_ms.load(Ordering::Relaxed);
        match &result {
            Ok(f) => tracing::info!(
                target = %self.target_desc,
                tracks,
                frames,
                composed,
                repeated = f.frames_repeated,
                dropped = f.ticks_dropped,
                clock_lag_ms,
                writer_lag_ms,
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

    pub(super) async fn drive(&mut self) -> Result<Finished, PipelineError> {
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

    pub(super) async fn finish(&mut self) -> Result<Finished, PipelineError> {
        let Running {
            clock,
            writer,
            video_writer,
            audio_writer,
            child,
            fatal_rx,
            ..
        } = self;
        // The clock emits the ticks due by now and drops its sender; the writer hands them
        // over and drops its own; the encoder's input writers drain and close its inputs;
        // ffmpeg sees end of input on both and finalises.
        let drained = async {
            let _ = clock.await;
            let _ = writer.await;
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
        let frames_repeated = self.timeline.repeated.load(Ordering::Relaxed);
        let ticks_dropped = self.timeline.dropped.load(Ordering::Relaxed);
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
                    frames_repeated,
                    ticks_dropped,
                    bytes,
                })
            }
            _ => Ok(Finished {
                path: None,
                duration,
                frames_repeated,
                ticks_dropped,
                bytes: self.sent_bytes.load(Ordering::Relaxed),
            }),
        }
    }

    /// The encoder's last stderr lines, once it has closed stderr (bounded: a stuck
    /// grandchild must not hold up the report).
    pub(super) async fn stderr_text(&mut self) -> String {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.stderr_task).await;
        self.tail.text()
    }

    pub(super) fn failure(
        &self,
        status: String,
        stderr: String,
        phase: &'static str,
    ) -> PipelineError {
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

pub(super) fn status_text(st: &io::Result<ExitStatus>) -> String {
    match st {
        Ok(s) => format!("exited with {s}"),
        Err(e) => format!("could not be waited for ({e})"),
    }
}
