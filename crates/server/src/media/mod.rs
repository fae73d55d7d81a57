//! The media runtime: one task owns the media sockets ([`net`]) and every room's SFU core
//! ([`enclave_sfu::Room`]), routes datagrams, TCP frames and signalling frames to them, turns
//! their outputs into sends, WebSocket frames and room-state updates, and sleeps until the
//! earliest timer. No business logic lives here; it is all in the core.
//!
//! One worker is one shard; more shards (each with its own socket) can come later without
//! touching the core.
//!
//! Routing is by transport and source address: the first datagram from an address is offered
//! to each room until one accepts it (a STUN check with that room's credentials), and later
//! ones go straight to that room. Timers are a heap of the rooms' deadlines, so a pass wakes
//! only the rooms that are due.
//!
//! The parts: [`Media`], the handle the rest of the server holds (`handle`); the worker task
//! and the commands it takes (`worker`); the signalling connections it serves (`conns`); the
//! sinks it feeds (`sink`); what it reports ([`MediaEvent`], `events`); the sockets (`net`).

pub mod addrs;
mod conns;
mod events;
mod handle;
mod net;
mod sink;
pub mod stun;
#[cfg(feature = "tap")]
mod tap;
mod worker;

pub use events::{Activity, MediaEvent};
pub use handle::Media;

/// Topic of server-originated data packets (`broadcastToRoom`); the payload is JSON with a
/// `type` of `SYSTEM_CHAT_MSG` or `SYSTEM_NOTIFICATION`.
pub const SYSTEM_TOPIC: &str = enclave_sfu::SERVER_TOPIC;
/// The web client's chat topic (`web/src/protocol.ts`, `TOPIC_CHAT`): a participant whose chat
/// is locked may not send on it.
pub const CHAT_TOPIC: &str = "enclave.chat";
/// The web client's reactions topic: dropped by the media server in a room with
/// `allow_reactions: false`, and for a participant whose reactions a host locked.
pub const REACTION_TOPIC: &str = "enclave.reaction";

/// A frame for a signalling connection.
#[derive(Debug)]
pub enum ConnOut {
    Frame(Vec<u8>),
    Close,
}

/// Signalling frames queued for one connection before it counts as too slow.
pub const SIGNAL_QUEUE: usize = 512;

/// Why a signalling request was not handed to the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalRefused {
    /// The worker's inbound queue is full.
    Overloaded,
    /// The worker is gone.
    Stopped,
}

/// Facts the worker needs to create a room's core on its first join.
#[derive(Debug, Clone)]
pub struct RoomFacts {
    pub room_id: String,
    /// The session: a core of another session of the same room id is not this room's.
    pub sid: String,
    pub empty_timeout: u32,
    pub max_participants: u32,
    pub e2ee: bool,
}
