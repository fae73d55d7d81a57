//! Published tracks and what each subscriber gets of them: simulcast layers and their measured
//! bitrates, the codec a publisher's m-line carries, the `TrackInfo` clients are told about,
//! and a subscriber's per-track forwarding state.

// TrackInfo.layers/simulcast are deprecated in the protocol but still read by older SDKs.
#![allow(deprecated)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid, Rid, Simulcast};
use str0m::rtp::{ExtensionValues, RtpPacket};
use str0m::Rtc;

use crate::alloc::TrackDemand;
use crate::forward::Forwarder;
use crate::io::{ConnId, SinkCodec};

/// Keyframe requests to one publisher track are sent at most this often.
const KEYFRAME_THROTTLE: Duration = Duration::from_millis(500);
/// A layer with no packet for this long is not offered to subscribers.
const LAYER_STALE: Duration = Duration::from_millis(1500);
/// Per-packet bytes beyond the payload (IP, UDP, RTP with extensions, SRTP tag), for layer
/// bitrates that compare with what the estimator measures on the wire.
const PACKET_OVERHEAD: u64 = 70;

/// A track a participant publishes, as the room forwards it.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    pub(crate) owner: ConnId,
    /// Its m-line on the owner's publisher PC.
    pub(crate) mid: Mid,
    pub(crate) kind: MediaKind,
    /// Simulcast layers, lowest first (empty: one layer, no rid).
    pub(crate) rids: Vec<Rid>,
    pub(crate) clock_rate: u32,
    /// A screen share: served first when a subscriber's bandwidth is short.
    pub(crate) screen: bool,
    last_seen: HashMap<Rid, Instant>,
    /// When each layer (None: the track without simulcast) was last asked for a keyframe.
    last_keyframe_request: HashMap<Option<Rid>, Instant>,
    /// Bytes received per layer since the last allocation tick.
    layer_bytes: HashMap<Option<Rid>, u64>,
    /// Smoothed bitrate per layer, bit/s.
    layer_bps: HashMap<Option<Rid>, u64>,
}

impl PublishedTrack {
    pub(crate) fn new(
        owner: ConnId,
        mid: Mid,
        kind: MediaKind,
        rids: Vec<Rid>,
        clock_rate: u32,
        screen: bool,
    ) -> Self {
        Self {
            owner,
            mid,
            kind,
            rids,
            clock_rate,
            screen,
            last_seen: HashMap::new(),
            last_keyframe_request: HashMap::new(),
            layer_bytes: HashMap::new(),
            layer_bps: HashMap::new(),
        }
    }

    /// Whether any packet arrived yet.
    pub(crate) fn has_flowed(&self) -> bool {
        !self.last_seen.is_empty()
    }

    /// A packet of `bytes` payload bytes arrived on layer `rid`. Its size only counts toward
    /// the layer's bitrate when `measure` (bandwidth allocation is on).
    pub(crate) fn note_packet(
        &mut self,
        rid: Option<Rid>,
        bytes: usize,
        measure: bool,
        now: Instant,
    ) {
        if let Some(r) = rid {
            self.last_seen.insert(r, now);
        }
        if measure {
            *self.layer_bytes.entry(rid).or_default() += bytes as u64 + PACKET_OVERHEAD;
        }
    }

    /// Turns the bytes each layer received over the last `period` into smoothed bitrates.
    pub(crate) fn measure(&mut self, period: Duration) {
        let secs = period.as_secs_f64();
        let keys: Vec<Option<Rid>> = self
            .layer_bps
            .keys()
            .chain(self.layer_bytes.keys())
            .copied()
            .collect();
        for k in keys {
            let sample = self.layer_bytes.get(&k).copied().unwrap_or(0) as f64 * 8.0 / secs;
            let bps = match self.layer_bps.get(&k) {
                Some(&old) => 0.5 * old as f64 + 0.5 * sample,
                None => sample,
            };
            self.layer_bps.insert(k, bps as u64);
        }
        self.layer_bytes.clear();
    }

    /// The measured bitrate of a track without simulcast layers.
    pub(crate) fn single_layer_bps(&self) -> u64 {
        self.layer_bps.get(&None).copied().unwrap_or(0)
    }

    fn flowing(&self, rid: &Rid, now: Instant) -> bool {
        self.last_seen
            .get(rid)
            .is_some_and(|s| now.saturating_duration_since(*s) < LAYER_STALE)
    }

    /// The best layer that is flowing (when `now` is given) and not above `wanted`.
    pub(crate) fn best_layer(&self, wanted: i32, now: Option<Instant>) -> Option<Rid> {
        if self.rids.is_empty() {
            return None;
        }
        let cap = (wanted.clamp(0, 2) as usize).min(self.rids.len() - 1);
        self.rids[..=cap]
            .iter()
            .rev()
            .find(|r| now.is_none_or(|now| self.flowing(r, now)))
            .or_else(|| self.rids.first())
            .copied()
    }

    /// This simulcast track as the allocator sees it for a subscriber that wants `wanted` and
    /// is getting `current`.
    pub(crate) fn demand(&self, wanted: i32, current: Option<Rid>, now: Instant) -> TrackDemand {
        let layers = self
            .rids
            .iter()
            .map(|r| {
                self.flowing(r, now)
                    .then(|| self.layer_bps.get(&Some(*r)).copied())
                    .flatten()
                    .filter(|b| *b > 0)
            })
            .collect();
        TrackDemand {
            layers,
            wanted: (wanted.clamp(0, 2) as usize).min(self.rids.len().saturating_sub(1)),
            current: current.and_then(|r| self.rids.iter().position(|x| *x == r)),
            priority: self.screen,
        }
    }

    /// Whether a keyframe may be asked of layer `rid` now; if so, the request is noted.
    /// Throttled per layer: a request for the layer a subscriber was just switched to must not
    /// be swallowed by a recent request for another layer.
    pub(crate) fn take_keyframe_request(&mut self, rid: Option<Rid>, now: Instant) -> bool {
        if self.kind != MediaKind::Video
            || self
                .last_keyframe_request
                .get(&rid)
                .is_some_and(|l| now < *l + KEYFRAME_THROTTLE)
        {
            return false;
        }
        self.last_keyframe_request.insert(rid, now);
        true
    }
}

/// The room's published tracks by sid, with the index from a publisher's m-line to its track.
#[derive(Debug, Default)]
pub(crate) struct Tracks {
    by_sid: HashMap<String, PublishedTrack>,
    /// (owner, m-line on its publisher PC) → track sid: how an RTP packet finds its track.
    by_pub_mid: HashMap<(ConnId, Mid), String>,
}

impl Tracks {
    pub(crate) fn get(&self, sid: &str) -> Option<&PublishedTrack> {
        self.by_sid.get(sid)
    }

    pub(crate) fn get_mut(&mut self, sid: &str) -> Option<&mut PublishedTrack> {
        self.by_sid.get_mut(sid)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &PublishedTrack)> {
        self.by_sid.iter()
    }

    /// The track that the owner's publisher m-line `mid` carries.
    pub(crate) fn sid_at(&self, owner: ConnId, mid: Mid) -> Option<&String> {
        self.by_pub_mid.get(&(owner, mid))
    }

    /// The sids of the tracks `owner` publishes.
    pub(crate) fn owned_by(&self, owner: ConnId) -> Vec<String> {
        self.by_sid
            .iter()
            .filter(|(_, t)| t.owner == owner)
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// How many tracks `owner` publishes.
    pub(crate) fn count_owned_by(&self, owner: ConnId) -> usize {
        self.by_sid.values().filter(|t| t.owner == owner).count()
    }

    pub(crate) fn insert(&mut self, sid: String, track: PublishedTrack) {
        self.by_pub_mid
            .insert((track.owner, track.mid), sid.clone());
        self.by_sid.insert(sid, track);
    }

    pub(crate) fn remove(&mut self, sid: &str) -> Option<PublishedTrack> {
        let t = self.by_sid.remove(sid)?;
        self.by_pub_mid.remove(&(t.owner, t.mid));
        Some(t)
    }

    /// Turns what every track's layers received over the last `period` into bitrates.
    pub(crate) fn measure(&mut self, period: Duration) {
        for t in self.by_sid.values_mut() {
            t.measure(period);
        }
    }
}

/// One packet as it is forwarded: the header facts every subscriber's copy shares.
#[derive(Clone, Copy)]
pub(crate) struct Outgoing<'a> {
    pub(crate) sid: &'a str,
    pub(crate) pkt: &'a RtpPacket,
    pub(crate) rid: Option<Rid>,
    pub(crate) codec: Codec,
    /// Some(true) on the first packet of a keyframe, Some(false) on any other packet, None
    /// when the publisher sends no Dependency Descriptor.
    pub(crate) keyframe: Option<bool>,
    /// The header extensions to send: the publisher's, without the ones that belong to its PC.
    pub(crate) ext: &'a ExtensionValues,
}

/// Where a subscriber's m-line for a track stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DownState {
    /// Waiting for the next subscriber offer.
    ToAdd,
    /// In an offer not yet answered.
    Negotiating(Mid),
    Open(Mid),
}

/// One track as one subscriber gets it.
#[derive(Debug)]
pub(crate) struct DownTrack {
    pub(crate) state: DownState,
    pub(crate) kind: MediaKind,
    pub(crate) fwd: Forwarder,
    /// The quality the subscriber asked for (track_setting); HIGH by default.
    pub(crate) wanted: i32,
}

impl DownTrack {
    pub(crate) fn new(track: &PublishedTrack) -> Self {
        Self {
            state: DownState::ToAdd,
            kind: track.kind,
            fwd: Forwarder::new(
                track.best_layer(lk::VideoQuality::High as i32, None),
                track.clock_rate,
            ),
            wanted: lk::VideoQuality::High as i32,
        }
    }
}

/// The `TrackInfo` of a track announced with `add_track`, under the sid the room gave it.
pub(crate) fn announced(sid: String, add: &lk::AddTrackRequest) -> lk::TrackInfo {
    let kind = if add.r#type == lk::TrackType::Video as i32 {
        lk::TrackType::Video
    } else {
        lk::TrackType::Audio
    };
    let media = if kind == lk::TrackType::Video {
        "video"
    } else {
        "audio"
    };
    let codecs = add
        .simulcast_codecs
        .iter()
        .map(|c| lk::SimulcastCodecInfo {
            mime_type: format!("{media}/{}", c.codec.to_uppercase()),
            cid: c.cid.clone(),
            layers: add.layers.clone(),
            ..Default::default()
        })
        .collect();
    lk::TrackInfo {
        sid,
        r#type: kind as i32,
        name: add.name.clone(),
        muted: add.muted,
        width: add.width,
        height: add.height,
        simulcast: add.layers.len() > 1,
        source: add.source,
        layers: add.layers.clone(),
        codecs,
        disable_red: add.disable_red,
        encryption: add.encryption,
        stream: add.stream.clone(),
        audio_features: add.audio_features.clone(),
        backup_codec_policy: add.backup_codec_policy,
        ..Default::default()
    }
}

/// The codec (and its clock rate) that the publisher's m-line `mid` carries: the one the client
/// asked for in `info` if the m-line has it (our answer put it first, so that is what the
/// browser sends), else the m-line's first, else the kind's default.
pub(crate) fn negotiated_codec(
    publisher: &Rtc,
    mid: Mid,
    kind: MediaKind,
    info: &lk::TrackInfo,
) -> (Codec, u32) {
    let requested = info
        .codecs
        .first()
        .and_then(|c| c.mime_type.split_once('/'))
        .map(|(_, name)| name.to_ascii_lowercase());
    let negotiated: Vec<(Codec, u32)> = publisher
        .media(mid)
        .map(|m| m.remote_pts().to_vec())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pt| {
            publisher
                .codec_config()
                .params()
                .iter()
                .find(|x| x.pt() == pt)
                .map(|x| (x.spec().codec, x.spec().clock_rate.get()))
        })
        .collect();
    negotiated
        .iter()
        .find(|(c, _)| {
            requested
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(sink_codec(*c).name()))
        })
        .or(negotiated.first())
        .copied()
        .unwrap_or(match kind {
            MediaKind::Audio => (Codec::Opus, 48_000),
            MediaKind::Video => (Codec::Vp8, 90_000),
        })
}

/// The simulcast layers we receive: the client's "send" layers, from our side "recv".
pub(crate) fn received_layers(simulcast: Option<Simulcast>) -> Vec<Rid> {
    simulcast
        .map(|s| if s.recv.is_empty() { s.send } else { s.recv })
        .map(|layers| layers.iter().map(|l| l.rid).collect())
        .unwrap_or_default()
}

/// `"audio"` or `"video"`, as events and MIME types name the kind.
pub(crate) fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// The codec as sinks are told it.
pub(crate) fn sink_codec(codec: Codec) -> SinkCodec {
    match codec {
        Codec::Opus => SinkCodec::Opus,
        Codec::Vp8 => SinkCodec::Vp8,
        Codec::Vp9 => SinkCodec::Vp9,
        Codec::H264 => SinkCodec::H264,
        Codec::Av1 => SinkCodec::Av1,
        Codec::H265 => SinkCodec::H265,
        _ => SinkCodec::Other,
    }
}

/// The quality a subscriber showing a track at `max_side` pixels needs.
pub(crate) fn quality_for_size(max_side: u32) -> i32 {
    match max_side {
        0..=400 => lk::VideoQuality::Low as i32,
        401..=800 => lk::VideoQuality::Medium as i32,
        _ => lk::VideoQuality::High as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(owner: u64, mid: &str) -> PublishedTrack {
        PublishedTrack::new(
            ConnId(owner),
            Mid::from(mid),
            MediaKind::Video,
            Vec::new(),
            90_000,
            false,
        )
    }

    #[test]
    fn a_track_is_found_by_its_publisher_m_line_until_it_is_removed() {
        let mut tracks = Tracks::default();
        tracks.insert("TR_a".into(), track(1, "0"));
        tracks.insert("TR_b".into(), track(1, "1"));
        tracks.insert("TR_c".into(), track(2, "0"));
        assert_eq!(tracks.sid_at(ConnId(2), Mid::from("0")).unwrap(), "TR_c");
        assert_eq!(tracks.count_owned_by(ConnId(1)), 2);
        let mut own = tracks.owned_by(ConnId(1));
        own.sort();
        assert_eq!(own, ["TR_a", "TR_b"]);
        assert!(tracks.remove("TR_a").is_some());
        assert_eq!(tracks.sid_at(ConnId(1), Mid::from("0")), None);
        assert_eq!(tracks.count_owned_by(ConnId(1)), 1);
        assert!(tracks.remove("TR_a").is_none());
    }
}
