//! The numeric pieces of the single-text pass: weights and inputs in 8 bits, the
//! matrix-product kernels over them (exact integer sums), and GELU with a
//! branch-free `exp`.

use super::int8::Spread;

/// Outputs per panel: the weights are stored in panels of this many rows, so that a
/// step along the input reads the weights of 16 outputs together.
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

/// Weights in memory of their own, aligned to 2 MiB and, on Linux, marked for
/// transparent huge pages: the 11 MB of MiniLM's matrices then take a handful of
/// TLB entries instead of almost three thousand, which a pass reading all of them
/// (often from main memory, when a question comes after a pause) feels.
pub(super) struct Stored {
    start: std::ptr::NonNull<i8>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: `Stored` owns its memory and hands out only shared slices of it.
unsafe impl Send for Stored {}
// SAFETY: as above; nothing writes through `&Stored`.
unsafe impl Sync for Stored {}

impl Stored {
    const HUGE_PAGE: usize = 2 << 20;

    pub(super) fn new(values: &[i8]) -> Self {
        let bytes = values.len().next_multiple_of(Self::HUGE_PAGE);
        let layout =
            std::alloc::Layout::from_size_align(bytes.max(Self::HUGE_PAGE), Self::HUGE_PAGE)
                .expect("a 2 MiB-aligned layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(start) = std::ptr::NonNull::new(raw.cast::<i8>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        // Before the first write, so that the pages are faulted in huge where the
        // kernel can; a refusal only leaves them small.
        #[cfg(target_os = "linux")]
        // SAFETY: the range is the allocation just made.
        unsafe {
            libc::madvise(raw.cast(), layout.size(), libc::MADV_HUGEPAGE);
        }
        // SAFETY: the allocation holds at least `values.len()` bytes and does not
        // overlap `values`.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), start.as_ptr(), values.len()) };
        Self {
            start,
            len: values.len(),
            layout,
        }
    }
}

impl std::ops::Deref for Stored {
    type Target = [i8];

    fn deref(&self) -> &[i8] {
        // SAFETY: the first `len` bytes were written in `new` and live until drop.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl Drop for Stored {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.start.as_ptr().cast(), self.layout) };
    }
}

/// Inputs per step of the products: an output's weights are stored four inputs
/// together, the four bytes one 32-bit lane of the vector instructions takes.
pub(super) const STEP: usize = 4;

/// A weight matrix in 8 bits: row-major rows of `k` inputs (a multiple of
/// [`STEP`]), each row rounded to integers of at most 127 in size after division
/// by its own scale (its largest weight's size over 127).
pub(super) struct Quantized {
    /// The panel layout of `Linear::weight`: [`PANEL`] outputs at a time, the
    /// last panel padded with zeros, each panel [`STEP`] inputs at a time, and
    /// those output by output: `values[((panel × k / STEP + g) × PANEL + c) ×
    /// STEP + t]` is row `panel × PANEL + c`, input `g × STEP + t`.
    pub values: Vec<i8>,
    /// Per output: the scale its integers are multiplied by.
    pub scales: Vec<f32>,
    /// Per output: the sum of its integers (which the offset of the inputs'
    /// 8-bit form multiplies).
    pub sums: Vec<i32>,
}

/// `weight` (rows of `k` values) in 8 bits, in panels.
pub(super) fn quantize(weight: &[f32], k: usize) -> Quantized {
    assert!(k.is_multiple_of(STEP) && weight.len().is_multiple_of(k));
    let outputs = weight.len() / k;
    let mut values = vec![0i8; outputs.div_ceil(PANEL) * PANEL * k];
    let mut scales = Vec::with_capacity(outputs);
    let mut sums = Vec::with_capacity(outputs);
    for (j, w) in weight.chunks_exact(k).enumerate() {
        let largest = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
        let (panel, c) = (j / PANEL, j % PANEL);
        let mut sum = 0i32;
        for (p, &v) in w.iter().enumerate() {
            let q = (v / scale).round().clamp(-127.0, 127.0) as i8;
            sum += i32::from(q);
            let (g, t) = (p / STEP, p % STEP);
            values[((panel * (k / STEP) + g) * PANEL + c) * STEP + t] = q;
        }
        scales.push(scale);
        sums.push(sum);
    }
    Quantized {
        values,
        scales,
        sums,
    }
}

/// Rows of inputs in 8 bits, as the products take them: each row's values `x`
/// are `scale × (u − zero)` for bytes `u`, the row's range (zero included) cut
/// into 255 steps.
pub(super) struct Inputs {
    pub bytes: Vec<u8>,
    /// Per row: (scale, zero).
    pub rows: Vec<(f32, i32)>,
}

/// `x` (rows of `k` values) in 8 bits.
pub(super) fn quantize_inputs(x: &[f32], k: usize) -> Inputs {
    let mut bytes = Vec::with_capacity(x.len());
    let mut rows = Vec::with_capacity(x.len() / k);
    for row in x.chunks_exact(k) {
        let (low, high) = row
            .iter()
            .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
        let scale = if high > low {
            (high - low) / 255.0
        } else {
            1.0
        };
        let inverse = 1.0 / scale;
        let zero = (-low * inverse).round().clamp(0.0, 255.0);
        bytes.extend(
            row.iter()
                .map(|&v| (v * inverse + zero).round().clamp(0.0, 255.0) as u8),
        );
        rows.push((scale, zero as i32));
    }
    Inputs { bytes, rows }
}

/// `out[i × PANEL + c]` = Σ over inputs p of `x[i × k + p]` × the weight of output
/// c of `panel` (one panel of a [`Quantized`], `k` × [`PANEL`] bytes) for input p,
/// exactly, in 32-bit integers: whichever kernel runs, the sums are the same.
pub(super) fn products(x: &[u8], rows: usize, k: usize, panel: &[i8], out: &mut [i32]) {
    assert!(
        k.is_multiple_of(STEP)
            && x.len() >= rows * k
            && panel.len() >= k * PANEL
            && out.len() >= rows * PANEL
    );
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
    {
        // SAFETY: the features the function is compiled for were detected above, and
        // the lengths it reads and writes were asserted.
        unsafe { vnni::products(x, rows, k, panel, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the feature the function is compiled for was detected above.
        unsafe { products_avx2(x, rows, k, panel, out) };
        return;
    }
    products_plain(x, rows, k, panel, out);
}

/// [`products_plain`] compiled for AVX2, which the compiler vectorises with
/// 16-bit multiplications summed in pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn products_avx2(x: &[u8], rows: usize, k: usize, panel: &[i8], out: &mut [i32]) {
    products_plain(x, rows, k, panel, out);
}

#[inline(always)]
fn products_plain(x: &[u8], rows: usize, k: usize, panel: &[i8], out: &mut [i32]) {
    let panel = &panel[..k * PANEL];
    for (i, sums) in out.chunks_exact_mut(PANEL).take(rows).enumerate() {
        let mut acc = [0i32; PANEL];
        for (inputs, weights) in x[i * k..(i + 1) * k]
            .chunks_exact(STEP)
            .zip(panel.chunks_exact(STEP * PANEL))
        {
            for (a, w) in acc.iter_mut().zip(weights.chunks_exact(STEP)) {
                for t in 0..STEP {
                    *a += i32::from(inputs[t]) * i32::from(w[t]);
                }
            }
        }
        sums.copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::{
        __m512i, _MM_HINT_T0, _mm_prefetch, _mm512_dpbusd_epi32, _mm512_loadu_si512,
        _mm512_set1_epi32, _mm512_setzero_si512, _mm512_storeu_si512,
    };

    use super::{PANEL, STEP};

    /// Most input rows a block keeps sums of in registers (one 16-lane register
    /// each, of the 32 there are).
    const BLOCK: usize = 16;

    /// How far ahead of the step it multiplies a block asks for the weights
    /// (bytes). A question after a pause finds them in main memory; asked for
    /// early, more of them are on their way at once (measured on a 2-core Xeon: a
    /// pass's products 20 ms after the last ones took 1.15 ms instead of 1.78).
    const AHEAD: usize = 1024;

    /// See [`super::products`]: blocks of up to [`BLOCK`] rows by the panel's 16
    /// outputs; each step loads 64 weight bytes (4 inputs of every output) once and
    /// multiplies them into every row's four input bytes with one instruction.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI; `k` must be a multiple of
    /// [`STEP`], `x` hold `rows × k` bytes, `panel` `k × PANEL` and `out` `rows ×
    /// PANEL` values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn products(x: &[u8], rows: usize, k: usize, panel: &[i8], out: &mut [i32]) {
        macro_rules! blocks {
            ($i:expr, $r:expr, $($n:literal)*) => {
                match $r {
                    // SAFETY: rows i..i + r are within `x` and `out` (the caller's
                    // contract).
                    $($n => unsafe { block::<$n>(x, $i, k, panel, out) },)*
                    _ => unreachable!("a block of 1 to {BLOCK} rows"),
                }
            };
        }
        let mut i = 0;
        while i < rows {
            let r = (rows - i).min(BLOCK);
            blocks!(i, r, 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
            i += r;
        }
    }

    /// Input rows `i..i + R` times the panel.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn block<const R: usize>(x: &[u8], i: usize, k: usize, panel: &[i8], out: &mut [i32]) {
        let mut sums: [__m512i; R] = [_mm512_setzero_si512(); R];
        let w = panel.as_ptr();
        // SAFETY (all loads and stores below): the caller's contract keeps the
        // inputs g × STEP..g × STEP + 4 of rows i..i + R within `x`, the 64 bytes
        // at g × STEP × PANEL within `panel`, and rows i..i + R of PANEL values
        // within `out`.
        let xs = unsafe { x.as_ptr().add(i * k) };
        for g in 0..k / STEP {
            // A prefetch never faults, so it may point past the panel (the address
            // is formed without `add`'s in-bounds requirement).
            _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(g * STEP * PANEL + AHEAD).cast());
            let weights = unsafe { _mm512_loadu_si512(w.add(g * STEP * PANEL).cast()) };
            for (r, row_sums) in sums.iter_mut().enumerate() {
                let four = unsafe { xs.add(r * k + g * STEP).cast::<i32>().read_unaligned() };
                *row_sums = _mm512_dpbusd_epi32(*row_sums, _mm512_set1_epi32(four), weights);
            }
        }
        for (r, row_sums) in sums.iter().enumerate() {
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add((i + r) * PANEL).cast(), *row_sums) };
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

    /// Small integers of a fixed pseudo-random sequence.
    fn sequence(n: usize, seed: usize, modulus: usize) -> impl Iterator<Item = usize> {
        (0..n).map(move |v| (v * 7919 + seed * 104_729) % modulus)
    }

    /// Whichever kernel runs, the sums are exactly the plain loop's and those of
    /// the unpanelled weights, for row counts that do and do not fill a block and
    /// a last panel padded with zeros.
    #[test]
    fn products_are_exact_integer_sums() {
        let k = 24;
        for (rows, outputs) in [(1, 1), (2, 16), (3, 7), (16, 16), (17, 20), (40, 33)] {
            let x: Vec<u8> = sequence(rows * k, 1, 256).map(|v| v as u8).collect();
            // Row-major weights in -127..=127 (`want` rounds them as `quantize` does).
            let weight: Vec<f32> = sequence(outputs * k, 2, 255)
                .map(|v| v as f32 - 127.0)
                .collect();
            let stored = quantize(&weight, k);
            assert_eq!(stored.values.len(), outputs.div_ceil(PANEL) * PANEL * k);
            for (panel, values) in stored.values.chunks_exact(k * PANEL).enumerate() {
                let mut out = vec![i32::MIN; rows * PANEL];
                products(&x, rows, k, values, &mut out);
                let mut plain = vec![i32::MIN; rows * PANEL];
                products_plain(&x, rows, k, values, &mut plain);
                assert_eq!(out, plain, "rows {rows} outputs {outputs}");
                for i in 0..rows {
                    for c in 0..PANEL {
                        let j = panel * PANEL + c;
                        let want: i32 = if j < outputs {
                            let scale = stored.scales[j];
                            (0..k)
                                .map(|p| {
                                    let w = (weight[j * k + p] / scale).round() as i32;
                                    i32::from(x[i * k + p]) * w
                                })
                                .sum()
                        } else {
                            0
                        };
                        assert_eq!(out[i * PANEL + c], want, "rows {rows} outputs {outputs}");
                    }
                }
            }
        }
    }

    /// Weights and inputs in 8 bits, with the scales and offsets applied as the
    /// pass applies them, give the real products within a small part of their size.
    #[test]
    fn quantized_products_approximate_the_real_ones() {
        let (rows, k, outputs) = (5, 384, 48);
        let x: Vec<f32> = sequence(rows * k, 3, 2001)
            .map(|v| (v as f32 - 700.0) / 300.0)
            .collect();
        let weight: Vec<f32> = sequence(outputs * k, 4, 1999)
            .map(|v| (v as f32 - 999.0) / 9000.0)
            .collect();
        let stored = quantize(&weight, k);
        let inputs = quantize_inputs(&x, k);
        for (i, &(scale, zero)) in inputs.rows.iter().enumerate() {
            for (panel, values) in stored.values.chunks_exact(k * PANEL).enumerate() {
                let mut out = vec![0; rows * PANEL];
                products(&inputs.bytes, rows, k, values, &mut out);
                for c in 0..PANEL {
                    let j = panel * PANEL + c;
                    let got = scale
                        * stored.scales[j]
                        * (out[i * PANEL + c] - zero * stored.sums[j]) as f32;
                    let row = &x[i * k..(i + 1) * k];
                    let w = &weight[j * k..(j + 1) * k];
                    let want: f32 = row.iter().zip(w).map(|(a, b)| a * b).sum();
                    let size: f32 = row.iter().zip(w).map(|(a, b)| (a * b).abs()).sum();
                    assert!(
                        (got - want).abs() < 0.01 * size,
                        "row {i} output {j}: {got} vs {want} (size {size})"
                    );
                }
            }
        }
    }

    /// An input row's bytes span its range with zero exactly representable.
    #[test]
    fn inputs_take_the_whole_byte_range() {
        let inputs = quantize_inputs(&[-1.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0], 4);
        let (scale, zero) = inputs.rows[0];
        assert_eq!(inputs.bytes[..4], [0, zero as u8, 255, zero as u8]);
        assert!((scale - 4.0 / 255.0).abs() < 1e-7);
        // A row of zeros is all `zero`, whatever its scale.
        let (_, zero) = inputs.rows[1];
        assert!(inputs.bytes[4..].iter().all(|&b| i32::from(b) == zero));
    }
}
