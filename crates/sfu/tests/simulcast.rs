//! Simulcast: the room sends each subscriber one layer, the best that is flowing and not above
//! what the subscriber asked for, and switches at a frame boundary with continuous sequence
//! numbers. Payloads are random; the layer of each packet is known only from its rid.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::World;
use enclave_sfu::proto::{self as lk, signal_request::Message as Req};

/// Sends one frame (one packet, marker set) on each listed layer and remembers which payload
/// went on which layer.
fn frame(
    w: &mut World,
    mid: str0m::media::Mid,
    layers: &[&'static str],
    n: u32,
    sent: &mut HashMap<Vec<u8>, &'static str>,
) {
    for rid in layers {
        let p = w.random_payload(200);
        sent.insert(p.clone(), rid);
        w.send_rtp_layer("alice", mid, rid, 3000 * n, true, p, None);
    }
    w.settle();
    w.advance(Duration::from_millis(33));
}

#[test]
fn publisher_dropping_its_top_layer_moves_subscribers_down_without_a_gap() {
    let (mut w, mid) = World::simulcast_pair();
    let mut sent = HashMap::new();
    let mut n = 0;
    for _ in 0..60 {
        frame(&mut w, mid, &["q", "h", "f"], n, &mut sent);
        n += 1;
    }
    let from = w.client("bob").received.len().saturating_sub(10);
    let tail = w.received_from("bob", &sent, from);
    assert!(
        !tail.is_empty() && tail.iter().all(|l| *l == "f"),
        "bob gets the top layer by default: {tail:?}"
    );
    assert!(w
        .received_from("bob", &sent, 0)
        .iter()
        .all(|l| ["q", "h", "f"].contains(l)));

    // f stops (the encoder or the uplink dropped it).
    let mark = w.client("bob").received.len();
    for _ in 0..90 {
        frame(&mut w, mid, &["q", "h"], n, &mut sent);
        n += 1;
    }
    let after = w.received_from("bob", &sent, mark);
    assert!(
        after.len() > 30,
        "bob keeps receiving ({} packets)",
        after.len()
    );
    assert!(
        after[after.len() - 10..].iter().all(|l| *l == "h"),
        "bob moves to h: {after:?}"
    );
    let seqs: Vec<u64> = w.client("bob").received.iter().map(|r| r.seq).collect();
    if std::env::var("DEBUG_SIM").is_ok() {
        let dbg: Vec<(u64, &str)> = w
            .client("bob")
            .received
            .iter()
            .map(|r| (r.seq, sent.get(&r.payload).copied().unwrap_or("?")))
            .take(40)
            .collect();
        eprintln!("{dbg:?}");
    }
    for pair in seqs.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "no gap and no overlap across the switch"
        );
    }
    let times: Vec<u32> = w.client("bob").received.iter().map(|r| r.time).collect();
    // The timeline moves forward only, and across the switch by about the wall time that passed
    // while nothing was sent (f went silent, then the room noticed and switched): under 2 s.
    for pair in times.windows(2) {
        let step = pair[1].wrapping_sub(pair[0]);
        assert!(
            step > 0 && step < 2 * 90_000,
            "the timeline stays monotonic: {pair:?}"
        );
    }
}

#[test]
fn subscriber_asking_for_low_quality_gets_the_lowest_layer() {
    let (mut w, mid) = World::simulcast_pair();
    let mut sent = HashMap::new();
    for n in 0..30 {
        frame(&mut w, mid, &["q", "h", "f"], n, &mut sent);
    }
    let track = w.track_of("bob", "alice");
    w.signal(
        "bob",
        Req::TrackSetting(lk::UpdateTrackSettings {
            track_sids: vec![track.sid.clone()],
            quality: lk::VideoQuality::Low as i32,
            ..Default::default()
        }),
    );
    let mark = w.client("bob").received.len();
    for n in 30..90 {
        frame(&mut w, mid, &["q", "h", "f"], n, &mut sent);
    }
    let after = w.received_from("bob", &sent, mark);
    assert!(
        after[after.len() - 10..].iter().all(|l| *l == "q"),
        "{after:?}"
    );

    // Pausing the track stops it entirely.
    w.signal(
        "bob",
        Req::TrackSetting(lk::UpdateTrackSettings {
            track_sids: vec![track.sid],
            disabled: true,
            ..Default::default()
        }),
    );
    let mark = w.client("bob").received.len();
    for n in 90..100 {
        frame(&mut w, mid, &["q", "h", "f"], n, &mut sent);
    }
    assert_eq!(
        w.client("bob").received.len(),
        mark,
        "a disabled track is not forwarded"
    );
}

/// Layer, frame number, keyframe, first packet of its frame.
type Sent = HashMap<Vec<u8>, (&'static str, u32, bool, bool)>;

/// Sends `count` frames of two packets on q, h and f with Dependency Descriptors; every layer
/// has a keyframe every `KEY_EVERY` frames (its publisher's keyframe interval), at different
/// frames per layer as independent encoders would.
fn dd_frames(w: &mut World, mid: str0m::media::Mid, n: &mut u32, count: u32, sent: &mut Sent) {
    const KEY_EVERY: u32 = 25;
    for _ in 0..count {
        for (i, rid) in ["q", "h", "f"].into_iter().enumerate() {
            let key = (*n + 7 * i as u32) % KEY_EVERY == 0;
            for k in 0..2 {
                let p = w.random_payload(300);
                sent.insert(p.clone(), (rid, *n, key, k == 0));
                let dd = common::TestDd {
                    start_of_frame: k == 0,
                    end_of_frame: k == 1,
                    frame_number: *n as u16,
                    keyframe: key,
                };
                w.send_rtp_layer("alice", mid, rid, 3000 * *n, k == 1, p, Some(dd));
            }
        }
        *n += 1;
        w.advance(Duration::from_millis(33));
    }
}

/// With Dependency Descriptors (Chromium sends them once negotiated), a switch waits for the
/// first packet of a keyframe on the new layer: switching onto a delta frame hands the
/// subscriber frames that reference pictures it never had.
#[test]
fn with_dependency_descriptors_a_layer_switch_waits_for_a_keyframe() {
    let (mut w, mid) = World::simulcast_pair();
    let mut sent = Sent::new();
    let mut n = 0u32;
    dd_frames(&mut w, mid, &mut n, 60, &mut sent);
    let from = w.client("bob").received.len().saturating_sub(6);
    let tail = w.received_from("bob", &sent, from);
    assert!(
        !tail.is_empty() && tail.iter().all(|(l, ..)| *l == "f"),
        "bob starts on f: {tail:?}"
    );

    // Bob asks for low quality: q must wait for the next q keyframe.
    let track_sid = w
        .client("bob")
        .updates
        .iter()
        .flat_map(|p| p.tracks.iter())
        .find(|t| t.r#type == lk::TrackType::Video as i32)
        .unwrap()
        .sid
        .clone();
    let mark = w.client("bob").received.len();
    w.signal(
        "bob",
        Req::TrackSetting(lk::UpdateTrackSettings {
            track_sids: vec![track_sid],
            quality: lk::VideoQuality::Low as i32,
            ..Default::default()
        }),
    );
    let asked_at = n;
    dd_frames(&mut w, mid, &mut n, 60, &mut sent);
    let after = w.received_from("bob", &sent, mark);
    let first_q = after
        .iter()
        .position(|(l, ..)| *l == "q")
        .expect("bob moves to q");
    let (_, frame, key, start) = after[first_q];
    assert!(
        key && start,
        "the first q packet bob gets starts a q keyframe: frame {frame}, keyframe {key}, start {start}"
    );
    assert!(
        frame > asked_at + 1,
        "the q keyframe came some frames after the request (frame {frame}, asked at {asked_at}): the test does wait"
    );
    assert!(
        first_q > 0 && after[..first_q].iter().all(|(l, ..)| *l == "f"),
        "until then bob stays on f (no gap, no delta frame of q)"
    );
    assert!(after[first_q..].iter().all(|(l, ..)| *l == "q"));
    // The descriptor goes on to bob unchanged (an AV1 SVC stream cannot be decoded without
    // it): the first q packet carries q's keyframe descriptor, template structure flag set.
    let first_q_dd = w.client("bob").received[mark..]
        .iter()
        .find(|r| sent.get(&r.payload).is_some_and(|s| s.0 == "q"))
        .and_then(|r| r.dd.clone())
        .expect("the forwarded packet carries the descriptor");
    assert_eq!(first_q_dd[0] & 0x80, 0x80, "start of frame");
    assert_eq!(first_q_dd[3] & 0x80, 0x80, "template structure present");
    assert_eq!(
        u16::from_be_bytes([first_q_dd[1], first_q_dd[2]]),
        frame as u16
    );
    // Sequence numbers stay contiguous across the switch.
    let seqs: Vec<u64> = w.client("bob").received[mark..]
        .iter()
        .map(|r| r.seq)
        .collect();
    assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "{seqs:?}");
}
