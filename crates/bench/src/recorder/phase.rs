//! One phase: a worker started, sampled every second until it reports its result, the window
//! after the warm-up reduced to medians and peaks, the output checked.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::check::{duration_tolerance, probe_file, probe_live, Probe};
use super::sample::{build_processes, interval, snapshot, Interval, Kind};
use super::{mib, now_utc, signal, Arm, WORKER_GRACE};
use crate::stats::{max_of, median};

#[derive(Debug, Clone)]
pub(super) struct PhaseResult {
    pub(super) arm: Arm,
    pub(super) round: usize,
    pub(super) secs: u64,
    /// Median cores per kind over the measured window.
    pub(super) cores: BTreeMap<Kind, f64>,
    /// Median RSS per kind (MiB) over the window, and the peak of 1 s samples over the phase.
    pub(super) rss_med: BTreeMap<Kind, f64>,
    pub(super) pss_med: BTreeMap<Kind, f64>,
    pub(super) rss_peak: BTreeMap<Kind, f64>,
    /// Sum of VmHWM (MiB) per kind: each process's own peak.
    pub(super) hwm: BTreeMap<Kind, f64>,
    /// Median of the per-sample sums over the counted kinds (the worker not yet corrected
    /// for the baseline).
    pub(super) total_cores: f64,
    pub(super) total_rss: f64,
    pub(super) total_rss_peak: f64,
    pub(super) total_pss: f64,
    pub(super) total_pss_peak: f64,
    /// Samples of the window during which a compiler ran on the machine.
    pub(super) build_samples: usize,
    /// RSS in the first and the last minute of the window (leak check for long runs).
    pub(super) rss_first_min: f64,
    pub(super) rss_last_min: f64,
    pub(super) machine_cores: f64,
    pub(super) others_cores: f64,
    pub(super) samples: usize,
    pub(super) result: Value,
    pub(super) probe: Probe,
    pub(super) error: Option<String>,
    pub(super) started_at: String,
}

impl PhaseResult {
    pub(super) fn valid(&self) -> bool {
        self.error.is_none() && self.probe.ok
    }
    pub(super) fn stop_s(&self) -> Option<f64> {
        self.result["stop_s"].as_f64()
    }
    pub(super) fn bytes(&self) -> Option<u64> {
        self.result["bytes"].as_u64()
    }
    pub(super) fn core(&self, k: Kind) -> f64 {
        self.cores.get(&k).copied().unwrap_or(0.0)
    }
    pub(super) fn rss(&self, k: Kind) -> f64 {
        self.rss_med.get(&k).copied().unwrap_or(0.0)
    }
    pub(super) fn pss(&self, k: Kind) -> f64 {
        self.pss_med.get(&k).copied().unwrap_or(0.0)
    }
}

pub(super) struct Ctx {
    pub(super) dir: PathBuf,
    pub(super) warmup: u64,
    pub(super) nginx: Option<(u32, u16)>,
}

/// Waits (at most 30 min) until no compiler has been seen for three polls 2 s apart: a cargo
/// build next to a phase would be measured with it.
async fn wait_quiet() {
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut quiet = 0;
    let mut said = false;
    while quiet < 3 {
        if build_processes() == 0 {
            quiet += 1;
        } else {
            quiet = 0;
            if !said {
                eprintln!("a compiler is running on this machine: waiting before measuring");
                said = true;
            }
        }
        if Instant::now() > deadline {
            eprintln!("compilers still running after 30 min: measuring anyway (see the notes)");
            return;
        }
        if quiet < 3 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

pub(super) async fn run_phase(ctx: &Ctx, arm: Arm, round: usize, secs: u64) -> PhaseResult {
    wait_quiet().await;
    let started_at = now_utc();
    let tag = format!("{}-r{round}", arm.flag());
    let out = ctx.dir.join("out").join(format!("{tag}.mp4"));
    let url = ctx
        .nginx
        .map(|(_, port)| format!("rtmp://127.0.0.1:{port}/live/bench-{round}"))
        .unwrap_or_default();
    eprintln!(
        "[{tag}] {} for {secs} s (load {})",
        arm.title(),
        super::loadavg()
    );
    let mut r = PhaseResult {
        arm,
        round,
        secs,
        cores: BTreeMap::new(),
        rss_med: BTreeMap::new(),
        pss_med: BTreeMap::new(),
        rss_peak: BTreeMap::new(),
        hwm: BTreeMap::new(),
        total_cores: f64::NAN,
        total_rss: f64::NAN,
        total_rss_peak: f64::NAN,
        total_pss: f64::NAN,
        total_pss_peak: f64::NAN,
        build_samples: 0,
        rss_first_min: f64::NAN,
        rss_last_min: f64::NAN,
        machine_cores: f64::NAN,
        others_cores: f64::NAN,
        samples: 0,
        result: Value::Null,
        probe: Probe::default(),
        error: None,
        started_at,
    };
    if let Err(e) = measure(ctx, arm, secs, &out, &url, &mut r).await {
        let e = format!("{e:#}");
        if e.contains("Address already in use") {
            // A port picked for the peer was taken by another process before the peer bound
            // it: nothing was measured, so run the phase again once.
            eprintln!("[{tag}] a port was taken meanwhile ({e}); running the phase again");
            r.started_at = now_utc();
            if let Err(e) = measure(ctx, arm, secs, &out, &url, &mut r).await {
                r.error = Some(format!("{e:#}"));
            }
        } else {
            r.error = Some(e);
        }
    }
    if r.error.is_none() {
        r.probe = match arm {
            Arm::File | Arm::Peer => probe_file(&out, secs, arm).await,
            Arm::Rtmp => r.probe.clone(),
            Arm::Baseline => Probe {
                ok: true,
                ..Probe::default()
            },
        };
        if arm == Arm::Rtmp {
            // The live probe ran during the phase; the pipeline's own count must match too.
            let written = r.result["duration_s"].as_f64().unwrap_or(0.0);
            if (written - secs as f64).abs() > duration_tolerance(secs) {
                r.probe.ok = false;
                r.probe
                    .problems
                    .push(format!("broadcast {written:.2} s for a {secs} s run"));
            }
            if r.bytes().unwrap_or(0) == 0 {
                r.probe.ok = false;
                r.probe.problems.push("no bytes sent".into());
            }
            r.probe.duration_s = Some(written);
        }
    }
    let _ = std::fs::remove_file(&out);
    eprintln!(
        "[{tag}] {}: cores {:.3} (others on the machine {:.2}), RSS {:.1} MiB, stop→finished {}{}",
        if r.valid() { "ok" } else { "BROKEN" },
        r.total_cores,
        r.others_cores,
        r.total_rss,
        r.stop_s()
            .map(|s| format!("{s:.2} s"))
            .unwrap_or_else(|| "–".into()),
        r.error
            .as_deref()
            .map(|e| format!("; error: {e}"))
            .or_else(|| (!r.probe.ok).then(|| format!("; check: {}", r.probe.problems.join("; "))))
            .unwrap_or_default()
    );
    r
}

async fn measure(
    ctx: &Ctx,
    arm: Arm,
    secs: u64,
    out: &Path,
    url: &str,
    r: &mut PhaseResult,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["recorder-worker", "--arm", arm.flag()])
        .args(["--secs", &secs.to_string(), "--dir"])
        .arg(&ctx.dir)
        .arg("--out")
        .arg(out)
        .args(["--url", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting a worker")?;
    let root = child.id().context("worker pid")?;
    let _stdin = child.stdin.take(); // held: its closing tells the worker to quit
    let stdout = child.stdout.take().context("worker stdout")?;
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(Instant, Value)>();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&l) {
                let _ = ev_tx.send((Instant::now(), v));
            }
        }
    });
    let extra: Vec<(u32, Kind)> = match (arm, ctx.nginx) {
        (Arm::Rtmp, Some((pid, _))) => vec![(pid, Kind::Nginx)],
        _ => Vec::new(),
    };
    let mut kinds = HashMap::new();
    let mut hwm: HashMap<u32, (Kind, u64)> = HashMap::new();
    let mut prev = snapshot(root, &extra, &mut kinds);
    let mut intervals = Vec::new();
    let mut started: Option<Instant> = None;
    let mut stopping: Option<Instant> = None;
    let mut result = Value::Null;
    let mut live_probe: Option<tokio::task::JoinHandle<Probe>> = None;
    let mut replay_pids: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs + WORKER_GRACE);
    let mut next = tokio::time::Instant::now() + Duration::from_secs(1);
    let exit = loop {
        tokio::time::sleep_until(next).await;
        next += Duration::from_secs(1);
        let snap = snapshot(root, &extra, &mut kinds);
        for (pid, p) in &snap.procs {
            let e = hwm.entry(*pid).or_insert((p.kind, 0));
            e.1 = e.1.max(p.hwm_kb);
        }
        intervals.push(interval(&prev, &snap));
        prev = snap;
        while let Ok((at, v)) = ev_rx.try_recv() {
            match v["ev"].as_str() {
                Some("started") => {
                    started = Some(at);
                    replay_pids = v["replays"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default();
                    if arm == Arm::Rtmp {
                        let url = url.to_owned();
                        live_probe = Some(tokio::spawn(async move { probe_live(&url).await }));
                    }
                }
                Some("stopping") => stopping = Some(at),
                Some("result") => result = v,
                _ => {}
            }
        }
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) => {}
            Err(e) => break Err(anyhow::anyhow!("waiting for the worker: {e}")),
        }
        if Instant::now() > deadline {
            // Everything below the worker is ours: kill it by pid, then the worker.
            for pid in prev.procs.keys() {
                if *pid != root {
                    signal(*pid, "KILL");
                }
            }
            let _ = child.kill().await;
            break Err(anyhow::anyhow!(
                "the worker ran {} s past its recording and was killed",
                WORKER_GRACE
            ));
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    while let Ok((at, v)) = ev_rx.try_recv() {
        match v["ev"].as_str() {
            Some("started") => started = Some(at),
            Some("stopping") => stopping = Some(at),
            Some("result") => result = v,
            _ => {}
        }
    }
    if let Some(p) = live_probe {
        r.probe = p.await.unwrap_or_default();
    }
    r.result = result.clone();
    let status = exit?;
    if result["ok"].as_bool() != Some(true) {
        bail!(
            "worker {status}: {}",
            result["error"].as_str().unwrap_or("no result")
        );
    }
    // The replays the worker reported must be the ones classified as replays.
    let classified: Vec<u64> = kinds
        .iter()
        .filter(|(_, k)| **k == Kind::Replay)
        .map(|(p, _)| u64::from(*p))
        .collect();
    for p in &replay_pids {
        if !classified.contains(p) {
            bail!("replay pid {p} was not recognised as a replay: its CPU may have been counted");
        }
    }
    let (Some(s), Some(e)) = (started, stopping) else {
        bail!("the worker never reported its start and stop");
    };
    let from = s + Duration::from_secs(ctx.warmup);
    let window: Vec<&Interval> = intervals
        .iter()
        .filter(|i| i.start >= from && i.end <= e)
        .collect();
    if window.len() < 3 {
        bail!("only {} samples in the measured window", window.len());
    }
    r.samples = window.len();
    let all_kinds: Vec<Kind> = {
        let mut k: Vec<Kind> = intervals
            .iter()
            .flat_map(|i| i.cores.keys().copied())
            .collect();
        k.sort();
        k.dedup();
        k
    };
    // One value per sample: over the measured window, or over the whole recording (peaks).
    let in_window = |f: &dyn Fn(&Interval) -> f64| window.iter().map(|i| f(i)).collect::<Vec<_>>();
    let since_start = |f: &dyn Fn(&Interval) -> f64| {
        intervals
            .iter()
            .filter(|i| i.start >= s)
            .map(f)
            .collect::<Vec<_>>()
    };
    let of = |m: &BTreeMap<Kind, f64>, k: Kind| m.get(&k).copied().unwrap_or(0.0);
    for &k in &all_kinds {
        r.cores.insert(k, median(&in_window(&|i| of(&i.cores, k))));
        r.rss_med
            .insert(k, median(&in_window(&|i| mib(of(&i.rss_kb, k)))));
        r.pss_med
            .insert(k, median(&in_window(&|i| mib(of(&i.pss_kb, k)))));
        r.rss_peak
            .insert(k, max_of(since_start(&|i| mib(of(&i.rss_kb, k)))));
    }
    for (k, h) in hwm.values() {
        *r.hwm.entry(*k).or_default() += mib(*h as f64);
    }
    // Summed over the kinds this arm counts.
    let counted = arm.counted();
    let sum = |m: &BTreeMap<Kind, f64>| -> f64 { counted.iter().map(|k| of(m, *k)).sum() };
    let tr = in_window(&|i| mib(sum(&i.rss_kb)));
    r.total_cores = median(&in_window(&|i| sum(&i.cores)));
    r.total_rss = median(&tr);
    r.total_rss_peak = max_of(since_start(&|i| mib(sum(&i.rss_kb))));
    r.total_pss = median(&in_window(&|i| mib(sum(&i.pss_kb))));
    r.total_pss_peak = max_of(since_start(&|i| mib(sum(&i.pss_kb))));
    r.build_samples = window.iter().filter(|i| i.builds > 0).count();
    let n = tr.len();
    let minute = 60.min(n / 2).max(1);
    r.rss_first_min = median(&tr[..minute]);
    r.rss_last_min = median(&tr[n - minute..]);
    r.machine_cores = median(&in_window(&|i| i.machine_cores));
    r.others_cores = median(&in_window(&|i| (i.machine_cores - i.bench_cores).max(0.0)));
    Ok(())
}
