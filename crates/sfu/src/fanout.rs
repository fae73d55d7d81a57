//! What crosses participants: one publisher's RTP packet fanned out to every subscriber and
//! sink, a data packet relayed to those it is for, and the layer allocation that decides which
//! simulcast layer each of them gets. Methods of the room's [`Parts`], so that this module
//! never needs the room.

use std::time::Instant;

use str0m::channel::ChannelId;
use str0m::media::{KeyframeRequestKind, Rid};
use str0m::rtp::RtpPacket;

use crate::data;
use crate::dd;
#[cfg(feature = "tap")]
use crate::io::TapRecord;
use crate::io::{ConnId, Event, Pc};
use crate::parts::Parts;
use crate::track::Outgoing;

impl Parts<'_> {
    /// An RTP packet from `conn`'s publisher PC: read from its header (SSRC → track and layer,
    /// sequence, timestamp, marker, Dependency Descriptor) and handed to every other
    /// participant's forwarder and every sink. The payload is copied, never read.
    pub(crate) fn forward_rtp(&mut self, now: Instant, conn: ConnId, pkt: RtpPacket) {
        let Some(p) = self.participants.get_mut(conn) else {
            return;
        };
        let Some((mid, rid, codec)) = p.incoming(&pkt, now) else {
            return;
        };
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
                self.out,
                &mut switched,
            );
        }
        for rid in switched {
            self.request_keyframe(now, &sid, rid, KeyframeRequestKind::Pli);
        }
    }

    /// Asks the publisher of track `sid` for a keyframe of layer `rid` (throttled).
    pub(crate) fn request_keyframe(
        &mut self,
        now: Instant,
        sid: &str,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
    ) {
        self.participants
            .request_keyframe(self.tracks, self.out, now, sid, rid, kind);
    }

    /// Lets every subscriber choose its layers (see `Participant::allocate`), points every
    /// sink at the best flowing layer, and asks for keyframes on layers about to be switched
    /// to.
    pub(crate) fn allocate_layers(&mut self, now: Instant) {
        let mut requests = Vec::new();
        for (conn, q) in self.participants.iter_mut() {
            if q.allocate(self.tracks, now, &mut requests).is_some() {
                self.out.touch(conn, Pc::Subscriber);
            }
        }
        self.sinks.allocate(self.tracks, now, &mut requests);
        for (sid, rid) in requests {
            self.request_keyframe(now, &sid, rid, KeyframeRequestKind::Pli);
        }
    }

    /// A data packet from the server to everyone, or to the named identities.
    pub(crate) fn send_from_server(
        &mut self,
        payload: Vec<u8>,
        topic: Option<String>,
        destination_identities: &[String],
    ) {
        let bytes = data::from_server(payload, topic, destination_identities);
        for (c, p) in self.participants.iter_mut() {
            let addressed = destination_identities.is_empty()
                || destination_identities.contains(&p.info.identity);
            if addressed && p.write_data(c, true, &bytes, self.out) {
                self.out.touch(c, Pc::Subscriber);
            }
        }
    }

    /// Data from `conn`'s publisher channel: judged by what it may send (see `data::relay`),
    /// stamped with its real sender, and written to each participant it is for.
    pub(crate) fn relay_data(&mut self, conn: ConnId, channel: ChannelId, bytes: &[u8]) {
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
            if addressed && q.write_data(c, reliable, &relayed.bytes, self.out) {
                self.out.touch(c, Pc::Subscriber);
            }
        }
    }
}
