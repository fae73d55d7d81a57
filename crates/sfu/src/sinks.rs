//! Server-side sinks (recorders, RTMP broadcasters): each gets every track at its best flowing
//! layer, rewritten into one continuous stream per track, as [`Output::Sink`] packets.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use livekit_protocol as lk;
use str0m::media::{MediaKind, Rid};

use crate::forward::{Decision, Forwarder};
use crate::io::{Outbox, Output, SinkId, SinkPacket};
use crate::track::{self, Outgoing, PublishedTrack, Tracks};

/// Every attached sink's forwarding state, per track sid.
#[derive(Default)]
pub(crate) struct Sinks {
    sinks: BTreeMap<SinkId, HashMap<String, Forwarder>>,
}

impl Sinks {
    pub(crate) fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    pub(crate) fn contains(&self, sink: SinkId) -> bool {
        self.sinks.contains_key(&sink)
    }

    /// Attaches `sink` to every current track. Returns the video tracks with the layer each
    /// starts on: they need a keyframe.
    pub(crate) fn attach(
        &mut self,
        sink: SinkId,
        tracks: &Tracks,
        now: Instant,
    ) -> Vec<(String, Option<Rid>)> {
        let mut fwds = HashMap::new();
        let mut video = Vec::new();
        for (sid, t) in tracks.iter() {
            // The best flowing layer; before any has flowed, the best announced one.
            let seen = t.has_flowed().then_some(now);
            let initial = t.best_layer(lk::VideoQuality::High as i32, seen);
            fwds.insert(sid.clone(), Forwarder::new(initial, t.clock_rate));
            if t.kind == MediaKind::Video {
                video.push((sid.clone(), initial));
            }
        }
        self.sinks.insert(sink, fwds);
        video
    }

    /// Returns whether `sink` was attached.
    pub(crate) fn detach(&mut self, sink: SinkId) -> bool {
        self.sinks.remove(&sink).is_some()
    }

    /// A track was published: every sink gets it.
    pub(crate) fn track_added(&mut self, sid: &str, t: &PublishedTrack) {
        // The layers are not known to be flowing yet: sinks start on the best one announced
        // and the allocation moves them once packets tell.
        let initial = t.best_layer(lk::VideoQuality::High as i32, None);
        for fwds in self.sinks.values_mut() {
            fwds.insert(sid.to_owned(), Forwarder::new(initial, t.clock_rate));
        }
    }

    /// A track is gone: each sink that had it is told.
    pub(crate) fn track_ended(&mut self, sid: &str, out: &mut Outbox) {
        for (sink, fwds) in self.sinks.iter_mut() {
            if fwds.remove(sid).is_some() {
                out.push(Output::SinkTrackEnded {
                    sink: *sink,
                    track_sid: sid.to_owned(),
                });
            }
        }
    }

    /// The layer a sink's decoder needs a keyframe of, for track `sid`.
    pub(crate) fn keyframe_layer(&self, sink: SinkId, sid: &str) -> Option<Option<Rid>> {
        self.sinks
            .get(&sink)?
            .get(sid)
            .map(|f| f.current().or(f.target()))
    }

    /// Forwards one packet (from `identity`) to every sink. Layers switched to
    /// at a frame boundary are pushed to `switched` (they need a keyframe).
    pub(crate) fn forward(
        &mut self,
        o: &Outgoing<'_>,
        identity: &str,
        clock_rate: u32,
        now: Instant,
        out: &mut Outbox,
        switched: &mut Vec<Option<Rid>>,
    ) {
        let Outgoing {
            sid,
            pkt,
            rid,
            codec,
            keyframe,
            ..
        } = *o;
        for (sink, fwds) in self.sinks.iter_mut() {
            let Some(f) = fwds.get_mut(sid) else {
                continue;
            };
            let before = f.current();
            let decision = f.on_packet(
                rid,
                *pkt.seq_no,
                pkt.header.timestamp,
                pkt.header.marker,
                keyframe,
                now,
            );
            if f.current() != before && before.is_some() {
                switched.push(f.current());
            }
            if let Decision::Forward { seq, time } = decision {
                out.push(Output::Sink(SinkPacket {
                    sink: *sink,
                    track_sid: sid.to_owned(),
                    participant_identity: identity.to_owned(),
                    video: codec.is_video(),
                    codec: track::codec_name(codec),
                    clock_rate,
                    // The sink's stream starts at FIRST_SEQ and wraps like RTP's 16 bits.
                    seq: seq as u16,
                    timestamp: time,
                    marker: pkt.header.marker,
                    payload: pkt.payload.to_vec(),
                }));
            }
        }
    }

    /// Points every sink at each simulcast track's best flowing layer; layers about to be
    /// switched to are pushed to `keyframes`.
    pub(crate) fn allocate(
        &mut self,
        tracks: &Tracks,
        now: Instant,
        keyframes: &mut Vec<(String, Option<Rid>)>,
    ) {
        for fwds in self.sinks.values_mut() {
            for (sid, f) in fwds.iter_mut() {
                let Some(t) = tracks.get(sid).filter(|t| !t.rids.is_empty()) else {
                    continue;
                };
                let best = t.best_layer(lk::VideoQuality::High as i32, Some(now));
                if best.is_some() && best != f.target() {
                    f.set_target(best);
                }
                if f.switch_pending() {
                    keyframes.push((sid.clone(), f.target()));
                }
            }
        }
    }
}
