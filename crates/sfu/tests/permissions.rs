#![allow(clippy::unwrap_used)]
//! What a participant may publish: sources locked by an admin or turned off in the room are
//! refused when announced, and a lock set live takes a published track away at once.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{user_packet, World};
use enclave_sfu::proto as lk;
use enclave_sfu::{Event, PublishPermission};
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;
use str0m::media::MediaKind;

const CAMERA: i32 = lk::TrackSource::Camera as i32;
const MIC: i32 = lk::TrackSource::Microphone as i32;

fn only(sources: &[i32]) -> PublishPermission {
    PublishPermission {
        can_publish: true,
        can_publish_sources: sources.to_vec(),
        can_publish_data: true,
        denied_data_topics: Vec::new(),
    }
}

fn refusals(w: &mut World, who: &str) -> Vec<(String, String)> {
    w.refusals(who, lk::request_response::Reason::NotAllowed)
        .into_iter()
        .map(|r| {
            let cid = match r.request {
                Some(lk::request_response::Request::AddTrack(a)) => a.cid,
                _ => String::new(),
            };
            (cid, r.message)
        })
        .collect()
}

fn published_cids(w: &mut World, who: &str) -> Vec<String> {
    w.client(who)
        .signals
        .iter()
        .filter_map(|s| match s {
            Resp::TrackPublished(t) => Some(t.cid.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_locked_source_is_refused_with_an_answer_naming_the_request() {
    let mut w = World::connected_pair();
    assert!(w.room.set_permission(w.now, "alice", only(&[MIC])));
    w.settle();
    // Everyone, alice included, hears her new permission (the SDKs check it before asking).
    let seen = w
        .last_update("bob", "alice")
        .and_then(|p| p.permission.clone())
        .unwrap();
    assert_eq!(seen.can_publish_sources, [MIC]);
    assert!(w
        .client("alice")
        .updates
        .iter()
        .any(|p| p.identity == "alice"
            && p.permission
                .as_ref()
                .is_some_and(|q| q.can_publish_sources == [MIC])));

    w.publish_source("alice", MediaKind::Video, lk::TrackSource::Camera);
    w.publish_source("alice", MediaKind::Audio, lk::TrackSource::Microphone);
    w.advance(Duration::from_millis(500));
    let refused = refusals(&mut w, "alice");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].0.contains(&format!("-{CAMERA}-")),
        "the refusal echoes the camera's add_track: {refused:?}"
    );
    assert!(refused[0].1.contains("camera"), "{refused:?}");
    let published = published_cids(&mut w, "alice");
    assert_eq!(published.len(), 1);
    assert!(published[0].contains(&format!("-{MIC}-")), "{published:?}");
    // Bob is offered the microphone only.
    let tracks: Vec<i32> = w
        .last_update("bob", "alice")
        .unwrap()
        .tracks
        .iter()
        .map(|t| t.source)
        .collect();
    assert_eq!(tracks, [MIC]);
}

#[test]
fn a_lock_set_live_unpublishes_the_track_and_its_packets_stop() {
    let mut w = World::connected_pair();
    let mid = w.publish_source("alice", MediaKind::Video, lk::TrackSource::Camera);
    w.advance(Duration::from_millis(1500));
    let mut sent = HashMap::new();
    let mut i = 0u32;
    let mut send = |w: &mut World, n: u32, tag: u8| {
        for _ in 0..n {
            let mut payload = w.random_payload(200);
            payload[0] = tag;
            sent.insert(payload.clone(), tag);
            w.send_rtp("alice", mid, 3000 * i, true, payload);
            w.advance(Duration::from_millis(20));
            i += 1;
        }
    };
    send(&mut w, 30, 1);
    let before = w.client("bob").received.len();
    assert!(
        before > 10,
        "bob receives alice's camera before the lock ({before})"
    );

    assert!(w.room.set_permission(w.now, "alice", only(&[MIC])));
    w.advance(Duration::from_millis(100));
    let track_sid = w
        .client("alice")
        .signals
        .iter()
        .find_map(|s| match s {
            Resp::TrackPublished(t) => t.track.as_ref().map(|t| t.sid.clone()),
            _ => None,
        })
        .unwrap();
    for who in ["alice", "bob"] {
        assert!(
            w.client(who)
                .signals
                .iter()
                .any(|s| matches!(s, Resp::TrackUnpublished(u) if u.track_sid == track_sid)),
            "{who} is told the camera track is gone"
        );
    }
    // A client that ignores it and keeps sending: nothing more is forwarded.
    let mark = w.client("bob").received.len();
    send(&mut w, 30, 2);
    w.advance(Duration::from_millis(300));
    let after = w.received_from("bob", &sent, mark);
    assert!(
        after.is_empty(),
        "packets after the lock reached bob: {}",
        after.len()
    );
    // Announcing it again is refused.
    w.publish_source("alice", MediaKind::Video, lk::TrackSource::Camera);
    assert!(!refusals(&mut w, "alice").is_empty());

    // Unlocked: the camera may be published again.
    assert!(w.room.set_permission(w.now, "alice", only(&[])));
    w.settle();
    let n = published_cids(&mut w, "alice").len();
    w.publish_source("alice", MediaKind::Video, lk::TrackSource::ScreenShare);
    assert_eq!(published_cids(&mut w, "alice").len(), n + 1);
}

#[test]
fn nothing_may_be_published_without_can_publish_whatever_the_sources() {
    let mut w = World::connected_pair();
    let perm = PublishPermission {
        can_publish: false,
        can_publish_sources: vec![CAMERA, MIC],
        can_publish_data: true,
        denied_data_topics: Vec::new(),
    };
    assert!(!perm.allows(MIC));
    assert!(w.room.set_permission(w.now, "alice", perm));
    w.settle();
    w.publish_source("alice", MediaKind::Audio, lk::TrackSource::Microphone);
    assert_eq!(refusals(&mut w, "alice").len(), 1);
    assert!(published_cids(&mut w, "alice").is_empty());
    assert!(
        !w.room.set_permission(w.now, "nobody", only(&[])),
        "an unknown identity is not in the room"
    );
}

#[test]
fn data_on_a_locked_topic_is_dropped_and_other_topics_still_flow() {
    let mut w = World::connected_pair();
    w.publish_negotiated("alice", MediaKind::Audio);
    let say = |w: &mut World, topic: &str, text: &str| {
        w.send_data("alice", user_packet(topic, &[], text.as_bytes()));
        w.advance(Duration::from_millis(100));
    };
    say(&mut w, "chat", "before");
    let mut perm = only(&[]);
    perm.denied_data_topics = vec!["chat".into()];
    assert!(w.room.set_permission(w.now, "alice", perm));
    w.settle();
    say(&mut w, "chat", "after the lock");
    say(&mut w, "keycheck", "still allowed");
    assert!(w.room.set_permission(w.now, "alice", only(&[])));
    w.settle();
    say(&mut w, "chat", "after the unlock");
    assert_eq!(
        w.texts("bob"),
        ["before", "still allowed", "after the unlock"]
    );
}

/// The server's metadata for a participant (a raised hand) reaches everyone, as a newer
/// version of that participant's info, so LiveKit's SDKs apply it.
#[test]
fn metadata_set_by_the_server_reaches_everyone_as_a_newer_version() {
    let mut w = World::connected_pair();
    let before = w.last_update("bob", "alice").map_or(0, |p| p.version);
    let meta = r#"{"raised_hand":{"is_raised":true,"raised_at":"1"}}"#;
    assert!(w.room.set_metadata(w.now, "alice", meta.to_owned()));
    assert!(!w.room.set_metadata(w.now, "nobody", meta.to_owned()));
    w.settle();
    for who in ["alice", "bob"] {
        let last = w.last_update(who, "alice").cloned().unwrap();
        assert_eq!(last.metadata, meta, "{who}");
        assert!(
            last.version > before,
            "{who}: version {} after {before}",
            last.version
        );
    }
}

/// A private message reaches only the recipients it names; one that names nobody is dropped
/// (it would reach everyone, and sidestep a lock on the public chat).
#[test]
fn a_private_message_reaches_only_its_recipients_and_one_naming_nobody_is_dropped() {
    let mut w = World::connected_pair();
    w.publish_negotiated("alice", MediaKind::Audio);
    let say = |w: &mut World, to: &[&str], text: &str| {
        w.send_data(
            "alice",
            user_packet(enclave_sfu::PRIVATE_TOPIC, to, text.as_bytes()),
        );
        w.advance(Duration::from_millis(100));
    };
    say(&mut w, &[], "to nobody in particular");
    say(&mut w, &["bob"], "to bob");
    say(&mut w, &["carol"], "to someone who is not here");
    assert_eq!(w.texts("bob"), ["to bob"]);
}

/// Messages on a counted topic are reported (sender and topic, for attendance); others are not,
/// and neither is one the room drops.
#[test]
fn messages_on_counted_topics_are_reported_with_their_sender() {
    let mut w = World::connected_pair();
    w.publish_negotiated("alice", MediaKind::Audio);
    for topic in [common::COUNTED_TOPIC, "other", common::COUNTED_TOPIC] {
        w.send_data("alice", user_packet(topic, &[], b"sealed bytes"));
        w.advance(Duration::from_millis(100));
    }
    let sent: Vec<(String, String)> = w
        .events
        .iter()
        .filter_map(|e| match e {
            Event::DataSent { identity, topic } => Some((identity.clone(), topic.clone())),
            _ => None,
        })
        .collect();
    let one = ("alice".to_owned(), "counted".to_owned());
    assert_eq!(sent, [one.clone(), one]);
}

/// A participant's own metadata and name change only when the runtime says so: the request
/// becomes an event, an accepted answer reaches everyone (the requester too), a refused one
/// comes back to the requester with its id; attributes and oversized requests are refused at
/// once.
#[test]
fn a_participant_asks_to_change_its_metadata_and_the_runtime_decides() {
    let mut w = World::connected_pair();
    w.advance(Duration::from_millis(500));
    let ask = |w: &mut World, id: u32, metadata: &str| {
        w.signal(
            "alice",
            Req::UpdateMetadata(lk::UpdateParticipantMetadata {
                metadata: metadata.into(),
                name: "Alice B".into(),
                request_id: id,
                ..Default::default()
            }),
        );
        w.advance(Duration::from_millis(50));
    };
    ask(&mut w, 7, r#"{"preferred_lang":"de"}"#);
    let asked: Vec<(String, u32, String, String)> = w
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MetadataRequested {
                identity,
                request_id,
                metadata,
                name,
            } => Some((
                identity.clone(),
                *request_id,
                metadata.clone(),
                name.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        [(
            "alice".into(),
            7,
            r#"{"preferred_lang":"de"}"#.into(),
            "Alice B".into()
        )]
    );
    let seen = |w: &mut World, who: &str| {
        w.last_update(who, "alice")
            .map(|p| (p.metadata.clone(), p.name.clone()))
    };
    assert_ne!(
        seen(&mut w, "bob").map(|s| s.1),
        Some("Alice B".into()),
        "nothing changes before the answer"
    );
    let now = w.now;
    assert!(w.room.answer_metadata(
        now,
        "alice",
        7,
        Ok((r#"{"preferred_lang":"de"}"#.into(), "Alice B".into()))
    ));
    w.settle();
    for who in ["bob", "alice"] {
        assert_eq!(
            seen(&mut w, who),
            Some((r#"{"preferred_lang":"de"}"#.into(), "Alice B".into())),
            "{who}"
        );
    }
    ask(&mut w, 8, r#"{"is_admin":true}"#);
    let now = w.now;
    w.room.answer_metadata(
        now,
        "alice",
        8,
        Err("only profile_pic and preferred_lang".into()),
    );
    w.settle();
    let refusals = |w: &mut World| -> Vec<(u32, i32)> {
        w.client("alice")
            .signals
            .iter()
            .filter_map(|s| match s {
                Resp::RequestResponse(r) => Some((r.request_id, r.reason)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        refusals(&mut w),
        [(8, lk::request_response::Reason::NotAllowed as i32)]
    );
    // Attributes and oversized metadata never reach the runtime.
    let before = w.events.len();
    w.signal(
        "alice",
        Req::UpdateMetadata(lk::UpdateParticipantMetadata {
            attributes: [("k".to_owned(), "v".to_owned())].into(),
            request_id: 9,
            ..Default::default()
        }),
    );
    ask(&mut w, 10, &"x".repeat(70 * 1024));
    assert!(!w.events[before..]
        .iter()
        .any(|e| matches!(e, Event::MetadataRequested { .. })));
    let r = refusals(&mut w);
    assert_eq!(
        r[1..],
        [
            (9, lk::request_response::Reason::UnsupportedType as i32),
            (10, lk::request_response::Reason::LimitExceeded as i32)
        ]
    );
}
