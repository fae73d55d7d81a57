//! Session resume after a signalling blip, in virtual time: the WebSocket drops without a
//! leave, media keeps flowing, and the client comes back with `reconnect=1&sid=…` to find the
//! room as it is now, with ICE restarted on both peer connections.

mod common;

use std::time::Duration;

use common::World;
use enclave_sfu::proto::{self as lk, signal_response::Message as Resp};
use enclave_sfu::Event;
use str0m::media::{MediaKind, Mid};

/// Sends `frames` one-packet video frames from `who` at 30 fps; returns how many of their
/// payloads `to` received.
fn stream(w: &mut World, who: &str, mid: Mid, to: &str, first: u32, frames: u32) -> usize {
    let before = w.client(to).received.len();
    let frame = Duration::from_micros(33_333);
    let sent = w.send_frames(who, mid, first..first + frames, 900, frame);
    w.advance(Duration::from_millis(200));
    w.client(to).received[before..]
        .iter()
        .filter(|r| sent.contains(&r.payload))
        .count()
}

fn signals_since(w: &mut World, who: &str, from: usize) -> Vec<Resp> {
    w.client(who).signals[from..].to_vec()
}

fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
}

fn left(w: &World, who: &str) -> bool {
    w.events
        .iter()
        .any(|e| matches!(e, Event::ParticipantLeft { identity, .. } if identity == who))
}

#[test]
fn media_keeps_flowing_while_the_signalling_is_down_and_the_resume_restarts_ice() {
    let mut w = World::connected_pair();
    let mid = w.publish_negotiated("alice", MediaKind::Video);
    assert!(stream(&mut w, "alice", mid, "bob", 0, 30) >= 28);
    let first_ufrag = w
        .client("bob")
        .signals
        .iter()
        .find_map(|s| match s {
            Resp::Offer(o) => ice_ufrag(&o.sdp),
            _ => None,
        })
        .unwrap();

    w.drop_signal("bob");
    let from = w.client("bob").signals.len();
    assert!(
        stream(&mut w, "alice", mid, "bob", 30, 60) >= 58,
        "bob's media does not depend on his WebSocket"
    );
    assert!(
        signals_since(&mut w, "bob", from).is_empty(),
        "nothing is sent to a participant without signalling"
    );

    assert!(w.resume("bob"));
    let after = signals_since(&mut w, "bob", from);
    assert!(
        matches!(after.first(), Some(Resp::Reconnect(_))),
        "the reconnect response comes first: {:?}",
        after.first()
    );
    let offer = after
        .iter()
        .find_map(|s| match s {
            Resp::Offer(o) => Some(o.clone()),
            _ => None,
        })
        .expect("a subscriber offer restarting ICE");
    let ufrag = ice_ufrag(&offer.sdp).unwrap();
    assert_ne!(
        ufrag, first_ufrag,
        "the subscriber offer carries new ICE credentials"
    );

    w.restart_publisher_ice("alice");
    w.advance(Duration::from_millis(1500));
    assert!(
        stream(&mut w, "alice", mid, "bob", 90, 60) >= 58,
        "media flows over the restarted connections"
    );
    assert!(!left(&w, "bob"));
    assert_eq!(w.room.len(), 2);
}

#[test]
fn a_resuming_client_learns_who_came_and_went_while_it_was_away() {
    let mut w = World::connected_pair();
    w.join("carol");
    w.advance(Duration::from_millis(1500));
    w.drop_signal("bob");
    let from = w.client("bob").signals.len();
    w.join("dave");
    let mid = w.publish_negotiated("dave", MediaKind::Audio);
    w.signal(
        "carol",
        lk::signal_request::Message::Leave(lk::LeaveRequest {
            reason: lk::DisconnectReason::ClientInitiated as i32,
            ..Default::default()
        }),
    );
    w.advance(Duration::from_millis(500));
    assert!(w.resume("bob"));
    w.advance(Duration::from_millis(1500));
    let after = signals_since(&mut w, "bob", from);
    let update = after
        .iter()
        .find_map(|s| match s {
            Resp::Update(u) => Some(u.participants.clone()),
            _ => None,
        })
        .expect("a participant update after the reconnect response");
    let dave = update.iter().find(|p| p.identity == "dave").expect("dave");
    assert_eq!(dave.tracks.len(), 1, "with the track he published");
    let carol = update
        .iter()
        .find(|p| p.identity == "carol")
        .expect("carol");
    assert_eq!(
        carol.state,
        lk::participant_info::State::Disconnected as i32,
        "carol left while bob was away"
    );
    assert!(!w.known_participants("bob").contains("carol"));
    // Dave's track reaches bob through the offer the resume sent.
    let before = w.client("bob").received.len();
    for n in 0..20 {
        let p = w.random_payload(80);
        w.send_rtp("dave", mid, 960 * n, false, p);
        w.advance(Duration::from_millis(20));
    }
    assert!(w.client("bob").received.len() - before >= 18);
}

#[test]
fn a_participant_who_does_not_resume_is_removed_after_the_grace_period() {
    let mut w = World::connected_pair();
    w.drop_signal("bob");
    w.advance(Duration::from_secs(14));
    assert!(!left(&w, "bob"), "still within the grace period");
    assert!(w.known_participants("alice").contains("bob"));
    w.advance(Duration::from_secs(2));
    assert!(w.events.iter().any(|e| matches!(e,
        Event::ParticipantLeft { identity, reason, .. }
            if identity == "bob" && *reason == lk::DisconnectReason::SignalClose as i32)));
    assert!(!w.known_participants("alice").contains("bob"));
    assert!(
        !w.resume("bob"),
        "too late to resume: the client must join again"
    );
}

#[test]
fn a_resume_must_name_the_participant_it_continues() {
    let mut w = World::connected_pair();
    w.drop_signal("bob");
    let now = w.now;
    assert!(w.room.resume(now, "PA_alice", "bob").is_none());
    assert!(w.room.resume(now, "PA_bob", "alice").is_none());
    assert!(w.room.resume(now, "PA_nobody", "nobody").is_none());
    assert!(w.resume("bob"));
}

#[test]
fn a_subscriber_offer_lost_with_the_connection_is_sent_again_on_resume() {
    let mut w = World::connected_pair();
    w.drop_signal("bob");
    // Alice publishes while bob is away: the offer for her track goes nowhere.
    let mid = w.publish_negotiated("alice", MediaKind::Video);
    assert!(w.resume("bob"));
    w.advance(Duration::from_millis(1500));
    assert!(
        stream(&mut w, "alice", mid, "bob", 0, 30) >= 28,
        "bob subscribes to the track published while he was away"
    );
}
