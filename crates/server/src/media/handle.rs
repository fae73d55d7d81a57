//! [`Media`], the handle the rest of the server holds: it binds the sockets, starts the worker
//! and turns each call into a [`Command`] for it, never waiting on the worker except where an
//! answer is asked for.

use std::net::SocketAddr;
use std::sync::Arc;

use enclave_sfu::proto::SignalRequest;
use std::time::Instant;

use enclave_sfu::{ConnId, JoinParams, LocalCandidate, Room, SinkId, SinkRefused, Transport};
use tokio::sync::{mpsc, oneshot};

use super::net::Net;
use super::worker::{Command, Worker};
use super::{ConnOut, MediaEvent, RoomFacts, SignalRefused, SYSTEM_TOPIC};
use crate::config::MediaConfig;
use crate::metrics::Metrics;
use crate::recorder::SinkInput;

/// Signalling requests queued from all WebSockets to the worker. Each WebSocket is also held
/// to a rate (`http::rtc::SignalBudget`), so this fills only if the worker itself falls behind;
/// then the sessions that find it full are dropped rather than queued without bound.
const INBOUND_SIGNAL_QUEUE: usize = 8192;

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
    candidates: Vec<LocalCandidate>,
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
        let worker = Worker::new(
            net,
            candidates.clone(),
            metrics,
            events,
            cfg.bandwidth_estimation,
        );
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
        self.in_room(room_id, |_, _| panic!("injected fault (test hook)"));
    }

    /// Test hook: blocks the worker for `for_`, to prove that `/healthCheck` notices. Not
    /// reachable from the network.
    #[doc(hidden)]
    pub fn inject_stall(&self, for_: std::time::Duration) {
        let _ = self.tx.send(Command::InjectStall { for_ });
    }

    /// Runs `act` on the room's core in the worker, with the worker's clock (nothing happens
    /// if the room has no media). What the room then asks is carried out as after any input.
    fn in_room(&self, room_id: &str, act: impl FnOnce(&mut Room, Instant) + Send + 'static) {
        let _ = self.tx.send(Command::InRoom {
            room_id: room_id.to_owned(),
            act: Box::new(act),
        });
    }

    /// Removes a participant from the room's media (an admin's decision).
    pub fn remove(&self, room_id: &str, identity: &str) {
        let identity = identity.to_owned();
        self.in_room(room_id, move |room, now| {
            room.remove_participant(now, &identity);
        });
    }

    /// Asks a participant to mute or unmute one of its tracks.
    pub fn mute(&self, room_id: &str, identity: &str, track_sid: &str, muted: bool) {
        let (identity, track_sid) = (identity.to_owned(), track_sid.to_owned());
        self.in_room(room_id, move |room, now| {
            room.mute_track(now, &identity, &track_sid, muted);
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
        let identity = identity.to_owned();
        self.in_room(room_id, move |room, now| {
            room.set_permission(now, &identity, permission);
        });
    }

    /// Replaces a participant's metadata (JSON) and tells everyone in the room.
    pub fn set_metadata(&self, room_id: &str, identity: &str, metadata: String) {
        let identity = identity.to_owned();
        self.in_room(room_id, move |room, now| {
            room.set_metadata(now, &identity, metadata);
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
        let identity = identity.to_owned();
        self.in_room(room_id, move |room, now| {
            room.answer_metadata(now, &identity, request_id, answer);
        });
    }

    /// Sends a server message (JSON, with its `type`) on the server's topic to everyone in the
    /// room (or to the named identities).
    pub fn send_system(&self, room_id: &str, msg: &impl serde::Serialize, to: Vec<String>) {
        self.send_data(
            room_id,
            serde_json::to_vec(msg).expect("server messages always serialise"),
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
        self.in_room(room_id, move |room, now| {
            room.send_data(now, payload, topic, to)
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
