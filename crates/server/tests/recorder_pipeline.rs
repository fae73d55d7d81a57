//! The recorder pipeline against the real ffmpeg: RTP that ffmpeg itself produces goes in,
//! a playable MP4 with our picture and sound must come out; failing targets must fail fast
//! and leave no half-written file. These tests need ffmpeg and ffprobe and fail (they do not
//! skip) without them.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::process::Command;
use tokio::sync::mpsc;

use enclave_server::recorder::pipeline::{Finished, Pipeline, PipelineConfig, PipelineError};
use enclave_server::recorder::{SinkCodec, SinkInput, SinkPacket, SinkTrack, SinkTrackId, Target};

/// Every test here runs ffmpeg encoders and decoders in real time; run concurrently on a
/// small CI machine they starve each other, generators fall behind real time and the clock
/// lags. One at a time keeps the timing assertions meaningful.
static REAL_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "enclave_server::recorder=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// CI installs ffmpeg; a machine without it must not pass these tests by skipping them.
fn require(tool: &str) {
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

fn config(dir: &Path) -> PipelineConfig {
    PipelineConfig {
        work_dir: dir.join("work"),
        ..PipelineConfig::default()
    }
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Minimal RTP parsing: version 2, CSRCs, header extension, padding.
fn parse_rtp(b: &[u8]) -> Option<(u16, u32, bool, &[u8])> {
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

#[test]
fn rtp_parser_handles_csrc_extension_and_padding() {
    let mut p = vec![
        0x80 | 0x20 | 0x10 | 1,
        0x80 | 96,
        0,
        7,
        0,
        0,
        0,
        9,
        1,
        2,
        3,
        4,
    ];
    p.extend_from_slice(&[5, 6, 7, 8]); // one CSRC
    p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // one extension word
    p.extend_from_slice(&[0xAA, 0xBB]); // payload
    p.extend_from_slice(&[0, 0, 3]); // three bytes of padding
    assert_eq!(parse_rtp(&p), Some((7, 9, true, &[0xAA, 0xBB][..])));
    assert_eq!(parse_rtp(&[0x40; 12]), None, "version 1");
}

/// The id the test's sink announces track `sid` under (distinct for the sids used here).
fn track_id(sid: &str) -> SinkTrackId {
    SinkTrackId(
        sid.bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))),
    )
}

/// Receives RTP on `sock` and feeds it to the pipeline as the tracks `sids` (the same media
/// under several sids stands in for several publishers), each announced first, as the SFU
/// does.
async fn forward(
    sock: UdpSocket,
    sids: Vec<&'static str>,
    codec: SinkCodec,
    tx: mpsc::Sender<SinkInput>,
) {
    forward_noting(sock, sids, codec, tx, None).await
}

/// When each packet arrived and how large its payload was.
type Arrivals = std::sync::Arc<std::sync::Mutex<Vec<(Instant, usize)>>>;

/// [`forward`], noting every packet's arrival in `arrivals`.
async fn forward_noting(
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

async fn run_ffmpeg(args: &[&str]) -> std::process::Output {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

/// Panics with the program's stderr unless it exited successfully.
fn succeeded(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn ffprobe(path: &Path) -> Value {
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
async fn grey_frame(path: &Path, at: f64) -> Vec<u8> {
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
fn stddev(frame: &[u8], rows: std::ops::Range<usize>) -> f64 {
    let px: Vec<f64> = frame[rows.start * 64..rows.end * 64]
        .iter()
        .map(|&b| f64::from(b))
        .collect();
    let mean = px.iter().sum::<f64>() / px.len() as f64;
    (px.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / px.len() as f64).sqrt()
}

/// RMS of one second of the recording's audio from `at`.
async fn audio_rms(path: &Path, at: f64) -> f64 {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_vp8_and_opus_rtp_into_a_playable_mp4() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    require("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec").join("room.mp4");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();

    let (tx, rx) = mpsc::channel(4096);
    let (kf_tx, mut kf_rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut pipeline = Pipeline::start(
        config(dir.path()),
        Target::File { path: out.clone() },
        rx,
        kf_tx,
    )
    .unwrap();

    let vsock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let asock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let vurl = format!("rtp://127.0.0.1:{}", vsock.local_addr().unwrap().port());
    let aurl = format!("rtp://127.0.0.1:{}", asock.local_addr().unwrap().port());
    let vfwd = tokio::spawn(forward(
        vsock,
        vec!["TR_video", "TR_cam2"],
        SinkCodec::Vp8,
        tx.clone(),
    ));
    let afwd = tokio::spawn(forward(
        asock,
        vec!["TR_audio"],
        SinkCodec::Opus,
        tx.clone(),
    ));
    // The second camera leaves half-way: two tiles side by side, then one full canvas.
    let ender = tokio::spawn({
        let tx = tx.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            tx.send(SinkInput::TrackEnded(track_id("TR_cam2")))
                .await
                .unwrap();
        }
    });

    #[rustfmt::skip]
    let vargs = [
        "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "4",
        "-c:v", "libvpx", "-deadline", "realtime", "-g", "25", "-b:v", "1M",
        "-f", "rtp", &vurl,
    ];
    #[rustfmt::skip]
    let aargs = [
        "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
        "-c:a", "libopus", "-f", "rtp", &aurl,
    ];
    let (v, a) = tokio::join!(run_ffmpeg(&vargs), run_ffmpeg(&aargs));
    succeeded(&v, "video generator");
    succeeded(&a, "audio generator");
    // Let the last packets through the decoders before stopping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    vfwd.abort();
    afwd.abort();
    ender.await.unwrap();

    pipeline.request_stop();
    pipeline.request_stop(); // idempotent
    let finished: Finished = tokio::time::timeout(Duration::from_secs(60), pipeline.wait())
        .await
        .expect("the pipeline finalises within a minute")
        .expect("the recording succeeds");
    let wall = started.elapsed().as_secs_f64();
    // Later calls return the same result.
    assert_eq!(pipeline.wait().await.unwrap(), finished);

    assert_eq!(finished.path.as_deref(), Some(out.as_path()));
    assert!(out.is_file());
    assert_eq!(finished.bytes, std::fs::metadata(&out).unwrap().len());
    assert!(finished.bytes > 10_000, "{} bytes", finished.bytes);
    assert!(part_files(dir.path()).is_empty(), "no .part left behind");
    let written = finished.duration.as_secs_f64();
    // The generators alone run 4 s; a clock that fell far behind real time writes less.
    assert!(
        (3.5..wall + 0.5).contains(&written),
        "duration written {written:.2}s, pipeline ran {wall:.2}s"
    );

    let probe = ffprobe(&out).await;
    let kinds: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "video").count(),
        1,
        "{probe}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "audio").count(),
        1,
        "{probe}"
    );
    let probed: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (probed - written).abs() <= 1.0,
        "ffprobe says {probed:.3}s, pipeline wrote {written:.3}s"
    );

    // The picture and the sound are the generators', not placeholders and silence: testsrc
    // is full of colour bars, the sine is loud. At 1.5 s both cameras are tiles side by side
    // (rows 9..27 of 36), black above and below; after the second left at 2.5 s the one
    // remaining fills the canvas.
    let two = grey_frame(&out, 1.5).await;
    let two_tiles = stddev(&two, 10..26);
    let two_band = stddev(&two, 0..8);
    assert!(
        two_tiles > 30.0,
        "tiles at 1.5s: stddev {two_tiles:.1}, not the test pattern"
    );
    assert!(
        two_band < 3.0 && two[64] < 40,
        "above the tiles is black at 1.5s"
    );
    let one = grey_frame(&out, written - 0.4).await;
    let one_band = stddev(&one, 0..8);
    assert!(
        one_band > 30.0,
        "one full-canvas tile at the end: top band stddev {one_band:.1}"
    );
    let rms = audio_rms(&out, 1.5).await;
    assert!(rms > 1000.0, "audio RMS {rms:.0} at 1.5s: not the sine");

    let mut requests = Vec::new();
    while let Ok(sid) = kf_rx.try_recv() {
        requests.push(sid);
    }
    for cam in ["TR_video", "TR_cam2"] {
        assert!(
            requests.iter().any(|s| s == cam),
            "keyframe for {cam}: {requests:?}"
        );
    }
    assert!(
        !requests.iter().any(|s| s == "TR_audio"),
        "audio needs no keyframes"
    );
    eprintln!(
        "recorded: written {written:.3}s, ffprobe {probed:.3}s, {} bytes, luma stddev: two tiles \
         {two_tiles:.1} (band above {two_band:.1}), one tile band {one_band:.1}; audio RMS \
         {rms:.0}; {} keyframe requests; pipeline ran {wall:.2}s",
        finished.bytes,
        requests.len()
    );
}

#[tokio::test]
async fn closing_the_input_finishes_the_recording() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    require("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("empty-room.mp4");
    let (tx, rx) = mpsc::channel(16);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let mut pipeline = Pipeline::start(
        config(dir.path()),
        Target::File { path: out.clone() },
        rx,
        kf_tx,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(tx); // the room ended

    let finished = tokio::time::timeout(Duration::from_secs(60), pipeline.wait())
        .await
        .expect("finalises")
        .expect("succeeds");
    let written = finished.duration.as_secs_f64();
    assert!((1.0..5.0).contains(&written), "{written}s");
    let probe = ffprobe(&out).await;
    let probed: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((probed - written).abs() <= 1.0, "{probed} vs {written}");
    assert!(part_files(dir.path()).is_empty());
}

#[tokio::test]
async fn refused_rtmp_target_fails_fast_and_names_it() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/SECRETKEY");
    let (_tx, rx) = mpsc::channel(16); // kept open: only the target may end this
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut pipeline =
        Pipeline::start(config(dir.path()), Target::Rtmp { url }, rx, kf_tx).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), pipeline.wait())
        .await
        .expect("a refused target ends the pipeline by itself")
        .expect_err("a refused target is an error");
    let took = started.elapsed();
    let msg = err.to_string();
    eprintln!("after {took:?}: {msg}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(matches!(err, PipelineError::TargetLost { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("rtmp://127.0.0.1:{port}/live/")),
        "{msg}"
    );
    assert!(msg.contains("Connection refused"), "{msg}");
    assert!(!msg.contains("SECRETKEY"), "stream key leaked: {msg}");
}

#[tokio::test]
async fn unwritable_file_target_fails_and_leaves_no_part() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing-dir").join("room.mp4");
    let (_tx, rx) = mpsc::channel(16);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let mut pipeline = Pipeline::start(
        config(dir.path()),
        Target::File { path: out.clone() },
        rx,
        kf_tx,
    )
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), pipeline.wait())
        .await
        .expect("ends by itself")
        .expect_err("cannot write there");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        matches!(err, PipelineError::EncoderExited { .. }),
        "{err:?}"
    );
    assert!(
        msg.contains("room.mp4.part: No such file or directory"),
        "{msg}"
    );
    assert!(!out.exists());
    assert!(part_files(dir.path()).is_empty());
}

#[tokio::test]
async fn disk_full_fails_and_removes_the_part() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("room.mp4");
    // ffmpeg opens `<path>.part` through the link, and every write to /dev/full fails ENOSPC.
    let part = dir.path().join("room.mp4.part");
    std::os::unix::fs::symlink("/dev/full", &part).unwrap();
    let (_tx, rx) = mpsc::channel(16);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let mut pipeline = Pipeline::start(
        config(dir.path()),
        Target::File { path: out.clone() },
        rx,
        kf_tx,
    )
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), pipeline.wait())
        .await
        .expect("ends by itself")
        .expect_err("the disk is full");
    eprintln!("{err}");
    assert!(matches!(err, PipelineError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("disk full"));
    assert!(
        std::fs::symlink_metadata(&part).is_err(),
        "the .part is removed on failure"
    );
    assert!(!out.exists());
}

#[tokio::test]
async fn missing_ffmpeg_is_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = mpsc::channel(16);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let cfg = PipelineConfig {
        ffmpeg: "/nonexistent/ffmpeg".into(),
        ..config(dir.path())
    };
    let err = Pipeline::start(
        cfg,
        Target::File {
            path: dir.path().join("x.mp4"),
        },
        rx,
        kf_tx,
    )
    .expect_err("no ffmpeg there");
    assert!(
        matches!(err, PipelineError::FfmpegNotFound { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/ffmpeg"));
}

/// Pids of live processes whose command line mentions `needle` (our decoders name their SDP
/// files under the work dir, the encoder its output path).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // Zombies have an empty cmdline; only running processes count.
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Streams testsrc for `seconds` through `encoder` as RTP into the pipeline as track `sid`.
async fn stream_video(
    sid: &'static str,
    codec: SinkCodec,
    encoder: &'static [&'static str],
    seconds: u32,
    tx: mpsc::Sender<SinkInput>,
) {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = format!("rtp://127.0.0.1:{}", sock.local_addr().unwrap().port());
    let fwd = tokio::spawn(forward(sock, vec![sid], codec, tx));
    let secs = seconds.to_string();
    let mut args = vec![
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        &secs,
    ];
    args.extend_from_slice(encoder);
    args.extend_from_slice(&["-g", "25", "-f", "rtp", &url]);
    let out = run_ffmpeg(&args).await;
    succeeded(&out, &format!("{} generator", codec.name()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    fwd.abort();
}

fn small(dir: &Path) -> PipelineConfig {
    PipelineConfig {
        width: 320,
        height: 240,
        ..config(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp9_and_h264_tracks_are_decoded() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    require("ffprobe");
    #[rustfmt::skip]
    let cases: [(SinkCodec, &[&str]); 2] = [
        (SinkCodec::Vp9, &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-strict", "experimental"]),
        (SinkCodec::H264, &["-c:v", "libx264", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-bf", "0"]),
    ];
    for (codec, encoder) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("room.mp4");
        let (tx, rx) = mpsc::channel(4096);
        let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
        let mut pipeline = Pipeline::start(
            small(dir.path()),
            Target::File { path: out.clone() },
            rx,
            kf_tx,
        )
        .unwrap();
        stream_video("TR_v", codec, encoder, 3, tx).await;
        pipeline.request_stop();
        let finished = pipeline.wait().await.expect("recording succeeds");
        let written = finished.duration.as_secs_f64();
        let frame = grey_frame(&out, written - 0.5).await;
        let sd = stddev(&frame, 0..36);
        let codec = codec.name();
        eprintln!("{codec}: written {written:.2}s, final frame stddev {sd:.1}");
        assert!(
            sd > 30.0,
            "{codec}: final frame stddev {sd:.1}: not the test pattern"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_decoder_is_restarted_and_nothing_outlives_the_pipeline() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work").to_string_lossy().into_owned();
    let out = dir.path().join("room.mp4");
    let (tx, rx) = mpsc::channel(4096);
    let (kf_tx, mut kf_rx) = mpsc::unbounded_channel();
    let mut pipeline = Pipeline::start(
        small(dir.path()),
        Target::File { path: out.clone() },
        rx,
        kf_tx,
    )
    .unwrap();
    let stream = tokio::spawn(stream_video(
        "TR_v",
        SinkCodec::Vp8,
        &["-c:v", "libvpx", "-deadline", "realtime"],
        5,
        tx.clone(),
    ));

    // The decoder's first attempt reads `<stem>-1-0.sdp`; kill it once it has shown frames.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = processes_mentioning("-1-0.sdp")
        .into_iter()
        .filter(|&pid| processes_mentioning(&work).contains(&pid))
        .collect::<Vec<_>>();
    assert_eq!(first.len(), 1, "one decoder running: {first:?}");
    let killed = std::process::Command::new("kill")
        .args(["-9", &first[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually("the decoder is respawned", || {
        processes_mentioning("-1-1.sdp")
            .iter()
            .any(|p| processes_mentioning(&work).contains(p))
    })
    .await;

    stream.await.unwrap();
    pipeline.request_stop();
    let finished = pipeline
        .wait()
        .await
        .expect("a decoder restart does not fail the recording");
    let written = finished.duration.as_secs_f64();
    let frame = grey_frame(&out, written - 0.5).await;
    let sd = stddev(&frame, 0..36);
    assert!(
        sd > 30.0,
        "after the restart the tile shows video again: stddev {sd:.1}"
    );
    let mut requests = 0;
    while kf_rx.try_recv().is_ok() {
        requests += 1;
    }
    assert!(
        requests >= 2,
        "a restarted decoder asks for a keyframe again: {requests}"
    );
    eventually("no recorder process is left", || {
        processes_mentioning(&work).is_empty()
            && processes_mentioning(&out.to_string_lossy()).is_empty()
    })
    .await;

    // Dropping a running pipeline (no stop, no wait) kills its processes too.
    let (tx, rx) = mpsc::channel(4096);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let dropped_out = dir.path().join("dropped.mp4");
    let pipeline = Pipeline::start(
        small(dir.path()),
        Target::File {
            path: dropped_out.clone(),
        },
        rx,
        kf_tx,
    )
    .unwrap();
    let stream = tokio::spawn(stream_video(
        "TR_w",
        SinkCodec::Vp8,
        &["-c:v", "libvpx", "-deadline", "realtime"],
        2,
        tx,
    ));
    eventually("a decoder runs", || !processes_mentioning(&work).is_empty()).await;
    drop(pipeline);
    eventually("the dropped pipeline's processes are gone", || {
        processes_mentioning(&work).is_empty()
            && processes_mentioning(&dropped_out.to_string_lossy()).is_empty()
    })
    .await;
    assert!(
        part_files(dir.path()).is_empty(),
        "a dropped pipeline leaves no .part"
    );
    stream.await.unwrap();
}

/// An RTMP server: ffmpeg in listen mode, saving what it receives.
fn rtmp_server(port: u16, save: &Path) -> tokio::process::Child {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-listen",
            "1",
        ])
        .args(["-i", &format!("rtmp://127.0.0.1:{port}/live/KEY")])
        .args(["-c", "copy", "-f", "flv", "-y"])
        .arg(save)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn rtmp_target_receives_the_stream_and_a_dropped_connection_fails() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    require("ffprobe");
    let dir = tempfile::tempdir().unwrap();

    // A server that stays: the broadcast ends cleanly on stop.
    let port = free_port();
    let saved = dir.path().join("received.flv");
    let mut server = rtmp_server(port, &saved);
    let url = format!("rtmp://127.0.0.1:{port}/live/KEY");
    // The server must listen before the encoder connects.
    eventually_tcp(port).await;
    let (_tx, rx) = mpsc::channel(16);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let mut pipeline = Pipeline::start(
        small(dir.path()),
        Target::Rtmp { url: url.clone() },
        rx,
        kf_tx,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pipeline.request_stop();
    let finished = pipeline.wait().await.expect("the broadcast ends cleanly");
    assert_eq!(finished.path, None);
    assert!(finished.bytes > 0, "bytes sent are reported");
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the server saw a clean end of stream");
    let probe = ffprobe(&saved).await;
    let probed: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let written = finished.duration.as_secs_f64();
    eprintln!(
        "rtmp: written {written:.2}s, received {probed:.2}s, {} bytes",
        finished.bytes
    );
    assert!((probed - written).abs() <= 1.0, "{probed} vs {written}");

    // A server that goes away mid-broadcast: the pipeline ends by itself with an error.
    let port = free_port();
    let mut server = rtmp_server(port, &dir.path().join("cut.flv"));
    eventually_tcp(port).await;
    let (_tx, rx) = mpsc::channel(16);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let mut pipeline = Pipeline::start(
        small(dir.path()),
        Target::Rtmp {
            url: format!("rtmp://127.0.0.1:{port}/live/KEY"),
        },
        rx,
        kf_tx,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.kill().await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), pipeline.wait())
        .await
        .expect("a dropped connection ends the pipeline by itself")
        .expect_err("a dropped connection is an error");
    eprintln!("dropped: {err}");
    assert!(matches!(err, PipelineError::TargetLost { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
}

async fn eventually_tcp(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    // Probing with a connection would be taken as the one client by `ffmpeg -listen 1`, so
    // look at the socket table instead.
    let needle = format!(":{port:04X} 00000000:0000 0A");
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        if table.lines().any(|l| l.contains(&needle)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "RTMP server never listened on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Flash and beep together: a test pattern and a 880 Hz tone for 200 ms from 1 s into every
/// 2 s period, black and silence otherwise; one ffmpeg makes both, so they start together.
const FLASH_PERIOD: f64 = 2.0;
const FLASH_AT: f64 = 1.0;

/// Streams the flash-and-beep pattern for `seconds` as VP8 + Opus RTP into the pipeline, and
/// returns when each flash and each beep arrived (the pipeline's input), as seconds since the
/// first packet.
async fn stream_flashes(seconds: u32, tx: mpsc::Sender<SinkInput>) -> (Vec<f64>, Vec<f64>) {
    let video_in = Arrivals::default();
    let audio_in = Arrivals::default();
    let vsock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let asock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let vurl = format!("rtp://127.0.0.1:{}", vsock.local_addr().unwrap().port());
    let aurl = format!("rtp://127.0.0.1:{}", asock.local_addr().unwrap().port());
    let vfwd = tokio::spawn(forward_noting(
        vsock,
        vec!["TR_flash"],
        SinkCodec::Vp8,
        tx.clone(),
        Some(video_in.clone()),
    ));
    let afwd = tokio::spawn(forward_noting(
        asock,
        vec!["TR_beep"],
        SinkCodec::Opus,
        tx,
        Some(audio_in.clone()),
    ));
    let on = format!(
        "between(mod(t,{FLASH_PERIOD}),{FLASH_AT},{})",
        FLASH_AT + 0.2
    );
    let graph = format!(
        "testsrc=s=320x240:r=25,drawbox=color=black:t=fill:enable='not({on})'[out0];\
         aevalsrc=exprs='if({on},0.6*sin(2*PI*880*t),0)':s=48000:c=mono[out1]"
    );
    let secs = seconds.to_string();
    #[rustfmt::skip]
    let out = run_ffmpeg(&[
        // An input option: it bounds both outputs.
        "-re", "-t", &secs, "-f", "lavfi", "-i", &graph,
        // One keyframe at the start: a periodic one would look like a flash to the arrival
        // times below.
        "-map", "0:v", "-c:v", "libvpx", "-deadline", "realtime", "-g", "1000", "-b:v", "500k",
        "-f", "rtp", &vurl,
        "-map", "0:a", "-c:a", "libopus", "-f", "rtp", &aurl,
    ])
    .await;
    succeeded(&out, "flash generator");
    tokio::time::sleep(Duration::from_millis(300)).await;
    vfwd.abort();
    afwd.abort();
    // A black frame is a few dozen bytes of VP8 and a silent Opus packet a few bytes; the
    // first frame of the pattern and the tone are several times larger.
    let video_in = video_in.lock().unwrap().clone();
    let audio_in = audio_in.lock().unwrap().clone();
    let first = video_in
        .iter()
        .chain(&audio_in)
        .map(|(t, _)| *t)
        .min()
        .expect("packets arrived");
    let big = |arrivals: &[(Instant, usize)]| -> Vec<f64> {
        let levels: Vec<(f64, bool)> = arrivals
            .iter()
            .map(|(t, n)| ((*t - first).as_secs_f64(), *n >= 100))
            .collect();
        levels
            .windows(2)
            .filter(|w| !w[0].1 && w[1].1)
            .map(|w| w[1].0)
            .collect()
    };
    (big(&video_in), big(&audio_in))
}

/// Seconds at which each flash starts in the recording's picture (mean luma of a frame rising
/// from black to the pattern's), counting frames at the output rate of 25 fps. The flash began
/// somewhere within that frame's 40 ms; its middle is the estimate, ±20 ms.
async fn flash_onsets(path: &Path) -> Vec<f64> {
    let path = path.to_str().unwrap();
    #[rustfmt::skip]
    let out = run_ffmpeg(&[
        "-i", path, "-map", "0:v", "-vf", "scale=16:9", "-pix_fmt", "gray", "-f", "rawvideo",
        "pipe:1",
    ])
    .await;
    let means: Vec<f64> = out
        .stdout
        .chunks_exact(16 * 9)
        .map(|f| f.iter().map(|&b| f64::from(b)).sum::<f64>() / f.len() as f64)
        .collect();
    onsets(&means, 50.0, 25.0)
        .into_iter()
        .map(|t| t + 0.5 / 25.0)
        .collect()
}

/// Seconds at which each beep starts in the recording's sound (RMS of 5 ms windows crossing
/// a quarter of the tone's level).
async fn beep_onsets(path: &Path) -> Vec<f64> {
    let path = path.to_str().unwrap();
    #[rustfmt::skip]
    let out = run_ffmpeg(&[
        "-i", path, "-map", "0:a", "-ac", "1", "-ar", "48000", "-f", "s16le", "pipe:1",
    ])
    .await;
    let samples: Vec<f64> = out
        .stdout
        .chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
        .collect();
    let rms: Vec<f64> = samples
        .chunks(240)
        .map(|w| (w.iter().map(|s| s * s).sum::<f64>() / w.len() as f64).sqrt())
        .collect();
    onsets(&rms, 0.6 * 32767.0 * 0.707 / 4.0, 200.0)
}

/// Times (index / rate) where `levels` rises through `threshold`, at most one per flash.
fn onsets(levels: &[f64], threshold: f64, rate: f64) -> Vec<f64> {
    let mut found: Vec<f64> = Vec::new();
    for i in 1..levels.len() {
        if levels[i - 1] < threshold && levels[i] >= threshold {
            let t = i as f64 / rate;
            if found
                .last()
                .is_none_or(|last| t - last > FLASH_PERIOD / 2.0)
            {
                found.push(t);
            }
        }
    }
    found
}

/// Records the flash-and-beep pattern with the compositor made `compose_delay` slow per
/// frame, and checks what holds whatever the CPU: the file lasts as long as the recording ran
/// (within 0.5 s), and the pipeline moves picture and sound less than 100 ms apart (the skew
/// between each flash and its beep in the file, minus the skew they arrived with).
async fn record_flashes(compose_delay: Duration) -> (Finished, f64, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flashes.mp4");
    let (tx, rx) = mpsc::channel(4096);
    let (kf_tx, _kf_rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut pipeline = Pipeline::start(
        PipelineConfig {
            compose_delay,
            ..small(dir.path())
        },
        Target::File { path: out.clone() },
        rx,
        kf_tx,
    )
    .unwrap();
    let (flashes_in, beeps_in) = stream_flashes(8, tx).await;
    pipeline.request_stop();
    let wall = started.elapsed().as_secs_f64();
    let finished = tokio::time::timeout(Duration::from_secs(60), pipeline.wait())
        .await
        .expect("finalises within a minute")
        .expect("the recording succeeds");

    let written = finished.duration.as_secs_f64();
    let probe = ffprobe(&out).await;
    let probed: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (written - wall).abs() <= 0.5 && (probed - wall).abs() <= 0.5,
        "the recording ran {wall:.3}s; written {written:.3}s, ffprobe {probed:.3}s \
         (compositor delay {compose_delay:?}, {finished:?})"
    );
    assert_eq!(finished.ticks_dropped, 0, "{finished:?}");

    // The generator ran 8 s: flashes at 1, 3, 5 and 7 s of its time, each seen and heard.
    let input = pairs(&flashes_in, &beeps_in);
    let output = pairs(&flash_onsets(&out).await, &beep_onsets(&out).await);
    assert!(
        input.len() >= 3 && input.len() == output.len(),
        "every flash and beep that arrived ({input:?}) is in the file ({output:?}), \
         compositor delay {compose_delay:?}"
    );
    let added: Vec<f64> = input
        .iter()
        .zip(&output)
        .map(|((vi, ai), (vo, ao))| (ao - vo) - (ai - vi))
        .collect();
    for (i, d) in added.iter().enumerate() {
        // 100 ms, plus the ±20 ms to which a flash's start in a 25 fps picture can be known.
        assert!(
            d.abs() <= 0.12,
            "flash {i}: the pipeline moved picture and sound {:.0} ms apart (arrived \
             {input:?}, recorded {output:?}, compositor delay {compose_delay:?})",
            d * 1000.0
        );
    }
    (finished, wall, added)
}

/// Each beep with the flash that goes with it (the nearest, within 300 ms).
fn pairs(flashes: &[f64], beeps: &[f64]) -> Vec<(f64, f64)> {
    beeps
        .iter()
        .filter_map(|&a| {
            flashes
                .iter()
                .filter(|&&v| (a - v).abs() < 0.3)
                .min_by(|x, y| (a - **x).abs().total_cmp(&(a - **y).abs()))
                .map(|&v| (v, a))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picture_and_sound_stay_together_for_the_whole_recording() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    require("ffprobe");
    let (finished, wall, added) = record_flashes(Duration::ZERO).await;
    eprintln!("normal compositor: ran {wall:.3}s, {finished:?}, skew added per flash {added:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compositor_slower_than_the_frame_rate_repeats_frames_but_keeps_duration_and_sync() {
    let _serial = REAL_TIME.lock().await;
    init_tracing();
    require("ffmpeg");
    require("ffprobe");
    // 80 ms per frame: two ticks of 25 fps, as a debug build on a busy machine composes
    // four 720p tiles. The nearest frame to a tick is then up to 40 ms away from it.
    let (finished, wall, added) = record_flashes(Duration::from_millis(80)).await;
    let ticks = (finished.duration.as_secs_f64() * 25.0).round() as u64;
    assert!(
        finished.frames_repeated * 3 >= ticks,
        "at half the frame rate about every other frame repeats: {} of {ticks}",
        finished.frames_repeated
    );
    eprintln!("slow compositor: ran {wall:.3}s, {finished:?}, skew added per flash {added:?}");
}
