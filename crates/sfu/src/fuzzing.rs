//! Harnesses for the fuzz targets in `fuzz/`: arbitrary bytes as a signalling frame and as a
//! datagram, into a room with two joined participants. Unit tests run them over seeds.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prost::Message as _;

use crate::{ConnId, JoinParams, Room, RoomConfig};

struct Fixture {
    room: Room,
    now: Instant,
}

thread_local! {
    // Creating peer connections costs a DTLS certificate each; build the room once per thread.
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fn with_room(f: impl FnOnce(&mut Room, Instant)) {
    FIXTURE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fx = slot.get_or_insert_with(|| {
            // The harness's starting point; the room itself never reads a clock.
            #[allow(clippy::disallowed_methods)]
            let now = Instant::now();
            let mut room = Room::new(RoomConfig {
                name: "fuzz".into(),
                candidates: vec![crate::LocalCandidate {
                    transport: crate::Transport::Udp,
                    addr: SocketAddr::from(([10, 0, 0, 1], 7882)),
                }],
                seed: 1,
                empty_timeout: 300,
                max_participants: 0,
                require_encryption: false,
                bandwidth_estimation: true,
                created_unix_ms: 0,
                counted_topics: Vec::new(),
                created: now,
            });
            for (i, who) in ["a", "b"].iter().enumerate() {
                room.join(
                    now,
                    ConnId(i as u64 + 1),
                    JoinParams {
                        // Lets the harness reach the metadata requests too.
                        can_update_metadata: true,
                        ..JoinParams::new(format!("PA_{who}"), *who)
                    },
                );
            }
            Fixture { room, now }
        });
        fx.now += Duration::from_millis(1);
        let now = fx.now;
        f(&mut fx.room, now);
        while fx.room.poll_output().is_some() {}
        // A participant the input made the room drop is joined again, so later inputs still
        // reach a live session.
        if fx.room.len() < 2 {
            *slot = None;
        }
    });
}

/// Arbitrary bytes as a `SignalRequest` frame from participant 1.
pub fn signal_frame(data: &[u8]) {
    let Ok(req) = crate::proto::SignalRequest::decode(data) else {
        return;
    };
    with_room(|room, now| room.signal(now, ConnId(1), req));
}

/// Arbitrary bytes as a UDP datagram from a peer address.
pub fn datagram(data: &[u8]) {
    with_room(|room, now| {
        let _ = room.receive(
            now,
            crate::Transport::Udp,
            SocketAddr::from(([10, 0, 1, 1], 40000)),
            SocketAddr::from(([10, 0, 0, 1], 7882)),
            data,
        );
        room.handle_timeout(now);
    });
}

/// Arbitrary bytes as a Dependency Descriptor header extension, through the serializer str0m
/// calls for it. Checks what the room relies on: a parse never panics, it succeeds exactly for
/// three bytes or more and keeps them as they were, and only a start-of-frame packet with the
/// template-structure flag counts as the start of a keyframe.
pub fn dependency_descriptor(data: &[u8]) {
    use str0m::rtp::{ExtensionSerializer as _, ExtensionValues};
    let mut ev = ExtensionValues::default();
    let parsed = crate::dd::Serializer.parse_value(data, &mut ev);
    assert_eq!(parsed, data.len() >= 3);
    let got = ev.user_values.get::<crate::dd::Descriptor>();
    assert_eq!(got.map(|d| d.bytes()), parsed.then_some(data));
    if let Some(d) = got {
        assert!(!d.starts_keyframe() || (data[0] & 0x80 != 0 && data[3] & 0x80 != 0));
    }
}

/// Arbitrary bytes as a data packet a participant sent: decoded, judged by what participants
/// may send, and (if allowed) re-encoded as the room relays it.
pub fn data_packet(data: &[u8]) {
    let Ok(mut packet) = crate::proto::DataPacket::decode(data) else {
        return;
    };
    if crate::data::participant_may_send(&packet).is_ok() {
        packet.participant_identity = "a".into();
        let again = crate::proto::DataPacket::decode(packet.encode_to_vec().as_slice())
            .expect("a relayed packet decodes");
        assert_eq!(again.participant_identity, "a");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{self as lk, signal_request::Message as Req};

    fn frame(m: Req) -> Vec<u8> {
        lk::SignalRequest { message: Some(m) }.encode_to_vec()
    }

    #[test]
    fn harnesses_survive_seeds_and_noise() {
        let seeds = vec![
            vec![],
            vec![0xff; 64],
            frame(Req::Ping(1)),
            frame(Req::Offer(lk::SessionDescription {
                sdp: "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n".into(),
                id: 3,
                ..Default::default()
            })),
            frame(Req::AddTrack(lk::AddTrackRequest {
                cid: "c".into(),
                r#type: 1,
                ..Default::default()
            })),
            frame(Req::Trickle(lk::TrickleRequest {
                candidate_init: r#"{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host"}"#.into(),
                ..Default::default()
            })),
            frame(Req::TrackSetting(lk::UpdateTrackSettings {
                track_sids: vec!["x".into()],
                width: u32::MAX,
                ..Default::default()
            })),
            frame(Req::Leave(lk::LeaveRequest::default())),
        ];
        for s in &seeds {
            signal_frame(s);
            datagram(s);
            dependency_descriptor(s);
            data_packet(s);
            for i in 0..s.len().min(64) {
                signal_frame(&s[..i]);
                let mut c = s.clone();
                c[i] ^= 0x5a;
                signal_frame(&c);
                datagram(&c);
                data_packet(&c);
            }
        }
        // STUN-looking, DTLS-looking and RTP-looking datagrams.
        for first in [0x00u8, 0x01, 0x16, 0x17, 0x80, 0x90, 0xbf] {
            let mut d = vec![first; 40];
            d[1] = 0x01;
            datagram(&d);
        }
    }
}
