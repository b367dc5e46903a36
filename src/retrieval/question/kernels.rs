//! The numeric pieces of the single-text pass: weights in half-precision panels,
//! the matrix-product kernel over them, and GELU with a branch-free `exp`.

use half::f16;

use super::Spread;

/// Outputs per panel: the weights are stored in panels of this many rows, column
/// by column, so that a step along the input reads 16 consecutive halves.
pub(super) const PANEL: usize = 16;

/// GELU with the exact error function, as BERT's `gelu`, over every value; in
/// pieces spread as `spread` says, each a loop the compiler turns into vector
/// instructions.
pub(super) fn gelu_all(values: &mut [f32], spread: Spread) {
    spread.pieces(values, 4096, |_, piece| {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features the function is compiled for were detected above.
            unsafe { gelu_avx2(piece) };
            return;
        }
        piece.iter_mut().for_each(|v| *v = gelu(*v));
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_avx2(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = gelu(*v));
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function, by Abramowitz and Stegun's 7.1.26 (absolute error under
/// 1.5e-7, about f32's resolution of the values it is added to). Branch-free.
/// The coefficients are written as published, rounded to f32 by the compiler.
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * exp_non_positive(-z * z)).copysign(x)
}

/// `e^x` for `x <= 0` (below −87 it gives e^−87, under 2e-38), within 3e-7 of the
/// exact value relative to it. Branch-free: 2^n by the exponent bits times a Taylor
/// polynomial of the rest, `|r| <= ln 2 / 2`.
#[inline(always)]
pub(super) fn exp_non_positive(x: f32) -> f32 {
    // Adding 1.5 × 2^23 rounds x·log2(e) to an integer n and leaves n in the low
    // mantissa bits of `shifted`.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // ln 2 in two parts, so that n × the first is exact.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(shifted.to_bits().wrapping_add(127) << 23)
}

/// Half-precision values in memory of their own, aligned to 2 MiB and, on Linux,
/// marked for transparent huge pages: the 21 MB of MiniLM's matrices then take a
/// dozen TLB entries instead of five thousand, which a pass reading all of them
/// (often from main memory, when a question comes after a pause) feels.
pub(super) struct Halves {
    start: std::ptr::NonNull<u16>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: `Halves` owns its memory and hands out only shared slices of it.
unsafe impl Send for Halves {}
// SAFETY: as above; nothing writes through `&Halves`.
unsafe impl Sync for Halves {}

impl Halves {
    const HUGE_PAGE: usize = 2 << 20;

    pub(super) fn new(values: &[u16]) -> Self {
        let bytes = std::mem::size_of_val(values).next_multiple_of(Self::HUGE_PAGE);
        let layout =
            std::alloc::Layout::from_size_align(bytes.max(Self::HUGE_PAGE), Self::HUGE_PAGE)
                .expect("a 2 MiB-aligned layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(start) = std::ptr::NonNull::new(raw.cast::<u16>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        // Before the first write, so that the pages are faulted in huge where the
        // kernel can; a refusal only leaves them small.
        #[cfg(target_os = "linux")]
        // SAFETY: the range is the allocation just made.
        unsafe {
            libc::madvise(raw.cast(), layout.size(), libc::MADV_HUGEPAGE);
        }
        // SAFETY: the allocation holds at least `values.len()` halves and does not
        // overlap `values`.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), start.as_ptr(), values.len()) };
        Self {
            start,
            len: values.len(),
            layout,
        }
    }
}

impl std::ops::Deref for Halves {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        // SAFETY: the first `len` halves were written in `new` and live until drop.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl Drop for Halves {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.start.as_ptr().cast(), self.layout) };
    }
}

/// Row-major weight rows of `k` halves in the panel layout of `Linear::weight`.
pub(super) fn panels(weight: &[u16], k: usize) -> Vec<u16> {
    let outputs = weight.len() / k;
    let mut out = vec![0u16; outputs.div_ceil(PANEL) * PANEL * k];
    for (j, w) in weight.chunks_exact(k).enumerate() {
        let (panel, c) = (j / PANEL, j % PANEL);
        for (p, &v) in w.iter().enumerate() {
            out[(panel * k + p) * PANEL + c] = v;
        }
    }
    out
}

/// `out[i × PANEL + c]` = row i of `x` · output c of `panel` (one panel of
/// `Linear::weight`, `k` × [`PANEL`] halves).
pub(super) fn products(x: &[f32], rows: usize, k: usize, panel: &[u16], out: &mut [f32]) {
    assert!(x.len() >= rows * k && panel.len() >= k * PANEL && out.len() >= rows * PANEL);
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
    {
        // SAFETY: the features the function is compiled for were detected above, and
        // the lengths it reads and writes were asserted.
        unsafe { simd::products(x, rows, k, panel, out) };
        return;
    }
    let w: Vec<f32> = panel[..k * PANEL]
        .iter()
        .map(|&b| f16::from_bits(b).to_f32())
        .collect();
    for (i, sums) in out.chunks_exact_mut(PANEL).take(rows).enumerate() {
        sums.fill(0.0);
        for (&v, weights) in x[i * k..(i + 1) * k].iter().zip(w.chunks_exact(PANEL)) {
            sums.iter_mut().zip(weights).for_each(|(s, w)| *s += v * w);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm256_broadcast_ss, _mm256_cvtph_ps, _mm256_fmadd_ps,
        _mm256_setzero_ps, _mm256_storeu_ps,
    };

    use super::PANEL;

    /// See [`super::products`]: blocks of up to six input rows by the panel's 16
    /// outputs, twelve sums of eight lanes kept in registers along the whole input;
    /// each step converts 16 halves once and multiplies them into every row.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; `x` must hold `rows × k` values,
    /// `panel` `k × PANEL` halves and `out` `rows × PANEL` values.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn products(
        x: &[f32],
        rows: usize,
        k: usize,
        panel: &[u16],
        out: &mut [f32],
    ) {
        let mut i = 0;
        while i < rows {
            let r = (rows - i).min(6);
            // SAFETY: rows i..i + r are within `x` and `out` (the caller's contract).
            unsafe {
                match r {
                    6 => block::<6>(x, i, k, panel, out),
                    5 => block::<5>(x, i, k, panel, out),
                    4 => block::<4>(x, i, k, panel, out),
                    3 => block::<3>(x, i, k, panel, out),
                    2 => block::<2>(x, i, k, panel, out),
                    _ => block::<1>(x, i, k, panel, out),
                }
            }
            i += r;
        }
    }

    /// Input rows `i..i + R` times the panel.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block<const R: usize>(x: &[f32], i: usize, k: usize, panel: &[u16], out: &mut [f32]) {
        let mut sums = [[_mm256_setzero_ps(); 2]; R];
        let w = panel.as_ptr();
        // SAFETY (all loads and stores below): the caller's contract keeps inputs
        // p < k of rows i..i + R within `x`, p × PANEL + 16 <= k × PANEL within
        // `panel`, and rows i..i + R of PANEL values within `out`.
        let xs = unsafe { x.as_ptr().add(i * k) };
        for p in 0..k {
            let (low, high) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(w.add(p * PANEL).cast::<__m128i>())),
                    _mm256_cvtph_ps(_mm_loadu_si128(w.add(p * PANEL + 8).cast::<__m128i>())),
                )
            };
            for (r, row_sums) in sums.iter_mut().enumerate() {
                let v = unsafe { _mm256_broadcast_ss(&*xs.add(r * k + p)) };
                row_sums[0] = _mm256_fmadd_ps(v, low, row_sums[0]);
                row_sums[1] = _mm256_fmadd_ps(v, high, row_sums[1]);
            }
        }
        for (r, row_sums) in sums.iter().enumerate() {
            unsafe {
                let at = out.as_mut_ptr().add((i + r) * PANEL);
                _mm256_storeu_ps(at, row_sums[0]);
                _mm256_storeu_ps(at.add(8), row_sums[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn exp_matches_the_standard_library() {
        for i in 0..=8_700 {
            let x = -(i as f32) / 100.0;
            let (got, want) = (exp_non_positive(x), f64::from(x).exp());
            assert!(
                ((f64::from(got) - want) / want).abs() < 3e-7,
                "e^{x} = {got}, not {want}"
            );
        }
        assert!(exp_non_positive(-1e6) < 2e-38);
    }

    /// The vector kernel and the plain loop agree, for row counts that do and do not
    /// divide into blocks, and a panel padded with zeros.
    #[test]
    fn products_match_a_plain_loop() {
        let k = 24;
        for (rows, outputs) in [(1, 1), (2, 16), (3, 7), (7, 16), (13, 20)] {
            let x: Vec<f32> = (0..rows * k)
                .map(|v| ((v * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let weight: Vec<u16> = (0..outputs * k)
                .map(|v| f16::from_f32(((v * 5 % 11) as f32 - 5.0) / 4.0).to_bits())
                .collect();
            let stored = panels(&weight, k);
            assert_eq!(stored.len(), outputs.div_ceil(PANEL) * PANEL * k);
            for (panel, halves) in stored.chunks_exact(k * PANEL).enumerate() {
                let mut out = vec![f32::NAN; rows * PANEL];
                products(&x, rows, k, halves, &mut out);
                for i in 0..rows {
                    for c in 0..PANEL {
                        let j = panel * PANEL + c;
                        let want: f32 = if j < outputs {
                            (0..k)
                                .map(|p| x[i * k + p] * f16::from_bits(weight[j * k + p]).to_f32())
                                .sum()
                        } else {
                            0.0
                        };
                        let got = out[i * PANEL + c];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "rows {rows} outputs {outputs}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
