//! Wall-clock time as the server stores and sends it. Everything that needs "now" in Unix
//! time asks here, so that no module depends on the composition root for it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds now.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The monotonic "now" handed to sans-IO state (rates, timers), from tokio's clock so that a
/// test that pauses time pauses it too.
pub fn now_std() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
