//! Picture and sound stay together in the recorder's file, against the real ffmpeg: a flash and a
//! beep made together must come out together, also when the compositor is slower than the
//! frame rate (frames repeat, the duration and the sync hold). These tests need ffmpeg and fail
//! (they do not skip) without it.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use enclave_server::recorder::pipeline::{Finished, Pipeline, PipelineConfig};
use enclave_server::recorder::{SinkCodec, SinkInput, Target};

mod recorder_common;
use recorder_common::*;

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
