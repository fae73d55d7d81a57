//! The SFU benchmark's markdown report.

use std::fmt::Write as _;

use super::scenario::{IdleResult, ScenarioResult, Window};
use super::Opts;
use crate::report::{finite, fixed, Machine};
use crate::stats::{max_of, median, min_of, Latency};

/// Aims from the issue.
const AIM_PER_CORE: f64 = 150_000.0;
const AIM_P99_US: f64 = 2_000.0;
const AIM_IDLE_BYTES: f64 = 200.0 * 1024.0;

fn med(ws: &[Window], f: fn(&Window) -> f64) -> f64 {
    median(&ws.iter().map(f).collect::<Vec<_>>())
}

fn k(x: f64) -> String {
    finite(x, |x| {
        if x.abs() >= 10_000.0 {
            format!("{:.0}k", x / 1000.0)
        } else if x.abs() >= 1000.0 {
            format!("{:.1}k", x / 1000.0)
        } else {
            format!("{x:.0}")
        }
    })
}

fn pct(x: f64) -> String {
    finite(x, |x| format!("{:.2} %", x * 100.0))
}

fn us(x: f64) -> String {
    fixed(x, 0)
}

fn kib(x: f64) -> String {
    finite(x, |x| format!("{:.0} KiB", x / 1024.0))
}

fn met(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**missed**"
    }
}

pub(crate) fn render(
    opts: &Opts,
    machine: &Machine,
    load_end: &str,
    idle: Option<&IdleResult>,
    scenarios: &[ScenarioResult],
    elapsed: std::time::Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Run {} on {} × {} (kernel {}), load average {} at the start, {} at the end; {:.0} s.",
        machine.date,
        machine.nproc,
        machine.model,
        machine.kernel,
        machine.load,
        load_end,
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "Payload {} B (video-like fixed rate: {:.0} pkt/s per publisher = {:.2} Mbit/s of payload), \
         {} rounds of {:.1} s (+{} ms warm-up), ramp steps ×{} of {:.1} s, loss limit {}, \
         {} probe subscriber(s) per room, server runtime {} worker threads, bots on {} threads + 2.\n",
        opts.payload,
        opts.base_rate,
        opts.base_rate * opts.payload as f64 * 8.0 / 1e6,
        opts.rounds,
        opts.phase_secs,
        opts.warmup_ms,
        opts.ramp_step,
        opts.ramp_secs,
        pct(opts.max_loss),
        opts.probes,
        opts.server_threads,
        opts.bot_threads,
    );

    if !scenarios.is_empty() {
        let _ = writeln!(s, "**Peak** (highest ramp rate with loss ≤ {}; medians of {} rounds, each next to a ceiling run):\n", pct(opts.max_loss), opts.rounds);
        let _ = writeln!(
            s,
            "| scenario | rate per publisher (pkt/s) | forwarded pkt/s | server CPU (cores) | **forwarded pkt/s per server core** | best round | ceiling pkt/s per core | **ratio to ceiling** | loss | bots CPU (cores) | server waited for a CPU (ms/s) |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in scenarios {
            let ratios = r.ratios_to_ceiling();
            let ceil = median(&r.ceilings.iter().map(|c| c.per_core()).collect::<Vec<_>>());
            let _ = writeln!(
                s,
                "| {} | {:.0} | {} | {:.2} | **{}** | {} | {} | **{:.2}** | {} | {:.2} | {:.0} |",
                r.shape.name(),
                r.peak_rate,
                k(med(&r.peak, |w| w.fwd_pps)),
                med(&r.peak, |w| w.srv_cores),
                k(med(&r.peak, Window::per_core)),
                k(max_of(r.peak.iter().map(Window::per_core))),
                k(ceil),
                median(&ratios),
                pct(med(&r.peak, |w| w.loss)),
                med(&r.peak, |w| w.bot_cores),
                med(&r.peak, |w| w.srv_wait * 1000.0),
            );
        }

        if scenarios.iter().any(|r| !r.over.is_empty()) {
            let _ = writeln!(
                s,
                "\n**Overload** (twice the peak rate, loss allowed: how forwarding per core holds up when the server is pushed past what it sustains; medians):\n"
            );
            let _ = writeln!(s, "| scenario | rate per publisher | forwarded pkt/s | server CPU (cores) | forwarded pkt/s per server core | loss | server socket drops per s | server waited for a CPU (ms/s) |");
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
            for r in scenarios.iter().filter(|r| !r.over.is_empty()) {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {} | {:.2} | {} | {} | {} | {:.0} |",
                    r.shape.name(),
                    med(&r.over, |w| w.rate),
                    k(med(&r.over, |w| w.fwd_pps)),
                    med(&r.over, |w| w.srv_cores),
                    k(med(&r.over, Window::per_core)),
                    pct(med(&r.over, |w| w.loss)),
                    k(med(&r.over, |w| w.srv_drops as f64 / w.wall)),
                    med(&r.over, |w| w.srv_wait * 1000.0),
                );
            }
        }

        let _ = writeln!(
            s,
            "\n**Latency at half of peak** (publisher's write → probe subscriber's socket read, both bots in one process, one clock; medians of per-round percentiles, µs):\n"
        );
        let _ = writeln!(
            s,
            "| scenario | rate per publisher | forwarded pkt/s | server CPU | p50 | p90 | **p99** | p99.9 | max | p99, best round | loss | samples | server waited for a CPU (ms/s) | UDP hop p50 / p99 at the same pkt/s |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in scenarios {
            let l = Latency::median_of(&r.half.iter().map(|w| w.lat).collect::<Vec<_>>());
            let h = Latency::median_of(&r.hops);
            let _ = writeln!(
                s,
                "| {} | {:.0} | {} | {:.2} | {} | {} | **{}** | {} | {} | {} | {} | {} | {:.0} | {} / {} |",
                r.shape.name(),
                r.peak_rate / 2.0,
                k(med(&r.half, |w| w.fwd_pps)),
                med(&r.half, |w| w.srv_cores),
                us(l.p50),
                us(l.p90),
                us(l.p99),
                us(l.p999),
                us(l.max),
                us(min_of(r.half.iter().map(|w| w.lat.p99))),
                pct(med(&r.half, |w| w.loss)),
                l.samples,
                med(&r.half, |w| w.srv_wait * 1000.0),
                us(h.p50),
                us(h.p99),
            );
        }

        let _ = writeln!(
            s,
            "\n**Fixed bitrate** ({:.0} pkt/s × {} B per publisher; medians of {} rounds):\n",
            opts.base_rate, opts.payload, opts.rounds
        );
        let _ = writeln!(
            s,
            "| scenario | subscribers | forwarded pkt/s | server CPU (% of a core) | **CPU per subscriber (% of a core)** | server CPU per forwarded packet (µs) | p50 (µs) | p99 (µs) | loss |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in scenarios {
            let l = Latency::median_of(&r.fixed.iter().map(|w| w.lat).collect::<Vec<_>>());
            let cores = med(&r.fixed, |w| w.srv_cores);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | **{:.2}** | {:.2} | {} | {} | {} |",
                r.shape.name(),
                r.shape.subscribers(),
                k(med(&r.fixed, |w| w.fwd_pps)),
                cores * 100.0,
                cores * 100.0 / r.shape.subscribers() as f64,
                med(&r.fixed, |w| w.srv_cores * 1e6 / w.fwd_pps),
                us(l.p50),
                us(l.p99),
                pct(med(&r.fixed, |w| w.loss)),
            );
        }
    }

    if let Some(i) = idle {
        let _ = writeln!(s, "\n**Memory per idle participant** (server RSS while idle participants join: WebSocket, both peer connections up, DTLS and SCTP done, no media):\n");
        let _ = writeln!(
            s,
            "| participants | server RSS | Δ per participant over the step |"
        );
        let _ = writeln!(s, "|---:|---:|---:|");
        for (n, (p, rss)) in i.steps.iter().enumerate() {
            let d = if n == 0 {
                "–".to_owned()
            } else {
                kib(i.per_participant[n - 1])
            };
            let _ = writeln!(
                s,
                "| {p} | {:.1} MiB | {d} |",
                *rss as f64 / (1 << 20) as f64
            );
        }
        let _ = writeln!(
            s,
            "\nPer idle participant: **{}** (median of the steps after the first, which also carries one-time costs).",
            kib(i.marginal())
        );
    }

    if !scenarios.is_empty() {
        let _ = writeln!(s, "\n**Ceiling runs** (one thread, `send_to` of same-size datagrams to a draining receiver on 127.0.0.1, {:.1} s each, bots paused):\n", opts.ceiling_secs);
        let _ = writeln!(
            s,
            "| next to | datagram (B) | pkt/s (wall) | pkt/s per core | received |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for r in scenarios {
            let size = med(&r.fixed, |w| w.mean_dgram);
            for c in &r.ceilings {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {} | {} | {:.1} % |",
                    r.shape.name(),
                    size,
                    k(c.per_sec()),
                    k(c.per_core()),
                    100.0 * c.received as f64 / c.sent.max(1) as f64
                );
            }
        }
        let _ = writeln!(
            s,
            "\n<details><summary>Ramp steps (every window measured in the peak search)</summary>\n"
        );
        let _ = writeln!(s, "| scenario | rate per publisher | published pkt/s | forwarded pkt/s | server CPU | server waited (ms/s) | bots CPU | loss | server socket drops | bot socket drops | generator skipped | pass |");
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for r in scenarios {
            for (w, ok) in &r.ramp {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {} | {} | {:.2} | {:.0} | {:.2} | {} | {} | {} | {} | {} |",
                    r.shape.name(),
                    w.rate,
                    k(w.sent as f64 / w.wall),
                    k(w.fwd_pps),
                    w.srv_cores,
                    w.srv_wait * 1000.0,
                    w.bot_cores,
                    pct(w.loss),
                    w.srv_drops,
                    w.bot_drops,
                    w.lagged,
                    if *ok { "yes" } else { "no" }
                );
            }
        }
        let _ = writeln!(s, "\n</details>\n");
        // Summed over the measured rounds.
        let total = |f: fn(&Window) -> u64| -> u64 {
            scenarios
                .iter()
                .flat_map(|r| r.fixed.iter().chain(&r.peak).chain(&r.half))
                .map(f)
                .sum()
        };
        let (bad, errs) = (total(|w| w.corrupt), total(|w| w.input_errors));
        let (late, drops) = (total(|w| w.late), total(|w| w.srv_drops));
        let _ = writeln!(
            s,
            "In the measured rounds: probe payloads that failed verification {bad}, came twice or out of order {late}; \
             inputs refused by the bots' str0m {errs}; datagrams the kernel dropped at the server's socket {drops}."
        );
    }

    // Aims.
    let _ = writeln!(s, "\n**Aims:**\n");
    if !scenarios.is_empty() {
        let per: Vec<(String, f64)> = scenarios
            .iter()
            .map(|r| (r.shape.name(), med(&r.peak, Window::per_core)))
            .collect();
        let _ = writeln!(
            s,
            "- ≥ 150,000 forwarded pkt/s per core (median of the peak rounds): {} ({}).",
            met(per.iter().all(|(_, x)| *x >= AIM_PER_CORE)),
            per.iter()
                .map(|(n, x)| format!(
                    "{n}: {} {}",
                    k(*x),
                    if *x >= AIM_PER_CORE { "met" } else { "missed" }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let p99s: Vec<(String, f64, f64)> = scenarios
            .iter()
            .map(|r| {
                (
                    r.shape.name(),
                    Latency::median_of(&r.half.iter().map(|w| w.lat).collect::<Vec<_>>()).p99,
                    min_of(r.half.iter().map(|w| w.lat.p99)),
                )
            })
            .collect();
        let all = p99s.iter().all(|(_, p, _)| *p < AIM_P99_US);
        let _ = writeln!(
            s,
            "- p99 added latency < 2 ms at half of peak (median of rounds; best round in brackets): {} ({}).",
            met(all),
            p99s.iter()
                .map(|(n, p, b)| format!("{n}: {} µs ({} µs)", us(*p), us(*b)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let ratios: Vec<String> = scenarios
            .iter()
            .map(|r| format!("{}: {:.2}", r.shape.name(), median(&r.ratios_to_ceiling())))
            .collect();
        let _ = writeln!(
            s,
            "- Ratio of forwarded pkt/s per core to the bare UDP ceiling per core: {}.",
            ratios.join(", ")
        );
    }
    if let Some(i) = idle {
        let m = i.marginal();
        let _ = writeln!(
            s,
            "- Memory per idle participant < 200 KB: {} ({}).",
            met(m < AIM_IDLE_BYTES),
            kib(m)
        );
    }
    s
}
