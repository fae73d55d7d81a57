//! What one participant may do to a room, in virtual time: publish a bounded number of tracks
//! (asking past the limit is refused, and asking on is the end of the participant), offer a
//! bounded number of media sections, and send only the data a participant may send.

mod common;

use std::time::Duration;

use common::World;
use enclave_sfu::proto::{
    self as lk, signal_request::Message as Req, signal_response::Message as Resp,
};
use enclave_sfu::{Event, MAX_MEDIA_SECTIONS, MAX_TRACKS_PER_PARTICIPANT, SERVER_TOPIC};
use str0m::media::MediaKind;

fn add_track(w: &mut World, who: &str, i: usize) {
    w.signal(
        who,
        Req::AddTrack(lk::AddTrackRequest {
            cid: format!("cid-{i}"),
            name: format!("t{i}"),
            r#type: lk::TrackType::Audio as i32,
            ..Default::default()
        }),
    );
}

fn published(w: &mut World, who: &str) -> usize {
    w.client(who)
        .signals
        .iter()
        .filter(|s| matches!(s, Resp::TrackPublished(_)))
        .count()
}

fn limit_refusals(w: &mut World, who: &str) -> Vec<lk::RequestResponse> {
    w.refusals(who, lk::request_response::Reason::LimitExceeded)
}

#[test]
fn a_participant_adding_hundreds_of_tracks_is_refused_then_removed() {
    let mut w = World::connected_pair();
    for i in 0..MAX_TRACKS_PER_PARTICIPANT {
        add_track(&mut w, "alice", i);
    }
    assert_eq!(published(&mut w, "alice"), MAX_TRACKS_PER_PARTICIPANT);
    assert!(limit_refusals(&mut w, "alice").is_empty());

    // One more is refused with a reason the SDK can show, naming the request.
    add_track(&mut w, "alice", 1000);
    let refused = limit_refusals(&mut w, "alice");
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].message.contains("at most 16 tracks"),
        "{:?}",
        refused[0]
    );
    assert!(matches!(
        &refused[0].request,
        Some(lk::request_response::Request::AddTrack(a)) if a.cid == "cid-1000"
    ));
    assert!(!w.client("alice").closed, "one refusal is not the end");

    // Asking on and on: removed, and the room says why.
    for i in 0..300 {
        add_track(&mut w, "alice", 2000 + i);
        if w.client("alice").closed {
            break;
        }
    }
    assert!(w.client("alice").closed, "the participant was removed");
    assert!(limit_refusals(&mut w, "alice").len() <= 17 + 1);
    let left = w.client("alice").signals.iter().any(
        |s| matches!(s, Resp::Leave(l) if l.reason == lk::DisconnectReason::SignalClose as i32),
    );
    assert!(left, "alice was told to leave");
    assert!(w
        .events
        .iter()
        .any(|e| matches!(e, Event::ParticipantEvicted { identity, .. } if identity == "alice")));
    // Bob is still there and was told alice left.
    assert!(!w.client("bob").closed);
    assert!(!w.known_participants("bob").contains("alice"));
}

#[test]
fn a_publisher_offer_with_too_many_media_sections_is_refused() {
    let mut w = World::connected_pair();
    let mut sdp = String::from("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE");
    let n = MAX_MEDIA_SECTIONS + 1;
    for i in 0..n {
        sdp.push_str(&format!(" {i}"));
    }
    sdp.push_str("\r\n");
    for i in 0..n {
        sdp.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{i}\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
        ));
    }
    w.signal(
        "alice",
        Req::Offer(lk::SessionDescription {
            r#type: "offer".into(),
            sdp,
            id: 1,
            ..Default::default()
        }),
    );
    assert!(w.client("alice").closed, "refused and removed");
    assert!(!w
        .client("alice")
        .signals
        .iter()
        .any(|s| matches!(s, Resp::Answer(_))));
    assert!(!w.client("bob").closed);
}

fn data(value: lk::data_packet::Value) -> lk::DataPacket {
    lk::DataPacket {
        value: Some(value),
        ..Default::default()
    }
}

#[test]
fn a_participant_cannot_speak_with_the_servers_voice() {
    let mut w = World::connected_pair();
    w.publish_negotiated("alice", MediaKind::Audio);
    #[allow(deprecated)]
    let refused = [
        data(lk::data_packet::Value::User(lk::UserPacket {
            payload: br#"{"type":"RECORDER_STATE","is_recording":true}"#.to_vec(),
            topic: Some(SERVER_TOPIC.into()),
            ..Default::default()
        })),
        data(lk::data_packet::Value::Speaker(
            lk::ActiveSpeakerUpdate::default(),
        )),
        data(lk::data_packet::Value::Transcription(lk::Transcription {
            transcribed_participant_identity: "bob".into(),
            ..Default::default()
        })),
        data(lk::data_packet::Value::SipDtmf(lk::SipDtmf::default())),
        data(lk::data_packet::Value::Metrics(lk::MetricsBatch::default())),
        // No value at all (a forged sender, so that the packet is not empty bytes).
        lk::DataPacket {
            participant_identity: "bob".into(),
            ..Default::default()
        },
    ];
    for p in refused {
        w.send_data("alice", p);
    }
    // What a participant may send still goes through.
    let allowed = [
        data(lk::data_packet::Value::User(lk::UserPacket {
            payload: b"hi".to_vec(),
            topic: Some("enclave.chat".into()),
            ..Default::default()
        })),
        data(lk::data_packet::Value::ChatMessage(lk::ChatMessage {
            message: "hello".into(),
            ..Default::default()
        })),
        data(lk::data_packet::Value::RpcRequest(lk::RpcRequest::default())),
        data(lk::data_packet::Value::StreamHeader(
            lk::data_stream::Header::default(),
        )),
    ];
    for p in allowed {
        w.send_data("alice", p);
    }
    w.advance(Duration::from_millis(300));
    let got = &w.client("bob").data;
    assert_eq!(
        got.len(),
        4,
        "only the four allowed packets arrive: {got:?}"
    );
    assert!(got.iter().all(|p| !matches!(
        &p.value,
        Some(lk::data_packet::Value::User(u)) if u.topic.as_deref() == Some(SERVER_TOPIC)
    )));
}
