//! Bandwidth allocation of one subscriber: which simulcast layer of each video track it gets,
//! given its downlink estimate (TWCC, from str0m's bandwidth estimator) and what each layer
//! measurably costs. Pure: the room calls it on every allocation tick.
//!
//! Layer bitrates come from the sizes of the packets the publisher sends on each layer (RTP
//! header facts; the payload bytes are never read).

/// One video track as the allocator sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrackDemand {
    /// Measured bitrate of each layer, lowest first, in bit/s; `None` for a layer that is not
    /// flowing.
    pub layers: Vec<Option<u64>>,
    /// The highest layer index the subscriber wants (its requested quality, or its tile size).
    pub wanted: usize,
    /// The layer index it gets now, if any.
    pub current: Option<usize>,
    /// Served first when the budget is short (screen shares: their text must stay legible).
    pub priority: bool,
}

/// Share of the estimate media may use: the rest absorbs the estimate's error and the
/// bursts of keyframes.
const HEADROOM: f64 = 0.9;
/// Moving up needs this much more room than the layer costs, so that an estimate wobbling
/// around one layer's cost does not switch back and forth every tick.
const UP_MARGIN: f64 = 1.15;

/// Chooses a layer index per track (same order as `tracks`), given `estimate` bit/s of which
/// `fixed` bit/s are already taken by streams without a choice (audio, single-layer video).
///
/// Tracks are served in order of priority, then as given. Each gets the best flowing layer up
/// to what it wants that fits in what is left; a track for which nothing fits still gets its
/// lowest flowing layer (a frozen tile is worse than a blurry one). Returns `None` for a track
/// with no flowing layer.
pub(crate) fn allocate(estimate: u64, fixed: u64, tracks: &[TrackDemand]) -> Vec<Option<usize>> {
    let mut left = (estimate as f64 * HEADROOM - fixed as f64).max(0.0);
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    order.sort_by_key(|&i| !tracks[i].priority);
    let mut out = vec![None; tracks.len()];
    for i in order {
        let t = &tracks[i];
        let top = t.wanted.min(t.layers.len().saturating_sub(1));
        let fits = |l: usize, cost: u64| {
            let need = if t.current.is_some_and(|c| l > c) {
                cost as f64 * UP_MARGIN
            } else {
                cost as f64
            };
            need <= left
        };
        let choice = (0..=top)
            .rev()
            .filter_map(|l| t.layers.get(l).copied().flatten().map(|c| (l, c)))
            .find(|&(l, c)| fits(l, c))
            .or_else(|| {
                t.layers
                    .iter()
                    .enumerate()
                    .find_map(|(l, c)| c.map(|c| (l, c)))
            });
        if let Some((l, cost)) = choice {
            left = (left - cost as f64).max(0.0);
            out[i] = Some(l);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(layers: &[u64], wanted: usize, current: Option<usize>) -> TrackDemand {
        TrackDemand {
            layers: layers.iter().map(|&b| Some(b)).collect(),
            wanted,
            current,
            priority: false,
        }
    }

    const Q: u64 = 150_000;
    const H: u64 = 500_000;
    const F: u64 = 1_500_000;

    #[test]
    fn plenty_of_bandwidth_gives_everyone_what_they_want() {
        let tracks = [t(&[Q, H, F], 2, Some(2)), t(&[Q, H, F], 1, Some(1))];
        assert_eq!(
            allocate(10_000_000, 64_000, &tracks),
            vec![Some(2), Some(1)]
        );
    }

    #[test]
    fn a_narrow_link_steps_tracks_down_in_order() {
        let tracks = [t(&[Q, H, F], 2, Some(2)), t(&[Q, H, F], 2, Some(2))];
        // 2 Mbit/s * 0.9 - 64k = 1.736M: the first gets F (1.5M), the second only Q.
        assert_eq!(allocate(2_000_000, 64_000, &tracks), vec![Some(2), Some(0)]);
        // 1.2 Mbit/s: H then H would need 1.0M of 1.016M.
        assert_eq!(allocate(1_200_000, 64_000, &tracks), vec![Some(1), Some(1)]);
    }

    #[test]
    fn nothing_fits_still_sends_the_lowest_flowing_layer() {
        let tracks = [TrackDemand {
            layers: vec![None, Some(H), Some(F)],
            wanted: 2,
            current: Some(2),
            priority: false,
        }];
        assert_eq!(allocate(100_000, 0, &tracks), vec![Some(1)]);
        let none = [TrackDemand {
            layers: vec![None, None],
            wanted: 1,
            current: None,
            priority: false,
        }];
        assert_eq!(allocate(10_000_000, 0, &none), vec![None]);
    }

    #[test]
    fn screen_shares_are_served_first() {
        let mut share = t(&[Q, H, F], 2, Some(2));
        share.priority = true;
        let tracks = [t(&[Q, H, F], 2, Some(2)), share];
        assert_eq!(allocate(2_000_000, 0, &tracks), vec![Some(0), Some(2)]);
    }

    #[test]
    fn moving_up_needs_a_margin_but_staying_does_not() {
        // Exactly enough for F: a track already on F keeps it ...
        let est = ((F as f64) / HEADROOM).ceil() as u64;
        assert_eq!(
            allocate(est, 0, &[t(&[Q, H, F], 2, Some(2))]),
            vec![Some(2)]
        );
        // ... one on H does not move up until there is room to spare.
        assert_eq!(
            allocate(est, 0, &[t(&[Q, H, F], 2, Some(1))]),
            vec![Some(1)]
        );
        let roomy = ((F as f64) * UP_MARGIN / HEADROOM).ceil() as u64;
        assert_eq!(
            allocate(roomy, 0, &[t(&[Q, H, F], 2, Some(1))]),
            vec![Some(2)]
        );
    }

    #[test]
    fn an_unmeasured_layer_is_not_chosen_above_a_measured_one_that_fits() {
        let tracks = [TrackDemand {
            layers: vec![Some(Q), Some(H), None],
            wanted: 2,
            current: Some(1),
            priority: false,
        }];
        assert_eq!(allocate(10_000_000, 0, &tracks), vec![Some(1)]);
    }
}
