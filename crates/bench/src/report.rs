//! What every report shares: the machine it ran on, the time, and numbers that print as "–"
//! when there is nothing to show.

use enclave_bench::procfs;

/// Machine facts, read at the start of a run.
pub(crate) struct Machine {
    /// RFC 3339, UTC.
    pub(crate) date: String,
    pub(crate) nproc: usize,
    pub(crate) model: String,
    /// The kernel's name ("Linux") and release.
    pub(crate) system: String,
    pub(crate) kernel: String,
    /// Load average over 1, 5 and 15 minutes.
    pub(crate) load: String,
}

impl Machine {
    pub(crate) fn read() -> Self {
        Self {
            date: now(&time::format_description::well_known::Rfc3339),
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            model: procfs::cpu_model().unwrap_or_else(|| "unknown".into()),
            system: procfs::kernel("ostype").unwrap_or_default(),
            kernel: procfs::kernel("osrelease").unwrap_or_default(),
            load: procfs::loadavg().unwrap_or_default(),
        }
    }
}

/// The time now in UTC, formatted.
pub(crate) fn now(format: &(impl time::formatting::Formattable + ?Sized)) -> String {
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

/// `f(x)`, or "–" when `x` is not a finite number (no samples, a failed phase).
pub(crate) fn finite(x: f64, f: impl FnOnce(f64) -> String) -> String {
    if x.is_finite() {
        f(x)
    } else {
        "–".into()
    }
}

/// `x` with `decimals` digits after the point, or "–".
pub(crate) fn fixed(x: f64, decimals: usize) -> String {
    finite(x, |x| format!("{x:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_or_a_dash() {
        assert_eq!(fixed(1.23456, 2), "1.23");
        assert_eq!(fixed(2.6, 0), "3");
        assert_eq!(fixed(f64::NAN, 1), "–");
        assert_eq!(finite(f64::INFINITY, |x| x.to_string()), "–");
        let d = now(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ));
        assert_eq!(d.len(), 23, "{d}");
    }
}
