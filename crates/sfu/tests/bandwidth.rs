//! Layer choice from the subscriber's downlink estimate (TWCC): a subscriber behind a narrow
//! link gets a lower simulcast layer instead of a stalled top one, and the top one again once
//! the link widens. Virtual time, str0m clients,
//! random payloads; the narrow link is a rate-limited queue in the test network.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::World;

/// Per-layer packet count and size of one frame at 30 fps: about 150 kbit/s, 480 kbit/s and
/// 1.5 Mbit/s on the wire.
const LAYERS: [(&str, usize, usize); 3] = [("q", 1, 560), ("h", 2, 930), ("f", 5, 1180)];

/// Sends `frames` frames on every layer at 30 fps, remembering which payload went on which
/// layer.
fn stream(
    w: &mut World,
    mid: str0m::media::Mid,
    n: &mut u32,
    frames: u32,
    sent: &mut HashMap<Vec<u8>, &'static str>,
) {
    for _ in 0..frames {
        for (rid, packets, size) in LAYERS {
            for k in 0..packets {
                let p = w.random_payload(size);
                sent.insert(p.clone(), rid);
                w.send_rtp_layer("alice", mid, rid, 3000 * *n, k + 1 == packets, p, None);
            }
        }
        *n += 1;
        w.advance(Duration::from_micros(33_333));
    }
}

/// [`stream`]s `frames` frames and returns the layer of each packet bob got meanwhile.
fn measure(
    w: &mut World,
    mid: str0m::media::Mid,
    n: &mut u32,
    frames: u32,
    sent: &mut HashMap<Vec<u8>, &'static str>,
) -> Vec<&'static str> {
    let from = w.client("bob").received.len();
    stream(w, mid, n, frames, sent);
    w.received_from("bob", sent, from)
}

/// How many packets came on each layer.
fn counts<'a>(layers: &[&'a str]) -> HashMap<&'a str, usize> {
    layers.iter().fold(HashMap::new(), |mut m, l| {
        *m.entry(*l).or_insert(0) += 1;
        m
    })
}

fn share(layers: &[&str], rid: &str) -> f64 {
    layers.iter().filter(|l| **l == rid).count() as f64 / layers.len().max(1) as f64
}

#[test]
fn a_subscriber_behind_a_narrow_link_gets_a_lower_layer_and_the_top_one_again_when_it_widens() {
    let (mut w, mid) = World::simulcast_pair();
    let mut sent = HashMap::new();
    let mut n = 0;

    // A wide link: the top layer.
    stream(&mut w, mid, &mut n, 150, &mut sent);
    let wide = measure(&mut w, mid, &mut n, 60, &mut sent);
    assert!(
        share(&wide, "f") > 0.9,
        "on a wide link bob gets f: {:?}",
        counts(&wide)
    );

    // The link narrows to 1 Mbit/s: f (1.5 Mbit/s) no longer fits, h does.
    w.client("bob").downlink_bps = Some(1_000_000);
    stream(&mut w, mid, &mut n, 300, &mut sent);
    let drops_when_narrowed = w.client("bob").link_drops;
    let narrow = measure(&mut w, mid, &mut n, 90, &mut sent);
    assert!(
        share(&narrow, "f") < 0.05 && share(&narrow, "h") > 0.8,
        "behind 1 Mbit/s bob gets h, not f: {:?}",
        counts(&narrow)
    );
    assert!(
        w.client("bob").link_drops - drops_when_narrowed < 20,
        "once moved down, the link stops overflowing: {} drops in 3 s",
        w.client("bob").link_drops - drops_when_narrowed
    );

    // The link widens again: str0m's probes find the room and bob is back on f.
    w.client("bob").downlink_bps = None;
    stream(&mut w, mid, &mut n, 450, &mut sent);
    let wide_again = measure(&mut w, mid, &mut n, 90, &mut sent);
    assert!(
        share(&wide_again, "f") > 0.9,
        "15 s after the link widened bob is back on f: {:?}",
        counts(&wide_again)
    );
}

/// A track without simulcast layers cannot be made smaller, so the room does not pace it: behind
/// a link narrower than the track, its packets go out at once and the network's queue decides,
/// instead of waiting in the room's pacer (which holds up to 2 s at 1.1 × the estimate).
#[test]
fn a_single_layer_track_is_not_queued_in_the_room_behind_a_narrow_link() {
    let mut w = World::connected_pair();
    let mid = w.publish_negotiated("alice", str0m::media::MediaKind::Video);
    let mut sent = HashMap::new();
    // About 1.5 Mbit/s: five 1180-byte packets per frame at 30 fps.
    let mut frames = |w: &mut World, from: u32, count: u32| {
        for n in from..from + count {
            for k in 0..5 {
                let p = w.random_payload(1180);
                sent.insert(p.clone(), w.now);
                w.send_rtp("alice", mid, 3000 * n, k == 4, p);
            }
            w.advance(Duration::from_micros(33_333));
        }
    };
    frames(&mut w, 0, 90);
    w.client("bob").downlink_bps = Some(1_000_000);
    frames(&mut w, 90, 150);
    let from = w.client("bob").received.len();
    frames(&mut w, 240, 150);
    let mut delays: Vec<Duration> = w.client("bob").received[from..]
        .iter()
        .filter_map(|r| {
            sent.get(&r.payload)
                .map(|t| r.at.saturating_duration_since(*t))
        })
        .collect();
    delays.sort();
    assert!(
        delays.len() > 100,
        "bob still gets most of what fits: {}",
        delays.len()
    );
    // What the link dropped comes back later as a retransmission (NACK), so the tail is long;
    // what arrived first time waited at most the link's 300 ms queue.
    let q = |f: f64| delays[((delays.len() - 1) as f64 * f) as usize];
    assert!(
        q(0.75) < Duration::from_millis(350),
        "three quarters of the packets wait no longer than the link's own queue: p50 {:?}, p75 {:?}, p90 {:?}",
        q(0.5),
        q(0.75),
        q(0.9)
    );
}
