//! The ingest: sink packets in, one ffmpeg decoder per track fed plain RTP on loopback. A
//! track's decoder starts with its first packet; the track was announced before it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::decoder::{supervise_decoder, DecoderCtx};
use super::mixer::{lock, lock_arrivals, SharedArrivals, SharedMixer};
use super::{PipelineConfig, PipelineError};
use crate::recorder::{SinkCodec, SinkInput, SinkPacket, SinkTrack, SinkTrackId};

/// Tracks beyond this are ignored: each costs a decoder process.
const MAX_TRACKS: usize = 32;
/// Packets held per track while its decoder (re)starts, so the first keyframe is not lost.
const PENDING_PACKETS: usize = 512;
/// Our RTP towards the decoders; one fixed stream per decoder port.
const SSRC: u32 = 0x454e_434c;
const PT_VIDEO: u8 = 96;
const PT_AUDIO: u8 = 111;

/// What ffmpeg 5.1 can depacketise and decode for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Vp8,
    Vp9,
    H264,
    Opus,
}

impl Codec {
    pub(super) fn is_video(self) -> bool {
        self != Codec::Opus
    }

    pub(super) fn clock_rate(self) -> u32 {
        if self.is_video() {
            90_000
        } else {
            48_000
        }
    }

    pub(super) fn payload_type(self) -> u8 {
        if self.is_video() {
            PT_VIDEO
        } else {
            PT_AUDIO
        }
    }

    pub(super) fn sdp(self, port: u16) -> String {
        let (media, rtpmap, fmtp) = match self {
            Codec::Vp8 => ("video", "VP8/90000", ""),
            Codec::Vp9 => ("video", "VP9/90000", ""),
            Codec::H264 => ("video", "H264/90000", "a=fmtp:96 packetization-mode=1\r\n"),
            Codec::Opus => ("audio", "opus/48000/2", ""),
        };
        let pt = self.payload_type();
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=enclave\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m={media} {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {rtpmap}\r\n{fmtp}"
        )
    }
}

/// What the ingest does with a new track.
pub(super) enum Plan {
    Decode(Codec),
    /// A video tile that stays a placeholder (a codec ffmpeg cannot take from RTP).
    Placeholder(&'static str),
    Ignore(&'static str),
}

pub(super) fn plan(video: bool, codec: SinkCodec) -> Plan {
    match (codec, video) {
        (SinkCodec::Vp8, _) => Plan::Decode(Codec::Vp8),
        (SinkCodec::Vp9, _) => Plan::Decode(Codec::Vp9),
        (SinkCodec::H264, _) => Plan::Decode(Codec::H264),
        (SinkCodec::Opus, _) => Plan::Decode(Codec::Opus),
        (SinkCodec::Av1, true) => Plan::Placeholder("ffmpeg 5.1 has no AV1 RTP depacketiser"),
        (_, true) => Plan::Placeholder("unsupported video codec"),
        (_, false) => Plan::Ignore("unsupported audio codec"),
    }
}

pub(super) struct Ingest {
    pub(super) cfg: PipelineConfig,
    /// Unique per pipeline: SDP files of several pipelines share the work dir.
    pub(super) stem: String,
    pub(super) mixer: SharedMixer,
    pub(super) keyframes: mpsc::UnboundedSender<String>,
    pub(super) fatal: mpsc::Sender<PipelineError>,
    pub(super) tracks_seen: Arc<AtomicUsize>,
}

pub(super) struct Track {
    /// None: no decoder for this track.
    pub(super) decoder: Option<TrackDecoder>,
}

pub(super) struct TrackDecoder {
    pub(super) codec: Codec,
    /// The decoder's RTP port; 0 while it (re)starts.
    pub(super) port: Arc<AtomicU16>,
    pub(super) pending: VecDeque<Vec<u8>>,
    pub(super) supervisor: AbortHandle,
    /// When each frame arrived, and where its decoder's pts start (video).
    pub(super) arrivals: SharedArrivals,
    /// The port packets last went to: a new one is a new decoder process, whose pts count
    /// from the first packet it is sent.
    pub(super) sent_to: u16,
}

impl Drop for TrackDecoder {
    fn drop(&mut self) {
        // Kills the decoder: its Child is kill_on_drop inside the aborted task.
        self.supervisor.abort();
    }
}

pub(super) async fn run_ingest(
    mut input: mpsc::Receiver<SinkInput>,
    stop: CancellationToken,
    ctx: Ingest,
) {
    let sock = match UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ctx.fatal.send(PipelineError::NoPort(Arc::new(e))).await;
            return;
        }
    };
    // What the SFU announced, and the tracks that have had a packet since.
    let mut announced: HashMap<SinkTrackId, SinkTrack> = HashMap::new();
    let mut tracks: HashMap<SinkTrackId, Track> = HashMap::new();
    let mut ended: HashSet<SinkTrackId> = HashSet::new();
    let mut datagram = Vec::with_capacity(1500);
    loop {
        let msg = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            m = input.recv() => m,
        };
        match msg {
            None => {
                tracing::info!("recorder input closed: finishing");
                stop.cancel();
                break;
            }
            Some(SinkInput::Track(t)) => {
                announced.insert(t.id, t);
            }
            Some(SinkInput::TrackEnded(id)) => {
                let had = tracks.remove(&id).is_some();
                if let Some(t) = announced.remove(&id) {
                    if had {
                        tracing::info!(track = %t.track_sid, "track ended: tile and audio removed");
                    }
                    lock(&ctx.mixer).remove(&t.track_sid);
                }
                ended.insert(id);
            }
            Some(SinkInput::Packet(p)) => {
                // Packets still in flight after TrackEnded must not bring the track back.
                if ended.contains(&p.track) {
                    continue;
                }
                if !tracks.contains_key(&p.track) {
                    // The runtime announces a track before its packets.
                    let Some(t) = announced.get(&p.track) else {
                        continue;
                    };
                    let decoding = tracks.values().filter(|t| t.decoder.is_some()).count();
                    tracks.insert(p.track, new_track(&ctx, t, decoding));
                }
                let Some(dec) = tracks.get_mut(&p.track).and_then(|t| t.decoder.as_mut()) else {
                    continue;
                };
                rtp_datagram(&p, dec.codec.payload_type(), &mut datagram);
                if dec.codec.is_video() {
                    lock_arrivals(&dec.arrivals).note(p.timestamp, Instant::now());
                }
                let port = dec.port.load(Ordering::Acquire);
                if port == 0 {
                    if dec.supervisor.is_finished() {
                        // The decoder gave up; its tile stays frozen.
                        dec.pending.clear();
                        continue;
                    }
                    if dec.pending.len() == PENDING_PACKETS {
                        dec.pending.pop_front();
                    }
                    dec.pending.push_back(datagram.clone());
                    continue;
                }
                if port != dec.sent_to {
                    // A new decoder: its pts start at the first packet it gets.
                    dec.sent_to = port;
                    let first = dec.pending.front().unwrap_or(&datagram);
                    lock_arrivals(&dec.arrivals).base = rtp_timestamp(first);
                }
                let to = (Ipv4Addr::LOCALHOST, port);
                // Loss on loopback is the decoder's problem (it conceals); never ours to fail on.
                for d in dec.pending.drain(..) {
                    let _ = sock.send_to(&d, to).await;
                }
                let _ = sock.send_to(&datagram, to).await;
            }
        }
    }
    // Dropping `tracks` aborts every decoder.
}

pub(super) fn new_track(ctx: &Ingest, t: &SinkTrack, decoding: usize) -> Track {
    let sid = t.track_sid.as_str();
    if decoding >= MAX_TRACKS {
        tracing::warn!(
            track = sid,
            "more than {MAX_TRACKS} tracks: ignoring this one"
        );
        return Track { decoder: None };
    }
    ctx.tracks_seen.fetch_add(1, Ordering::Relaxed);
    let codec = match plan(t.video, t.codec) {
        Plan::Decode(c) => c,
        Plan::Placeholder(why) => {
            tracing::warn!(
                track = sid,
                codec = t.codec.name(),
                "{why}: the track's tile stays a placeholder"
            );
            lock(&ctx.mixer).add_video(sid);
            return Track { decoder: None };
        }
        Plan::Ignore(why) => {
            tracing::warn!(
                track = sid,
                codec = t.codec.name(),
                "{why}: track not recorded"
            );
            return Track { decoder: None };
        }
    };
    {
        let mut m = lock(&ctx.mixer);
        if codec.is_video() {
            m.add_video(sid);
        } else {
            m.add_audio(sid);
        }
    }
    tracing::info!(track = sid, participant = %t.participant_identity, codec = ?codec, "new track");
    if t.clock_rate != codec.clock_rate() {
        // The SDP states the standard rate; a different one would play at the wrong speed.
        tracing::warn!(
            track = sid,
            clock_rate = t.clock_rate,
            "unexpected RTP clock rate; decoding at {} Hz",
            codec.clock_rate()
        );
    }
    let port = Arc::new(AtomicU16::new(0));
    let arrivals = SharedArrivals::default();
    let index = ctx.tracks_seen.load(Ordering::Relaxed);
    let dctx = DecoderCtx {
        ffmpeg: ctx.cfg.ffmpeg.clone(),
        work_dir: ctx.cfg.work_dir.clone(),
        stem: format!("{}-{index}", ctx.stem),
        track_sid: sid.to_owned(),
        codec,
        width: ctx.cfg.width,
        height: ctx.cfg.height,
        mixer: ctx.mixer.clone(),
        port: port.clone(),
        keyframes: ctx.keyframes.clone(),
        arrivals: arrivals.clone(),
    };
    let supervisor = tokio::spawn(supervise_decoder(dctx)).abort_handle();
    Track {
        decoder: Some(TrackDecoder {
            codec,
            port,
            pending: VecDeque::new(),
            supervisor,
            arrivals,
            sent_to: 0,
        }),
    }
}

/// The timestamp of an RTP packet made by [`rtp_datagram`].
fn rtp_timestamp(datagram: &[u8]) -> Option<u32> {
    let b: [u8; 4] = datagram.get(4..8)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// A plain RTP packet (no CSRCs, no extensions) carrying the SFU's sequence number,
/// timestamp and marker under our own SSRC and payload type.
pub(super) fn rtp_datagram(p: &SinkPacket, pt: u8, out: &mut Vec<u8>) {
    out.clear();
    out.push(0x80);
    out.push(if p.marker { 0x80 | pt } else { pt });
    out.extend_from_slice(&p.seq.to_be_bytes());
    out.extend_from_slice(&p.timestamp.to_be_bytes());
    out.extend_from_slice(&SSRC.to_be_bytes());
    out.extend_from_slice(&p.payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    fn packet(marker: bool) -> SinkPacket {
        SinkPacket {
            track: SinkTrackId(1),
            seq: 0xABCD,
            timestamp: 0x0102_0304,
            marker,
            payload: vec![9, 8, 7],
        }
    }

    #[test]
    fn rtp_header_carries_seq_timestamp_marker() {
        let mut out = Vec::new();
        rtp_datagram(&packet(true), PT_VIDEO, &mut out);
        assert_eq!(
            out,
            [
                0x80,
                0x80 | 96,
                0xAB,
                0xCD,
                1,
                2,
                3,
                4,
                0x45,
                0x4e,
                0x43,
                0x4c,
                9,
                8,
                7
            ]
        );
        rtp_datagram(&packet(false), PT_AUDIO, &mut out);
        assert_eq!(out[1], 111);
        assert_eq!(out.len(), 15);
    }
    #[test]
    fn codecs_are_planned() {
        assert!(matches!(
            plan(true, SinkCodec::Vp8),
            Plan::Decode(Codec::Vp8)
        ));
        assert!(matches!(
            plan(true, SinkCodec::H264),
            Plan::Decode(Codec::H264)
        ));
        assert!(matches!(
            plan(false, SinkCodec::Opus),
            Plan::Decode(Codec::Opus)
        ));
        assert!(matches!(plan(true, SinkCodec::Av1), Plan::Placeholder(_)));
        assert!(matches!(plan(true, SinkCodec::H265), Plan::Placeholder(_)));
        assert!(matches!(plan(false, SinkCodec::Other), Plan::Ignore(_)));
        let sdp = Codec::H264.sdp(5004);
        assert!(sdp.contains("m=video 5004 RTP/AVP 96\r\n"));
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"));
        assert!(Codec::Opus
            .sdp(6000)
            .contains("m=audio 6000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2"));
    }
}
