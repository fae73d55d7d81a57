//! The room state machine. See the crate docs for the drive loop.

// The protocol marks several fields deprecated that current clients still read (DataPacket.kind
// is reported to apps by livekit-client; TrackInfo.layers/simulcast by older SDKs), so the
// server keeps filling them, as LiveKit's own server does.
#![allow(deprecated)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;
use prost::Message as _;
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, RtpPacket, RtpWrite};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output as RtcOutput, Rtc};

use crate::alloc::{allocate, TrackDemand};
use crate::dd;
use crate::forward::{Decision, Forwarder};
use crate::ids::IdGen;
use crate::sdp::{self, mid_to_cid};
use crate::{PROTOCOL_VERSION, SERVER_VERSION};

/// A signalling connection (one WebSocket), named by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Settings fixed for the room's life.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// The room id (LiveKit's room name).
    pub name: String,
    /// The address clients reach our UDP socket on (our ICE host candidate).
    pub public_addr: SocketAddr,
    /// Seeds the id generator.
    pub seed: u64,
    pub empty_timeout: u32,
    pub max_participants: u32,
    /// The room is end-to-end encrypted: every published track must be encrypted by its
    /// sender, and the room refuses tracks announced in clear.
    pub require_encryption: bool,
    /// Subscriber PCs estimate their downlink (TWCC) and layers are allocated within it. Off:
    /// layers follow the requested quality alone, and nothing is paced.
    pub bandwidth_estimation: bool,
    /// Unix milliseconds at `created`, so the core can tell wall time without a clock.
    pub created_unix_ms: i64,
    pub created: Instant,
}

/// Who is joining, from their verified access token.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// The participant sid (`PA_…`), chosen by the runtime so that the room API knows it too.
    pub sid: String,
    pub identity: String,
    pub name: String,
    pub metadata: String,
    pub can_publish: bool,
    pub can_subscribe: bool,
    pub can_publish_data: bool,
    pub hidden: bool,
    pub auto_subscribe: bool,
    pub client_protocol: i32,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// Something that happened, for the runtime to report (room state, webhooks, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A participant was admitted (before media is up).
    ParticipantJoined {
        conn: ConnId,
        sid: String,
        identity: String,
        name: String,
    },
    /// A participant's media connection is up.
    ParticipantActive {
        conn: ConnId,
        sid: String,
        identity: String,
    },
    /// A participant is gone; `reason` is LiveKit's `DisconnectReason`.
    ParticipantLeft {
        conn: ConnId,
        sid: String,
        identity: String,
        reason: i32,
    },
    TrackPublished {
        sid: String,
        participant_sid: String,
        kind: &'static str,
    },
    TrackUnpublished {
        sid: String,
        participant_sid: String,
    },
    /// A reliable data message could not be queued for a subscriber (its data channel's
    /// buffer is full: the subscriber does not keep up); the message is lost for it.
    ReliableDataDropped { conn: ConnId, bytes: usize },
    /// A participant was removed for breaking the signalling rules (too many tracks refused,
    /// a flood); `why` says which.
    ParticipantEvicted {
        conn: ConnId,
        identity: String,
        why: &'static str,
    },
}

/// A server-side consumer of the room's media (a recorder, an RTMP broadcaster), named by the
/// runtime. A sink gets every track, at its best flowing layer, as [`Output::Sink`] packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SinkId(pub u64);

/// Why [`Room::add_sink`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SinkRefused {
    /// The server must not see the media of an end-to-end encrypted room, so it gets none.
    #[error("the room is end-to-end encrypted: its media cannot be recorded or broadcast")]
    EndToEndEncrypted,
    #[error("the room has ended")]
    Ended,
    #[error("this sink is already attached")]
    Exists,
}

/// One packet for a sink: the track's packets rewritten into one continuous stream (as a
/// subscriber would get them), the payload as the publisher sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkPacket {
    pub sink: SinkId,
    pub track_sid: String,
    pub participant_identity: String,
    pub video: bool,
    /// Upper-case codec name: `OPUS`, `VP8`, `VP9`, `H264`, `AV1`.
    pub codec: &'static str,
    pub clock_rate: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// What the runtime must do.
#[derive(Debug)]
pub enum Output {
    Transmit(Transmit),
    /// Send this frame on the connection.
    Signal {
        conn: ConnId,
        response: Box<lk::SignalResponse>,
    },
    /// Close the connection (after sending what was queued for it).
    Close {
        conn: ConnId,
    },
    Event(Event),
    /// A packet for a sink.
    Sink(SinkPacket),
    /// A track a sink was getting is gone (unpublished, or its publisher left).
    SinkTrackEnded {
        sink: SinkId,
        track_sid: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pc {
    Publisher,
    Subscriber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownState {
    /// Waiting for the next subscriber offer.
    ToAdd,
    /// In an offer not yet answered.
    Negotiating(Mid),
    Open(Mid),
}

#[derive(Debug)]
struct DownTrack {
    state: DownState,
    kind: MediaKind,
    fwd: Forwarder,
    /// The quality the subscriber asked for (track_setting); HIGH by default.
    wanted: i32,
}

#[derive(Debug)]
struct PublishedTrack {
    owner: ConnId,
    mid: Mid,
    kind: MediaKind,
    /// Simulcast layers, lowest first.
    rids: Vec<Rid>,
    last_seen: HashMap<Rid, Instant>,
    clock_rate: u32,
    /// When each layer (None: the track without simulcast) was last asked for a keyframe.
    last_keyframe_request: HashMap<Option<Rid>, Instant>,
    /// Bytes received per layer since the last allocation tick.
    layer_bytes: HashMap<Option<Rid>, u64>,
    /// Smoothed bitrate per layer, bit/s.
    layer_bps: HashMap<Option<Rid>, u64>,
    /// A screen share: served first when a subscriber's bandwidth is short.
    screen: bool,
}

struct Participant {
    info: lk::ParticipantInfo,
    params: JoinParams,
    publisher: Rtc,
    subscriber: Rtc,
    timeouts: [Option<Instant>; 2],
    /// mid → client track id, from the publisher's offers.
    pub_cids: HashMap<String, String>,
    /// Tracks announced with add_track, waiting for their m-line.
    pending_tracks: HashMap<String, lk::TrackInfo>,
    pub_channels: HashMap<ChannelId, String>,
    sub_reliable: Option<ChannelId>,
    sub_lossy: Option<ChannelId>,
    sub_pending: Option<SdpPendingOffer>,
    /// Subscriber m-lines to stop in the next offer.
    sub_stops: Vec<Mid>,
    sub_offer_id: u32,
    sub_offered_once: bool,
    sub_dirty: bool,
    downtracks: HashMap<String, DownTrack>,
    down_by_mid: HashMap<Mid, String>,
    active: bool,
    ice_lost_since: Option<Instant>,
    last_loud: Option<Instant>,
    /// Worst recent packet loss (0..1) the publisher PC measured on incoming media.
    ingress_loss: f32,
    /// The subscriber PC's downlink estimate (TWCC), bit/s, while str0m can probe.
    bwe_estimate: Option<u64>,
    /// The signalling connection dropped without a leave at this instant; the participant
    /// stays (its media may still flow) until it resumes or `SIGNAL_GRACE` passes.
    signal_lost_since: Option<Instant>,
    /// The SDP of the subscriber offer in flight (its id is `sub_offer_id`), to send again on
    /// resume: the client may have missed it, or answered on the connection that dropped.
    sub_pending_sdp: Option<String>,
    /// The next subscriber offer restarts ICE (after a resume).
    sub_ice_restart: bool,
    /// Requests refused for a limit so far (see `MAX_REFUSALS`).
    refusals: u32,
}

impl Participant {
    fn rtc(&mut self, pc: Pc) -> &mut Rtc {
        match pc {
            Pc::Publisher => &mut self.publisher,
            Pc::Subscriber => &mut self.subscriber,
        }
    }
}

/// How long a participant whose media connection dropped may take to come back.
const ICE_GRACE: Duration = Duration::from_secs(10);
/// How long a participant whose signalling connection dropped without a leave may take to
/// resume it. LiveKit's clients retry a resume at 0, 0.3, 1.2, 2.7, 4.8 and 7 s, then every
/// 7 s; a client that is really gone usually also stops answering ICE and is removed by
/// `ICE_GRACE` first.
const SIGNAL_GRACE: Duration = Duration::from_secs(15);
/// Keyframe requests to one publisher track are sent at most this often.
const KEYFRAME_THROTTLE: Duration = Duration::from_millis(500);
/// A layer with no packet for this long is not offered to subscribers.
const LAYER_STALE: Duration = Duration::from_millis(1500);
/// Period of layer allocation and speaker detection.
const TICK: Duration = Duration::from_millis(500);
/// Initial downlink estimate of a subscriber. str0m paces what a BWE-enabled peer connection
/// sends at 1.1 × the estimate and queues the rest (up to 2 s), so an estimate below what is
/// being forwarded adds delay; starting high keeps a good link unpaced while the estimator
/// learns, and a narrow one still shows within a second or two (tests/bandwidth.rs). At 5 Mbit/s
/// a 5 × 5 call of 2.4 Mbit/s single-layer tracks lost 23 % with a 80 ms p99 in sfu-bench; at
/// 30 Mbit/s, none and 0.7 ms (docs/benchmarks.md).
const BWE_INITIAL: Bitrate = Bitrate::mbps(30);
/// Per-packet bytes beyond the payload (IP, UDP, RTP with extensions, SRTP tag), for layer
/// bitrates that compare with what the estimator measures on the wire.
const PACKET_OVERHEAD: u64 = 70;
/// RFC 6464 level (−dBov) at or below which a packet counts as speech.
const SPEECH_LEVEL: i8 = 50;
/// Tracks one participant may have published or announced at once. A camera, a microphone
/// and a screen share with its audio are four; this leaves room for a few more sources.
pub const MAX_TRACKS_PER_PARTICIPANT: usize = 16;
/// Media sections a publisher offer may have (one per track, plus the data channel).
pub const MAX_MEDIA_SECTIONS: usize = 2 * MAX_TRACKS_PER_PARTICIPANT;
/// Requests refused for a limit that a participant may send before it is removed: a client
/// that keeps asking past a limit is not a client we can serve.
const MAX_REFUSALS: u32 = 16;
/// Topic prefix of what the server alone sends (`enclave.system`): a participant's data
/// packet on it is dropped, so that nobody can speak with the server's voice.
pub const SERVER_TOPIC: &str = "enclave.system";

/// What the room forwarded or relayed, for the test-only tap.
#[cfg(feature = "tap")]
#[derive(Debug, Clone)]
pub struct TapRecord {
    /// `"rtp-audio"`, `"rtp-video"` or `"data"`.
    pub kind: &'static str,
    /// The sender's identity.
    pub from: String,
    /// RTP marker bit (end of a video frame).
    pub marker: bool,
    /// The RTP payload, or the data packet as received.
    pub payload: Vec<u8>,
}

/// One meeting. See the crate docs.
pub struct Room {
    #[cfg(feature = "tap")]
    tap: Option<Box<dyn FnMut(TapRecord) + Send>>,
    cfg: RoomConfig,
    sid: String,
    ids: IdGen,
    sif_trailer: Vec<u8>,
    /// Boxed: a participant holds two large `Rtc`s, and B-tree nodes reserve room for eleven.
    participants: BTreeMap<ConnId, Box<Participant>>,
    tracks: HashMap<String, PublishedTrack>,
    track_by_pub_mid: HashMap<(ConnId, Mid), String>,
    routes: HashMap<SocketAddr, (ConnId, Pc)>,
    dirty: BTreeSet<(ConnId, Pc)>,
    outputs: VecDeque<Output>,
    next_tick: Instant,
    speakers: BTreeSet<ConnId>,
    /// Each sink's forwarding state per track sid.
    sinks: BTreeMap<SinkId, HashMap<String, Forwarder>>,
    /// Participants who left in the last `SIGNAL_GRACE`, as last announced: a resuming client
    /// missed those announcements.
    departed: VecDeque<(Instant, lk::ParticipantInfo)>,
    ticks: u64,
    ended: bool,
}

impl Room {
    pub fn new(cfg: RoomConfig) -> Self {
        let mut ids = IdGen::new(cfg.seed);
        let sid = ids.sid("RM_");
        let sif_trailer = ids.bytes(8);
        let next_tick = cfg.created + TICK;
        Self {
            #[cfg(feature = "tap")]
            tap: None,
            cfg,
            sid,
            ids,
            sif_trailer,
            participants: BTreeMap::new(),
            tracks: HashMap::new(),
            track_by_pub_mid: HashMap::new(),
            routes: HashMap::new(),
            dirty: BTreeSet::new(),
            outputs: VecDeque::new(),
            next_tick,
            speakers: BTreeSet::new(),
            sinks: BTreeMap::new(),
            departed: VecDeque::new(),
            ticks: 0,
            ended: false,
        }
    }

    /// Test-only: observe what the room forwards and relays.
    #[cfg(feature = "tap")]
    pub fn set_tap(&mut self, tap: Box<dyn FnMut(TapRecord) + Send>) {
        self.tap = Some(tap);
    }

    /// The room's LiveKit sid (`RM_…`).
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// How many participants are in the room.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether the room has no participant.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// The sids of the participants in the room.
    pub fn participant_sids(&self) -> Vec<String> {
        self.participants
            .values()
            .map(|p| p.info.sid.clone())
            .collect()
    }

    fn unix_ms(&self, now: Instant) -> i64 {
        self.cfg.created_unix_ms
            + now.saturating_duration_since(self.cfg.created).as_millis() as i64
    }

    fn send(&mut self, conn: ConnId, msg: Resp) {
        if self
            .participants
            .get(&conn)
            .is_some_and(|p| p.signal_lost_since.is_some())
        {
            // Nobody to tell; a resume sends the state again.
            return;
        }
        self.outputs.push_back(Output::Signal {
            conn,
            response: Box::new(lk::SignalResponse { message: Some(msg) }),
        });
    }

    // ----------------------------------------------------------------------------------
    // Inputs
    // ----------------------------------------------------------------------------------

    /// A participant joins on connection `conn`. Another session of the same identity is
    /// evicted first (`DUPLICATE_IDENTITY`), as LiveKit does.
    pub fn join(&mut self, now: Instant, conn: ConnId, params: JoinParams) {
        if self.ended {
            self.send(conn, Resp::Leave(leave(lk::DisconnectReason::RoomDeleted)));
            self.outputs.push_back(Output::Close { conn });
            return;
        }
        if let Some(old) = self
            .participants
            .iter()
            .find(|(_, p)| p.info.identity == params.identity)
            .map(|(c, _)| *c)
        {
            self.send(
                old,
                Resp::Leave(leave(lk::DisconnectReason::DuplicateIdentity)),
            );
            self.remove(now, old, lk::DisconnectReason::DuplicateIdentity);
        }
        let build_config = |bwe: Option<Bitrate>| {
            Rtc::builder()
                .set_extension(12, Extension::with_serializer(dd::URI, dd::Serializer))
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
        };
        // Both PCs also carry the Dependency Descriptor: the publisher's tells layer switches
        // where keyframes are (dd.rs), and subscribers get it forwarded. Id 12 is the one
        // Chromium offers; str0m follows the offer's ids anyway.
        let mut publisher = build_config(None).build(now);
        // The subscriber PC estimates its downlink from TWCC feedback; layer allocation uses
        // it (see BWE_INITIAL for why it starts high).
        let mut subscriber =
            build_config(self.cfg.bandwidth_estimation.then_some(BWE_INITIAL)).build(now);
        for rtc in [&mut publisher, &mut subscriber] {
            match Candidate::host(self.cfg.public_addr, Protocol::Udp) {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::error!(error = %e, "invalid public address for ICE"),
            }
        }
        let sid = params.sid.clone();
        let unix_ms = self.unix_ms(now);
        let info = lk::ParticipantInfo {
            sid: sid.clone(),
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
                can_publish_data: params.can_publish_data,
                hidden: params.hidden,
                can_update_metadata: true,
                ..Default::default()
            }),
            client_protocol: params.client_protocol,
            ..Default::default()
        };
        let others: Vec<lk::ParticipantInfo> = self
            .participants
            .values()
            .filter(|p| !p.params.hidden)
            .map(|p| p.info.clone())
            .collect();
        let join = lk::JoinResponse {
            room: Some(self.room_info()),
            participant: Some(info.clone()),
            other_participants: others,
            server_version: SERVER_VERSION.to_owned(),
            subscriber_primary: true,
            // Resume is on (the default): after a signalling blip clients reconnect with
            // `reconnect=1` and keep their peer connections (see `resume`).
            client_configuration: Some(lk::ClientConfiguration::default()),
            ping_timeout: 15,
            ping_interval: 5,
            server_info: Some(server_info()),
            sif_trailer: self.sif_trailer.clone(),
            ..Default::default()
        };
        self.send(conn, Resp::Join(join));
        let hidden = params.hidden;
        let auto = params.auto_subscribe && params.can_subscribe;
        self.participants.insert(
            conn,
            Box::new(Participant {
                info: info.clone(),
                params: params.clone(),
                publisher,
                subscriber,
                timeouts: [None, None],
                pub_cids: HashMap::new(),
                pending_tracks: HashMap::new(),
                pub_channels: HashMap::new(),
                sub_reliable: None,
                sub_lossy: None,
                sub_pending: None,
                sub_stops: Vec::new(),
                sub_offer_id: 0,
                sub_offered_once: false,
                sub_dirty: true,
                downtracks: HashMap::new(),
                down_by_mid: HashMap::new(),
                active: false,
                ice_lost_since: None,
                last_loud: None,
                ingress_loss: 0.0,
                bwe_estimate: None,
                signal_lost_since: None,
                sub_pending_sdp: None,
                sub_ice_restart: false,
                refusals: 0,
            }),
        );
        self.dirty.insert((conn, Pc::Publisher));
        self.dirty.insert((conn, Pc::Subscriber));
        self.outputs
            .push_back(Output::Event(Event::ParticipantJoined {
                conn,
                sid: sid.clone(),
                identity: params.identity.clone(),
                name: params.name.clone(),
            }));
        if !hidden {
            self.broadcast_update(Some(conn), vec![info]);
        }
        if auto {
            let sids: Vec<String> = self
                .tracks
                .iter()
                .filter(|(_, t)| t.owner != conn)
                .map(|(s, _)| s.clone())
                .collect();
            for s in sids {
                self.add_downtrack(conn, &s);
            }
        }
        self.negotiate(now, conn);
        self.drive(now);
    }

    /// A signalling message from `conn`.
    pub fn signal(&mut self, now: Instant, conn: ConnId, request: lk::SignalRequest) {
        if !self.participants.contains_key(&conn) {
            tracing::debug!(?conn, "signal from an unknown connection");
            return;
        }
        let Some(msg) = request.message else { return };
        match msg {
            Req::Offer(sd) => self.on_publisher_offer(now, conn, sd),
            Req::Answer(sd) => self.on_subscriber_answer(now, conn, sd),
            Req::Trickle(t) => self.on_trickle(conn, t),
            Req::AddTrack(add) => self.on_add_track(now, conn, add),
            Req::Mute(m) => self.on_mute(conn, m),
            Req::TrackSetting(s) => self.on_track_setting(now, conn, s),
            Req::Subscription(s) => self.on_subscription(now, conn, s),
            Req::Leave(_) => self.remove(now, conn, lk::DisconnectReason::ClientInitiated),
            Req::Ping(_) => {
                let ms = self.unix_ms(now);
                self.send(conn, Resp::Pong(ms));
            }
            Req::PingReq(p) => {
                let ms = self.unix_ms(now);
                self.send(
                    conn,
                    Resp::PongResp(lk::Pong {
                        last_ping_timestamp: p.timestamp,
                        timestamp: ms,
                    }),
                );
            }
            Req::UpdateMetadata(_)
            | Req::SubscriptionPermission(_)
            | Req::SyncState(_)
            | Req::Simulate(_)
            | Req::UpdateLayers(_) => {}
            other => {
                tracing::debug!(?conn, msg = ?std::mem::discriminant(&other), "signal message not handled")
            }
        }
        self.drive(now);
    }

    /// The signalling connection of `conn` closed without a leave (a leave removes the
    /// participant at once). The participant stays for `SIGNAL_GRACE`, its media flowing, so
    /// that the client can [`Room::resume`]; what the room would have told it meanwhile is
    /// lost, and the resume sends the current state again.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) {
        if let Some(p) = self.participants.get_mut(&conn) {
            if p.signal_lost_since.is_none() {
                tracing::info!(?conn, sid = %p.info.sid, "signalling connection lost; waiting for a resume");
                p.signal_lost_since = Some(now);
            }
        }
    }

    /// Removes the participant at once, without a grace period: the runtime caught it breaking
    /// the signalling rules (a flood).
    pub fn evict(&mut self, now: Instant, conn: ConnId, why: &'static str) {
        let Some(p) = self.participants.get(&conn) else {
            return;
        };
        tracing::warn!(?conn, sid = %p.info.sid, why, "participant evicted");
        self.outputs
            .push_back(Output::Event(Event::ParticipantEvicted {
                conn,
                identity: p.info.identity.clone(),
                why,
            }));
        self.send(conn, Resp::Leave(leave(lk::DisconnectReason::SignalClose)));
        self.remove(now, conn, lk::DisconnectReason::SignalClose);
        self.drive(now);
    }

    /// A request of `conn` was refused for a limit; past `MAX_REFUSALS` the participant goes.
    fn note_refusal(&mut self, now: Instant, conn: ConnId, why: &'static str) {
        let Some(p) = self.participants.get_mut(&conn) else {
            return;
        };
        p.refusals += 1;
        if p.refusals > MAX_REFUSALS {
            self.evict(now, conn, why);
        }
    }

    /// The participant `sid` with `identity` reconnected its signalling (LiveKit's resume:
    /// `reconnect=1&sid=…`). Returns the participant's connection, whose signalling output now
    /// goes to the new WebSocket, or `None` if there is no such participant (it left, or the
    /// grace period passed): the client must then join again.
    ///
    /// The client gets a `ReconnectResponse` first (it accepts nothing else as the first
    /// frame), then every participant's current state plus those who left while it was away,
    /// then a subscriber offer that restarts ICE (the subscriber PC is the server's to restart;
    /// the client restarts its publisher PC by offering with new credentials). A subscriber
    /// offer that was in flight is sent again first, since the client may never have seen it.
    pub fn resume(&mut self, now: Instant, sid: &str, identity: &str) -> Option<ConnId> {
        let (conn, p) = self
            .participants
            .iter_mut()
            .find(|(_, p)| p.info.sid == sid && p.info.identity == identity)?;
        let conn = *conn;
        let lost_at = p.signal_lost_since.take();
        tracing::info!(?conn, %sid, away = ?lost_at.map(|t| now.saturating_duration_since(t)), "signalling resumed");
        self.send(
            conn,
            Resp::Reconnect(lk::ReconnectResponse {
                client_configuration: Some(lk::ClientConfiguration::default()),
                server_info: Some(server_info()),
                ..Default::default()
            }),
        );
        let mut infos: Vec<lk::ParticipantInfo> = self
            .participants
            .iter()
            .filter(|(c, q)| **c != conn && !q.params.hidden)
            .map(|(_, q)| q.info.clone())
            .collect();
        if let Some(t) = lost_at {
            infos.extend(
                self.departed
                    .iter()
                    .filter(|(at, _)| *at >= t)
                    .map(|(_, info)| info.clone()),
            );
        }
        if !infos.is_empty() {
            self.send(
                conn,
                Resp::Update(lk::ParticipantUpdate {
                    participants: infos,
                }),
            );
        }
        let p = self.participants.get_mut(&conn).expect("checked above");
        p.sub_ice_restart = true;
        if let Some(sdp) = p.sub_pending_sdp.clone() {
            let id = p.sub_offer_id;
            self.send(conn, offer(sdp, id));
        } else {
            self.negotiate(now, conn);
        }
        self.drive(now);
        Some(conn)
    }

    /// A datagram arrived. Returns whether a participant of this room accepted it.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let Ok(recv) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return false;
        };
        let input = Input::Receive(now, recv);
        let owner = match self.routes.get(&source) {
            Some(&(c, pc))
                if self.participants.get(&c).is_some_and(|p| match pc {
                    Pc::Publisher => p.publisher.accepts(&input),
                    Pc::Subscriber => p.subscriber.accepts(&input),
                }) =>
            {
                Some((c, pc))
            }
            _ => self.participants.iter().find_map(|(c, p)| {
                if p.publisher.accepts(&input) {
                    Some((*c, Pc::Publisher))
                } else if p.subscriber.accepts(&input) {
                    Some((*c, Pc::Subscriber))
                } else {
                    None
                }
            }),
        };
        let Some((conn, pc)) = owner else {
            return false;
        };
        self.routes.insert(source, (conn, pc));
        let failed = {
            let p = self
                .participants
                .get_mut(&conn)
                .expect("owner was found among participants");
            let rtc = p.rtc(pc);
            match catch_unwind(AssertUnwindSafe(|| rtc.handle_input(input))) {
                Ok(Ok(())) => false,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "datagram refused");
                    false
                }
                Err(_) => true,
            }
        };
        if failed {
            tracing::error!(
                ?conn,
                "peer connection panicked on input; removing the participant"
            );
            self.remove(now, conn, lk::DisconnectReason::StateMismatch);
        } else {
            self.dirty.insert((conn, pc));
        }
        self.drive(now);
        true
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<(ConnId, Pc)> = self
            .participants
            .iter()
            .flat_map(|(c, p)| {
                let mut v = Vec::new();
                if p.timeouts[0].is_none_or(|t| t <= now) {
                    v.push((*c, Pc::Publisher));
                }
                if p.timeouts[1].is_none_or(|t| t <= now) {
                    v.push((*c, Pc::Subscriber));
                }
                v
            })
            .collect();
        let mut failed = Vec::new();
        for (c, pc) in due {
            let p = self.participants.get_mut(&c).expect("listed above");
            let rtc = p.rtc(pc);
            match catch_unwind(AssertUnwindSafe(|| rtc.handle_input(Input::Timeout(now)))) {
                Ok(_) => {
                    self.dirty.insert((c, pc));
                }
                Err(_) => failed.push(c),
            }
        }
        for c in failed {
            self.remove(now, c, lk::DisconnectReason::StateMismatch);
        }
        let lost: Vec<ConnId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.ice_lost_since.is_some_and(|t| now >= t + ICE_GRACE))
            .map(|(c, _)| *c)
            .collect();
        for c in lost {
            tracing::info!(?c, "media connection lost; removing the participant");
            self.send(
                c,
                Resp::Leave(leave(lk::DisconnectReason::ConnectionTimeout)),
            );
            self.remove(now, c, lk::DisconnectReason::ConnectionTimeout);
        }
        let silent: Vec<ConnId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.signal_lost_since.is_some_and(|t| now >= t + SIGNAL_GRACE))
            .map(|(c, _)| *c)
            .collect();
        for c in silent {
            tracing::info!(
                ?c,
                "signalling connection not resumed; removing the participant"
            );
            self.remove(now, c, lk::DisconnectReason::SignalClose);
        }
        let horizon = now.checked_sub(SIGNAL_GRACE);
        while self
            .departed
            .front()
            .is_some_and(|(at, _)| horizon.is_some_and(|h| *at < h))
        {
            self.departed.pop_front();
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            if self.cfg.bandwidth_estimation {
                self.measure_layers();
            }
            self.allocate_layers(now);
            self.detect_speakers(now);
            self.ticks += 1;
            if self.ticks % 4 == 0 {
                self.report_quality();
            }
        }
        self.drive(now);
    }

    /// Removes a participant (an admin's decision). Returns whether it was in the room.
    pub fn remove_participant(&mut self, now: Instant, identity: &str) -> bool {
        let Some(conn) = self.conn_of(identity) else {
            return false;
        };
        self.send(
            conn,
            Resp::Leave(leave(lk::DisconnectReason::ParticipantRemoved)),
        );
        self.remove(now, conn, lk::DisconnectReason::ParticipantRemoved);
        self.drive(now);
        true
    }

    /// Asks a participant to mute (or unmute) one of its tracks, as LiveKit's server does: the
    /// client applies it and confirms with its own `mute`. Muting also takes effect here at
    /// once, so the track is announced muted even before the client answers.
    pub fn mute_track(
        &mut self,
        now: Instant,
        identity: &str,
        track_sid: &str,
        muted: bool,
    ) -> bool {
        let Some(conn) = self.conn_of(identity) else {
            return false;
        };
        let owns = self
            .participants
            .get(&conn)
            .is_some_and(|p| p.info.tracks.iter().any(|t| t.sid == track_sid));
        if !owns {
            return false;
        }
        self.send(
            conn,
            Resp::Mute(lk::MuteTrackRequest {
                sid: track_sid.to_owned(),
                muted,
            }),
        );
        if muted {
            self.on_mute(
                conn,
                lk::MuteTrackRequest {
                    sid: track_sid.to_owned(),
                    muted,
                },
            );
        }
        self.drive(now);
        true
    }

    fn conn_of(&self, identity: &str) -> Option<ConnId> {
        self.participants
            .iter()
            .find(|(_, p)| p.info.identity == identity)
            .map(|(c, _)| *c)
    }

    /// Sends a data packet from the server to everyone, or to the named identities.
    pub fn send_data(
        &mut self,
        now: Instant,
        payload: Vec<u8>,
        topic: Option<String>,
        destination_identities: Vec<String>,
    ) {
        let packet = lk::DataPacket {
            kind: lk::data_packet::Kind::Reliable as i32,
            destination_identities: destination_identities.clone(),
            value: Some(lk::data_packet::Value::User(lk::UserPacket {
                payload,
                topic,
                destination_identities: destination_identities.clone(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let bytes = packet.encode_to_vec();
        let targets: Vec<ConnId> = self
            .participants
            .iter()
            .filter(|(_, p)| {
                destination_identities.is_empty()
                    || destination_identities.contains(&p.info.identity)
            })
            .map(|(c, _)| *c)
            .collect();
        for c in targets {
            self.write_data(c, true, &bytes);
        }
        self.drive(now);
    }

    /// Ends the room: everyone is told and disconnected. Later joins are refused.
    pub fn end(&mut self, now: Instant) {
        self.ended = true;
        let conns: Vec<ConnId> = self.participants.keys().copied().collect();
        for c in conns {
            self.send(c, Resp::Leave(leave(lk::DisconnectReason::RoomDeleted)));
            self.remove(now, c, lk::DisconnectReason::RoomDeleted);
        }
        self.drive(now);
    }

    /// Attaches a server-side sink: from now on it gets every track's packets. Refused in an
    /// end-to-end encrypted room whatever the caller checked before: this is where the
    /// guarantee that the server never handles such media is enforced.
    pub fn add_sink(&mut self, now: Instant, sink: SinkId) -> Result<(), SinkRefused> {
        if self.cfg.require_encryption {
            return Err(SinkRefused::EndToEndEncrypted);
        }
        if self.ended {
            return Err(SinkRefused::Ended);
        }
        if self.sinks.contains_key(&sink) {
            return Err(SinkRefused::Exists);
        }
        let mut fwds = HashMap::new();
        let mut video = Vec::new();
        for (sid, t) in &self.tracks {
            // The best flowing layer; before any has flowed, the best announced one.
            let seen = (!t.last_seen.is_empty()).then_some(now);
            let initial = best_layer(t, lk::VideoQuality::High as i32, seen);
            fwds.insert(sid.clone(), Forwarder::new(initial, t.clock_rate));
            if t.kind == MediaKind::Video {
                video.push((sid.clone(), initial));
            }
        }
        self.sinks.insert(sink, fwds);
        for (sid, rid) in video {
            self.request_keyframe(now, &sid, rid, KeyframeRequestKind::Pli);
        }
        self.drive(now);
        Ok(())
    }

    /// Detaches a sink. Returns whether it was attached.
    pub fn remove_sink(&mut self, sink: SinkId) -> bool {
        self.sinks.remove(&sink).is_some()
    }

    /// A sink's decoder needs a keyframe of a track (throttled like a subscriber's request).
    pub fn sink_keyframe(&mut self, now: Instant, sink: SinkId, track_sid: &str) {
        let Some(rid) = self
            .sinks
            .get(&sink)
            .and_then(|f| f.get(track_sid))
            .map(|f| f.current().or(f.target()))
        else {
            return;
        };
        self.request_keyframe(now, track_sid, rid, KeyframeRequestKind::Pli);
        self.drive(now);
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Room::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = if self.participants.is_empty() {
            None
        } else {
            Some(self.next_tick)
        };
        for p in self.participants.values() {
            for x in p.timeouts.iter().flatten().copied() {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
            if let Some(l) = p.ice_lost_since {
                let x = l + ICE_GRACE;
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
            if let Some(l) = p.signal_lost_since {
                let x = l + SIGNAL_GRACE;
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        }
        t
    }

    // ----------------------------------------------------------------------------------
    // The str0m drain loop
    // ----------------------------------------------------------------------------------

    /// Drains every peer connection that was touched, acts on its events (which may touch
    /// others), and repeats until nothing is left to drain.
    fn drive(&mut self, now: Instant) {
        while let Some(key) = self.dirty.pop_first() {
            let (conn, pc) = key;
            let mut events = Vec::new();
            let mut failed = false;
            if let Some(p) = self.participants.get_mut(&conn) {
                let idx = pc as usize;
                let rtc = p.rtc(pc);
                // str0m sends what was just written (forwarded RTP, data) on its next timeout;
                // giving it "now" sends it in this drain instead of after the runtime's next
                // timer tick (a millisecond of added latency per hop).
                if catch_unwind(AssertUnwindSafe(|| rtc.handle_input(Input::Timeout(now)))).is_err()
                {
                    failed = true;
                }
                loop {
                    match catch_unwind(AssertUnwindSafe(|| rtc.poll_output())) {
                        Ok(Ok(RtcOutput::Timeout(t))) => {
                            p.timeouts[idx] = Some(t);
                            break;
                        }
                        Ok(Ok(RtcOutput::Transmit(t))) => {
                            self.outputs.push_back(Output::Transmit(Transmit {
                                source: t.source,
                                destination: t.destination,
                                contents: t.contents.to_vec(),
                            }))
                        }
                        Ok(Ok(RtcOutput::Event(e))) => events.push(e),
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, ?conn, ?pc, "peer connection failed");
                            failed = true;
                            break;
                        }
                        Err(_) => {
                            tracing::error!(?conn, ?pc, "peer connection panicked");
                            failed = true;
                            break;
                        }
                    }
                }
            }
            for e in events {
                self.on_rtc_event(now, conn, pc, e);
            }
            if failed && self.participants.contains_key(&conn) {
                self.send(
                    conn,
                    Resp::Leave(leave(lk::DisconnectReason::StateMismatch)),
                );
                self.remove(now, conn, lk::DisconnectReason::StateMismatch);
            }
        }
    }

    fn on_rtc_event(&mut self, now: Instant, conn: ConnId, pc: Pc, e: RtcEvent) {
        match (pc, e) {
            (Pc::Publisher, RtcEvent::RtpPacket(pkt)) => self.forward_rtp(now, conn, pkt),
            (Pc::Publisher, RtcEvent::MediaAdded(m)) => {
                self.on_media_added(now, conn, m.mid, m.kind, m.direction, m.simulcast)
            }
            (Pc::Publisher, RtcEvent::MediaChanged(m))
                if !matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) =>
            {
                if let Some(sid) = self.track_by_pub_mid.get(&(conn, m.mid)).cloned() {
                    self.unpublish(now, &sid);
                }
            }
            (Pc::Publisher, RtcEvent::ChannelOpen(id, label)) => {
                if let Some(p) = self.participants.get_mut(&conn) {
                    p.pub_channels.insert(id, label);
                }
            }
            (Pc::Publisher, RtcEvent::ChannelData(d)) => self.relay_data(conn, d.id, &d.data),
            (Pc::Subscriber, RtcEvent::ChannelOpen(id, label)) => {
                if let Some(p) = self.participants.get_mut(&conn) {
                    match label.as_str() {
                        "_reliable" => p.sub_reliable = Some(id),
                        "_lossy" => p.sub_lossy = Some(id),
                        _ => {}
                    }
                }
            }
            (Pc::Subscriber, RtcEvent::Connected) => self.on_subscriber_connected(now, conn),
            (
                Pc::Subscriber,
                RtcEvent::EgressBitrateEstimate(BweKind::Twcc {
                    estimate,
                    can_probe,
                }),
            ) => {
                if let Some(p) = self.participants.get_mut(&conn) {
                    // Without probing (no TWCC negotiated) the number means nothing: allocate
                    // by requested quality alone.
                    p.bwe_estimate = can_probe.then(|| estimate.as_u64());
                }
            }
            (Pc::Publisher, RtcEvent::MediaIngressStats(st)) => {
                if let (Some(p), Some(loss)) = (self.participants.get_mut(&conn), st.loss) {
                    // A moving average, so one bad second does not flip the indicator.
                    p.ingress_loss = 0.7 * p.ingress_loss + 0.3 * loss.clamp(0.0, 1.0);
                }
            }
            (Pc::Subscriber, RtcEvent::KeyframeRequest(r)) => {
                let sid = self
                    .participants
                    .get(&conn)
                    .and_then(|p| p.down_by_mid.get(&r.mid).cloned());
                if let Some(sid) = sid {
                    let rid = self
                        .participants
                        .get(&conn)
                        .and_then(|p| p.downtracks.get(&sid))
                        .and_then(|d| d.fwd.current().or(d.fwd.target()));
                    self.request_keyframe(now, &sid, rid, r.kind);
                }
            }
            (_, RtcEvent::IceConnectionStateChange(state)) => {
                if let Some(p) = self.participants.get_mut(&conn) {
                    match state {
                        IceConnectionState::Disconnected => {
                            p.ice_lost_since.get_or_insert(now);
                        }
                        IceConnectionState::Connected | IceConnectionState::Completed => {
                            p.ice_lost_since = None
                        }
                        _ => {}
                    }
                }
            }
            (_, RtcEvent::Closed) if self.participants.contains_key(&conn) => {
                self.remove(now, conn, lk::DisconnectReason::ClientInitiated);
            }
            _ => {}
        }
    }

    // ----------------------------------------------------------------------------------
    // Signalling
    // ----------------------------------------------------------------------------------

    fn on_publisher_offer(&mut self, now: Instant, conn: ConnId, sd: lk::SessionDescription) {
        let sections = sd.sdp.lines().filter(|l| l.starts_with("m=")).count();
        if sections > MAX_MEDIA_SECTIONS {
            tracing::info!(
                ?conn,
                sections,
                "publisher offer refused: too many media sections"
            );
            return self.refuse(now, conn);
        }
        let offer = match SdpOffer::from_sdp_string(&sd.sdp) {
            Ok(o) => o,
            Err(e) => {
                tracing::info!(?conn, error = %e, "unparsable publisher offer");
                return self.refuse(now, conn);
            }
        };
        let p = self
            .participants
            .get_mut(&conn)
            .expect("checked by signal()");
        p.pub_cids.extend(mid_to_cid(&sd.sdp));
        let answer = match catch_unwind(AssertUnwindSafe(|| {
            p.publisher.sdp_api().accept_offer(offer)
        })) {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                tracing::info!(?conn, error = %e, "publisher offer refused");
                return self.refuse(now, conn);
            }
            Err(_) => return self.refuse(now, conn),
        };
        // Each video m-line's codec: the one its track was published with, else the one the
        // client asked for in add_track (the browser sends the answer's first codec).
        let prefer: HashMap<String, String> = p
            .pub_cids
            .iter()
            .filter_map(|(mid, cid)| {
                let track = p
                    .info
                    .tracks
                    .iter()
                    .find(|t| t.mid == *mid)
                    .or_else(|| p.pending_tracks.get(cid))?;
                let mime = track
                    .codecs
                    .first()
                    .map_or(track.mime_type.as_str(), |c| c.mime_type.as_str());
                let codec = mime.strip_prefix("video/")?;
                Some((mid.clone(), codec.to_owned()))
            })
            .collect();
        let sdp = sdp::prefer_codecs(&answer.to_sdp_string(), &prefer);
        self.dirty.insert((conn, Pc::Publisher));
        self.send(
            conn,
            Resp::Answer(lk::SessionDescription {
                r#type: "answer".into(),
                sdp,
                id: sd.id,
                ..Default::default()
            }),
        );
    }

    fn on_subscriber_answer(&mut self, now: Instant, conn: ConnId, sd: lk::SessionDescription) {
        let p = self
            .participants
            .get_mut(&conn)
            .expect("checked by signal()");
        if sd.id != 0 && p.sub_pending.is_some() && sd.id != p.sub_offer_id {
            // An answer to an offer this one replaced (clients echo the offer's id).
            tracing::info!(?conn, id = sd.id, "answer to an earlier offer; ignored");
            return;
        }
        let Some(pending) = p.sub_pending.take() else {
            tracing::info!(?conn, "answer without an offer");
            return;
        };
        p.sub_pending_sdp = None;
        let answer = match SdpAnswer::from_sdp_string(&sd.sdp) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(?conn, error = %e, "unparsable subscriber answer");
                return self.refuse(now, conn);
            }
        };
        if let Err(e) = p.subscriber.sdp_api().accept_answer(pending, answer) {
            tracing::info!(?conn, error = %e, "subscriber answer refused");
            return self.refuse(now, conn);
        }
        let mut opened = Vec::new();
        for (sid, d) in p.downtracks.iter_mut() {
            if let DownState::Negotiating(mid) = d.state {
                d.state = DownState::Open(mid);
                if d.kind == MediaKind::Video {
                    opened.push((sid.clone(), d.fwd.target()));
                    // Only what the allocator can shape is paced. A track without simulcast
                    // layers cannot be made smaller; pacing it to 1.1 × an estimate below its
                    // rate only queues it (str0m keeps up to 2 s), which sfu-bench measured as
                    // a 2 s p99 after an overload had lowered the estimates. It leaves at once,
                    // as audio does, and the network's own queue decides.
                    let single_layer = self.tracks.get(sid).is_some_and(|t| t.rids.is_empty());
                    if single_layer {
                        if let Some(tx) = p.subscriber.direct_api().stream_tx_by_mid(mid, None) {
                            tx.set_unpaced(true);
                        }
                    }
                }
            }
        }
        self.dirty.insert((conn, Pc::Subscriber));
        for (sid, rid) in opened {
            self.request_keyframe(now, &sid, rid, KeyframeRequestKind::Pli);
        }
        self.negotiate(now, conn);
    }

    fn on_trickle(&mut self, conn: ConnId, t: lk::TrickleRequest) {
        struct Init {
            candidate: String,
        }
        // candidate_init is the browser's RTCIceCandidateInit as JSON.
        let Some(candidate) = serde_json::from_str::<serde_json::Value>(&t.candidate_init)
            .ok()
            .and_then(|v| {
                v.get("candidate")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            })
        else {
            tracing::debug!(?conn, "unparsable trickle");
            return;
        };
        let init = Init { candidate };
        if init.candidate.is_empty() {
            return; // end of candidates
        }
        let Ok(candidate) = Candidate::from_sdp_string(&init.candidate) else {
            tracing::debug!(?conn, "unparsable candidate");
            return;
        };
        let pc = if t.target == lk::SignalTarget::Subscriber as i32 {
            Pc::Subscriber
        } else {
            Pc::Publisher
        };
        if let Some(p) = self.participants.get_mut(&conn) {
            p.rtc(pc).add_remote_candidate(candidate);
            self.dirty.insert((conn, pc));
        }
    }

    fn on_add_track(&mut self, now: Instant, conn: ConnId, add: lk::AddTrackRequest) {
        let p = self.participants.get(&conn).expect("checked by signal()");
        let held =
            p.pending_tracks.len() + self.tracks.values().filter(|t| t.owner == conn).count();
        if held >= MAX_TRACKS_PER_PARTICIPANT {
            tracing::info!(?conn, cid = add.cid, held, "track refused: too many tracks");
            self.send(
                conn,
                Resp::RequestResponse(lk::RequestResponse {
                    reason: lk::request_response::Reason::LimitExceeded as i32,
                    message: format!(
                        "a participant may publish at most {MAX_TRACKS_PER_PARTICIPANT} tracks"
                    ),
                    request: Some(lk::request_response::Request::AddTrack(add)),
                    ..Default::default()
                }),
            );
            return self.note_refusal(now, conn, "too many tracks");
        }
        if !p.params.can_publish {
            self.send(
                conn,
                Resp::RequestResponse(lk::RequestResponse {
                    reason: lk::request_response::Reason::NotAllowed as i32,
                    message: "this participant may not publish".into(),
                    ..Default::default()
                }),
            );
            return;
        }
        if self.cfg.require_encryption && add.encryption == lk::encryption::Type::None as i32 {
            tracing::info!(
                ?conn,
                cid = add.cid,
                "clear track refused in an end-to-end encrypted room"
            );
            self.send(
                conn,
                Resp::RequestResponse(lk::RequestResponse {
                    reason: lk::request_response::Reason::NotAllowed as i32,
                    message: "this room is end-to-end encrypted: publish with encryption enabled"
                        .into(),
                    ..Default::default()
                }),
            );
            return;
        }
        let sid = self.ids.sid("TR_");
        let kind = if add.r#type == lk::TrackType::Video as i32 {
            lk::TrackType::Video
        } else {
            lk::TrackType::Audio
        };
        let codecs = add
            .simulcast_codecs
            .iter()
            .map(|c| lk::SimulcastCodecInfo {
                mime_type: format!(
                    "{}/{}",
                    if kind == lk::TrackType::Video {
                        "video"
                    } else {
                        "audio"
                    },
                    c.codec.to_uppercase()
                ),
                cid: c.cid.clone(),
                layers: add.layers.clone(),
                ..Default::default()
            })
            .collect();
        let info = lk::TrackInfo {
            sid,
            r#type: kind as i32,
            name: add.name.clone(),
            muted: add.muted,
            width: add.width,
            height: add.height,
            simulcast: add.layers.len() > 1,
            source: add.source,
            layers: add.layers.clone(),
            codecs,
            disable_red: add.disable_red,
            encryption: add.encryption,
            stream: add.stream.clone(),
            audio_features: add.audio_features.clone(),
            backup_codec_policy: add.backup_codec_policy,
            ..Default::default()
        };
        let p = self
            .participants
            .get_mut(&conn)
            .expect("checked by signal()");
        p.pending_tracks.insert(add.cid.clone(), info.clone());
        self.send(
            conn,
            Resp::TrackPublished(lk::TrackPublishedResponse {
                cid: add.cid,
                track: Some(info),
            }),
        );
    }

    fn on_mute(&mut self, conn: ConnId, m: lk::MuteTrackRequest) {
        let p = self
            .participants
            .get_mut(&conn)
            .expect("checked by signal()");
        let Some(t) = p.info.tracks.iter_mut().find(|t| t.sid == m.sid) else {
            return;
        };
        if t.muted == m.muted {
            return;
        }
        t.muted = m.muted;
        p.info.version += 1;
        let info = p.info.clone();
        self.broadcast_update(None, vec![info]);
    }

    fn on_track_setting(&mut self, now: Instant, conn: ConnId, s: lk::UpdateTrackSettings) {
        let Some(p) = self.participants.get_mut(&conn) else {
            return;
        };
        for sid in &s.track_sids {
            if let Some(d) = p.downtracks.get_mut(sid) {
                d.fwd.set_paused(s.disabled);
                d.wanted = if s.width > 0 || s.height > 0 {
                    quality_for_size(s.width.max(s.height))
                } else {
                    s.quality
                };
            }
        }
        self.allocate_layers(now);
    }

    fn on_subscription(&mut self, now: Instant, conn: ConnId, s: lk::UpdateSubscription) {
        let mut sids = s.track_sids.clone();
        for pt in &s.participant_tracks {
            sids.extend(pt.track_sids.iter().cloned());
        }
        for sid in sids {
            if s.subscribe {
                if self.tracks.get(&sid).is_some_and(|t| t.owner != conn) {
                    self.add_downtrack(conn, &sid);
                }
            } else {
                self.remove_downtrack(conn, &sid);
            }
        }
        self.negotiate(now, conn);
    }

    /// A message that makes no sense for the session ends it.
    fn refuse(&mut self, now: Instant, conn: ConnId) {
        self.send(
            conn,
            Resp::Leave(leave(lk::DisconnectReason::StateMismatch)),
        );
        self.remove(now, conn, lk::DisconnectReason::StateMismatch);
    }

    // ----------------------------------------------------------------------------------
    // Tracks and subscriptions
    // ----------------------------------------------------------------------------------

    fn on_media_added(
        &mut self,
        now: Instant,
        conn: ConnId,
        mid: Mid,
        kind: MediaKind,
        dir: Direction,
        simulcast: Option<str0m::media::Simulcast>,
    ) {
        if !matches!(dir, Direction::RecvOnly | Direction::SendRecv) {
            return; // an m-line the client only receives on (e.g. the Rust SDK's spare transceivers)
        }
        let Some(p) = self.participants.get_mut(&conn) else {
            return;
        };
        let Some(cid) = p.pub_cids.get(&mid.to_string()).cloned() else {
            tracing::info!(?conn, %mid, "media without an msid; ignored");
            return;
        };
        let Some(mut info) = p.pending_tracks.remove(&cid) else {
            tracing::info!(?conn, %mid, cid, "media without add_track; ignored");
            return;
        };
        // The codec the client asked for if the m-line has it (our answer put it first, so that
        // is what the browser sends), else the m-line's first.
        let requested = info
            .codecs
            .first()
            .and_then(|c| c.mime_type.split_once('/'))
            .map(|(_, name)| name.to_ascii_lowercase());
        let negotiated: Vec<(Codec, u32)> = p
            .publisher
            .media(mid)
            .map(|m| m.remote_pts().to_vec())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pt| {
                p.publisher
                    .codec_config()
                    .params()
                    .iter()
                    .find(|x| x.pt() == pt)
                    .map(|x| (x.spec().codec, x.spec().clock_rate.get()))
            })
            .collect();
        let (codec, clock_rate) = negotiated
            .iter()
            .find(|(c, _)| {
                requested
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(codec_name(*c)))
            })
            .or(negotiated.first())
            .copied()
            .unwrap_or((
                if kind == MediaKind::Audio {
                    Codec::Opus
                } else {
                    Codec::Vp8
                },
                if kind == MediaKind::Audio {
                    48_000
                } else {
                    90_000
                },
            ));
        info.mid = mid.to_string();
        info.mime_type = format!(
            "{}/{}",
            if kind == MediaKind::Audio {
                "audio"
            } else {
                "video"
            },
            codec
        );
        // The client's "send" layers are the ones we receive.
        let rids: Vec<Rid> = simulcast
            .map(|s| if s.recv.is_empty() { s.send } else { s.recv })
            .map(|layers| layers.iter().map(|l| l.rid).collect())
            .unwrap_or_default();
        p.info.tracks.push(info.clone());
        p.info.version += 1;
        p.info.is_publisher = true;
        let pinfo = p.info.clone();
        let hidden = p.params.hidden;
        let psid = p.info.sid.clone();
        let sid = info.sid.clone();
        self.tracks.insert(
            sid.clone(),
            PublishedTrack {
                owner: conn,
                mid,
                kind,
                rids,
                last_seen: HashMap::new(),
                clock_rate,
                last_keyframe_request: HashMap::new(),
                layer_bytes: HashMap::new(),
                layer_bps: HashMap::new(),
                screen: info.source == lk::TrackSource::ScreenShare as i32,
            },
        );
        self.track_by_pub_mid.insert((conn, mid), sid.clone());
        // The layers are not known to be flowing yet: sinks start on the best one announced
        // and the allocation moves them once packets tell.
        let initial = self
            .tracks
            .get(&sid)
            .and_then(|t| best_layer(t, lk::VideoQuality::High as i32, None));
        for fwds in self.sinks.values_mut() {
            fwds.insert(sid.clone(), Forwarder::new(initial, clock_rate));
        }
        self.outputs.push_back(Output::Event(Event::TrackPublished {
            sid: sid.clone(),
            participant_sid: psid,
            kind: if kind == MediaKind::Audio {
                "audio"
            } else {
                "video"
            },
        }));
        // The update must reach subscribers before the offer that carries the track.
        if hidden {
            self.send(
                conn,
                Resp::Update(lk::ParticipantUpdate {
                    participants: vec![pinfo],
                }),
            );
        } else {
            self.broadcast_update(None, vec![pinfo]);
        }
        let subscribers: Vec<ConnId> = self
            .participants
            .iter()
            .filter(|(c, q)| **c != conn && q.params.can_subscribe && q.params.auto_subscribe)
            .map(|(c, _)| *c)
            .collect();
        for c in subscribers {
            self.add_downtrack(c, &sid);
            self.negotiate(now, c);
        }
    }

    fn unpublish(&mut self, now: Instant, sid: &str) {
        let Some(t) = self.tracks.remove(sid) else {
            return;
        };
        self.track_by_pub_mid.remove(&(t.owner, t.mid));
        self.end_sink_tracks(sid);
        let subscribers: Vec<ConnId> = self
            .participants
            .keys()
            .copied()
            .filter(|c| *c != t.owner)
            .collect();
        for c in subscribers {
            if self.remove_downtrack(c, sid) {
                self.send(
                    c,
                    Resp::TrackUnpublished(lk::TrackUnpublishedResponse {
                        track_sid: sid.to_owned(),
                    }),
                );
                self.negotiate(now, c);
            }
        }
        if let Some(p) = self.participants.get_mut(&t.owner) {
            p.info.tracks.retain(|x| x.sid != sid);
            p.info.version += 1;
            let info = p.info.clone();
            let psid = info.sid.clone();
            self.outputs
                .push_back(Output::Event(Event::TrackUnpublished {
                    sid: sid.to_owned(),
                    participant_sid: psid,
                }));
            self.broadcast_update(None, vec![info]);
        }
    }

    fn end_sink_tracks(&mut self, sid: &str) {
        for (sink, fwds) in self.sinks.iter_mut() {
            if fwds.remove(sid).is_some() {
                self.outputs.push_back(Output::SinkTrackEnded {
                    sink: *sink,
                    track_sid: sid.to_owned(),
                });
            }
        }
    }

    fn add_downtrack(&mut self, conn: ConnId, sid: &str) {
        let Some(t) = self.tracks.get(sid) else {
            return;
        };
        let (kind, clock) = (t.kind, t.clock_rate);
        let initial = best_layer(t, lk::VideoQuality::High as i32, None);
        let Some(p) = self.participants.get_mut(&conn) else {
            return;
        };
        if p.downtracks.contains_key(sid) {
            return;
        }
        p.downtracks.insert(
            sid.to_owned(),
            DownTrack {
                state: DownState::ToAdd,
                kind,
                fwd: Forwarder::new(initial, clock),
                wanted: lk::VideoQuality::High as i32,
            },
        );
        p.sub_dirty = true;
    }

    /// Returns whether there was such a downtrack.
    fn remove_downtrack(&mut self, conn: ConnId, sid: &str) -> bool {
        let Some(p) = self.participants.get_mut(&conn) else {
            return false;
        };
        let Some(d) = p.downtracks.remove(sid) else {
            return false;
        };
        if let DownState::Negotiating(mid) | DownState::Open(mid) = d.state {
            p.down_by_mid.remove(&mid);
            p.sub_stops.push(mid);
            p.sub_dirty = true;
        }
        true
    }

    /// Sends the subscriber an offer for everything that changed, unless one is in flight
    /// (then the changes wait for its answer).
    fn negotiate(&mut self, _now: Instant, conn: ConnId) {
        let to_add: Vec<(String, MediaKind, String)> = {
            let Some(p) = self.participants.get(&conn) else {
                return;
            };
            if p.sub_pending.is_some() || !(p.sub_dirty || p.sub_ice_restart) {
                return;
            }
            p.downtracks
                .iter()
                .filter(|(_, d)| d.state == DownState::ToAdd)
                .filter_map(|(sid, d)| {
                    let owner = self.tracks.get(sid)?.owner;
                    Some((
                        sid.clone(),
                        d.kind,
                        self.participants.get(&owner)?.info.sid.clone(),
                    ))
                })
                .collect()
        };
        let p = self.participants.get_mut(&conn).expect("checked above");
        p.sub_dirty = false;
        let first = !p.sub_offered_once;
        let stops: Vec<Mid> = p.sub_stops.drain(..).collect();
        let mut api = p.subscriber.sdp_api();
        if std::mem::take(&mut p.sub_ice_restart) && !first {
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
        let Some((sdp_offer, pending)) = api.apply() else {
            return;
        };
        for (sid, mid) in added {
            if let Some(d) = p.downtracks.get_mut(&sid) {
                d.state = DownState::Negotiating(mid);
            }
            p.down_by_mid.insert(mid, sid);
        }
        p.sub_offered_once = true;
        p.sub_offer_id += 1;
        let id = p.sub_offer_id;
        p.sub_pending = Some(pending);
        let sdp = sdp_offer.to_sdp_string();
        p.sub_pending_sdp = Some(sdp.clone());
        self.dirty.insert((conn, Pc::Subscriber));
        self.send(conn, offer(sdp, id));
    }

    fn on_subscriber_connected(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.participants.get_mut(&conn) else {
            return;
        };
        if p.active {
            return;
        }
        p.active = true;
        p.info.state = lk::participant_info::State::Active as i32;
        p.info.version += 1;
        let info = p.info.clone();
        let hidden = p.params.hidden;
        self.outputs
            .push_back(Output::Event(Event::ParticipantActive {
                conn,
                sid: info.sid.clone(),
                identity: info.identity.clone(),
            }));
        if !hidden {
            self.broadcast_update(None, vec![info]);
        }
        let _ = now;
    }

    // ----------------------------------------------------------------------------------
    // Media
    // ----------------------------------------------------------------------------------

    fn forward_rtp(&mut self, now: Instant, conn: ConnId, pkt: RtpPacket) {
        let Some(p) = self.participants.get_mut(&conn) else {
            return;
        };
        let (mid, rid) = {
            let mut api = p.publisher.direct_api();
            let Some(s) = api.stream_rx(&pkt.header.ssrc) else {
                return;
            };
            (s.mid(), s.rid())
        };
        let Some(codec) = p
            .publisher
            .codec_config()
            .params()
            .iter()
            .find(|x| x.pt() == pkt.header.payload_type)
            .map(|x| x.spec().codec)
        else {
            return;
        };
        if let Some(level) = pkt.header.ext_vals.audio_level {
            if level.unsigned_abs() as i8 <= SPEECH_LEVEL {
                p.last_loud = Some(now);
            }
        }
        let Some(sid) = self.track_by_pub_mid.get(&(conn, mid)).cloned() else {
            return;
        };
        #[cfg(feature = "tap")]
        if let Some(tap) = self.tap.as_mut() {
            let from = self
                .participants
                .get(&conn)
                .map(|p| p.info.identity.clone())
                .unwrap_or_default();
            tap(TapRecord {
                kind: if codec.is_video() {
                    "rtp-video"
                } else {
                    "rtp-audio"
                },
                from,
                marker: pkt.header.marker,
                payload: pkt.payload.to_vec(),
            });
        }
        if let Some(t) = self.tracks.get_mut(&sid) {
            if let Some(r) = rid {
                t.last_seen.insert(r, now);
            }
            // Layer bitrates only feed the bandwidth allocation: no per-packet bookkeeping
            // without it.
            if self.cfg.bandwidth_estimation {
                *t.layer_bytes.entry(rid).or_default() +=
                    pkt.payload.len() as u64 + PACKET_OVERHEAD;
            }
        }
        let is_video = codec.is_video();
        // Some(true) on the first packet of a keyframe, Some(false) on any other packet, None
        // when the publisher sends no Dependency Descriptor.
        let keyframe = pkt
            .header
            .ext_vals
            .user_values
            .get::<dd::Descriptor>()
            .map(dd::Descriptor::starts_keyframe);
        let mut ext = pkt.header.ext_vals.clone();
        ext.mid = None;
        ext.rid = None;
        ext.rid_repair = None;
        ext.transport_cc = None;
        let seq: u64 = *pkt.seq_no;
        let mut touched = Vec::new();
        let mut switched = Vec::new();
        for (c, q) in self.participants.iter_mut() {
            if *c == conn {
                continue;
            }
            let Some(d) = q.downtracks.get_mut(&sid) else {
                continue;
            };
            let DownState::Open(out_mid) = d.state else {
                continue;
            };
            let before = d.fwd.current();
            let decision = d.fwd.on_packet(
                rid,
                seq,
                pkt.header.timestamp,
                pkt.header.marker,
                keyframe,
                now,
            );
            if d.fwd.current() != before && before.is_some() && keyframe.is_none() {
                // Switched at a frame boundary, probably not at a keyframe: ask the new layer
                // for one now rather than wait for the subscriber's decoder to complain.
                switched.push(d.fwd.current());
            }
            let Decision::Forward { seq: out_seq, time } = decision else {
                continue;
            };
            let Some(out_pt) = out_pt(&q.subscriber, out_mid, codec) else {
                continue;
            };
            let mut api = q.subscriber.direct_api();
            let Some(tx) = api.stream_tx_by_mid(out_mid, None) else {
                continue;
            };
            tx.write_rtp(
                RtpWrite::new(
                    out_pt,
                    out_seq.into(),
                    time,
                    pkt.timestamp,
                    pkt.payload.clone(),
                )
                .marker(pkt.header.marker)
                .ext_vals(ext.clone())
                .nackable(is_video),
            );
            touched.push(*c);
        }
        for c in touched {
            self.dirty.insert((c, Pc::Subscriber));
        }
        if !self.sinks.is_empty() {
            let identity = self
                .participants
                .get(&conn)
                .map(|p| p.info.identity.clone())
                .unwrap_or_default();
            let clock_rate = self.tracks.get(&sid).map_or(90_000, |t| t.clock_rate);
            for (sink, fwds) in self.sinks.iter_mut() {
                let Some(f) = fwds.get_mut(&sid) else {
                    continue;
                };
                let before = f.current();
                let decision = f.on_packet(
                    rid,
                    seq,
                    pkt.header.timestamp,
                    pkt.header.marker,
                    keyframe,
                    now,
                );
                if f.current() != before && before.is_some() {
                    switched.push(f.current());
                }
                if let Decision::Forward { seq: out_seq, time } = decision {
                    self.outputs.push_back(Output::Sink(SinkPacket {
                        sink: *sink,
                        track_sid: sid.clone(),
                        participant_identity: identity.clone(),
                        video: is_video,
                        codec: codec_name(codec),
                        clock_rate,
                        // The sink's stream starts at FIRST_SEQ and wraps like RTP's 16 bits.
                        seq: out_seq as u16,
                        timestamp: time,
                        marker: pkt.header.marker,
                        payload: pkt.payload.to_vec(),
                    }));
                }
            }
        }
        for rid in switched {
            self.request_keyframe(now, &sid, rid, KeyframeRequestKind::Pli);
        }
    }

    fn request_keyframe(
        &mut self,
        now: Instant,
        sid: &str,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
    ) {
        let Some(t) = self.tracks.get_mut(sid) else {
            return;
        };
        // Throttled per layer: a request for the layer a subscriber was just switched to must
        // not be swallowed by a recent request for another layer.
        if t.kind != MediaKind::Video
            || t.last_keyframe_request
                .get(&rid)
                .is_some_and(|l| now < *l + KEYFRAME_THROTTLE)
        {
            return;
        }
        t.last_keyframe_request.insert(rid, now);
        let (owner, mid) = (t.owner, t.mid);
        let Some(p) = self.participants.get_mut(&owner) else {
            return;
        };
        let mut api = p.publisher.direct_api();
        if let Some(rx) = api.stream_rx_by_mid(mid, rid) {
            rx.request_keyframe(kind);
            self.dirty.insert((owner, Pc::Publisher));
        }
    }

    /// Turns the bytes each layer received since the last tick into smoothed bitrates.
    fn measure_layers(&mut self) {
        let secs = TICK.as_secs_f64();
        for t in self.tracks.values_mut() {
            let keys: Vec<Option<Rid>> = t
                .layer_bps
                .keys()
                .chain(t.layer_bytes.keys())
                .copied()
                .collect();
            for k in keys {
                let sample = t.layer_bytes.get(&k).copied().unwrap_or(0) as f64 * 8.0 / secs;
                let bps = match t.layer_bps.get(&k) {
                    Some(&old) => 0.5 * old as f64 + 0.5 * sample,
                    None => sample,
                };
                t.layer_bps.insert(k, bps as u64);
            }
            t.layer_bytes.clear();
        }
    }

    /// Points each video downtrack at the best layer that is flowing, not above what its
    /// subscriber asked for and, once the subscriber's downlink estimate is known, within it;
    /// asks for a keyframe on a layer about to be switched to. Also tells each subscriber PC's
    /// estimator how much it would like to send, so that it probes for room to move up.
    fn allocate_layers(&mut self, now: Instant) {
        let mut requests = Vec::new();
        for (conn, q) in self.participants.iter_mut() {
            let mut fixed = 0u64;
            let mut wanted_total = 0u64;
            let mut demands = Vec::new();
            let mut sids = Vec::new();
            for (sid, d) in q.downtracks.iter() {
                let Some(t) = self.tracks.get(sid) else {
                    continue;
                };
                if t.rids.is_empty() {
                    let bps = t.layer_bps.get(&None).copied().unwrap_or(0);
                    fixed += bps;
                    wanted_total += bps;
                    continue;
                }
                let flowing = |r: &Rid| {
                    t.last_seen
                        .get(r)
                        .is_some_and(|s| now.saturating_duration_since(*s) < LAYER_STALE)
                };
                let layers: Vec<Option<u64>> = t
                    .rids
                    .iter()
                    .map(|r| {
                        flowing(r)
                            .then(|| t.layer_bps.get(&Some(*r)).copied())
                            .flatten()
                            .filter(|b| *b > 0)
                    })
                    .collect();
                let wanted = (d.wanted.clamp(0, 2) as usize).min(t.rids.len() - 1);
                wanted_total += (0..=wanted).rev().find_map(|l| layers[l]).unwrap_or(0);
                let current = d
                    .fwd
                    .target()
                    .and_then(|r| t.rids.iter().position(|x| *x == r));
                demands.push(TrackDemand {
                    layers,
                    wanted,
                    current,
                    priority: t.screen,
                });
                sids.push(sid.clone());
            }
            let measured = demands.iter().any(|d| d.layers.iter().any(Option::is_some));
            let choices = match q.bwe_estimate {
                Some(estimate) if measured => allocate(estimate, fixed, &demands),
                _ => vec![None; demands.len()],
            };
            for (sid, choice) in sids.iter().zip(choices) {
                let (Some(t), Some(d)) = (self.tracks.get(sid), q.downtracks.get_mut(sid)) else {
                    continue;
                };
                let best = match choice {
                    Some(i) => Some(t.rids[i]),
                    // No estimate yet, or no layer measured: by requested quality alone.
                    None => best_layer(t, d.wanted, Some(now)),
                };
                if best.is_some() && best != d.fwd.target() {
                    d.fwd.set_target(best);
                }
                if d.fwd.switch_pending() {
                    requests.push((sid.clone(), d.fwd.target()));
                }
            }
            if q.bwe_estimate.is_some() && wanted_total > 0 {
                // What the subscriber wants, plus a margin: an application-limited sender's
                // estimate only follows what it sends, so str0m's probe controller sends short
                // probe clusters toward this rate (on a rise of it, periodically while the
                // sender is application-limited, and when the estimate stagnates below it),
                // and the estimate can grow back after a dip. No minimum rate: continuous
                // padding is not needed for that, and with it Chromium stopped decoding the
                // forwarded video.
                let desired = wanted_total + wanted_total / 5;
                q.subscriber
                    .bwe()
                    .set_bitrate(Bitrate::ZERO, Bitrate::bps(desired));
                self.dirty.insert((*conn, Pc::Subscriber));
            }
        }
        for fwds in self.sinks.values_mut() {
            for (sid, f) in fwds.iter_mut() {
                let Some(t) = self.tracks.get(sid) else {
                    continue;
                };
                if t.rids.is_empty() {
                    continue;
                }
                let best = best_layer(t, lk::VideoQuality::High as i32, Some(now));
                if best.is_some() && best != f.target() {
                    f.set_target(best);
                }
                if f.switch_pending() {
                    requests.push((sid.clone(), f.target()));
                }
            }
        }
        for (sid, rid) in requests {
            self.request_keyframe(now, &sid, rid, KeyframeRequestKind::Pli);
        }
    }

    /// Speakers are those whose audio level said "speech" within the last second; clients
    /// get the full list of active speakers plus those who just stopped.
    fn detect_speakers(&mut self, now: Instant) {
        let active: BTreeSet<ConnId> = self
            .participants
            .iter()
            .filter(|(_, p)| {
                p.last_loud
                    .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
            })
            .map(|(c, _)| *c)
            .collect();
        if active == self.speakers {
            return;
        }
        let mut speakers: Vec<lk::SpeakerInfo> = active
            .iter()
            .filter_map(|c| self.participants.get(c))
            .map(|p| lk::SpeakerInfo {
                sid: p.info.sid.clone(),
                level: 0.8,
                active: true,
            })
            .collect();
        speakers.extend(
            self.speakers
                .difference(&active)
                .filter_map(|c| self.participants.get(c))
                .map(|p| lk::SpeakerInfo {
                    sid: p.info.sid.clone(),
                    level: 0.0,
                    active: false,
                }),
        );
        self.speakers = active;
        let conns: Vec<ConnId> = self.participants.keys().copied().collect();
        for c in conns {
            self.send(
                c,
                Resp::SpeakersChanged(lk::SpeakersChanged {
                    speakers: speakers.clone(),
                }),
            );
        }
    }

    /// Connection quality of every connected participant, from the loss its media arrives
    /// with. Never `LOST`: livekit-client reconnects a participant told it is lost, and a
    /// lossy uplink is better served by staying.
    fn report_quality(&mut self) {
        let updates: Vec<lk::ConnectionQualityInfo> = self
            .participants
            .values()
            .filter(|p| p.active)
            .map(|p| {
                let (quality, score) = match p.ingress_loss {
                    l if l < 0.02 => (lk::ConnectionQuality::Excellent, 5.0 - 25.0 * l),
                    l if l < 0.08 => (lk::ConnectionQuality::Good, 4.0 - 12.0 * (l - 0.02)),
                    l => (lk::ConnectionQuality::Poor, (3.0 - 5.0 * l).max(1.0)),
                };
                lk::ConnectionQualityInfo {
                    participant_sid: p.info.sid.clone(),
                    quality: quality as i32,
                    score,
                }
            })
            .collect();
        if updates.is_empty() {
            return;
        }
        let conns: Vec<ConnId> = self.participants.keys().copied().collect();
        for c in conns {
            self.send(
                c,
                Resp::ConnectionQuality(lk::ConnectionQualityUpdate {
                    updates: updates.clone(),
                }),
            );
        }
    }

    // ----------------------------------------------------------------------------------
    // Data
    // ----------------------------------------------------------------------------------

    fn relay_data(&mut self, conn: ConnId, channel: ChannelId, data: &[u8]) {
        let Some(p) = self.participants.get(&conn) else {
            return;
        };
        if !p.params.can_publish_data {
            return;
        }
        let reliable = match p.pub_channels.get(&channel).map(String::as_str) {
            Some("_reliable") => true,
            Some("_lossy") => false,
            _ => return,
        };
        #[cfg(feature = "tap")]
        if let Some(tap) = self.tap.as_mut() {
            tap(TapRecord {
                kind: "data",
                from: p.info.identity.clone(),
                marker: false,
                payload: data.to_vec(),
            });
        }
        let Ok(mut packet) = lk::DataPacket::decode(data) else {
            tracing::debug!(?conn, "undecodable data packet dropped");
            return;
        };
        if let Err(why) = participant_may_send(&packet) {
            tracing::info!(?conn, why, "data packet dropped");
            return;
        }
        // The sender is who we say it is, not who the packet says.
        packet.participant_identity = p.info.identity.clone();
        packet.participant_sid = p.info.sid.clone();
        packet.kind = if reliable { 0 } else { 1 };
        let mut destinations = packet.destination_identities.clone();
        if let Some(lk::data_packet::Value::User(u)) = packet.value.as_mut() {
            u.participant_identity = p.info.identity.clone();
            u.participant_sid = p.info.sid.clone();
            if destinations.is_empty() {
                destinations = u.destination_identities.clone();
            }
        }
        let bytes = packet.encode_to_vec();
        let targets: Vec<ConnId> = self
            .participants
            .iter()
            .filter(|(c, q)| {
                **c != conn && (destinations.is_empty() || destinations.contains(&q.info.identity))
            })
            .map(|(c, _)| *c)
            .collect();
        for c in targets {
            self.write_data(c, reliable, &bytes);
        }
    }

    fn write_data(&mut self, conn: ConnId, reliable: bool, bytes: &[u8]) {
        let Some(q) = self.participants.get_mut(&conn) else {
            return;
        };
        let id = if reliable {
            q.sub_reliable
        } else {
            q.sub_lossy.or(q.sub_reliable)
        };
        let Some(id) = id else { return };
        if let Some(mut ch) = q.subscriber.channel(id) {
            match ch.write(true, bytes) {
                Ok(true) => {}
                // Lossy data may be lost; reliable data that cannot even be queued is reported.
                Ok(false) if reliable => {
                    tracing::info!(
                        ?conn,
                        bytes = bytes.len(),
                        "reliable data dropped: the subscriber's data channel is full"
                    );
                    self.outputs
                        .push_back(Output::Event(Event::ReliableDataDropped {
                            conn,
                            bytes: bytes.len(),
                        }));
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(?conn, error = %e, "data channel write failed"),
            }
            self.dirty.insert((conn, Pc::Subscriber));
        }
    }

    // ----------------------------------------------------------------------------------
    // Membership
    // ----------------------------------------------------------------------------------

    fn remove(&mut self, now: Instant, conn: ConnId, reason: lk::DisconnectReason) {
        let Some(mut p) = self.participants.remove(&conn) else {
            return;
        };
        p.publisher.disconnect();
        p.subscriber.disconnect();
        self.routes.retain(|_, (c, _)| *c != conn);
        self.dirty.retain(|(c, _)| *c != conn);
        self.speakers.remove(&conn);
        let own: Vec<String> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.owner == conn)
            .map(|(s, _)| s.clone())
            .collect();
        for sid in &own {
            if let Some(t) = self.tracks.remove(sid) {
                self.track_by_pub_mid.remove(&(conn, t.mid));
            }
            self.end_sink_tracks(sid);
            let others: Vec<ConnId> = self.participants.keys().copied().collect();
            for c in others {
                if self.remove_downtrack(c, sid) {
                    self.negotiate(now, c);
                }
            }
            self.outputs
                .push_back(Output::Event(Event::TrackUnpublished {
                    sid: sid.clone(),
                    participant_sid: p.info.sid.clone(),
                }));
        }
        p.info.state = lk::participant_info::State::Disconnected as i32;
        p.info.disconnect_reason = reason as i32;
        p.info.tracks.clear();
        p.info.version += 1;
        if !p.params.hidden {
            self.broadcast_update(Some(conn), vec![p.info.clone()]);
            self.departed.push_back((now, p.info.clone()));
        }
        self.outputs
            .push_back(Output::Event(Event::ParticipantLeft {
                conn,
                sid: p.info.sid.clone(),
                identity: p.info.identity.clone(),
                reason: reason as i32,
            }));
        self.outputs.push_back(Output::Close { conn });
    }

    fn broadcast_update(&mut self, except: Option<ConnId>, participants: Vec<lk::ParticipantInfo>) {
        let conns: Vec<ConnId> = self
            .participants
            .keys()
            .copied()
            .filter(|c| Some(*c) != except)
            .collect();
        for c in conns {
            self.send(
                c,
                Resp::Update(lk::ParticipantUpdate {
                    participants: participants.clone(),
                }),
            );
        }
    }

    fn room_info(&self) -> lk::Room {
        lk::Room {
            sid: self.sid.clone(),
            name: self.cfg.name.clone(),
            empty_timeout: self.cfg.empty_timeout,
            departure_timeout: 20,
            max_participants: self.cfg.max_participants,
            creation_time: self.cfg.created_unix_ms / 1000,
            creation_time_ms: self.cfg.created_unix_ms,
            num_participants: self.participants.len() as u32,
            ..Default::default()
        }
    }
}

/// A subscriber offer as the client receives it (it answers with the same id).
/// Whether a participant may send this data packet. Participants speak for themselves: user
/// messages, chat, RPC, data streams and encrypted packets. What only a server says (active
/// speakers, transcriptions, SIP DTMF, metrics) and the server's own topic are refused, so
/// that no participant can put words in the server's mouth.
pub(crate) fn participant_may_send(packet: &lk::DataPacket) -> Result<(), &'static str> {
    use lk::data_packet::Value as V;
    match &packet.value {
        Some(V::User(u)) if u.topic.as_deref() == Some(SERVER_TOPIC) => {
            Err("a participant may not send on the server's topic")
        }
        Some(
            V::User(_)
            | V::ChatMessage(_)
            | V::RpcRequest(_)
            | V::RpcAck(_)
            | V::RpcResponse(_)
            | V::StreamHeader(_)
            | V::StreamChunk(_)
            | V::StreamTrailer(_)
            | V::EncryptedPacket(_),
        ) => Ok(()),
        #[allow(deprecated)] // matched to be refused
        Some(V::Speaker(_)) => Err("speaker updates come from the server"),
        Some(V::Transcription(_)) => Err("transcriptions come from the server"),
        Some(V::SipDtmf(_)) => Err("SIP DTMF comes from the server"),
        Some(V::Metrics(_)) => Err("metrics are not relayed"),
        None => Err("empty data packet"),
    }
}

fn offer(sdp: String, id: u32) -> Resp {
    Resp::Offer(lk::SessionDescription {
        r#type: "offer".into(),
        sdp,
        id,
        ..Default::default()
    })
}

fn server_info() -> lk::ServerInfo {
    lk::ServerInfo {
        edition: lk::server_info::Edition::Standard as i32,
        version: SERVER_VERSION.to_owned(),
        protocol: PROTOCOL_VERSION,
        node_id: "enclave".to_owned(),
        ..Default::default()
    }
}

fn leave(reason: lk::DisconnectReason) -> lk::LeaveRequest {
    lk::LeaveRequest {
        reason: reason as i32,
        action: lk::leave_request::Action::Disconnect as i32,
        ..Default::default()
    }
}

/// The subscriber's payload type for `codec` on the m-line `mid`.
fn out_pt(rtc: &Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let pts = rtc.media(mid)?.remote_pts();
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == codec && (pts.is_empty() || pts.contains(&p.pt())))
        .map(|p| p.pt())
}

/// The best layer of `t` that is flowing (when `now` is given) and not above `wanted`.
fn best_layer(t: &PublishedTrack, wanted: i32, now: Option<Instant>) -> Option<Rid> {
    if t.rids.is_empty() {
        return None;
    }
    let cap = (wanted.clamp(0, 2) as usize).min(t.rids.len() - 1);
    let flowing = |r: &Rid| match now {
        Some(now) => t
            .last_seen
            .get(r)
            .is_some_and(|s| now.saturating_duration_since(*s) < LAYER_STALE),
        None => true,
    };
    t.rids[..=cap]
        .iter()
        .rev()
        .find(|r| flowing(r))
        .or_else(|| t.rids.first())
        .copied()
}

/// The codec's name as sinks get it.
fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Opus => "OPUS",
        Codec::Vp8 => "VP8",
        Codec::Vp9 => "VP9",
        Codec::H264 => "H264",
        Codec::Av1 => "AV1",
        Codec::H265 => "H265",
        _ => "UNKNOWN",
    }
}

fn quality_for_size(max_side: u32) -> i32 {
    match max_side {
        0..=400 => lk::VideoQuality::Low as i32,
        401..=800 => lk::VideoQuality::Medium as i32,
        _ => lk::VideoQuality::High as i32,
    }
}
