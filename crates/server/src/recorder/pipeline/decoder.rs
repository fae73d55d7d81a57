//! One track decoder: an ffmpeg process that depacketises RTP and writes raw frames or PCM,
//! supervised and restarted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ingest::Codec;
use super::mixer::{lock, lock_arrivals, SharedArrivals, SharedMixer};
use super::pool::FramePool;
use super::ports::{free_udp_pair, udp_port_in_use};
use super::process::{read_stderr, AbortOnDrop, Tail, TempFile};
use super::spawn_error;
use crate::recorder::compose;

/// A track's decoder is restarted at most this often before its tile is left frozen.
const MAX_DECODER_RESTARTS: u32 = 5;
/// How often a decoder that has not produced a frame yet asks for a keyframe.
const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);
/// How long a decoded frame waits for its pts line from the decoder's stderr.
const PTS_WAIT: Duration = Duration::from_millis(20);
/// How long to wait for a fresh decoder to bind its UDP port before sending anyway.
const DECODER_READY_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) struct DecoderCtx {
    pub(super) ffmpeg: PathBuf,
    pub(super) work_dir: PathBuf,
    pub(super) stem: String,
    pub(super) track_sid: String,
    pub(super) codec: Codec,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) mixer: SharedMixer,
    pub(super) port: Arc<AtomicU16>,
    pub(super) keyframes: mpsc::UnboundedSender<String>,
    /// Video: when each frame arrived, so that its picture keeps that time.
    pub(super) arrivals: SharedArrivals,
}

pub(super) async fn supervise_decoder(ctx: DecoderCtx) {
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

/// Runs one decoder process until it ends; returns how it ended, for the log.
pub(super) async fn run_decoder(ctx: &DecoderCtx, attempt: u32) -> String {
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
    // A video decoder reports each frame's pts (showinfo) on stderr, in output order.
    let (pts_tx, mut pts_rx) = mpsc::unbounded_channel::<i64>();
    tasks.push(&tokio::spawn(read_stderr(
        stderr,
        tail.clone(),
        None,
        move |line| match frame_pts(line) {
            Some(pts) => {
                let _ = pts_tx.send(pts);
            }
            None => tracing::debug!(track = %sid, "decoder: {line}"),
        },
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
        read_frames(ctx, &mut stdout, &got_frame, &mut pts_rx).await;
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

pub(super) fn decoder_command(ctx: &DecoderCtx, sdp: &Path) -> Command {
    let (w, h) = (ctx.width, ctx.height);
    let mut c = Command::new(&ctx.ffmpeg);
    #[rustfmt::skip]
    c.args([
        "-hide_banner", "-nostdin", "-nostats",
        // Video decoders log each frame's pts (showinfo, at info level); audio only errors.
        "-loglevel", if ctx.codec.is_video() { "info" } else { "error" },
        "-protocol_whitelist", "file,udp,rtp",
        // Never give up on a silent track (muted publishers send nothing), listen on loopback
        // only, and start decoding on the first packet instead of analysing for seconds.
        "-listen_timeout", "-1", "-localaddr", "127.0.0.1",
        "-reorder_queue_size", "16", "-buffer_size", "1048576",
        "-analyzeduration", "100000", "-probesize", "32",
        // Frame threading would hold a frame per extra thread (40 ms each at 25 fps) before
        // it comes out; one thread keeps the picture as early as the sound.
        "-threads", "1",
        "-i",
    ]);
    c.arg(sdp);
    if ctx.codec.is_video() {
        // Every track at full canvas size: layout changes never need a decoder restart, and
        // shrinking into a tile is an integer box average.
        let vf = format!(
            "showinfo,scale={w}:{h}:force_original_aspect_ratio=decrease,\
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
pub(super) async fn request_keyframes(
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

pub(super) async fn read_frames(
    ctx: &DecoderCtx,
    stdout: &mut ChildStdout,
    got_frame: &AtomicBool,
    pts: &mut mpsc::UnboundedReceiver<i64>,
) {
    let len = compose::frame_len(ctx.width, ctx.height);
    // The mixer holds the frame on show and those waiting for their time (a few, at most
    // eight), the compositor at most two more; beyond that a new one is made.
    let mut pool = FramePool::default();
    loop {
        let mut frame = pool.take(len, 12).unwrap_or_else(|| vec![0u8; len]);
        if stdout.read_exact(&mut frame).await.is_err() {
            return;
        }
        got_frame.store(true, Ordering::Relaxed);
        // Its pts line is written before the frame; a frame without one (or of a frame no
        // longer remembered) counts as arriving now.
        let arrived = match tokio::time::timeout(PTS_WAIT, pts.recv()).await {
            Ok(Some(p)) => lock_arrivals(&ctx.arrivals).arrival(p),
            _ => None,
        }
        .unwrap_or_else(Instant::now);
        let frame = pool.share(frame);
        lock(&ctx.mixer).set_frame(&ctx.track_sid, frame, arrived);
    }
}

pub(super) async fn read_samples(ctx: &DecoderCtx, stdout: &mut ChildStdout) {
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
pub(super) async fn wait_bound(port: u16, child: &mut Child) {
    let deadline = Instant::now() + DECODER_READY_TIMEOUT;
    while Instant::now() < deadline {
        if udp_port_in_use(port) || !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The pts of a `showinfo` line (`[Parsed_showinfo_0 @ …] n:   3 pts:  10800 pts_time:0.12 …`).
fn frame_pts(line: &str) -> Option<i64> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let rest = line.split_once(" pts:")?.1.trim_start();
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showinfo_lines_give_their_pts_and_others_none() {
        assert_eq!(
            frame_pts(
                "[Parsed_showinfo_0 @ 0x55d0] n:   3 pts:  10800 pts_time:0.12 duration:3600"
            ),
            Some(10800)
        );
        assert_eq!(
            frame_pts("[Parsed_showinfo_0 @ 0x55d0] color_range:unknown"),
            None
        );
        assert_eq!(frame_pts("Input #0, sdp, from 'x.sdp':"), None);
    }
}
