//! The load generator: signed requests, the closed loop (peak) and the open loop (latency at
//! a fixed rate), and the CPU each phase cost the server's and the client's threads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::Endpoint;
use crate::auth::signed_post;
use crate::stats::percentile;
use enclave_bench::procfs::{self, CpuSample, MachineCpu, USER_HZ};

/// A safety cap on the requests of one phase, besides its time limit.
const MAX_REQUESTS_PER_PHASE: u64 = 5_000_000;

/// Percentile `p` of sorted durations, in milliseconds (0 when empty).
pub(super) fn ms(sorted: &[Duration], p: f64) -> f64 {
    percentile(sorted, p).unwrap_or_default().as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux). Absent elsewhere: the figures are then left out.

/// Server threads are the ones named after the server's runtime.
const SERVER_THREADS: &str = "bench-srv";

#[derive(Debug, Clone, Default)]
struct CpuSnap {
    server: CpuSample,
    client: CpuSample,
    machine: MachineCpu,
    at: Option<Instant>,
}

fn cpu_snapshot() -> CpuSnap {
    let (server, client) = procfs::cpu_sample_split(None, SERVER_THREADS).unwrap_or_default();
    CpuSnap {
        server,
        client,
        machine: procfs::machine_cpu(),
        at: Some(Instant::now()),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CpuUse {
    pub(super) server_ns: u64,
    pub(super) client_ns: u64,
    /// CPU used on the machine by anything but this process, in cores (averaged).
    pub(super) foreign_cores: f64,
    pub(super) steal_cores: f64,
    pub(super) available: bool,
}

fn cpu_delta(a: &CpuSnap, b: &CpuSnap) -> CpuUse {
    let (Some(t0), Some(t1)) = (a.at, b.at) else {
        return CpuUse::default();
    };
    if b.server.is_empty() && b.client.is_empty() {
        return CpuUse::default();
    }
    let mut u = CpuUse {
        available: true,
        server_ns: b.server.since(&a.server).as_nanos() as u64,
        client_ns: b.client.since(&a.client).as_nanos() as u64,
        ..CpuUse::default()
    };
    let wall = t1.duration_since(t0).as_secs_f64().max(1e-9);
    let secs = |ticks: u64| ticks as f64 / USER_HZ as f64;
    let busy = secs(b.machine.busy.saturating_sub(a.machine.busy));
    let ours = (u.server_ns + u.client_ns) as f64 / 1e9;
    u.foreign_cores = ((busy - ours) / wall).max(0.0);
    u.steal_cores = secs(b.machine.steal.saturating_sub(a.machine.steal)) / wall;
    u
}

// ---------------------------------------------------------------------------------------------
// Requests

pub(super) struct Target {
    pub(super) client: reqwest::Client,
    pub(super) base: String,
    /// Number of the next room createRoom makes.
    pub(super) next_room: AtomicU64,
    /// Sequence number for join/active requests (picks the room and the user).
    pub(super) seq: AtomicU64,
    /// Rooms `bench-0 .. bench-(seed_rooms-1)` exist; join/active use only these.
    pub(super) seed_rooms: u64,
}

impl Target {
    fn body(&self, ep: Endpoint) -> String {
        match ep {
            Endpoint::Ceiling | Endpoint::IsRoomActive => {
                let k = self.seq.fetch_add(1, Ordering::Relaxed);
                format!(r#"{{"room_id":"bench-{}"}}"#, k % self.seed_rooms)
            }
            Endpoint::CreateRoom => {
                let n = self.next_room.fetch_add(1, Ordering::Relaxed);
                format!(
                    r#"{{"room_id":"bench-{n}","metadata":{{"room_title":"Bench","room_features":{{}}}}}}"#
                )
            }
            Endpoint::GetJoinToken => {
                let k = self.seq.fetch_add(1, Ordering::Relaxed);
                format!(
                    r#"{{"room_id":"bench-{}","user_info":{{"name":"U","user_id":"u{k}"}}}}"#,
                    k % self.seed_rooms
                )
            }
        }
    }

    /// One signed request; `true` when the reply is a success.
    pub(super) async fn call(&self, ep: Endpoint) -> bool {
        let url = format!("{}{}", self.base, ep.path());
        let res = signed_post(&self.client, &url, self.body(ep)).send().await;
        let Ok(res) = res else { return false };
        let ok_status = res.status() == reqwest::StatusCode::OK;
        let Ok(bytes) = res.bytes().await else {
            return false;
        };
        ok_status
            && contains(&bytes, br#""status":true"#)
            && (ep != Endpoint::IsRoomActive || contains(&bytes, br#""is_active":true"#))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// The closed loop

#[derive(Debug, Clone, Copy)]
pub(super) struct Closed {
    pub(super) ok: u64,
    pub(super) errors: u64,
    pub(super) rate: f64,
    pub(super) secs: f64,
    pub(super) cpu: CpuUse,
}

impl Closed {
    pub(super) fn server_us_per_req(&self) -> Option<f64> {
        (self.cpu.available && self.ok > 0)
            .then(|| self.cpu.server_ns as f64 / 1e3 / (self.ok + self.errors) as f64)
    }
    /// Cores this process kept busy (server + client), averaged over the phase.
    pub(super) fn busy_cores(&self) -> f64 {
        (self.cpu.server_ns + self.cpu.client_ns) as f64 / 1e9 / self.secs.max(1e-9)
    }
    pub(super) fn client_us_per_req(&self) -> Option<f64> {
        (self.cpu.available && self.ok > 0)
            .then(|| self.cpu.client_ns as f64 / 1e3 / (self.ok + self.errors) as f64)
    }
}

/// `concurrency` workers, each sending its next request as soon as the previous one is
/// answered, until `dur` has passed.
pub(super) async fn closed_loop(
    t: &Arc<Target>,
    ep: Endpoint,
    concurrency: usize,
    dur: Duration,
) -> Closed {
    let sent = Arc::new(AtomicU64::new(0));
    let before = cpu_snapshot();
    let start = Instant::now();
    let deadline = start + dur;
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let t = t.clone();
        let sent = sent.clone();
        set.spawn(async move {
            let (mut ok, mut err) = (0u64, 0u64);
            while Instant::now() < deadline
                && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS_PER_PHASE
            {
                if t.call(ep).await {
                    ok += 1;
                } else {
                    err += 1;
                }
            }
            (ok, err)
        });
    }
    let (mut ok, mut errors) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r {
            Ok((o, e)) => {
                ok += o;
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = start.elapsed();
    let after = cpu_snapshot();
    Closed {
        ok,
        errors,
        rate: ok as f64 / elapsed.as_secs_f64(),
        secs: elapsed.as_secs_f64(),
        cpu: cpu_delta(&before, &after),
    }
}

// ---------------------------------------------------------------------------------------------
// The open loop

#[derive(Debug, Clone)]
pub(super) struct Open {
    pub(super) target_rate: f64,
    pub(super) offered_rate: f64,
    pub(super) ok: u64,
    pub(super) errors: u64,
    /// Slots never sent because the phase overran its hard stop.
    pub(super) dropped: u64,
    /// Latency from issue to complete reply, sorted.
    pub(super) latency: Vec<Duration>,
    /// How late each request was issued against its schedule, sorted.
    pub(super) lag: Vec<Duration>,
    /// Latency counted from the scheduled time (lag + latency), sorted.
    pub(super) from_schedule: Vec<Duration>,
    /// Most requests outstanding at once. Below the number of senders, no request ever
    /// waited for a free sender, so issue→reply latency misses no server stall.
    pub(super) peak_in_flight: usize,
    pub(super) cpu: CpuUse,
}

/// Requests at a fixed `rate` for `dur`, whatever the replies do (wrk2-style): request `i` is
/// due at `start + i / rate`. `workers` tasks take the next due slot, sleep until it is due
/// (not at all if it is already late: tokio's `MissedTickBehavior::Burst` semantics, so the
/// schedule never shifts and the offered rate holds), send, and record the latency both from
/// the issue and from the schedule. Latency from the schedule also counts the time a request
/// waited for a free worker, so a stalled server cannot hide its stall (no coordinated
/// omission); it also counts the generator's own timer and scheduling delays. The peak number
/// of requests in flight shows whether a request ever had to wait for a free worker.
pub(super) async fn open_loop(
    t: &Arc<Target>,
    ep: Endpoint,
    rate: f64,
    dur: Duration,
    workers: usize,
) -> Open {
    let total = ((rate * dur.as_secs_f64()) as u64).clamp(1, MAX_REQUESTS_PER_PHASE);
    let next = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let before = cpu_snapshot();
    let start = tokio::time::Instant::now() + Duration::from_millis(2);
    let hard_stop = start + dur + Duration::from_secs(10);
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let t = t.clone();
        let next = next.clone();
        let (busy, peak) = (busy.clone(), peak.clone());
        set.spawn(async move {
            let mut out = Vec::with_capacity((total as usize / workers.max(1)) + 16);
            let mut dropped = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if tokio::time::Instant::now() > hard_stop {
                    dropped += 1;
                    continue;
                }
                tokio::time::sleep_until(due).await;
                let issued = Instant::now();
                peak.fetch_max(busy.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
                let ok = t.call(ep).await;
                let done = Instant::now();
                busy.fetch_sub(1, Ordering::Relaxed);
                out.push((
                    ok,
                    done - issued,
                    issued.saturating_duration_since(due.into_std()),
                ));
            }
            (out, dropped)
        });
    }
    let mut o = Open {
        target_rate: rate,
        offered_rate: 0.0,
        ok: 0,
        errors: 0,
        dropped: 0,
        latency: Vec::with_capacity(total as usize),
        lag: Vec::with_capacity(total as usize),
        from_schedule: Vec::with_capacity(total as usize),
        peak_in_flight: 0,
        cpu: CpuUse::default(),
    };
    while let Some(r) = set.join_next().await {
        match r {
            Ok((rows, dropped)) => {
                o.dropped += dropped;
                for (ok, lat, lag) in rows {
                    if ok {
                        o.ok += 1;
                    } else {
                        o.errors += 1;
                    }
                    o.latency.push(lat);
                    o.lag.push(lag);
                    o.from_schedule.push(lat + lag);
                }
            }
            Err(_) => o.errors += 1,
        }
    }
    o.peak_in_flight = peak.load(Ordering::Relaxed);
    o.cpu = cpu_delta(&before, &cpu_snapshot());
    let span = start.elapsed().as_secs_f64().max(1e-9);
    o.offered_rate = (o.ok + o.errors) as f64 / span;
    o.latency.sort_unstable();
    o.lag.sort_unstable();
    o.from_schedule.sort_unstable();
    o
}
