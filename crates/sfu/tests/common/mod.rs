//! Testkit: fake LiveKit clients built on str0m, talking to a [`Room`] over an in-memory
//! network, all in virtual time. A client behaves like the SDKs do on protocol 17: it answers
//! the room's subscriber offers, announces tracks with `add_track`, offers its publisher PC, and
//! writes RTP with payloads the test chooses (random bytes, so the room cannot be relying on
//! them).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use enclave_sfu::proto::{
    self as lk, signal_request::Message as Req, signal_response::Message as Resp,
};
use enclave_sfu::{ConnId, Event, JoinParams, Output, Room, RoomConfig};
use enclave_sfu::{SinkId, SinkPacket, SinkTrack, SinkTrackId};
use prost::Message as _;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionSerializer, ExtensionValues, RtpWrite};
use str0m::{Candidate, Event as RtcEvent, Input, Output as RtcOutput, Rtc};

pub const SERVER: &str = "10.0.0.1:7882";

/// The data topic the test rooms report as `Event::DataSent`.
pub const COUNTED_TOPIC: &str = "counted";

/// A packet a client received: enough to check what the room did with it.
#[derive(Debug, Clone, PartialEq, Eq)]

pub struct Received {
    pub mid: Mid,
    pub seq: u64,
    pub time: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
    /// The Dependency Descriptor bytes the packet carried, if any.
    pub dd: Option<Vec<u8>>,
    /// When the client received it (after any narrow link).
    pub at: Instant,
}

/// A received Dependency Descriptor, as bytes.
#[derive(Debug, Clone)]
struct ReceivedDd(Vec<u8>);

pub struct Client {
    pub conn: ConnId,
    pub identity: String,
    pub publisher: Rtc,
    pub subscriber: Rtc,
    pub pub_addr: SocketAddr,
    pub sub_addr: SocketAddr,
    pub joined: Option<lk::JoinResponse>,
    pub updates: Vec<lk::ParticipantInfo>,
    pub signals: Vec<Resp>,
    pub received: Vec<Received>,
    pub keyframe_requests: usize,
    pub data: Vec<lk::DataPacket>,
    pub closed: bool,
    /// When set, the network drops everything to and from this client.
    pub cut: bool,
    /// When set, what the room sends this client's subscriber PC crosses a link of this many
    /// bit/s with a 300 ms queue (tail drop): a narrow downlink.
    pub downlink_bps: Option<u64>,
    /// Datagrams on that link: (arrival time, source, destination, contents).
    inbox: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    link_free_at: Option<Instant>,
    /// Datagrams the narrow link dropped.
    pub link_drops: usize,
    pub_pending: Option<(SdpPendingOffer, u32)>,
    pub_offer_id: u32,
    pub_mids: Vec<(Mid, String)>,
    pub_channels: HashMap<String, ChannelId>,
    seq: HashMap<Mid, u64>,
    layer_seq: HashMap<String, u64>,
    pub sub_connected: bool,
}

/// The Dependency Descriptor a test client attaches to a packet (see `send_rtp_layer_dd`): the
/// mandatory fields, plus the template-structure flag on keyframes, as Chromium sends them.
#[derive(Debug, Clone, Copy)]
pub struct TestDd {
    pub start_of_frame: bool,
    pub end_of_frame: bool,
    pub frame_number: u16,
    pub keyframe: bool,
}

#[derive(Debug)]
struct TestDdWriter;

impl ExtensionSerializer for TestDdWriter {
    fn write_to(&self, buf: &mut [u8], ev: &ExtensionValues) -> usize {
        let Some(d) = ev.user_values.get::<TestDd>() else {
            return 0;
        };
        buf[0] = (u8::from(d.start_of_frame) << 7) | (u8::from(d.end_of_frame) << 6);
        buf[1..3].copy_from_slice(&d.frame_number.to_be_bytes());
        if d.keyframe {
            // Extended fields: the structure flag, then (here) a dummy structure byte.
            buf[3] = 0x80;
            buf[4] = 0x01;
            5
        } else {
            3
        }
    }
    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        ev.user_values.set(ReceivedDd(buf.to_vec()));
        true
    }
    fn is_video(&self) -> bool {
        true
    }
    fn is_audio(&self) -> bool {
        false
    }
}

const DD_URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

fn rtc(now: Instant, addr: SocketAddr) -> Rtc {
    let mut r = Rtc::builder()
        .set_extension(12, Extension::with_serializer(DD_URI, TestDdWriter))
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(now);
    r.add_local_candidate(Candidate::host(addr, Protocol::Udp).unwrap());
    r
}

pub struct World {
    pub now: Instant,
    pub room: Room,
    pub clients: Vec<Client>,
    pub events: Vec<Event>,
    /// The tracks the room announced to server-side sinks (each once, before its packets).
    pub sink_tracks: Vec<(SinkId, SinkTrack)>,
    /// What the room gave server-side sinks.
    pub sink_packets: Vec<(SinkId, SinkPacket)>,
    /// Every track a sink was told is gone.
    pub sink_tracks_ended: Vec<(SinkId, SinkTrackId)>,
    next_port: u16,
    seed: u64,
}

impl World {
    pub fn new() -> Self {
        Self::with_encryption(false)
    }

    /// A world whose room is end-to-end encrypted.
    pub fn with_encryption(require_encryption: bool) -> Self {
        Self::with_config(
            require_encryption,
            vec![enclave_sfu::LocalCandidate {
                transport: enclave_sfu::Transport::Udp,
                addr: SERVER.parse().unwrap(),
            }],
        )
    }

    /// A world whose room offers these candidates.
    pub fn with_config(
        require_encryption: bool,
        candidates: Vec<enclave_sfu::LocalCandidate>,
    ) -> Self {
        // The start of virtual time; every later instant is derived from it.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let room = Room::new(RoomConfig {
            name: "room".into(),
            candidates,
            seed: 42,
            empty_timeout: 300,
            max_participants: 0,
            require_encryption,
            bandwidth_estimation: true,
            created_unix_ms: 1_700_000_000_000,
            counted_topics: vec![COUNTED_TOPIC.into()],
            created: now,
        });
        Self {
            now,
            room,
            clients: Vec::new(),
            events: Vec::new(),
            sink_tracks: Vec::new(),
            sink_packets: Vec::new(),
            sink_tracks_ended: Vec::new(),
            next_port: 40000,
            seed: 0x5eed,
        }
    }

    /// Alice and Bob have joined and their subscriber PCs are up (1.5 s in).
    pub fn connected_pair() -> Self {
        let mut w = Self::new();
        w.join("alice");
        w.join("bob");
        w.advance(Duration::from_millis(1500));
        assert!(
            w.client("alice").sub_connected && w.client("bob").sub_connected,
            "subscriber PCs connect"
        );
        w
    }

    /// [`World::connected_pair`], alice publishing a simulcast video of layers q, h and f that
    /// bob is subscribed to (1.5 s later).
    pub fn simulcast_pair() -> (Self, Mid) {
        let mut w = Self::connected_pair();
        let mid = w.publish_simulcast("alice", &["q", "h", "f"]);
        w.advance(Duration::from_millis(1500));
        (w, mid)
    }

    /// Deterministic pseudo-random bytes for payloads.
    pub fn random_payload(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 7;
                self.seed ^= self.seed << 17;
                self.seed as u8
            })
            .collect()
    }

    pub fn client(&mut self, identity: &str) -> &mut Client {
        self.clients
            .iter_mut()
            .find(|c| c.identity == identity)
            .unwrap()
    }

    /// A client joins (subscribing to everything, allowed to publish).
    pub fn join(&mut self, identity: &str) {
        let conn = ConnId(self.clients.len() as u64 + 1);
        let pub_addr: SocketAddr = format!("10.0.1.{}:{}", self.clients.len() + 1, self.next_port)
            .parse()
            .unwrap();
        let sub_addr: SocketAddr =
            format!("10.0.1.{}:{}", self.clients.len() + 1, self.next_port + 1)
                .parse()
                .unwrap();
        self.next_port += 2;
        self.clients.push(Client {
            conn,
            identity: identity.into(),
            publisher: rtc(self.now, pub_addr),
            subscriber: rtc(self.now, sub_addr),
            pub_addr,
            sub_addr,
            joined: None,
            updates: Vec::new(),
            signals: Vec::new(),
            received: Vec::new(),
            keyframe_requests: 0,
            data: Vec::new(),
            closed: false,
            cut: false,
            downlink_bps: None,
            inbox: VecDeque::new(),
            link_free_at: None,
            link_drops: 0,
            pub_pending: None,
            pub_offer_id: 0,
            pub_mids: Vec::new(),
            pub_channels: HashMap::new(),
            seq: HashMap::new(),
            layer_seq: HashMap::new(),
            sub_connected: false,
        });
        self.room.join(
            self.now,
            conn,
            JoinParams {
                name: identity.to_uppercase(),
                can_update_metadata: true,
                ..JoinParams::new(format!("PA_{identity}"), identity)
            },
        );
        self.settle();
    }

    pub fn signal(&mut self, identity: &str, msg: Req) {
        let conn = self.client(identity).conn;
        self.room
            .signal(self.now, conn, lk::SignalRequest { message: Some(msg) });
        self.settle();
    }

    /// The client's signalling connection drops without a leave (its peer connections stay).
    pub fn drop_signal(&mut self, identity: &str) {
        let conn = self.client(identity).conn;
        self.room.disconnect(self.now, conn);
        self.settle();
    }

    /// The client reconnects its signalling with `reconnect=1&sid=…`, as LiveKit's SDKs do
    /// after a blip. Returns whether the room took it back.
    pub fn resume(&mut self, identity: &str) -> bool {
        let conn = self.client(identity).conn;
        let back = self
            .room
            .resume(self.now, &format!("PA_{identity}"), identity);
        self.settle();
        assert!(back.is_none_or(|c| c == conn));
        back.is_some()
    }

    /// The client restarts ICE on its publisher PC (an offer with fresh credentials), as the
    /// SDKs do after a resume.
    pub fn restart_publisher_ice(&mut self, identity: &str) {
        let c = self.client(identity);
        let mut api = c.publisher.sdp_api();
        api.ice_restart(true);
        let (offer, pending) = api.apply().unwrap();
        self.offer_publisher(identity, offer, pending);
    }

    /// Sends the client's publisher offer (the next offer id); the answer is applied when it
    /// comes back.
    fn offer_publisher(&mut self, identity: &str, offer: SdpOffer, pending: SdpPendingOffer) {
        let c = self.client(identity);
        c.pub_offer_id += 1;
        let id = c.pub_offer_id;
        c.pub_pending = Some((pending, id));
        self.signal(
            identity,
            Req::Offer(lk::SessionDescription {
                r#type: "offer".into(),
                sdp: offer.to_sdp_string(),
                id,
                ..Default::default()
            }),
        );
    }

    /// As `publish`, then 1.5 s pass: the track is negotiated and everyone subscribed to it.
    pub fn publish_negotiated(&mut self, identity: &str, kind: MediaKind) -> Mid {
        let mid = self.publish(identity, kind);
        self.advance(Duration::from_millis(1500));
        mid
    }

    /// The client publishes one track of `kind`: add_track, then an offer with the m-line.
    pub fn publish(&mut self, identity: &str, kind: MediaKind) -> Mid {
        self.publish_source(identity, kind, lk::TrackSource::Unknown)
    }

    /// As `publish`, announcing the track's source (camera, microphone, screen share).
    pub fn publish_source(
        &mut self,
        identity: &str,
        kind: MediaKind,
        source: lk::TrackSource,
    ) -> Mid {
        let add = lk::AddTrackRequest {
            cid: format!("{identity}-{kind:?}-{}-cid", source as i32),
            name: format!("{kind:?}"),
            r#type: if kind == MediaKind::Video {
                lk::TrackType::Video
            } else {
                lk::TrackType::Audio
            } as i32,
            source: source as i32,
            ..Default::default()
        };
        self.publish_with(identity, add, kind, None)
    }

    /// The client publishes a simulcast video track with the given layers (lowest first).
    pub fn publish_simulcast(&mut self, identity: &str, rids: &[&str]) -> Mid {
        let add = lk::AddTrackRequest {
            cid: format!("{identity}-sim-cid"),
            name: "camera".into(),
            r#type: lk::TrackType::Video as i32,
            ..Default::default()
        };
        let mut sim = str0m::media::Simulcast::new();
        for r in rids {
            sim.send.push(str0m::media::SimulcastLayer::new(r));
        }
        self.publish_with(identity, add, MediaKind::Video, Some(sim))
    }

    /// Announces a track with `add_track`, then offers its m-line. A single-layer track's
    /// offer also opens the `_reliable` data channel if none is open yet; the simulcast
    /// publisher of these tests sends media alone.
    fn publish_with(
        &mut self,
        identity: &str,
        add: lk::AddTrackRequest,
        kind: MediaKind,
        simulcast: Option<str0m::media::Simulcast>,
    ) -> Mid {
        let cid = add.cid.clone();
        self.signal(identity, Req::AddTrack(add));
        let c = self.client(identity);
        let with_channel = simulcast.is_none() && c.pub_channels.is_empty();
        let mut api = c.publisher.sdp_api();
        let mid = api.add_media(
            kind,
            Direction::SendOnly,
            Some(format!("{identity}-stream")),
            Some(cid.clone()),
            simulcast,
        );
        if with_channel {
            api.add_channel("_reliable".into());
        }
        let (offer, pending) = api.apply().unwrap();
        c.pub_mids.push((mid, cid));
        self.offer_publisher(identity, offer, pending);
        mid
    }

    /// Writes one RTP packet on one simulcast layer of the client's m-line, with a Dependency
    /// Descriptor when `dd` is given.
    #[allow(clippy::too_many_arguments)]
    pub fn send_rtp_layer(
        &mut self,
        identity: &str,
        mid: Mid,
        rid: &str,
        time: u32,
        marker: bool,
        payload: Vec<u8>,
        dd: Option<TestDd>,
    ) {
        let mut ext = ExtensionValues::default();
        if let Some(d) = dd {
            ext.user_values.set(d);
        }
        self.write_rtp(identity, (mid, Some(rid)), Codec::Vp8, time, payload, |w| {
            w.marker(marker).ext_vals(ext).nackable(true)
        });
    }

    /// Writes one audio packet carrying an RFC 6464 level (−dBov: 0 is loudest, 127 silence).
    pub fn send_audio_level(
        &mut self,
        identity: &str,
        mid: Mid,
        time: u32,
        level: i8,
        payload: Vec<u8>,
    ) {
        let ext = ExtensionValues {
            audio_level: Some(-level),
            voice_activity: Some(level < 50),
            ..Default::default()
        };
        self.write_rtp(identity, (mid, None), Codec::Opus, time, payload, |w| {
            w.ext_vals(ext)
        });
        self.settle();
    }

    /// Writes one RTP packet on the client's published m-line.
    pub fn send_rtp(
        &mut self,
        identity: &str,
        mid: Mid,
        time: u32,
        marker: bool,
        payload: Vec<u8>,
    ) {
        let codec = match self.client(identity).publisher.media(mid).unwrap().kind() {
            MediaKind::Audio => Codec::Opus,
            MediaKind::Video => Codec::Vp8,
        };
        self.write_rtp(identity, (mid, None), codec, time, payload, |w| {
            w.marker(marker).nackable(true)
        });
        self.settle();
    }

    /// Sends one-packet video frames on the client's m-line, `every` apart: frame `i` of
    /// `frames` at RTP time 3000 × i, each `size` random bytes. Returns the payloads sent.
    pub fn send_frames(
        &mut self,
        identity: &str,
        mid: Mid,
        frames: std::ops::Range<u32>,
        size: usize,
        every: Duration,
    ) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        for i in frames {
            let p = self.random_payload(size);
            sent.push(p.clone());
            self.send_rtp(identity, mid, 3000 * i, true, p);
            self.advance(every);
        }
        sent
    }

    /// Writes one RTP packet of `codec` on the client's m-line `mid` (on simulcast layer `rid`,
    /// if given), with that stream's next sequence number; `build` sets what else it carries.
    fn write_rtp(
        &mut self,
        identity: &str,
        (mid, rid): (Mid, Option<&str>),
        codec: Codec,
        time: u32,
        payload: Vec<u8>,
        build: impl FnOnce(RtpWrite) -> RtpWrite,
    ) {
        let now = self.now;
        let c = self.client(identity);
        let pt = c
            .publisher
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec)
            .unwrap()
            .pt();
        let seq = match rid {
            Some(rid) => c.layer_seq.entry(format!("{mid}/{rid}")).or_insert(500),
            None => c.seq.entry(mid).or_insert(100),
        };
        *seq += 1;
        let s = *seq;
        let mut api = c.publisher.direct_api();
        let tx = api
            .stream_tx_by_mid(mid, rid.map(str0m::media::Rid::from))
            .expect("a stream per m-line (and simulcast layer) once negotiated");
        tx.write_rtp(build(RtpWrite::new(pt, s.into(), time, now, payload)));
    }

    /// Sends a data packet on the client's publisher `_reliable` channel.
    pub fn send_data(&mut self, identity: &str, packet: lk::DataPacket) {
        let c = self.client(identity);
        let id = *c.pub_channels.get("_reliable").expect("channel open");
        c.publisher
            .channel(id)
            .unwrap()
            .write(true, &packet.encode_to_vec())
            .unwrap();
        self.settle();
    }

    /// A client's datagram reaches the room (over UDP, as every simulated client sends).
    fn room_receives(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        self.room.receive(
            now,
            enclave_sfu::Transport::Udp,
            source,
            destination,
            contents,
        );
    }

    /// Moves virtual time forward by `d` in 1 ms steps, waking everything on the way. The step
    /// is the resolution of every send time: the room's pacer and str0m's bandwidth probes
    /// (clusters of packets 2 ms apart) need about a millisecond to behave as they do on a
    /// real clock; at 5 ms a probe's packets leave as one burst and its result means nothing.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = (self.now + Duration::from_millis(1)).min(end);
            self.room.handle_timeout(self.now);
            let now = self.now;
            // What crossed the narrow links by now arrives, at its own arrival time.
            let mut to_room = Vec::new();
            for c in &mut self.clients {
                while c.inbox.front().is_some_and(|p| p.0 <= now) {
                    let (at, source, destination, contents) = c.inbox.pop_front().unwrap();
                    if let Ok(r) = Receive::new(Protocol::Udp, source, destination, &contents) {
                        let _ = c.subscriber.handle_input(Input::Receive(at, r));
                    }
                    to_room.extend(Self::drain_client(c, 1));
                }
            }
            for (source, destination, contents) in to_room {
                self.room_receives(now, source, destination, &contents);
            }
            for c in &mut self.clients {
                if !c.cut {
                    let _ = c.publisher.handle_input(Input::Timeout(now));
                    let _ = c.subscriber.handle_input(Input::Timeout(now));
                }
            }
            self.settle();
        }
    }

    /// Delivers everything in flight until both sides are quiet at this instant. Every input
    /// to a peer connection is followed by draining it, as str0m requires (in RTP mode it
    /// holds a single received packet until the next poll).
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(out) = self.room.poll_output() {
                moved = true;
                match out {
                    Output::Transmit(t) => {
                        let now = self.now;
                        let Some(idx) = self.clients.iter().position(|c| {
                            c.pub_addr == t.destination || c.sub_addr == t.destination
                        }) else {
                            continue;
                        };
                        let c = &mut self.clients[idx];
                        if c.cut {
                            continue;
                        }
                        if let (Some(bps), true) = (c.downlink_bps, t.destination == c.sub_addr) {
                            let start = c.link_free_at.map_or(now, |f| f.max(now));
                            if start.saturating_duration_since(now) > Duration::from_millis(300) {
                                c.link_drops += 1;
                                continue;
                            }
                            let bits = (t.contents.len() as u64 + 28) * 8;
                            let done = start + Duration::from_micros(bits * 1_000_000 / bps);
                            c.link_free_at = Some(done);
                            c.inbox
                                .push_back((done, t.source, t.destination, t.contents.clone()));
                            continue;
                        }
                        let which = if c.pub_addr == t.destination { 0 } else { 1 };
                        let rtc = if which == 0 {
                            &mut c.publisher
                        } else {
                            &mut c.subscriber
                        };
                        if let Ok(r) =
                            Receive::new(Protocol::Udp, t.source, t.destination, &t.contents)
                        {
                            let _ = rtc.handle_input(Input::Receive(now, r));
                        }
                        let to_room = Self::drain_client(c, which);
                        for (source, destination, contents) in to_room {
                            self.room_receives(now, source, destination, &contents);
                        }
                    }
                    Output::Signal { conn, response } => {
                        if let Some(msg) = response.message {
                            self.on_signal(conn, msg);
                        }
                    }
                    Output::Close { conn } => {
                        if let Some(c) = self.clients.iter_mut().find(|c| c.conn == conn) {
                            c.closed = true;
                        }
                    }
                    Output::Event(e) => self.events.push(e),
                    Output::SinkTrack { sink, track } => {
                        assert!(
                            !self.sink_tracks.iter().any(|(_, t)| t.id == track.id),
                            "a sink's track is announced once: {track:?}"
                        );
                        self.sink_tracks.push((sink, track));
                    }
                    Output::Sink { sink, packet } => {
                        assert!(
                            self.sink_tracks
                                .iter()
                                .any(|(s, t)| *s == sink && t.id == packet.track),
                            "a sink's packet follows the announcement of its track"
                        );
                        self.sink_packets.push((sink, packet));
                    }
                    Output::SinkTrackEnded { sink, track } => {
                        self.sink_tracks_ended.push((sink, track))
                    }
                }
            }
            let now = self.now;
            for idx in 0..self.clients.len() {
                for which in 0..2 {
                    let to_room = Self::drain_client(&mut self.clients[idx], which);
                    if !to_room.is_empty() {
                        moved = true;
                    }
                    for (source, destination, contents) in to_room {
                        self.room_receives(now, source, destination, &contents);
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the world never settled");
    }

    /// Drains one of a client's peer connections, acting on its events; returns what it sends.
    fn drain_client(c: &mut Client, which: usize) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let mut to_room = Vec::new();
        let rtc = if which == 0 {
            &mut c.publisher
        } else {
            &mut c.subscriber
        };
        loop {
            match rtc.poll_output() {
                Ok(RtcOutput::Timeout(_)) | Err(_) => break,
                Ok(RtcOutput::Transmit(t)) => {
                    if !c.cut {
                        to_room.push((t.source, t.destination, t.contents.to_vec()));
                    }
                }
                Ok(RtcOutput::Event(e)) => match e {
                    RtcEvent::RtpPacket(p) if which == 1 => {
                        let mid = rtc
                            .direct_api()
                            .stream_rx(&p.header.ssrc)
                            .map(|s| s.mid())
                            .unwrap();
                        c.received.push(Received {
                            mid,
                            seq: *p.seq_no,
                            time: p.header.timestamp,
                            marker: p.header.marker,
                            payload: p.payload.to_vec(),
                            dd: p
                                .header
                                .ext_vals
                                .user_values
                                .get::<ReceivedDd>()
                                .map(|d| d.0.clone()),
                            at: p.timestamp,
                        });
                    }
                    RtcEvent::KeyframeRequest(_) if which == 0 => c.keyframe_requests += 1,
                    RtcEvent::ChannelOpen(id, label) if which == 0 => {
                        c.pub_channels.insert(label, id);
                    }
                    RtcEvent::ChannelData(d) if which == 1 => {
                        if let Ok(p) = lk::DataPacket::decode(d.data.as_slice()) {
                            c.data.push(p);
                        }
                    }
                    RtcEvent::Connected if which == 1 => c.sub_connected = true,
                    _ => {}
                },
            }
        }
        to_room
    }

    fn on_signal(&mut self, conn: ConnId, msg: Resp) {
        let Some(idx) = self.clients.iter().position(|c| c.conn == conn) else {
            return;
        };
        let c = &mut self.clients[idx];
        c.signals.push(msg.clone());
        match msg {
            Resp::Join(j) => c.joined = Some(j),
            Resp::Update(u) => c.updates.extend(u.participants),
            Resp::Offer(sd) => {
                let offer = SdpOffer::from_sdp_string(&sd.sdp).unwrap();
                let answer = c.subscriber.sdp_api().accept_offer(offer).unwrap();
                let identity = c.identity.clone();
                let answer = lk::SessionDescription {
                    r#type: "answer".into(),
                    sdp: answer.to_sdp_string(),
                    id: sd.id,
                    ..Default::default()
                };
                let conn = c.conn;
                self.room.signal(
                    self.now,
                    conn,
                    lk::SignalRequest {
                        message: Some(Req::Answer(answer)),
                    },
                );
                let _ = identity;
            }
            Resp::Answer(sd) => {
                if let Some((pending, id)) = c.pub_pending.take() {
                    assert_eq!(id, sd.id, "the answer carries the offer's id");
                    c.publisher
                        .sdp_api()
                        .accept_answer(pending, SdpAnswer::from_sdp_string(&sd.sdp).unwrap())
                        .unwrap();
                }
            }
            _ => {}
        }
    }

    /// What `identity` received from its `from`-th packet on, each packet named by what the
    /// test recorded for its payload when sending it (packets it did not record are skipped).
    pub fn received_from<T: Copy>(
        &mut self,
        identity: &str,
        sent: &HashMap<Vec<u8>, T>,
        from: usize,
    ) -> Vec<T> {
        self.client(identity).received[from..]
            .iter()
            .filter_map(|r| sent.get(&r.payload).copied())
            .collect()
    }

    /// What `viewer` last heard of `whom`: its latest participant update.
    pub fn last_update(&self, viewer: &str, whom: &str) -> Option<&lk::ParticipantInfo> {
        self.clients
            .iter()
            .find(|c| c.identity == viewer)
            .unwrap()
            .updates
            .iter()
            .rev()
            .find(|p| p.identity == whom)
    }

    /// The first track of `whom`'s that `viewer` last heard of.
    pub fn track_of(&self, viewer: &str, whom: &str) -> lk::TrackInfo {
        self.last_update(viewer, whom)
            .and_then(|p| p.tracks.first().cloned())
            .unwrap_or_else(|| panic!("{viewer} knows a track of {whom}'s"))
    }

    /// The payload of every user packet `who` received, as text.
    pub fn texts(&mut self, who: &str) -> Vec<String> {
        self.client(who)
            .data
            .iter()
            .filter_map(|p| match &p.value {
                Some(lk::data_packet::Value::User(u)) => {
                    Some(String::from_utf8_lossy(&u.payload).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    /// The answers `who` got that refused a request for `reason`.
    pub fn refusals(
        &mut self,
        who: &str,
        reason: lk::request_response::Reason,
    ) -> Vec<lk::RequestResponse> {
        self.client(who)
            .signals
            .iter()
            .filter_map(|s| match s {
                Resp::RequestResponse(r) if r.reason == reason as i32 => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// The track a sink was told of under `id`.
    pub fn sink_track(&self, id: SinkTrackId) -> &SinkTrack {
        self.sink_tracks
            .iter()
            .map(|(_, t)| t)
            .find(|t| t.id == id)
            .expect("announced before its packets")
    }

    /// Identities the client currently believes are in the room (from join + updates).
    pub fn known_participants(&self, identity: &str) -> HashSet<String> {
        let c = self
            .clients
            .iter()
            .find(|c| c.identity == identity)
            .unwrap();
        let mut state: HashMap<String, i32> = HashMap::new();
        if let Some(j) = &c.joined {
            for p in &j.other_participants {
                state.insert(p.identity.clone(), p.state);
            }
        }
        for p in &c.updates {
            if p.identity != identity {
                state.insert(p.identity.clone(), p.state);
            }
        }
        state
            .into_iter()
            .filter(|(_, s)| *s != lk::participant_info::State::Disconnected as i32)
            .map(|(i, _)| i)
            .collect()
    }
}

/// A user packet carrying `payload` on `topic`, for the identities `to` (none: everyone).
pub fn user_packet(topic: &str, to: &[&str], payload: &[u8]) -> lk::DataPacket {
    lk::DataPacket {
        destination_identities: to.iter().map(|s| s.to_string()).collect(),
        value: Some(lk::data_packet::Value::User(lk::UserPacket {
            payload: payload.to_vec(),
            topic: Some(topic.into()),
            ..Default::default()
        })),
        ..Default::default()
    }
}
