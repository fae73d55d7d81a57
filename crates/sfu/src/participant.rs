//! One participant's two peer connections and everything negotiated on them: building the
//! `Rtc`s, the publisher's offers and the subscriber's offers and answers, trickled
//! candidates, draining each PC after input, writing forwarded media and data to the
//! subscriber PC, and the per-subscriber layer choice.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid};
use str0m::net::Protocol;
use str0m::rtp::{RtpPacket, RtpWrite};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output as RtcOutput, Rtc};

use crate::alloc::allocate;
use crate::dd;
use crate::forward::Decision;
use crate::io::{ConnId, Event, JoinParams, LocalCandidate, Outbox, Output, Pc, RoomConfig};
use crate::io::{PublishPermission, Transmit, Transport};
use crate::io::{MAX_MEDIA_SECTIONS, MAX_TRACKS_PER_PARTICIPANT};
use crate::sdp::{self, mid_to_cid};
use crate::track::{DownState, DownTrack, Outgoing, PublishedTrack, Tracks};

/// How long a participant whose media connection dropped may take to come back.
pub(crate) const ICE_GRACE: Duration = Duration::from_secs(10);
/// How long a joined participant's media connection may take to come up at all. A client
/// whose ICE checks never arrive (a firewall, an address it cannot reach) is removed after
/// this rather than held as a ghost; LiveKit's clients give up on their own after 15 s too.
pub(crate) const CONNECT_GRACE: Duration = Duration::from_secs(15);
/// How long a participant whose signalling connection dropped without a leave may take to
/// resume it. LiveKit's clients retry a resume at 0, 0.3, 1.2, 2.7, 4.8 and 7 s, then every
/// 7 s; a client that is really gone usually also stops answering ICE and is removed by
/// `ICE_GRACE` first.
pub(crate) const SIGNAL_GRACE: Duration = Duration::from_secs(15);
/// Initial downlink estimate of a subscriber. str0m paces what a BWE-enabled peer connection
/// sends at 1.1 × the estimate and queues the rest (up to 2 s), so an estimate below what is
/// being forwarded adds delay; starting high keeps a good link unpaced while the estimator
/// learns, and a narrow one still shows within a second or two (tests/bandwidth.rs). At 5 Mbit/s
/// a 5 × 5 call of 2.4 Mbit/s single-layer tracks lost 23 % with a 80 ms p99 in the SFU benchmark (enclave-bench sfu); at
/// 30 Mbit/s, none and 0.7 ms (docs/benchmarks.md).
const BWE_INITIAL: Bitrate = Bitrate::mbps(30);
/// RFC 6464 level (−dBov) at or below which a packet counts as speech.
const SPEECH_LEVEL: i8 = 50;
/// How recently a participant must have spoken to be an active speaker.
const SPEECH_HOLD: Duration = Duration::from_secs(1);
/// Requests refused for a limit that a participant may send before it is removed: a client
/// that keeps asking past a limit is not a client we can serve.
const MAX_REFUSALS: u32 = 16;

/// When each peer connection next needs `handle_input(Timeout)`.
#[derive(Debug, Default, Clone, Copy)]
struct Timeouts {
    publisher: Option<Instant>,
    subscriber: Option<Instant>,
}

/// The data channels the room opens on the subscriber PC (LiveKit's `_reliable`, `_lossy`).
#[derive(Debug, Default, Clone, Copy)]
struct DataChannels {
    reliable: Option<ChannelId>,
    lossy: Option<ChannelId>,
}

/// Where the subscriber PC's offer/answer exchange stands. The room offers, the client
/// answers; one offer is in flight at a time.
enum Offer {
    /// Nothing offered yet: the first offer also opens the data channels.
    NotYet,
    /// The last offer was answered.
    Answered,
    /// An offer is out, waiting for its answer.
    InFlight {
        /// Its id; clients echo it in the answer.
        id: u32,
        pending: SdpPendingOffer,
        /// Its SDP, to send again on resume: the client may have missed it, or answered on
        /// the connection that dropped.
        sdp: String,
    },
}

/// The subscriber PC's negotiation: the exchange in progress and the changes waiting for the
/// next offer.
struct Negotiation {
    offer: Offer,
    /// The id of the last offer made.
    last_id: u32,
    /// Tracks were added or removed since the last offer.
    changed: bool,
    /// m-lines to stop in the next offer.
    stops: Vec<Mid>,
    /// The next offer restarts ICE (after a resume).
    ice_restart: bool,
}

/// What became of a subscriber answer.
pub(crate) enum AnswerOutcome {
    /// Applied; these video tracks' m-lines just opened, with the layer each starts on (they
    /// need a keyframe).
    Applied(Vec<(String, Option<Rid>)>),
    /// An answer to an offer that a later one replaced, or to none: ignored.
    Ignored,
    /// Unparsable or refused by the PC: the session makes no sense any more.
    Refused,
}

/// Why a participant's time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overdue {
    /// Its media connection never came up within `CONNECT_GRACE`.
    NeverConnected,
    /// Its media connection dropped and did not come back within `ICE_GRACE`.
    MediaLost,
    /// Its signalling dropped and was not resumed within `SIGNAL_GRACE`.
    SignalLost,
}

/// What one packet did for one subscriber.
pub(crate) struct Forwarded {
    /// The packet was written to the subscriber PC (it needs draining).
    pub(crate) written: bool,
    /// The forwarder switched layers at a frame boundary that may not be a keyframe: this
    /// layer needs one.
    pub(crate) switched_to: Option<Option<Rid>>,
}

pub(crate) struct Participant {
    pub(crate) info: lk::ParticipantInfo,
    pub(crate) params: JoinParams,
    pub(crate) publisher: Rtc,
    pub(crate) subscriber: Rtc,
    timeouts: Timeouts,
    /// mid → client track id, from the publisher's offers.
    pub_cids: HashMap<String, String>,
    /// Tracks announced with add_track, waiting for their m-line.
    pub(crate) pending_tracks: HashMap<String, lk::TrackInfo>,
    /// The publisher's data channels by id, with their labels.
    pub_channels: HashMap<ChannelId, String>,
    channels: DataChannels,
    negotiation: Negotiation,
    pub(crate) downtracks: HashMap<String, DownTrack>,
    down_by_mid: HashMap<Mid, String>,
    /// The subscriber PC connected at least once.
    pub(crate) active: bool,
    /// When it joined (its media connection must come up within `CONNECT_GRACE`).
    joined: Instant,
    ice_lost_since: Option<Instant>,
    last_loud: Option<Instant>,
    /// Worst recent packet loss (0..1) the publisher PC measured on incoming media.
    ingress_loss: f32,
    /// The subscriber PC's downlink estimate (TWCC), bit/s, while str0m can probe.
    bwe_estimate: Option<u64>,
    /// The signalling connection dropped without a leave at this instant; the participant
    /// stays (its media may still flow) until it resumes or `SIGNAL_GRACE` passes.
    pub(crate) signal_lost_since: Option<Instant>,
    /// Requests refused for a limit so far (see `MAX_REFUSALS`).
    refusals: u32,
}

/// Our ICE host candidate for `c`: UDP, or passive TCP (the client connects to us).
fn host_candidate(c: &LocalCandidate) -> Result<Candidate, String> {
    let candidate = match c.transport {
        Transport::Udp => Candidate::host(c.addr, Protocol::Udp),
        Transport::Tcp => Candidate::builder()
            .tcp()
            .host(c.addr)
            .tcptype(str0m::net::TcpType::Passive)
            .build(),
    };
    candidate.map_err(|e| e.to_string())
}

impl Participant {
    /// A participant that joins at `now` (`unix_ms`), with both peer connections built and
    /// our candidate added; nothing is negotiated yet.
    /// What it may publish now.
    pub(crate) fn permission(&self) -> PublishPermission {
        PublishPermission {
            can_publish: self.params.can_publish,
            can_publish_sources: self.params.can_publish_sources.clone(),
            can_publish_data: self.params.can_publish_data,
            denied_data_topics: self.params.denied_data_topics.clone(),
        }
    }

    /// Applies a new permission to its parameters and the info announced (a new version).
    pub(crate) fn set_permission(&mut self, perm: &PublishPermission) {
        // A hidden participant stays silent whatever a lock change says.
        let mut perm = perm.clone();
        if self.params.hidden {
            perm.can_publish = false;
            perm.can_publish_data = false;
        }
        let perm = &perm;
        self.params.can_publish = perm.can_publish;
        self.params.can_publish_sources = perm.can_publish_sources.clone();
        self.params.can_publish_data = perm.can_publish_data;
        self.params.denied_data_topics = perm.denied_data_topics.clone();
        if let Some(p) = self.info.permission.as_mut() {
            p.can_publish = perm.can_publish;
            p.can_publish_sources = perm.can_publish_sources.clone();
            p.can_publish_data = perm.can_publish_data;
        }
        self.pending_tracks.retain(|_, t| perm.allows(t.source));
        self.info.version += 1;
    }

    pub(crate) fn new(now: Instant, unix_ms: i64, cfg: &RoomConfig, params: JoinParams) -> Self {
        let info = lk::ParticipantInfo {
            sid: params.sid.clone(),
            identity: params.identity.clone(),
            state: lk::participant_info::State::Joining as i32,
            metadata: params.metadata.clone(),
            joined_at: unix_ms / 1000,
            joined_at_ms: unix_ms,
            name: params.name.clone(),
            version: 1,
            permission: Some(lk::ParticipantPermission {
                can_subscribe: params.can_subscribe,
                can_publish: params.can_publish,
                can_publish_sources: params.can_publish_sources.clone(),
                can_publish_data: params.can_publish_data,
                hidden: params.hidden,
                can_update_metadata: params.can_update_metadata,
                ..Default::default()
            }),
            client_protocol: params.client_protocol,
            ..Default::default()
        };
        let build = |bwe: Option<Bitrate>| {
            Rtc::builder()
                // Both PCs carry the Dependency Descriptor: the publisher's tells layer switches
                // where keyframes are (dd.rs), and subscribers get it forwarded. Id 12 is the
                // one Chromium offers; str0m follows the offer's ids anyway.
                .set_extension(
                    12,
                    str0m::rtp::Extension::with_serializer(dd::URI, dd::Serializer),
                )
                .enable_bwe(bwe)
                .set_ice_lite(true)
                .set_rtp_mode(true)
                .clear_codecs()
                .enable_opus(true, false)
                .enable_vp8(true)
                .enable_h264(true)
                .enable_vp9(true)
                .enable_av1(true)
                .set_stats_interval(Some(Duration::from_secs(1)))
                .build(now)
        };
        let mut publisher = build(None);
        // The subscriber PC estimates its downlink from TWCC feedback; layer allocation uses it
        // (see BWE_INITIAL for why it starts high).
        let mut subscriber = build(cfg.bandwidth_estimation.then_some(BWE_INITIAL));
        for rtc in [&mut publisher, &mut subscriber] {
            for c in &cfg.candidates {
                match host_candidate(c) {
                    Ok(candidate) => {
                        rtc.add_local_candidate(candidate);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, addr = %c.addr, "invalid address for ICE")
                    }
                }
            }
        }
        Self {
            info,
            params,
            publisher,
            subscriber,
            timeouts: Timeouts::default(),
            pub_cids: HashMap::new(),
            pending_tracks: HashMap::new(),
            pub_channels: HashMap::new(),
            channels: DataChannels::default(),
            negotiation: Negotiation {
                offer: Offer::NotYet,
                last_id: 0,
                changed: true,
                stops: Vec::new(),
                ice_restart: false,
            },
            downtracks: HashMap::new(),
            down_by_mid: HashMap::new(),
            active: false,
            joined: now,
            ice_lost_since: None,
            last_loud: None,
            ingress_loss: 0.0,
            bwe_estimate: None,
            signal_lost_since: None,
            refusals: 0,
        }
    }

    pub(crate) fn rtc(&mut self, pc: Pc) -> &mut Rtc {
        match pc {
            Pc::Publisher => &mut self.publisher,
            Pc::Subscriber => &mut self.subscriber,
        }
    }

    /// Whether this datagram belongs to one of our PCs, and which.
    pub(crate) fn accepts(&self, input: &Input) -> Option<Pc> {
        if self.publisher.accepts(input) {
            Some(Pc::Publisher)
        } else if self.subscriber.accepts(input) {
            Some(Pc::Subscriber)
        } else {
            None
        }
    }

    /// Whether this datagram belongs to the PC `pc`.
    pub(crate) fn accepts_on(&self, pc: Pc, input: &Input) -> bool {
        match pc {
            Pc::Publisher => self.publisher.accepts(input),
            Pc::Subscriber => self.subscriber.accepts(input),
        }
    }

    /// Gives `input` to a PC. `Err` means str0m panicked: the participant must go.
    pub(crate) fn handle_input(&mut self, pc: Pc, input: Input) -> Result<(), PcFailed> {
        let rtc = self.rtc(pc);
        match catch_unwind(AssertUnwindSafe(|| rtc.handle_input(input))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, ?pc, "input refused");
                Ok(())
            }
            Err(_) => Err(PcFailed),
        }
    }

    /// The PCs whose timeout is due at `now`.
    pub(crate) fn due(&self, now: Instant) -> impl Iterator<Item = Pc> {
        let Timeouts {
            publisher,
            subscriber,
        } = self.timeouts;
        [(Pc::Publisher, publisher), (Pc::Subscriber, subscriber)]
            .into_iter()
            .filter(move |(_, t)| t.is_none_or(|t| t <= now))
            .map(|(pc, _)| pc)
    }

    /// The earliest instant something of this participant is due: a PC's timer or the end of
    /// a grace period.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [
            self.timeouts.publisher,
            self.timeouts.subscriber,
            self.ice_lost_since.map(|l| l + ICE_GRACE),
            self.signal_lost_since.map(|l| l + SIGNAL_GRACE),
            (!self.active).then_some(self.joined + CONNECT_GRACE),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a grace period of this participant ran out by `now`; a media failure comes
    /// before lost signalling.
    pub(crate) fn overdue(&self, now: Instant) -> Option<Overdue> {
        if !self.active && now >= self.joined + CONNECT_GRACE {
            Some(Overdue::NeverConnected)
        } else if self.ice_lost_since.is_some_and(|t| now >= t + ICE_GRACE) {
            Some(Overdue::MediaLost)
        } else if self
            .signal_lost_since
            .is_some_and(|t| now >= t + SIGNAL_GRACE)
        {
            Some(Overdue::SignalLost)
        } else {
            None
        }
    }

    /// Drains one PC: datagrams go to the outbox, the timer is kept, and the events are
    /// returned for the room to act on. `Err` means the PC failed or panicked.
    pub(crate) fn drain(
        &mut self,
        conn: ConnId,
        pc: Pc,
        now: Instant,
        out: &mut Outbox,
    ) -> (Vec<RtcEvent>, Result<(), PcFailed>) {
        let mut events = Vec::new();
        let mut result = Ok(());
        let mut timeout = None;
        let rtc = self.rtc(pc);
        // str0m sends what was just written (forwarded RTP, data) on its next timeout; giving
        // it "now" sends it in this drain instead of after the runtime's next timer tick (a
        // millisecond of added latency per hop).
        if catch_unwind(AssertUnwindSafe(|| rtc.handle_input(Input::Timeout(now)))).is_err() {
            result = Err(PcFailed);
        }
        loop {
            match catch_unwind(AssertUnwindSafe(|| rtc.poll_output())) {
                Ok(Ok(RtcOutput::Timeout(t))) => {
                    timeout = Some(t);
                    break;
                }
                Ok(Ok(RtcOutput::Transmit(t))) => {
                    // We only ever offer UDP and passive TCP candidates.
                    let Some(transport) = Transport::from_protocol(t.proto) else {
                        continue;
                    };
                    out.push(Output::Transmit(Transmit {
                        transport,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.to_vec(),
                    }))
                }
                Ok(Ok(RtcOutput::Event(e))) => events.push(e),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, ?conn, ?pc, "peer connection failed");
                    result = Err(PcFailed);
                    break;
                }
                Err(_) => {
                    tracing::error!(?conn, ?pc, "peer connection panicked");
                    result = Err(PcFailed);
                    break;
                }
            }
        }
        if let Some(t) = timeout {
            match pc {
                Pc::Publisher => self.timeouts.publisher = Some(t),
                Pc::Subscriber => self.timeouts.subscriber = Some(t),
            }
        }
        (events, result)
    }

    /// Notes what a PC event says of this participant alone: its data channels, its downlink
    /// estimate, its uplink loss, whether its media connection holds.
    pub(crate) fn on_pc_event(&mut self, pc: Pc, e: RtcEvent, now: Instant) {
        match (pc, e) {
            (Pc::Publisher, RtcEvent::ChannelOpen(id, label)) => {
                self.pub_channels.insert(id, label);
            }
            (Pc::Subscriber, RtcEvent::ChannelOpen(id, label)) => match label.as_str() {
                "_reliable" => self.channels.reliable = Some(id),
                "_lossy" => self.channels.lossy = Some(id),
                _ => {}
            },
            (
                Pc::Subscriber,
                RtcEvent::EgressBitrateEstimate(BweKind::Twcc {
                    estimate,
                    can_probe,
                }),
            ) => {
                // Without probing (no TWCC negotiated) the number means nothing: allocate by
                // requested quality alone.
                self.bwe_estimate = can_probe.then(|| estimate.as_u64());
            }
            (Pc::Publisher, RtcEvent::MediaIngressStats(st)) => {
                if let Some(loss) = st.loss {
                    // A moving average, so one bad second does not flip the indicator.
                    self.ingress_loss = 0.7 * self.ingress_loss + 0.3 * loss.clamp(0.0, 1.0);
                }
            }
            (_, RtcEvent::IceConnectionStateChange(state)) => match state {
                IceConnectionState::Disconnected => {
                    self.ice_lost_since.get_or_insert(now);
                }
                IceConnectionState::Connected | IceConnectionState::Completed => {
                    self.ice_lost_since = None
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// A request was refused for a limit. Returns whether the participant has now been refused
    /// too often and must go.
    pub(crate) fn note_refusal(&mut self) -> bool {
        self.refusals += 1;
        self.refusals > MAX_REFUSALS
    }

    /// Tracks this participant holds (announced or published), given how many it publishes.
    pub(crate) fn may_announce(&self, published: usize) -> Result<(), usize> {
        let held = self.pending_tracks.len() + published;
        if held >= MAX_TRACKS_PER_PARTICIPANT {
            Err(held)
        } else {
            Ok(())
        }
    }

    // ----------------------------------------------------------------------------------
    // Publisher
    // ----------------------------------------------------------------------------------

    /// Answers a publisher offer. Each video m-line's answer puts first the codec its track
    /// was published with, else the one the client asked for in add_track (the browser sends
    /// the answer's first codec). `None`: the offer is refused (too large, unparsable, or
    /// refused by the PC).
    pub(crate) fn answer_publisher(
        &mut self,
        conn: ConnId,
        sd: &lk::SessionDescription,
    ) -> Option<String> {
        let sections = sd.sdp.lines().filter(|l| l.starts_with("m=")).count();
        if sections > MAX_MEDIA_SECTIONS {
            tracing::info!(
                ?conn,
                sections,
                "publisher offer refused: too many media sections"
            );
            return None;
        }
        let offer = match SdpOffer::from_sdp_string(&sd.sdp) {
            Ok(o) => o,
            Err(e) => {
                tracing::info!(?conn, error = %e, "unparsable publisher offer");
                return None;
            }
        };
        self.pub_cids.extend(mid_to_cid(&sd.sdp));
        let publisher = &mut self.publisher;
        let answer =
            match catch_unwind(AssertUnwindSafe(|| publisher.sdp_api().accept_offer(offer))) {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => {
                    tracing::info!(?conn, error = %e, "publisher offer refused");
                    return None;
                }
                Err(_) => return None,
            };
        let prefer: HashMap<String, String> = self
            .pub_cids
            .iter()
            .filter_map(|(mid, cid)| {
                let track = self
                    .info
                    .tracks
                    .iter()
                    .find(|t| t.mid == *mid)
                    .or_else(|| self.pending_tracks.get(cid))?;
                let mime = track
                    .codecs
                    .first()
                    .map_or(track.mime_type.as_str(), |c| c.mime_type.as_str());
                let codec = mime.strip_prefix("video/")?;
                Some((mid.clone(), codec.to_owned()))
            })
            .collect();
        Some(sdp::prefer_codecs(&answer.to_sdp_string(), &prefer))
    }

    /// The track announced for the publisher's m-line `mid`, taken out of the announced ones.
    pub(crate) fn take_announced(&mut self, conn: ConnId, mid: Mid) -> Option<lk::TrackInfo> {
        let Some(cid) = self.pub_cids.get(&mid.to_string()).cloned() else {
            tracing::info!(?conn, %mid, "media without an msid; ignored");
            return None;
        };
        let info = self.pending_tracks.remove(&cid);
        if info.is_none() {
            tracing::info!(?conn, %mid, cid, "media without add_track; ignored");
        }
        info
    }

    /// Whether data on the publisher's channel `id` is reliable; `None` for a channel that is
    /// not one of LiveKit's two.
    pub(crate) fn publisher_channel_reliable(&self, id: ChannelId) -> Option<bool> {
        match self.pub_channels.get(&id).map(String::as_str) {
            Some("_reliable") => Some(true),
            Some("_lossy") => Some(false),
            _ => None,
        }
    }

    /// An RTP packet arrived from this publisher: the m-line and layer it came on and its
    /// codec, from its SSRC and payload type (`None` for a packet of no known stream or
    /// codec). Notes whether its audio level says "speech".
    pub(crate) fn incoming(
        &mut self,
        pkt: &RtpPacket,
        now: Instant,
    ) -> Option<(Mid, Option<Rid>, Codec)> {
        let (mid, rid) = {
            let mut api = self.publisher.direct_api();
            let s = api.stream_rx(&pkt.header.ssrc)?;
            (s.mid(), s.rid())
        };
        let codec = self
            .publisher
            .codec_config()
            .params()
            .iter()
            .find(|x| x.pt() == pkt.header.payload_type)
            .map(|x| x.spec().codec)?;
        if let Some(level) = pkt.header.ext_vals.audio_level {
            if level.unsigned_abs() as i8 <= SPEECH_LEVEL {
                self.last_loud = Some(now);
            }
        }
        Some((mid, rid, codec))
    }

    /// Whether this participant spoke within the last second.
    pub(crate) fn speaking(&self, now: Instant) -> bool {
        self.last_loud
            .is_some_and(|t| now.saturating_duration_since(t) < SPEECH_HOLD)
    }

    /// The connection quality clients are told about, from the loss this participant's media
    /// arrives with. Never `LOST`: livekit-client reconnects a participant told it is lost,
    /// and a lossy uplink is better served by staying.
    pub(crate) fn quality(&self) -> lk::ConnectionQualityInfo {
        let (quality, score) = match self.ingress_loss {
            l if l < 0.02 => (lk::ConnectionQuality::Excellent, 5.0 - 25.0 * l),
            l if l < 0.08 => (lk::ConnectionQuality::Good, 4.0 - 12.0 * (l - 0.02)),
            l => (lk::ConnectionQuality::Poor, (3.0 - 5.0 * l).max(1.0)),
        };
        lk::ConnectionQualityInfo {
            participant_sid: self.info.sid.clone(),
            quality: quality as i32,
            score,
        }
    }

    // ----------------------------------------------------------------------------------
    // Both PCs
    // ----------------------------------------------------------------------------------

    /// A trickled ICE candidate. Returns the PC it was added to.
    pub(crate) fn trickle(&mut self, conn: ConnId, t: &lk::TrickleRequest) -> Option<Pc> {
        // candidate_init is the browser's RTCIceCandidateInit as JSON.
        let Some(line) = serde_json::from_str::<serde_json::Value>(&t.candidate_init)
            .ok()
            .and_then(|v| v.get("candidate")?.as_str().map(str::to_owned))
        else {
            tracing::debug!(?conn, "unparsable trickle");
            return None;
        };
        if line.is_empty() {
            return None; // end of candidates
        }
        let Ok(candidate) = Candidate::from_sdp_string(&line) else {
            tracing::debug!(?conn, "unparsable candidate");
            return None;
        };
        let pc = if t.target == lk::SignalTarget::Subscriber as i32 {
            Pc::Subscriber
        } else {
            Pc::Publisher
        };
        self.rtc(pc).add_remote_candidate(candidate);
        Some(pc)
    }

    // ----------------------------------------------------------------------------------
    // Subscriber
    // ----------------------------------------------------------------------------------

    /// The track and layer a subscriber's keyframe request on m-line `mid` is for: the layer
    /// it gets, or is about to get.
    pub(crate) fn keyframe_wanted(&self, mid: Mid) -> Option<(String, Option<Rid>)> {
        let sid = self.down_by_mid.get(&mid)?;
        let d = self.downtracks.get(sid);
        Some((
            sid.clone(),
            d.and_then(|d| d.fwd.current().or(d.fwd.target())),
        ))
    }

    /// Subscribes to `track` (its sid `sid`), unless already subscribed; the m-line comes with
    /// the next offer.
    pub(crate) fn add_downtrack(&mut self, sid: &str, track: &PublishedTrack) {
        if self.downtracks.contains_key(sid) {
            return;
        }
        self.downtracks
            .insert(sid.to_owned(), DownTrack::new(track));
        self.negotiation.changed = true;
    }

    /// Unsubscribes from `sid`; its m-line is stopped in the next offer. Returns whether there
    /// was such a subscription.
    pub(crate) fn remove_downtrack(&mut self, sid: &str) -> bool {
        let Some(d) = self.downtracks.remove(sid) else {
            return false;
        };
        if let DownState::Negotiating(mid) | DownState::Open(mid) = d.state {
            self.down_by_mid.remove(&mid);
            self.negotiation.stops.push(mid);
            self.negotiation.changed = true;
        }
        true
    }

    /// Whether an offer should go out now: something changed (or ICE must restart) and no
    /// offer is in flight (changes made meanwhile wait for its answer).
    pub(crate) fn wants_offer(&self) -> bool {
        !matches!(self.negotiation.offer, Offer::InFlight { .. })
            && (self.negotiation.changed || self.negotiation.ice_restart)
    }

    /// Subscribed tracks not yet in an offer, by sid, with their kind.
    pub(crate) fn tracks_to_offer(&self) -> impl Iterator<Item = (&String, MediaKind)> {
        self.downtracks
            .iter()
            .filter(|(_, d)| d.state == DownState::ToAdd)
            .map(|(sid, d)| (sid, d.kind))
    }

    /// Makes the next subscriber offer: `to_add` (track sid, kind, owner's participant sid)
    /// gets new m-lines, stopped ones are stopped, the first offer opens the data channels.
    /// Returns the offer's SDP and id, or `None` when there was nothing to change.
    pub(crate) fn offer(
        &mut self,
        to_add: Vec<(String, MediaKind, String)>,
    ) -> Option<(String, u32)> {
        let n = &mut self.negotiation;
        n.changed = false;
        let first = matches!(n.offer, Offer::NotYet);
        let stops: Vec<Mid> = n.stops.drain(..).collect();
        let ice_restart = std::mem::take(&mut n.ice_restart);
        let mut api = self.subscriber.sdp_api();
        if ice_restart && !first {
            // Our candidate (the one UDP socket) does not change; the credentials do.
            api.ice_restart(true);
        }
        if first {
            api.add_channel_with_config(ChannelConfig {
                label: "_reliable".into(),
                ordered: true,
                reliability: Reliability::Reliable,
                ..Default::default()
            });
            api.add_channel_with_config(ChannelConfig {
                label: "_lossy".into(),
                ordered: false,
                reliability: Reliability::MaxRetransmits { retransmits: 0 },
                ..Default::default()
            });
        }
        for mid in stops {
            api.stop_media(mid);
        }
        let mut added = Vec::new();
        for (sid, kind, owner_sid) in to_add {
            // LiveKit clients map media to participant and track through the msid:
            // stream id "<participant sid>|<track sid>", track id "<track sid>".
            let mid = api.add_media(
                kind,
                Direction::SendOnly,
                Some(format!("{owner_sid}|{sid}")),
                Some(sid.clone()),
                None,
            );
            added.push((sid, mid));
        }
        let (sdp_offer, pending) = api.apply()?;
        for (sid, mid) in added {
            if let Some(d) = self.downtracks.get_mut(&sid) {
                d.state = DownState::Negotiating(mid);
            }
            self.down_by_mid.insert(mid, sid);
        }
        let n = &mut self.negotiation;
        n.last_id += 1;
        let sdp = sdp_offer.to_sdp_string();
        n.offer = Offer::InFlight {
            id: n.last_id,
            pending,
            sdp: sdp.clone(),
        };
        Some((sdp, n.last_id))
    }

    /// The offer in flight, to send again on a resume, with its id.
    pub(crate) fn offer_in_flight(&self) -> Option<(String, u32)> {
        match &self.negotiation.offer {
            Offer::InFlight { id, sdp, .. } => Some((sdp.clone(), *id)),
            _ => None,
        }
    }

    /// The next offer restarts ICE (the client resumed after its signalling dropped).
    pub(crate) fn restart_ice(&mut self) {
        self.negotiation.ice_restart = true;
    }

    /// Applies the client's answer to the offer in flight. `tracks` tells which opened tracks
    /// have no simulcast layers: those are sent unpaced.
    pub(crate) fn accept_answer(
        &mut self,
        conn: ConnId,
        sd: &lk::SessionDescription,
        tracks: &Tracks,
    ) -> AnswerOutcome {
        let pending = match std::mem::replace(&mut self.negotiation.offer, Offer::Answered) {
            Offer::InFlight { id, pending, sdp } => {
                if sd.id != 0 && sd.id != id {
                    // An answer to an offer this one replaced (clients echo the offer's id).
                    tracing::info!(?conn, id = sd.id, "answer to an earlier offer; ignored");
                    self.negotiation.offer = Offer::InFlight { id, pending, sdp };
                    return AnswerOutcome::Ignored;
                }
                pending
            }
            other => {
                self.negotiation.offer = other;
                tracing::info!(?conn, "answer without an offer");
                return AnswerOutcome::Ignored;
            }
        };
        let answer = match SdpAnswer::from_sdp_string(&sd.sdp) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(?conn, error = %e, "unparsable subscriber answer");
                return AnswerOutcome::Refused;
            }
        };
        if let Err(e) = self.subscriber.sdp_api().accept_answer(pending, answer) {
            tracing::info!(?conn, error = %e, "subscriber answer refused");
            return AnswerOutcome::Refused;
        }
        let mut opened = Vec::new();
        for (sid, d) in self.downtracks.iter_mut() {
            let DownState::Negotiating(mid) = d.state else {
                continue;
            };
            d.state = DownState::Open(mid);
            if d.kind != MediaKind::Video {
                continue;
            }
            opened.push((sid.clone(), d.fwd.target()));
            // Only what the allocator can shape is paced. A track without simulcast layers
            // cannot be made smaller; pacing it to 1.1 × an estimate below its rate only queues
            // it (str0m keeps up to 2 s), which the SFU benchmark measured as a 2 s p99 after an
            // overload had lowered the estimates. It leaves at once, as audio does, and the
            // network's own queue decides.
            let single_layer = tracks.get(sid).is_some_and(|t| t.rids.is_empty());
            if single_layer {
                if let Some(tx) = self.subscriber.direct_api().stream_tx_by_mid(mid, None) {
                    tx.set_unpaced(true);
                }
            }
        }
        AnswerOutcome::Applied(opened)
    }

    /// Forwards one packet of track `o.sid` to this subscriber, if it has the track open and
    /// its forwarder takes the packet.
    pub(crate) fn forward(&mut self, o: &Outgoing<'_>, now: Instant) -> Forwarded {
        let mut done = Forwarded {
            written: false,
            switched_to: None,
        };
        let Some(d) = self.downtracks.get_mut(o.sid) else {
            return done;
        };
        let DownState::Open(out_mid) = d.state else {
            return done;
        };
        let before = d.fwd.current();
        let decision = d.fwd.on_packet(
            o.rid,
            *o.pkt.seq_no,
            o.pkt.header.timestamp,
            o.pkt.header.marker,
            o.keyframe,
            now,
        );
        if d.fwd.current() != before && before.is_some() && o.keyframe.is_none() {
            // Switched at a frame boundary, probably not at a keyframe: ask the new layer for
            // one now rather than wait for the subscriber's decoder to complain.
            done.switched_to = Some(d.fwd.current());
        }
        let Decision::Forward { seq, time } = decision else {
            return done;
        };
        let Some(pt) = out_pt(&self.subscriber, out_mid, o.codec) else {
            return done;
        };
        let mut api = self.subscriber.direct_api();
        let Some(tx) = api.stream_tx_by_mid(out_mid, None) else {
            return done;
        };
        tx.write_rtp(
            RtpWrite::new(pt, seq.into(), time, o.pkt.timestamp, o.pkt.payload.clone())
                .marker(o.pkt.header.marker)
                .ext_vals(o.ext.clone())
                .nackable(o.codec.is_video()),
        );
        done.written = true;
        done
    }

    /// Points each video downtrack at the best layer that is flowing, not above what the
    /// subscriber asked for and, once its downlink estimate is known, within it. Layers about
    /// to be switched to are pushed to `keyframes`. Returns the bitrate the subscriber PC's
    /// estimator should probe toward, if it estimates.
    pub(crate) fn allocate(
        &mut self,
        tracks: &Tracks,
        now: Instant,
        keyframes: &mut Vec<(String, Option<Rid>)>,
    ) -> Option<u64> {
        let mut fixed = 0u64;
        let mut wanted_total = 0u64;
        let mut demands = Vec::new();
        let mut sids = Vec::new();
        for (sid, d) in self.downtracks.iter() {
            let Some(t) = tracks.get(sid) else {
                continue;
            };
            if t.rids.is_empty() {
                let bps = t.single_layer_bps();
                fixed += bps;
                wanted_total += bps;
                continue;
            }
            let demand = t.demand(d.wanted, d.fwd.target(), now);
            wanted_total += (0..=demand.wanted)
                .rev()
                .find_map(|l| demand.layers[l])
                .unwrap_or(0);
            demands.push(demand);
            sids.push(sid.clone());
        }
        let measured = demands.iter().any(|d| d.layers.iter().any(Option::is_some));
        let choices = match self.bwe_estimate {
            Some(estimate) if measured => allocate(estimate, fixed, &demands),
            _ => vec![None; demands.len()],
        };
        for (sid, choice) in sids.into_iter().zip(choices) {
            let (Some(t), Some(d)) = (tracks.get(&sid), self.downtracks.get_mut(&sid)) else {
                continue;
            };
            let best = match choice {
                Some(i) => Some(t.rids[i]),
                // No estimate yet, or no layer measured: by requested quality alone.
                None => t.best_layer(d.wanted, Some(now)),
            };
            if best.is_some() && best != d.fwd.target() {
                d.fwd.set_target(best);
            }
            if d.fwd.switch_pending() {
                keyframes.push((sid, d.fwd.target()));
            }
        }
        (self.bwe_estimate.is_some() && wanted_total > 0).then(|| {
            // What the subscriber wants, plus a margin: an application-limited sender's
            // estimate only follows what it sends, so str0m's probe controller sends short
            // probe clusters toward this rate (on a rise of it, periodically while the sender
            // is application-limited, and when the estimate stagnates below it), and the
            // estimate can grow back after a dip. No minimum rate: continuous padding is not
            // needed for that, and with it Chromium stopped decoding the forwarded video.
            let desired = wanted_total + wanted_total / 5;
            self.subscriber
                .bwe()
                .set_bitrate(Bitrate::ZERO, Bitrate::bps(desired));
            desired
        })
    }

    /// Writes a data packet to this subscriber's reliable or lossy channel. Reliable data that
    /// cannot even be queued (the channel's buffer is full) is reported; lossy data may be
    /// lost. Returns whether the subscriber PC was written to.
    pub(crate) fn write_data(
        &mut self,
        conn: ConnId,
        reliable: bool,
        bytes: &[u8],
        out: &mut Outbox,
    ) -> bool {
        let id = if reliable {
            self.channels.reliable
        } else {
            self.channels.lossy.or(self.channels.reliable)
        };
        let Some(mut ch) = id.and_then(|id| self.subscriber.channel(id)) else {
            return false;
        };
        match ch.write(true, bytes) {
            Ok(true) => {}
            Ok(false) if reliable => {
                tracing::info!(
                    ?conn,
                    bytes = bytes.len(),
                    "reliable data dropped: the subscriber's data channel is full"
                );
                out.event(Event::ReliableDataDropped {
                    conn,
                    bytes: bytes.len(),
                });
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(?conn, error = %e, "data channel write failed"),
        }
        true
    }
}

/// A peer connection failed or panicked inside str0m: the participant must be removed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PcFailed;

/// The subscriber's payload type for `codec` on the m-line `mid`.
fn out_pt(rtc: &Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let pts = rtc.media(mid)?.remote_pts();
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == codec && (pts.is_empty() || pts.contains(&p.pt())))
        .map(|p| p.pt())
}
