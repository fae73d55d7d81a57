//! Active speakers: who spoke within the last second, as the audio level header extension
//! (RFC 6464) of their packets tells (see `Participant::incoming`); the payload is never read.

use std::collections::BTreeSet;
use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use crate::io::{ConnId, Event, Outbox};
use crate::members::Participants;

/// The speakers clients were last told about.
#[derive(Debug, Default)]
pub(crate) struct Speakers {
    active: BTreeSet<ConnId>,
}

impl Speakers {
    /// `conn` left: it is no longer a speaker, and nobody needs telling.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.active.remove(&conn);
    }

    /// Finds who speaks at `now`. On a change, clients get the full list (those speaking,
    /// then those who just stopped) and the runtime an [`Event::Speaking`] per participant
    /// that started or stopped.
    pub(crate) fn update(&mut self, participants: &Participants, now: Instant, out: &mut Outbox) {
        let active: BTreeSet<ConnId> = participants
            .iter()
            .filter(|(_, p)| p.speaking(now))
            .map(|(c, _)| c)
            .collect();
        if active == self.active {
            return;
        }
        let info = |c: &ConnId, level: f32, active: bool| {
            participants.get(*c).map(|p| lk::SpeakerInfo {
                sid: p.info.sid.clone(),
                level,
                active,
            })
        };
        for (c, speaking) in active
            .symmetric_difference(&self.active)
            .map(|c| (c, active.contains(c)))
        {
            if let Some(p) = participants.get(*c) {
                let identity = p.info.identity.clone();
                out.event(Event::Speaking { identity, speaking });
            }
        }
        let mut speakers: Vec<lk::SpeakerInfo> =
            active.iter().filter_map(|c| info(c, 0.8, true)).collect();
        speakers.extend(
            self.active
                .difference(&active)
                .filter_map(|c| info(c, 0.0, false)),
        );
        self.active = active;
        participants.broadcast(out, || {
            Resp::SpeakersChanged(lk::SpeakersChanged {
                speakers: speakers.clone(),
            })
        });
    }
}
