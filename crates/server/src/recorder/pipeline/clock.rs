//! The compositor clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::mixer::{lock, SharedMixer};
use super::PipelineConfig;
use crate::recorder::compose;

#[derive(Clone, Copy)]
pub(super) struct Canvas {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) fps: u32,
}

impl Canvas {
    pub(super) fn of(cfg: &PipelineConfig) -> Self {
        Self {
            width: cfg.width,
            height: cfg.height,
            fps: cfg.fps,
        }
    }
}

/// Ticks at the canvas rate from a fixed start: frame `n` is due at `t0 + n/fps`. A late tick
/// is written at once rather than skipped, so frames written / fps is the media duration.
pub(super) async fn run_clock(
    canvas: Canvas,
    mixer: SharedMixer,
    stop: CancellationToken,
    video: mpsc::Sender<Vec<u8>>,
    audio: mpsc::Sender<Vec<u8>>,
    max_lag_ms: Arc<AtomicU64>,
) {
    let t0 = Instant::now();
    let mut n: u64 = 0;
    let mut due = t0;
    // At least one tick is always written: an encoder given no frame at all cannot finish.
    loop {
        let lag = Instant::now().saturating_duration_since(due).as_millis() as u64;
        max_lag_ms.fetch_max(lag, Ordering::Relaxed);
        let (tiles, samples) = {
            let mut m = lock(&mixer);
            (m.visible(), m.mix(compose::samples_for_tick(n, canvas.fps)))
        };
        let frame = tokio::task::spawn_blocking(move || {
            let refs: Vec<Option<&[u8]>> = tiles
                .iter()
                .map(|t| t.as_deref().map(Vec::as_slice))
                .collect();
            let mut frame = vec![0u8; compose::frame_len(canvas.width, canvas.height)];
            compose::compose(&mut frame, canvas.width, canvas.height, &refs);
            frame
        })
        .await;
        let Ok(frame) = frame else {
            tracing::error!("compositor task failed; stopping the clock");
            break;
        };
        let pcm: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        if video.send(frame).await.is_err() || audio.send(pcm).await.is_err() {
            break;
        }
        n += 1;
        due = t0 + Duration::from_nanos(n * 1_000_000_000 / u64::from(canvas.fps));
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
    }
}
