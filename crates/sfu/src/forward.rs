//! Per-subscriber forwarding state of one track: which simulcast layer goes out, and how its
//! sequence numbers and timestamps are rewritten so that the subscriber sees one continuous
//! stream across layer switches.
//!
//! Every decision here comes from RTP header fields (rid, sequence number, timestamp, marker)
//! and arrival time, plus the Dependency Descriptor header extension when the publisher sends
//! it. The payload is never read, so encrypted payloads forward exactly like clear ones.
//!
//! A layer switch happens at the first packet of a keyframe of the target layer when the
//! publisher sends Dependency Descriptors (Chromium does once it is negotiated): a subscriber
//! switched onto a delta frame gets frames that reference pictures it never had, which
//! Chromium's VP8 decoder rejects as corrupted and then waits up to 3 s before asking for a
//! keyframe. Without descriptors the switch happens at a frame boundary of the target layer
//! (the packet after one with the marker bit) and the room asks that layer for a keyframe at
//! once.

use std::time::Instant;

use str0m::media::Rid;

/// First outgoing sequence number. It must stay below 65536 so that the subscriber's SRTP
/// rollover counter starts at 0 (see str0m's `RtpWrite`).
const FIRST_SEQ: u64 = 1000;

/// What to do with one incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Drop,
    Forward { seq: u64, time: u32 },
}

#[derive(Debug)]
pub(crate) struct Forwarder {
    /// The layer the subscriber should get; `None` for a track without simulcast.
    target: Option<Rid>,
    /// The layer being sent.
    current: Option<Rid>,
    started: bool,
    paused: bool,
    /// out = in + seq_offset (wrapping on u64).
    seq_offset: u64,
    /// out = in + ts_offset (wrapping on u32).
    ts_offset: u32,
    last_out_seq: u64,
    /// Packets mapping below this were sent by an earlier layer: drop them.
    min_out_seq: u64,
    last_out_ts: u32,
    last_out_at: Option<Instant>,
    clock_rate: u32,
    /// The last packet seen on the target layer ended a frame.
    target_at_boundary: bool,
    switches: u32,
}

impl Forwarder {
    pub(crate) fn new(target: Option<Rid>, clock_rate: u32) -> Self {
        Self {
            target,
            current: None,
            started: false,
            paused: false,
            seq_offset: 0,
            ts_offset: 0,
            last_out_seq: 0,
            min_out_seq: 0,
            last_out_ts: 0,
            last_out_at: None,
            clock_rate: clock_rate.max(1),
            target_at_boundary: false,
            switches: 0,
        }
    }

    pub(crate) fn set_target(&mut self, rid: Option<Rid>) {
        if self.target != rid {
            self.target = rid;
            self.target_at_boundary = false;
        }
    }

    pub(crate) fn target(&self) -> Option<Rid> {
        self.target
    }

    pub(crate) fn current(&self) -> Option<Rid> {
        self.current
    }

    pub(crate) fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Whether a switch to the target layer is still to happen.
    pub(crate) fn switch_pending(&self) -> bool {
        self.target.is_some() && self.target != self.current
    }

    #[cfg(test)]
    pub(crate) fn switches(&self) -> u32 {
        self.switches
    }

    pub(crate) fn on_packet(
        &mut self,
        rid: Option<Rid>,
        seq: u64,
        time: u32,
        marker: bool,
        keyframe: Option<bool>,
        now: Instant,
    ) -> Decision {
        let on_target = rid == self.target;
        // Where the target layer can be joined: the start of a keyframe if the publisher says
        // where those are, else any frame boundary.
        let joinable = on_target && keyframe.unwrap_or(self.target_at_boundary);
        let decision = self.decide(rid, on_target, joinable, seq, time, now);
        if on_target {
            self.target_at_boundary = marker;
        }
        if let Decision::Forward { seq, time } = decision {
            if seq > self.last_out_seq || !self.started {
                self.last_out_seq = seq;
                self.last_out_ts = time;
                self.last_out_at = Some(now);
            }
            self.started = true;
        }
        decision
    }

    fn decide(
        &mut self,
        rid: Option<Rid>,
        on_target: bool,
        joinable: bool,
        seq: u64,
        time: u32,
        now: Instant,
    ) -> Decision {
        if self.paused {
            return Decision::Drop;
        }
        if !self.started {
            if !on_target {
                return Decision::Drop;
            }
            self.current = rid;
            self.seq_offset = FIRST_SEQ.wrapping_sub(seq);
            self.ts_offset = 0;
            self.min_out_seq = FIRST_SEQ;
            return self.map(seq, time);
        }
        if rid == self.current {
            return self.map(seq, time);
        }
        if joinable {
            // Switch: continue the outgoing sequence right after the last packet sent, and
            // the timeline by the wall time elapsed since then.
            let next = self.last_out_seq + 1;
            self.seq_offset = next.wrapping_sub(seq);
            self.min_out_seq = next;
            let elapsed = self
                .last_out_at
                .map(|t| now.saturating_duration_since(t))
                .unwrap_or_default();
            let ticks =
                ((elapsed.as_micros() as u64 * u64::from(self.clock_rate)) / 1_000_000).max(1);
            let expected = self.last_out_ts.wrapping_add(ticks as u32);
            self.ts_offset = expected.wrapping_sub(time);
            self.current = rid;
            self.switches += 1;
            return self.map(seq, time);
        }
        Decision::Drop
    }

    fn map(&self, seq: u64, time: u32) -> Decision {
        let out = seq.wrapping_add(self.seq_offset);
        if out < self.min_out_seq || out > (1 << 47) {
            return Decision::Drop;
        }
        Decision::Forward {
            seq: out,
            time: time.wrapping_add(self.ts_offset),
        }
    }
}

#[cfg(test)]
// A real instant is only a starting point: every later time is derived from it.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rid(s: &str) -> Option<Rid> {
        Some(Rid::from(s))
    }

    #[test]
    fn plain_track_starts_at_1000_and_keeps_gaps_and_order() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(None, 48_000);
        assert_eq!(
            f.on_packet(None, 70_000, 500, false, None, t0),
            Decision::Forward {
                seq: 1000,
                time: 500
            }
        );
        assert_eq!(
            f.on_packet(None, 70_002, 1460, false, None, t0),
            Decision::Forward {
                seq: 1002,
                time: 1460
            }
        );
        assert_eq!(
            f.on_packet(None, 70_001, 980, false, None, t0),
            Decision::Forward {
                seq: 1001,
                time: 980
            },
            "late packets keep their place"
        );
        assert_eq!(
            f.on_packet(None, 69_990, 0, false, None, t0),
            Decision::Drop,
            "nothing before the start"
        );
    }

    #[test]
    fn only_the_target_layer_is_forwarded() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(rid("q"), 90_000);
        assert_eq!(f.on_packet(rid("h"), 5, 0, false, None, t0), Decision::Drop);
        assert!(matches!(
            f.on_packet(rid("q"), 9, 0, true, None, t0),
            Decision::Forward { seq: 1000, .. }
        ));
        assert_eq!(f.on_packet(rid("f"), 10, 0, true, None, t0), Decision::Drop);
    }

    #[test]
    fn switch_waits_for_a_frame_boundary_and_continues_both_timelines() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(rid("q"), 90_000);
        for i in 0..10u64 {
            f.on_packet(
                rid("q"),
                100 + i,
                3000 * i as u32,
                true,
                None,
                t0 + Duration::from_millis(33 * i),
            );
        }
        assert_eq!(f.last_out_seq, 1009);
        f.set_target(rid("f"));
        let t1 = t0 + Duration::from_millis(330);
        // Mid-frame packet of f: no switch yet; q goes on.
        assert_eq!(
            f.on_packet(rid("f"), 7000, 900_000, false, None, t1),
            Decision::Drop
        );
        assert!(matches!(
            f.on_packet(rid("q"), 110, 30_000, true, None, t1),
            Decision::Forward { seq: 1010, .. }
        ));
        // End of an f frame, then the first packet of the next frame switches.
        assert_eq!(
            f.on_packet(rid("f"), 7001, 900_000, true, None, t1),
            Decision::Drop
        );
        let t2 = t1 + Duration::from_millis(10);
        match f.on_packet(rid("f"), 7002, 903_000, false, None, t2) {
            Decision::Forward { seq, time } => {
                assert_eq!(seq, 1011, "sequence continues");
                assert_eq!(time, 30_000 + 900, "timeline advances by the 10 ms elapsed");
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(f.current(), rid("f"));
        assert_eq!(f.switches(), 1);
        assert_eq!(
            f.on_packet(rid("q"), 111, 33_000, true, None, t2),
            Decision::Drop,
            "the old layer stops"
        );
        assert!(matches!(
            f.on_packet(rid("f"), 7003, 903_000, true, None, t2),
            Decision::Forward {
                seq: 1012,
                time: 30_900
            }
        ));
    }

    #[test]
    fn with_dependency_descriptors_a_switch_waits_for_a_keyframe_of_the_target() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(rid("q"), 90_000);
        assert!(matches!(
            f.on_packet(rid("q"), 100, 0, true, Some(true), t0),
            Decision::Forward { seq: 1000, .. }
        ));
        f.set_target(rid("f"));
        // Frame boundaries on f, but delta frames: q goes on.
        assert_eq!(
            f.on_packet(rid("f"), 500, 0, true, Some(false), t0),
            Decision::Drop
        );
        assert_eq!(
            f.on_packet(rid("f"), 501, 3000, true, Some(false), t0),
            Decision::Drop
        );
        assert!(matches!(
            f.on_packet(rid("q"), 101, 3000, true, Some(false), t0),
            Decision::Forward { seq: 1001, .. }
        ));
        // The first packet of an f keyframe switches.
        assert!(matches!(
            f.on_packet(rid("f"), 502, 6000, false, Some(true), t0),
            Decision::Forward { seq: 1002, .. }
        ));
        assert_eq!(f.current(), rid("f"));
        assert_eq!(
            f.on_packet(rid("q"), 102, 6000, true, Some(false), t0),
            Decision::Drop
        );
    }

    #[test]
    fn paused_drops_everything() {
        let mut f = Forwarder::new(None, 90_000);
        f.set_paused(true);
        assert_eq!(
            f.on_packet(None, 1, 1, true, None, Instant::now()),
            Decision::Drop
        );
    }
}
