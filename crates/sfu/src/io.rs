//! What goes into a room and what comes out of it: the runtime's ids, the room's settings, the
//! outputs it asks the runtime to carry out, and the outbox that the room's parts write them to.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

/// Protocol version served on `/rtc`.
pub(crate) const PROTOCOL_VERSION: i32 = 17;
/// Server version reported to clients. livekit-client compares it as a dotted number (RPC needs
/// ≥ 1.8.0), so it names the LiveKit server behaviour we implement, not our own version.
pub(crate) const SERVER_VERSION: &str = "1.10.0";

/// Tracks one participant may have published or announced at once. A camera, a microphone
/// and a screen share with its audio are four; this leaves room for a few more sources.
pub const MAX_TRACKS_PER_PARTICIPANT: usize = 16;
/// Media sections a publisher offer may have (one per track, plus the data channel).
pub const MAX_MEDIA_SECTIONS: usize = 2 * MAX_TRACKS_PER_PARTICIPANT;
/// Topic prefix of what the server alone sends (`enclave.system`): a participant's data
/// packet on it is dropped, so that nobody can speak with the server's voice.
pub const SERVER_TOPIC: &str = "enclave.system";
/// Topic of private messages: a participant's data packet on it must name its recipients (one
/// or more), so that a private message is never relayed to everyone, and a chat lock that denies
/// the public topic cannot be sidestepped through this one.
pub const PRIVATE_TOPIC: &str = "enclave.private";

/// Seconds a client may stay silent on signalling before the server gives up on it (LiveKit's
/// `ping_timeout`, sent in the join response); clients ping every [`PING_INTERVAL`].
pub const PING_TIMEOUT: u32 = 15;
/// Seconds between a client's signalling pings (LiveKit's `ping_interval`).
pub const PING_INTERVAL: u32 = 5;

/// How media reaches the room: UDP datagrams, or RFC 4571 frames on a TCP connection (ICE over
/// TCP, for networks that block UDP). The core treats both alike; the runtime frames them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// A UDP datagram.
    Udp,
    /// One frame of a TCP connection that the client opened to a passive TCP candidate.
    Tcp,
}

impl Transport {
    pub(crate) fn protocol(self) -> str0m::net::Protocol {
        match self {
            Transport::Udp => str0m::net::Protocol::Udp,
            Transport::Tcp => str0m::net::Protocol::Tcp,
        }
    }

    /// None for the transports we never offer (TLS, SSL-TCP).
    pub(crate) fn from_protocol(p: str0m::net::Protocol) -> Option<Self> {
        match p {
            str0m::net::Protocol::Udp => Some(Transport::Udp),
            str0m::net::Protocol::Tcp => Some(Transport::Tcp),
            _ => None,
        }
    }
}

/// One address the room's participants may send media to: an ICE host candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalCandidate {
    /// UDP, or passive TCP.
    pub transport: Transport,
    /// The address as clients reach it (behind 1:1 NAT, the public one; the runtime maps it).
    pub addr: SocketAddr,
}

/// A signalling connection (one WebSocket), named by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Settings fixed for the room's life.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// The room id (LiveKit's room name).
    pub name: String,
    /// Where clients may send media: every address is offered to every participant as an ICE
    /// host candidate, in this order of preference.
    pub candidates: Vec<LocalCandidate>,
    /// Seeds the id generator.
    pub seed: u64,
    /// Seconds an empty room stays (reported to clients in the room info).
    pub empty_timeout: u32,
    /// At most this many participants (0: no limit), reported to clients.
    pub max_participants: u32,
    /// The room is end-to-end encrypted: every published track must be encrypted by its
    /// sender, and the room refuses tracks announced in clear.
    pub require_encryption: bool,
    /// Subscriber PCs estimate their downlink (TWCC) and layers are allocated within it. Off:
    /// layers follow the requested quality alone, and nothing is paced.
    pub bandwidth_estimation: bool,
    /// Data topics whose messages are reported as [`Event::DataSent`] (counted for
    /// attendance: who chatted, how often). The payload is never looked at.
    pub counted_topics: Vec<String>,
    /// Unix milliseconds at `created`, so the core can tell wall time without a clock.
    pub created_unix_ms: i64,
    /// When the room was created, in the runtime's clock: every `now` given later is at or
    /// after it.
    pub created: Instant,
}

impl RoomConfig {
    /// Wall time at `now`, in Unix milliseconds.
    pub(crate) fn unix_ms(&self, now: Instant) -> i64 {
        self.created_unix_ms + now.saturating_duration_since(self.created).as_millis() as i64
    }
}

/// Who is joining, from their verified access token.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// The participant sid (`PA_…`), chosen by the runtime so that the room API knows it too.
    pub sid: String,
    /// The identity the token names; unique in the room.
    pub identity: String,
    /// Display name.
    pub name: String,
    /// The token's participant metadata, passed through to other participants.
    pub metadata: String,
    /// May publish tracks.
    pub can_publish: bool,
    /// The sources it may publish (`lk::TrackSource` values); empty: any. Checked when a track
    /// is announced; [`crate::Room::set_permission`] changes it live.
    pub can_publish_sources: Vec<i32>,
    /// May subscribe to other participants' tracks.
    pub can_subscribe: bool,
    /// May send data packets.
    pub can_publish_data: bool,
    /// May ask to change its own metadata and name (`UpdateParticipantMetadata`); the runtime
    /// still decides each request ([`Event::MetadataRequested`]).
    pub can_update_metadata: bool,
    /// User-packet topics it may not send on (an admin's chat lock); empty: none.
    pub denied_data_topics: Vec<String>,
    /// Not announced to other participants.
    pub hidden: bool,
    /// Subscribed to every track as it is published (LiveKit's `auto_subscribe`).
    pub auto_subscribe: bool,
    /// The protocol version the client announced.
    pub client_protocol: i32,
    /// STUN/TURN servers the client may use (with its own credentials), sent in the join
    /// response.
    pub ice_servers: Vec<lk::IceServer>,
}

impl JoinParams {
    /// A participant with what LiveKit grants a token that says no more than `roomJoin`: it
    /// may publish any source, send data and subscribe (to everything, as it is published),
    /// not change its own metadata; it is not hidden, its name is its identity, and it speaks
    /// the core's protocol. The runtime fills these from the verified token instead; tests and
    /// harnesses start here.
    pub fn new(sid: impl Into<String>, identity: impl Into<String>) -> Self {
        let identity = identity.into();
        Self {
            sid: sid.into(),
            name: identity.clone(),
            identity,
            metadata: String::new(),
            can_publish: true,
            can_publish_sources: Vec::new(),
            can_subscribe: true,
            can_publish_data: true,
            can_update_metadata: false,
            denied_data_topics: Vec::new(),
            hidden: false,
            auto_subscribe: true,
            client_protocol: PROTOCOL_VERSION,
            ice_servers: Vec::new(),
        }
    }
}

/// What a participant may publish, as an admin's locks leave it (see
/// [`crate::Room::set_permission`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishPermission {
    /// May publish tracks at all.
    pub can_publish: bool,
    /// The sources it may publish (`lk::TrackSource` values); empty: any.
    pub can_publish_sources: Vec<i32>,
    /// May send data packets.
    pub can_publish_data: bool,
    /// User-packet topics it may not send on (an admin's chat lock); empty: none.
    pub denied_data_topics: Vec<String>,
}

impl PublishPermission {
    /// Whether a track of `source` (an `lk::TrackSource` value) may be published.
    pub fn allows(&self, source: i32) -> bool {
        self.can_publish
            && (self.can_publish_sources.is_empty() || self.can_publish_sources.contains(&source))
    }
}

/// A datagram (or, over TCP, a frame) to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// UDP, or the TCP connection from `destination` to `source`.
    pub transport: Transport,
    /// Our address it leaves from.
    pub source: SocketAddr,
    /// The peer's address.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// Something that happened, for the runtime to report (room state, webhooks, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A participant is gone.
    ParticipantLeft {
        /// Its connection.
        conn: ConnId,
        /// Its participant sid.
        sid: String,
        /// Its identity.
        identity: String,
        /// LiveKit's `DisconnectReason`.
        reason: i32,
    },
    /// A track was published.
    TrackPublished {
        /// The track sid.
        sid: String,
        /// Its publisher's participant sid.
        participant_sid: String,
        /// `"audio"` or `"video"`.
        kind: &'static str,
    },
    /// A track is gone (unpublished, or its publisher left).
    TrackUnpublished {
        /// The track sid.
        sid: String,
        /// Its publisher's participant sid.
        participant_sid: String,
    },
    /// A participant started or stopped speaking (their audio level header extension said
    /// speech within the last second, or no longer does).
    Speaking {
        /// Its identity.
        identity: String,
        /// Whether they speak now.
        speaking: bool,
    },
    /// A participant asks to change its own metadata and/or name. Nothing changes until the
    /// runtime answers with [`crate::Room::answer_metadata`].
    MetadataRequested {
        /// Its identity.
        identity: String,
        /// Echoed in a refusal.
        request_id: u32,
        /// The metadata as the client wants it (its SDK sends both metadata and name, the
        /// current value for the one it does not change).
        metadata: String,
        /// The name as the client wants it.
        name: String,
    },
    /// A participant's data message on one of [`RoomConfig::counted_topics`] was relayed.
    DataSent {
        /// The sender's identity.
        identity: String,
        /// The topic.
        topic: String,
    },
    /// A reliable data message could not be queued for a subscriber (its data channel's
    /// buffer is full: the subscriber does not keep up); the message is lost for it.
    ReliableDataDropped {
        /// The subscriber.
        conn: ConnId,
        /// The message's size.
        bytes: usize,
    },
    /// A participant was removed for breaking the signalling rules (too many tracks refused,
    /// a flood).
    ParticipantEvicted {
        /// Its connection.
        conn: ConnId,
        /// Its identity.
        identity: String,
        /// Which rule.
        why: &'static str,
    },
}

/// A server-side consumer of the room's media (a recorder, an RTMP broadcaster), named by the
/// runtime. A sink gets every track, at its best flowing layer: [`Output::SinkTrack`] once,
/// then [`Output::Sink`] packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SinkId(pub u64);

/// Why [`crate::Room::add_sink`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SinkRefused {
    /// The server must not see the media of an end-to-end encrypted room, so it gets none.
    #[error("the room is end-to-end encrypted: its media cannot be recorded or broadcast")]
    EndToEndEncrypted,
    /// The room has ended.
    #[error("the room has ended")]
    Ended,
    /// The sink is attached already.
    #[error("this sink is already attached")]
    Exists,
}

/// Names one track of one sink in its packets: announced by an [`Output::SinkTrack`], unique in
/// the room for as long as the room lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SinkTrackId(pub u32);

/// The codec of a sink's track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkCodec {
    /// Opus audio.
    Opus,
    /// VP8 video.
    Vp8,
    /// VP9 video.
    Vp9,
    /// H.264 video.
    H264,
    /// H.265 video.
    H265,
    /// AV1 video.
    Av1,
    /// A codec the room does not name (none it negotiates today).
    Other,
}

impl SinkCodec {
    /// The upper-case name, for logs: `OPUS`, `VP8`, `VP9`, `H264`, `H265`, `AV1`, `OTHER`.
    pub fn name(self) -> &'static str {
        match self {
            SinkCodec::Opus => "OPUS",
            SinkCodec::Vp8 => "VP8",
            SinkCodec::Vp9 => "VP9",
            SinkCodec::H264 => "H264",
            SinkCodec::H265 => "H265",
            SinkCodec::Av1 => "AV1",
            SinkCodec::Other => "OTHER",
        }
    }
}

/// A track a sink is about to get, announced once, before its first packet: what every
/// [`SinkPacket`] of it would otherwise have to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkTrack {
    /// How its packets name it.
    pub id: SinkTrackId,
    /// The track's sid (`TR_…`).
    pub track_sid: String,
    /// The track's publisher.
    pub participant_identity: String,
    /// A video track (else audio).
    pub video: bool,
    /// The codec of its first packet (the codec its m-line negotiated).
    pub codec: SinkCodec,
    /// The RTP clock rate of its packets' timestamps.
    pub clock_rate: u32,
}

/// One packet for a sink: the track's packets rewritten into one continuous stream (as a
/// subscriber would get them), the payload as the publisher sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkPacket {
    /// The track it belongs to, announced before.
    pub track: SinkTrackId,
    /// RTP sequence number of the continuous stream.
    pub seq: u16,
    /// RTP timestamp of the continuous stream.
    pub timestamp: u32,
    /// RTP marker bit (the last packet of a video frame).
    pub marker: bool,
    /// The payload as the publisher sent it.
    pub payload: Vec<u8>,
}

/// What the runtime must do.
#[derive(Debug)]
pub enum Output {
    /// Send this datagram.
    Transmit(Transmit),
    /// Send this frame on the connection.
    Signal {
        /// The connection.
        conn: ConnId,
        /// The frame.
        response: Box<lk::SignalResponse>,
    },
    /// Close the connection (after sending what was queued for it).
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Report this.
    Event(Event),
    /// A track a sink gets from now on; its packets follow.
    SinkTrack {
        /// The sink.
        sink: SinkId,
        /// The track.
        track: SinkTrack,
    },
    /// A packet of an announced track for a sink.
    Sink {
        /// The sink.
        sink: SinkId,
        /// The packet.
        packet: SinkPacket,
    },
    /// A track a sink was getting is gone (unpublished, or its publisher left). A track
    /// never announced may end too: it sent the sink nothing.
    SinkTrackEnded {
        /// The sink.
        sink: SinkId,
        /// The track.
        track: SinkTrackId,
    },
}

/// One of a participant's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Pc {
    /// Where the client sends its media and data.
    Publisher,
    /// Where the room sends the client media and data.
    Subscriber,
}

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

/// The test-only tap's callback (see [`TapRecord`]).
#[cfg(feature = "tap")]
pub(crate) type Tap = Box<dyn FnMut(TapRecord) + Send>;

/// Where the room's parts put what they have to say, instead of each reaching into the room:
/// outputs in order, and the peer connections that were touched and must be drained.
#[derive(Default)]
pub(crate) struct Outbox {
    outputs: VecDeque<Output>,
    dirty: BTreeSet<(ConnId, Pc)>,
    /// Connections whose signalling is lost (awaiting a resume): nobody reads what would be
    /// sent to them, and the resume sends the current state again.
    unreachable: BTreeSet<ConnId>,
}

impl Outbox {
    /// A signalling message for `conn` (dropped while its signalling is lost).
    pub(crate) fn signal(&mut self, conn: ConnId, msg: Resp) {
        if self.unreachable.contains(&conn) {
            return;
        }
        self.outputs.push_back(Output::Signal {
            conn,
            response: Box::new(lk::SignalResponse { message: Some(msg) }),
        });
    }

    /// Tells `conn` to leave, with `reason` (its close follows when it is removed).
    pub(crate) fn leave(&mut self, conn: ConnId, reason: lk::DisconnectReason) {
        self.signal(
            conn,
            Resp::Leave(lk::LeaveRequest {
                reason: reason as i32,
                action: lk::leave_request::Action::Disconnect as i32,
                ..Default::default()
            }),
        );
    }

    /// A subscriber offer for `conn` (the client answers with the same id).
    pub(crate) fn offer(&mut self, conn: ConnId, sdp: String, id: u32) {
        self.signal(
            conn,
            Resp::Offer(lk::SessionDescription {
                r#type: "offer".into(),
                sdp,
                id,
                ..Default::default()
            }),
        );
    }

    pub(crate) fn push(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// The peer connection has input or output pending: drain it before the input returns.
    pub(crate) fn touch(&mut self, conn: ConnId, pc: Pc) {
        self.dirty.insert((conn, pc));
    }

    pub(crate) fn next_dirty(&mut self) -> Option<(ConnId, Pc)> {
        self.dirty.pop_first()
    }

    /// Signalling to `conn` is lost (`true`) or back (`false`).
    pub(crate) fn set_unreachable(&mut self, conn: ConnId, lost: bool) {
        if lost {
            self.unreachable.insert(conn);
        } else {
            self.unreachable.remove(&conn);
        }
    }

    /// `conn` is gone: nothing of it is left to drain, and what is sent to it now (its leave,
    /// its close) goes out.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.dirty.retain(|(c, _)| *c != conn);
        self.unreachable.remove(&conn);
    }

    pub(crate) fn pop(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}
