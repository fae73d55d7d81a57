//! A sans-IO SFU core that speaks LiveKit's client signalling protocol (protocol 17, two peer
//! connections per participant, subscriber-primary), built on `str0m`.
//!
//! One [`Room`] is one meeting. It owns every participant's two `str0m::Rtc` instances (the
//! publisher PC, where the client sends media; the subscriber PC, where the room sends it
//! media and data), the published tracks and the per-subscriber forwarding state. It reads no
//! clock, opens no socket and spawns nothing:
//!
//! ```text
//! loop {
//!     one input: join / signal / disconnect / receive(datagram) / handle_timeout(now) / end
//!     while let Some(out) = room.poll_output() { transmit, send signalling, close, report }
//!     sleep until room.poll_timeout()
//! }
//! ```
//!
//! Drain `poll_output` completely after every input; the room refuses nothing if you do not,
//! but outputs pile up and timers are only recomputed by the drain.
//!
//! **Payloads are opaque.** Forwarding decisions (which simulcast layer, where a frame starts,
//! sequence and timestamp rewriting) come from RTP headers and header extensions only; the
//! payload bytes are copied, never parsed. End-to-end encrypted media passes through unchanged.
//!
//! Failure policy: malformed signalling gets an error log and is dropped (a message that makes
//! no sense for the session closes it); a datagram no peer connection accepts is dropped; a
//! panic inside `str0m` is caught and removes only that participant.

#![warn(missing_docs)]

mod alloc;
mod data;
mod dd;
mod fanout;
mod forward;
pub mod fuzzing;
mod ids;
mod io;
mod members;
mod participant;
mod parts;
mod room;
mod sdp;
mod signalling;
mod sinks;
mod speakers;
mod track;

#[cfg(feature = "tap")]
pub use io::TapRecord;
pub use io::{
    ConnId, Event, JoinParams, LocalCandidate, Output, PublishPermission, RoomConfig, SinkCodec,
    SinkId, SinkPacket, SinkRefused, SinkTrack, SinkTrackId, Transmit, Transport,
    MAX_MEDIA_SECTIONS, MAX_TRACKS_PER_PARTICIPANT, PING_INTERVAL, PING_TIMEOUT, PRIVATE_TOPIC,
    SERVER_TOPIC,
};
pub use livekit_protocol as proto;
pub use room::Room;
