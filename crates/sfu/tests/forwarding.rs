//! Forwarding scenarios, in virtual time, against str0m-based LiveKit clients. Payloads are
//! random bytes: the room must make every decision from RTP headers alone.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::World;
use enclave_sfu::proto::{self as lk, signal_request::Message as Req};
use enclave_sfu::Event;
use str0m::media::MediaKind;

#[test]
fn published_video_reaches_the_subscriber_byte_for_byte_with_random_payloads() {
    let mut w = World::connected_pair();
    let mid = w.publish_negotiated("alice", MediaKind::Video);
    assert!(w.known_participants("bob").contains("alice"));
    let track = w.track_of("bob", "alice");
    assert!(
        track.sid.starts_with("TR_") && track.mime_type.eq_ignore_ascii_case("video/VP8"),
        "{track:?}"
    );

    let mut sent = Vec::new();
    for i in 0..120u32 {
        let len = 40 + (i as usize * 37) % 1100;
        let payload = w.random_payload(len);
        sent.push(payload.clone());
        w.send_rtp("alice", mid, 3000 * (i / 3), i % 3 == 2, payload);
        w.advance(Duration::from_millis(11));
    }
    w.advance(Duration::from_millis(300));
    let got = &w.client("bob").received;
    let video: Vec<_> = got.iter().filter(|r| r.payload.len() >= 40).collect();
    // The first packets may go out before bob's m-line opens; everything after must arrive
    // unchanged, in order, with contiguous sequence numbers.
    assert!(video.len() >= 100, "bob received {} of 120", video.len());
    let offset = sent.len() - video.len();
    for (k, r) in video.iter().enumerate() {
        assert_eq!(
            r.payload,
            sent[offset + k],
            "payload {k} forwarded unchanged"
        );
    }
    for pair in video.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "contiguous sequence numbers");
    }
    let seqs: Vec<u64> = video.iter().map(|r| r.seq).collect();
    assert!(
        seqs[0] < 65_536,
        "the first outgoing sequence number keeps the SRTP rollover counter at 0"
    );
}

#[test]
fn subscriber_joining_mid_stream_gets_a_keyframe_request_sent_upstream() {
    let mut w = World::connected_pair();
    let mid = w.publish("alice", MediaKind::Video);
    w.advance(Duration::from_millis(1000));
    let frame = Duration::from_millis(33);
    w.send_frames("alice", mid, 0..30, 300, frame);
    let before = w.client("alice").keyframe_requests;
    w.join("carol");
    w.send_frames("alice", mid, 30..90, 300, frame);
    assert!(
        w.client("alice").keyframe_requests > before,
        "carol's new subscription asks alice for a keyframe"
    );
    assert!(
        w.client("carol").received.len() > 20,
        "carol receives the stream ({} packets)",
        w.client("carol").received.len()
    );
}

#[test]
fn keyframe_requests_are_throttled() {
    let mut w = World::connected_pair();
    let mid = w.publish("alice", MediaKind::Video);
    w.advance(Duration::from_millis(1000));
    for i in 0..10u32 {
        let p = w.random_payload(100);
        w.send_rtp("alice", mid, 3000 * i, true, p);
    }
    let before = w.client("alice").keyframe_requests;
    // Ten joins in the same instant each want a keyframe; alice is asked once.
    for n in 0..10 {
        w.join(&format!("viewer{n}"));
    }
    w.advance(Duration::from_millis(100));
    let asked = w.client("alice").keyframe_requests - before;
    assert!(asked <= 2, "alice was asked {asked} times in 100 ms");
}

#[test]
fn audio_is_forwarded_too() {
    let mut w = World::connected_pair();
    let mid = w.publish("bob", MediaKind::Audio);
    w.advance(Duration::from_millis(1000));
    for i in 0..50u32 {
        let p = w.random_payload(60);
        w.send_rtp("bob", mid, 960 * i, false, p);
        w.advance(Duration::from_millis(20));
    }
    assert!(
        w.client("alice").received.len() >= 45,
        "alice got {} audio packets",
        w.client("alice").received.len()
    );
}

#[test]
fn data_packets_are_relayed_with_the_senders_true_identity() {
    let mut w = World::connected_pair();
    w.publish_negotiated("alice", MediaKind::Audio);
    w.send_data(
        "alice",
        lk::DataPacket {
            participant_identity: "mallory".into(),
            value: Some(lk::data_packet::Value::User(lk::UserPacket {
                payload: b"hello".to_vec(),
                topic: Some("chat".into()),
                ..Default::default()
            })),
            ..Default::default()
        },
    );
    w.advance(Duration::from_millis(200));
    let got = &w.client("bob").data;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].participant_identity, "alice",
        "the room overwrites a forged sender"
    );
    match &got[0].value {
        Some(lk::data_packet::Value::User(u)) => assert_eq!(u.payload, b"hello"),
        v => panic!("{v:?}"),
    }
    assert!(w.client("alice").data.is_empty(), "no echo to the sender");
}

#[test]
fn data_packets_go_only_to_named_destinations() {
    let mut w = World::connected_pair();
    w.join("carol");
    w.publish_negotiated("alice", MediaKind::Audio);
    w.send_data(
        "alice",
        lk::DataPacket {
            destination_identities: vec!["carol".into()],
            value: Some(lk::data_packet::Value::User(lk::UserPacket {
                payload: b"psst".to_vec(),
                ..Default::default()
            })),
            ..Default::default()
        },
    );
    w.advance(Duration::from_millis(200));
    assert_eq!(w.client("carol").data.len(), 1);
    assert!(w.client("bob").data.is_empty());
}

#[test]
fn server_data_reaches_everyone() {
    let mut w = World::connected_pair();
    let now = w.now;
    w.room
        .send_data(now, b"notice".to_vec(), Some("system".into()), vec![]);
    w.settle();
    w.advance(Duration::from_millis(100));
    for who in ["alice", "bob"] {
        assert_eq!(w.client(who).data.len(), 1, "{who}");
        assert_eq!(
            w.client(who).data[0].participant_identity,
            "",
            "server packets have no sender"
        );
    }
}

#[test]
fn leaving_participant_is_announced_and_its_tracks_are_withdrawn() {
    let mut w = World::connected_pair();
    w.publish_negotiated("alice", MediaKind::Video);
    let offers_before = w
        .client("bob")
        .signals
        .iter()
        .filter(|s| matches!(s, lk::signal_response::Message::Offer(_)))
        .count();
    w.signal(
        "alice",
        Req::Leave(lk::LeaveRequest {
            reason: lk::DisconnectReason::ClientInitiated as i32,
            ..Default::default()
        }),
    );
    w.advance(Duration::from_millis(200));
    assert!(!w.known_participants("bob").contains("alice"));
    let offers_after = w
        .client("bob")
        .signals
        .iter()
        .filter(|s| matches!(s, lk::signal_response::Message::Offer(_)))
        .count();
    assert!(
        offers_after > offers_before,
        "bob's subscriber PC is renegotiated to stop the track"
    );
    assert!(w
        .events
        .iter()
        .any(|e| matches!(e, Event::ParticipantLeft { identity, .. } if identity == "alice")));
    assert!(w.client("alice").closed);
    assert_eq!(w.room.len(), 1);
}

#[test]
fn participant_who_vanishes_is_removed_within_bounded_time() {
    let mut w = World::connected_pair();
    w.client("bob").cut = true;
    w.advance(Duration::from_secs(30));
    assert!(
        w.events
            .iter()
            .any(|e| matches!(e, Event::ParticipantLeft { identity, .. } if identity == "bob")),
        "{:?}",
        w.events
    );
    assert!(!w.known_participants("alice").contains("bob"));
    assert_eq!(w.room.len(), 1);
}

#[test]
fn a_second_session_of_the_same_identity_evicts_the_first() {
    let mut w = World::connected_pair();
    let first = w.client("bob").conn;
    w.join("bob");
    let old = w.clients.iter().find(|c| c.conn == first).unwrap();
    assert!(old.closed);
    assert!(old.signals.iter().any(|s| matches!(s, lk::signal_response::Message::Leave(l) if l.reason == lk::DisconnectReason::DuplicateIdentity as i32)));
    assert_eq!(w.room.len(), 2);
}

#[test]
fn ping_is_answered_with_the_servers_clock() {
    let mut w = World::connected_pair();
    w.signal(
        "alice",
        Req::PingReq(lk::Ping {
            timestamp: 1234,
            rtt: 0,
        }),
    );
    w.signal("alice", Req::Ping(99));
    let sig = &w.client("alice").signals;
    assert!(sig.iter().any(|s| matches!(s, lk::signal_response::Message::PongResp(p) if p.last_ping_timestamp == 1234 && p.timestamp >= 1_700_000_000_000)));
    assert!(sig
        .iter()
        .any(|s| matches!(s, lk::signal_response::Message::Pong(t) if *t >= 1_700_000_000_000)));
}

#[test]
fn malformed_signalling_never_panics_and_nonsense_ends_the_session() {
    let mut w = World::connected_pair();
    w.signal(
        "bob",
        Req::Trickle(lk::TrickleRequest {
            candidate_init: "{not json".into(),
            target: 1,
            ..Default::default()
        }),
    );
    w.signal(
        "bob",
        Req::Trickle(lk::TrickleRequest {
            candidate_init: r#"{"candidate":"candidate:garbage"}"#.into(),
            target: 0,
            ..Default::default()
        }),
    );
    w.signal(
        "bob",
        Req::Answer(lk::SessionDescription {
            sdp: "v=0".into(),
            id: 77,
            ..Default::default()
        }),
    );
    w.signal(
        "bob",
        Req::Mute(lk::MuteTrackRequest {
            sid: "TR_nope".into(),
            muted: true,
        }),
    );
    w.signal(
        "bob",
        Req::TrackSetting(lk::UpdateTrackSettings {
            track_sids: vec!["TR_nope".into()],
            ..Default::default()
        }),
    );
    assert_eq!(w.room.len(), 2, "harmless nonsense is ignored");
    w.signal(
        "bob",
        Req::Offer(lk::SessionDescription {
            sdp: "this is not sdp".into(),
            id: 1,
            ..Default::default()
        }),
    );
    assert_eq!(w.room.len(), 1, "an unusable offer ends the session");
    assert!(w.client("bob").closed);
}

#[test]
fn mute_is_broadcast() {
    let mut w = World::connected_pair();
    w.publish_negotiated("alice", MediaKind::Audio);
    let sid = w.track_of("alice", "alice").sid;
    w.signal(
        "alice",
        Req::Mute(lk::MuteTrackRequest {
            sid: sid.clone(),
            muted: true,
        }),
    );
    let muted = w
        .last_update("bob", "alice")
        .and_then(|p| p.tracks.iter().find(|t| t.sid == sid).map(|t| t.muted));
    assert_eq!(muted, Some(true));
    let versions: HashMap<u32, ()> = w
        .client("bob")
        .updates
        .iter()
        .filter(|p| p.identity == "alice")
        .map(|p| (p.version, ()))
        .collect();
    assert!(
        versions.len() >= 3,
        "every update of alice has a new version"
    );
}

#[test]
fn an_encrypted_room_refuses_tracks_announced_in_clear() {
    let mut w = World::with_encryption(true);
    w.join("alice");
    w.advance(Duration::from_millis(500));
    let add = |cid: &str, encryption: lk::encryption::Type| {
        Req::AddTrack(lk::AddTrackRequest {
            cid: cid.into(),
            r#type: lk::TrackType::Video as i32,
            encryption: encryption as i32,
            ..Default::default()
        })
    };
    w.signal("alice", add("clear", lk::encryption::Type::None));
    w.signal("alice", add("sealed", lk::encryption::Type::Gcm));
    let sig = &w.client("alice").signals;
    assert!(sig.iter().any(|s| matches!(s, lk::signal_response::Message::RequestResponse(r)
        if r.reason == lk::request_response::Reason::NotAllowed as i32 && r.message.contains("end-to-end encrypted"))));
    let published: Vec<&str> = sig
        .iter()
        .filter_map(|s| match s {
            lk::signal_response::Message::TrackPublished(t) => Some(t.cid.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        published,
        ["sealed"],
        "only the encrypted track is accepted"
    );
}

#[test]
fn connection_quality_is_reported_for_connected_participants() {
    let mut w = World::connected_pair();
    w.advance(Duration::from_secs(3));
    let q = w
        .client("alice")
        .signals
        .iter()
        .rev()
        .find_map(|s| match s {
            lk::signal_response::Message::ConnectionQuality(q) => Some(q.clone()),
            _ => None,
        });
    let q = q.expect("a connection quality update");
    let sids: Vec<&str> = q
        .updates
        .iter()
        .map(|u| u.participant_sid.as_str())
        .collect();
    assert!(
        sids.contains(&"PA_alice") && sids.contains(&"PA_bob"),
        "{sids:?}"
    );
    assert!(
        q.updates
            .iter()
            .all(|u| u.quality == lk::ConnectionQuality::Excellent as i32),
        "no loss on the in-memory network"
    );
}

#[test]
fn speakers_are_detected_from_the_audio_level_header_and_reported_when_they_stop() {
    let mut w = World::connected_pair();
    let mid = w.publish("bob", MediaKind::Audio);
    w.advance(Duration::from_millis(1000));
    let speaking = |w: &mut World| {
        w.client("alice")
            .signals
            .iter()
            .rev()
            .find_map(|s| match s {
                lk::signal_response::Message::SpeakersChanged(c) => Some(c.speakers.clone()),
                _ => None,
            })
    };
    for i in 0..50u32 {
        let p = w.random_payload(40);
        w.send_audio_level("bob", mid, 960 * i, 20, p);
        w.advance(Duration::from_millis(20));
    }
    let s = speaking(&mut w).expect("a speakers update");
    assert!(s.iter().any(|x| x.sid == "PA_bob" && x.active), "{s:?}");
    for i in 50..150u32 {
        let p = w.random_payload(40);
        w.send_audio_level("bob", mid, 960 * i, 127, p);
        w.advance(Duration::from_millis(20));
    }
    let s = speaking(&mut w).expect("a speakers update");
    assert!(
        s.iter().any(|x| x.sid == "PA_bob" && !x.active),
        "bob stopped speaking: {s:?}"
    );
    // The runtime hears it too (talk time for attendance), once per change.
    let changes: Vec<(String, bool)> = w
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Speaking { identity, speaking } => Some((identity.clone(), *speaking)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [("bob".to_owned(), true), ("bob".to_owned(), false)]
    );
}

#[test]
fn an_admin_can_remove_a_participant_and_mute_a_track() {
    let mut w = World::connected_pair();
    w.publish_negotiated("bob", MediaKind::Audio);
    let sid = w.track_of("bob", "bob").sid;
    let now = w.now;
    assert!(w.room.mute_track(now, "bob", &sid, true));
    assert!(!w.room.mute_track(now, "bob", "TR_not_his", true));
    w.settle();
    assert!(w
        .client("bob")
        .signals
        .iter()
        .any(|s| matches!(s, lk::signal_response::Message::Mute(m) if m.sid == sid && m.muted)));
    let muted = w
        .last_update("alice", "bob")
        .and_then(|p| p.tracks.first().map(|t| t.muted));
    assert_eq!(muted, Some(true), "others see the track muted at once");

    let now = w.now;
    assert!(w.room.remove_participant(now, "bob"));
    assert!(!w.room.remove_participant(now, "nobody"));
    w.settle();
    let bob = w.client("bob");
    assert!(bob.closed);
    assert!(bob.signals.iter().any(|s| matches!(s, lk::signal_response::Message::Leave(l) if l.reason == lk::DisconnectReason::ParticipantRemoved as i32)));
    assert!(!w.known_participants("alice").contains("bob"));
}
