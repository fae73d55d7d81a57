//! Pure compositing: where video tiles go on the canvas, how a decoded frame shrinks into its
//! tile, and how the tracks' audio is mixed. No I/O here, so all of it is unit-tested.
//!
//! Frames are planar YUV 4:2:0 (`yuv420p`): a `width`×`height` luma plane followed by two
//! `width/2`×`height/2` chroma planes. Canvas sizes are even (the pipeline checks), so every
//! tile rectangle is kept on even coordinates and maps exactly onto the chroma planes.

use std::collections::VecDeque;

/// At most this many video tiles are shown; further tracks wait for a free tile.
pub const MAX_TILES: usize = 9;

/// Video black in limited range.
pub const BLACK: Yuv = Yuv {
    y: 16,
    u: 128,
    v: 128,
};

/// What a tile shows until its track's first frame is decoded.
pub const PLACEHOLDER: Yuv = Yuv {
    y: 48,
    u: 128,
    v: 128,
};

/// The audio rate everything is mixed at.
pub const SAMPLE_RATE: u32 = 48_000;

/// A track buffer starts contributing once it holds this much (150 ms): enough to ride out
/// the decoder's bursty output without audible gaps, and a decoder that lags on a busy CPU.
/// Pictures wait as long after they arrive (`clock::PICTURE_PLAYOUT`), so the two meet.
pub const PRIME_SAMPLES: usize = SAMPLE_RATE as usize * 3 / 20;

/// Above this much buffered (500 ms) the publisher's clock runs faster than ours; the oldest
/// samples are dropped down to [`PRIME_SAMPLES`] so latency cannot grow without bound.
pub const MAX_BUFFERED_SAMPLES: usize = SAMPLE_RATE as usize / 2;

/// A buffer whose lowest level over a whole [`STANDING_WINDOW_SAMPLES`] stayed more than this
/// (30 ms) above [`PRIME_SAMPLES`] holds a standing delay, not jitter: its decoder fell behind
/// (a busy CPU) and caught up in a burst, and every sound since plays that much later than
/// its picture. The excess is dropped, so the delay comes back to the prime level.
pub const STANDING_EXCESS_SAMPLES: usize = SAMPLE_RATE as usize * 3 / 100;

/// How much mixed audio (500 ms) the lowest level is watched over before a standing delay is
/// cut: long enough that ordinary bursts of decoded audio are not mistaken for one.
pub const STANDING_WINDOW_SAMPLES: usize = SAMPLE_RATE as usize / 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Yuv {
    pub y: u8,
    pub u: u8,
    pub v: u8,
}

/// A rectangle on the luma plane; always at even coordinates with even sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Where `n` tiles go, and the integer factor a full-canvas frame is shrunk by to fill one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub factor: u32,
    pub tiles: Vec<Rect>,
}

/// Bytes in one `yuv420p` frame of an even-sized canvas.
pub fn frame_len(width: u32, height: u32) -> usize {
    let luma = width as usize * height as usize;
    luma + luma / 2
}

/// Grid layout of `n` video tiles: 1 fills the canvas; 2 sit side by side at half size,
/// vertically centred; 3–4 form a 2×2 grid; 5–9 a 3×3 grid; beyond 9 only the first 9 are
/// placed. Slots fill row by row.
pub fn layout(n: usize, width: u32, height: u32) -> Layout {
    let n = n.min(MAX_TILES);
    let (factor, cols, rows) = match n {
        0 => {
            return Layout {
                factor: 1,
                tiles: Vec::new(),
            }
        }
        1 => (1, 1, 1),
        2 => (2, 2, 1),
        3 | 4 => (2, 2, 2),
        _ => (3, 3, 3),
    };
    let tw = even(width / factor);
    let th = even(height / factor);
    let x0 = even(width.saturating_sub(cols * tw) / 2);
    let y0 = even(height.saturating_sub(rows * th) / 2);
    let tiles = (0..n as u32)
        .map(|i| Rect {
            x: x0 + (i % cols) * tw,
            y: y0 + (i / cols) * th,
            w: tw,
            h: th,
        })
        .collect();
    Layout { factor, tiles }
}

fn even(v: u32) -> u32 {
    v & !1
}

/// A black canvas.
pub fn blank(width: u32, height: u32) -> Vec<u8> {
    let mut frame = vec![0; frame_len(width, height)];
    fill(&mut frame, width, height, full(width, height), BLACK);
    frame
}

fn full(width: u32, height: u32) -> Rect {
    Rect {
        x: 0,
        y: 0,
        w: width,
        h: height,
    }
}

/// The three planes of a frame, each with its width and height.
fn planes(frame: &mut [u8], width: u32, height: u32) -> [(&mut [u8], usize, usize); 3] {
    let (w, h) = (width as usize, height as usize);
    let (luma, chroma) = frame.split_at_mut(w * h);
    let (u, v) = chroma.split_at_mut(w * h / 4);
    [(luma, w, h), (u, w / 2, h / 2), (v, w / 2, h / 2)]
}

fn src_planes(frame: &[u8], width: u32, height: u32) -> [(&[u8], usize); 3] {
    let (w, h) = (width as usize, height as usize);
    let (luma, chroma) = frame.split_at(w * h);
    let (u, v) = chroma.split_at(w * h / 4);
    [(luma, w), (u, w / 2), (v, w / 2)]
}

/// Paints `rect` of `frame` (a `width`×`height` canvas) in one colour.
pub fn fill(frame: &mut [u8], width: u32, height: u32, rect: Rect, colour: Yuv) {
    if frame.len() < frame_len(width, height) {
        return;
    }
    let values = [colour.y, colour.u, colour.v];
    for (i, (plane, stride, rows)) in planes(frame, width, height).into_iter().enumerate() {
        let sub = if i == 0 { 1 } else { 2 };
        let (x, y) = (rect.x as usize / sub, rect.y as usize / sub);
        let (w, h) = (rect.w as usize / sub, rect.h as usize / sub);
        let (x, w) = (x.min(stride), w.min(stride.saturating_sub(x)));
        for row in y..(y + h).min(rows) {
            plane[row * stride + x..][..w].fill(values[i]);
        }
    }
}

/// Shrinks `src` (a full `width`×`height` frame) by `factor` into `rect` of `dst` (a canvas of
/// the same size), each output sample the rounded mean of a `factor`×`factor` block. The
/// decoders already scaled every track to the canvas size, so an integer factor is exact and
/// cheap. Mismatched sizes leave `dst` untouched rather than panic.
pub fn blit_scaled(dst: &mut [u8], src: &[u8], width: u32, height: u32, rect: Rect, factor: u32) {
    let len = frame_len(width, height);
    if dst.len() < len || src.len() < len || factor == 0 {
        return;
    }
    let f = factor as usize;
    let area = (f * f) as u32;
    let srcs = src_planes(src, width, height);
    for (i, (plane, stride, rows)) in planes(dst, width, height).into_iter().enumerate() {
        let sub = if i == 0 { 1 } else { 2 };
        let (sp, s_stride) = srcs[i];
        let (x, y) = (rect.x as usize / sub, rect.y as usize / sub);
        // Never read past the source plane nor write past the destination plane.
        let w = (rect.w as usize / sub)
            .min(s_stride / f)
            .min(stride.saturating_sub(x));
        let h = (rect.h as usize / sub)
            .min(rows / f)
            .min(rows.saturating_sub(y));
        // Row sums first, then one rounded mean per output sample: this runs for every tile of
        // every frame, so the inner loops stay simple (they are also what a debug build runs)
        // and the mean is a shift (factor 2) or a multiply (factor 3), never a division.
        let mut acc = vec![0u32; w];
        for oy in 0..h {
            let out = &mut plane[(y + oy) * stride + x..][..w];
            if f == 1 {
                out.copy_from_slice(&sp[oy * s_stride..][..w]);
                continue;
            }
            acc.fill(0);
            for dy in 0..f {
                let row = &sp[(oy * f + dy) * s_stride..][..w * f];
                match f {
                    2 => {
                        for (a, p) in acc.iter_mut().zip(row.chunks_exact(2)) {
                            *a += u32::from(p[0]) + u32::from(p[1]);
                        }
                    }
                    3 => {
                        for (a, p) in acc.iter_mut().zip(row.chunks_exact(3)) {
                            *a += u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2]);
                        }
                    }
                    _ => {
                        for (a, p) in acc.iter_mut().zip(row.chunks_exact(f)) {
                            *a += p.iter().map(|&b| u32::from(b)).sum::<u32>();
                        }
                    }
                }
            }
            match f {
                2 => {
                    for (o, a) in out.iter_mut().zip(&acc) {
                        *o = ((a + 2) >> 2) as u8;
                    }
                }
                3 => {
                    for (o, a) in out.iter_mut().zip(&acc) {
                        *o = mean_of_nine(*a);
                    }
                }
                _ => {
                    for (o, a) in out.iter_mut().zip(&acc) {
                        *o = ((a + area / 2) / area) as u8;
                    }
                }
            }
        }
    }
}

/// `round(sum / 9)` for a sum of nine bytes, as a multiply and a shift: 7282 / 65536 is
/// 1/9 to within 4.3e-6, which over sums up to 9 × 255 never moves a result across an
/// integer (checked for every possible sum in the tests).
fn mean_of_nine(sum: u32) -> u8 {
    (((sum + 4) * 7282) >> 16) as u8
}

/// Draws one composed frame: black background, then each tile in [`layout`] order, showing
/// its track's latest full-canvas frame or, before the first one, [`PLACEHOLDER`].
pub fn compose(dst: &mut [u8], width: u32, height: u32, tiles: &[Option<&[u8]>]) {
    fill(dst, width, height, full(width, height), BLACK);
    let l = layout(tiles.len(), width, height);
    for (rect, tile) in l.tiles.iter().zip(tiles) {
        match tile {
            Some(src) => blit_scaled(dst, src, width, height, *rect, l.factor),
            None => fill(dst, width, height, *rect, PLACEHOLDER),
        }
    }
}

/// Number of audio samples that belong to clock tick `n` at `fps`: spreading the remainder
/// keeps the long-run rate at exactly [`SAMPLE_RATE`] even when `fps` does not divide it.
pub fn samples_for_tick(n: u64, fps: u32) -> usize {
    let fps = u64::from(fps.max(1));
    let rate = u64::from(SAMPLE_RATE);
    ((n + 1) * rate / fps - n * rate / fps) as usize
}

/// One track's decoded audio waiting to be mixed: a small jitter buffer.
#[derive(Debug, Default)]
pub struct AudioBuffer {
    samples: VecDeque<i16>,
    primed: bool,
    /// Primed, but not yet mixed from since.
    fresh: bool,
    /// The lowest level seen after a mix in the current window, and the samples mixed in it.
    window_low: Option<usize>,
    window_mixed: usize,
}

impl AudioBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn is_primed(&self) -> bool {
        self.primed
    }

    /// Appends decoded samples, dropping the oldest if the buffer outgrew
    /// [`MAX_BUFFERED_SAMPLES`].
    pub fn push(&mut self, samples: &[i16]) {
        self.samples.extend(samples.iter().copied());
        if self.samples.len() > MAX_BUFFERED_SAMPLES {
            let excess = self.samples.len() - PRIME_SAMPLES;
            self.samples.drain(..excess);
        }
        if !self.primed && self.samples.len() >= PRIME_SAMPLES {
            self.primed = true;
            self.fresh = true;
        }
    }

    /// Adds the next `acc.len()` samples into `acc`. Unprimed, it adds nothing (silence); short
    /// of samples, it adds what it has and waits to be primed again.
    pub fn take_into(&mut self, acc: &mut [i32]) {
        if !self.primed {
            return;
        }
        if self.fresh {
            // Whatever arrived between priming and this tick would add to the latency for as
            // long as the track plays, by up to a tick; starting from exactly the prime level
            // makes the delay the same every time (and so the sync with the picture).
            self.fresh = false;
            let excess = self.samples.len().saturating_sub(PRIME_SAMPLES);
            self.samples.drain(..excess);
        }
        let k = acc.len().min(self.samples.len());
        for (a, s) in acc.iter_mut().zip(self.samples.drain(..k)) {
            *a += i32::from(s);
        }
        if k < acc.len() {
            self.primed = false;
            self.window_low = None;
            self.window_mixed = 0;
            return;
        }
        self.cut_standing_delay(acc.len());
    }

    /// Watches the level after each mix; a window whose lowest level stayed above the prime
    /// level by more than [`STANDING_EXCESS_SAMPLES`] drops that much of the oldest audio.
    fn cut_standing_delay(&mut self, mixed: usize) {
        let level = self.samples.len();
        let low = self.window_low.map_or(level, |l| l.min(level));
        self.window_low = Some(low);
        self.window_mixed += mixed;
        if self.window_mixed < STANDING_WINDOW_SAMPLES {
            return;
        }
        if low > PRIME_SAMPLES + STANDING_EXCESS_SAMPLES {
            self.samples.drain(..low - PRIME_SAMPLES);
        }
        self.window_low = None;
        self.window_mixed = 0;
    }
}

/// Mixes `n` samples from every buffer into one mono block by saturating sum.
pub fn mix<'a>(buffers: impl IntoIterator<Item = &'a mut AudioBuffer>, n: usize) -> Vec<i16> {
    let mut acc = vec![0i32; n];
    for b in buffers {
        b.take_into(&mut acc);
    }
    acc.into_iter()
        .map(|s| s.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 1280;
    const H: u32 = 720;

    fn r(x: u32, y: u32, w: u32, h: u32) -> Rect {
        Rect { x, y, w, h }
    }

    #[test]
    fn layout_of_one_fills_the_canvas() {
        assert_eq!(
            layout(1, W, H),
            Layout {
                factor: 1,
                tiles: vec![r(0, 0, W, H)]
            }
        );
        assert!(layout(0, W, H).tiles.is_empty());
    }

    #[test]
    fn layout_of_two_is_side_by_side_and_vertically_centred() {
        assert_eq!(
            layout(2, W, H),
            Layout {
                factor: 2,
                tiles: vec![r(0, 180, 640, 360), r(640, 180, 640, 360)]
            }
        );
    }

    #[test]
    fn layout_of_three_and_four_is_two_by_two() {
        let quad = [
            r(0, 0, 640, 360),
            r(640, 0, 640, 360),
            r(0, 360, 640, 360),
            r(640, 360, 640, 360),
        ];
        let three = layout(3, W, H);
        assert_eq!(three.factor, 2);
        assert_eq!(three.tiles, quad[..3]);
        let four = layout(4, W, H);
        assert_eq!(four.factor, 2);
        assert_eq!(four.tiles, quad);
    }

    #[test]
    fn layout_of_five_to_nine_is_three_by_three_and_caps_at_nine() {
        // 1280/3 = 426 (even); the 2 spare columns are split as evenly as evenness allows.
        let cell = |i: u32| r((i % 3) * 426, (i / 3) * 240, 426, 240);
        let five = layout(5, W, H);
        assert_eq!(five.factor, 3);
        assert_eq!(five.tiles, (0..5).map(cell).collect::<Vec<_>>());
        let nine = layout(9, W, H);
        assert_eq!(nine.tiles, (0..9).map(cell).collect::<Vec<_>>());
        assert_eq!(layout(10, W, H), nine);
    }

    #[test]
    fn layout_rects_are_even_and_inside_odd_divisions() {
        for (w, h) in [(1280, 720), (1920, 1080), (642, 362), (320, 240)] {
            for n in 1..=12 {
                for t in layout(n, w, h).tiles {
                    assert!(t.x % 2 == 0 && t.y % 2 == 0 && t.w % 2 == 0 && t.h % 2 == 0);
                    assert!(
                        t.x + t.w <= w && t.y + t.h <= h,
                        "{n} tiles on {w}x{h}: {t:?}"
                    );
                }
            }
        }
    }

    /// A 12×6 frame whose luma is a function of position and whose chroma planes are
    /// constant-per-block, so expected averages are easy to compute by hand.
    fn pattern(w: u32, h: u32) -> Vec<u8> {
        let mut f = vec![0u8; frame_len(w, h)];
        let (w, h) = (w as usize, h as usize);
        for y in 0..h {
            for x in 0..w {
                f[y * w + x] = (x * 10 + y) as u8;
            }
        }
        for i in 0..w * h / 4 {
            f[w * h + i] = 100 + (i % 3) as u8;
            f[w * h + w * h / 4 + i] = 200;
        }
        f
    }

    #[test]
    fn factor_one_copies_exactly() {
        let src = pattern(12, 6);
        let mut dst = blank(12, 6);
        blit_scaled(&mut dst, &src, 12, 6, r(0, 0, 12, 6), 1);
        assert_eq!(dst, src);
    }

    #[test]
    fn box_average_by_two_and_three() {
        let (w, h) = (12u32, 6u32);
        let src = pattern(w, h);

        let mut dst = blank(w, h);
        blit_scaled(&mut dst, &src, w, h, r(2, 2, 6, 2), 2);
        // Output (0,0) averages luma (0,0),(1,0),(0,1),(1,1) = 0,10,1,11 -> 5.5 -> 6 (rounded).
        assert_eq!(dst[2 * 12 + 2], 6);
        // Output (1,0): x 2..3, y 0..1 = 20,30,21,31 -> 25.5 -> 26.
        assert_eq!(dst[2 * 12 + 3], 26);
        // Output (2,1): x 4..5, y 2..3 = 42,52,43,53 -> 47.5 -> 48.
        assert_eq!(dst[3 * 12 + 4], 48);
        // Outside the rect stays black.
        assert_eq!(dst[0], 16);
        assert_eq!(dst[2 * 12 + 8], 16);
        assert_eq!(dst[4 * 12 + 2], 16);
        // Chroma (6×3 planes): the tile covers chroma x 1..4, y 1; sample (0,0) of the tile
        // averages source chroma (0,0),(1,0),(0,1),(1,1) = 100,101,106%3..: indices 0,1,6,7.
        let u = (w * h) as usize;
        let expect = |idxs: [usize; 4]| {
            let s: u32 = idxs.iter().map(|&i| 100 + (i % 3) as u32).sum();
            ((s + 2) / 4) as u8
        };
        assert_eq!(dst[u + 6 + 1], expect([0, 1, 6, 7]));
        assert_eq!(dst[u + 6 + 2], expect([2, 3, 8, 9]));
        assert_eq!(dst[u], 128, "chroma outside the tile stays neutral");
        assert_eq!(dst[u + 18 + 6 + 1], 200);

        let mut dst = blank(w, h);
        blit_scaled(&mut dst, &src, w, h, r(0, 0, 4, 2), 3);
        // Output (0,0): x 0..2, y 0..2 -> mean of 10x+y = 10*1 + 1 = 11.
        assert_eq!(dst[0], 11);
        // Output (3,1): x 9..11, y 3..5 -> 10*10 + 4 = 104.
        assert_eq!(dst[12 + 3], 104);
    }

    #[test]
    fn the_mean_of_nine_is_exact_for_every_sum() {
        for sum in 0..=9 * 255u32 {
            assert_eq!(u32::from(mean_of_nine(sum)), (sum + 4) / 9, "sum {sum}");
        }
    }

    #[test]
    fn compose_places_placeholders_and_frames() {
        let (w, h) = (12u32, 8u32);
        let src = vec![200u8; frame_len(w, h)];
        let mut dst = vec![0u8; frame_len(w, h)];
        compose(&mut dst, w, h, &[Some(&src), None]);
        // Two tiles of 6×4 at y = 2: left shows the frame, right the placeholder.
        assert_eq!(dst[2 * 12], 200);
        assert_eq!(dst[2 * 12 + 6], PLACEHOLDER.y);
        assert_eq!(dst[0], BLACK.y, "above the row of tiles is black");
        assert_eq!(dst[7 * 12 + 11], BLACK.y);

        compose(&mut dst, w, h, &[]);
        assert!(dst[..(w * h) as usize].iter().all(|&b| b == BLACK.y));
        assert!(dst[(w * h) as usize..].iter().all(|&b| b == 128));
    }

    #[test]
    fn mismatched_sizes_do_not_panic() {
        let mut dst = vec![0u8; 10];
        blit_scaled(&mut dst, &[1, 2, 3], 1280, 720, r(0, 0, 1280, 720), 1);
        fill(&mut dst, 1280, 720, r(0, 0, 2, 2), BLACK);
        compose(&mut dst, 1280, 720, &[None]);
    }

    #[test]
    fn samples_per_tick_add_up_to_the_rate() {
        assert_eq!(samples_for_tick(0, 25), 1920);
        for fps in [24, 25, 30, 7, 60] {
            let total: usize = (0..u64::from(fps) * 3)
                .map(|n| samples_for_tick(n, fps))
                .sum();
            assert_eq!(total, 3 * 48_000, "fps {fps}");
        }
    }

    #[test]
    fn mix_saturates() {
        let mut a = AudioBuffer::new();
        let mut b = AudioBuffer::new();
        let mut c = AudioBuffer::new();
        a.push(&[30_000; PRIME_SAMPLES]);
        b.push(&[10_000; PRIME_SAMPLES]);
        c.push(&[-30_000; PRIME_SAMPLES]);
        assert_eq!(mix([&mut a, &mut b], 4), vec![i16::MAX; 4]);
        let mut d = AudioBuffer::new();
        d.push(&[-30_000; PRIME_SAMPLES]);
        assert_eq!(mix([&mut c, &mut d], 4), vec![i16::MIN; 4]);
        // Summing before clamping: 30000 + 10000 - 30000 is 10000, not a clamped 2767.
        assert_eq!(mix([&mut a, &mut b, &mut c], 2), vec![10_000; 2]);
    }

    #[test]
    fn unprimed_tracks_are_silent_until_the_prime_level() {
        let mut a = AudioBuffer::new();
        a.push(&[1000; PRIME_SAMPLES - 1]);
        assert!(!a.is_primed());
        assert_eq!(mix([&mut a], 3), vec![0; 3]);
        assert_eq!(a.len(), PRIME_SAMPLES - 1, "silence does not consume");
        a.push(&[2000]);
        assert!(a.is_primed());
        assert_eq!(mix([&mut a], 3), vec![1000; 3]);
    }

    #[test]
    fn mixing_starts_from_exactly_the_prime_level() {
        let mut a = AudioBuffer::new();
        a.push(&[1; PRIME_SAMPLES]);
        a.push(&[2; 480]);
        // The 480 samples beyond the prime level are the newest; the oldest go.
        let out = mix([&mut a], PRIME_SAMPLES);
        assert_eq!(out[..PRIME_SAMPLES - 480], [1; PRIME_SAMPLES - 480]);
        assert_eq!(out[PRIME_SAMPLES - 480..], [2; 480]);
        // Only at the start: later the buffer is left as it is.
        a.push(&[3; PRIME_SAMPLES + 10]);
        assert_eq!(mix([&mut a], 4), vec![3; 4]);
        assert_eq!(a.len(), PRIME_SAMPLES + 6);
    }

    #[test]
    fn underrun_pads_silence_and_unprimes() {
        let mut a = AudioBuffer::new();
        a.push(&[500; PRIME_SAMPLES]);
        let out = mix([&mut a], PRIME_SAMPLES + 2);
        assert_eq!(out[PRIME_SAMPLES - 1], 500);
        assert_eq!(out[PRIME_SAMPLES..], [0, 0]);
        assert!(a.is_empty());
        assert!(!a.is_primed());
        // Until primed again, what arrives is held back.
        a.push(&[7; 10]);
        assert_eq!(mix([&mut a], 4), vec![0; 4]);
        assert_eq!(a.len(), 10);
    }

    #[test]
    fn a_standing_delay_is_cut_back_to_the_prime_level_and_jitter_is_left_alone() {
        let tick = 1920; // 40 ms at 25 fps
        let mut a = AudioBuffer::new();
        // The decoder's output comes in bursts (three ticks' worth every third tick) but keeps
        // up: the level swings by two ticks and nothing is cut or padded.
        let cycle = |a: &mut AudioBuffer, i: usize| {
            if i % 3 == 0 {
                a.push(&vec![1; 3 * tick]);
            }
            let out = mix([&mut *a], tick);
            assert!(out.iter().all(|&s| s != 0), "no silence at step {i}");
            a.len()
        };
        a.push(&vec![1; PRIME_SAMPLES]);
        let start = {
            let out = mix([&mut a], tick);
            assert!(out.iter().all(|&s| s == 1));
            a.len()
        };
        for i in 0..60 {
            cycle(&mut a, i);
        }
        assert_eq!(a.len(), start, "jitter: not a sample dropped");
        // The decoder fell 200 ms behind and caught up in one burst: from now on every sound
        // would play 200 ms later than its picture.
        a.push(&vec![1; 5 * tick]);
        let delayed = a.len();
        let levels: Vec<usize> = (0..2 * STANDING_WINDOW_SAMPLES / tick + 3)
            .map(|i| cycle(&mut a, i))
            .collect();
        let last_cycle_low = *levels[levels.len() - 3..].iter().min().unwrap();
        assert!(
            delayed > PRIME_SAMPLES + STANDING_EXCESS_SAMPLES
                && last_cycle_low <= PRIME_SAMPLES + STANDING_EXCESS_SAMPLES,
            "the standing delay is cut within two windows: {delayed} → {levels:?}"
        );
    }

    #[test]
    fn drift_drops_oldest_down_to_the_prime_level() {
        let mut a = AudioBuffer::new();
        a.push(&vec![1; MAX_BUFFERED_SAMPLES]);
        assert_eq!(a.len(), MAX_BUFFERED_SAMPLES, "exactly 500 ms is kept");
        a.push(&[2; 10]);
        assert_eq!(a.len(), PRIME_SAMPLES);
        // The newest survive: the last ten are the 2s.
        let out = mix([&mut a], PRIME_SAMPLES);
        assert_eq!(out[PRIME_SAMPLES - 11], 1);
        assert_eq!(out[PRIME_SAMPLES - 10..], [2; 10]);
    }
}
