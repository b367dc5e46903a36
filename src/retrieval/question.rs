//! MiniLM's forward pass for one short text: a customer's question, or each short
//! text of a batch (a product title).
//!
//! A question is a dozen tokens, so each of the model's matrix products multiplies a
//! dozen rows by a weight matrix of up to 1,536 × 384. A general matrix product (what
//! candle runs) repacks the weights for every call and splits the work into tiles
//! made for hundreds of rows; with a dozen rows that overhead is most of the time.
//! Here each weight is read once per product, from half-precision copies (21 MB
//! instead of 42 MB, so that most of them stay in the CPU's last-level cache between
//! questions), and multiplied into every row while it is in registers.
//!
//! A text alone spreads each product over the pool's threads; the texts of a batch
//! run one per thread, each pass on its own, with no padding and no hand-offs.
//!
//! The batch path (candle, for texts of more than [`MAX_TOKENS`]) runs on the same
//! weights rounded to half precision, so a text embedded either way gets the same
//! vector up to float summation order.

use std::collections::HashMap;

use anyhow::Context;
use candle_core::{DType, Tensor};
use half::f16;
use rayon::prelude::*;
use serde::Deserialize;

/// Texts of more tokens than this take the batch path, whose tiled products win
/// once there are enough rows to fill the tiles.
pub const MAX_TOKENS: usize = 64;
/// Outputs per panel: the weights are stored in panels of this many rows, column
/// by column, so that a step along the input reads 16 consecutive halves.
const PANEL: usize = 16;
/// Panels per parallel task (64 outputs).
const PANELS_PER_TASK: usize = 4;

/// Where a pass runs its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// Over the calling pool's threads: a text embedded alone.
    Pool,
    /// On the calling thread: one text of many, the texts shared out between threads.
    Thread,
}

impl Spread {
    /// `f` on each `size`-long piece of `data` (and its number), in parallel or not.
    fn pieces<T: Send>(self, data: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync) {
        match self {
            Spread::Pool => data
                .par_chunks_mut(size)
                .enumerate()
                .for_each(|(i, piece)| f(i, piece)),
            Spread::Thread => data
                .chunks_mut(size)
                .enumerate()
                .for_each(|(i, piece)| f(i, piece)),
        }
    }

    /// `f` of every number below `count`, in order.
    fn map<T: Send>(self, count: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
        match self {
            Spread::Pool => (0..count).into_par_iter().map(f).collect(),
            Spread::Thread => (0..count).map(f).collect(),
        }
    }
}

/// The parts of a BERT `config.json` this pass needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Shape {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

/// `x · Wᵀ + b` with W in half precision, `outputs` rows of `inputs` each.
struct Linear {
    /// W's rows in panels of [`PANEL`] (the last padded with zeros), each panel
    /// stored input by input: `weight[(panel × inputs + p) × PANEL + c]` is
    /// W[panel × PANEL + c][p]. A range of [`QuestionPass::panels`].
    weight: std::ops::Range<usize>,
    bias: Vec<f32>,
    outputs: usize,
    inputs: usize,
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value projections, one after the other.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

/// See the module docs.
pub struct QuestionPass {
    /// The encoder's matrices in half precision, in the panel layout of
    /// [`Linear::weight`].
    panels: Halves,
    /// The word embeddings (30,522 × 384 in MiniLM): the batch model's own tensor,
    /// shared rather than copied; a question reads a dozen of its rows.
    words: Tensor,
    positions: Vec<f32>,
    token_types: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    eps: f32,
}

/// Whether a weight is one of the encoder's matrices, which both paths use rounded to
/// half precision.
pub fn is_encoder_matrix(name: &str, tensor: &Tensor) -> bool {
    name.contains("encoder.layer.") && name.ends_with(".weight") && tensor.rank() == 2
}

/// The encoder's matrices rounded to half precision (and back), in place.
pub fn round_encoder_matrices(tensors: &mut HashMap<String, Tensor>) -> anyhow::Result<()> {
    for (name, tensor) in tensors.iter_mut() {
        if is_encoder_matrix(name, tensor) {
            *tensor = tensor.to_dtype(DType::F16)?.to_dtype(DType::F32)?;
        }
    }
    Ok(())
}

impl QuestionPass {
    /// The pass over `tensors` (a BERT checkpoint, with or without a `bert.` prefix);
    /// `None` when the model is of a kind this pass does not run (another activation).
    pub fn load(tensors: &HashMap<String, Tensor>, shape: &Shape) -> anyhow::Result<Option<Self>> {
        if shape.hidden_act != "gelu"
            || !shape.hidden_size.is_multiple_of(shape.num_attention_heads)
        {
            return Ok(None);
        }
        let get = |name: &str| -> anyhow::Result<&Tensor> {
            tensors
                .get(name)
                .or_else(|| tensors.get(&format!("bert.{name}")))
                .with_context(|| format!("model.safetensors has no {name}"))
        };
        let floats = |name: &str| -> anyhow::Result<Vec<f32>> {
            Ok(get(name)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        let halves = |name: &str| -> anyhow::Result<Vec<u16>> {
            Ok(get(name)?
                .to_dtype(DType::F16)?
                .flatten_all()?
                .to_vec1::<f16>()?
                .into_iter()
                .map(f16::to_bits)
                .collect())
        };
        // Every matrix's panels, one after the other.
        let mut stored: Vec<u16> = Vec::new();
        let mut linear = |names: &[&str], inputs: usize| -> anyhow::Result<Linear> {
            let mut weight = Vec::new();
            let mut bias = Vec::new();
            for name in names {
                weight.extend(halves(&format!("{name}.weight"))?);
                bias.extend(floats(&format!("{name}.bias"))?);
            }
            anyhow::ensure!(
                weight.len() == bias.len() * inputs,
                "{} is not of {inputs} columns",
                names.join(", ")
            );
            let start = stored.len();
            stored.extend(panels(&weight, inputs));
            Ok(Linear {
                outputs: bias.len(),
                inputs,
                weight: start..stored.len(),
                bias,
            })
        };
        let norm = |name: &str| -> anyhow::Result<Norm> {
            Ok(Norm {
                weight: floats(&format!("{name}.weight"))?,
                bias: floats(&format!("{name}.bias"))?,
            })
        };
        let hidden = shape.hidden_size;
        let mut layers = Vec::with_capacity(shape.num_hidden_layers);
        for i in 0..shape.num_hidden_layers {
            let at = |part: &str| format!("encoder.layer.{i}.{part}");
            layers.push(Layer {
                qkv: linear(
                    &[
                        &at("attention.self.query"),
                        &at("attention.self.key"),
                        &at("attention.self.value"),
                    ],
                    hidden,
                )?,
                attention_out: linear(&[&at("attention.output.dense")], hidden)?,
                attention_norm: norm(&at("attention.output.LayerNorm"))?,
                intermediate: linear(&[&at("intermediate.dense")], hidden)?,
                output: linear(&[&at("output.dense")], shape.intermediate_size)?,
                output_norm: norm(&at("output.LayerNorm"))?,
            });
        }
        let panels = Halves::new(&stored);
        let words = get("embeddings.word_embeddings.weight")?.to_dtype(DType::F32)?;
        anyhow::ensure!(
            words.rank() == 2 && words.dim(1)? == hidden,
            "the word embeddings are not of {hidden} columns"
        );
        Ok(Some(Self {
            panels,
            words,
            positions: floats("embeddings.position_embeddings.weight")?,
            token_types: floats("embeddings.token_type_embeddings.weight")?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            hidden,
            heads: shape.num_attention_heads,
            eps: shape.layer_norm_eps as f32,
        }))
    }

    /// The vectors of several tokenized texts (ids and token types each), passed
    /// through the model together: their rows are stacked for the matrix products,
    /// so that each weight read serves them all, and each attends only to itself.
    pub fn embed_many(
        &self,
        texts: &[(&[u32], &[u32])],
        spread: Spread,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let vocabulary = self.words.dim(0)?;
        let rows: usize = texts.iter().map(|(ids, _)| ids.len()).sum();
        let mut x = Vec::with_capacity(rows * h);
        let mut spans = Vec::with_capacity(texts.len());
        for (ids, types) in texts {
            let tokens = ids.len();
            anyhow::ensure!(tokens > 0, "no tokens to embed");
            anyhow::ensure!(
                (tokens * h) <= self.positions.len(),
                "{tokens} tokens exceed the model's positions"
            );
            spans.push(x.len() / h..x.len() / h + tokens);
            for (t, (&id, &kind)) in ids.iter().zip(*types).enumerate() {
                anyhow::ensure!((id as usize) < vocabulary, "token id out of the vocabulary");
                let word = self.words.get(id as usize)?.to_vec1::<f32>()?;
                let kind =
                    row(&self.token_types, h, kind as usize).context("unknown token type")?;
                let position = row(&self.positions, h, t).context("position out of range")?;
                x.extend((0..h).map(|i| word[i] + position[i] + kind[i]));
            }
        }
        self.embedding_norm.apply(&mut x, h, self.eps);
        for layer in &self.layers {
            let qkv = layer.qkv.apply(&self.panels, &x, rows, spread);
            let mut context = Vec::with_capacity(rows * h);
            for span in &spans {
                let own = &qkv[span.start * 3 * h..span.end * 3 * h];
                context.extend(self.attention(own, span.len(), spread));
            }
            let mut attended = layer
                .attention_out
                .apply(&self.panels, &context, rows, spread);
            attended.iter_mut().zip(&x).for_each(|(a, r)| *a += r);
            layer.attention_norm.apply(&mut attended, h, self.eps);
            let mut inner = layer
                .intermediate
                .apply(&self.panels, &attended, rows, spread);
            gelu_all(&mut inner, spread);
            let mut out = layer.output.apply(&self.panels, &inner, rows, spread);
            out.iter_mut().zip(&attended).for_each(|(o, r)| *o += r);
            layer.output_norm.apply(&mut out, h, self.eps);
            x = out;
        }
        Ok(spans
            .into_iter()
            .map(|span| {
                let mut mean = vec![0f32; h];
                for token in x[span.start * h..span.end * h].chunks_exact(h) {
                    mean.iter_mut().zip(token).for_each(|(m, v)| *m += v);
                }
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                // The mean's 1/tokens cancels in the normalisation.
                mean.into_iter().map(|v| v / norm).collect()
            })
            .collect())
    }

    /// Scaled dot-product attention of every head over all tokens (none is padding).
    /// The heads are shared out as `spread` says.
    fn attention(&self, qkv: &[f32], tokens: usize, spread: Spread) -> Vec<f32> {
        let h = self.hidden;
        let d = h / self.heads;
        let by_head: Vec<Vec<f32>> = spread.map(self.heads, |head| {
            let head = Head {
                qkv,
                tokens,
                hidden: h,
                width: d,
                first: head * d,
            };
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: the features the function is compiled for were detected above.
                return unsafe { head.attend_avx2() };
            }
            head.attend()
        });
        let mut context = vec![0f32; tokens * h];
        for (head, values) in by_head.iter().enumerate() {
            for (row, token) in values.chunks_exact(d).zip(context.chunks_exact_mut(h)) {
                token[head * d..(head + 1) * d].copy_from_slice(row);
            }
        }
        context
    }
}

/// One attention head's view of the query, key and value rows of a text.
struct Head<'a> {
    qkv: &'a [f32],
    tokens: usize,
    hidden: usize,
    /// Values per head, and where this head's begin in a query, key or value row.
    width: usize,
    first: usize,
}

impl Head<'_> {
    /// Row `t` of the queries (`part` 0), keys (1) or values (2).
    #[inline(always)]
    fn at(&self, t: usize, part: usize) -> &[f32] {
        let start = t * 3 * self.hidden + part * self.hidden + self.first;
        &self.qkv[start..start + self.width]
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn attend_avx2(&self) -> Vec<f32> {
        self.attend()
    }

    /// The head's output, `tokens` rows of `width`. The keys are transposed first
    /// (and scaled), so that a query's scores against all of them are built one
    /// input at a time over contiguous memory, in loops the compiler vectorises.
    #[inline(always)]
    fn attend(&self) -> Vec<f32> {
        let (tokens, d) = (self.tokens, self.width);
        let scale = 1.0 / (d as f32).sqrt();
        let mut keys = vec![0f32; d * tokens];
        for j in 0..tokens {
            for (p, &v) in self.at(j, 1).iter().enumerate() {
                keys[p * tokens + j] = v * scale;
            }
        }
        let mut context = vec![0f32; tokens * d];
        let mut scores = vec![0f32; tokens];
        for (i, out) in context.chunks_exact_mut(d).enumerate() {
            scores.fill(0.0);
            for (&q, row) in self.at(i, 0).iter().zip(keys.chunks_exact(tokens)) {
                scores.iter_mut().zip(row).for_each(|(s, k)| *s += q * k);
            }
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            scores
                .iter_mut()
                .for_each(|s| *s = exp_non_positive(*s - max));
            let inverse = 1.0 / scores.iter().sum::<f32>();
            for (j, score) in scores.iter().enumerate() {
                let p = score * inverse;
                out.iter_mut()
                    .zip(self.at(j, 2))
                    .for_each(|(o, v)| *o += p * v);
            }
        }
        context
    }
}

fn row(table: &[f32], width: usize, i: usize) -> Option<&[f32]> {
    table.get(i * width..(i + 1) * width)
}

/// GELU with the exact error function, as BERT's `gelu`, over every value; in
/// pieces spread as `spread` says, each a loop the compiler turns into vector
/// instructions.
fn gelu_all(values: &mut [f32], spread: Spread) {
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
fn exp_non_positive(x: f32) -> f32 {
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

impl Norm {
    /// Layer normalisation of each row of `width` values, in place.
    fn apply(&self, x: &mut [f32], width: usize, eps: f32) {
        for row in x.chunks_exact_mut(width) {
            let mean = row.iter().sum::<f32>() / width as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

/// Half-precision values in memory of their own, aligned to 2 MiB and, on Linux,
/// marked for transparent huge pages: the 21 MB of MiniLM's matrices then take a
/// dozen TLB entries instead of five thousand, which a pass reading all of them
/// (often from main memory, when a question comes after a pause) feels.
struct Halves {
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

    fn new(values: &[u16]) -> Self {
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

/// Row-major weight rows of `k` halves in the panel layout of [`Linear::weight`].
fn panels(weight: &[u16], k: usize) -> Vec<u16> {
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

impl Linear {
    /// `x` (`rows` × `inputs`, row-major) times the weights, plus the bias: `rows` ×
    /// `outputs`. The panels are shared out as `spread` says.
    fn apply(&self, panels: &[u16], x: &[f32], rows: usize, spread: Spread) -> Vec<f32> {
        let weight = &panels[self.weight.clone()];
        let (n, k) = (self.outputs, self.inputs);
        debug_assert_eq!(x.len(), rows * k);
        // Output by panel, then by row (each task writes a contiguous run).
        let mut by_panel = vec![0f32; n.div_ceil(PANEL) * rows * PANEL];
        spread.pieces(
            &mut by_panel,
            PANELS_PER_TASK * rows * PANEL,
            |task, out| {
                for (q, out) in out.chunks_exact_mut(rows * PANEL).enumerate() {
                    let panel = task * PANELS_PER_TASK + q;
                    products(
                        x,
                        rows,
                        k,
                        &weight[panel * k * PANEL..(panel + 1) * k * PANEL],
                        out,
                    );
                }
            },
        );
        let mut out = vec![0f32; rows * n];
        for (panel, block) in by_panel.chunks_exact(rows * PANEL).enumerate() {
            let first = panel * PANEL;
            let count = PANEL.min(n - first);
            let bias = &self.bias[first..first + count];
            for (values, row) in block.chunks_exact(PANEL).zip(out.chunks_exact_mut(n)) {
                for ((o, v), b) in row[first..first + count].iter_mut().zip(values).zip(bias) {
                    *o = v + b;
                }
            }
        }
        out
    }
}

/// `out[i × PANEL + c]` = row i of `x` · output c of `panel` (one panel of
/// [`Linear::weight`], `k` × [`PANEL`] halves).
fn products(x: &[f32], rows: usize, k: usize, panel: &[u16], out: &mut [f32]) {
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
