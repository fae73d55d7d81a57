//! Server-side sinks (recorders, RTMP broadcasters): each gets every track at its best flowing
//! layer, rewritten into one continuous stream per track. A track is announced to a sink once
//! ([`Output::SinkTrack`]: sid, publisher, codec), just before its first packet; its packets
//! ([`Output::Sink`]) name it by a small id, so nothing of the track is copied per packet.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use livekit_protocol as lk;
use str0m::media::{MediaKind, Rid};

use crate::forward::{Decision, Forwarder};
use crate::io::{Outbox, Output, SinkId, SinkPacket, SinkTrack, SinkTrackId};
use crate::track::{self, Outgoing, PublishedTrack, Tracks};

/// Every attached sink's tracks, by track sid.
#[derive(Default)]
pub(crate) struct Sinks {
    sinks: BTreeMap<SinkId, HashMap<String, SinkTrackState>>,
    /// The id the next track of a sink gets.
    next_id: u32,
}

/// One track as one sink gets it.
struct SinkTrackState {
    id: SinkTrackId,
    fwd: Forwarder,
    /// The sink was told of the track (it is, before the track's first packet).
    announced: bool,
}

impl SinkTrackState {
    /// A sink's new track, starting on layer `initial`, under the next id.
    fn new(next_id: &mut u32, initial: Option<Rid>, clock_rate: u32) -> Self {
        *next_id += 1;
        Self {
            id: SinkTrackId(*next_id),
            fwd: Forwarder::new(initial, clock_rate),
            announced: false,
        }
    }
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
        let mut states = HashMap::new();
        let mut video = Vec::new();
        for (sid, t) in tracks.iter() {
            // The best flowing layer; before any has flowed, the best announced one.
            let seen = t.has_flowed().then_some(now);
            let initial = t.best_layer(lk::VideoQuality::High as i32, seen);
            let state = SinkTrackState::new(&mut self.next_id, initial, t.clock_rate);
            states.insert(sid.clone(), state);
            if t.kind == MediaKind::Video {
                video.push((sid.clone(), initial));
            }
        }
        self.sinks.insert(sink, states);
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
        for states in self.sinks.values_mut() {
            let state = SinkTrackState::new(&mut self.next_id, initial, t.clock_rate);
            states.insert(sid.to_owned(), state);
        }
    }

    /// A track is gone: each sink that had it is told.
    pub(crate) fn track_ended(&mut self, sid: &str, out: &mut Outbox) {
        for (sink, states) in self.sinks.iter_mut() {
            if let Some(s) = states.remove(sid) {
                out.push(Output::SinkTrackEnded {
                    sink: *sink,
                    track: s.id,
                });
            }
        }
    }

    /// The layer a sink's decoder needs a keyframe of, for track `sid`.
    pub(crate) fn keyframe_layer(&self, sink: SinkId, sid: &str) -> Option<Option<Rid>> {
        self.sinks
            .get(&sink)?
            .get(sid)
            .map(|s| s.fwd.current().or(s.fwd.target()))
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
        for (sink, states) in self.sinks.iter_mut() {
            let Some(s) = states.get_mut(sid) else {
                continue;
            };
            let before = s.fwd.current();
            let decision = s.fwd.on_packet(
                rid,
                *pkt.seq_no,
                pkt.header.timestamp,
                pkt.header.marker,
                keyframe,
                now,
            );
            if s.fwd.current() != before && before.is_some() {
                switched.push(s.fwd.current());
            }
            let Decision::Forward { seq, time } = decision else {
                continue;
            };
            if !s.announced {
                s.announced = true;
                out.push(Output::SinkTrack {
                    sink: *sink,
                    track: SinkTrack {
                        id: s.id,
                        track_sid: sid.to_owned(),
                        participant_identity: identity.to_owned(),
                        video: codec.is_video(),
                        codec: track::sink_codec(codec),
                        clock_rate,
                    },
                });
            }
            out.push(Output::Sink {
                sink: *sink,
                packet: SinkPacket {
                    track: s.id,
                    // The sink's stream starts at FIRST_SEQ and wraps like RTP's 16 bits.
                    seq: seq as u16,
                    timestamp: time,
                    marker: pkt.header.marker,
                    payload: pkt.payload.to_vec(),
                },
            });
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
        for states in self.sinks.values_mut() {
            for (sid, s) in states.iter_mut() {
                let Some(t) = tracks.get(sid).filter(|t| !t.rids.is_empty()) else {
                    continue;
                };
                let best = t.best_layer(lk::VideoQuality::High as i32, Some(now));
                if best.is_some() && best != s.fwd.target() {
                    s.fwd.set_target(best);
                }
                if s.fwd.switch_pending() {
                    keyframes.push((sid.clone(), s.fwd.target()));
                }
            }
        }
    }
}
