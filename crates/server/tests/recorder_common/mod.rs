//! What the recorder pipeline tests share: real ffmpeg, RTP forwarded into a pipeline as the
//! SFU's sink would, and readings of the file that comes out.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::process::Command;
use tokio::sync::mpsc;

use enclave_server::recorder::pipeline::{Pipeline, PipelineConfig, PipelineError};
use enclave_server::recorder::{SinkCodec, SinkInput, SinkPacket, SinkTrack, SinkTrackId, Target};

/// Every test here runs ffmpeg encoders and decoders in real time; run concurrently on a
/// small CI machine they starve each other, generators fall behind real time and the clock
/// lags. One at a time keeps the timing assertions meaningful.
pub static REAL_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "enclave_server::recorder=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// CI installs ffmpeg; a machine without it must not pass these tests by skipping them.
pub fn require(tool: &str) {
    let ok = std::process::Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is required by the recorder tests but could not be run: install ffmpeg \
         (Debian: apt-get install ffmpeg), which provides ffmpeg and ffprobe"
    );
}

pub fn config(dir: &Path) -> PipelineConfig {
    PipelineConfig {
        work_dir: dir.join("work"),
        ..PipelineConfig::default()
    }
}

pub fn part_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".part") {
                found.push(p);
            }
        }
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Minimal RTP parsing: version 2, CSRCs, header extension, padding.
pub fn parse_rtp(b: &[u8]) -> Option<(u16, u32, bool, &[u8])> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let pt = b[1] & 0x7f;
    if (72..=76).contains(&pt) {
        return None; // RTCP
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

/// The id the test's sink announces track `sid` under (distinct for the sids used here).
pub fn track_id(sid: &str) -> SinkTrackId {
    SinkTrackId(
        sid.bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))),
    )
}

/// Receives RTP on `sock` and feeds it to the pipeline as the tracks `sids` (the same media
/// under several sids stands in for several publishers), each announced first, as the SFU
/// does.
pub async fn forward(
    sock: UdpSocket,
    sids: Vec<&'static str>,
    codec: SinkCodec,
    tx: mpsc::Sender<SinkInput>,
) {
    forward_noting(sock, sids, codec, tx, None).await
}

/// When each packet arrived and how large its payload was.
pub type Arrivals = std::sync::Arc<std::sync::Mutex<Vec<(Instant, usize)>>>;

/// [`forward`], noting every packet's arrival in `arrivals`.
pub async fn forward_noting(
    sock: UdpSocket,
    sids: Vec<&'static str>,
    codec: SinkCodec,
    tx: mpsc::Sender<SinkInput>,
    arrivals: Option<Arrivals>,
) {
    let video = codec != SinkCodec::Opus;
    for sid in &sids {
        let track = SinkTrack {
            id: track_id(sid),
            track_sid: (*sid).into(),
            participant_identity: "generator".into(),
            video,
            codec,
            clock_rate: if video { 90_000 } else { 48_000 },
        };
        let _ = tx.send(SinkInput::Track(track)).await;
    }
    let mut buf = vec![0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf).await {
        let Some((seq, timestamp, marker, payload)) = parse_rtp(&buf[..n]) else {
            continue;
        };
        if let Some(a) = &arrivals {
            a.lock().unwrap().push((Instant::now(), payload.len()));
        }
        for sid in &sids {
            let _ = tx.try_send(SinkInput::Packet(SinkPacket {
                track: track_id(sid),
                seq,
                timestamp,
                marker,
                payload: payload.to_vec(),
            }));
        }
    }
}

pub async fn run_ffmpeg(args: &[&str]) -> std::process::Output {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

/// Panics with the program's stderr unless it exited successfully.
pub fn succeeded(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub async fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type:format=duration",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .await
        .unwrap();
    succeeded(&out, "ffprobe failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Decodes the frame at `at` seconds as 64×36 grey.
pub async fn grey_frame(path: &Path, at: f64) -> Vec<u8> {
    let path = path.to_str().unwrap();
    let at = format!("{at:.2}");
    #[rustfmt::skip]
    let out = run_ffmpeg(&[
        "-ss", &at, "-i", path, "-frames:v", "1", "-vf", "scale=64:36", "-pix_fmt", "gray",
        "-f", "rawvideo", "pipe:1",
    ])
    .await;
    assert_eq!(out.stdout.len(), 64 * 36, "one 64x36 frame at {at}s");
    out.stdout
}

/// Standard deviation of rows `rows` of a 64-wide grey frame: ~0 for black or a
/// placeholder, large for testsrc's colour bars.
pub fn stddev(frame: &[u8], rows: std::ops::Range<usize>) -> f64 {
    let px: Vec<f64> = frame[rows.start * 64..rows.end * 64]
        .iter()
        .map(|&b| f64::from(b))
        .collect();
    let mean = px.iter().sum::<f64>() / px.len() as f64;
    (px.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / px.len() as f64).sqrt()
}

/// RMS of one second of the recording's audio from `at`.
pub async fn audio_rms(path: &Path, at: f64) -> f64 {
    let path = path.to_str().unwrap();
    let at = format!("{at:.2}");
    #[rustfmt::skip]
    let out = run_ffmpeg(&[
        "-ss", &at, "-t", "1", "-i", path, "-vn", "-ac", "1", "-ar", "48000", "-f", "s16le",
        "pipe:1",
    ])
    .await;
    let samples: Vec<f64> = out
        .stdout
        .chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
        .collect();
    assert!(samples.len() > 40_000, "about a second of audio at {at}s");
    (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt()
}

pub fn small(dir: &Path) -> PipelineConfig {
    PipelineConfig {
        width: 320,
        height: 240,
        ..config(dir)
    }
}

/// Starts a pipeline whose input stays open and silent (only the target may end it) and waits,
/// at most 20 s, for it to fail by itself.
pub async fn fails_by_itself(cfg: PipelineConfig, target: Target, why: &str) -> PipelineError {
    let (_tx, rx) = mpsc::channel(16);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let mut pipeline = Pipeline::start(cfg, target, rx, kf_tx).unwrap();
    tokio::time::timeout(Duration::from_secs(20), pipeline.wait())
        .await
        .expect("the pipeline ends by itself")
        .expect_err(why)
}
