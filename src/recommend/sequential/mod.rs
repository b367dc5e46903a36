//! The sequential model: a gSASRec-style transformer over each customer's products in
//! the order they were bought, trained with candle on the CPU.
//!
//! A customer's last `max_len` products (oldest first) go through item and position
//! embeddings, `blocks` pre-norm blocks of causal self-attention and a feed-forward
//! layer; the output at each position is scored against item embeddings (the same
//! table as the input) by inner product, so the customer's state is one vector and the
//! items are vectors of the same space (served from a FAISS index).
//!
//! Training predicts every next product of every sequence against `negatives`
//! products drawn uniformly per sequence, with the gBCE loss: the positive's
//! log-sigmoid weighted by `β = α·(t·(1 − 1/α) + 1/α)`, `α` the share of items
//! sampled and `t` the calibration, which corrects the overconfidence that plain BCE
//! with sampled negatives learns. Every random draw (initial weights, order, negatives,
//! dropout) comes from one seeded generator.
//!
//! A new purchase or click changes a customer's vector at once: the vector is the
//! model applied to the recent items, and no retraining is needed.
//!
//! The item vectors sit in a FAISS index (exact up to [`HNSW_FROM`] items, HNSW
//! above): a customer's state finds the model's best [`CANDIDATES`] items there, and
//! only those carry its signal into the fusion, in the offline evaluation as in
//! serving.

use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor};
use rand::Rng;
use rand::rngs::StdRng;

use crate::retrieval::faiss_index::{IndexKind, VectorIndex};

mod training;

/// Items the model proposes per customer (its signal is zero for the others).
pub const CANDIDATES: usize = 500;
/// Catalogs of this many items and more are searched with HNSW rather than exactly.
pub const HNSW_FROM: usize = 50_000;

/// How the sequential model is shaped and trained.
#[derive(Clone, Debug, PartialEq)]
pub struct SequentialSettings {
    /// Width of the item vectors and of the transformer.
    pub dim: usize,
    pub blocks: usize,
    pub heads: usize,
    /// The most recent products a customer's state is computed from.
    pub max_len: usize,
    /// Negatives drawn per sequence and training step.
    pub negatives: usize,
    /// gBCE's calibration `t` (0: plain BCE; 1: fully calibrated).
    pub calibration: f32,
    pub epochs: usize,
    /// Training steps taken at least (more epochs than `epochs` when the data is
    /// small), within `max_seconds`.
    pub min_steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub dropout: f32,
    pub seed: u64,
    /// Training ends after the epoch that reaches this many seconds.
    pub max_seconds: f64,
}

impl Default for SequentialSettings {
    fn default() -> Self {
        Self {
            dim: 64,
            blocks: 2,
            heads: 1,
            max_len: 50,
            negatives: 128,
            calibration: 0.75,
            epochs: 40,
            min_steps: 400,
            batch: 32,
            learning_rate: 5e-3,
            dropout: 0.2,
            seed: 29,
            max_seconds: 600.0,
        }
    }
}

/// How a training went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingLog {
    pub epochs: usize,
    pub seconds: f64,
    /// The mean loss of each epoch.
    pub losses: Vec<f32>,
}

/// Tensors per block: two norms (weight, bias), q, k, v, output, feed-forward in and out
/// (weight, bias).
const PER_BLOCK: usize = 12;
/// Tensors before the blocks: items, positions, final norm (weight, bias).
const HEAD: usize = 4;

/// A trained sequential model.
#[derive(Clone)]
pub struct Sequential {
    /// Items of the dataset's numbering; row `i + 1` of the item table is item `i`
    /// (row 0 is padding).
    pub items: usize,
    pub dim: usize,
    pub blocks: usize,
    pub heads: usize,
    pub max_len: usize,
    /// Every tensor, in the fixed order `HEAD` then `PER_BLOCK` per block.
    params: Vec<Tensor>,
    /// The item vectors, keyed by item.
    index: Option<Arc<VectorIndex>>,
    pub log: TrainingLog,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("items", &self.items)
            .field("dim", &self.dim)
            .field("blocks", &self.blocks)
            .field("heads", &self.heads)
            .field("max_len", &self.max_len)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// Dropout from the training's own generator (none at inference).
struct Dropout<'a> {
    p: f32,
    rng: Option<&'a mut StdRng>,
}

impl Dropout<'_> {
    fn apply(&mut self, x: &Tensor) -> candle_core::Result<Tensor> {
        let Some(rng) = self.rng.as_deref_mut() else {
            return Ok(x.clone());
        };
        if self.p <= 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rng.random::<f32>() < self.p {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)
    }
}

fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::layer_norm_slow(x, weight, bias, 1e-6)
}

/// `x · w` over the last dimension of a `(b, l, in)` tensor.
fn dense(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let (b, l, n) = x.dims3()?;
    let out = w.dim(1)?;
    x.reshape((b * l, n))?.matmul(w)?.reshape((b, l, out))
}

/// `(rows, cols)` values drawn from a normal of deviation `std`.
fn normal(rng: &mut StdRng, rows: usize, cols: usize, std: f32) -> Vec<f32> {
    (0..rows * cols)
        .map(|_| {
            // Box–Muller from two uniforms.
            let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
            let u2: f32 = rng.random();
            std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}

impl Sequential {
    fn fresh(items: usize, s: &SequentialSettings, rng: &mut StdRng) -> candle_core::Result<Self> {
        let d = s.dim;
        let dev = Device::Cpu;
        let matrix = |rng: &mut StdRng, rows: usize, cols: usize, std: f32| {
            Tensor::from_vec(normal(rng, rows, cols, std), (rows, cols), &dev)
        };
        let ones = || Tensor::ones(d, DType::F32, &dev);
        let zeros = || Tensor::zeros(d, DType::F32, &dev);
        let std = (1.0 / d as f32).sqrt();
        let mut params = vec![
            matrix(rng, items + 1, d, std)?,
            matrix(rng, s.max_len, d, std)?,
            ones()?,
            zeros()?,
        ];
        for _ in 0..s.blocks {
            params.extend([
                ones()?,
                zeros()?,
                matrix(rng, d, d, std)?,
                matrix(rng, d, d, std)?,
                matrix(rng, d, d, std)?,
                matrix(rng, d, d, std)?,
                ones()?,
                zeros()?,
                matrix(rng, d, d, std)?,
                zeros()?,
                matrix(rng, d, d, std)?,
                zeros()?,
            ]);
        }
        Ok(Self {
            items,
            dim: d,
            blocks: s.blocks,
            heads: s.heads,
            max_len: s.max_len,
            params,
            index: None,
            log: TrainingLog::default(),
        })
    }

    /// Puts the item vectors in a FAISS index.
    fn indexed(mut self) -> candle_core::Result<Self> {
        let vectors = self.item_vectors()?;
        let keys: Vec<i64> = (0..self.items as i64).collect();
        let index = VectorIndex::new(IndexKind::for_size(self.items, HNSW_FROM), self.dim)
            .and_then(|index| index.upsert(&keys, &vectors).map(|_| index))
            .map_err(|err| candle_core::Error::Msg(format!("FAISS index: {err:#}")))?;
        self.index = Some(Arc::new(index));
        Ok(self)
    }

    fn item_table(&self) -> &Tensor {
        &self.params[0]
    }

    /// The hidden state at every position of `ids` (`(b, l)`, left-padded with 0),
    /// `(b, l, dim)`.
    fn encode(&self, ids: &Tensor, drop: &mut Dropout<'_>) -> candle_core::Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let (d, h) = (self.dim, self.heads);
        let dh = d / h;
        let dev = ids.device();
        let valid = ids.ne(0u32)?.to_dtype(DType::F32)?.reshape((b, l, 1))?;
        let p = &self.params;
        // Positions count back from the most recent item.
        let positions = p[1].narrow(0, self.max_len - l, l)?;
        let mut x = p[0]
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, l, d))?
            .affine((d as f64).sqrt(), 0.0)?
            .broadcast_add(&positions)?;
        x = drop.apply(&x)?.broadcast_mul(&valid)?;
        let causal: Vec<f32> = (0..l)
            .flat_map(|q| (0..l).map(move |k| if k > q { -1e9 } else { 0.0 }))
            .collect();
        let causal = Tensor::from_vec(causal, (l, l), dev)?;
        let padding = valid.affine(1e9, -1e9)?.reshape((b, 1, 1, l))?;
        let scale = 1.0 / (dh as f64).sqrt();
        for block in 0..self.blocks {
            let w = &p[HEAD + block * PER_BLOCK..HEAD + (block + 1) * PER_BLOCK];
            let y = layer_norm(&x, &w[0], &w[1])?;
            let split = |t: Tensor| -> candle_core::Result<Tensor> {
                t.reshape((b, l, h, dh))?.transpose(1, 2)?.contiguous()
            };
            let q = split(dense(&y, &w[2])?)?;
            let k = split(dense(&y, &w[3])?)?;
            let v = split(dense(&y, &w[4])?)?;
            let attention = q
                .matmul(&k.transpose(2, 3)?.contiguous()?)?
                .affine(scale, 0.0)?
                .broadcast_add(&causal)?
                .broadcast_add(&padding)?;
            let attention = drop.apply(&candle_nn::ops::softmax(&attention, D::Minus1)?)?;
            let mixed = attention
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, l, d))?;
            x = (x + drop.apply(&dense(&mixed, &w[5])?)?)?;
            let y = layer_norm(&x, &w[6], &w[7])?;
            let inner = dense(&y, &w[8])?.broadcast_add(&w[9])?.relu()?;
            let inner = drop.apply(&inner)?;
            let out = dense(&inner, &w[10])?.broadcast_add(&w[11])?;
            x = (x + drop.apply(&out)?)?.broadcast_mul(&valid)?;
        }
        layer_norm(&x, &p[2], &p[3])
    }

    /// The customer state after `sequence` (items oldest first; unknown items are
    /// skipped), or `None` when no item is known.
    pub fn state(&self, sequence: &[u32]) -> candle_core::Result<Option<Vec<f32>>> {
        let known: Vec<u32> = sequence
            .iter()
            .filter(|&&i| (i as usize) < self.items)
            .map(|&i| i + 1)
            .collect();
        if known.is_empty() {
            return Ok(None);
        }
        let recent = &known[known.len().saturating_sub(self.max_len)..];
        let l = recent.len();
        let ids = Tensor::from_vec(recent.to_vec(), (1, l), &Device::Cpu)?;
        let hidden = self.encode(&ids, &mut Dropout { p: 0.0, rng: None })?;
        Ok(Some(
            hidden
                .narrow(1, l - 1, 1)?
                .flatten_all()?
                .to_vec1::<f32>()?,
        ))
    }

    /// Every item's vector, item `i` at `[i * dim .. (i + 1) * dim]`.
    pub fn item_vectors(&self) -> candle_core::Result<Vec<f32>> {
        self.item_table()
            .narrow(0, 1, self.items)?
            .flatten_all()?
            .to_vec1::<f32>()
    }

    /// The model's signal for a customer state: its best [`CANDIDATES`] items from
    /// the FAISS index, scaled from 0.05 (the last of them) to 1 (the first); 0 for
    /// every other item.
    pub fn scores(&self, state: &[f32], out: &mut [f32]) -> candle_core::Result<()> {
        out.iter_mut().for_each(|x| *x = 0.0);
        let Some(index) = &self.index else {
            return Ok(());
        };
        let hits = index
            .search(state, CANDIDATES.min(self.items), |_| true)
            .map_err(|err| candle_core::Error::Msg(format!("FAISS search: {err:#}")))?;
        let (lo, hi) = hits.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &(_, s)| {
            (lo.min(s), hi.max(s))
        });
        let span = (hi - lo).max(f32::MIN_POSITIVE);
        for (item, score) in hits {
            if let Some(slot) = out.get_mut(item as usize) {
                *slot = 0.05 + 0.95 * (score - lo) / span;
            }
        }
        Ok(())
    }

    /// Every item's inner product with a customer state, without the index.
    pub fn exact_scores(&self, state: &[f32]) -> candle_core::Result<Vec<f32>> {
        let table = self.item_table().narrow(0, 1, self.items)?;
        let query = Tensor::from_vec(state.to_vec(), (self.dim, 1), &Device::Cpu)?;
        table.matmul(&query)?.flatten_all()?.to_vec1::<f32>()
    }

    /// Every tensor's shape and values, in the fixed order (for storage).
    pub fn tensors(&self) -> candle_core::Result<Vec<(Vec<usize>, Vec<f32>)>> {
        self.params
            .iter()
            .map(|t| Ok((t.dims().to_vec(), t.flatten_all()?.to_vec1::<f32>()?)))
            .collect()
    }

    /// A model from what [`Sequential::tensors`] gave; `None` when the shapes do not
    /// fit the architecture.
    pub fn from_tensors(
        items: usize,
        dim: usize,
        blocks: usize,
        heads: usize,
        max_len: usize,
        tensors: Vec<(Vec<usize>, Vec<f32>)>,
    ) -> Option<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) || tensors.len() != HEAD + blocks * PER_BLOCK {
            return None;
        }
        let expected = |index: usize| -> Vec<usize> {
            match index {
                0 => vec![items + 1, dim],
                1 => vec![max_len, dim],
                2 | 3 => vec![dim],
                _ => match (index - HEAD) % PER_BLOCK {
                    2..=5 | 8 | 10 => vec![dim, dim],
                    _ => vec![dim],
                },
            }
        };
        let mut params = Vec::with_capacity(tensors.len());
        for (index, (shape, values)) in tensors.into_iter().enumerate() {
            if shape != expected(index) || values.len() != shape.iter().product::<usize>() {
                return None;
            }
            params.push(Tensor::from_vec(values, shape, &Device::Cpu).ok()?);
        }
        Self {
            items,
            dim,
            blocks,
            heads,
            max_len,
            params,
            index: None,
            log: TrainingLog::default(),
        }
        .indexed()
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> SequentialSettings {
        SequentialSettings {
            dim: 16,
            blocks: 1,
            heads: 2,
            max_len: 8,
            negatives: 8,
            epochs: 60,
            min_steps: 0,
            batch: 16,
            learning_rate: 5e-3,
            dropout: 0.1,
            seed: 7,
            ..SequentialSettings::default()
        }
    }

    /// Customers walk a cycle of 12 items from different starting points: the next
    /// item is always the one after the last, which only the order tells.
    fn cycles() -> Vec<Vec<u32>> {
        (0..48)
            .map(|u| (0..6).map(|step| ((u + step) % 12) as u32).collect())
            .collect()
    }

    #[test]
    fn it_learns_what_comes_next_and_the_order_matters() {
        let model = Sequential::train(12, &cycles(), &tiny()).unwrap();
        assert!(
            model.log.losses.last() < model.log.losses.first(),
            "{:?}",
            model.log.losses
        );
        let mut hits = 0;
        for start in 0..12u32 {
            let sequence: Vec<u32> = (0..4).map(|s| (start + s) % 12).collect();
            let state = model.state(&sequence).unwrap().unwrap();
            let scores = model.exact_scores(&state).unwrap();
            let best = (0..12)
                .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
                .unwrap();
            hits += usize::from(best as u32 == (start + 4) % 12);
            // The index finds the same first item and scales it to 1.
            let mut signal = vec![0.0; 12];
            model.scores(&state, &mut signal).unwrap();
            assert!((signal[best] - 1.0).abs() < 1e-5, "{signal:?}");
        }
        assert!(hits >= 10, "next item first for {hits} of 12 sequences");
        // The same items in another order point elsewhere.
        let forward = model.state(&[3, 4, 5]).unwrap().unwrap();
        let backward = model.state(&[5, 4, 3]).unwrap().unwrap();
        assert_ne!(forward, backward);
    }

    #[test]
    fn the_same_seed_trains_the_same_model_and_tensors_read_back() {
        let settings = SequentialSettings {
            epochs: 2,
            ..tiny()
        };
        let a = Sequential::train(12, &cycles(), &settings).unwrap();
        let b = Sequential::train(12, &cycles(), &settings).unwrap();
        assert_eq!(a.log.losses, b.log.losses);
        let back = Sequential::from_tensors(12, 16, 1, 2, 8, a.tensors().unwrap()).unwrap();
        assert_eq!(back.state(&[1, 2]).unwrap(), a.state(&[1, 2]).unwrap());
        assert!(Sequential::from_tensors(13, 16, 1, 2, 8, a.tensors().unwrap()).is_none());
        assert_eq!(a.state(&[40]).unwrap(), None);
    }
}
