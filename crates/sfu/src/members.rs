//! The room's participants, by the connection each joined on: finding one, what goes to all of
//! them (participant updates, quality reports), and what one participant's change asks of
//! another (a subscriber offer, a keyframe from a track's publisher).

use std::collections::BTreeMap;
use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use str0m::media::{KeyframeRequestKind, MediaKind, Rid};

use crate::io::{ConnId, Outbox, Pc};
use crate::participant::{Overdue, Participant};
use crate::track::Tracks;

/// Every participant of the room.
#[derive(Default)]
pub(crate) struct Participants {
    /// Boxed: a participant holds two large `Rtc`s, and B-tree nodes reserve room for eleven.
    by_conn: BTreeMap<ConnId, Box<Participant>>,
}

impl Participants {
    pub(crate) fn len(&self) -> usize {
        self.by_conn.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }

    pub(crate) fn contains(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn)
    }

    pub(crate) fn get(&self, conn: ConnId) -> Option<&Participant> {
        self.by_conn.get(&conn).map(|p| &**p)
    }

    pub(crate) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Participant> {
        self.by_conn.get_mut(&conn).map(|p| &mut **p)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnId, &Participant)> {
        self.by_conn.iter().map(|(c, p)| (*c, &**p))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (ConnId, &mut Participant)> {
        self.by_conn.iter_mut().map(|(c, p)| (*c, &mut **p))
    }

    pub(crate) fn conns(&self) -> Vec<ConnId> {
        self.by_conn.keys().copied().collect()
    }

    pub(crate) fn insert(&mut self, conn: ConnId, p: Box<Participant>) {
        self.by_conn.insert(conn, p);
    }

    pub(crate) fn remove(&mut self, conn: ConnId) -> Option<Box<Participant>> {
        self.by_conn.remove(&conn)
    }

    /// The connection of the participant with `identity` (identities are unique in a room).
    pub(crate) fn conn_of(&self, identity: &str) -> Option<ConnId> {
        self.iter()
            .find(|(_, p)| p.info.identity == identity)
            .map(|(c, _)| c)
    }

    /// What others may know of everyone but `except`: the participants that are not hidden.
    pub(crate) fn visible_infos(&self, except: Option<ConnId>) -> Vec<lk::ParticipantInfo> {
        self.iter()
            .filter(|(c, p)| Some(*c) != except && !p.params.hidden)
            .map(|(_, p)| p.info.clone())
            .collect()
    }

    /// Sends every participant a message made by `msg`.
    pub(crate) fn broadcast(&self, out: &mut Outbox, msg: impl Fn() -> Resp) {
        for c in self.by_conn.keys() {
            out.signal(*c, msg());
        }
    }

    /// Sends every participant (but `except`) the new state of `participants`.
    pub(crate) fn broadcast_update(
        &self,
        out: &mut Outbox,
        except: Option<ConnId>,
        participants: Vec<lk::ParticipantInfo>,
    ) {
        for c in self.by_conn.keys().filter(|c| Some(**c) != except) {
            out.signal(
                *c,
                Resp::Update(lk::ParticipantUpdate {
                    participants: participants.clone(),
                }),
            );
        }
    }

    /// Tells everyone the participant's current info; a hidden participant is told alone.
    pub(crate) fn announce(&self, out: &mut Outbox, conn: ConnId) {
        let Some(p) = self.get(conn) else {
            return;
        };
        if p.params.hidden {
            out.signal(
                conn,
                Resp::Update(lk::ParticipantUpdate {
                    participants: vec![p.info.clone()],
                }),
            );
        } else {
            self.broadcast_update(out, None, vec![p.info.clone()]);
        }
    }

    /// Sends the subscriber an offer for everything that changed, unless one is in flight
    /// (then the changes wait for its answer).
    pub(crate) fn negotiate(&mut self, conn: ConnId, tracks: &Tracks, out: &mut Outbox) {
        let Some(p) = self.get(conn) else {
            return;
        };
        if !p.wants_offer() {
            return;
        }
        // Each new m-line names the track's owner in its msid.
        let to_add: Vec<(String, MediaKind, String)> = p
            .tracks_to_offer()
            .filter_map(|(sid, kind)| {
                let owner = tracks.get(sid)?.owner;
                let owner_sid = self.get(owner)?.info.sid.clone();
                Some((sid.clone(), kind, owner_sid))
            })
            .collect();
        let p = self.get_mut(conn).expect("checked above");
        if let Some((sdp, id)) = p.offer(to_add) {
            out.touch(conn, Pc::Subscriber);
            out.offer(conn, sdp, id);
        }
    }

    /// Asks the publisher of track `sid` for a keyframe of layer `rid`, unless that layer was
    /// asked lately (see `PublishedTrack::take_keyframe_request`).
    pub(crate) fn request_keyframe(
        &mut self,
        tracks: &mut Tracks,
        out: &mut Outbox,
        now: Instant,
        sid: &str,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
    ) {
        let Some(t) = tracks.get_mut(sid) else {
            return;
        };
        if !t.take_keyframe_request(rid, now) {
            return;
        }
        let (owner, mid) = (t.owner, t.mid);
        let Some(p) = self.get_mut(owner) else {
            return;
        };
        let mut api = p.publisher.direct_api();
        if let Some(rx) = api.stream_rx_by_mid(mid, rid) {
            rx.request_keyframe(kind);
            out.touch(owner, Pc::Publisher);
        }
    }

    /// Tells everyone the connection quality of every connected participant (see
    /// `Participant::quality`).
    pub(crate) fn report_quality(&self, out: &mut Outbox) {
        let updates: Vec<lk::ConnectionQualityInfo> = self
            .by_conn
            .values()
            .filter(|p| p.active)
            .map(|p| p.quality())
            .collect();
        if updates.is_empty() {
            return;
        }
        self.broadcast(out, || {
            Resp::ConnectionQuality(lk::ConnectionQualityUpdate {
                updates: updates.clone(),
            })
        });
    }

    /// Whose time is up at `now` (see [`Overdue`]), in the order they go: those whose media
    /// connection failed first, then those whose signalling was not resumed.
    pub(crate) fn overdue(&self, now: Instant) -> Vec<(ConnId, Overdue)> {
        let mut due: Vec<(ConnId, Overdue)> = self
            .iter()
            .filter_map(|(c, p)| Some((c, p.overdue(now)?)))
            .collect();
        // Stable: connection order within each group.
        due.sort_by_key(|(_, why)| *why == Overdue::SignalLost);
        due
    }
}
