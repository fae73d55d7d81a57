//! The recorder benchmark's markdown report: every phase, the medians across rounds with the
//! ratios to the peer, stop → finished, the long recording.

use std::fmt::Write as _;

use super::phase::PhaseResult;
use super::sample::Kind;
use super::{first_line, Arm, Opts};
use crate::report::{finite, fixed, Machine};
use crate::stats::{max_of, median};

pub(super) struct Report<'a> {
    pub(super) opts: &'a Opts,
    pub(super) machine: Machine,
    pub(super) command: String,
    pub(super) clips: Vec<String>,
    pub(super) load_start: String,
    pub(super) load_end: String,
    pub(super) date_start: String,
    pub(super) date_end: String,
    pub(super) phases: &'a [PhaseResult],
    pub(super) long: &'a [PhaseResult],
}

fn pct(v: f64) -> String {
    finite(v, |v| format!("{:.0}%", v * 100.0))
}

fn opt_f2(v: Option<f64>) -> String {
    fixed(v.unwrap_or(f64::NAN), 2)
}

fn mib_of(bytes: Option<u64>) -> String {
    fixed(bytes.map(|b| b as f64 / 1048576.0).unwrap_or(f64::NAN), 1)
}

/// One phase of ours with the worker corrected by the same round's baseline.
#[derive(Debug, Clone, Copy)]
struct Ours {
    comp_cores: f64,
    comp_rss: f64,
    comp_pss: f64,
    comp_hwm: f64,
    total_cores: f64,
    total_rss: f64,
    total_pss: f64,
    total_rss_peak: f64,
    total_pss_peak: f64,
}

fn corrected(p: &PhaseResult, base: Option<&PhaseResult>) -> Ours {
    let b = base.filter(|b| b.valid());
    let get = |f: &dyn Fn(&PhaseResult) -> f64| b.map(f).unwrap_or(f64::NAN);
    let bc = get(&|b| b.core(Kind::Worker));
    let br = get(&|b| b.rss(Kind::Worker));
    let bp = get(&|b| b.pss(Kind::Worker));
    let bh = get(&|b| b.hwm.get(&Kind::Worker).copied().unwrap_or(f64::NAN));
    Ours {
        comp_cores: p.core(Kind::Worker) - bc,
        comp_rss: p.rss(Kind::Worker) - br,
        comp_pss: p.pss(Kind::Worker) - bp,
        comp_hwm: p.hwm.get(&Kind::Worker).copied().unwrap_or(f64::NAN) - bh,
        total_cores: p.total_cores - bc,
        total_rss: p.total_rss - br,
        total_pss: p.total_pss - bp,
        total_rss_peak: p.total_rss_peak - br,
        total_pss_peak: p.total_pss_peak - bp,
    }
}

impl Report<'_> {
    fn ours(&self, list: &[PhaseResult], p: &PhaseResult) -> Ours {
        let base = list
            .iter()
            .find(|b| b.arm == Arm::Baseline && b.round == p.round);
        corrected(p, base)
    }

    pub(super) fn render(&self) -> String {
        let mut s = String::new();
        let o = self.opts;
        let _ = writeln!(s, "# Recorder benchmark: 4 participants, 720p\n");
        let _ = writeln!(s, "Command: `{}`\n", self.command);
        let _ = writeln!(
            s,
            "* Machine: nproc = {}, {}, {} {}",
            self.machine.nproc, self.machine.model, self.machine.system, self.machine.kernel,
        );
        let _ = writeln!(s, "* {}", first_line("ffmpeg", &["-version"]));
        let _ = writeln!(
            s,
            "* Start {} (load average {}), end {} (load average {})",
            self.date_start, self.load_start, self.date_end, self.load_end
        );
        let _ = writeln!(
            s,
            "* {} s per phase, {} rounds of: baseline {} s, ours → MP4, peer → MP4, ours → RTMP; \
             the first {} s of each phase are left out of the medians; 1 s samples",
            o.secs, o.rounds, o.baseline_secs, o.warmup
        );
        for c in &self.clips {
            let _ = writeln!(s, "* {c}");
        }
        let _ = writeln!(s);
        self.render_phases(&mut s);
        self.render_summary(&mut s);
        self.render_long(&mut s);
        s
    }

    fn render_phases(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "## Every phase (medians of 1 s samples; cores = CPU s per s; memory in MiB)\n"
        );
        let _ = writeln!(
            s,
            "| round | arm | start (UTC) | check | samples | worker | video dec ×4 | audio dec ×4 | encoder | peer | total cores | RSS median / peak / ΣHWM | PSS median / peak | machine / others cores | stop→finished s | output | notes |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---|---|"
        );
        for p in self.phases.iter().chain(self.long) {
            let hwm: f64 = p
                .arm
                .counted()
                .iter()
                .map(|k| p.hwm.get(k).copied().unwrap_or(0.0))
                .sum();
            let output = match p.arm {
                Arm::Baseline => {
                    let mbit =
                        p.result["bytes_in"].as_f64().unwrap_or(0.0) * 8.0 / 1e6 / p.secs as f64;
                    format!("RTP in {mbit:.2} Mbit/s, {} dropped", p.result["dropped"])
                }
                Arm::File | Arm::Peer => format!(
                    "{} MiB, {} s, {} frames, {}",
                    mib_of(p.bytes()),
                    opt_f2(p.probe.duration_s),
                    p.probe
                        .video_frames
                        .map(|f| f.to_string())
                        .unwrap_or("–".into()),
                    match p.probe.moov_first {
                        Some(true) => "moov first",
                        Some(false) => "moov last",
                        None => "no moov?",
                    },
                ),
                Arm::Rtmp => format!(
                    "{} MiB sent, {} s",
                    mib_of(p.bytes()),
                    opt_f2(p.probe.duration_s)
                ),
            };
            let mut notes = Vec::new();
            if let Some(e) = &p.error {
                notes.push(format!("error: {e}"));
            }
            if !p.probe.problems.is_empty() {
                notes.push(format!("check: {}", p.probe.problems.join("; ")));
            }
            if matches!(p.arm, Arm::File | Arm::Rtmp) && p.error.is_none() {
                notes.push(format!(
                    "max output lag {} ms, {} frames repeated, {} decoder restarts, {} packets \
                     dropped in",
                    p.result["max_lag_ms"],
                    p.result["frames_repeated"],
                    p.result["decoder_restarts"],
                    p.result["dropped"]
                ));
            }
            if let Some(n) = p.cores.get(&Kind::Nginx) {
                notes.push(format!("nginx {n:.3} cores"));
            }
            if let Some(n) = p.cores.get(&Kind::Other).filter(|c| **c > 0.0) {
                notes.push(format!("unclassified {n:.3} cores"));
            }
            if p.build_samples > 0 {
                notes.push(format!(
                    "**a compiler ran during {} of {} samples**",
                    p.build_samples, p.samples
                ));
            }
            // Error text may hold newlines or pipes, which would break the table.
            let notes = notes
                .join("; ")
                .replace(['\n', '\r'], " ")
                .replace('|', "/");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} | {} / {} | {} | {} | {} |",
                p.round,
                p.arm.title(),
                p.started_at.split(' ').nth(1).unwrap_or("?"),
                if p.valid() { "ok" } else { "**BROKEN**" },
                p.samples,
                fixed(p.core(Kind::Worker), 3),
                fixed(p.core(Kind::VideoDecoder), 3),
                fixed(p.core(Kind::AudioDecoder), 3),
                fixed(p.core(Kind::Encoder), 3),
                fixed(p.core(Kind::Peer), 3),
                fixed(p.total_cores, 3),
                fixed(p.total_rss, 1),
                fixed(p.total_rss_peak, 1),
                fixed(hwm, 1),
                fixed(p.total_pss, 1),
                fixed(p.total_pss_peak, 1),
                fixed(p.machine_cores, 2),
                fixed(p.others_cores, 2),
                opt_f2(p.stop_s()),
                output,
                notes,
            );
        }
        let _ = writeln!(s);
    }

    fn render_summary(&self, s: &mut String) {
        let valid = |arm: Arm| -> Vec<&PhaseResult> {
            self.phases
                .iter()
                .filter(|p| p.arm == arm && p.valid())
                .collect()
        };
        let (base, file, peer, rtmp) = (
            valid(Arm::Baseline),
            valid(Arm::File),
            valid(Arm::Peer),
            valid(Arm::Rtmp),
        );
        if file.is_empty() && peer.is_empty() && rtmp.is_empty() {
            return;
        }
        let med = |v: Vec<f64>| median(&v);
        let ours = |l: &[&PhaseResult]| -> Vec<Ours> {
            l.iter().map(|p| self.ours(self.phases, p)).collect()
        };
        let (fo, ro) = (ours(&file), ours(&rtmp));
        let m = |v: &[Ours], f: fn(&Ours) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());

        let _ = writeln!(s, "## Medians across rounds\n");
        let _ = writeln!(
            s,
            "Baseline (replay + parse in the worker, subtracted from ours): {} cores, RSS {} MiB, PSS {} MiB.\n",
            fixed(med(base.iter().map(|p| p.core(Kind::Worker)).collect()), 3),
            fixed(med(base.iter().map(|p| p.rss(Kind::Worker)).collect()), 1),
            fixed(med(base.iter().map(|p| p.pss(Kind::Worker)).collect()), 1),
        );
        let _ = writeln!(
            s,
            "| component | ours → MP4 cores | % of a core | RSS MiB | PSS MiB | peak ΣHWM MiB | ours → RTMP cores | RTMP PSS MiB |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| compositor + ingest (worker − baseline) | {} | {} | {} | {} | {} | {} | {} |",
            fixed(m(&fo, |o| o.comp_cores), 3),
            pct(m(&fo, |o| o.comp_cores)),
            fixed(m(&fo, |o| o.comp_rss), 1),
            fixed(m(&fo, |o| o.comp_pss), 1),
            fixed(m(&fo, |o| o.comp_hwm), 1),
            fixed(m(&ro, |o| o.comp_cores), 3),
            fixed(m(&ro, |o| o.comp_pss), 1),
        );
        for k in [Kind::VideoDecoder, Kind::AudioDecoder, Kind::Encoder] {
            let c = |l: &[&PhaseResult]| med(l.iter().map(|p| p.core(k)).collect());
            let h = med(file
                .iter()
                .map(|p| p.hwm.get(&k).copied().unwrap_or(0.0))
                .collect());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                k.name(),
                fixed(c(&file), 3),
                pct(c(&file)),
                fixed(med(file.iter().map(|p| p.rss(k)).collect()), 1),
                fixed(med(file.iter().map(|p| p.pss(k)).collect()), 1),
                fixed(h, 1),
                fixed(c(&rtmp), 3),
                fixed(med(rtmp.iter().map(|p| p.pss(k)).collect()), 1),
            );
        }
        let _ = writeln!(
            s,
            "| **ours, total** | **{}** | **{}** | **{}** (peak {}) | **{}** (peak {}) | | **{}** | **{}** |",
            fixed(m(&fo, |o| o.total_cores), 3),
            pct(m(&fo, |o| o.total_cores)),
            fixed(m(&fo, |o| o.total_rss), 1),
            fixed(m(&fo, |o| o.total_rss_peak), 1),
            fixed(m(&fo, |o| o.total_pss), 1),
            fixed(m(&fo, |o| o.total_pss_peak), 1),
            fixed(m(&ro, |o| o.total_cores), 3),
            fixed(m(&ro, |o| o.total_pss), 1),
        );
        let pc = med(peer.iter().map(|p| p.total_cores).collect());
        let _ = writeln!(
            s,
            "| **peer ffmpeg** (decode + swscale + xstack + amix + encode) | **{}** | **{}** | **{}** (peak {}) | **{}** (peak {}) | {} | | |\n",
            fixed(pc, 3),
            pct(pc),
            fixed(med(peer.iter().map(|p| p.total_rss).collect()), 1),
            fixed(med(peer.iter().map(|p| p.total_rss_peak).collect()), 1),
            fixed(med(peer.iter().map(|p| p.total_pss).collect()), 1),
            fixed(med(peer.iter().map(|p| p.total_pss_peak).collect()), 1),
            fixed(med(peer
                .iter()
                .map(|p| p.hwm.get(&Kind::Peer).copied().unwrap_or(0.0))
                .collect()), 1),
        );

        // Ratios per round, then their median.
        let mut ratios: [Vec<f64>; 4] = Default::default();
        let _ = writeln!(
            s,
            "| round | ours → MP4 cores | peer cores | **ours / peer CPU** | ours / peer RSS | **ours / peer PSS** | ours → RTMP / peer CPU |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
        let mut rounds: Vec<usize> = self.phases.iter().map(|p| p.round).collect();
        rounds.dedup();
        for round in rounds {
            let get = |arm: Arm| {
                self.phases
                    .iter()
                    .find(|p| p.arm == arm && p.round == round && p.valid())
            };
            let (Some(f), Some(p)) = (get(Arm::File), get(Arm::Peer)) else {
                continue;
            };
            let o = self.ours(self.phases, f);
            let row = [
                o.total_cores / p.total_cores,
                o.total_rss / p.total_rss,
                o.total_pss / p.total_pss,
                get(Arm::Rtmp)
                    .map(|r| self.ours(self.phases, r).total_cores / p.total_cores)
                    .unwrap_or(f64::NAN),
            ];
            for (v, r) in ratios.iter_mut().zip(row) {
                if r.is_finite() {
                    v.push(r);
                }
            }
            let _ = writeln!(
                s,
                "| {round} | {} | {} | {} | {} | {} | {} |",
                fixed(o.total_cores, 3),
                fixed(p.total_cores, 3),
                fixed(row[0], 2),
                fixed(row[1], 2),
                fixed(row[2], 2),
                fixed(row[3], 2),
            );
        }
        let _ = writeln!(
            s,
            "| **median** | | | **{}** | {} | **{}** | {} |\n",
            fixed(median(&ratios[0]), 2),
            fixed(median(&ratios[1]), 2),
            fixed(median(&ratios[2]), 2),
            fixed(median(&ratios[3]), 2),
        );

        let stops = |l: &[&PhaseResult]| -> String {
            let v: Vec<f64> = l.iter().filter_map(|p| p.stop_s()).collect();
            format!(
                "median **{}** s ({})",
                fixed(median(&v), 2),
                v.iter()
                    .map(|x| fixed(*x, 2))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let sizes = |l: &[&PhaseResult]| -> String {
            let v: Vec<f64> = l
                .iter()
                .filter_map(|p| p.bytes())
                .map(|b| b as f64 / 1048576.0)
                .collect();
            format!("{} MiB", fixed(median(&v), 1))
        };
        let _ = writeln!(s, "Stop → finished, {} s runs:\n", self.opts.secs);
        let _ = writeln!(
            s,
            "* ours → MP4 (`request_stop()` → `wait()` Ok, `.part` renamed): {}; file {}",
            stops(&file),
            sizes(&file)
        );
        let _ = writeln!(
            s,
            "* ours → RTMP (`request_stop()` → `wait()` Ok): {}",
            stops(&rtmp)
        );
        let _ = writeln!(
            s,
            "* peer (`q` on stdin → exit, MP4 finalised): {}; file {}\n",
            stops(&peer),
            sizes(&peer)
        );
        let others: Vec<f64> = self
            .phases
            .iter()
            .filter(|p| p.others_cores.is_finite())
            .map(|p| p.others_cores)
            .collect();
        let _ = writeln!(
            s,
            "Noise: the rest of the machine used {} cores (median of the phases' medians; highest {}).\n",
            fixed(median(&others), 2),
            fixed(max_of(others.iter().copied()), 2)
        );
    }

    fn render_long(&self, s: &mut String) {
        let Some(p) = self.long.iter().find(|p| p.arm == Arm::File) else {
            return;
        };
        let o = self.ours(self.long, p);
        let _ = writeln!(s, "## Long recording ({} s)\n", p.secs);
        let _ = writeln!(
            s,
            "* check: {}{}",
            if p.valid() { "ok" } else { "**BROKEN**" },
            if p.probe.problems.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.probe.problems.join("; "))
            }
        );
        let _ = writeln!(
            s,
            "* stop → finished: **{} s**; file {} MiB{}; ffprobe duration {} s, {} video frames; the pipeline wrote {} s",
            opt_f2(p.stop_s()),
            mib_of(p.bytes()),
            match p.probe.moov_first {
                Some(true) => " (moov first: faststart applied)",
                Some(false) => " (moov last: no faststart)",
                None => "",
            },
            opt_f2(p.probe.duration_s),
            p.probe
                .video_frames
                .map(|f| f.to_string())
                .unwrap_or("–".into()),
            opt_f2(p.result["duration_s"].as_f64()),
        );
        let _ = writeln!(
            s,
            "* median cores: total {} (compositor {}, video decoders {}, audio decoders {}, encoder {}); the rest of the machine {}",
            fixed(o.total_cores, 3),
            fixed(o.comp_cores, 3),
            fixed(p.core(Kind::VideoDecoder), 3),
            fixed(p.core(Kind::AudioDecoder), 3),
            fixed(p.core(Kind::Encoder), 3),
            fixed(p.others_cores, 2),
        );
        let _ = writeln!(
            s,
            "* memory: RSS median {} MiB (peak {}), PSS median {} MiB (peak {}), compositor PSS {} MiB; total RSS in the first minute {} MiB, in the last minute {} MiB (uncorrected)",
            fixed(o.total_rss, 1),
            fixed(o.total_rss_peak, 1),
            fixed(o.total_pss, 1),
            fixed(o.total_pss_peak, 1),
            fixed(o.comp_pss, 1),
            fixed(p.rss_first_min, 1),
            fixed(p.rss_last_min, 1),
        );
        let _ = writeln!(
            s,
            "* max output lag {} ms, {} frames repeated, {} decoder restarts, {} packets dropped \
             in{}\n",
            p.result["max_lag_ms"],
            p.result["frames_repeated"],
            p.result["decoder_restarts"],
            p.result["dropped"],
            if p.build_samples > 0 {
                format!(
                    "; **a compiler ran during {} of {} samples**",
                    p.build_samples, p.samples
                )
            } else {
                String::new()
            }
        );
    }
}
