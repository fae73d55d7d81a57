//! Sampling `/proc` once a second: the worker and every process below it (plus nginx for the
//! RTMP arm), each classified by its command line, and the machine around them.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use enclave_bench::procfs::{self, USER_HZ};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Kind {
    /// The worker process: compositor + ingest (+ the bench's RTP parsing).
    Worker,
    VideoDecoder,
    AudioDecoder,
    Encoder,
    Peer,
    Replay,
    Nginx,
    Other,
}

impl Kind {
    fn of(cmdline: &str) -> Kind {
        let has = |s: &str| cmdline.contains(s);
        if has("-stream_loop") {
            Kind::Replay
        } else if has("xstack") {
            Kind::Peer
        } else if has(".sdp") && has("rawvideo") {
            Kind::VideoDecoder
        } else if has(".sdp") && has("s16le") {
            Kind::AudioDecoder
        } else if has("libx264") {
            Kind::Encoder
        } else {
            Kind::Other
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Worker => "worker process",
            Kind::VideoDecoder => "video decoders",
            Kind::AudioDecoder => "audio decoders",
            Kind::Encoder => "encoder",
            Kind::Peer => "peer ffmpeg",
            Kind::Replay => "replays",
            Kind::Nginx => "nginx-rtmp",
            Kind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct ProcInfo {
    pub(super) kind: Kind,
    ticks: u64,
    rss_kb: u64,
    /// Proportional set size: shared pages (ffmpeg's libraries) split among the processes
    /// mapping them, so sums over processes do not count them several times.
    pss_kb: u64,
    pub(super) hwm_kb: u64,
}

pub(super) struct Snapshot {
    at: Instant,
    pub(super) procs: HashMap<u32, ProcInfo>,
    machine_busy: u64,
    self_ticks: u64,
    /// Compiler processes (rustc, cargo, cc, ld) anywhere on the machine.
    builds: usize,
}

const BUILD_TOOLS: [&str; 6] = ["rustc", "cargo", "cc1", "cc1plus", "ld", "collect2"];

/// How many compiler processes run on the machine now.
pub(super) fn build_processes() -> usize {
    compilers(&procfs::processes())
}

fn compilers(table: &HashMap<u32, procfs::Stat>) -> usize {
    table
        .values()
        .filter(|s| BUILD_TOOLS.contains(&s.comm.as_str()))
        .count()
}

/// The worker `root` and every process below it, plus `extra` (e.g. nginx).
pub(super) fn snapshot(
    root: u32,
    extra: &[(u32, Kind)],
    kinds: &mut HashMap<u32, Kind>,
) -> Snapshot {
    let at = Instant::now();
    let table = procfs::processes();
    let mut procs = HashMap::new();
    let add = |pid: u32, kind: Kind, procs: &mut HashMap<u32, ProcInfo>| {
        if let Some(st) = table.get(&pid) {
            let kb = |field| procfs::status_kb(pid, field).unwrap_or(0);
            procs.insert(
                pid,
                ProcInfo {
                    kind,
                    ticks: st.ticks,
                    rss_kb: kb("VmRSS:"),
                    pss_kb: procfs::pss_kb(pid).unwrap_or(0),
                    hwm_kb: kb("VmHWM:"),
                },
            );
        }
    };
    // Descendants of root, breadth first.
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, st) in &table {
        children.entry(st.ppid).or_default().push(pid);
    }
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        let kind = if pid == root {
            Kind::Worker
        } else if let Some(k) = kinds.get(&pid) {
            *k
        } else {
            let k = Kind::of(&procfs::cmdline(pid));
            // A child seen between fork and exec still shows our command line: ask again.
            if k != Kind::Other {
                kinds.insert(pid, k);
            }
            k
        };
        add(pid, kind, &mut procs);
        if let Some(c) = children.get(&pid) {
            queue.extend(c.iter().copied());
        }
    }
    for &(pid, kind) in extra {
        add(pid, kind, &mut procs);
    }
    Snapshot {
        at,
        procs,
        machine_busy: procfs::machine_cpu().busy,
        self_ticks: procfs::stat(std::process::id()).map_or(0, |s| s.ticks),
        builds: compilers(&table),
    }
}

/// One sampling interval: cores per kind over it, RSS per kind at its end.
#[derive(Debug, Clone)]
pub(super) struct Interval {
    pub(super) start: Instant,
    pub(super) end: Instant,
    pub(super) cores: BTreeMap<Kind, f64>,
    pub(super) rss_kb: BTreeMap<Kind, f64>,
    pub(super) pss_kb: BTreeMap<Kind, f64>,
    pub(super) machine_cores: f64,
    pub(super) builds: usize,
    /// Everything this bench runs (all kinds, replays included, and the parent itself).
    pub(super) bench_cores: f64,
}

pub(super) fn interval(a: &Snapshot, b: &Snapshot) -> Interval {
    let dt = b.at.duration_since(a.at).as_secs_f64().max(1e-6);
    let mut cores: BTreeMap<Kind, f64> = BTreeMap::new();
    let mut rss: BTreeMap<Kind, f64> = BTreeMap::new();
    let mut pss: BTreeMap<Kind, f64> = BTreeMap::new();
    let mut bench = 0.0;
    for (pid, p) in &b.procs {
        // A process born during the interval counts from zero.
        let before = a.procs.get(pid).map(|q| q.ticks).unwrap_or(0);
        let c = p.ticks.saturating_sub(before) as f64 / USER_HZ as f64 / dt;
        *cores.entry(p.kind).or_default() += c;
        *rss.entry(p.kind).or_default() += p.rss_kb as f64;
        *pss.entry(p.kind).or_default() += p.pss_kb as f64;
        bench += c;
    }
    bench += b.self_ticks.saturating_sub(a.self_ticks) as f64 / USER_HZ as f64 / dt;
    Interval {
        start: a.at,
        end: b.at,
        cores,
        rss_kb: rss,
        pss_kb: pss,
        machine_cores: b.machine_busy.saturating_sub(a.machine_busy) as f64 / USER_HZ as f64 / dt,
        bench_cores: bench,
        builds: a.builds.max(b.builds),
    }
}
