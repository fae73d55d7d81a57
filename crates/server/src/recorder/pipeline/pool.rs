//! Frame buffers reused instead of allocated and zeroed for every frame (a 720p frame is
//! 1.4 MB; fresh ones cost page faults and zeroing on every frame of every track).

use std::sync::Arc;

/// Buffers reused across frames: a frame is free again once nothing but the pool holds it
/// (for a composed frame: the ring forgot it and the encoder has written it; for a decoded
/// one: the mixer has a newer one and no composition still reads it).
#[derive(Default)]
pub(super) struct FramePool {
    frames: Vec<Arc<Vec<u8>>>,
}

impl FramePool {
    /// A buffer to fill: a free one, a new one while fewer than `cap` exist, or None.
    pub(super) fn take(&mut self, len: usize, cap: usize) -> Option<Vec<u8>> {
        if let Some(i) = self
            .frames
            .iter()
            .position(|f| Arc::strong_count(f) == 1 && f.len() == len)
        {
            return Arc::try_unwrap(self.frames.swap_remove(i)).ok();
        }
        // Buffers of another size (none today: the canvas is fixed) are let go.
        self.frames.retain(|f| f.len() == len);
        (self.frames.len() < cap).then(|| vec![0u8; len])
    }

    /// Shares a filled buffer, keeping a handle for reuse.
    pub(super) fn share(&mut self, frame: Vec<u8>) -> Arc<Vec<u8>> {
        let frame = Arc::new(frame);
        self.frames.push(frame.clone());
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_buffers_are_reused_only_once_free() {
        let mut pool = FramePool::default();
        let buf = pool.take(4, 2).unwrap();
        let a = pool.share(buf);
        let buf = pool.take(4, 2).unwrap();
        let b = pool.share(buf);
        assert!(pool.take(4, 2).is_none(), "both in use and the cap reached");
        let a_ptr = a.as_ptr();
        drop(a);
        let again = pool.take(4, 2).expect("a is free again");
        assert_eq!(again.as_ptr(), a_ptr, "the same allocation, not a new one");
        drop(b);
        assert!(pool.take(4, 2).is_some());
        // A different size lets the old buffers go.
        let mut pool = FramePool::default();
        let c = pool.share(vec![0; 4]);
        drop(c);
        assert_eq!(pool.take(6, 1).unwrap().len(), 6);
    }
}
