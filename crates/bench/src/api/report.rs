//! The room API benchmark's report: one table of every endpoint against the ceiling, the
//! noise, and the aims.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::load::{ms, Closed, CpuUse, Open};
use super::{Endpoint, Opts};
use crate::stats::{max_of, median, min_of};

pub(super) fn render(
    opts: &Opts,
    eps: &[Endpoint],
    closed: &HashMap<Endpoint, Vec<Closed>>,
    round_ratio: &HashMap<Endpoint, Vec<f64>>,
    open: &HashMap<Endpoint, Vec<Open>>,
    elapsed: Duration,
) -> String {
    let closed_of = |ep: Endpoint| closed.get(&ep).map(Vec::as_slice).unwrap_or(&[]);
    let open_of = |ep: Endpoint| open.get(&ep).map(Vec::as_slice).unwrap_or(&[]);
    let closed_med = |ep: Endpoint, f: &dyn Fn(&Closed) -> Option<f64>| {
        median(&closed_of(ep).iter().filter_map(f).collect::<Vec<_>>())
    };
    let open_med = |ep: Endpoint, f: &dyn Fn(&Open) -> f64| {
        median(&open_of(ep).iter().map(f).collect::<Vec<_>>())
    };
    let ratio_of = |ep: Endpoint| median(round_ratio.get(&ep).map(Vec::as_slice).unwrap_or(&[]));
    let p50 = |o: &Open| ms(&o.latency, 50.0);
    let p99 = |o: &Open| ms(&o.latency, 99.0);
    let p99s = |o: &Open| ms(&o.from_schedule, 99.0);
    let ceiling_rate = closed_med(Endpoint::Ceiling, &|c| Some(c.rate));
    let ceiling_cpu = closed_med(Endpoint::Ceiling, &Closed::server_us_per_req);

    let mut s = String::new();
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "enclave-bench api: {} rounds × {:.1} s closed loop (C={}), {} rounds × {:.1} s open loop at half peak ({} senders); server {} threads, client {} threads; {:.0} s in all",
        opts.rounds,
        opts.phase.as_secs_f64(),
        opts.concurrency,
        opts.open_rounds,
        opts.open.as_secs_f64(),
        opts.open_workers,
        opts.server_threads,
        opts.client_threads,
        elapsed.as_secs_f64(),
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "| endpoint | req/s (median) | min – max | ratio to ceiling (median of per-round) | server CPU µs/req | client CPU µs/req | busy cores | half-peak rate | p50 | p99 | p99 from schedule | errors |");
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut total_errors = 0;
    for &ep in eps {
        let runs = closed_of(ep);
        let rates: Vec<f64> = runs.iter().map(|c| c.rate).collect();
        let opens = open_of(ep);
        let errors = runs.iter().map(|c| c.errors).sum::<u64>()
            + opens.iter().map(|o| o.errors + o.dropped).sum::<u64>();
        total_errors += errors;
        let lat = |v: f64| {
            if opens.is_empty() {
                "–".to_owned()
            } else {
                format!("{v:.2} ms")
            }
        };
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} – {:.0} | {:.1}% | {:.1} | {:.1} | {:.2} | {:.0}/s | {} | {} | {} | {} |",
            ep.name(),
            median(&rates),
            min_of(rates.iter().copied()),
            max_of(rates.iter().copied()),
            ratio_of(ep) * 100.0,
            closed_med(ep, &Closed::server_us_per_req),
            closed_med(ep, &Closed::client_us_per_req),
            closed_med(ep, &|c| Some(c.busy_cores())),
            open_med(ep, &|o| o.offered_rate),
            lat(open_med(ep, &p50)),
            lat(open_med(ep, &p99)),
            lat(open_med(ep, &p99s)),
            errors,
        );
    }
    // CPU the rest of the machine used, per phase where it was read.
    let noise = |cpus: &mut dyn Iterator<Item = &CpuUse>| -> Vec<f64> {
        cpus.filter(|c| c.available)
            .map(|c| c.foreign_cores)
            .collect()
    };
    let foreign = noise(&mut closed.values().flatten().map(|c| &c.cpu));
    let foreign_open = noise(&mut open.values().flatten().map(|o| &o.cpu));
    if !foreign.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Noise: other processes on the machine used {:.2} cores (median), {:.2} (max) during the closed-loop phases, {:.2} (median), {:.2} (max) during the open-loop phases; {} CPUs online.",
            median(&foreign),
            max_of(foreign.iter().copied()),
            median(&foreign_open),
            max_of(foreign_open.iter().copied()),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Server CPU per request relative to the ceiling (ceiling µs ÷ endpoint µs):"
    );
    for &ep in eps {
        let srv = closed_med(ep, &Closed::server_us_per_req);
        let _ = writeln!(s, "- {}: {:.1}%", ep.name(), ceiling_cpu / srv * 100.0);
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let _ = writeln!(s);
    let _ = writeln!(s, "Aims (ceiling median {ceiling_rate:.0} req/s):");
    for (ep, aim) in [(Endpoint::IsRoomActive, 0.5), (Endpoint::CreateRoom, 0.2)] {
        if eps.contains(&ep) {
            let r = ratio_of(ep);
            let _ = writeln!(
                s,
                "- {} ≥ {:.0}% of ceiling: {:.1}% → {}",
                ep.name(),
                aim * 100.0,
                r * 100.0,
                verdict(r >= aim)
            );
        }
    }
    for &ep in eps {
        let os = open_of(ep);
        if os.is_empty() {
            continue;
        }
        let worst = max_of(os.iter().map(p99));
        let peak = os.iter().map(|o| o.peak_in_flight).max().unwrap_or(0);
        let (a, b) = (open_med(ep, &p99), open_med(ep, &p99s));
        let _ = writeln!(
            s,
            "- {} p99 < 5 ms at half peak: issue→reply {:.2} ms → {} (worst round {:.2} ms); from schedule {:.2} ms → {}; peak in flight {}/{} senders",
            ep.name(),
            a,
            verdict(a < 5.0),
            worst,
            b,
            verdict(b < 5.0),
            peak,
            opts.open_workers,
        );
    }
    let _ = writeln!(s);
    if total_errors > 0 {
        let _ = writeln!(s, "WARNING: {total_errors} requests failed or were dropped; the figures above include a run with errors.");
    } else {
        let _ = writeln!(
            s,
            "No errors: every reply was HTTP 200 with \"status\":true."
        );
    }
    s
}
