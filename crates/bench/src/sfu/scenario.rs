//! The benchmark: scenarios, measuring windows, peak search, rounds side by side with the
//! ceiling.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::server::{ServerProc, LK_KEY, LK_SECRET};
use super::{say, Opts};
use crate::auth::signed_post;
use crate::stats::{median, Latency};
use enclave_bench::bot::{self, Recv, Spec, Stats};
use enclave_bench::ceiling::{self, Ceiling};
use enclave_bench::procfs::{self, CpuSample};

/// Where bots run: sinks (and meeting participants that are sinks) on a multi-thread runtime;
/// probes and the fan-out publisher each on a thread of their own, so that their timing is not
/// queued behind dozens of sink tasks.
pub(crate) struct Lanes {
    pub(crate) bots: Handle,
    pub(crate) probes: Handle,
    pub(crate) pubs: Handle,
}

/// The shape of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One publisher, `n` subscribers.
    FanOut(usize),
    /// `n` participants, each publishing one stream and subscribing to all others.
    Meeting(usize),
    /// `n` participants that join and stay idle.
    Idle(usize),
}

impl Shape {
    pub(crate) fn name(self) -> String {
        match self {
            Shape::FanOut(n) => format!("1 → {n}"),
            Shape::Meeting(n) => format!("{n} × {n}"),
            Shape::Idle(n) => format!("{n} idle"),
        }
    }

    /// Receivers of each published stream.
    fn subs_per_pub(self) -> u64 {
        match self {
            Shape::FanOut(n) => n as u64,
            Shape::Meeting(n) => n.saturating_sub(1) as u64,
            Shape::Idle(_) => 0,
        }
    }

    fn publishers(self) -> u64 {
        match self {
            Shape::FanOut(_) => 1,
            Shape::Meeting(n) => n as u64,
            Shape::Idle(_) => 0,
        }
    }

    /// Forwarded packets per published packet.
    pub(crate) fn fan(self) -> u64 {
        self.publishers() * self.subs_per_pub()
    }

    /// Participants receiving media.
    pub(crate) fn subscribers(self) -> u64 {
        match self {
            Shape::FanOut(n) | Shape::Meeting(n) => n as u64,
            Shape::Idle(_) => 0,
        }
    }
}

/// One measuring window.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    /// Packets per second per publisher asked for.
    pub(crate) rate: f64,
    pub(crate) wall: f64,
    pub(crate) sent: u64,
    /// Forwarded packets delivered per second (all subscribers).
    pub(crate) fwd_pps: f64,
    pub(crate) loss: f64,
    /// Server process CPU, in cores (CPU seconds per second).
    pub(crate) srv_cores: f64,
    /// Bot process CPU, in cores.
    pub(crate) bot_cores: f64,
    /// Time the server's threads were runnable but had no CPU, per second (the machine is
    /// shared: this is how much the neighbours and the bots held it back).
    pub(crate) srv_wait: f64,
    pub(crate) lat: Latency,
    pub(crate) srv_drops: u64,
    pub(crate) bot_drops: u64,
    pub(crate) mean_dgram: f64,
    pub(crate) lagged: u64,
    pub(crate) late: u64,
    pub(crate) corrupt: u64,
    pub(crate) input_errors: u64,
    /// Whether the publishers achieved ≥ 95 % of the asked rate.
    pub(crate) offered_ok: bool,
}

impl Window {
    /// Forwarded packets per second per core of server CPU.
    pub(crate) fn per_core(&self) -> f64 {
        if self.srv_cores > 0.0 {
            self.fwd_pps / self.srv_cores
        } else {
            f64::NAN
        }
    }

    fn passes(&self, max_loss: f64) -> bool {
        self.offered_ok && self.loss <= max_loss && self.corrupt == 0
    }
}

/// The population of one scenario.
struct Crowd {
    shape: Shape,
    room: String,
    rate_tx: watch::Sender<f64>,
    stop_tx: watch::Sender<bool>,
    members: Vec<Member>,
}

struct Member {
    stats: Arc<Stats>,
    /// Streams this member must be receiving to be ready.
    expects: u64,
    publishes: bool,
    task: JoinHandle<()>,
}

impl Member {
    fn state(&self) -> String {
        let s = &self.stats;
        format!(
            "sub_connected={} offers={} sub_in={} sub_out={} pub_ready={} streams={}/{} sent={} recv={}",
            s.sub_connected.load(Ordering::Acquire),
            s.offers.load(Ordering::Relaxed),
            s.sub_in.load(Ordering::Relaxed),
            s.sub_out.load(Ordering::Relaxed),
            s.pub_ready.load(Ordering::Acquire),
            s.streams.load(Ordering::Acquire),
            self.expects,
            s.sent.load(Ordering::Relaxed),
            s.recv.load(Ordering::Relaxed),
        )
    }
}

#[derive(Clone)]
struct Snap {
    t: Instant,
    sent: u64,
    lagged: u64,
    recv: u64,
    dgrams: u64,
    bytes: u64,
    late: u64,
    corrupt: u64,
    input_errors: u64,
    srv_cpu: CpuSample,
    bot_cpu: CpuSample,
    srv_drops: u64,
    bot_drops: u64,
}

/// The results of one scenario.
#[derive(Debug, Clone)]
pub(crate) struct ScenarioResult {
    pub(crate) shape: Shape,
    pub(crate) fixed: Vec<Window>,
    pub(crate) ramp: Vec<(Window, bool)>,
    pub(crate) peak_rate: f64,
    pub(crate) peak: Vec<Window>,
    pub(crate) ceilings: Vec<Ceiling>,
    /// Rounds at twice the peak rate (loss allowed): forwarding efficiency under overload.
    pub(crate) over: Vec<Window>,
    pub(crate) half: Vec<Window>,
    /// One-hop UDP latency at the half-peak forwarded rate, next to each half-peak round.
    pub(crate) hops: Vec<Latency>,
}

impl ScenarioResult {
    /// Forwarded packets per server core over the ceiling's per core, round by round.
    pub(crate) fn ratios_to_ceiling(&self) -> Vec<f64> {
        self.peak
            .iter()
            .zip(&self.ceilings)
            .map(|(w, c)| w.per_core() / c.per_core())
            .collect()
    }
}

/// Idle participants' memory.
#[derive(Debug, Clone)]
pub(crate) struct IdleResult {
    /// (participants, RSS bytes) after each step, starting with (0, base).
    pub(crate) steps: Vec<(u64, u64)>,
    /// RSS growth per participant over each step. The first step also carries one-time
    /// costs (the first room core, allocator arenas, buffers that grow once), so the
    /// figure is the median of the later steps when there are any.
    pub(crate) per_participant: Vec<f64>,
}

impl IdleResult {
    pub(crate) fn marginal(&self) -> f64 {
        if self.per_participant.len() > 1 {
            median(&self.per_participant[1..])
        } else {
            median(&self.per_participant)
        }
    }
}

pub(crate) struct Bench<'a> {
    pub(crate) opts: &'a Opts,
    pub(crate) srv: &'a ServerProc,
    pub(crate) lanes: &'a Lanes,
    http: reqwest::Client,
    rooms: u32,
}

/// Windows a peak-search step gets before it counts as failed.
const RAMP_TRIES: usize = 3;

impl<'a> Bench<'a> {
    pub(crate) fn new(
        opts: &'a Opts,
        srv: &'a ServerProc,
        lanes: &'a Lanes,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            opts,
            srv,
            lanes,
            http,
            rooms: 0,
        })
    }

    async fn auth(&self, path: &str, body: String) -> anyhow::Result<String> {
        let url = format!("http://{}{path}", self.srv.http);
        let res = signed_post(&self.http, &url, body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() || !text.contains("\"status\":true") {
            bail!("POST {path}: {status} {text}");
        }
        Ok(text)
    }

    async fn create_room(&mut self, tag: &str) -> anyhow::Result<String> {
        self.rooms += 1;
        let room = format!("bench-{}-{tag}", self.rooms);
        self.auth(
            "/auth/room/create",
            format!(
                r#"{{"room_id":"{room}","metadata":{{"room_title":"sfu-bench","room_features":{{}}}}}}"#
            ),
        )
        .await?;
        Ok(room)
    }

    fn url(&self, room: &str, identity: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = enclave_server::auth::livekit::AccessClaims {
            iss: LK_KEY.into(),
            sub: identity.into(),
            nbf: now.saturating_sub(60),
            exp: now + 3600,
            name: identity.into(),
            metadata: String::new(),
            video: enclave_server::auth::livekit::VideoGrant {
                room_join: true,
                room: room.into(),
                can_publish: Some(true),
                can_subscribe: Some(true),
                can_publish_data: Some(true),
                can_publish_sources: None,
                hidden: false,
                can_update_own_metadata: None,
            },
            session: None,
        };
        let token = enclave_server::auth::encode_jwt(LK_SECRET.as_bytes(), &claims);
        format!(
            "ws://{}/rtc?access_token={token}&auto_subscribe=1&protocol=17&sdk=rust&version=0.0.0",
            self.srv.http
        )
    }

    /// A bot to add: its spec, how many streams it must receive to be ready, and the lane it
    /// runs on (probes on their own thread, whatever `lane` says).
    fn member<'h>(
        &'h self,
        room: &str,
        identity: String,
        publisher: Option<u64>,
        probe: bool,
        expects: u64,
        lane: &'h Handle,
    ) -> (Spec, u64, &'h Handle) {
        let spec = Spec {
            url: self.url(room, &identity),
            identity,
            publisher,
            recv: if probe { Recv::Probe } else { Recv::Sink },
            payload: self.opts.payload,
        };
        (spec, expects, if probe { &self.lanes.probes } else { lane })
    }

    fn rss(&self) -> u64 {
        procfs::rss_bytes(self.srv.pid).unwrap_or(0)
    }

    /// Joins everyone of `shape` into a new room and waits (bounded) until media flows to
    /// every subscriber (at the base rate) or, for idle rooms, until every subscriber PC is up.
    async fn gather(&mut self, shape: Shape) -> anyhow::Result<Crowd> {
        let room = self
            .create_room(match shape {
                Shape::FanOut(_) => "fanout",
                Shape::Meeting(_) => "meeting",
                Shape::Idle(_) => "idle",
            })
            .await?;
        let warm = match shape {
            Shape::Idle(_) => 0.0,
            _ => self.opts.base_rate,
        };
        let (rate_tx, rate_rx) = watch::channel(warm);
        let (stop_tx, stop_rx) = watch::channel(false);
        let probes = self.opts.probes;
        let member = |id: String, publisher, probe, expects, lane| {
            self.member(&room, id, publisher, probe, expects, lane)
        };
        let (bots, pubs) = (&self.lanes.bots, &self.lanes.pubs);
        let specs: Vec<(Spec, u64, &Handle)> = match shape {
            Shape::FanOut(n) => std::iter::once(member("pub-0".into(), Some(0), false, 0, pubs))
                .chain((0..n).map(|i| member(format!("sub-{i}"), None, i < probes, 1, bots)))
                .collect(),
            Shape::Meeting(n) => (0..n)
                .map(|i| {
                    let id = format!("peer-{i}");
                    member(id, Some(i as u64), i < probes, n as u64 - 1, bots)
                })
                .collect(),
            Shape::Idle(n) => (0..n)
                .map(|i| member(format!("idle-{i}"), None, false, 0, bots))
                .collect(),
        };
        let mut crowd = Crowd {
            shape,
            room,
            rate_tx,
            stop_tx,
            members: Vec::new(),
        };
        self.add_members(&mut crowd, specs, &rate_rx, &stop_rx)
            .await?;
        Ok(crowd)
    }

    async fn add_members(
        &self,
        crowd: &mut Crowd,
        specs: Vec<(Spec, u64, &Handle)>,
        rate_rx: &watch::Receiver<f64>,
        stop_rx: &watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let first = crowd.members.len();
        for (i, (spec, expects, lane)) in specs.into_iter().enumerate() {
            let stats = Arc::new(Stats::default());
            let publishes = spec.publisher.is_some();
            let task = lane.spawn(bot::run(
                spec,
                rate_rx.clone(),
                stop_rx.clone(),
                stats.clone(),
            ));
            crowd.members.push(Member {
                stats,
                expects,
                publishes,
                task,
            });
            // A gentle join: the server negotiates one subscriber offer at a time per peer.
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let members = &crowd.members[first..];
            if let Some((i, e)) = members
                .iter()
                .enumerate()
                .find_map(|(i, m)| m.stats.error().map(|e| (i, e)))
            {
                let states: Vec<String> = members.iter().map(Member::state).collect();
                bail!(
                    "{}: bot #{i} failed while joining: {e}\n  states: {}",
                    crowd.shape.name(),
                    states.join("; ")
                );
            }
            let ready = members.iter().all(|m| {
                m.stats.sub_connected.load(Ordering::Acquire)
                    && (!m.publishes || m.stats.pub_ready.load(Ordering::Acquire))
                    && m.stats.streams.load(Ordering::Acquire) >= m.expects
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let not: Vec<String> = members
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| {
                        !m.stats.sub_connected.load(Ordering::Acquire)
                            || m.stats.streams.load(Ordering::Acquire) < m.expects
                    })
                    .map(|(i, m)| {
                        format!(
                            "#{i}: connected={} streams={}/{}",
                            m.stats.sub_connected.load(Ordering::Acquire),
                            m.stats.streams.load(Ordering::Acquire),
                            m.expects
                        )
                    })
                    .take(5)
                    .collect();
                bail!(
                    "{}: not ready after 60 s: {}",
                    crowd.shape.name(),
                    not.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn snap(&self, crowd: &Crowd) -> anyhow::Result<Snap> {
        let mut s = Snap {
            t: Instant::now(),
            sent: 0,
            lagged: 0,
            recv: 0,
            dgrams: 0,
            bytes: 0,
            late: 0,
            corrupt: 0,
            input_errors: 0,
            srv_cpu: procfs::cpu_sample(Some(self.srv.pid))?,
            bot_cpu: procfs::cpu_sample(None)?,
            srv_drops: procfs::udp_drops(&[self.srv.udp.port()])?,
            bot_drops: 0,
        };
        let mut ports = Vec::new();
        for m in &crowd.members {
            let st = &m.stats;
            s.sent += st.sent.load(Ordering::Relaxed);
            s.lagged += st.lagged.load(Ordering::Relaxed);
            s.recv += st.recv.load(Ordering::Relaxed);
            s.dgrams += st.rtp_dgrams.load(Ordering::Relaxed);
            s.bytes += st.rtp_bytes.load(Ordering::Relaxed);
            s.late += st.late.load(Ordering::Relaxed);
            s.corrupt += st.corrupt.load(Ordering::Relaxed);
            s.input_errors += st.input_errors.load(Ordering::Relaxed);
            ports.extend(st.ports());
        }
        s.bot_drops = procfs::udp_drops(&ports)?;
        Ok(s)
    }

    /// Runs the crowd at `rate` for `warmup`, then measures for `dur`.
    async fn measure(
        &self,
        crowd: &Crowd,
        rate: f64,
        warmup: Duration,
        dur: Duration,
    ) -> anyhow::Result<Window> {
        crowd.rate_tx.send_replace(rate);
        tokio::time::sleep(warmup).await;
        for m in &crowd.members {
            m.stats.clear_latencies();
        }
        let a = self.snap(crowd)?;
        tokio::time::sleep(dur).await;
        let b = self.snap(crowd)?;
        let mut lat: Vec<u32> = Vec::new();
        for m in &crowd.members {
            lat.extend(m.stats.take_latencies());
            if let Some(e) = m.stats.error() {
                bail!("{}: a bot failed: {e}", crowd.shape.name());
            }
        }
        let wall = b.t.duration_since(a.t).as_secs_f64();
        let sent = b.sent - a.sent;
        let recv = b.recv - a.recv;
        let expected = sent as f64 * crowd.shape.subs_per_pub() as f64;
        let srv_cores = b.srv_cpu.since(&a.srv_cpu).as_secs_f64() / wall;
        let bot_cores = b.bot_cpu.since(&a.bot_cpu).as_secs_f64() / wall;
        let srv_wait = b.srv_cpu.waited_since(&a.srv_cpu).as_secs_f64() / wall;
        let dgrams = b.dgrams - a.dgrams;
        let offered = sent as f64 / wall;
        let asked = rate * crowd.shape.publishers() as f64;
        Ok(Window {
            rate,
            wall,
            sent,
            fwd_pps: recv as f64 / wall,
            loss: if expected > 0.0 {
                (1.0 - recv as f64 / expected).max(0.0)
            } else {
                0.0
            },
            srv_cores,
            bot_cores,
            srv_wait,
            lat: Latency::from_ns(&mut lat),
            srv_drops: b.srv_drops.saturating_sub(a.srv_drops),
            bot_drops: b.bot_drops.saturating_sub(a.bot_drops),
            mean_dgram: if dgrams > 0 {
                (b.bytes - a.bytes) as f64 / dgrams as f64
            } else {
                f64::NAN
            },
            lagged: b.lagged - a.lagged,
            late: b.late - a.late,
            corrupt: b.corrupt - a.corrupt,
            input_errors: b.input_errors - a.input_errors,
            offered_ok: asked <= 0.0 || offered >= 0.95 * asked,
        })
    }

    async fn disperse(&self, crowd: Crowd) -> anyhow::Result<()> {
        crowd.stop_tx.send_replace(true);
        let deadline = Instant::now() + Duration::from_secs(10);
        for m in crowd.members {
            let left = deadline.saturating_duration_since(Instant::now());
            let task = m.task;
            let abort = task.abort_handle();
            if tokio::time::timeout(left, task).await.is_err() {
                abort.abort();
            }
        }
        let _ = self
            .auth(
                "/auth/room/endRoom",
                format!(r#"{{"room_id":"{}"}}"#, crowd.room),
            )
            .await;
        // Let the server settle before the next scenario.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    }

    async fn ceiling(&self, size: usize) -> anyhow::Result<Ceiling> {
        let dur = Duration::from_secs_f64(self.opts.ceiling_secs);
        tokio::task::spawn_blocking(move || ceiling::run(size, dur))
            .await
            .context("ceiling thread")?
    }

    /// Memory of idle participants: `idle` join in `idle_steps` steps; RSS of the server after
    /// each.
    pub(crate) async fn idle_memory(&mut self) -> anyhow::Result<IdleResult> {
        let total = self.opts.idle;
        let steps = self.opts.idle_steps.max(1);
        let per = (total / steps).max(1);
        say(format!(
            "idle memory: {total} participants in {steps} steps"
        ));
        let mut crowd = self.gather(Shape::Idle(0)).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let base = self.rss();
        let mut res = IdleResult {
            steps: vec![(0, base)],
            per_participant: Vec::new(),
        };
        let rate_rx = crowd.rate_tx.subscribe();
        let stop_rx = crowd.stop_tx.subscribe();
        for s in 0..steps {
            let specs: Vec<(Spec, u64, &Handle)> = (0..per)
                .map(|i| {
                    let id = format!("idle-{}", s * per + i);
                    self.member(&crowd.room, id, None, false, 0, &self.lanes.bots)
                })
                .collect();
            self.add_members(&mut crowd, specs, &rate_rx, &stop_rx)
                .await?;
            // Let renegotiations and first RTCP/SCTP exchanges settle.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let rss = self.rss();
            let (k0, r0) = res.steps.last().copied().unwrap_or((0, base));
            let k = crowd.members.len() as u64;
            res.per_participant
                .push((rss as f64 - r0 as f64) / (k - k0) as f64);
            res.steps.push((k, rss));
            say(format!(
                "  {k} idle: RSS {:.1} MiB",
                rss as f64 / (1 << 20) as f64
            ));
        }
        self.disperse(crowd).await?;
        Ok(res)
    }

    /// One scenario: fixed-rate rounds, peak search, peak rounds side by side with the
    /// ceiling, half-peak rounds.
    pub(crate) async fn scenario(&mut self, shape: Shape) -> anyhow::Result<ScenarioResult> {
        let o = self.opts;
        say(format!("{}: joining", shape.name()));
        let crowd = self.gather(shape).await?;
        let warm = Duration::from_millis(o.warmup_ms);
        let phase = Duration::from_secs_f64(o.phase_secs);
        let mut res = ScenarioResult {
            shape,
            fixed: Vec::new(),
            ramp: Vec::new(),
            peak_rate: 0.0,
            peak: Vec::new(),
            ceilings: Vec::new(),
            over: Vec::new(),
            half: Vec::new(),
            hops: Vec::new(),
        };
        for _ in 0..o.rounds {
            let w = self.measure(&crowd, o.base_rate, warm, phase).await?;
            say(format!(
                "  fixed {:.0} pkt/s/pub: {:.0} fwd/s, server {:.2} cores, loss {:.2}%",
                o.base_rate,
                w.fwd_pps,
                w.srv_cores,
                w.loss * 100.0
            ));
            res.fixed.push(w);
        }
        // Peak search: geometric steps until loss or the publishers cannot keep up. A step
        // passes if one of RAMP_TRIES windows does: the machine is shared, and a neighbour
        // holding both cores for a few milliseconds overflows the server's socket buffer.
        let fan = shape.fan() as f64;
        let max_rate = (o.max_fwd / fan).max(o.base_rate);
        let mut rate = (o.ramp_start_fwd / fan).max(o.base_rate).min(max_rate);
        let ramp = Duration::from_secs_f64(o.ramp_secs);
        let ramp_warm = Duration::from_millis(o.warmup_ms.min(300));
        let mut best: Option<f64> = None;
        for _ in 0..40 {
            let mut w = self.measure(&crowd, rate, ramp_warm, ramp).await?;
            let mut ok = w.passes(o.max_loss);
            for _ in 1..RAMP_TRIES {
                if ok {
                    break;
                }
                res.ramp.push((w, false));
                w = self.measure(&crowd, rate, ramp_warm, ramp).await?;
                ok = w.passes(o.max_loss);
            }
            say(format!(
                "  ramp {rate:.0} pkt/s/pub: {:.0} fwd/s, server {:.2} cores, bots {:.2} cores, loss {:.2}%{}",
                w.fwd_pps,
                w.srv_cores,
                w.bot_cores,
                w.loss * 100.0,
                if ok { "" } else { "  ✗" }
            ));
            res.ramp.push((w, ok));
            if ok {
                best = Some(rate);
                if rate >= max_rate {
                    break;
                }
                rate = (rate * o.ramp_step).min(max_rate);
            } else if best.is_some() || rate <= o.base_rate / 4.0 {
                break;
            } else {
                rate /= 2.0;
            }
        }
        let Some(peak) = best else {
            bail!(
                "{}: no rate down to {:.0} pkt/s/publisher passed (loss ≤ {:.1}%)",
                shape.name(),
                o.base_rate / 4.0,
                o.max_loss * 100.0
            );
        };
        res.peak_rate = peak;
        let size = median(&res.fixed.iter().map(|w| w.mean_dgram).collect::<Vec<_>>());
        let size = if size.is_finite() {
            size.round() as usize
        } else {
            o.payload + 50
        };
        for _ in 0..o.rounds {
            // The ceiling with the bots quiet, then the SFU at its peak: side by side.
            crowd.rate_tx.send_replace(0.0);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let c = self.ceiling(size).await?;
            let w = self.measure(&crowd, peak, warm, phase).await?;
            say(format!(
                "  peak {peak:.0} pkt/s/pub: {:.0} fwd/s, {:.0}/core (ceiling {:.0}/core), loss {:.2}%",
                w.fwd_pps,
                w.per_core(),
                c.per_core(),
                w.loss * 100.0
            ));
            res.ceilings.push(c);
            res.peak.push(w);
        }
        let over = (peak * 2.0).min(max_rate);
        if over > peak {
            for _ in 0..o.rounds {
                let w = self.measure(&crowd, over, warm, phase).await?;
                say(format!(
                    "  overload {over:.0} pkt/s/pub: {:.0} fwd/s, {:.0}/core, server {:.2} cores, loss {:.2}%",
                    w.fwd_pps,
                    w.per_core(),
                    w.srv_cores,
                    w.loss * 100.0
                ));
                res.over.push(w);
            }
        }
        for _ in 0..o.rounds {
            // The machine's one-hop latency at the same forwarded rate, then the SFU path.
            crowd.rate_tx.send_replace(0.0);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let fwd = peak / 2.0 * shape.fan() as f64;
            let dur = Duration::from_secs_f64(o.ceiling_secs);
            let mut hop = tokio::task::spawn_blocking(move || ceiling::hop_latency(size, fwd, dur))
                .await
                .context("hop latency thread")??;
            let hop = Latency::from_ns(&mut hop);
            let w = self.measure(&crowd, peak / 2.0, warm, phase).await?;
            say(format!(
                "  half {:.0} pkt/s/pub: {:.0} fwd/s, p50 {:.0} µs, p99 {:.0} µs (UDP hop p99 {:.0} µs), loss {:.2}%, server waited {:.0} ms/s",
                peak / 2.0,
                w.fwd_pps,
                w.lat.p50,
                w.lat.p99,
                hop.p99,
                w.loss * 100.0,
                w.srv_wait * 1000.0
            ));
            res.hops.push(hop);
            res.half.push(w);
        }
        self.disperse(crowd).await?;
        Ok(res)
    }
}
