//! The room state machine: its public inputs, the dispatch of peer-connection events,
//! membership (joins, resumes, removals) and the publication of tracks. The room owns every
//! part and lends them ([`Parts`]) to the module that handles an input: signalling requests
//! (`signalling.rs`), what crosses participants (`fanout.rs`: forwarding, data, layer
//! allocation). Speakers (`speakers.rs`), all participants (`members.rs`), one participant
//! (`participant.rs`) and tracks (`track.rs`) are types the room owns. Each writes to the
//! room's [`Outbox`]; none holds a reference back to the room. See the crate docs for the
//! drive loop.

// The protocol marks several fields deprecated that current clients still read (TrackInfo's
// layers and simulcast, by older SDKs), so the server keeps filling them, as LiveKit's does.
#![allow(deprecated)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Simulcast};
use str0m::net::Receive;
use str0m::{Event as RtcEvent, Input};

use crate::ids::IdGen;
use crate::io::{
    ConnId, Event, JoinParams, Outbox, Output, Pc, PublishPermission, RoomConfig, SinkId,
    SinkRefused, Transport, PING_INTERVAL, PING_TIMEOUT, PROTOCOL_VERSION, SERVER_VERSION,
};
#[cfg(feature = "tap")]
use crate::io::{Tap, TapRecord};
use crate::members::Participants;
use crate::participant::{Overdue, Participant, CONNECT_GRACE, SIGNAL_GRACE};
use crate::parts::Parts;
use crate::signalling::{self, Then};
use crate::sinks::Sinks;
use crate::speakers::Speakers;
use crate::track::{self, PublishedTrack, Tracks};

/// Period of layer allocation and speaker detection.
const TICK: Duration = Duration::from_millis(500);
/// Connection quality is reported every this many ticks.
const QUALITY_TICKS: u64 = 4;

/// One meeting. See the crate docs.
pub struct Room {
    #[cfg(feature = "tap")]
    tap: Option<Tap>,
    cfg: RoomConfig,
    sid: String,
    ids: IdGen,
    sif_trailer: Vec<u8>,
    participants: Participants,
    tracks: Tracks,
    /// Which PC a source address last reached, tried first for its next datagram. UDP and TCP
    /// sources are apart: a client may well use the same port number for both.
    routes: HashMap<(Transport, SocketAddr), (ConnId, Pc)>,
    out: Outbox,
    next_tick: Instant,
    speakers: Speakers,
    sinks: Sinks,
    /// Participants who left in the last `SIGNAL_GRACE`, as last announced: a resuming client
    /// missed those announcements.
    departed: VecDeque<(Instant, lk::ParticipantInfo)>,
    ticks: u64,
    ended: bool,
}

impl Room {
    /// An empty room; its sid (`RM_…`) and ids come from `cfg.seed`.
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
            participants: Participants::default(),
            tracks: Tracks::default(),
            routes: HashMap::new(),
            out: Outbox::default(),
            next_tick,
            speakers: Speakers::default(),
            sinks: Sinks::default(),
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

    /// How many participants are in the room.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether the room has no participant.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    // ----------------------------------------------------------------------------------
    // Inputs
    // ----------------------------------------------------------------------------------

    /// A participant joins on connection `conn`. Another session of the same identity is
    /// evicted first (`DUPLICATE_IDENTITY`), as LiveKit does.
    pub fn join(&mut self, now: Instant, conn: ConnId, params: JoinParams) {
        if self.ended {
            self.out.leave(conn, lk::DisconnectReason::RoomDeleted);
            self.out.push(Output::Close { conn });
            return;
        }
        if let Some(old) = self.participants.conn_of(&params.identity) {
            self.out.leave(old, lk::DisconnectReason::DuplicateIdentity);
            self.remove(now, old, lk::DisconnectReason::DuplicateIdentity);
        }
        let unix_ms = self.cfg.unix_ms(now);
        let hidden = params.hidden;
        let auto = params.auto_subscribe && params.can_subscribe;
        let mut p = Box::new(Participant::new(now, unix_ms, &self.cfg, params));
        let info = p.info.clone();
        let others = self.participants.visible_infos(None);
        let join = lk::JoinResponse {
            room: Some(self.room_info()),
            participant: Some(info.clone()),
            other_participants: others,
            server_version: SERVER_VERSION.to_owned(),
            subscriber_primary: true,
            // Resume is on (the default): after a signalling blip clients reconnect with
            // `reconnect=1` and keep their peer connections (see `resume`).
            client_configuration: Some(lk::ClientConfiguration::default()),
            ping_timeout: PING_TIMEOUT as i32,
            ping_interval: PING_INTERVAL as i32,
            ice_servers: p.params.ice_servers.clone(),
            server_info: Some(server_info()),
            sif_trailer: self.sif_trailer.clone(),
            ..Default::default()
        };
        self.out.signal(conn, Resp::Join(join));
        if auto {
            for (sid, t) in self.tracks.iter().filter(|(_, t)| t.owner != conn) {
                p.add_downtrack(sid, t);
            }
        }
        self.participants.insert(conn, p);
        self.out.touch(conn, Pc::Publisher);
        self.out.touch(conn, Pc::Subscriber);
        if !hidden {
            self.participants
                .broadcast_update(&mut self.out, Some(conn), vec![info]);
        }
        self.participants
            .negotiate(conn, &self.tracks, &mut self.out);
        self.drive(now);
    }

    /// A signalling message from `conn`.
    pub fn signal(&mut self, now: Instant, conn: ConnId, request: lk::SignalRequest) {
        if !self.participants.contains(conn) {
            tracing::debug!(?conn, "signal from an unknown connection");
            return;
        }
        let Some(msg) = request.message else { return };
        match self.parts().signal(now, conn, msg) {
            Then::Done => {}
            Then::Allocate => self.parts().allocate_layers(now),
            Then::Remove(reason) => self.remove(now, conn, reason),
            Then::Evict(why) => self.evict(now, conn, why),
        }
        self.drive(now);
    }

    /// The signalling connection of `conn` closed without a leave (a leave removes the
    /// participant at once). The participant stays for `SIGNAL_GRACE`, its media flowing, so
    /// that the client can [`Room::resume`]; what the room would have told it meanwhile is
    /// lost, and the resume sends the current state again.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) {
        if let Some(p) = self.participants.get_mut(conn) {
            if p.signal_lost_since.is_none() {
                tracing::info!(?conn, sid = %p.info.sid, "signalling connection lost; waiting for a resume");
                p.signal_lost_since = Some(now);
                self.out.set_unreachable(conn, true);
            }
        }
    }

    /// Removes the participant at once, without a grace period: the runtime caught it breaking
    /// the signalling rules (a flood).
    pub fn evict(&mut self, now: Instant, conn: ConnId, why: &'static str) {
        let Some(p) = self.participants.get(conn) else {
            return;
        };
        tracing::warn!(?conn, sid = %p.info.sid, why, "participant evicted");
        self.out.event(Event::ParticipantEvicted {
            conn,
            identity: p.info.identity.clone(),
            why,
        });
        self.out.leave(conn, lk::DisconnectReason::SignalClose);
        self.remove(now, conn, lk::DisconnectReason::SignalClose);
        self.drive(now);
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
        let lost_at = p.signal_lost_since.take();
        p.restart_ice();
        let in_flight = p.offer_in_flight();
        self.out.set_unreachable(conn, false);
        tracing::info!(?conn, %sid, away = ?lost_at.map(|t| now.saturating_duration_since(t)), "signalling resumed");
        self.out.signal(
            conn,
            Resp::Reconnect(lk::ReconnectResponse {
                client_configuration: Some(lk::ClientConfiguration::default()),
                server_info: Some(server_info()),
                ice_servers: p.params.ice_servers.clone(),
                ..Default::default()
            }),
        );
        let mut infos = self.participants.visible_infos(Some(conn));
        if let Some(t) = lost_at {
            infos.extend(
                self.departed
                    .iter()
                    .filter(|(at, _)| *at >= t)
                    .map(|(_, info)| info.clone()),
            );
        }
        if !infos.is_empty() {
            self.out.signal(
                conn,
                Resp::Update(lk::ParticipantUpdate {
                    participants: infos,
                }),
            );
        }
        match in_flight {
            Some((sdp, id)) => self.out.offer(conn, sdp, id),
            None => self
                .participants
                .negotiate(conn, &self.tracks, &mut self.out),
        }
        self.drive(now);
        Some(conn)
    }

    /// A datagram (or a TCP frame) arrived from `source` at our `destination`, which is one of
    /// the room's candidate addresses. Returns whether a participant of this room accepted it.
    pub fn receive(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let Ok(recv) = Receive::new(transport.protocol(), source, destination, contents) else {
            return false;
        };
        let input = Input::Receive(now, recv);
        let route = (transport, source);
        let routed = self.routes.get(&route).copied().filter(|(c, pc)| {
            self.participants
                .get(*c)
                .is_some_and(|p| p.accepts_on(*pc, &input))
        });
        let owner = routed.or_else(|| {
            self.participants
                .iter()
                .find_map(|(c, p)| p.accepts(&input).map(|pc| (c, pc)))
        });
        let Some((conn, pc)) = owner else {
            return false;
        };
        self.routes.insert(route, (conn, pc));
        let p = self
            .participants
            .get_mut(conn)
            .expect("owner was found among participants");
        if p.handle_input(pc, input).is_err() {
            tracing::error!(
                ?conn,
                "peer connection panicked on input; removing the participant"
            );
            self.remove(now, conn, lk::DisconnectReason::StateMismatch);
        } else {
            self.out.touch(conn, pc);
        }
        self.drive(now);
        true
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut failed = Vec::new();
        for (c, p) in self.participants.iter_mut() {
            let due: Vec<Pc> = p.due(now).collect();
            for pc in due {
                if p.handle_input(pc, Input::Timeout(now)).is_ok() {
                    self.out.touch(c, pc);
                } else {
                    failed.push(c);
                    break;
                }
            }
        }
        for c in failed {
            self.remove(now, c, lk::DisconnectReason::StateMismatch);
        }
        for (c, why) in self.participants.overdue(now) {
            let reason = match why {
                Overdue::NeverConnected => {
                    tracing::info!(
                        ?c,
                        secs = CONNECT_GRACE.as_secs(),
                        "media connection never came up; removing the participant \
                         (its ICE checks did not reach any of our addresses)"
                    );
                    lk::DisconnectReason::ConnectionTimeout
                }
                Overdue::MediaLost => {
                    tracing::info!(?c, "media connection lost; removing the participant");
                    lk::DisconnectReason::ConnectionTimeout
                }
                Overdue::SignalLost => {
                    tracing::info!(
                        ?c,
                        "signalling connection not resumed; removing the participant"
                    );
                    lk::DisconnectReason::SignalClose
                }
            };
            // A client whose signalling is lost cannot be told.
            if why != Overdue::SignalLost {
                self.out.leave(c, reason);
            }
            self.remove(now, c, reason);
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
                self.tracks.measure(TICK);
            }
            self.parts().allocate_layers(now);
            self.speakers.update(&self.participants, now, &mut self.out);
            self.ticks += 1;
            if self.ticks % QUALITY_TICKS == 0 {
                self.participants.report_quality(&mut self.out);
            }
        }
        self.drive(now);
    }

    /// Removes a participant (an admin's decision). Returns whether it was in the room.
    pub fn remove_participant(&mut self, now: Instant, identity: &str) -> bool {
        let Some(conn) = self.participants.conn_of(identity) else {
            return false;
        };
        self.out
            .leave(conn, lk::DisconnectReason::ParticipantRemoved);
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
        let Some(conn) = self.participants.conn_of(identity) else {
            return false;
        };
        let owns = self
            .participants
            .get(conn)
            .is_some_and(|p| p.info.tracks.iter().any(|t| t.sid == track_sid));
        if !owns {
            return false;
        }
        let request = lk::MuteTrackRequest {
            sid: track_sid.to_owned(),
            muted,
        };
        self.out.signal(conn, Resp::Mute(request.clone()));
        if muted {
            self.parts().mute(conn, request);
        }
        self.drive(now);
        true
    }

    /// Changes what a participant may publish (an admin set or lifted a lock). Everyone hears
    /// the participant's new permission (LiveKit's SDKs then refuse a locked source before
    /// asking); a published track of a source no longer allowed is unpublished at once: its
    /// owner is told `TrackUnpublished`, subscribers lose it, and its packets are dropped from
    /// then on. Returns whether the participant is in the room.
    pub fn set_permission(
        &mut self,
        now: Instant,
        identity: &str,
        permission: PublishPermission,
    ) -> bool {
        let Some(conn) = self.participants.conn_of(identity) else {
            return false;
        };
        let Some(p) = self.participants.get_mut(conn) else {
            return false;
        };
        p.set_permission(&permission);
        let permission = p.permission();
        let locked: Vec<String> = p
            .info
            .tracks
            .iter()
            .filter(|t| !permission.allows(t.source))
            .map(|t| t.sid.clone())
            .collect();
        for sid in &locked {
            tracing::info!(
                ?conn,
                track = sid,
                "track unpublished: its source is now locked"
            );
            self.out.signal(
                conn,
                Resp::TrackUnpublished(lk::TrackUnpublishedResponse {
                    track_sid: sid.clone(),
                }),
            );
            self.unpublish(sid);
        }
        if locked.is_empty() {
            self.participants.announce(&mut self.out, conn);
        }
        self.drive(now);
        true
    }

    /// Replaces a participant's metadata (the server's decision, such as a raised hand) and
    /// tells everyone (a hidden participant only itself). Returns whether they are here.
    pub fn set_metadata(&mut self, now: Instant, identity: &str, metadata: String) -> bool {
        let Some(conn) = self.participants.conn_of(identity) else {
            return false;
        };
        let Some(p) = self.participants.get_mut(conn) else {
            return false;
        };
        p.info.metadata = metadata;
        p.info.version += 1;
        self.participants.announce(&mut self.out, conn);
        self.drive(now);
        true
    }

    /// The runtime's answer to [`Event::MetadataRequested`] `request_id`: `Ok((metadata,
    /// name))` applies them and tells everyone (the requester too, whose SDK waits for it);
    /// `Err(message)` refuses the request (`NOT_ALLOWED`, with its id). Returns whether the
    /// participant is still here.
    pub fn answer_metadata(
        &mut self,
        now: Instant,
        identity: &str,
        request_id: u32,
        answer: Result<(String, String), String>,
    ) -> bool {
        let Some(conn) = self.participants.conn_of(identity) else {
            return false;
        };
        match answer {
            Ok((metadata, name)) => {
                let Some(p) = self.participants.get_mut(conn) else {
                    return false;
                };
                p.info.metadata = metadata;
                p.info.name = name;
                p.info.version += 1;
                self.participants.announce(&mut self.out, conn);
            }
            Err(message) => {
                let request = lk::UpdateParticipantMetadata {
                    request_id,
                    ..Default::default()
                };
                signalling::refuse_metadata(
                    &mut self.out,
                    conn,
                    request,
                    lk::request_response::Reason::NotAllowed,
                    message,
                )
            }
        }
        self.drive(now);
        true
    }

    /// Sends a data packet from the server to everyone, or to the named identities.
    pub fn send_data(
        &mut self,
        now: Instant,
        payload: Vec<u8>,
        topic: Option<String>,
        destination_identities: Vec<String>,
    ) {
        self.parts()
            .send_from_server(payload, topic, &destination_identities);
        self.drive(now);
    }

    /// Ends the room: everyone is told and disconnected. Later joins are refused.
    pub fn end(&mut self, now: Instant) {
        self.ended = true;
        for c in self.participants.conns() {
            self.out.leave(c, lk::DisconnectReason::RoomDeleted);
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
        if self.sinks.contains(sink) {
            return Err(SinkRefused::Exists);
        }
        for (sid, rid) in self.sinks.attach(sink, &self.tracks, now) {
            self.parts()
                .request_keyframe(now, &sid, rid, KeyframeRequestKind::Pli);
        }
        self.drive(now);
        Ok(())
    }

    /// Detaches a sink. Returns whether it was attached.
    pub fn remove_sink(&mut self, sink: SinkId) -> bool {
        self.sinks.detach(sink)
    }

    /// A sink's decoder needs a keyframe of a track (throttled like a subscriber's request).
    pub fn sink_keyframe(&mut self, now: Instant, sink: SinkId, track_sid: &str) {
        let Some(rid) = self.sinks.keyframe_layer(sink, track_sid) else {
            return;
        };
        self.parts()
            .request_keyframe(now, track_sid, rid, KeyframeRequestKind::Pli);
        self.drive(now);
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }

    /// When [`Room::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tick = (!self.participants.is_empty()).then_some(self.next_tick);
        self.participants
            .iter()
            .filter_map(|(_, p)| p.deadline())
            .chain(tick)
            .min()
    }

    /// The parts, lent to the module that handles an input.
    fn parts(&mut self) -> Parts<'_> {
        Parts {
            cfg: &self.cfg,
            ids: &mut self.ids,
            participants: &mut self.participants,
            tracks: &mut self.tracks,
            sinks: &mut self.sinks,
            out: &mut self.out,
            #[cfg(feature = "tap")]
            tap: &mut self.tap,
        }
    }

    // ----------------------------------------------------------------------------------
    // The str0m drain loop
    // ----------------------------------------------------------------------------------

    /// Drains every peer connection that was touched, acts on its events (which may touch
    /// others), and repeats until nothing is left to drain.
    fn drive(&mut self, now: Instant) {
        while let Some((conn, pc)) = self.out.next_dirty() {
            let Some(p) = self.participants.get_mut(conn) else {
                continue;
            };
            let (events, result) = p.drain(conn, pc, now, &mut self.out);
            for e in events {
                self.on_rtc_event(now, conn, pc, e);
            }
            if result.is_err() && self.participants.contains(conn) {
                self.out.leave(conn, lk::DisconnectReason::StateMismatch);
                self.remove(now, conn, lk::DisconnectReason::StateMismatch);
            }
        }
    }

    fn on_rtc_event(&mut self, now: Instant, conn: ConnId, pc: Pc, e: RtcEvent) {
        match (pc, e) {
            (Pc::Publisher, RtcEvent::RtpPacket(pkt)) => self.parts().forward_rtp(now, conn, pkt),
            (Pc::Publisher, RtcEvent::MediaAdded(m)) => {
                self.on_media_added(conn, m.mid, m.kind, m.direction, m.simulcast)
            }
            (Pc::Publisher, RtcEvent::MediaChanged(m))
                if !matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) =>
            {
                if let Some(sid) = self.tracks.sid_at(conn, m.mid).cloned() {
                    self.unpublish(&sid);
                }
            }
            (Pc::Publisher, RtcEvent::ChannelData(d)) => {
                self.parts().relay_data(conn, d.id, &d.data)
            }
            (Pc::Subscriber, RtcEvent::Connected) => self.on_subscriber_connected(conn),
            (Pc::Subscriber, RtcEvent::KeyframeRequest(r)) => {
                let wanted = self
                    .participants
                    .get(conn)
                    .and_then(|p| p.keyframe_wanted(r.mid));
                if let Some((sid, rid)) = wanted {
                    self.parts().request_keyframe(now, &sid, rid, r.kind);
                }
            }
            (_, RtcEvent::Closed) if self.participants.contains(conn) => {
                self.remove(now, conn, lk::DisconnectReason::ClientInitiated);
            }
            (pc, e) => {
                if let Some(p) = self.participants.get_mut(conn) {
                    p.on_pc_event(pc, e, now);
                }
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Tracks and subscriptions
    // ----------------------------------------------------------------------------------

    fn on_media_added(
        &mut self,
        conn: ConnId,
        mid: Mid,
        kind: MediaKind,
        dir: Direction,
        simulcast: Option<Simulcast>,
    ) {
        if !matches!(dir, Direction::RecvOnly | Direction::SendRecv) {
            return; // an m-line the client only receives on (e.g. the Rust SDK's spare transceivers)
        }
        let Some(p) = self.participants.get_mut(conn) else {
            return;
        };
        let Some(mut info) = p.take_announced(conn, mid) else {
            return;
        };
        let (codec, clock_rate) = track::negotiated_codec(&p.publisher, mid, kind, &info);
        info.mid = mid.to_string();
        info.mime_type = format!("{}/{}", track::kind_name(kind), codec);
        p.info.tracks.push(info.clone());
        p.info.version += 1;
        p.info.is_publisher = true;
        let participant_sid = p.info.sid.clone();
        let sid = info.sid;
        let t = PublishedTrack::new(
            conn,
            mid,
            kind,
            track::received_layers(simulcast),
            clock_rate,
            info.source == lk::TrackSource::ScreenShare as i32,
        );
        self.sinks.track_added(&sid, &t);
        self.out.event(Event::TrackPublished {
            sid: sid.clone(),
            participant_sid,
            kind: track::kind_name(kind),
        });
        // The update must reach subscribers before the offer that carries the track.
        self.participants.announce(&mut self.out, conn);
        let subscribers: Vec<ConnId> = self
            .participants
            .iter_mut()
            .filter(|(c, q)| *c != conn && q.params.can_subscribe && q.params.auto_subscribe)
            .map(|(c, q)| {
                q.add_downtrack(&sid, &t);
                c
            })
            .collect();
        self.tracks.insert(sid, t);
        for c in subscribers {
            self.participants.negotiate(c, &self.tracks, &mut self.out);
        }
    }

    fn unpublish(&mut self, sid: &str) {
        let Some(t) = self.tracks.remove(sid) else {
            return;
        };
        self.sinks.track_ended(sid, &mut self.out);
        let subscribers: Vec<ConnId> = self
            .participants
            .iter_mut()
            .filter_map(|(c, q)| (c != t.owner && q.remove_downtrack(sid)).then_some(c))
            .collect();
        for c in subscribers {
            self.out.signal(
                c,
                Resp::TrackUnpublished(lk::TrackUnpublishedResponse {
                    track_sid: sid.to_owned(),
                }),
            );
            self.participants.negotiate(c, &self.tracks, &mut self.out);
        }
        if let Some(p) = self.participants.get_mut(t.owner) {
            p.info.tracks.retain(|x| x.sid != sid);
            p.info.version += 1;
            let info = p.info.clone();
            self.out.event(Event::TrackUnpublished {
                sid: sid.to_owned(),
                participant_sid: info.sid.clone(),
            });
            self.participants
                .broadcast_update(&mut self.out, None, vec![info]);
        }
    }

    fn on_subscriber_connected(&mut self, conn: ConnId) {
        let Some(p) = self.participants.get_mut(conn) else {
            return;
        };
        if p.active {
            return;
        }
        p.active = true;
        p.info.state = lk::participant_info::State::Active as i32;
        p.info.version += 1;
        let info = p.info.clone();
        if !p.params.hidden {
            self.participants
                .broadcast_update(&mut self.out, None, vec![info]);
        }
    }

    // ----------------------------------------------------------------------------------
    // Membership
    // ----------------------------------------------------------------------------------

    fn remove(&mut self, now: Instant, conn: ConnId, reason: lk::DisconnectReason) {
        let Some(mut p) = self.participants.remove(conn) else {
            return;
        };
        p.publisher.disconnect();
        p.subscriber.disconnect();
        self.routes.retain(|_, (c, _)| *c != conn);
        self.out.forget(conn);
        self.speakers.forget(conn);
        for sid in &self.tracks.owned_by(conn) {
            self.tracks.remove(sid);
            self.sinks.track_ended(sid, &mut self.out);
            let others: Vec<ConnId> = self
                .participants
                .iter_mut()
                .filter_map(|(c, q)| q.remove_downtrack(sid).then_some(c))
                .collect();
            for c in others {
                self.participants.negotiate(c, &self.tracks, &mut self.out);
            }
            self.out.event(Event::TrackUnpublished {
                sid: sid.clone(),
                participant_sid: p.info.sid.clone(),
            });
        }
        p.info.state = lk::participant_info::State::Disconnected as i32;
        p.info.disconnect_reason = reason as i32;
        p.info.tracks.clear();
        p.info.version += 1;
        if !p.params.hidden {
            self.participants
                .broadcast_update(&mut self.out, Some(conn), vec![p.info.clone()]);
            self.departed.push_back((now, p.info.clone()));
        }
        self.out.event(Event::ParticipantLeft {
            conn,
            sid: p.info.sid.clone(),
            identity: p.info.identity.clone(),
            reason: reason as i32,
        });
        self.out.push(Output::Close { conn });
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

fn server_info() -> lk::ServerInfo {
    lk::ServerInfo {
        edition: lk::server_info::Edition::Standard as i32,
        version: SERVER_VERSION.to_owned(),
        protocol: PROTOCOL_VERSION,
        node_id: "enclave".to_owned(),
        ..Default::default()
    }
}
