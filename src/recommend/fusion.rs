//! The fusion: one weight per signal (`models::SIGNALS`), a weighted sum of the signals
//! (each already scaled to a maximum of 1), weights chosen on a validation split per use.

use serde::{Deserialize, Serialize};

use super::models::{SIGNALS, Signals};

/// One weight per signal, in `models::SIGNALS` order.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weights(pub [f32; SIGNALS.len()]);

impl Weights {
    /// Only signal `index`, with a trace of popularity to order what it leaves at zero.
    pub fn only(index: usize) -> Self {
        let mut w = [0.0; SIGNALS.len()];
        w[index] = 1.0;
        w[SIGNALS.len() - 1] += 1e-3;
        Weights(w)
    }

    /// `repurchase=…, ease=…` for logs and tables.
    pub fn describe(&self) -> String {
        SIGNALS
            .iter()
            .zip(self.0)
            .filter(|(_, w)| *w > 0.0)
            .map(|(name, w)| format!("{name}={w}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The fused score of every item.
pub fn fuse(signals: &Signals, weights: &Weights, out: &mut Vec<f32>) {
    out.clear();
    out.resize(signals.popularity.len(), 0.0);
    for (index, &w) in weights.0.iter().enumerate() {
        if w == 0.0 {
            continue;
        }
        for (o, s) in out.iter_mut().zip(signals.get(index)) {
            *o += w * s;
        }
    }
}

/// The `k` best items by `scores`, skipping those `skip` refuses; ties by index.
pub fn top_k(scores: &[f32], k: usize, mut skip: impl FnMut(u32) -> bool) -> Vec<u32> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (item, &score) in scores.iter().enumerate() {
        let item = item as u32;
        if best.len() == k && score <= best[k - 1].1 {
            continue;
        }
        if skip(item) {
            continue;
        }
        let at = best.partition_point(|&(_, s)| s >= score);
        best.insert(at, (item, score));
        best.truncate(k);
    }
    best.into_iter().map(|(item, _)| item).collect()
}

/// The weights that maximise `objective` over a grid: repurchase and EASE and item-kNN
/// on a coarse scale, the sequential model too when there is one (`sequential`),
/// popularity small (it orders what the others leave at zero).
pub fn choose(sequential: bool, mut objective: impl FnMut(&Weights) -> f64) -> (Weights, f64) {
    let strong = [0.0f32, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
    let coarse = [0.0f32, 0.25, 1.0, 4.0];
    let weak = [0.0f32, 0.05, 0.2];
    let sequence: &[f32] = if sequential { &coarse } else { &[0.0] };
    let mut best = (Weights::only(0), f64::MIN);
    for &repurchase in &strong {
        for &ease in &[0.0f32, 1.0] {
            for &knn in &coarse {
                for &seq in sequence {
                    for &popularity in &weak {
                        if repurchase + ease + knn + seq == 0.0 {
                            continue;
                        }
                        let w = Weights([repurchase, ease, knn, seq, popularity + 1e-3]);
                        let value = objective(&w);
                        if value > best.1 {
                            best = (w, value);
                        }
                    }
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_score_then_index_and_skips() {
        let scores = [0.1, 0.9, 0.5, 0.9, 0.0];
        assert_eq!(top_k(&scores, 3, |_| false), vec![1, 3, 2]);
        assert_eq!(top_k(&scores, 2, |i| i == 1), vec![3, 2]);
        assert_eq!(top_k(&scores, 10, |_| false).len(), 5);
    }

    #[test]
    fn the_grid_finds_the_weights_an_objective_prefers() {
        let (w, _) = choose(false, |w| {
            -((w.0[0] - 2.0).abs() + (w.0[2] - 0.25).abs()) as f64
        });
        assert_eq!((w.0[0], w.0[2], w.0[3]), (2.0, 0.25, 0.0));
        let (w, _) = choose(true, |w| -((w.0[3] - 4.0).abs() + w.0[0] * 0.1) as f64);
        assert_eq!((w.0[0], w.0[3]), (0.0, 4.0));
    }
}
