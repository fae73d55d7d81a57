//! A per-address budget of failed credentials: an address that fails `/auth` signatures,
//! browser-API tokens, media tokens or download tokens too often in a window is answered 429
//! (with `Retry-After`) until the window ends, before its credentials are even looked at.
//!
//! Time comes in as an argument, so the budget is tested without a clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use crate::config::FailureBudget;

/// Addresses tracked at most; beyond this, windows that have ended are forgotten first and,
/// failing that, the map is cleared (an attacker spraying addresses gets a fresh budget, which
/// is what a new address would get anyway).
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// The failure counts per address.
#[derive(Debug, Default)]
pub struct FailureThrottle {
    budget: FailureBudget,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl FailureThrottle {
    pub fn new(budget: FailureBudget) -> Self {
        Self {
            budget,
            windows: Mutex::default(),
        }
    }

    /// Ok if `ip` may still try; otherwise how long until it may.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.budget.max_failures == 0 {
            return Ok(());
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(&ip) {
            Some(w) if now < w.started + self.budget.window => {
                if w.failures >= self.budget.max_failures {
                    Err((w.started + self.budget.window) - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure of `ip`.
    pub fn fail(&self, ip: IpAddr, now: Instant) {
        if self.budget.max_failures == 0 {
            return;
        }
        let window = self.budget.window;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&ip) {
            windows.retain(|_, w| now < w.started + window);
            if windows.len() >= MAX_TRACKED {
                windows.clear();
            }
        }
        let w = windows.entry(ip).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_address_is_held_back_after_its_budget_until_the_window_ends() {
        let t = FailureThrottle::new(FailureBudget {
            max_failures: 3,
            window: Duration::from_secs(60),
        });
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(t.check(ip(1), t0 + Duration::from_secs(i)), Ok(()));
            t.fail(ip(1), t0 + Duration::from_secs(i));
        }
        assert_eq!(
            t.check(ip(1), t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50)),
            "held back for the rest of the window that began with the first failure"
        );
        assert_eq!(
            t.check(ip(2), t0),
            Ok(()),
            "other addresses are not affected"
        );
        assert_eq!(t.check(ip(1), t0 + Duration::from_secs(60)), Ok(()));
        t.fail(ip(1), t0 + Duration::from_secs(61));
        assert_eq!(
            t.check(ip(1), t0 + Duration::from_secs(62)),
            Ok(()),
            "a new window starts with one failure"
        );
    }

    #[test]
    fn a_zero_budget_is_off() {
        let t = FailureThrottle::new(FailureBudget {
            max_failures: 0,
            window: Duration::from_secs(60),
        });
        let now = Instant::now();
        for _ in 0..100 {
            t.fail(ip(1), now);
        }
        assert_eq!(t.check(ip(1), now), Ok(()));
    }

    #[test]
    fn the_map_stays_bounded() {
        let t = FailureThrottle::new(FailureBudget::default());
        let now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            t.fail(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(t.windows.lock().unwrap().len() <= MAX_TRACKED);
    }
}
