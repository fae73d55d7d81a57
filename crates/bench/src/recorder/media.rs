//! What the phases play and send to: the four participants' clips, generated once a run, and
//! a local nginx-rtmp for the RTMP arm.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use super::check::ffprobe_json;
use super::{ffmpeg, signal, CLIP_SECS, FPS, HEIGHT, RTMP_MODULE, TONES, WIDTH};
use enclave_bench::ports;

/// The four participants' clips: moving content with sensor-like noise so the VP8 encoder
/// actually spends its bitrate, a hue of their own, and a tone of their own.
pub(super) async fn generate_clips(dir: &Path) -> anyhow::Result<Vec<String>> {
    let size = format!("{WIDTH}x{HEIGHT}");
    // Temporal noise stands in for a camera sensor; the amounts bring each clip near
    // 1.5 Mbit/s with libvpx's rate control (life's cells are 8x8 pixels for the same reason).
    let sources = [
        format!("testsrc2=size={size}:rate={FPS},noise=alls=10:allf=t"),
        format!("smptebars=size={size}:rate={FPS},hue=H=2*PI*t/8,noise=alls=10:allf=t"),
        format!(
            "mandelbrot=size=640x360:rate={FPS},scale={WIDTH}:{HEIGHT},hue=h=120,\
             noise=alls=4:allf=t"
        ),
        format!(
            "life=size=160x90:rate={FPS}:mold=10:ratio=0.3:life_color=#ffcc00:\
             death_color=#203060,scale={WIDTH}:{HEIGHT}:flags=neighbor,hue=h=240,\
             noise=alls=6:allf=t"
        ),
    ];
    let mut info = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let t0 = Instant::now();
        let out = dir.join(format!("clip{i}.webm"));
        let video = format!("{src},format=yuv420p");
        let audio = format!("sine=frequency={}:sample_rate=48000", TONES[i]);
        let secs = CLIP_SECS.to_string();
        let gop = (FPS * 2).to_string();
        #[rustfmt::skip]
        let o = ffmpeg()
            .args(["-y", "-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio, "-t", &secs,
                "-map", "0:v", "-map", "1:a",
                "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
                "-b:v", "1500k", "-minrate", "1500k", "-maxrate", "1500k",
                "-g", &gop, "-keyint_min", &gop, "-auto-alt-ref", "0", "-lag-in-frames", "0",
                "-c:a", "libopus", "-b:a", "32k", "-ac", "1", "-ar", "48000"])
            .arg(&out)
            .output()
            .await
            .context("running ffmpeg to generate a clip")?;
        if !o.status.success() {
            bail!(
                "generating clip {i}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        let probe = ffprobe_json(
            &["-show_entries", "format=duration,bit_rate"],
            &out.to_string_lossy(),
            Duration::from_secs(30),
        )
        .await?;
        let kbps = probe["format"]["bit_rate"]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1000.0;
        let line = format!(
            "clip {i}: `{src}`, {} Hz tone; {kbps:.0} kbit/s overall (generated in {:.1} s)",
            TONES[i],
            t0.elapsed().as_secs_f64()
        );
        eprintln!("{line}");
        info.push(line);
    }
    Ok(info)
}

pub(super) struct Nginx {
    child: Child,
    pub(super) pid: u32,
    pub(super) port: u16,
}

pub(super) async fn start_nginx(dir: &Path) -> anyhow::Result<Nginx> {
    if !Path::new(RTMP_MODULE).exists() {
        bail!("nginx's RTMP module is missing at {RTMP_MODULE} (Debian: libnginx-mod-rtmp)");
    }
    let ndir = dir.join("nginx");
    std::fs::create_dir_all(&ndir)?;
    let port = ports::free_tcp_port()?;
    let conf = ndir.join("nginx.conf");
    let error_log = ndir.join("error.log");
    std::fs::write(
        &conf,
        format!(
            "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\npid {pid};\n\
             error_log {err} warn;\nevents {{ worker_connections 64; }}\n\
             rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    application live {{\n      \
             live on;\n    }}\n  }}\n}}\n",
            pid = ndir.join("nginx.pid").display(),
            err = error_log.display(),
        ),
    )?;
    let mut child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(format!("{}/", ndir.display()))
        .arg("-e")
        .arg(&error_log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting nginx (Debian: nginx-light)")?;
    let pid = child.id().context("nginx pid")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_ok()
        {
            return Ok(Nginx { child, pid, port });
        }
        if !matches!(child.try_wait(), Ok(None)) || Instant::now() > deadline {
            let _ = child.start_kill();
            bail!(
                "nginx did not listen on 127.0.0.1:{port}: {}",
                std::fs::read_to_string(&error_log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) async fn stop_nginx(mut n: Nginx) {
    signal(n.pid, "TERM");
    if tokio::time::timeout(Duration::from_secs(5), n.child.wait())
        .await
        .is_err()
    {
        let _ = n.child.kill().await;
    }
}
