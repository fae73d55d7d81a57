//! The recorder pipeline against the real ffmpeg: RTP that ffmpeg itself produces goes in,
//! a playable MP4 with our picture and sound must come out; failing targets must fail fast
//! and leave no half-written file. These tests need ffmpeg and ffprobe and fail (they do not
//! skip) without them.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::process::Command;
use tokio::sync::mpsc;

use enclave_server::recorder::pipeline::{Finished, Pipeline, PipelineConfig, PipelineError};
use enclave_server::recorder::{SinkCodec, SinkInput, Target};

mod recorder_common;
use recorder_common::*;

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
    let started = Instant::now();
    let err = fails_by_itself(
        config(dir.path()),
        Target::Rtmp { url },
        "a refused target is an error",
    )
    .await;
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
    let err = fails_by_itself(
        config(dir.path()),
        Target::File { path: out.clone() },
        "cannot write there",
    )
    .await;
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
    let err = fails_by_itself(
        config(dir.path()),
        Target::File { path: out.clone() },
        "the disk is full",
    )
    .await;
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
