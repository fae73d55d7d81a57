//! A participant's signalling requests (LiveKit's `SignalRequest`), each handled by a method of
//! the room's [`Parts`]. What needs the room itself (the participant's removal) or another
//! module (a new layer allocation) goes back to the room as a [`Then`].

// `UpdateLayers` is deprecated in the protocol; older SDKs still send it, and it is ignored.
#![allow(deprecated)]

use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;
use str0m::media::KeyframeRequestKind;

use crate::io::{ConnId, Event, Outbox, Pc, MAX_TRACKS_PER_PARTICIPANT};
use crate::participant::AnswerOutcome;
use crate::parts::Parts;
use crate::track;

/// Largest participant metadata a client may ask for (LiveKit's default limit).
const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Longest participant name a client may ask for.
const MAX_NAME_BYTES: usize = 256;

/// What a request leaves for the room to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    Done,
    /// A subscriber changed what it wants: allocate layers now.
    Allocate,
    /// The participant goes: it left, or its request made no sense for the session (then it
    /// was told why already).
    Remove(lk::DisconnectReason),
    /// The participant goes at once: it kept asking past a limit.
    Evict(&'static str),
}

impl Parts<'_> {
    /// Handles `msg` from `conn`, a participant of the room.
    pub(crate) fn signal(&mut self, now: Instant, conn: ConnId, msg: Req) -> Then {
        match msg {
            Req::Offer(sd) => return self.publisher_offer(conn, sd),
            Req::Answer(sd) => return self.subscriber_answer(now, conn, sd),
            Req::Trickle(t) => {
                let p = self.participants.get_mut(conn);
                if let Some(pc) = p.and_then(|p| p.trickle(conn, &t)) {
                    self.out.touch(conn, pc);
                }
            }
            Req::AddTrack(add) => return self.add_track(conn, add),
            Req::Mute(m) => self.mute(conn, m),
            Req::TrackSetting(s) => return self.track_setting(conn, s),
            Req::Subscription(s) => self.subscription(conn, s),
            Req::Leave(_) => return Then::Remove(lk::DisconnectReason::ClientInitiated),
            Req::Ping(_) => self.out.signal(conn, Resp::Pong(self.cfg.unix_ms(now))),
            Req::PingReq(p) => {
                let pong = lk::Pong {
                    last_ping_timestamp: p.timestamp,
                    timestamp: self.cfg.unix_ms(now),
                };
                self.out.signal(conn, Resp::PongResp(pong));
            }
            Req::UpdateMetadata(u) => self.update_metadata(conn, u),
            Req::SubscriptionPermission(_)
            | Req::SyncState(_)
            | Req::Simulate(_)
            | Req::UpdateLayers(_) => {}
            other => {
                tracing::debug!(?conn, msg = ?std::mem::discriminant(&other), "signal message not handled")
            }
        }
        Then::Done
    }

    fn publisher_offer(&mut self, conn: ConnId, sd: lk::SessionDescription) -> Then {
        let p = self.participants.get_mut(conn).expect("a participant");
        let Some(sdp) = p.answer_publisher(conn, &sd) else {
            return self.refuse(conn);
        };
        self.out.touch(conn, Pc::Publisher);
        self.out.signal(
            conn,
            Resp::Answer(lk::SessionDescription {
                r#type: "answer".into(),
                sdp,
                id: sd.id,
                ..Default::default()
            }),
        );
        Then::Done
    }

    fn subscriber_answer(
        &mut self,
        now: Instant,
        conn: ConnId,
        sd: lk::SessionDescription,
    ) -> Then {
        let p = self.participants.get_mut(conn).expect("a participant");
        match p.accept_answer(conn, &sd, self.tracks) {
            AnswerOutcome::Ignored => {}
            AnswerOutcome::Refused => return self.refuse(conn),
            AnswerOutcome::Applied(opened) => {
                self.out.touch(conn, Pc::Subscriber);
                for (sid, rid) in opened {
                    self.participants.request_keyframe(
                        self.tracks,
                        self.out,
                        now,
                        &sid,
                        rid,
                        KeyframeRequestKind::Pli,
                    );
                }
                self.participants.negotiate(conn, self.tracks, self.out);
            }
        }
        Then::Done
    }

    fn add_track(&mut self, conn: ConnId, add: lk::AddTrackRequest) -> Then {
        let published = self.tracks.count_owned_by(conn);
        let p = self.participants.get(conn).expect("a participant");
        if let Err(held) = p.may_announce(published) {
            tracing::info!(?conn, cid = add.cid, held, "track refused: too many tracks");
            self.out.signal(
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
            let p = self.participants.get_mut(conn).expect("a participant");
            return if p.note_refusal() {
                Then::Evict("too many tracks")
            } else {
                Then::Done
            };
        }
        let refusal = if !p.params.can_publish {
            Some("this participant may not publish".to_owned())
        } else if !p.permission().allows(add.source) {
            Some(format!(
                "this participant may not publish a {} track now (locked by an admin or \
                 turned off in this room)",
                source_name(add.source)
            ))
        } else if self.cfg.require_encryption && add.encryption == lk::encryption::Type::None as i32
        {
            Some("this room is end-to-end encrypted: publish with encryption enabled".to_owned())
        } else {
            None
        };
        if let Some(message) = refusal {
            tracing::info!(
                ?conn,
                cid = add.cid,
                source = add.source,
                message,
                "track refused"
            );
            // The request is echoed, as LiveKit's server does, so that an SDK can match the
            // refusal to the publication waiting for it.
            self.out.signal(
                conn,
                Resp::RequestResponse(lk::RequestResponse {
                    reason: lk::request_response::Reason::NotAllowed as i32,
                    message,
                    request: Some(lk::request_response::Request::AddTrack(add)),
                    ..Default::default()
                }),
            );
            return Then::Done;
        }
        let info = track::announced(self.ids.sid("TR_"), &add);
        let p = self.participants.get_mut(conn).expect("a participant");
        p.pending_tracks.insert(add.cid.clone(), info.clone());
        self.out.signal(
            conn,
            Resp::TrackPublished(lk::TrackPublishedResponse {
                cid: add.cid,
                track: Some(info),
            }),
        );
        Then::Done
    }

    /// The participant (or an admin for it) mutes or unmutes one of its tracks: everyone hears
    /// the new state.
    pub(crate) fn mute(&mut self, conn: ConnId, m: lk::MuteTrackRequest) {
        let Some(p) = self.participants.get_mut(conn) else {
            return;
        };
        let Some(t) = p.info.tracks.iter_mut().find(|t| t.sid == m.sid) else {
            return;
        };
        if t.muted == m.muted {
            return;
        }
        t.muted = m.muted;
        p.info.version += 1;
        let info = p.info.clone();
        self.participants
            .broadcast_update(self.out, None, vec![info]);
    }

    fn track_setting(&mut self, conn: ConnId, s: lk::UpdateTrackSettings) -> Then {
        let Some(p) = self.participants.get_mut(conn) else {
            return Then::Done;
        };
        for sid in &s.track_sids {
            if let Some(d) = p.downtracks.get_mut(sid) {
                d.fwd.set_paused(s.disabled);
                d.wanted = if s.width > 0 || s.height > 0 {
                    track::quality_for_size(s.width.max(s.height))
                } else {
                    s.quality
                };
            }
        }
        Then::Allocate
    }

    fn subscription(&mut self, conn: ConnId, s: lk::UpdateSubscription) {
        let Some(p) = self.participants.get_mut(conn) else {
            return;
        };
        let sids = s
            .track_sids
            .iter()
            .chain(s.participant_tracks.iter().flat_map(|pt| &pt.track_sids));
        for sid in sids {
            if !s.subscribe {
                p.remove_downtrack(sid);
            } else if let Some(t) = self.tracks.get(sid).filter(|t| t.owner != conn) {
                p.add_downtrack(sid, t);
            }
        }
        self.participants.negotiate(conn, self.tracks, self.out);
    }

    /// A participant asks to change its own metadata or name: refused at once when its token
    /// does not allow it, when it sets attributes (not kept here) or sends too much; otherwise
    /// the runtime decides ([`Event::MetadataRequested`], then `Room::answer_metadata`).
    fn update_metadata(&mut self, conn: ConnId, u: lk::UpdateParticipantMetadata) {
        let Some(p) = self.participants.get(conn) else {
            return;
        };
        let refusal = if !p.params.can_update_metadata {
            Some((
                lk::request_response::Reason::NotAllowed,
                "this participant may not change its own metadata".to_owned(),
            ))
        } else if !u.attributes.is_empty() {
            Some((
                lk::request_response::Reason::UnsupportedType,
                "participant attributes are not supported".to_owned(),
            ))
        } else if u.metadata.len() > MAX_METADATA_BYTES || u.name.len() > MAX_NAME_BYTES {
            Some((
                lk::request_response::Reason::LimitExceeded,
                format!("metadata is limited to {MAX_METADATA_BYTES} bytes and a name to {MAX_NAME_BYTES}"),
            ))
        } else {
            None
        };
        if let Some((reason, message)) = refusal {
            return refuse_metadata(self.out, conn, u, reason, message);
        }
        let identity = p.info.identity.clone();
        self.out.event(Event::MetadataRequested {
            identity,
            request_id: u.request_id,
            metadata: u.metadata,
            name: u.name,
        });
    }

    /// A message that makes no sense for the session ends it.
    fn refuse(&mut self, conn: ConnId) -> Then {
        self.out.leave(conn, lk::DisconnectReason::StateMismatch);
        Then::Remove(lk::DisconnectReason::StateMismatch)
    }
}

/// Refuses a metadata update, echoing the request so that the client's SDK can match it.
pub(crate) fn refuse_metadata(
    out: &mut Outbox,
    conn: ConnId,
    u: lk::UpdateParticipantMetadata,
    reason: lk::request_response::Reason,
    message: String,
) {
    tracing::info!(?conn, message, "metadata update refused");
    out.signal(
        conn,
        Resp::RequestResponse(lk::RequestResponse {
            request_id: u.request_id,
            reason: reason as i32,
            message,
            request: Some(lk::request_response::Request::UpdateMetadata(u)),
        }),
    );
}

fn source_name(source: i32) -> &'static str {
    match lk::TrackSource::try_from(source) {
        Ok(lk::TrackSource::Camera) => "camera",
        Ok(lk::TrackSource::Microphone) => "microphone",
        Ok(lk::TrackSource::ScreenShare) => "screen share",
        Ok(lk::TrackSource::ScreenShareAudio) => "screen share audio",
        _ => "unknown-source",
    }
}
