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

pub mod addrs;
mod net;
pub mod stun;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use enclave_sfu::proto::{SignalRequest, SignalResponse};
use enclave_sfu::{ConnId, Event, JoinParams, LocalCandidate, Output, Room, RoomConfig};
use enclave_sfu::{SinkId, SinkRefused, Transport};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};

use net::{Net, RecvBufs, TcpEvent};

use crate::config::MediaConfig;
use crate::metrics::Metrics;
use crate::recorder::{SinkInput, SinkPacket, SinkTrack, SinkTrackId};

/// Topic of server-originated data packets (`broadcastToRoom`); the payload is JSON with a
/// `type` of `SYSTEM_CHAT_MSG` or `SYSTEM_NOTIFICATION`.
pub const SYSTEM_TOPIC: &str = enclave_sfu::SERVER_TOPIC;
/// The web client's chat topic (`web/src/protocol.ts`, `TOPIC_CHAT`): a participant whose chat
/// is locked may not send on it.
pub const CHAT_TOPIC: &str = "enclave.chat";
/// The web client's reactions topic: dropped by the media server in a room with
/// `allow_reactions: false`, and for a participant whose reactions a host locked.
pub const REACTION_TOPIC: &str = "enclave.reaction";

/// What the media server saw a participant do that attendance counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Started (true) or stopped speaking (the audio level header extension).
    Speaking(bool),
    /// A message on the chat, private-chat or reactions topic (the payload is never read).
    PublicChat,
    PrivateChat,
    Reaction,
}

/// A frame for a signalling connection.
#[derive(Debug)]
pub enum ConnOut {
    Frame(Vec<u8>),
    Close,
}

/// Signalling frames queued for one connection before it counts as too slow.
pub const SIGNAL_QUEUE: usize = 512;

/// Signalling requests queued from all WebSockets to the worker. Each WebSocket is also held
/// to a rate (`http::rtc::SignalBudget`), so this fills only if the worker itself falls behind;
/// then the sessions that find it full are dropped rather than queued without bound.
const INBOUND_SIGNAL_QUEUE: usize = 8192;

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

/// What the media worker tells the rest of the server about a room's session. The worker
/// knows nothing of room state: whoever started it applies these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A participant left the room's media (it left, was removed or timed out).
    ParticipantLeft {
        room_id: String,
        sid: String,
        identity: String,
    },
    /// The room's media failed and is gone; session `sid` of the room must end.
    RoomFailed { room_id: String, sid: String },
    /// What a participant did that attendance counts (speaking, chat, reactions).
    Activity {
        room_id: String,
        identity: String,
        activity: Activity,
    },
    /// A participant asks to change its own metadata and name (LiveKit's
    /// `UpdateParticipantMetadata`); [`Media::answer_metadata`] decides.
    MetadataRequested {
        room_id: String,
        identity: String,
        request_id: u32,
        metadata: String,
        name: String,
    },
    /// A track was published (`kind` = `AUDIO`/`VIDEO`) or is gone.
    Track {
        room_id: String,
        participant_sid: String,
        track_sid: String,
        kind: &'static str,
        published: bool,
    },
}

#[allow(clippy::large_enum_variant)] // joins are rare; boxing them buys nothing
enum Command {
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
    /// Test hook: the room's core "panics" (see [`Media::inject_panic`]).
    InjectPanic {
        room_id: String,
    },
    /// Test hook: the worker stops answering for a while (see [`Media::inject_stall`]).
    InjectStall {
        for_: std::time::Duration,
    },
    Remove {
        room_id: String,
        identity: String,
    },
    SetPermission {
        room_id: String,
        identity: String,
        permission: enclave_sfu::PublishPermission,
    },
    SetMetadata {
        room_id: String,
        identity: String,
        metadata: String,
    },
    AnswerMetadata {
        room_id: String,
        identity: String,
        request_id: u32,
        answer: Result<(String, String), String>,
    },
    Mute {
        room_id: String,
        identity: String,
        track_sid: String,
        muted: bool,
    },
    SendData {
        room_id: String,
        payload: Vec<u8>,
        topic: Option<String>,
        to: Vec<String>,
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

/// Handle to the media worker.
#[derive(Clone)]
pub struct Media {
    tx: mpsc::UnboundedSender<Command>,
    /// Signalling from WebSockets: bounded (see [`INBOUND_SIGNAL_QUEUE`]).
    signals: mpsc::Sender<(ConnId, SignalRequest)>,
    /// The UDP port media uses (the one bound, when the configuration asked for any).
    pub udp_port: u16,
    /// The ICE-over-TCP port, if on.
    pub tcp_port: Option<u16>,
    /// What every participant is offered: each advertised address over UDP, then over TCP.
    pub candidates: Vec<LocalCandidate>,
    next_conn: Arc<std::sync::atomic::AtomicU64>,
}

impl Media {
    /// Binds the media sockets and starts the worker (on the current tokio runtime). What
    /// rooms must hear goes to `events`.
    pub fn start(
        cfg: MediaConfig,
        metrics: Arc<Metrics>,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<Self> {
        let mut net = Net::bind(&cfg)?;
        let candidates = net.candidates();
        let tcp_events = net.tcp_events.take();
        let (udp_port, tcp_port) = (net.udp_port, net.tcp_port);
        let (tx, rx) = mpsc::unbounded_channel();
        let (signals, signals_rx) = mpsc::channel(INBOUND_SIGNAL_QUEUE);
        let worker = Worker {
            net,
            candidates: candidates.clone(),
            metrics,
            events,
            rooms: HashMap::new(),
            conns: HashMap::new(),
            sessions: HashMap::new(),
            sinks: HashMap::new(),
            bandwidth_estimation: cfg.bandwidth_estimation,
            routes: HashMap::new(),
            timers: BinaryHeap::new(),
        };
        tokio::spawn(worker.run(rx, signals_rx, tcp_events));
        tracing::info!(
            udp_port,
            tcp_port,
            candidates = ?candidates.iter().map(|c| format!("{:?} {}", c.transport, c.addr)).collect::<Vec<_>>(),
            "media sockets bound"
        );
        Ok(Self {
            tx,
            signals,
            udp_port,
            tcp_port,
            candidates,
            next_conn: Arc::default(),
        })
    }

    /// The addresses clients are told to send media to, best first.
    pub fn advertised_ips(&self) -> Vec<std::net::IpAddr> {
        self.candidates
            .iter()
            .filter(|c| c.transport == Transport::Udp)
            .map(|c| c.addr.ip())
            .collect()
    }

    /// The first UDP address clients are offered.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.candidates
            .iter()
            .find(|c| c.transport == Transport::Udp)
            .map(|c| c.addr)
    }

    /// A fresh connection id.
    pub fn next_conn(&self) -> ConnId {
        ConnId(
            self.next_conn
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1,
        )
    }

    pub(crate) fn join(
        &self,
        room: RoomFacts,
        conn: ConnId,
        params: JoinParams,
        out: mpsc::Sender<ConnOut>,
    ) {
        let _ = self.tx.send(Command::Join {
            room,
            conn,
            params,
            out,
        });
    }

    /// Hands a signalling request to the worker, never waiting.
    pub(crate) fn signal(&self, conn: ConnId, request: SignalRequest) -> Result<(), SignalRefused> {
        self.signals.try_send((conn, request)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SignalRefused::Overloaded,
            mpsc::error::TrySendError::Closed(_) => SignalRefused::Stopped,
        })
    }

    /// Removes the participant whose WebSocket session is `conn` at once (no resume): it broke
    /// the signalling rules (flooding).
    pub(crate) fn evict(&self, conn: ConnId) {
        let _ = self.tx.send(Command::Evict { conn });
    }

    /// The WebSocket session `conn` ended.
    pub(crate) fn disconnect(&self, conn: ConnId) {
        let _ = self.tx.send(Command::Disconnect { conn });
    }

    /// The WebSocket session `session` continues participant `sid` of `room_id` (a LiveKit
    /// resume). False: no such participant is waiting, the client must join again.
    pub(crate) async fn resume(
        &self,
        room_id: &str,
        session: ConnId,
        sid: &str,
        identity: &str,
        out: mpsc::Sender<ConnOut>,
    ) -> bool {
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send(Command::Resume {
            room_id: room_id.to_owned(),
            session,
            sid: sid.to_owned(),
            identity: identity.to_owned(),
            out,
            reply,
        });
        sent.is_ok() && rx.await.unwrap_or(false)
    }

    /// Disconnects everyone in session `sid` of the room and drops its media state (a later
    /// session of the same room id is left alone).
    pub fn end_room(&self, room_id: &str, sid: &str) {
        let _ = self.tx.send(Command::EndRoom {
            room_id: room_id.to_owned(),
            sid: sid.to_owned(),
        });
    }

    /// Whether the worker answers within `within` (for `/healthCheck`).
    pub async fn ping(&self, within: std::time::Duration) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Ping { reply }).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(within, rx).await, Ok(Ok(())))
    }

    /// Test hook: makes the room's media core fail as a panic inside it would, to prove that
    /// one room's failure ends that room only. Not reachable from the network.
    #[doc(hidden)]
    pub fn inject_panic(&self, room_id: &str) {
        let _ = self.tx.send(Command::InjectPanic {
            room_id: room_id.to_owned(),
        });
    }

    /// Test hook: blocks the worker for `for_`, to prove that `/healthCheck` notices. Not
    /// reachable from the network.
    #[doc(hidden)]
    pub fn inject_stall(&self, for_: std::time::Duration) {
        let _ = self.tx.send(Command::InjectStall { for_ });
    }

    /// Removes a participant from the room's media (an admin's decision).
    pub fn remove(&self, room_id: &str, identity: &str) {
        let _ = self.tx.send(Command::Remove {
            room_id: room_id.to_owned(),
            identity: identity.to_owned(),
        });
    }

    /// Asks a participant to mute or unmute one of its tracks.
    pub fn mute(&self, room_id: &str, identity: &str, track_sid: &str, muted: bool) {
        let _ = self.tx.send(Command::Mute {
            room_id: room_id.to_owned(),
            identity: identity.to_owned(),
            track_sid: track_sid.to_owned(),
            muted,
        });
    }

    /// Changes what a participant may publish (an admin's lock); tracks of sources no longer
    /// allowed are unpublished.
    pub fn set_permission(
        &self,
        room_id: &str,
        identity: &str,
        permission: enclave_sfu::PublishPermission,
    ) {
        let _ = self.tx.send(Command::SetPermission {
            room_id: room_id.to_owned(),
            identity: identity.to_owned(),
            permission,
        });
    }

    /// Replaces a participant's metadata (JSON) and tells everyone in the room.
    pub fn set_metadata(&self, room_id: &str, identity: &str, metadata: String) {
        let _ = self.tx.send(Command::SetMetadata {
            room_id: room_id.to_owned(),
            identity: identity.to_owned(),
            metadata,
        });
    }

    /// Answers a participant's request to change its own metadata and name (see
    /// [`MediaEvent::MetadataRequested`]): `Ok((metadata, name))` applies them, `Err` refuses.
    pub fn answer_metadata(
        &self,
        room_id: &str,
        identity: &str,
        request_id: u32,
        answer: Result<(String, String), String>,
    ) {
        let _ = self.tx.send(Command::AnswerMetadata {
            room_id: room_id.to_owned(),
            identity: identity.to_owned(),
            request_id,
            answer,
        });
    }

    /// Sends a server message (JSON, with its `type`) on the server's topic to everyone in the
    /// room (or to the named identities).
    pub fn send_system(&self, room_id: &str, msg: &serde_json::Value, to: Vec<String>) {
        self.send_data(
            room_id,
            msg.to_string().into_bytes(),
            Some(SYSTEM_TOPIC.to_owned()),
            to,
        );
    }

    /// Sends a server data packet to everyone in the room (or to the named identities).
    pub fn send_data(
        &self,
        room_id: &str,
        payload: Vec<u8>,
        topic: Option<String>,
        to: Vec<String>,
    ) {
        let _ = self.tx.send(Command::SendData {
            room_id: room_id.to_owned(),
            payload,
            topic,
            to,
        });
    }

    /// Attaches a server-side sink (recorder, broadcaster) to the room's media, creating the
    /// room's core if nobody has joined yet. The core refuses it in an E2EE room. Packets go
    /// to `tx` without ever blocking the worker: when the sink falls behind they are dropped
    /// (and counted). The sink's input closes when the room ends.
    pub async fn add_sink(
        &self,
        room: RoomFacts,
        tx: mpsc::Sender<SinkInput>,
    ) -> Result<SinkId, SinkRefused> {
        let sink = SinkId(
            self.next_conn
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1,
        );
        let (reply, answer) = oneshot::channel();
        let _ = self.tx.send(Command::AddSink {
            room,
            sink,
            tx,
            reply,
        });
        answer.await.unwrap_or(Err(SinkRefused::Ended))?;
        Ok(sink)
    }

    /// Detaches a sink; its input closes.
    pub fn remove_sink(&self, sink: SinkId) {
        let _ = self.tx.send(Command::RemoveSink { sink });
    }

    /// A sink's decoder needs a keyframe of a track.
    pub fn sink_keyframe(&self, sink: SinkId, track_sid: &str) {
        let _ = self.tx.send(Command::SinkKeyframe {
            sink,
            track_sid: track_sid.to_owned(),
        });
    }
}

/// A sink attached to a room.
struct SinkConn {
    room_id: String,
    tx: mpsc::Sender<SinkInput>,
    /// Tracks announced while the sink's queue was full: each goes out before its next
    /// packet, so that the sink never gets a packet of a track it was not told of.
    unsent: HashMap<SinkTrackId, SinkTrack>,
}

impl SinkConn {
    fn new(room_id: String, tx: mpsc::Sender<SinkInput>) -> Self {
        Self {
            room_id,
            tx,
            unsent: HashMap::new(),
        }
    }

    /// The SFU announced a track; it waits here while the queue is full.
    fn announce(&mut self, track: SinkTrack) {
        if let Err(mpsc::error::TrySendError::Full(SinkInput::Track(t))) =
            self.tx.try_send(SinkInput::Track(track))
        {
            self.unsent.insert(t.id, t);
        }
    }

    /// Queues a packet, after its track's announcement if that is still waiting, without
    /// ever waiting. Returns false if it was dropped (the sink does not keep up).
    fn send(&mut self, packet: SinkPacket) -> bool {
        if let Some(t) = self.unsent.remove(&packet.track) {
            if let Err(mpsc::error::TrySendError::Full(SinkInput::Track(t))) =
                self.tx.try_send(SinkInput::Track(t))
            {
                self.unsent.insert(t.id, t);
                return false;
            }
        }
        self.tx.try_send(SinkInput::Packet(packet)).is_ok()
    }

    /// The track is gone. A full queue must not lose the end of a track: this one waits in a
    /// task rather than in the worker.
    fn end(&mut self, track: SinkTrackId) {
        self.unsent.remove(&track);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(SinkInput::TrackEnded(track)).await;
        });
    }
}

/// A participant's signalling, keyed by the participant's connection id (the id of the
/// WebSocket session it joined on).
struct Conn {
    room_id: String,
    /// The WebSocket session now carrying it (another one after a resume).
    session: ConnId,
    /// None while the participant has no WebSocket (waiting for a resume).
    out: Option<mpsc::Sender<ConnOut>>,
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

struct Worker {
    net: Net,
    /// Offered to every participant of every room.
    candidates: Vec<LocalCandidate>,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<MediaEvent>,
    rooms: HashMap<String, Core>,
    conns: HashMap<ConnId, Conn>,
    /// WebSocket session → the participant it carries.
    sessions: HashMap<ConnId, ConnId>,
    sinks: HashMap<SinkId, SinkConn>,
    bandwidth_estimation: bool,
    /// The room each source last reached: its next datagram is offered there first.
    routes: HashMap<(Transport, SocketAddr), Arc<str>>,
    /// Rooms' deadlines, earliest first (see `Core::armed`).
    timers: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
}

impl Worker {
    async fn run(
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
        let now = Instant::now();
        match cmd {
            Command::Join {
                room,
                conn,
                params,
                out,
            } => {
                self.conns.insert(
                    conn,
                    Conn {
                        room_id: room.room_id.clone(),
                        session: conn,
                        out: Some(out),
                    },
                );
                self.sessions.insert(conn, conn);
                self.core(&room, now);
                self.with_room(&room.room_id, |core| {
                    #[cfg(feature = "tap")]
                    if core.is_empty() {
                        install_tap(core, &room.room_id);
                    }
                    core.join(now, conn, params);
                });
                self.drain(&room.room_id);
            }
            Command::Signal {
                conn: session,
                request,
            } => {
                let Some(&conn) = self.sessions.get(&session) else {
                    return;
                };
                let Some(room_id) = self.conns.get(&conn).map(|c| c.room_id.clone()) else {
                    return;
                };
                self.with_room(&room_id, |room| {
                    room.signal(now, conn, request);
                });
                self.drain(&room_id);
            }
            Command::Disconnect { conn: session } => {
                // A session replaced by a resume is no longer in `sessions`.
                let Some(conn) = self.sessions.remove(&session) else {
                    return;
                };
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.out = None;
                let room_id = c.room_id.clone();
                self.with_room(&room_id, |room| {
                    room.disconnect(now, conn);
                });
                self.drain(&room_id);
            }
            Command::Evict { conn: session } => {
                let Some(conn) = self.sessions.remove(&session) else {
                    return;
                };
                let Some(room_id) = self.conns.get(&conn).map(|c| c.room_id.clone()) else {
                    return;
                };
                self.with_room(&room_id, |room| {
                    room.evict(now, conn, "signalling flood");
                });
                self.drain(&room_id);
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
                let Some(conn) = back.and_then(|conn| Some((conn, self.conns.get_mut(&conn)?)))
                else {
                    let _ = reply.send(false);
                    return;
                };
                let (conn, c) = conn;
                let old = std::mem::replace(&mut c.session, session);
                if let Some(old_out) = c.out.replace(out) {
                    // The old WebSocket has not noticed it is gone yet; close it.
                    let _ = old_out.try_send(ConnOut::Close);
                }
                self.sessions.remove(&old);
                self.sessions.insert(session, conn);
                let _ = reply.send(true);
                self.drain(&room_id);
            }
            Command::EndRoom { room_id, sid } => {
                if self.rooms.get(&room_id).is_some_and(|c| c.sid == sid) {
                    self.end_core(&room_id, now);
                }
            }
            Command::Ping { reply } => {
                let _ = reply.send(());
            }
            Command::InjectPanic { room_id } => {
                self.with_room(&room_id, |_| panic!("injected fault (test hook)"));
            }
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
                self.with_room(&room_id, |room| {
                    room.sink_keyframe(now, sink, &track_sid);
                });
                self.drain(&room_id);
            }
            Command::SendData {
                room_id,
                payload,
                topic,
                to,
            } => {
                self.with_room(&room_id, |room| {
                    room.send_data(now, payload, topic, to);
                });
                self.drain(&room_id);
            }
            Command::Remove { room_id, identity } => {
                self.with_room(&room_id, |room| {
                    room.remove_participant(now, &identity);
                });
                self.drain(&room_id);
            }
            Command::SetPermission {
                room_id,
                identity,
                permission,
            } => {
                self.with_room(&room_id, |room| {
                    room.set_permission(now, &identity, permission);
                });
                self.drain(&room_id);
            }
            Command::SetMetadata {
                room_id,
                identity,
                metadata,
            } => {
                self.with_room(&room_id, |room| {
                    room.set_metadata(now, &identity, metadata);
                });
                self.drain(&room_id);
            }
            Command::AnswerMetadata {
                room_id,
                identity,
                request_id,
                answer,
            } => {
                self.with_room(&room_id, |room| {
                    room.answer_metadata(now, &identity, request_id, answer);
                });
                self.drain(&room_id);
            }
            Command::Mute {
                room_id,
                identity,
                track_sid,
                muted,
            } => {
                self.with_room(&room_id, |room| {
                    room.mute_track(now, &identity, &track_sid, muted);
                });
                self.drain(&room_id);
            }
        }
    }

    /// Makes sure the room has a core for its current session: created on first use; a core
    /// left from an earlier session of the same room id (an end still in flight) is ended
    /// first, so that nothing of the old session reaches the new one.
    fn core(&mut self, room: &RoomFacts, now: Instant) {
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
    fn end_core(&mut self, room_id: &str, now: Instant) {
        self.with_room(room_id, |room| room.end(now));
        self.drain(room_id);
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
            if core.room.poll_timeout().is_some_and(|d| d <= now) {
                self.with_room(&id, |room| room.handle_timeout(now));
                self.drain(&id);
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
        let Some(deadline) = core.room.poll_timeout() else {
            return;
        };
        if core.armed.is_some_and(|a| a <= deadline) {
            return;
        }
        core.armed = Some(deadline);
        self.timers.push(Reverse((deadline, core.id.clone())));
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
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.room_id == room_id)
            .map(|(k, _)| *k)
            .collect();
        for conn in conns {
            if let Some(c) = self.conns.remove(&conn) {
                self.sessions.remove(&c.session);
                if let Some(out) = c.out {
                    let _ = out.try_send(ConnOut::Close);
                }
            }
        }
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
        let now = Instant::now();
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

    /// Counts what the core reports, and tells the rooms who left.
    fn report(&self, room_id: &str, e: Event) {
        tracing::debug!(room_id, event = ?e, "media event");
        match e {
            Event::ParticipantLeft { sid, identity, .. } => {
                let _ = self.events.send(MediaEvent::ParticipantLeft {
                    room_id: room_id.to_owned(),
                    sid,
                    identity,
                });
            }
            Event::TrackPublished {
                sid,
                participant_sid,
                kind,
            } => {
                let _ = self.events.send(MediaEvent::Track {
                    room_id: room_id.to_owned(),
                    participant_sid,
                    track_sid: sid,
                    kind: if kind == "audio" { "AUDIO" } else { "VIDEO" },
                    published: true,
                });
            }
            Event::TrackUnpublished {
                sid,
                participant_sid,
            } => {
                let _ = self.events.send(MediaEvent::Track {
                    room_id: room_id.to_owned(),
                    participant_sid,
                    track_sid: sid,
                    kind: "",
                    published: false,
                });
            }
            Event::Speaking { identity, speaking } => {
                let _ = self.events.send(MediaEvent::Activity {
                    room_id: room_id.to_owned(),
                    identity,
                    activity: Activity::Speaking(speaking),
                });
            }
            Event::MetadataRequested {
                identity,
                request_id,
                metadata,
                name,
            } => {
                let _ = self.events.send(MediaEvent::MetadataRequested {
                    room_id: room_id.to_owned(),
                    identity,
                    request_id,
                    metadata,
                    name,
                });
            }
            Event::DataSent { identity, topic } => {
                let activity = match topic.as_str() {
                    CHAT_TOPIC => Activity::PublicChat,
                    enclave_sfu::PRIVATE_TOPIC => Activity::PrivateChat,
                    _ => Activity::Reaction,
                };
                let _ = self.events.send(MediaEvent::Activity {
                    room_id: room_id.to_owned(),
                    identity,
                    activity,
                });
            }
            Event::ReliableDataDropped { .. } => {
                self.metrics.reliable_data_dropped.inc();
            }
            Event::ParticipantEvicted { .. } => {
                self.metrics.participants_evicted.inc();
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
            let now = Instant::now();
            for conn in slow {
                tracing::warn!(
                    ?conn,
                    "signalling client too slow to keep up; disconnecting"
                );
                // Dropping the sender ends its WebSocket; the client may resume.
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.out = None;
                    self.sessions.remove(&c.session);
                }
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
                    if let Some(out) = self.conns.get(&conn).and_then(|c| c.out.as_ref()) {
                        if let Err(mpsc::error::TrySendError::Full(_)) =
                            out.try_send(ConnOut::Frame(encode(&response)))
                        {
                            if !slow.contains(&conn) {
                                slow.push(conn);
                            }
                        }
                    }
                }
                Output::Close { conn } => {
                    if let Some(c) = self.conns.remove(&conn) {
                        self.sessions.remove(&c.session);
                        // Dropping the sender ends the session even if the queue is full.
                        if let Some(out) = c.out {
                            let _ = out.try_send(ConnOut::Close);
                        }
                    }
                }
                Output::Event(e) => self.report(room_id, e),
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

/// Test-only: appends what the room forwards and relays to `ENCLAVE_TAP_FILE`.
#[cfg(feature = "tap")]
fn install_tap(core: &mut Room, room_id: &str) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("ENCLAVE_TAP_FILE") else {
        return;
    };
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        tracing::error!("cannot open ENCLAVE_TAP_FILE");
        return;
    };
    tracing::warn!(
        room_id,
        "TEST TAP ENABLED: forwarded media and relayed data are written to disk"
    );
    let room_id = room_id.to_owned();
    core.set_tap(Box::new(move |r: enclave_sfu::TapRecord| {
        let line = serde_json::json!({"room": room_id, "kind": r.kind, "from": r.from, "marker": r.marker, "payload": hex::encode(&r.payload)});
        let _ = writeln!(file, "{line}");
    }));
}

fn encode(r: &SignalResponse) -> Vec<u8> {
    r.encode_to_vec()
}

/// Tells the room state what the SFU saw.
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::SinkCodec;

    fn track(id: u32) -> SinkTrack {
        SinkTrack {
            id: SinkTrackId(id),
            track_sid: format!("TR_{id}"),
            participant_identity: "alice".into(),
            video: true,
            codec: SinkCodec::Vp8,
            clock_rate: 90_000,
        }
    }

    fn packet(id: u32, seq: u16) -> SinkPacket {
        SinkPacket {
            track: SinkTrackId(id),
            seq,
            timestamp: 0,
            marker: true,
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_sink_whose_queue_was_full_is_told_of_a_track_before_its_first_packet() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sink = SinkConn::new("room".into(), tx);
        sink.announce(track(1));
        // The queue is full: track 2's announcement waits, and its packet is dropped.
        sink.announce(track(2));
        assert!(!sink.send(packet(2, 1)));
        assert!(matches!(rx.try_recv(), Ok(SinkInput::Track(t)) if t.id == SinkTrackId(1)));
        // Room for one: the announcement goes, the packet does not fit behind it.
        assert!(!sink.send(packet(2, 2)));
        assert!(matches!(rx.try_recv(), Ok(SinkInput::Track(t)) if t.id == SinkTrackId(2)));
        assert!(sink.send(packet(2, 3)));
        assert!(matches!(rx.try_recv(), Ok(SinkInput::Packet(p)) if p.seq == 3));
        assert!(sink.unsent.is_empty());
    }
}
