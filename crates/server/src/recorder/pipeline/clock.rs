//! The timeline: a wall-clock tick schedule, a compositor that runs as often as the CPU lets
//! it, and a writer that hands the encoder exactly one frame and one tick of audio per tick.
//!
//! ```text
//!   clock (wall time) ── tick k: mixed audio ──────────────────────────▶ writer ─▶ encoder
//!        │ "compose now"                                                  ▲
//!        ▼                                                                │ frame sampled
//!   compositor (blocking thread) ── (sampled at, frame) ──▶ FrameRing ────┘ nearest tick k
//! ```
//!
//! Tick `k` is due at `t0 + k/fps`. The clock does only cheap work (mixing audio), so it keeps
//! wall time even on a starved CPU; when it wakes late it emits every tick it missed. The
//! compositor is the expensive part: when it cannot keep up it composes less often, and the
//! writer repeats the frame nearest in time instead of slowing the timeline down. So the
//! output has exactly one tick per `1/fps` of wall time between start and stop, audio and
//! video are stamped by the same tick count, and a slow compositor costs smoothness, never
//! duration or sync.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::mixer::{lock, SharedMixer};
use super::pool::FramePool;
use super::PipelineConfig;
use crate::recorder::compose;

/// How long the writer waits for a frame sampled at (or after) a tick's time before it takes
/// the nearest it has. Bounds the sync error when composing one frame takes up to this long.
const COMPOSE_WAIT: Duration = Duration::from_millis(400);

/// How long after its last packet arrived a decoded picture goes on show (its decoder reports
/// the frame's RTP time; the ingest knows when that frame arrived). Sound waits in its jitter
/// buffer, 150 ms (`compose::PRIME_SAMPLES`) after its decoder; pictures wait this long after
/// *arrival*, so a video decoder that lags on a busy CPU by less than this no longer moves the
/// picture against the sound. 45 ms shorter than the sound's buffer, because the sound also
/// waits for its decoder and a mix holds a tick: measured as the skew the pipeline adds to a
/// flash and its beep with one of two cores busy, 16 runs of the two flash tests kept every
/// flash within −97 … +92 ms but one run's first (+132 ms), against −146 … +18 ms and
/// failures of −137 … −217 ms with pictures placed when they were decoded.
const PICTURE_PLAYOUT: Duration = Duration::from_millis(105);

/// Composed frames the compositor may have alive at once (in the ring, queued for the
/// encoder, being written). A full 720p canvas is 1.4 MB.
const FRAME_POOL: usize = 12;

/// Ticks the writer may fall behind the clock (the encoder cannot keep up) before the clock
/// drops ticks rather than queue more: 30 s.
const MAX_BACKLOG_SECONDS: u64 = 30;

#[derive(Clone, Copy, Debug)]
pub(super) struct Canvas {
    pub(super) width: u32,
    pub(super) height: u32,
    /// Test knob: every composition takes at least this long.
    pub(super) compose_delay: Duration,
}

impl Canvas {
    pub(super) fn of(cfg: &PipelineConfig) -> Self {
        Self {
            width: cfg.width,
            height: cfg.height,
            compose_delay: cfg.compose_delay,
        }
    }
}

/// When each tick is due.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeline {
    t0: Instant,
    fps: u32,
}

impl Timeline {
    pub(super) fn new(t0: Instant, fps: u32) -> Self {
        Self {
            t0,
            fps: fps.max(1),
        }
    }

    /// When tick `k` is due.
    pub(super) fn due(&self, k: u64) -> Instant {
        self.t0 + Duration::from_nanos(k.saturating_mul(1_000_000_000) / u64::from(self.fps))
    }

    /// How many ticks are due by `now` (ticks `0..n`).
    pub(super) fn due_by(&self, now: Instant) -> u64 {
        let ns = now.saturating_duration_since(self.t0).as_nanos();
        let n = ns * u128::from(self.fps) / 1_000_000_000 + 1;
        u64::try_from(n).unwrap_or(u64::MAX)
    }
}

/// What the pipeline reports about its timeline.
#[derive(Debug, Default)]
pub(super) struct TimelineStats {
    /// Ticks handed to the encoder: the output's duration is this / fps.
    pub(super) written: AtomicU64,
    /// Ticks whose frame is the same as the previous tick's: the compositor was late.
    pub(super) repeated: AtomicU64,
    /// Ticks never written because the encoder fell [`MAX_BACKLOG_SECONDS`] behind.
    pub(super) dropped: AtomicU64,
    /// Frames the compositor made.
    pub(super) composed: AtomicU64,
    /// How late the clock woke at worst.
    pub(super) max_clock_lag_ms: AtomicU64,
    /// How far behind a tick's due time the writer handed it over, at worst.
    pub(super) max_writer_lag_ms: AtomicU64,
}

/// One tick's audio, mixed when the tick was due.
#[derive(Debug)]
pub(super) struct Tick {
    pub(super) index: u64,
    pub(super) pcm: Vec<i16>,
}

/// Wakes at every tick, mixes that tick's audio and asks the compositor for a frame. Never
/// waits on the encoder. On stop, emits the ticks due by then and ends (dropping `ticks`, which
/// lets the writer finish).
pub(super) async fn run_clock(
    timeline: Timeline,
    mixer: SharedMixer,
    stop: CancellationToken,
    ticks: mpsc::UnboundedSender<Tick>,
    compose_now: Arc<Notify>,
    stats: Arc<TimelineStats>,
) {
    let fps = timeline.fps;
    let max_backlog = MAX_BACKLOG_SECONDS * u64::from(fps);
    let mut next: u64 = 0;
    loop {
        let stopping = tokio::select! {
            biased;
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep_until(timeline.due(next)) => false,
        };
        let now = Instant::now();
        // At least one tick is always written: an encoder given no frame cannot finish.
        let upto = timeline.due_by(now).max(1);
        if !stopping {
            let lag = now.saturating_duration_since(timeline.due(next));
            stats
                .max_clock_lag_ms
                .fetch_max(lag.as_millis() as u64, Ordering::Relaxed);
        }
        for k in next..upto {
            let pcm = lock(&mixer).mix(compose::samples_for_tick(k, fps));
            let behind = k.saturating_sub(stats.written.load(Ordering::Relaxed));
            if behind > max_backlog {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if ticks.send(Tick { index: k, pcm }).is_err() {
                return;
            }
        }
        next = upto.max(next);
        compose_now.notify_one();
        if stopping {
            return;
        }
    }
}

/// Composed frames by the time their tiles were sampled, oldest first.
#[derive(Default)]
pub(super) struct FrameRing {
    frames: VecDeque<Composed>,
    next_id: u64,
}

#[derive(Clone)]
pub(super) struct Composed {
    pub(super) id: u64,
    pub(super) sampled_at: Instant,
    pub(super) frame: Arc<Vec<u8>>,
}

impl FrameRing {
    pub(super) fn push(&mut self, sampled_at: Instant, frame: Arc<Vec<u8>>) {
        let id = self.next_id;
        self.next_id += 1;
        self.frames.push_back(Composed {
            id,
            sampled_at,
            frame,
        });
    }

    /// Whether a frame sampled at or after `t` exists: nothing nearer to `t` can come later.
    pub(super) fn covers(&self, t: Instant) -> bool {
        self.frames.back().is_some_and(|c| c.sampled_at >= t)
    }

    /// The frame sampled nearest to `t`, forgetting every older one: targets only move
    /// forward, and a frame older than the one chosen can never be nearer to a later target.
    pub(super) fn take_nearest(&mut self, t: Instant) -> Option<Composed> {
        let distance = |c: &Composed| {
            if c.sampled_at >= t {
                c.sampled_at - t
            } else {
                t - c.sampled_at
            }
        };
        let best = self
            .frames
            .iter()
            .enumerate()
            .min_by_key(|(i, c)| (distance(c), *i))
            .map(|(i, _)| i)?;
        self.frames.drain(..best);
        self.frames.front().cloned()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.frames.len()
    }
}

/// Composes a frame each time it is asked (requests made while it works count as one), into
/// pooled buffers, and publishes it with the time its tiles were sampled.
pub(super) async fn run_compositor(
    canvas: Canvas,
    mixer: SharedMixer,
    compose_now: Arc<Notify>,
    ring: Arc<std::sync::Mutex<FrameRing>>,
    composed: Arc<Notify>,
    stop: CancellationToken,
    stats: Arc<TimelineStats>,
) {
    let len = compose::frame_len(canvas.width, canvas.height);
    let mut pool = FramePool::default();
    let mut previous: Option<LastComposed> = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = compose_now.notified() => {}
        }
        let sampled_at = Instant::now();
        let tiles = lock(&mixer).visible(sampled_at, PICTURE_PLAYOUT);
        // Nothing changed since the last frame: publish it again, compose nothing.
        if let Some(prev) = &previous {
            if same_tiles(&prev.tiles, &tiles) && canvas.compose_delay.is_zero() {
                ring_lock(&ring).push(sampled_at, prev.frame.clone());
                composed.notify_waiters();
                continue;
            }
        }
        let Some(mut buf) = pool.take(len, FRAME_POOL) else {
            // Every buffer is still queued for the encoder: it is behind, and a new frame
            // would only wait too.
            continue;
        };
        let job_tiles = tiles.clone();
        let delay = canvas.compose_delay;
        let done = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let refs: Vec<Option<&[u8]>> = job_tiles
                .iter()
                .map(|t| t.as_deref().map(Vec::as_slice))
                .collect();
            compose::compose(&mut buf, canvas.width, canvas.height, &refs);
            if let Some(rest) = delay.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
            buf
        })
        .await;
        let Ok(buf) = done else {
            tracing::error!("compositor task failed; frames will repeat until the stop");
            return;
        };
        let frame = pool.share(buf);
        stats.composed.fetch_add(1, Ordering::Relaxed);
        ring_lock(&ring).push(sampled_at, frame.clone());
        composed.notify_waiters();
        previous = Some(LastComposed { tiles, frame });
    }
}

/// The compositor's last frame and the decoded frames it was made of.
struct LastComposed {
    tiles: Vec<Option<Arc<Vec<u8>>>>,
    frame: Arc<Vec<u8>>,
}

fn same_tiles(a: &[Option<Arc<Vec<u8>>>], b: &[Option<Arc<Vec<u8>>>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            (None, None) => true,
            _ => false,
        })
}

pub(super) fn ring_lock(
    ring: &std::sync::Mutex<FrameRing>,
) -> std::sync::MutexGuard<'_, FrameRing> {
    ring.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands the encoder one frame and one tick of audio per tick, in order: for tick `k`, the
/// frame sampled nearest to its time (waiting up to [`COMPOSE_WAIT`] for one), repeating the
/// previous frame when the compositor made none. Ends when the clock has ended and every
/// tick it emitted is written, then stops the compositor.
#[allow(clippy::too_many_arguments)] // one call site; each is a distinct channel
pub(super) async fn run_writer(
    timeline: Timeline,
    canvas: Canvas,
    mut ticks: mpsc::UnboundedReceiver<Tick>,
    ring: Arc<std::sync::Mutex<FrameRing>>,
    composed: Arc<Notify>,
    video: mpsc::Sender<Arc<Vec<u8>>>,
    audio: mpsc::Sender<Vec<u8>>,
    compositor_stop: CancellationToken,
    stats: Arc<TimelineStats>,
) {
    let _stop_compositor = compositor_stop.drop_guard();
    let black = Arc::new(compose::blank(canvas.width, canvas.height));
    let mut last_id: Option<u64> = None;
    while let Some(tick) = ticks.recv().await {
        let due = timeline.due(tick.index);
        let target = due;
        let deadline = due + COMPOSE_WAIT;
        loop {
            let notified = composed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ring_lock(&ring).covers(target) || Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        let chosen = ring_lock(&ring).take_nearest(target);
        let frame = match chosen {
            Some(c) => {
                if last_id == Some(c.id) {
                    stats.repeated.fetch_add(1, Ordering::Relaxed);
                }
                last_id = Some(c.id);
                c.frame
            }
            None => black.clone(),
        };
        let pcm: Vec<u8> = tick.pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        if video.send(frame).await.is_err() || audio.send(pcm).await.is_err() {
            return;
        }
        stats.written.store(tick.index + 1, Ordering::Relaxed);
        let lag = Instant::now().saturating_duration_since(due);
        stats
            .max_writer_lag_ms
            .fetch_max(lag.as_millis() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_wall_clock() {
        let t0 = Instant::now();
        let tl = Timeline::new(t0, 25);
        assert_eq!(tl.due(0), t0);
        assert_eq!(tl.due(25), t0 + Duration::from_secs(1));
        assert_eq!(tl.due_by(t0), 1, "tick 0 is due at once");
        assert_eq!(tl.due_by(t0 + Duration::from_millis(39)), 1);
        assert_eq!(tl.due_by(t0 + Duration::from_millis(40)), 2);
        // 10.04 s of wall time is 252 ticks (0..=251): 10.08 s of media at most one tick long.
        assert_eq!(tl.due_by(t0 + Duration::from_millis(10_040)), 252);
        let tl = Timeline::new(t0, 30);
        assert_eq!(tl.due(1), t0 + Duration::from_nanos(33_333_333));
        assert_eq!(tl.due_by(t0 + Duration::from_secs(2)), 61);
    }

    fn ring_at(t0: Instant, ms: &[u64]) -> FrameRing {
        let mut r = FrameRing::default();
        for &m in ms {
            r.push(t0 + Duration::from_millis(m), Arc::new(vec![m as u8]));
        }
        r
    }

    #[test]
    fn the_nearest_frame_is_taken_and_older_ones_forgotten() {
        let t0 = Instant::now();
        let mut r = ring_at(t0, &[0, 40, 90, 200]);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(r.covers(at(200)) && !r.covers(at(201)));
        assert_eq!(
            r.take_nearest(at(50)).unwrap().id,
            1,
            "40 is nearer to 50 than 90"
        );
        assert_eq!(r.len(), 3, "the frame at 0 is gone");
        // The same frame again for a target it is still nearest to: a repeat.
        assert_eq!(r.take_nearest(at(60)).unwrap().id, 1);
        assert_eq!(r.take_nearest(at(70)).unwrap().id, 2);
        assert_eq!(
            r.take_nearest(at(150)).unwrap().id,
            3,
            "200 is nearer to 150 than 90"
        );
        assert_eq!(r.len(), 1);
        // Beyond the newest frame, the newest stays.
        assert_eq!(r.take_nearest(at(900)).unwrap().id, 3);
        assert!(FrameRing::default().take_nearest(at(0)).is_none());
    }

    #[test]
    fn a_tie_takes_the_older_frame() {
        let t0 = Instant::now();
        let mut r = ring_at(t0, &[0, 40]);
        assert_eq!(
            r.take_nearest(t0 + Duration::from_millis(20)).unwrap().id,
            0
        );
    }
}
