//! Medians, percentiles and extremes: the statistics every benchmark reports with.

/// The median of `v` (mean of the middle two for an even count), `NaN` values left out; `NaN`
/// when nothing is left.
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile `p` (0..=100) of sorted samples; `None` when empty.
pub(crate) fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    // The epsilon keeps 99.9 % of 1000 at rank 999 despite binary fractions.
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The largest of `v`, `NaN` values left out; `NaN` when nothing is left.
pub(crate) fn max_of(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter().fold(f64::NAN, f64::max)
}

/// The smallest of `v`, `NaN` values left out; `NaN` when nothing is left.
pub(crate) fn min_of(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter().fold(f64::NAN, f64::min)
}

/// Latency summary of one window, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Latency {
    pub(crate) samples: usize,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

impl Latency {
    /// From samples in nanoseconds (sorted in place).
    pub(crate) fn from_ns(v: &mut [u32]) -> Self {
        v.sort_unstable();
        let us = |p: f64| percentile(v, p).map_or(f64::NAN, |x| f64::from(x) / 1000.0);
        Self {
            samples: v.len(),
            p50: us(50.0),
            p90: us(90.0),
            p99: us(99.0),
            p999: us(99.9),
            max: us(100.0),
        }
    }

    /// Field-wise medians over windows.
    pub(crate) fn median_of(all: &[Latency]) -> Self {
        let m = |f: fn(&Latency) -> f64| median(&all.iter().map(f).collect::<Vec<_>>());
        Self {
            samples: all.iter().map(|l| l.samples).sum(),
            p50: m(|l| l.p50),
            p90: m(|l| l.p90),
            p99: m(|l| l.p99),
            p999: m(|l| l.p999),
            max: m(|l| l.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[4.0, f64::NAN, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), Some(500));
        assert_eq!(percentile(&v, 99.0), Some(990));
        assert_eq!(percentile(&v, 99.9), Some(999));
        assert_eq!(percentile(&v, 100.0), Some(1000));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        let d: Vec<std::time::Duration> = (1..=4).map(std::time::Duration::from_millis).collect();
        assert_eq!(
            percentile(&d, 50.0),
            Some(std::time::Duration::from_millis(2))
        );
        let mut ns: Vec<u32> = (1..=100).rev().map(|x| x * 1000).collect();
        let l = Latency::from_ns(&mut ns);
        assert_eq!((l.samples, l.p50, l.p99, l.max), (100, 50.0, 99.0, 100.0));
    }

    #[test]
    fn extremes_leave_nan_out() {
        assert_eq!(max_of([1.0, f64::NAN, 3.0]), 3.0);
        assert_eq!(min_of([f64::NAN, 2.0, 1.0]), 1.0);
        assert!(max_of([]).is_nan());
    }
}
