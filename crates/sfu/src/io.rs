//! What goes into a room and what comes out of it: the runtime's ids, the room's settings, the
//! outputs it asks the runtime to carry out, and the outbox that the room's parts write them to.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

/// Protocol version served on `/rtc`.
pub const PROTOCOL_VERSION: i32 = 17;
/// Server version reported to clients. livekit-client compares it as a dotted number (RPC needs
/// ≥ 1.8.0), so it names the LiveKit server behaviour we implement, not our own version.
pub const SERVER_VERSION: &str = "1.10.0";

/// Tracks one participant may have published or announced at once. A camera, a microphone
/// and a screen share with its audio are four; this leaves room for a few more sources.
pub const MAX_TRACKS_PER_PARTICIPANT: usize = 16;
/// Media sections a publisher offer may have (one per track, plus the data channel).
pub const MAX_MEDIA_SECTIONS: usize = 2 * MAX_TRACKS_PER_PARTICIPANT;
/// Topic prefix of what the server alone sends (`enclave.system`): a participant's data
/// packet on it is dropped, so that nobody can speak with the server's voice.
pub const SERVER_TOPIC: &str = "enclave.system";

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

/// Why [`crate::Room::add_sink`] refused.
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
