//! Latest decoded frame per video track, buffered audio per audio track.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

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
    pub(super) frame: Option<Arc<Vec<u8>>>,
}

pub(super) type SharedMixer = Arc<Mutex<Mixer>>;

pub(super) fn lock(m: &Mutex<Mixer>) -> MutexGuard<'_, Mixer> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mixer {
    pub(super) fn add_video(&mut self, sid: &str) {
        let order = self.next_order;
        self.next_order += 1;
        self.video
            .entry(sid.to_owned())
            .or_insert(VideoSlot { order, frame: None });
    }

    pub(super) fn add_audio(&mut self, sid: &str) {
        self.audio.entry(sid.to_owned()).or_default();
    }

    pub(super) fn remove(&mut self, sid: &str) {
        self.video.remove(sid);
        self.audio.remove(sid);
    }

    pub(super) fn set_frame(&mut self, sid: &str, frame: Arc<Vec<u8>>) {
        if let Some(slot) = self.video.get_mut(sid) {
            slot.frame = Some(frame);
        }
    }

    pub(super) fn push_audio(&mut self, sid: &str, samples: &[i16]) {
        if let Some(b) = self.audio.get_mut(sid) {
            b.push(samples);
        }
    }

    pub(super) fn visible(&self) -> Vec<Option<Arc<Vec<u8>>>> {
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
    fn mixer_keeps_tile_order_and_forgets_ended_tracks() {
        let mut m = Mixer::default();
        m.add_video("b");
        m.add_video("a");
        m.add_audio("s");
        m.set_frame("a", Arc::new(vec![1]));
        let v = m.visible();
        assert_eq!(v.len(), 2);
        assert!(
            v[0].is_none(),
            "first-seen track first, still a placeholder"
        );
        assert_eq!(v[1].as_deref(), Some(&vec![1]));
        m.remove("b");
        assert_eq!(m.visible().len(), 1);
        m.push_audio("s", &[5; compose::PRIME_SAMPLES]);
        assert_eq!(m.mix(2), vec![5, 5]);
        m.remove("s");
        assert_eq!(m.mix(2), vec![0, 0]);
    }
}
