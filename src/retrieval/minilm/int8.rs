//! MiniLM's forward pass, for a few texts at a time: a customer's question alone, or
//! the texts of a batch (product titles and descriptions) in small groups.
//!
//! A question is a dozen tokens, so each of the model's matrix products multiplies a
//! dozen rows by a weight matrix of up to 1,536 × 384. A general matrix product (what
//! candle runs) repacks the weights for every call and splits the work into tiles
//! made for hundreds of rows; with a dozen rows that overhead is most of the time.
//! Here each weight is read once per product and multiplied into every row while it
//! is in registers.
//!
//! The products are in 8 bits, as in the dynamic quantization of inference
//! runtimes: each weight row is stored as integers with a scale of its own (11 MB
//! for MiniLM instead of 42 MB, so that a question after a pause reads a quarter of
//! the memory), each input row is cut into 256 steps over its range before a
//! product, and the integer sums are exact, so that every kernel gives the same
//! sums. With AVX-512 VNNI one instruction multiplies and adds 64 byte pairs.
//!
//! A text alone spreads each product over the pool's threads; the groups of a batch
//! run one per thread, each pass on its own, with no padding and no hand-offs.

use std::collections::HashMap;

use anyhow::Context;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Tensor};
use rayon::prelude::*;
use serde::Deserialize;

use super::kernels::{
    PANEL, STEP, Stored, exp_non_positive, gelu_all, products, quantize, quantize_inputs,
};

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
    pub(super) fn pieces<T: Send>(
        self,
        data: &mut [T],
        size: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
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

/// `x · Wᵀ + b` with W in 8 bits, `outputs` rows of `inputs` each.
struct Linear {
    /// W's rows in the panels of [`super::kernels::Quantized::values`]: a range of
    /// [`Int8Pass::panels`].
    weight: std::ops::Range<usize>,
    /// Per output: the scale of its integers, and their sum.
    scales: Vec<f32>,
    sums: Vec<i32>,
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
pub struct Int8Pass {
    /// The encoder's matrices in 8 bits, in the panel layout of
    /// [`Linear::weight`].
    panels: Stored,
    words: Words,
    positions: Vec<f32>,
    token_types: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    eps: f32,
}

impl Int8Pass {
    /// The pass over `tensors` (a BERT checkpoint, with or without a `bert.` prefix);
    /// `None` when the model is of a kind this pass does not run (another activation,
    /// or widths that are not multiples of four).
    /// `file` is the same checkpoint mapped into memory, for the word embeddings.
    pub fn load(
        tensors: &HashMap<String, Tensor>,
        shape: &Shape,
        file: MmapedSafetensors,
    ) -> anyhow::Result<Option<Self>> {
        if shape.hidden_act != "gelu"
            || !shape.hidden_size.is_multiple_of(shape.num_attention_heads)
            || !shape.hidden_size.is_multiple_of(STEP)
            || !shape.intermediate_size.is_multiple_of(STEP)
        {
            return Ok(None);
        }
        let name_of = |name: &str| -> anyhow::Result<String> {
            [name.to_owned(), format!("bert.{name}")]
                .into_iter()
                .find(|n| tensors.contains_key(n))
                .with_context(|| format!("model.safetensors has no {name}"))
        };
        let get = |name: &str| -> anyhow::Result<&Tensor> { Ok(&tensors[&name_of(name)?]) };
        let floats = |name: &str| -> anyhow::Result<Vec<f32>> {
            Ok(get(name)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        // Every matrix's panels, one after the other.
        let mut stored: Vec<i8> = Vec::new();
        let mut linear = |names: &[&str], inputs: usize| -> anyhow::Result<Linear> {
            let mut weight = Vec::new();
            let mut bias = Vec::new();
            for name in names {
                weight.extend(floats(&format!("{name}.weight"))?);
                bias.extend(floats(&format!("{name}.bias"))?);
            }
            anyhow::ensure!(
                weight.len() == bias.len() * inputs,
                "{} is not of {inputs} columns",
                names.join(", ")
            );
            let quantized = quantize(&weight, inputs);
            let start = stored.len();
            stored.extend(quantized.values);
            Ok(Linear {
                outputs: bias.len(),
                inputs,
                weight: start..stored.len(),
                scales: quantized.scales,
                sums: quantized.sums,
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
        let panels = Stored::new(&stored);
        let words = Words::new(
            file,
            name_of("embeddings.word_embeddings.weight")?,
            tensors,
            hidden,
        )?;
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
        let words = self.words.table()?;
        let vocabulary = words.len() / h;
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
                let word = row(words, h, id as usize).context("token id out of range")?;
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

/// The word embeddings (30,522 × 384 in MiniLM, 47 MB in full precision), of which
/// a text reads one row per token.
enum Words {
    /// Read in place from the checkpoint mapped into memory: only the pages of rows
    /// that texts use are ever loaded (a server answering questions touches a few
    /// thousand of the table's 11,000 pages).
    Mapped {
        file: MmapedSafetensors,
        name: String,
    },
    /// A copy, of a checkpoint whose table is not of little-endian f32 values.
    Loaded(Vec<f32>),
}

impl Words {
    fn new(
        file: MmapedSafetensors,
        name: String,
        tensors: &HashMap<String, Tensor>,
        hidden: usize,
    ) -> anyhow::Result<Self> {
        let tensor = &tensors[&name];
        anyhow::ensure!(
            tensor.rank() == 2 && tensor.dim(1)? == hidden,
            "the word embeddings are not of {hidden} columns"
        );
        let in_place = cfg!(target_endian = "little")
            && file.get(&name).is_ok_and(|view| {
                DType::try_from(view.dtype()).is_ok_and(|d| d == DType::F32)
                    && view.shape() == tensor.dims()
                    && view.data().as_ptr().align_offset(align_of::<f32>()) == 0
            });
        Ok(if in_place {
            Words::Mapped { file, name }
        } else {
            Words::Loaded(tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
        })
    }

    /// The whole table, row after row.
    fn table(&self) -> anyhow::Result<&[f32]> {
        Ok(match self {
            Words::Mapped { file, name } => {
                let bytes = file.get(name)?.data();
                // SAFETY: checked when mapped: the bytes are f32 values in this
                // machine's byte order, aligned for f32; every bit pattern is an f32.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast(), bytes.len() / 4) }
            }
            Words::Loaded(values) => values,
        })
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
    /// `outputs`. The panels are shared out as `spread` says.
    fn apply(&self, panels: &[i8], x: &[f32], rows: usize, spread: Spread) -> Vec<f32> {
        let weight = &panels[self.weight.clone()];
        let (n, k) = (self.outputs, self.inputs);
        debug_assert_eq!(x.len(), rows * k);
        let inputs = quantize_inputs(x, k);
        // Output by panel, then by row (each task writes a contiguous run).
        let mut by_panel = vec![0i32; n.div_ceil(PANEL) * rows * PANEL];
        spread.pieces(
            &mut by_panel,
            PANELS_PER_TASK * rows * PANEL,
            |task, out| {
                for (q, out) in out.chunks_exact_mut(rows * PANEL).enumerate() {
                    let panel = task * PANELS_PER_TASK + q;
                    products(
                        &inputs.bytes,
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
            let outputs = panel * PANEL..n.min((panel + 1) * PANEL);
            let bias = &self.bias[outputs.clone()];
            let scales = &self.scales[outputs.clone()];
            let sums = &self.sums[outputs.clone()];
            for ((values, row), &(scale, zero)) in block
                .chunks_exact(PANEL)
                .zip(out.chunks_exact_mut(n))
                .zip(&inputs.rows)
            {
                // x · w = scale × (u − zero) · (w_scale × q) summed over the inputs.
                for ((((o, &v), b), w_scale), &sum) in row[outputs.clone()]
                    .iter_mut()
                    .zip(values)
                    .zip(bias)
                    .zip(scales)
                    .zip(sums)
                {
                    *o = scale * w_scale * (v - zero * sum) as f32 + b;
                }
            }
        }
        out
    }
}
