//! Server-side sinks (the recorder and the RTMP broadcaster), in virtual time: what they get,
//! and that an end-to-end encrypted room gives them nothing.

mod common;

use std::time::Duration;

use common::World;
use enclave_sfu::{SinkCodec, SinkId, SinkPacket, SinkRefused};
use str0m::media::MediaKind;

fn publishing_pair() -> (World, str0m::media::Mid, str0m::media::Mid) {
    let mut w = World::connected_pair();
    let video = w.publish("alice", MediaKind::Video);
    let audio = w.publish("alice", MediaKind::Audio);
    w.advance(Duration::from_millis(1500));
    (w, video, audio)
}

#[test]
fn a_sink_gets_every_track_unchanged_with_continuous_sequence_numbers() {
    let (mut w, video, audio) = publishing_pair();
    let before = w.client("alice").keyframe_requests;
    w.room
        .add_sink(w.now, SinkId(7))
        .expect("a plain room accepts a sink");
    w.settle();
    assert!(
        w.client("alice").keyframe_requests > before,
        "attaching a sink asks the publisher for a keyframe"
    );
    let mut sent_video = Vec::new();
    let mut sent_audio = Vec::new();
    for i in 0..60u32 {
        let v = w.random_payload(200 + (i as usize * 13) % 900);
        let a = w.random_payload(80);
        sent_video.push(v.clone());
        sent_audio.push(a.clone());
        w.send_rtp("alice", video, 3000 * (i / 2), i % 2 == 1, v);
        w.send_rtp("alice", audio, 960 * i, false, a);
        w.advance(Duration::from_millis(20));
    }
    let of_kind = |video: bool| -> Vec<&SinkPacket> {
        w.sink_packets
            .iter()
            .filter(|(_, p)| w.sink_track(p.track).video == video)
            .map(|(_, p)| p)
            .collect()
    };
    let (got_video, got_audio) = (of_kind(true), of_kind(false));
    assert_eq!(got_video.len(), 60, "every video packet reaches the sink");
    assert_eq!(got_audio.len(), 60, "every audio packet reaches the sink");
    assert!(w.sink_packets.iter().all(|(s, _)| *s == SinkId(7)));
    let video_track = w.sink_track(got_video[0].track);
    assert_eq!(video_track.codec, SinkCodec::Vp8);
    assert_eq!(video_track.clock_rate, 90_000);
    assert_eq!(video_track.participant_identity, "alice");
    let audio_track = w.sink_track(got_audio[0].track);
    assert_eq!(audio_track.codec, SinkCodec::Opus);
    assert_eq!(audio_track.clock_rate, 48_000);
    assert_eq!(w.sink_tracks.len(), 2, "each track is announced once");
    for (k, p) in got_video.iter().enumerate() {
        assert_eq!(p.payload, sent_video[k], "video payload {k} unchanged");
        assert_eq!(p.marker, k % 2 == 1);
    }
    for (k, p) in got_audio.iter().enumerate() {
        assert_eq!(p.payload, sent_audio[k], "audio payload {k} unchanged");
    }
    for pair in got_video.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "contiguous video seq"
        );
    }
    assert_ne!(
        video_track.track_sid, audio_track.track_sid,
        "packets name their track"
    );
}

#[test]
fn a_sink_is_told_when_a_track_ends_and_gets_tracks_published_later() {
    let (mut w, video, _audio) = publishing_pair();
    w.room.add_sink(w.now, SinkId(1)).unwrap();
    w.settle();
    w.join("carol");
    w.advance(Duration::from_millis(1500));
    let carol_video = w.publish("carol", MediaKind::Video);
    w.advance(Duration::from_millis(1500));
    w.send_frames("carol", carol_video, 0..5, 300, Duration::from_millis(30));
    let carol_track = w
        .sink_packets
        .iter()
        .map(|(_, p)| w.sink_track(p.track))
        .find(|t| t.participant_identity == "carol")
        .map(|t| t.id)
        .expect("a track published after the sink attached reaches it");
    w.signal(
        "carol",
        enclave_sfu::proto::signal_request::Message::Leave(Default::default()),
    );
    w.settle();
    assert!(
        w.sink_tracks_ended
            .iter()
            .any(|(s, t)| *s == SinkId(1) && *t == carol_track),
        "the sink learns the track is gone: {:?}",
        w.sink_tracks_ended
    );
    // Removed sinks get nothing more.
    assert!(w.room.remove_sink(SinkId(1)));
    assert!(!w.room.remove_sink(SinkId(1)));
    let n = w.sink_packets.len();
    let p = w.random_payload(100);
    w.send_rtp("alice", video, 0, true, p);
    w.advance(Duration::from_millis(50));
    assert_eq!(w.sink_packets.len(), n, "a removed sink receives nothing");
}

#[test]
fn an_end_to_end_encrypted_room_refuses_every_sink() {
    let mut w = World::with_encryption(true);
    w.join("alice");
    w.advance(Duration::from_millis(1500));
    assert_eq!(
        w.room.add_sink(w.now, SinkId(1)),
        Err(SinkRefused::EndToEndEncrypted)
    );
    w.settle();
    assert!(w.sink_packets.is_empty());
}

#[test]
fn a_sink_is_attached_once_and_not_to_an_ended_room() {
    let (mut w, _, _) = publishing_pair();
    w.room.add_sink(w.now, SinkId(3)).unwrap();
    assert_eq!(w.room.add_sink(w.now, SinkId(3)), Err(SinkRefused::Exists));
    w.room.end(w.now);
    w.settle();
    assert_eq!(w.room.add_sink(w.now, SinkId(4)), Err(SinkRefused::Ended));
    assert!(
        w.sink_tracks_ended.len() >= 2,
        "ending the room ends the sink's tracks: {:?}",
        w.sink_tracks_ended
    );
}

#[test]
fn a_sink_gets_the_top_flowing_simulcast_layer_only() {
    let mut w = World::new();
    w.join("alice");
    w.advance(Duration::from_millis(1500));
    let mid = w.publish_simulcast("alice", &["q", "h", "f"]);
    w.advance(Duration::from_millis(1500));
    w.room.add_sink(w.now, SinkId(9)).unwrap();
    w.settle();
    let mut top = Vec::new();
    for n in 0..40u32 {
        for rid in ["q", "h", "f"] {
            let p = w.random_payload(150);
            if rid == "f" {
                top.push(p.clone());
            }
            w.send_rtp_layer("alice", mid, rid, 3000 * n, true, p, None);
        }
        w.settle();
        w.advance(Duration::from_millis(33));
    }
    let got: Vec<&Vec<u8>> = w.sink_packets.iter().map(|(_, p)| &p.payload).collect();
    assert!(got.len() >= 35, "the sink gets frames: {}", got.len());
    assert!(
        got.iter().all(|p| top.contains(p)),
        "every packet the sink got is from the top layer"
    );
}
