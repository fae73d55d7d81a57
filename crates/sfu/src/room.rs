//! The room state machine: its public inputs, the dispatch of signalling and peer-connection
//! events, membership, and what crosses participants (forwarding, layer allocation, speakers,
//! data). What belongs to one participant lives in `participant.rs`, to one track in
//! `track.rs`; both write to the room's [`Outbox`]. See the crate docs for the drive loop.

// The protocol marks several fields deprecated that current clients still read (TrackInfo's
// layers and simulcast, by older SDKs), so the server keeps filling them, as LiveKit's does.
#![allow(deprecated)]

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use str0m::bwe::BweKind;
use str0m::channel::ChannelId;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Simulcast};
use str0m::net::Receive;
use str0m::rtp::RtpPacket;
use str0m::{Event as RtcEvent, IceConnectionState, Input};

use crate::data;
use crate::dd;
use crate::ids::IdGen;
use crate::io::{
    ConnId, Event, JoinParams, Outbox, Output, Pc, PublishPermission, RoomConfig, SinkId,
    SinkRefused, Transport, PING_INTERVAL, PING_TIMEOUT, PROTOCOL_VERSION, SERVER_VERSION,
};
#[cfg(feature = "tap")]
use crate::io::{Tap, TapRecord};
use crate::members::Participants;
use crate::participant::{Overdue, Participant, CONNECT_GRACE, SIGNAL_GRACE};
use crate::signalling::{self, Signalling, Then};
use crate::sinks::Sinks;
use crate::track::{self, Outgoing, PublishedTrack, Tracks};

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
    speakers: BTreeSet<ConnId>,
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
            speakers: BTreeSet::new(),
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
        match self.signalling().handle(now, conn, msg) {
            Then::Done => {}
            Then::Allocate => self.allocate_layers(now),
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
            self.allocate_layers(now);
            self.detect_speakers(now);
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
            self.signalling().mute(conn, request);
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
        let bytes = data::from_server(payload, topic, &destination_identities);
        for (c, p) in self.participants.iter_mut() {
            let addressed = destination_identities.is_empty()
                || destination_identities.contains(&p.info.identity);
            if addressed && p.write_data(c, true, &bytes, &mut self.out) {
                self.out.touch(c, Pc::Subscriber);
            }
        }
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
            self.participants.request_keyframe(
                &mut self.tracks,
                &mut self.out,
                now,
                &sid,
                rid,
                KeyframeRequestKind::Pli,
            );
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
        self.participants.request_keyframe(
            &mut self.tracks,
            &mut self.out,
            now,
            track_sid,
            rid,
            KeyframeRequestKind::Pli,
        );
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

    /// The parts that signalling changes.
    fn signalling(&mut self) -> Signalling<'_> {
        Signalling {
            cfg: &self.cfg,
            ids: &mut self.ids,
            participants: &mut self.participants,
            tracks: &mut self.tracks,
            out: &mut self.out,
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
            (Pc::Publisher, RtcEvent::RtpPacket(pkt)) => self.forward_rtp(now, conn, pkt),
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
            (Pc::Publisher, RtcEvent::ChannelOpen(id, label)) => {
                if let Some(p) = self.participants.get_mut(conn) {
                    p.publisher_channel_open(id, label);
                }
            }
            (Pc::Publisher, RtcEvent::ChannelData(d)) => self.relay_data(conn, d.id, &d.data),
            (Pc::Subscriber, RtcEvent::ChannelOpen(id, label)) => {
                if let Some(p) = self.participants.get_mut(conn) {
                    p.subscriber_channel_open(id, &label);
                }
            }
            (Pc::Subscriber, RtcEvent::Connected) => self.on_subscriber_connected(conn),
            (
                Pc::Subscriber,
                RtcEvent::EgressBitrateEstimate(BweKind::Twcc {
                    estimate,
                    can_probe,
                }),
            ) => {
                if let Some(p) = self.participants.get_mut(conn) {
                    // Without probing (no TWCC negotiated) the number means nothing: allocate
                    // by requested quality alone.
                    p.bwe_estimate = can_probe.then(|| estimate.as_u64());
                }
            }
            (Pc::Publisher, RtcEvent::MediaIngressStats(st)) => {
                if let (Some(p), Some(loss)) = (self.participants.get_mut(conn), st.loss) {
                    // A moving average, so one bad second does not flip the indicator.
                    p.ingress_loss = 0.7 * p.ingress_loss + 0.3 * loss.clamp(0.0, 1.0);
                }
            }
            (Pc::Subscriber, RtcEvent::KeyframeRequest(r)) => {
                let wanted = self.participants.get(conn).and_then(|p| {
                    let sid = p.down_by_mid.get(&r.mid)?;
                    let d = p.downtracks.get(sid);
                    Some((
                        sid.clone(),
                        d.and_then(|d| d.fwd.current().or(d.fwd.target())),
                    ))
                });
                if let Some((sid, rid)) = wanted {
                    self.participants.request_keyframe(
                        &mut self.tracks,
                        &mut self.out,
                        now,
                        &sid,
                        rid,
                        r.kind,
                    );
                }
            }
            (_, RtcEvent::IceConnectionStateChange(state)) => {
                if let Some(p) = self.participants.get_mut(conn) {
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
            (_, RtcEvent::Closed) if self.participants.contains(conn) => {
                self.remove(now, conn, lk::DisconnectReason::ClientInitiated);
            }
            _ => {}
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
    // Media
    // ----------------------------------------------------------------------------------

    fn forward_rtp(&mut self, now: Instant, conn: ConnId, pkt: RtpPacket) {
        let Some(p) = self.participants.get_mut(conn) else {
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
        p.note_audio_level(&pkt, now);
        let Some(sid) = self.tracks.sid_at(conn, mid).cloned() else {
            return;
        };
        #[cfg(feature = "tap")]
        if let Some(tap) = self.tap.as_mut() {
            tap(TapRecord {
                kind: if codec.is_video() {
                    "rtp-video"
                } else {
                    "rtp-audio"
                },
                from: p.info.identity.clone(),
                marker: pkt.header.marker,
                payload: pkt.payload.to_vec(),
            });
        }
        let Some(t) = self.tracks.get_mut(&sid) else {
            return;
        };
        // Layer bitrates only feed the bandwidth allocation: no per-packet bookkeeping
        // without it.
        t.note_packet(rid, pkt.payload.len(), self.cfg.bandwidth_estimation, now);
        let clock_rate = t.clock_rate;
        let keyframe = pkt
            .header
            .ext_vals
            .user_values
            .get::<dd::Descriptor>()
            .map(dd::Descriptor::starts_keyframe);
        // The header extensions that belong to the publisher's PC are not forwarded.
        let mut ext = pkt.header.ext_vals.clone();
        ext.mid = None;
        ext.rid = None;
        ext.rid_repair = None;
        ext.transport_cc = None;
        let outgoing = Outgoing {
            sid: &sid,
            pkt: &pkt,
            rid,
            codec,
            keyframe,
            ext: &ext,
        };
        let mut switched = Vec::new();
        for (c, q) in self.participants.iter_mut() {
            if c == conn {
                continue;
            }
            let done = q.forward(&outgoing, now);
            if done.written {
                self.out.touch(c, Pc::Subscriber);
            }
            switched.extend(done.switched_to);
        }
        if !self.sinks.is_empty() {
            let identity = self
                .participants
                .get(conn)
                .map_or("", |p| p.info.identity.as_str());
            self.sinks.forward(
                &outgoing,
                identity,
                clock_rate,
                now,
                &mut self.out,
                &mut switched,
            );
        }
        for rid in switched {
            self.participants.request_keyframe(
                &mut self.tracks,
                &mut self.out,
                now,
                &sid,
                rid,
                KeyframeRequestKind::Pli,
            );
        }
    }

    /// Lets every subscriber choose its layers (see `Participant::allocate`), points every
    /// sink at the best flowing layer, and asks for keyframes on layers about to be switched
    /// to.
    fn allocate_layers(&mut self, now: Instant) {
        let mut requests = Vec::new();
        for (conn, q) in self.participants.iter_mut() {
            if q.allocate(&self.tracks, now, &mut requests).is_some() {
                self.out.touch(conn, Pc::Subscriber);
            }
        }
        self.sinks.allocate(&self.tracks, now, &mut requests);
        for (sid, rid) in requests {
            self.participants.request_keyframe(
                &mut self.tracks,
                &mut self.out,
                now,
                &sid,
                rid,
                KeyframeRequestKind::Pli,
            );
        }
    }

    /// Speakers are those whose audio level said "speech" within the last second; clients
    /// get the full list of active speakers plus those who just stopped.
    fn detect_speakers(&mut self, now: Instant) {
        let active: BTreeSet<ConnId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.speaking(now))
            .map(|(c, _)| c)
            .collect();
        if active == self.speakers {
            return;
        }
        let info = |c: &ConnId, level: f32, active: bool| {
            self.participants.get(*c).map(|p| lk::SpeakerInfo {
                sid: p.info.sid.clone(),
                level,
                active,
            })
        };
        for (c, speaking) in active
            .symmetric_difference(&self.speakers)
            .map(|c| (c, active.contains(c)))
        {
            if let Some(p) = self.participants.get(*c) {
                let identity = p.info.identity.clone();
                self.out.event(Event::Speaking { identity, speaking });
            }
        }
        let mut speakers: Vec<lk::SpeakerInfo> =
            active.iter().filter_map(|c| info(c, 0.8, true)).collect();
        speakers.extend(
            self.speakers
                .difference(&active)
                .filter_map(|c| info(c, 0.0, false)),
        );
        self.speakers = active;
        self.participants.broadcast(&mut self.out, || {
            Resp::SpeakersChanged(lk::SpeakersChanged {
                speakers: speakers.clone(),
            })
        });
    }

    // ----------------------------------------------------------------------------------
    // Data
    // ----------------------------------------------------------------------------------

    fn relay_data(&mut self, conn: ConnId, channel: ChannelId, bytes: &[u8]) {
        let Some(p) = self.participants.get(conn) else {
            return;
        };
        if !p.params.can_publish_data {
            return;
        }
        let Some(reliable) = p.publisher_channel_reliable(channel) else {
            return;
        };
        #[cfg(feature = "tap")]
        if let Some(tap) = self.tap.as_mut() {
            tap(TapRecord {
                kind: "data",
                from: p.info.identity.clone(),
                marker: false,
                payload: bytes.to_vec(),
            });
        }
        let relayed = match data::relay(
            bytes,
            reliable,
            &p.info.identity,
            &p.info.sid,
            &p.params.denied_data_topics,
        ) {
            Ok(r) => r,
            Err(data::Dropped::Undecodable) => {
                tracing::debug!(?conn, "undecodable data packet dropped");
                return;
            }
            Err(data::Dropped::NotAllowed(why)) => {
                tracing::info!(?conn, why, "data packet dropped");
                return;
            }
        };
        if let Some(topic) = relayed
            .topic
            .filter(|t| self.cfg.counted_topics.contains(t))
        {
            let identity = p.info.identity.clone();
            self.out.event(Event::DataSent { identity, topic });
        }
        for (c, q) in self.participants.iter_mut() {
            let addressed = c != conn
                && (relayed.destinations.is_empty()
                    || relayed.destinations.contains(&q.info.identity));
            if addressed && q.write_data(c, reliable, &relayed.bytes, &mut self.out) {
                self.out.touch(c, Pc::Subscriber);
            }
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
        self.speakers.remove(&conn);
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
