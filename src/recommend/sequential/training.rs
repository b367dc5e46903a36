//! How the sequential model is trained: every next product of every sequence against
//! sampled negatives with the gBCE loss, in shuffled batches, by Adam.

use std::time::Instant;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{Dropout, Sequential, SequentialSettings};

impl Sequential {
    /// Trains on `sequences` (each a customer's items, oldest first, items below
    /// `items`); sequences shorter than two items teach nothing and are skipped.
    pub fn train(
        items: usize,
        sequences: &[Vec<u32>],
        s: &SequentialSettings,
    ) -> candle_core::Result<Self> {
        if s.dim == 0
            || s.heads == 0
            || !s.dim.is_multiple_of(s.heads)
            || s.max_len == 0
            || items == 0
        {
            candle_core::bail!(
                "a sequential model needs items, a length, and a width ({}) that its heads ({}) divide",
                s.dim,
                s.heads
            );
        }
        let started = Instant::now();
        let mut rng = StdRng::seed_from_u64(s.seed);
        let mut model = Self::fresh(items, s, &mut rng)?;
        let vars: Vec<Var> = model
            .params
            .iter()
            .map(Var::from_tensor)
            .collect::<candle_core::Result<_>>()?;
        model.params = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let mut optimizer = AdamW::new(
            vars.clone(),
            ParamsAdamW {
                lr: s.learning_rate,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        // A long sequence is cut into windows of `max_len` predictions, the last one
        // ending with its most recent item, so that every purchase teaches; with
        // shorter sequences, windows are as long as the longest needs.
        let longest = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let l = s.max_len.min(longest.saturating_sub(1)).max(1);
        let windows: Vec<(&[u32], usize)> = sequences
            .iter()
            .filter(|q| q.len() >= 2)
            .flat_map(|q| {
                (0..)
                    .map(move |w| q.len() as isize - (w * l) as isize)
                    .take_while(|&end| end >= 2)
                    .map(move |end| (q.as_slice(), end as usize))
            })
            .collect();
        let negatives = s.negatives.min(items.saturating_sub(1)).max(1);
        let alpha = negatives as f64 / (items.saturating_sub(1).max(1)) as f64;
        let beta = alpha * (s.calibration as f64 * (1.0 - 1.0 / alpha) + 1.0 / alpha);
        let mut order: Vec<usize> = (0..windows.len()).collect();
        let dev = Device::Cpu;
        let mut all_steps = 0usize;
        while (model.log.epochs < s.epochs || all_steps < s.min_steps) && !windows.is_empty() {
            order.shuffle(&mut rng);
            let mut total = 0.0f64;
            let mut steps = 0usize;
            for chunk in order.chunks(s.batch.max(1)) {
                let b = chunk.len();
                let mut inputs = vec![0u32; b * l];
                let mut targets = vec![0u32; b * l];
                for (row, &w) in chunk.iter().enumerate() {
                    let (seq, end) = windows[w];
                    // Inputs seq[start..end-1] predict seq[start+1..end].
                    let n = (end - 1).min(l);
                    let start = end - 1 - n;
                    for j in 0..n {
                        inputs[row * l + l - n + j] = seq[start + j] + 1;
                        targets[row * l + l - n + j] = seq[start + j + 1] + 1;
                    }
                }
                let negs: Vec<u32> = (0..b * negatives)
                    .map(|_| rng.random_range(1..=items as u32))
                    .collect();
                let inputs = Tensor::from_vec(inputs, (b, l), &dev)?;
                let targets = Tensor::from_vec(targets, (b, l), &dev)?;
                let negs = Tensor::from_vec(negs, (b, negatives), &dev)?;
                let mut drop = Dropout {
                    p: s.dropout,
                    rng: Some(&mut rng),
                };
                let hidden = model.encode(&inputs, &mut drop)?;
                let table = model.item_table();
                let d = model.dim;
                let positives = table
                    .index_select(&targets.flatten_all()?, 0)?
                    .reshape((b, l, d))?;
                let positive = (&hidden * &positives)?.sum(D::Minus1)?;
                let sampled = table
                    .index_select(&negs.flatten_all()?, 0)?
                    .reshape((b, negatives, d))?
                    .transpose(1, 2)?
                    .contiguous()?;
                let negative = hidden.matmul(&sampled)?;
                let valid = targets.ne(0u32)?.to_dtype(DType::F32)?;
                let count = valid.sum_all()?.to_scalar::<f32>()?;
                if count == 0.0 {
                    continue;
                }
                let per_position = (log_sigmoid(&positive)?.affine(-beta, 0.0)?
                    - log_sigmoid(&negative.neg()?)?.sum(D::Minus1)?)?;
                let loss = (per_position * valid)?
                    .sum_all()?
                    .affine(1.0 / count as f64, 0.0)?;
                optimizer.backward_step(&loss)?;
                total += loss.to_scalar::<f32>()? as f64;
                steps += 1;
            }
            all_steps += steps;
            model.log.epochs += 1;
            model.log.losses.push((total / steps.max(1) as f64) as f32);
            if started.elapsed().as_secs_f64() >= s.max_seconds {
                break;
            }
        }
        // Serve plain tensors: no gradient tracking at inference.
        model.params = vars.iter().map(|v| v.as_tensor().detach()).collect();
        model.log.seconds = started.elapsed().as_secs_f64();
        model.indexed()
    }
}

/// `log σ(x)`, stable for large `|x|`: `min(x, 0) − ln(1 + e^−|x|)`.
fn log_sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    let negative_part = (x - x.relu()?)?;
    let soft = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    negative_part - soft
}
