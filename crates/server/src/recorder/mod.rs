//! Server-side media sinks: cloud recording and RTMP broadcasting of a plain (not end-to-end
//! encrypted) room.
//!
//! The SFU core hands a sink every packet it would forward to a subscriber, header fields
//! already rewritten into one continuous stream per track (see `enclave_sfu::Room::add_sink`).
//! A [`pipeline::Pipeline`] turns those packets into one composed stream: Debian's `ffmpeg`
//! depacketises and decodes each track, the pipeline places the decoded tiles in a grid and
//! mixes the audio, and a final `ffmpeg` encodes (H.264/AAC) and muxes to an MP4 file or an
//! RTMP URL. The core refuses sinks in end-to-end encrypted rooms, so none of this can run
//! there.

pub mod compose;
pub mod pipeline;

use std::path::PathBuf;

pub use enclave_sfu::{SinkCodec, SinkPacket, SinkTrack, SinkTrackId};

/// What the media runtime feeds a pipeline: the SFU's sink outputs, in the order the SFU made
/// them (sequence numbers and timestamps are continuous per track across simulcast layer
/// switches).
#[derive(Debug, Clone)]
pub enum SinkInput {
    /// A track, announced once before its first packet.
    Track(SinkTrack),
    /// One RTP packet of an announced track.
    Packet(SinkPacket),
    /// The track was unpublished (or its publisher left): drop its tile and its audio.
    TrackEnded(SinkTrackId),
}

/// Where the composed stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An MP4 file. The pipeline writes `<path>.part` and renames it to `path` only once
    /// ffmpeg has finalised it, so a half-written file never looks complete.
    File { path: PathBuf },
    /// An RTMP(S) URL, stream key included.
    Rtmp { url: String },
}
