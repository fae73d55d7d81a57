//! The room's parts, lent together to the module that handles an input (`signalling` for a
//! request, `fanout` for what crosses participants). Each works on them through its own
//! `impl Parts` without a reference to the room, which owns them and lends them for one call.

use crate::ids::IdGen;
#[cfg(feature = "tap")]
use crate::io::Tap;
use crate::io::{Outbox, RoomConfig};
use crate::members::Participants;
use crate::sinks::Sinks;
use crate::track::Tracks;

/// Everything a room owns but its own bookkeeping (routes, timers, who departed).
pub(crate) struct Parts<'a> {
    pub(crate) cfg: &'a RoomConfig,
    pub(crate) ids: &'a mut IdGen,
    pub(crate) participants: &'a mut Participants,
    pub(crate) tracks: &'a mut Tracks,
    pub(crate) sinks: &'a mut Sinks,
    pub(crate) out: &'a mut Outbox,
    #[cfg(feature = "tap")]
    pub(crate) tap: &'a mut Option<Tap>,
}
