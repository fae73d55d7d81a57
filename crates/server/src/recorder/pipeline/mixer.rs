//! Latest decoded frame per video track, buffered audio per audio track.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::recorder::compose::{self, AudioBuffer};

/// Latest decoded frame per video track, buffered audio per audio track.
#[derive(Default)]
pub(super) struct Mixer {
    pub(super) next_order: u64,
    pub(super) video: HashMap<String, VideoSlot>,
    pub(super) audio: HashMap<String, AudioBuffer>,
}

pub(super) struct VideoSlot {
    /// Tiles keep the order tracks first appeared in.
    pub(super) order: u64,
    /// The frame on show.
    pub(super) frame: Option<Arc<Vec<u8>>>,
    /// Decoded frames not yet due, by when their last packet arrived, oldest first.
    queued: VecDeque<(Instant, Arc<Vec<u8>>)>,
}

/// Frames a track may have decoded ahead of their time before the oldest is shown anyway.
const MAX_QUEUED_FRAMES: usize = 8;

pub(super) type SharedMixer = Arc<Mutex<Mixer>>;

/// When each recent frame of one video track arrived (its last packet), by RTP timestamp, and
/// the timestamp of the first packet its current decoder was sent: the decoder's pts count
/// from there.
#[derive(Default)]
pub(super) struct FrameArrivals {
    pub(super) base: Option<u32>,
    frames: VecDeque<(u32, Instant)>,
}

/// Frames remembered per track (about 2 s at 30 fps).
const REMEMBERED_FRAMES: usize = 64;

impl FrameArrivals {
    /// A packet of the frame with `timestamp` arrived at `at`; the last one counts.
    pub(super) fn note(&mut self, timestamp: u32, at: Instant) {
        match self.frames.back_mut() {
            Some((ts, t)) if *ts == timestamp => *t = at,
            _ => {
                if self.frames.len() == REMEMBERED_FRAMES {
                    self.frames.pop_front();
                }
                self.frames.push_back((timestamp, at));
            }
        }
    }

    /// When the frame the decoder stamped `pts` (in RTP clock units since `base`) arrived.
    pub(super) fn arrival(&self, pts: i64) -> Option<Instant> {
        let ts = self.base?.wrapping_add(pts as u32);
        self.frames
            .iter()
            .rev()
            .find(|(t, _)| *t == ts)
            .map(|(_, at)| *at)
    }
}

pub(super) type SharedArrivals = Arc<Mutex<FrameArrivals>>;

pub(super) fn lock_arrivals(a: &Mutex<FrameArrivals>) -> MutexGuard<'_, FrameArrivals> {
    a.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn lock(m: &Mutex<Mixer>) -> MutexGuard<'_, Mixer> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mixer {
    pub(super) fn add_video(&mut self, sid: &str) {
        let order = self.next_order;
        self.next_order += 1;
        self.video.entry(sid.to_owned()).or_insert(VideoSlot {
            order,
            frame: None,
            queued: VecDeque::new(),
        });
    }

    pub(super) fn add_audio(&mut self, sid: &str) {
        self.audio.entry(sid.to_owned()).or_default();
    }

    pub(super) fn remove(&mut self, sid: &str) {
        self.video.remove(sid);
        self.audio.remove(sid);
    }

    /// A decoded frame whose last packet arrived at `arrived`: it goes on show once `delay`
    /// has passed since, so that pictures keep the time they arrived with however long their
    /// decoder took (within `delay`).
    pub(super) fn set_frame(&mut self, sid: &str, frame: Arc<Vec<u8>>, arrived: Instant) {
        if let Some(slot) = self.video.get_mut(sid) {
            slot.queued.push_back((arrived, frame));
            while slot.queued.len() > MAX_QUEUED_FRAMES {
                slot.frame = slot.queued.pop_front().map(|(_, f)| f);
            }
        }
    }

    pub(super) fn push_audio(&mut self, sid: &str, samples: &[i16]) {
        if let Some(b) = self.audio.get_mut(sid) {
            b.push(samples);
        }
    }

    /// The frames on show at `now`: each track's latest frame that arrived at least `delay`
    /// before it.
    pub(super) fn visible(&mut self, now: Instant, delay: Duration) -> Vec<Option<Arc<Vec<u8>>>> {
        for slot in self.video.values_mut() {
            while slot
                .queued
                .front()
                .is_some_and(|(arrived, _)| *arrived + delay <= now)
            {
                slot.frame = slot.queued.pop_front().map(|(_, f)| f);
            }
        }
        let mut slots: Vec<&VideoSlot> = self.video.values().collect();
        slots.sort_by_key(|s| s.order);
        slots
            .into_iter()
            .take(compose::MAX_TILES)
            .map(|s| s.frame.clone())
            .collect()
    }

    pub(super) fn mix(&mut self, n: usize) -> Vec<i16> {
        compose::mix(self.audio.values_mut(), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_found_by_its_decoder_pts_from_the_first_timestamp_sent() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut a = FrameArrivals::default();
        // Timestamps near the wrap, three packets for the first frame: its last one counts.
        a.note(u32::MAX - 3599, t0);
        a.note(u32::MAX - 3599, t0 + ms(5));
        a.note(2, t0 + ms(40));
        assert_eq!(a.arrival(0), None, "no decoder has been sent anything yet");
        a.base = Some(u32::MAX - 3599);
        assert_eq!(a.arrival(0), Some(t0 + ms(5)));
        assert_eq!(a.arrival(3602), Some(t0 + ms(40)), "across the wrap");
        assert_eq!(a.arrival(7200), None, "a frame that never arrived");
        for i in 0..REMEMBERED_FRAMES as u32 {
            a.note(10_000 + i, t0);
        }
        assert_eq!(a.arrival(3602), None, "old frames are forgotten");
    }

    #[test]
    fn mixer_keeps_tile_order_and_forgets_ended_tracks() {
        let mut m = Mixer::default();
        m.add_video("b");
        m.add_video("a");
        m.add_audio("s");
        let t0 = Instant::now();
        m.set_frame("a", Arc::new(vec![1]), t0);
        assert!(
            m.visible(t0, Duration::from_millis(100))[1].is_none(),
            "not yet due"
        );
        let v = m.visible(t0 + Duration::from_millis(100), Duration::from_millis(100));
        assert_eq!(v.len(), 2);
        assert!(
            v[0].is_none(),
            "first-seen track first, still a placeholder"
        );
        assert_eq!(v[1].as_deref(), Some(&vec![1]));
        m.remove("b");
        assert_eq!(m.visible(t0, Duration::ZERO).len(), 1);
        m.push_audio("s", &[5; compose::PRIME_SAMPLES]);
        assert_eq!(m.mix(2), vec![5, 5]);
        m.remove("s");
        assert_eq!(m.mix(2), vec![0, 0]);
    }
}
