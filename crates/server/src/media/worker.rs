//! The worker: one task that owns the media sockets and every room's SFU core. It takes
//! [`Command`]s from the handle, signalling requests, datagrams, TCP frames and its timers,
//! gives each to the room it is for, and carries out what the room asks (sends, frames, closes,
//! reports, sink input). A panic in a room's core ends that room alone.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use enclave_sfu::proto::SignalRequest;
use enclave_sfu::{ConnId, JoinParams, LocalCandidate, Output, Room, RoomConfig};
use enclave_sfu::{SinkId, SinkRefused, Transport};
use tokio::sync::{mpsc, oneshot};
// The worker's clock is tokio's, so that its timers follow a paused clock in tests; the SFU core
// takes std instants, converted at each call (`core_now`, `Instant::from_std`).
use tokio::time::Instant;

use super::conns::Conns;
use super::events::{self, MediaEvent};
use super::net::{Net, RecvBufs, TcpEvent};
use super::sink::SinkConn;
use super::{ConnOut, RoomFacts, CHAT_TOPIC, REACTION_TOPIC};
use crate::metrics::Metrics;
use crate::recorder::SinkInput;

/// Something to do to a room's core, with the worker's clock as the core takes it.
pub(super) type RoomAct = Box<dyn FnOnce(&mut Room, StdInstant) + Send>;

/// What the worker is asked to do, by the [`super::Media`] handle.
#[allow(clippy::large_enum_variant)] // joins are rare; boxing them buys nothing
pub(super) enum Command {
    Join {
        room: RoomFacts,
        conn: ConnId,
        params: JoinParams,
        out: mpsc::Sender<ConnOut>,
    },
    Signal {
        conn: ConnId,
        request: SignalRequest,
    },
    Disconnect {
        conn: ConnId,
    },
    Evict {
        conn: ConnId,
    },
    Resume {
        room_id: String,
        session: ConnId,
        sid: String,
        identity: String,
        out: mpsc::Sender<ConnOut>,
        reply: oneshot::Sender<bool>,
    },
    EndRoom {
        room_id: String,
        sid: String,
    },
    Ping {
        reply: oneshot::Sender<()>,
    },
    /// Something the room's core does (see `Media::in_room`).
    InRoom {
        room_id: String,
        act: RoomAct,
    },
    /// Test hook: the worker stops answering for a while (see [`super::Media::inject_stall`]).
    InjectStall {
        for_: std::time::Duration,
    },
    AddSink {
        room: RoomFacts,
        sink: SinkId,
        tx: mpsc::Sender<SinkInput>,
        reply: oneshot::Sender<Result<(), SinkRefused>>,
    },
    RemoveSink {
        sink: SinkId,
    },
    SinkKeyframe {
        sink: SinkId,
        track_sid: String,
    },
}

/// One room's SFU core, for one session of the room.
struct Core {
    /// The room id, shared with the routes and timers that name this core.
    id: Arc<str>,
    sid: String,
    room: Room,
    /// The instant of this core's entry in the timer heap. Entries for other instants are
    /// stale and skipped; the armed one is never later than the room's own deadline.
    armed: Option<Instant>,
}

/// The task that owns the sockets and every room's core.
pub(super) struct Worker {
    net: Net,
    /// Offered to every participant of every room.
    candidates: Vec<LocalCandidate>,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<MediaEvent>,
    rooms: HashMap<String, Core>,
    conns: Conns,
    sinks: HashMap<SinkId, SinkConn>,
    bandwidth_estimation: bool,
    /// The room each source last reached: its next datagram is offered there first.
    routes: HashMap<(Transport, SocketAddr), Arc<str>>,
    /// Rooms' deadlines, earliest first (see `Core::armed`).
    timers: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
}

impl Worker {
    pub(super) fn new(
        net: Net,
        candidates: Vec<LocalCandidate>,
        metrics: Arc<Metrics>,
        events: mpsc::UnboundedSender<MediaEvent>,
        bandwidth_estimation: bool,
    ) -> Self {
        Self {
            net,
            candidates,
            metrics,
            events,
            rooms: HashMap::new(),
            conns: Conns::default(),
            sinks: HashMap::new(),
            bandwidth_estimation,
            routes: HashMap::new(),
            timers: BinaryHeap::new(),
        }
    }

    /// Serves commands, signalling, datagrams, TCP frames and timers until every handle is
    /// gone.
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
        mut signals: mpsc::Receiver<(ConnId, SignalRequest)>,
        tcp: Option<mpsc::Receiver<TcpEvent>>,
    ) {
        let mut bufs = RecvBufs::new();
        let mut tcp = tcp;
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                Some((conn, request)) = signals.recv() => {
                    self.on_command(Command::Signal { conn, request });
                }
                family = self.net.readable() => {
                    // Everything waiting, a batch at a time; a read that finds nothing
                    // clears the readiness so that the next wait really waits.
                    while self.net.recv_batch(family, &mut bufs) > 0 {
                        for i in 0..bufs.len() {
                            if let Some(d) = bufs.get(i) {
                                self.on_datagram(d.transport, d.source, d.destination, d.contents);
                            }
                        }
                    }
                }
                Some(e) = recv_tcp(&mut tcp) => {
                    if let Some((remote, local, data)) = self.net.on_tcp_event(e) {
                        let taken = self.on_datagram(Transport::Tcp, remote, local, &data);
                        self.net.tcp_frame_taken(remote, taken);
                    }
                }
                () = sleep_until(deadline) => self.on_timers(Instant::now()),
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = core_now();
        match cmd {
            Command::Join {
                room,
                conn,
                params,
                out,
            } => {
                self.conns.join(conn, &room.room_id, out);
                self.core(&room, now);
                self.act(&room.room_id, |core| {
                    #[cfg(feature = "tap")]
                    if core.is_empty() {
                        super::tap::install_tap(core, &room.room_id);
                    }
                    core.join(now, conn, params);
                });
            }
            Command::Signal {
                conn: session,
                request,
            } => {
                let Some((conn, room_id)) = self.conns.of_session(session) else {
                    return;
                };
                self.act(&room_id, |room| {
                    room.signal(now, conn, request);
                });
            }
            Command::Disconnect { conn: session } => {
                // A session replaced by a resume carries nobody any more.
                let Some((conn, room_id)) = self.conns.closed(session) else {
                    return;
                };
                self.act(&room_id, |room| {
                    room.disconnect(now, conn);
                });
            }
            Command::Evict { conn: session } => {
                let Some((conn, room_id)) = self.conns.refuse(session) else {
                    return;
                };
                self.act(&room_id, |room| {
                    room.evict(now, conn, "signalling flood");
                });
            }
            Command::Resume {
                room_id,
                session,
                sid,
                identity,
                out,
                reply,
            } => {
                let back = self
                    .with_room(&room_id, |room| room.resume(now, &sid, &identity))
                    .flatten();
                let resumed = back.is_some_and(|conn| self.conns.resume(conn, session, out));
                let _ = reply.send(resumed);
                if resumed {
                    self.drain(&room_id);
                }
            }
            Command::EndRoom { room_id, sid } => {
                if self.rooms.get(&room_id).is_some_and(|c| c.sid == sid) {
                    self.end_core(&room_id, now);
                }
            }
            Command::Ping { reply } => {
                let _ = reply.send(());
            }
            Command::InRoom { room_id, act } => self.act(&room_id, |room| act(room, now)),
            Command::InjectStall { for_ } => {
                tracing::warn!(?for_, "media worker stalled on purpose (test hook)");
                std::thread::sleep(for_);
            }
            Command::AddSink {
                room,
                sink,
                tx,
                reply,
            } => {
                self.core(&room, now);
                let r = self
                    .with_room(&room.room_id, |core| core.add_sink(now, sink))
                    .unwrap_or(Err(SinkRefused::Ended));
                if r.is_ok() {
                    self.sinks
                        .insert(sink, SinkConn::new(room.room_id.clone(), tx));
                }
                let _ = reply.send(r);
                self.drain(&room.room_id);
            }
            Command::RemoveSink { sink } => {
                if let Some(s) = self.sinks.remove(&sink) {
                    self.with_room(&s.room_id, |room| {
                        room.remove_sink(sink);
                    });
                }
            }
            Command::SinkKeyframe { sink, track_sid } => {
                let Some(room_id) = self.sinks.get(&sink).map(|s| s.room_id.clone()) else {
                    return;
                };
                self.act(&room_id, |room| {
                    room.sink_keyframe(now, sink, &track_sid);
                });
            }
        }
    }

    /// Makes sure the room has a core for its current session: created on first use; a core
    /// left from an earlier session of the same room id (an end still in flight) is ended
    /// first, so that nothing of the old session reaches the new one.
    fn core(&mut self, room: &RoomFacts, now: StdInstant) {
        if self
            .rooms
            .get(&room.room_id)
            .is_some_and(|c| c.sid != room.sid)
        {
            tracing::info!(
                room_id = room.room_id,
                "a new session replaces the media of the last one"
            );
            self.end_core(&room.room_id, now);
        }
        let candidates = self.candidates.clone();
        let bandwidth_estimation = self.bandwidth_estimation;
        self.rooms
            .entry(room.room_id.clone())
            .or_insert_with(|| Core {
                id: Arc::from(room.room_id.as_str()),
                armed: None,
                sid: room.sid.clone(),
                room: Room::new(RoomConfig {
                    name: room.room_id.clone(),
                    candidates,
                    seed: rand::random(),
                    empty_timeout: room.empty_timeout,
                    max_participants: room.max_participants,
                    require_encryption: room.e2ee,
                    bandwidth_estimation,
                    // Counted for attendance (who chatted, reacted): topic and sender only.
                    counted_topics: [CHAT_TOPIC, enclave_sfu::PRIVATE_TOPIC, REACTION_TOPIC]
                        .map(str::to_owned)
                        .to_vec(),
                    created_unix_ms: crate::clock::unix_ms(),
                    created: now,
                }),
            });
    }

    /// Ends the room's core: everyone is told, connections close, sinks' inputs close (the
    /// recorder finalises).
    fn end_core(&mut self, room_id: &str, now: StdInstant) {
        self.act(room_id, |room| room.end(now));
        self.forget_core(room_id);
    }

    /// The room's core is gone: its routes, sinks and timers go with it (its heap entries are
    /// skipped as stale when they come up).
    fn forget_core(&mut self, room_id: &str) -> Option<Core> {
        self.routes.retain(|_, r| &**r != room_id);
        self.sinks.retain(|_, s| s.room_id != room_id);
        self.rooms.remove(room_id)
    }

    /// The earliest deadline of any room, dropping stale heap entries on the way.
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((t, id))) = self.timers.peek() {
            if self.rooms.get(&**id).is_some_and(|c| c.armed == Some(*t)) {
                return Some(*t);
            }
            self.timers.pop();
        }
        None
    }

    /// Runs every room whose armed deadline has come. Entries armed while doing so wait for
    /// the next pass, so that a room that is always due cannot starve the socket.
    fn on_timers(&mut self, now: Instant) {
        let mut due = Vec::new();
        while self.timers.peek().is_some_and(|Reverse((t, _))| *t <= now) {
            if let Some(Reverse(entry)) = self.timers.pop() {
                due.push(entry);
            }
        }
        for (t, id) in due {
            let Some(core) = self.rooms.get_mut(&*id).filter(|c| c.armed == Some(t)) else {
                continue; // stale
            };
            core.armed = None;
            // The entry may be earlier than the room's deadline (it moved later since): then
            // there is nothing to run, only to arm again.
            let at = now.into_std();
            if core.room.poll_timeout().is_some_and(|d| d <= at) {
                self.act(&id, |room| room.handle_timeout(at));
            } else {
                self.arm(&id);
            }
        }
    }

    /// Makes sure the room's deadline has an entry in the heap no later than it. Called after
    /// every input to the room (by `drain`); pushes only when the deadline moved earlier than
    /// the armed entry, or nothing is armed.
    fn arm(&mut self, room_id: &str) {
        let Some(core) = self.rooms.get_mut(room_id) else {
            return;
        };
        let Some(deadline) = core.room.poll_timeout().map(Instant::from_std) else {
            return;
        };
        if core.armed.is_some_and(|a| a <= deadline) {
            return;
        }
        core.armed = Some(deadline);
        self.timers.push(Reverse((deadline, core.id.clone())));
    }

    /// Runs `f` on the room's core, then carries out what the room asks.
    fn act(&mut self, room_id: &str, f: impl FnOnce(&mut Room)) {
        self.with_room(room_id, f);
        self.drain(room_id);
    }

    /// Runs `f` on the room's core. A panic inside is caught: the core is a state machine
    /// that shares nothing, so its room is ended and every other room goes on (str0m's
    /// failure policy, one level up). None if the room has no core or it failed.
    fn with_room<R>(&mut self, room_id: &str, f: impl FnOnce(&mut Room) -> R) -> Option<R> {
        let core = self.rooms.get_mut(room_id)?;
        match catch_unwind(AssertUnwindSafe(|| f(&mut core.room))) {
            Ok(r) => Some(r),
            Err(panic) => {
                self.fail_room(room_id, &panic_text(&*panic));
                None
            }
        }
    }

    /// A room's core panicked: its media state is gone. Its connections close (the clients
    /// see a closed signalling connection), its sinks' inputs close, and its session ends
    /// (`room_finished`), so that a new session can start afresh.
    fn fail_room(&mut self, room_id: &str, why: &str) {
        let Some(core) = self.forget_core(room_id) else {
            return;
        };
        tracing::error!(
            room_id,
            sid = core.sid,
            why,
            "the room's media failed; ending the room"
        );
        // Dropping the core may panic as well; nothing of it is needed any more.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(core.room)));
        self.conns.close_room(room_id);
        self.metrics.room_failures.inc();
        let _ = self.events.send(MediaEvent::RoomFailed {
            room_id: room_id.to_owned(),
            sid: core.sid,
        });
    }

    /// A datagram (or TCP frame) from `source` to our advertised `destination`. Returns
    /// whether a room took it.
    fn on_datagram(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let now = core_now();
        let offer = |core: &mut Core| {
            catch_unwind(AssertUnwindSafe(|| {
                core.room.receive(now, transport, source, destination, data)
            }))
            .map_err(|panic| panic_text(&*panic))
        };
        // The room this source reached last, then (a first datagram, or a participant that
        // moved on) every other room until one accepts.
        let route = (transport, source);
        let routed = self.routes.get(&route).cloned();
        let mut hit = None;
        if let Some(core) = routed.as_deref().and_then(|id| self.rooms.get_mut(id)) {
            match offer(core) {
                Ok(false) => {}
                Ok(true) => hit = Some(Ok(core.id.clone())),
                Err(why) => hit = Some(Err((core.id.clone(), why))),
            }
        }
        if hit.is_none() {
            for core in self.rooms.values_mut() {
                if routed.as_deref() == Some(&*core.id) {
                    continue;
                }
                match offer(core) {
                    Ok(false) => continue,
                    Ok(true) => hit = Some(Ok(core.id.clone())),
                    Err(why) => hit = Some(Err((core.id.clone(), why))),
                }
                break;
            }
        }
        match hit {
            Some(Ok(id)) => {
                if routed.as_ref() != Some(&id) {
                    self.routes.insert(route, id.clone());
                }
                self.drain(&id);
                true
            }
            Some(Err((id, why))) => {
                self.fail_room(&id, &why);
                false
            }
            None => {
                tracing::trace!(?transport, %source, %destination, len = data.len(), "datagram for no room");
                false
            }
        }
    }

    /// Carries out everything the room wants done. A signalling client whose queue is full
    /// is too slow to keep up; it is disconnected rather than allowed to grow memory or hold
    /// the room back.
    fn drain(&mut self, room_id: &str) {
        loop {
            let slow = self.drain_once(room_id);
            if slow.is_empty() {
                self.arm(room_id);
                return;
            }
            let now = core_now();
            for conn in slow {
                tracing::warn!(
                    ?conn,
                    "signalling client too slow to keep up; disconnecting"
                );
                // Dropping the sender ends its WebSocket; the client may resume.
                self.conns.cut(conn);
                self.with_room(room_id, |room| {
                    room.disconnect(now, conn);
                });
            }
        }
    }

    fn drain_once(&mut self, room_id: &str) -> Vec<ConnId> {
        let mut slow = Vec::new();
        while let Some(Some(out)) = self.with_room(room_id, |room| room.poll_output()) {
            match out {
                Output::Transmit(t) => {
                    self.net
                        .send(t.transport, t.source, t.destination, &t.contents);
                }
                Output::Signal { conn, response } => {
                    if !self.conns.send(conn, &response) && !slow.contains(&conn) {
                        slow.push(conn);
                    }
                }
                Output::Close { conn } => self.conns.close(conn),
                Output::Event(e) => events::report(room_id, e, &self.events, &self.metrics),
                Output::SinkTrack { sink, track } => {
                    if let Some(s) = self.sinks.get_mut(&sink) {
                        s.announce(track);
                    }
                }
                Output::Sink { sink, packet } => {
                    let sent = self.sinks.get_mut(&sink).map(|s| s.send(packet));
                    if sent == Some(false) {
                        self.metrics.sink_packets_dropped.inc();
                    }
                }
                Output::SinkTrackEnded { sink, track } => {
                    if let Some(s) = self.sinks.get_mut(&sink) {
                        s.end(track);
                    }
                }
            }
        }
        slow
    }
}

/// What a caught panic said.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The next TCP event, or never when ICE over TCP is off.
async fn recv_tcp(rx: &mut Option<mpsc::Receiver<TcpEvent>>) -> Option<TcpEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The worker's clock, as the SFU core takes it.
fn core_now() -> StdInstant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use enclave_sfu::proto::{self as lk, signal_response::Message as Resp};
    use prost::Message as _;

    use super::*;
    use crate::config::MediaConfig;
    use crate::media::{Media, SIGNAL_QUEUE};

    /// The worker's timers run on tokio's clock: with the clock paused, the core's 15 s
    /// connect grace passes at once, and the participant whose ICE never came up is told to
    /// leave exactly when it ends. On the wall clock the worker would wait out the 15 s.
    #[tokio::test(start_paused = true)]
    async fn a_participant_whose_media_never_comes_up_is_removed_when_the_connect_grace_ends() {
        let wall = StdInstant::now();
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let media = Media::start(
            MediaConfig::loopback(),
            Arc::new(Metrics::default()),
            events_tx,
        )
        .expect("media binds on 127.0.0.1");
        let (out, mut frames) = mpsc::channel(SIGNAL_QUEUE);
        let room = RoomFacts {
            room_id: "room".into(),
            sid: "RM_session".into(),
            empty_timeout: 300,
            max_participants: 0,
            e2ee: false,
        };
        let joined = Instant::now();
        let alice = JoinParams::new("PA_alice", "alice");
        media.join(room, media.next_conn(), alice, out);

        let mut responses = Vec::new();
        while let Some(ConnOut::Frame(frame)) = frames.recv().await {
            let r = lk::SignalResponse::decode(frame.as_slice()).expect("a signal response");
            responses.push((Instant::now() - joined, r.message));
        }
        assert!(
            matches!(responses.first(), Some((_, Some(Resp::Join(_))))),
            "the join response comes first: {responses:?}"
        );
        let Some((waited, Some(Resp::Leave(leave)))) = responses.last() else {
            panic!("the participant is told to leave: {responses:?}");
        };
        assert_eq!(leave.reason, lk::DisconnectReason::ConnectionTimeout as i32);
        assert!(
            *waited >= Duration::from_secs(15) && *waited < Duration::from_millis(15_600),
            "removed when the connect grace ends, not {waited:?} after joining"
        );
        assert!(
            matches!(events.recv().await, Some(MediaEvent::ParticipantLeft { identity, .. }) if identity == "alice"),
            "the rooms hear that alice left"
        );
        assert!(
            wall.elapsed() < Duration::from_secs(10),
            "the grace passed in virtual time, not in {:?} of wall time",
            wall.elapsed()
        );
    }
}
