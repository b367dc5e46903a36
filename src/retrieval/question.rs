//! MiniLM's forward pass for one short text: a customer's question.
//!
//! A question is a dozen tokens, so each of the model's matrix products multiplies a
//! dozen rows by a weight matrix of up to 1,536 × 384. A general matrix product (what
//! candle runs) repacks the weights for every call and splits the work into tiles
//! made for hundreds of rows; with a dozen rows that overhead is most of the time.
//! Here each weight is read once per product, from half-precision copies (21 MB
//! instead of 42 MB, so that most of them stay in the CPU's last-level cache between
//! questions), and multiplied into every row while it is in registers.
//!
//! The batch path (candle) runs on the same weights rounded to half precision, so a
//! text embedded either way gets the same vector up to float summation order.

use std::collections::HashMap;

use anyhow::Context;
use candle_core::{DType, Tensor};
use half::f16;
use rayon::prelude::*;
use serde::Deserialize;

/// Texts of more tokens than this take the batch path, whose tiled products win
/// once there are enough rows to fill the tiles.
pub const MAX_TOKENS: usize = 64;
/// Weight rows per parallel task.
const ROWS_PER_TASK: usize = 64;

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
    weight: Vec<u16>,
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
        let linear = |names: &[&str], inputs: usize| -> anyhow::Result<Linear> {
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
            Ok(Linear {
                outputs: bias.len(),
                inputs,
                weight,
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
        let words = get("embeddings.word_embeddings.weight")?.to_dtype(DType::F32)?;
        anyhow::ensure!(
            words.rank() == 2 && words.dim(1)? == hidden,
            "the word embeddings are not of {hidden} columns"
        );
        Ok(Some(Self {
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

    /// The mean-pooled, unit-length vector of one tokenized text (no padding).
    /// Runs on the calling Rayon pool.
    pub fn embed(&self, ids: &[u32], types: &[u32]) -> anyhow::Result<Vec<f32>> {
        let h = self.hidden;
        let tokens = ids.len();
        anyhow::ensure!(tokens > 0, "no tokens to embed");
        anyhow::ensure!(
            (tokens * h) <= self.positions.len(),
            "{tokens} tokens exceed the model's positions"
        );
        let vocabulary = self.words.dim(0)?;
        let mut x = Vec::with_capacity(tokens * h);
        for (t, (&id, &kind)) in ids.iter().zip(types).enumerate() {
            anyhow::ensure!((id as usize) < vocabulary, "token id out of the vocabulary");
            let word = self.words.get(id as usize)?.to_vec1::<f32>()?;
            let kind = row(&self.token_types, h, kind as usize).context("unknown token type")?;
            let position = row(&self.positions, h, t).context("position out of range")?;
            x.extend((0..h).map(|i| word[i] + position[i] + kind[i]));
        }
        self.embedding_norm.apply(&mut x, h, self.eps);
        for layer in &self.layers {
            let qkv = layer.qkv.apply(&x, tokens);
            let context = self.attention(&qkv, tokens);
            let mut attended = layer.attention_out.apply(&context, tokens);
            attended.iter_mut().zip(&x).for_each(|(a, r)| *a += r);
            layer.attention_norm.apply(&mut attended, h, self.eps);
            let mut inner = layer.intermediate.apply(&attended, tokens);
            inner.iter_mut().for_each(|v| *v = gelu(*v));
            let mut out = layer.output.apply(&inner, tokens);
            out.iter_mut().zip(&attended).for_each(|(o, r)| *o += r);
            layer.output_norm.apply(&mut out, h, self.eps);
            x = out;
        }
        let mut mean = vec![0f32; h];
        for token in x.chunks_exact(h) {
            mean.iter_mut().zip(token).for_each(|(m, v)| *m += v);
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        // The mean's 1/tokens cancels in the normalisation.
        Ok(mean.into_iter().map(|v| v / norm).collect())
    }

    /// Scaled dot-product attention of every head over all tokens (none is padding).
    fn attention(&self, qkv: &[f32], tokens: usize) -> Vec<f32> {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut context = vec![0f32; tokens * h];
        let mut scores = vec![0f32; tokens];
        for head in 0..self.heads {
            let at = |t: usize, part: usize| {
                let start = t * 3 * h + part * h + head * d;
                &qkv[start..start + d]
            };
            for i in 0..tokens {
                let q = at(i, 0);
                for (j, score) in scores.iter_mut().enumerate() {
                    *score = dot(q, at(j, 1)) * scale;
                }
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for score in scores.iter_mut() {
                    *score = (*score - max).exp();
                    sum += *score;
                }
                let out = &mut context[i * h + head * d..i * h + (head + 1) * d];
                for (j, score) in scores.iter().enumerate() {
                    let p = score / sum;
                    out.iter_mut().zip(at(j, 2)).for_each(|(o, v)| *o += p * v);
                }
            }
        }
        context
    }
}

fn row(table: &[f32], width: usize, i: usize) -> Option<&[f32]> {
    table.get(i * width..(i + 1) * width)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// GELU with the exact error function, as BERT's `gelu`.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// The error function, by Abramowitz and Stegun's 7.1.26 (absolute error under
/// 1.5e-7, below f32's resolution of the values it is added to).
fn erf(x: f32) -> f32 {
    let sign = x.signum();
    let x = f64::from(x.abs());
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp()) as f32
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

impl Linear {
    /// `x` (`rows` × `inputs`, row-major) times the weights, plus the bias: `rows` ×
    /// `outputs`. The weight rows are shared out between the pool's threads.
    fn apply(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (n, k) = (self.outputs, self.inputs);
        debug_assert_eq!(x.len(), rows * k);
        // Output by weight row (each task writes a contiguous run), transposed below.
        let mut by_output = vec![0f32; n * rows];
        by_output
            .par_chunks_mut(ROWS_PER_TASK * rows)
            .enumerate()
            .for_each(|(task, out)| {
                let first = task * ROWS_PER_TASK;
                let count = out.len() / rows;
                let weight = &self.weight[first * k..(first + count) * k];
                products(x, rows, k, weight, out);
            });
        let mut out = vec![0f32; rows * n];
        for (j, (column, bias)) in by_output.chunks_exact(rows).zip(&self.bias).enumerate() {
            for (i, v) in column.iter().enumerate() {
                out[i * n + j] = v + bias;
            }
        }
        out
    }
}

/// `out[j × rows + i]` = row i of `x` · weight row j, for every weight row in `weight`.
fn products(x: &[f32], rows: usize, k: usize, weight: &[u16], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if k.is_multiple_of(8)
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
    {
        // SAFETY: the features the function is compiled for were detected above, and
        // its loads stay within `x` and `weight` (k is a multiple of 8).
        unsafe { simd::products(x, rows, k, weight, out) };
        return;
    }
    for (j, w) in weight.chunks_exact(k).enumerate() {
        let w: Vec<f32> = w.iter().map(|&b| f16::from_bits(b).to_f32()).collect();
        for i in 0..rows {
            out[j * rows + i] = dot(&x[i * k..(i + 1) * k], &w);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::{
        __m128i, __m256, _mm_add_ps, _mm_cvtss_f32, _mm_hadd_ps, _mm_loadu_si128,
        _mm256_castps256_ps128, _mm256_cvtph_ps, _mm256_extractf128_ps, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_setzero_ps,
    };

    /// See [`super::products`]: blocks of four weight rows by two input rows, eight
    /// sums of eight lanes each kept in registers along the whole row.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; `k` must be a multiple of 8, `x` hold
    /// `rows × k` values, `weight` whole rows of `k` and `out` `rows` per weight row.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn products(
        x: &[f32],
        rows: usize,
        k: usize,
        weight: &[u16],
        out: &mut [f32],
    ) {
        let outputs = weight.len() / k;
        assert!(x.len() >= rows * k && out.len() >= outputs * rows && k.is_multiple_of(8));
        let mut j = 0;
        while j < outputs {
            let w = (outputs - j).min(4);
            let mut i = 0;
            while i < rows {
                let r = (rows - i).min(2);
                // SAFETY: the bounds asserted above keep every load in its slice.
                unsafe {
                    match (w, r) {
                        (4, 2) => block::<4, 2>(x, i, k, weight, j, out, rows),
                        (4, 1) => block::<4, 1>(x, i, k, weight, j, out, rows),
                        (3, 2) => block::<3, 2>(x, i, k, weight, j, out, rows),
                        (3, 1) => block::<3, 1>(x, i, k, weight, j, out, rows),
                        (2, 2) => block::<2, 2>(x, i, k, weight, j, out, rows),
                        (2, 1) => block::<2, 1>(x, i, k, weight, j, out, rows),
                        (1, 2) => block::<1, 2>(x, i, k, weight, j, out, rows),
                        _ => block::<1, 1>(x, i, k, weight, j, out, rows),
                    }
                }
                i += r;
            }
            j += w;
        }
    }

    /// Weight rows `j..j + W` times input rows `i..i + R`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const W: usize, const R: usize>(
        x: &[f32],
        i: usize,
        k: usize,
        weight: &[u16],
        j: usize,
        out: &mut [f32],
        rows: usize,
    ) {
        let mut sums = [[_mm256_setzero_ps(); W]; R];
        let mut p = 0;
        while p < k {
            let mut w = [_mm256_setzero_ps(); W];
            for (a, lane) in w.iter_mut().enumerate() {
                // SAFETY: row j + a of `weight` has k halves from p (p + 8 <= k).
                *lane = _mm256_cvtph_ps(unsafe {
                    _mm_loadu_si128(weight.as_ptr().add((j + a) * k + p).cast::<__m128i>())
                });
            }
            for (b, row_sums) in sums.iter_mut().enumerate() {
                // SAFETY: row i + b of `x` has k values from p.
                let xv = unsafe { _mm256_loadu_ps(x.as_ptr().add((i + b) * k + p)) };
                for (sum, lane) in row_sums.iter_mut().zip(&w) {
                    *sum = _mm256_fmadd_ps(xv, *lane, *sum);
                }
            }
            p += 8;
        }
        for (b, row_sums) in sums.iter().enumerate() {
            for (a, sum) in row_sums.iter().enumerate() {
                out[(j + a) * rows + i + b] = horizontal_sum(*sum);
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn horizontal_sum(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_hadd_ps(pair, pair);
        _mm_cvtss_f32(_mm_hadd_ps(pair, pair))
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

    /// The vector kernel and the plain loop agree, for block sizes that do and do not
    /// divide the rows and outputs.
    #[test]
    fn products_match_a_plain_loop() {
        let k = 24;
        for (rows, outputs) in [(1, 1), (2, 4), (3, 7), (5, 9), (12, 64)] {
            let x: Vec<f32> = (0..rows * k)
                .map(|v| ((v * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let weight: Vec<u16> = (0..outputs * k)
                .map(|v| f16::from_f32(((v * 5 % 11) as f32 - 5.0) / 4.0).to_bits())
                .collect();
            let mut out = vec![0f32; outputs * rows];
            products(&x, rows, k, &weight, &mut out);
            for j in 0..outputs {
                for i in 0..rows {
                    let want: f32 = (0..k)
                        .map(|p| x[i * k + p] * f16::from_bits(weight[j * k + p]).to_f32())
                        .sum();
                    let got = out[j * rows + i];
                    assert!(
                        (got - want).abs() < 1e-4,
                        "rows {rows} outputs {outputs}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
