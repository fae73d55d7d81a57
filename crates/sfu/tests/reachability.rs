//! Reachability in virtual time: every address and transport the runtime gives the room is
//! offered to clients as an ICE candidate, and a participant whose media connection never
//! comes up is removed instead of staying as a ghost.

mod common;

use std::time::Duration;

use common::World;
use enclave_sfu::proto::{self as lk, signal_response::Message as Resp};
use enclave_sfu::{Event, LocalCandidate, Transport};

fn candidate_lines(w: &mut World, who: &str) -> Vec<String> {
    let offer = w
        .client(who)
        .signals
        .iter()
        .find_map(|s| match s {
            Resp::Offer(o) => Some(o.sdp.clone()),
            _ => None,
        })
        .expect("a subscriber offer");
    offer
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_address_is_offered_over_udp_and_tcp_with_udp_preferred() {
    let c = |transport, addr: &str| LocalCandidate {
        transport,
        addr: addr.parse().unwrap(),
    };
    let mut w = World::with_config(
        false,
        vec![
            c(Transport::Udp, "10.0.0.1:7882"),
            c(Transport::Udp, "192.168.7.1:7882"),
            c(Transport::Tcp, "10.0.0.1:7881"),
        ],
    );
    w.join("alice");
    let lines = candidate_lines(&mut w, "alice");
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no candidate with '{needle}' in {lines:#?}"))
            .clone()
    };
    let udp_a = find("10.0.0.1 7882 typ host");
    find("192.168.7.1 7882 typ host");
    let tcp = find("10.0.0.1 7881 typ host");
    assert!(
        tcp.contains(" tcp ") && tcp.contains("tcptype passive"),
        "{tcp}"
    );
    assert!(udp_a.contains(" udp "), "{udp_a}");
    let prio = |l: &str| l.split(' ').nth(3).unwrap().parse::<u32>().unwrap();
    assert!(
        prio(&udp_a) > prio(&tcp),
        "UDP must be preferred: {udp_a} / {tcp}"
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
}

#[test]
fn a_participant_whose_ice_never_connects_is_removed_within_the_connect_grace() {
    let mut w = World::new();
    w.join("alice");
    w.advance(Duration::from_millis(1500));
    assert!(w.client("alice").sub_connected);
    // Bob's checks never reach the room (a firewall): only his signalling works.
    w.join("bob");
    w.client("bob").cut = true;
    w.advance(Duration::from_secs(14));
    assert!(!w.client("bob").sub_connected);
    let gone = |w: &World, who: &str| {
        w.events.iter().any(|e| {
            matches!(e, Event::ParticipantLeft { identity, reason, .. }
                if identity == who && *reason == lk::DisconnectReason::ConnectionTimeout as i32)
        })
    };
    assert!(!gone(&w, "bob"), "removed before the grace period was over");
    w.advance(Duration::from_secs(2));
    assert!(
        gone(&w, "bob"),
        "still in the room 16 s after joining: {:?}",
        w.events
    );
    assert!(!gone(&w, "alice"));
    assert!(w
        .client("bob")
        .signals
        .iter()
        .any(|s| matches!(s, Resp::Leave(_))));
}
