//! A bot: one LiveKit participant on protocol 17, as the SDKs and the SFU testkit
//! (`crates/sfu/tests/common`) behave — a WebSocket to `/rtc` with binary protobuf frames, and
//! two str0m peer connections (RTP mode) on real UDP sockets on 127.0.0.1.
//!
//! - Subscriber PC: answers each offer the server sends (the server keeps one in flight).
//! - Publisher PC (when publishing): `add_track`, then on `track_published` an offer with one
//!   video m-line whose msid names the track's cid; the server's answer completes it. No
//!   trickle: the server is ICE-lite and learns the bot's address as peer-reflexive.
//! - Media: a publisher writes RTP at the scenario's rate (packets/s, read from a watch
//!   channel), payloads from [`crate::payload`] stamped with the send time.
//! - Receiving, two kinds:
//!   - a *probe* feeds everything to str0m, which decrypts it; each payload is checked (bytes,
//!     order) and its latency recorded: socket receive time minus the stamped send time, one
//!     clock (the same process);
//!   - a *sink* counts SRTP packets from their clear RTP header (SSRC) without decrypting and
//!     gives str0m everything else (STUN, DTLS, SCTP, RTCP) to keep the session alive. Sinks
//!     keep the bots' CPU low so that the 2-core machine has room for the server.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use enclave_sfu::proto::{
    self as lk, signal_request::Message as Req, signal_response::Message as Resp,
};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::payload::{self, Stamp};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant send times are counted from (one per process).
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

fn ns_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64
}

/// Latency samples one probe keeps per window at most.
const MAX_LATENCY_SAMPLES: usize = 4_000_000;
/// Datagrams read per wake-up before the bot looks at its other inputs.
const RECV_BATCH: usize = 256;
/// Packets a publisher writes per wake-up at most; a larger backlog is skipped (and counted).
const MAX_BURST: u64 = 512;
/// Both peer connections get a timeout at least this often.
const FORCED_TICK: Duration = Duration::from_millis(50);
/// Receive buffer asked for on every bot socket.
const BOT_RCVBUF: usize = 4 << 20;

/// How a bot receives media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    Probe,
    Sink,
}

/// Who a bot is.
#[derive(Debug, Clone)]
pub struct Spec {
    pub identity: String,
    /// `ws://…/rtc?access_token=…`
    pub url: String,
    /// Publishes one video track, with this id in its payloads.
    pub publisher: Option<u64>,
    pub recv: Recv,
    pub payload: usize,
}

/// Counters a bot keeps for the orchestrator (monotonic; windows are differences).
#[derive(Debug, Default)]
pub struct Stats {
    /// RTP packets written by the publisher.
    pub sent: AtomicU64,
    /// Packets the publisher's schedule skipped because it fell behind by more than a burst.
    pub lagged: AtomicU64,
    /// Packets received: every SRTP datagram for a sink; for a probe, each payload that
    /// verified and came in order.
    pub recv: AtomicU64,
    /// SRTP datagrams and their bytes (for the mean forwarded datagram size).
    pub rtp_dgrams: AtomicU64,
    pub rtp_bytes: AtomicU64,
    /// Probe: payloads that came again or out of order (not counted in `recv`).
    pub late: AtomicU64,
    /// Probe: payloads whose bytes did not verify.
    pub corrupt: AtomicU64,
    /// Distinct media streams seen (SSRCs for a sink, publishers for a probe).
    pub streams: AtomicU64,
    pub sub_connected: AtomicBool,
    pub pub_ready: AtomicBool,
    /// Inputs str0m refused.
    pub input_errors: AtomicU64,
    /// Diagnostics: subscriber offers answered, datagrams in and out on the subscriber socket.
    pub offers: AtomicU64,
    pub sub_in: AtomicU64,
    pub sub_out: AtomicU64,
    pub ports: Mutex<Vec<u16>>,
    /// Probe: latency samples (ns) since the orchestrator last took them.
    pub latencies: Mutex<Vec<u32>>,
    pub error: Mutex<Option<String>>,
    pub done: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stats {
    pub fn take_latencies(&self) -> Vec<u32> {
        std::mem::take(&mut *lock(&self.latencies))
    }

    pub fn clear_latencies(&self) {
        lock(&self.latencies).clear();
    }

    pub fn ports(&self) -> Vec<u16> {
        lock(&self.ports).clone()
    }

    pub fn error(&self) -> Option<String> {
        lock(&self.error).clone()
    }
}

/// Runs a bot until `stop` turns true (or its sender is dropped), then leaves. Failures end up
/// in `stats.error`.
pub async fn run(
    spec: Spec,
    rate: watch::Receiver<f64>,
    stop: watch::Receiver<bool>,
    stats: Arc<Stats>,
) {
    if let Err(e) = run_inner(spec, rate, stop, &stats).await {
        *lock(&stats.error) = Some(format!("{e:#}"));
    }
    stats.done.store(true, Ordering::Release);
}

async fn udp() -> anyhow::Result<(UdpSocket, SocketAddr)> {
    let s = crate::ports::udp_with_buffer(BOT_RCVBUF)?;
    s.set_nonblocking(true)?;
    let s = UdpSocket::from_std(s)?;
    let a = s.local_addr()?;
    Ok((s, a))
}

fn new_rtc(now: Instant, addr: SocketAddr) -> anyhow::Result<Rtc> {
    let mut r = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(now);
    r.add_local_candidate(Candidate::host(addr, Protocol::Udp)?);
    Ok(r)
}

struct Sub {
    rtc: Rtc,
    sock: UdpSocket,
    addr: SocketAddr,
    timeout: Instant,
    ssrcs: HashSet<u32>,
    /// Probe: highest sequence seen per publisher.
    last_seq: HashMap<u64, u64>,
}

struct Pub {
    rtc: Rtc,
    sock: UdpSocket,
    addr: SocketAddr,
    idx: u64,
    cid: String,
    mid: Option<Mid>,
    pending: Option<(SdpPendingOffer, u32)>,
    offer_id: u32,
    pt: Option<Pt>,
    connected: bool,
    timeout: Instant,
    seq: u64,
    /// Schedule: packet `k` since `start` is due at `start + k / rate`.
    start: Instant,
    scheduled: u64,
}

impl Pub {
    fn ready(&self) -> bool {
        self.connected && self.mid.is_some() && self.pt.is_some()
    }

    fn next_due(&self, rate: f64) -> Instant {
        self.start + Duration::from_secs_f64((self.scheduled + 1) as f64 / rate)
    }
}

struct Bot {
    spec: Spec,
    stats: Arc<Stats>,
    sub: Sub,
    publ: Option<Pub>,
    out: Vec<Req>,
    rate: f64,
    collecting: bool,
}

async fn run_inner(
    spec: Spec,
    mut rate_rx: watch::Receiver<f64>,
    mut stop: watch::Receiver<bool>,
    stats: &Arc<Stats>,
) -> anyhow::Result<()> {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::connect_async(spec.url.as_str()),
    )
    .await
    .context("signalling connect timed out")?
    .context("signalling connect")?;
    let (mut ws_tx, mut ws_rx) = ws.split();
    let now = Instant::now();
    let (sock, addr) = udp().await?;
    let sub = Sub {
        rtc: new_rtc(now, addr)?,
        sock,
        addr,
        timeout: now,
        ssrcs: HashSet::new(),
        last_seq: HashMap::new(),
    };
    let mut ports = vec![addr.port()];
    let publ = match spec.publisher {
        Some(idx) => {
            let (sock, addr) = udp().await?;
            ports.push(addr.port());
            Some(Pub {
                rtc: new_rtc(now, addr)?,
                sock,
                addr,
                idx,
                cid: format!("{}-camera", spec.identity),
                mid: None,
                pending: None,
                offer_id: 0,
                pt: None,
                connected: false,
                timeout: now,
                seq: 0,
                start: now,
                scheduled: 0,
            })
        }
        None => None,
    };
    *lock(&stats.ports) = ports;
    let rate = *rate_rx.borrow_and_update();
    let mut bot = Bot {
        collecting: spec.recv == Recv::Probe,
        spec,
        stats: stats.clone(),
        sub,
        publ,
        out: Vec::new(),
        rate,
    };
    let mut buf = vec![0u8; 2048];
    let mut ping_at = now + Duration::from_secs(5);
    let mut last_tick = now;
    loop {
        for req in bot.out.drain(..) {
            let bytes = lk::SignalRequest { message: Some(req) }.encode_to_vec();
            ws_tx
                .send(Ws::Binary(bytes.into()))
                .await
                .context("signalling send")?;
        }
        let mut deadline = bot.sub.timeout.min(ping_at).min(last_tick + FORCED_TICK);
        if let Some(p) = &bot.publ {
            deadline = deadline.min(p.timeout);
            if p.ready() && bot.rate > 0.0 {
                deadline = deadline.min(p.next_due(bot.rate));
            }
        }
        let pub_readable = async {
            match &bot.publ {
                Some(p) => p.sock.readable().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
            r = rate_rx.changed() => {
                if r.is_err() {
                    break;
                }
                bot.rate = *rate_rx.borrow_and_update();
                if let Some(p) = &mut bot.publ {
                    p.start = Instant::now();
                    p.scheduled = 0;
                }
            }
            msg = ws_rx.next() => match msg {
                Some(Ok(Ws::Binary(b))) => {
                    let r = lk::SignalResponse::decode(b.as_ref()).context("signalling frame")?;
                    if let Some(m) = r.message {
                        bot.on_signal(m)?;
                    }
                }
                Some(Ok(Ws::Close(_))) | None => bail!("signalling closed by the server"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("signalling receive"),
            },
            r = bot.sub.sock.readable() => {
                r?;
                for _ in 0..RECV_BATCH {
                    match bot.sub.sock.try_recv_from(&mut buf) {
                        Ok((n, src)) => bot.on_sub_datagram(Instant::now(), src, &buf[..n])?,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e).context("subscriber socket"),
                    }
                }
            }
            r = pub_readable => {
                r?;
                for _ in 0..RECV_BATCH {
                    let Some(p) = &mut bot.publ else { break };
                    match p.sock.try_recv_from(&mut buf) {
                        Ok((n, src)) => bot.on_pub_datagram(Instant::now(), src, n, &buf)?,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e).context("publisher socket"),
                    }
                }
            }
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                let now = Instant::now();
                // str0m caches its timeout and an SDP change does not always refresh it, so
                // both PCs also get a timeout at least every FORCED_TICK (the testkit's clients
                // get one every 5 ms of virtual time).
                let forced = now >= last_tick + FORCED_TICK;
                if forced {
                    last_tick = now;
                }
                if forced || now >= bot.sub.timeout {
                    bot.sub.rtc.handle_input(Input::Timeout(now))?;
                    bot.drain_sub()?;
                }
                if let Some(p) = &mut bot.publ {
                    if forced || now >= p.timeout {
                        p.rtc.handle_input(Input::Timeout(now))?;
                        bot.drain_pub()?;
                    }
                }
                bot.send_due()?;
                if now >= ping_at {
                    ping_at = now + Duration::from_secs(5);
                    bot.out.push(Req::Ping(unix_ms()));
                }
            }
        }
    }
    // Leave politely, bounded.
    let leave = lk::SignalRequest {
        message: Some(Req::Leave(lk::LeaveRequest {
            reason: lk::DisconnectReason::ClientInitiated as i32,
            ..Default::default()
        })),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = ws_tx.send(Ws::Binary(leave.encode_to_vec().into())).await;
        let _ = ws_tx.close().await;
    })
    .await;
    Ok(())
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Bot {
    /// Acts on a signalling message; a leave request is an error (bots never expect one).
    fn on_signal(&mut self, msg: Resp) -> anyhow::Result<()> {
        match msg {
            Resp::Join(_) => {
                if let Some(p) = &self.publ {
                    self.out.push(Req::AddTrack(lk::AddTrackRequest {
                        cid: p.cid.clone(),
                        name: "camera".into(),
                        r#type: lk::TrackType::Video as i32,
                        width: 1280,
                        height: 720,
                        source: lk::TrackSource::Camera as i32,
                        ..Default::default()
                    }));
                }
            }
            Resp::TrackPublished(t) => {
                if let Some(p) = &mut self.publ {
                    if t.cid == p.cid && p.mid.is_none() {
                        let mut api = p.rtc.sdp_api();
                        let mid = api.add_media(
                            MediaKind::Video,
                            Direction::SendOnly,
                            Some(format!("{}-stream", self.spec.identity)),
                            Some(p.cid.clone()),
                            None,
                        );
                        let (offer, pending) = api.apply().context("publisher offer")?;
                        p.offer_id += 1;
                        p.pending = Some((pending, p.offer_id));
                        p.mid = Some(mid);
                        self.out.push(Req::Offer(lk::SessionDescription {
                            r#type: "offer".into(),
                            sdp: offer.to_sdp_string(),
                            id: p.offer_id,
                            ..Default::default()
                        }));
                        self.drain_pub()?;
                    }
                }
            }
            Resp::Answer(sd) => {
                if let Some(p) = &mut self.publ {
                    if let Some((pending, id)) = p.pending.take() {
                        if id != sd.id {
                            bail!("publisher answer {} for offer {id}", sd.id);
                        }
                        let answer =
                            SdpAnswer::from_sdp_string(&sd.sdp).context("publisher answer")?;
                        p.rtc
                            .sdp_api()
                            .accept_answer(pending, answer)
                            .context("publisher answer")?;
                        p.pt = p
                            .rtc
                            .codec_config()
                            .params()
                            .iter()
                            .find(|x| x.spec().codec == Codec::Vp8)
                            .map(|x| x.pt());
                        self.drain_pub()?;
                    }
                }
            }
            Resp::Offer(sd) => {
                let offer = SdpOffer::from_sdp_string(&sd.sdp).context("subscriber offer")?;
                let answer = self
                    .sub
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .context("subscriber offer")?;
                self.stats.offers.fetch_add(1, Ordering::Relaxed);
                self.out.push(Req::Answer(lk::SessionDescription {
                    r#type: "answer".into(),
                    sdp: answer.to_sdp_string(),
                    id: sd.id,
                    ..Default::default()
                }));
                self.drain_sub()?;
            }
            Resp::Leave(l) => {
                bail!(
                    "the server asked us to leave (reason {:?}, action {:?})",
                    lk::DisconnectReason::try_from(l.reason),
                    lk::leave_request::Action::try_from(l.action)
                );
            }
            _ => {}
        }
        Ok(())
    }

    fn on_sub_datagram(&mut self, now: Instant, src: SocketAddr, d: &[u8]) -> anyhow::Result<()> {
        self.stats.sub_in.fetch_add(1, Ordering::Relaxed);
        if let Some(ssrc) = payload::rtp_ssrc(d) {
            self.stats.rtp_dgrams.fetch_add(1, Ordering::Relaxed);
            self.stats
                .rtp_bytes
                .fetch_add(d.len() as u64, Ordering::Relaxed);
            if self.spec.recv == Recv::Sink {
                self.stats.recv.fetch_add(1, Ordering::Relaxed);
                if self.sub.ssrcs.insert(ssrc) {
                    self.stats.streams.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
        }
        let Ok(r) = Receive::new(Protocol::Udp, src, self.sub.addr, d) else {
            return Ok(());
        };
        if self.sub.rtc.handle_input(Input::Receive(now, r)).is_err() {
            self.stats.input_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.drain_sub()
    }

    fn on_pub_datagram(
        &mut self,
        now: Instant,
        src: SocketAddr,
        n: usize,
        buf: &[u8],
    ) -> anyhow::Result<()> {
        let Some(p) = &mut self.publ else {
            return Ok(());
        };
        let Ok(r) = Receive::new(Protocol::Udp, src, p.addr, &buf[..n]) else {
            return Ok(());
        };
        if p.rtc.handle_input(Input::Receive(now, r)).is_err() {
            self.stats.input_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.drain_pub()
    }

    fn drain_sub(&mut self) -> anyhow::Result<()> {
        let s = &mut self.sub;
        loop {
            match s.rtc.poll_output().context("subscriber PC")? {
                Output::Timeout(t) => {
                    s.timeout = t;
                    return Ok(());
                }
                Output::Transmit(t) => {
                    self.stats.sub_out.fetch_add(1, Ordering::Relaxed);
                    let _ = s.sock.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => {
                    self.stats.sub_connected.store(true, Ordering::Release);
                }
                Output::Event(Event::RtpPacket(p)) if self.spec.recv == Recv::Probe => {
                    let st = &self.stats;
                    match payload::decode(&p.payload) {
                        Ok(stamp) => {
                            let last = s.last_seq.entry(stamp.publisher).or_insert_with(|| {
                                st.streams.fetch_add(1, Ordering::Relaxed);
                                0
                            });
                            if stamp.seq > *last {
                                *last = stamp.seq;
                                st.recv.fetch_add(1, Ordering::Relaxed);
                                if self.collecting {
                                    let lat = ns_since_epoch(p.timestamp)
                                        .saturating_sub(stamp.send_ns)
                                        .min(u64::from(u32::MAX))
                                        as u32;
                                    let mut v = lock(&st.latencies);
                                    if v.len() < MAX_LATENCY_SAMPLES {
                                        v.push(lat);
                                    }
                                }
                            } else {
                                st.late.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            st.corrupt.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Output::Event(_) => {}
            }
        }
    }

    fn drain_pub(&mut self) -> anyhow::Result<()> {
        let Some(p) = &mut self.publ else {
            return Ok(());
        };
        loop {
            match p.rtc.poll_output().context("publisher PC")? {
                Output::Timeout(t) => {
                    p.timeout = t;
                    break;
                }
                Output::Transmit(t) => {
                    let _ = p.sock.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => p.connected = true,
                Output::Event(_) => {}
            }
        }
        if p.ready() && !self.stats.pub_ready.load(Ordering::Relaxed) {
            self.stats.pub_ready.store(true, Ordering::Release);
            p.start = Instant::now();
            p.scheduled = 0;
        }
        Ok(())
    }

    /// Writes the packets that are due by the publisher's schedule.
    fn send_due(&mut self) -> anyhow::Result<()> {
        let rate = self.rate;
        let size = self.spec.payload;
        let Some(p) = &mut self.publ else {
            return Ok(());
        };
        if !p.ready() || rate <= 0.0 {
            return Ok(());
        }
        let (Some(mid), Some(pt)) = (p.mid, p.pt) else {
            return Ok(());
        };
        let due = (p.start.elapsed().as_secs_f64() * rate) as u64;
        let mut burst = 0;
        while p.scheduled < due && burst < MAX_BURST {
            let t = Instant::now();
            p.seq += 1;
            let send_ns = ns_since_epoch(t);
            let body = payload::encode(
                size,
                Stamp {
                    publisher: p.idx,
                    seq: p.seq,
                    send_ns,
                },
            );
            // 90 kHz video clock from the send time.
            let time = (send_ns / 100_000 * 9) as u32;
            {
                let mut api = p.rtc.direct_api();
                let tx = api
                    .stream_tx_by_mid(mid, None)
                    .context("publisher send stream")?;
                tx.write_rtp(
                    RtpWrite::new(pt, p.seq.into(), time, t, body)
                        .marker(p.seq % 4 == 0)
                        .nackable(true),
                );
            }
            // str0m releases written packets on its next timeout.
            p.rtc.handle_input(Input::Timeout(t))?;
            loop {
                match p.rtc.poll_output().context("publisher PC")? {
                    Output::Timeout(to) => {
                        p.timeout = to;
                        break;
                    }
                    Output::Transmit(x) => {
                        let _ = p.sock.try_send_to(&x.contents, x.destination);
                    }
                    Output::Event(_) => {}
                }
            }
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
            p.scheduled += 1;
            burst += 1;
        }
        if p.scheduled < due {
            self.stats
                .lagged
                .fetch_add(due - p.scheduled, Ordering::Relaxed);
            p.scheduled = due;
        }
        Ok(())
    }
}
