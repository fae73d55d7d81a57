//! The checks of every output: ffprobe on the file or the live stream (one H.264 1280x720
//! video and one AAC audio stream, the length), `moov` before `mdat`, a picture in every tile
//! and an audible mix.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;
use tokio::process::Command;

use super::{ffmpeg, Arm, HEIGHT, WIDTH};

#[derive(Debug, Clone, Default)]
pub(super) struct Probe {
    pub(super) ok: bool,
    pub(super) problems: Vec<String>,
    pub(super) duration_s: Option<f64>,
    pub(super) video_frames: Option<u64>,
    pub(super) tile_stddev: Vec<f64>,
    pub(super) audio_rms: Option<f64>,
    /// The MP4's `moov` box comes before `mdat` (`+faststart` applied).
    pub(super) moov_first: Option<bool>,
    pub(super) took_s: f64,
}

pub(super) fn duration_tolerance(secs: u64) -> f64 {
    (secs as f64 * 0.03).max(3.0)
}

pub(super) async fn ffprobe_json(
    args: &[&str],
    target: &str,
    limit: Duration,
) -> anyhow::Result<Value> {
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

pub(super) async fn probe_live(url: &str) -> Probe {
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

pub(super) async fn probe_file(path: &Path, secs: u64, arm: Arm) -> Probe {
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
