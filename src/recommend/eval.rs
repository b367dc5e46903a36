//! Offline evaluation: the temporal protocol on an orders file and leave-one-out on
//! sequences (docs/recommendations.md has both and the tables they give).
//!
//! Metrics at k with binary gain: precision, recall, NDCG (log2 discount, the ideal
//! is min(relevant, k) hits), hit rate, and catalog coverage (distinct products
//! recommended to anyone over the products the models know).

use std::collections::HashSet;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::data::{Dataset, Purchase};
use super::fusion::{Weights, choose, fuse, top_k};
use super::models::{ModelError, ModelSettings, Models, SEQUENTIAL, SIGNALS, Signals};

/// The metrics of one model over one set of customers.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Metrics {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub hit_rate: f64,
    pub coverage: f64,
    pub customers: usize,
}

/// One customer to score: who, and the items that count as hits.
struct Case {
    customer: u32,
    relevant: HashSet<u32>,
}

/// One row of a report: a model and its metrics.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub model: String,
    pub metrics: Metrics,
}

/// What `tendero eval recomendaciones` prints for the temporal protocol.
#[derive(Clone, Debug, Serialize)]
pub struct TemporalReport {
    pub k: usize,
    pub products: usize,
    pub training_lines: usize,
    pub test_from: String,
    pub training_seconds: f64,
    pub sequential: Option<SequentialTraining>,
    /// Every product bought in the test period counts.
    pub all: Vec<Row>,
    /// Only products new to the customer count, and own products are not ranked.
    pub new: Vec<Row>,
    pub weights_all: Weights,
    pub weights_new: Weights,
    /// The recency settings chosen on validation: half-life (days) and popularity
    /// window (days), for "all" and for "new".
    pub recency_all: (f32, i64),
    pub recency_new: (f32, i64),
}

/// The recency settings validation chooses among: half-life and popularity window.
const RECENCY: [(f32, i64); 6] = [
    (30.0, 30),
    (30.0, 90),
    (120.0, 30),
    (120.0, 90),
    (365.0, 30),
    (365.0, 90),
];

/// What `tendero eval recomendaciones --protocolo leave-one-out` prints.
#[derive(Clone, Debug, Serialize)]
pub struct LeaveOneOutReport {
    pub k: usize,
    pub users: usize,
    pub items: usize,
    pub training_seconds: f64,
    pub sequential: Option<SequentialTraining>,
    pub rows: Vec<Row>,
    pub weights: Weights,
}

/// A leave-one-out split scored: the training data, the users' cases with their
/// signals, and the training time.
type HeldOut = (
    Dataset,
    Vec<Case>,
    Vec<Signals>,
    f64,
    Option<SequentialTraining>,
);

/// How the sequential model's training went, for the reports.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SequentialTraining {
    pub epochs: usize,
    pub seconds: f64,
    pub final_loss: f32,
}

impl SequentialTraining {
    pub fn of(models: &Models) -> Option<Self> {
        models.sequential.as_ref().map(|s| Self {
            epochs: s.log.epochs,
            seconds: s.log.seconds,
            final_loss: s.log.losses.last().copied().unwrap_or(f32::NAN),
        })
    }
}

/// The moment every leave-one-out sequence ends at.
const LOO_NOW: i64 = 1_000_000_000;

/// The single models and the fusion, as report rows: name and weights (the
/// sequential model's row when it was trained).
fn candidates(fusion: Weights, sequential: bool) -> Vec<(String, Weights)> {
    let mut rows: Vec<(String, Weights)> = vec![
        ("popularity".into(), Weights::only(SIGNALS.len() - 1)),
        ("repurchase".into(), Weights::only(0)),
        ("item-kNN".into(), Weights::only(2)),
        ("EASE".into(), Weights::only(1)),
    ];
    if sequential {
        rows.push(("sequential (gSASRec)".into(), Weights::only(SEQUENTIAL)));
    }
    rows.push((format!("fusion ({})", fusion.describe()), fusion));
    rows
}

/// Scores `weights` on `cases` whose signals are precomputed.
fn score(
    signals: &[Signals],
    cases: &[Case],
    data: &Dataset,
    weights: &Weights,
    k: usize,
    exclude_own: bool,
) -> Metrics {
    let per_case: Vec<(f64, f64, f64, f64, Vec<u32>)> = signals
        .par_iter()
        .zip(cases)
        .map_init(Vec::new, |fused, (signals, case)| {
            fuse(signals, weights, fused);
            let own: HashSet<u32> = if exclude_own {
                data.histories[case.customer as usize]
                    .iter()
                    .map(|b| b.item)
                    .collect()
            } else {
                HashSet::new()
            };
            let ranked = top_k(fused, k, |item| own.contains(&item));
            let hits: Vec<bool> = ranked.iter().map(|i| case.relevant.contains(i)).collect();
            let found = hits.iter().filter(|h| **h).count() as f64;
            let dcg: f64 = hits
                .iter()
                .enumerate()
                .filter(|(_, h)| **h)
                .map(|(rank, _)| 1.0 / (rank as f64 + 2.0).log2())
                .sum();
            let ideal: f64 = (0..case.relevant.len().min(k))
                .map(|rank| 1.0 / (rank as f64 + 2.0).log2())
                .sum();
            let relevant = case.relevant.len() as f64;
            (
                found / k as f64,
                found / relevant,
                dcg / ideal,
                (found > 0.0) as u8 as f64,
                ranked,
            )
        })
        .collect();
    let n = per_case.len().max(1) as f64;
    let mut shown = HashSet::new();
    let mut m = Metrics {
        customers: per_case.len(),
        ..Metrics::default()
    };
    for (p, r, ndcg, hit, ranked) in per_case {
        m.precision += p / n;
        m.recall += r / n;
        m.ndcg += ndcg / n;
        m.hit_rate += hit / n;
        shown.extend(ranked);
    }
    m.coverage = shown.len() as f64 / data.items().max(1) as f64;
    m
}

/// Splits purchases by order time: the last `fraction` of orders is the second part.
fn split_by_orders(purchases: &[Purchase], fraction: f64) -> (Vec<Purchase>, Vec<Purchase>, i64) {
    let mut orders: Vec<(i64, i64)> = purchases.iter().map(|p| (p.at, p.order)).collect();
    orders.sort_unstable();
    orders.dedup();
    let first_later = orders.len() - (orders.len() as f64 * fraction).round() as usize;
    let Some(&cut) = orders.get(first_later) else {
        return (purchases.to_vec(), Vec::new(), i64::MAX);
    };
    let (before, after) = purchases.iter().partition(|p| (p.at, p.order) < cut);
    (before, after, cut.0)
}

/// The customers of `later` who are in `data`, with the items they bought later
/// (`only_new`: those they had not bought in `data`).
fn cases(data: &Dataset, later: &[Purchase], only_new: bool) -> Vec<Case> {
    let mut relevant: Vec<HashSet<u32>> = vec![HashSet::new(); data.customers.len()];
    for p in later {
        if let (Some(u), Some(i)) = (data.customer(p.customer), data.item(p.product)) {
            relevant[u as usize].insert(i);
        }
    }
    relevant
        .into_iter()
        .enumerate()
        .filter_map(|(u, mut items)| {
            if only_new {
                for b in &data.histories[u] {
                    items.remove(&b.item);
                }
            }
            (!items.is_empty()).then_some(Case {
                customer: u as u32,
                relevant: items,
            })
        })
        .collect()
}

fn signals_of(models: &Models, data: &Dataset, cases: &[Case]) -> Vec<Signals> {
    cases
        .par_iter()
        .map(|c| models.signals(&data.histories[c.customer as usize], &[]))
        .collect()
}

/// The temporal protocol: train on the first 80% of orders, score the customers who
/// bought in both periods; fusion weights chosen on the last 20% of the training orders.
pub fn temporal(
    purchases: &[Purchase],
    settings: &ModelSettings,
    k: usize,
) -> Result<TemporalReport, ModelError> {
    let (train, test, test_from) = split_by_orders(purchases, 0.2);
    let (fit, validation, _) = split_by_orders(&train, 0.2);

    let fit_data = Dataset::new(&fit, &[]);
    let fit_models = Models::train(&fit_data, settings)?;
    let mut chosen = Vec::new();
    for only_new in [false, true] {
        let val_cases = cases(&fit_data, &validation, only_new);
        let mut best = (Weights::only(0), f64::MIN, RECENCY[0]);
        for recency in RECENCY {
            let models = fit_models.with_recency(&fit_data, recency.0, recency.1);
            let val_signals = signals_of(&models, &fit_data, &val_cases);
            let (weights, value) = choose(models.sequential.is_some(), |w| {
                score(&val_signals, &val_cases, &fit_data, w, k, only_new).ndcg
            });
            if value > best.1 {
                best = (weights, value, recency);
            }
        }
        chosen.push(best);
    }
    drop(fit_models);

    let data = Dataset::new(&train, &[]);
    let started = Instant::now();
    let models = Models::train(&data, settings)?;
    let training_seconds = started.elapsed().as_secs_f64();
    let sequential = SequentialTraining::of(&models);
    let mut halves = Vec::new();
    for (only_new, (weights, _, recency)) in [(false, chosen[0]), (true, chosen[1])] {
        let models = models.with_recency(&data, recency.0, recency.1);
        let test_cases = cases(&data, &test, only_new);
        let test_signals = signals_of(&models, &data, &test_cases);
        // Among new products, repurchase has nothing to say (it is popularity).
        let rows = candidates(weights, models.sequential.is_some())
            .into_iter()
            .filter(|(name, _)| !(only_new && name == "repurchase"))
            .map(|(model, w)| Row {
                model,
                metrics: score(&test_signals, &test_cases, &data, &w, k, only_new),
            })
            .collect();
        halves.push(rows);
    }
    let new = halves.pop().unwrap_or_default();
    let all = halves.pop().unwrap_or_default();
    Ok(TemporalReport {
        k,
        products: data.items(),
        training_lines: data.lines(),
        test_from: chrono::DateTime::from_timestamp(test_from, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
        training_seconds,
        sequential,
        all,
        new,
        weights_all: chosen[0].0,
        weights_new: chosen[1].0,
        recency_all: chosen[0].2,
        recency_new: chosen[1].2,
    })
}

/// Leave-one-out: each user's last item is the target, every item is ranked except the
/// user's earlier ones; weights chosen with the second-to-last item as the target.
pub fn leave_one_out(
    sequences: &[Vec<i64>],
    settings: &ModelSettings,
    k: usize,
) -> Result<LeaveOneOutReport, ModelError> {
    let held_out = |drop: usize| {
        let mut purchases = Vec::new();
        let mut targets = Vec::new();
        let mut order = 0;
        for (user, seq) in sequences.iter().enumerate() {
            if seq.len() <= drop {
                continue;
            }
            // Steps count as days, every user's last kept item at the same moment, so
            // that recency is measured along each user's own sequence.
            let kept = seq.len() - drop;
            for (step, &product) in seq[..kept].iter().enumerate() {
                order += 1;
                let at = LOO_NOW - (kept - 1 - step) as i64 * 86_400;
                purchases.push(Purchase {
                    customer: user as i64,
                    product,
                    order,
                    at,
                });
            }
            targets.push(Purchase {
                customer: user as i64,
                product: seq[kept],
                order: 0,
                at: 0,
            });
        }
        (purchases, targets)
    };
    let evaluate = |drop: usize| -> Result<HeldOut, ModelError> {
        let (purchases, targets) = held_out(drop);
        let all_items: Vec<i64> = {
            let mut items: Vec<i64> = sequences.iter().flatten().copied().collect();
            items.sort_unstable();
            items.dedup();
            items
        };
        let data = Dataset::new(&purchases, &all_items);
        let started = Instant::now();
        let models = Models::train(&data, settings)?;
        let seconds = started.elapsed().as_secs_f64();
        // A target the user had before stays a case: it cannot be hit (earlier items
        // are not ranked), as the protocol says.
        let cases: Vec<Case> = cases(&data, &targets, false);
        let signals = signals_of(&models, &data, &cases);
        Ok((
            data,
            cases,
            signals,
            seconds,
            SequentialTraining::of(&models),
        ))
    };
    let (val_data, val_cases, val_signals, _, val_sequential) = evaluate(2)?;
    let (weights, _) = choose(val_sequential.is_some(), |w| {
        let mut w = *w;
        w.0[0] = 0.0;
        score(&val_signals, &val_cases, &val_data, &w, k, true).ndcg
    });
    let mut weights = weights;
    weights.0[0] = 0.0;
    drop((val_data, val_cases, val_signals));
    let (data, cases, signals, training_seconds, sequential) = evaluate(1)?;
    let rows = candidates(weights, sequential.is_some())
        .into_iter()
        .filter(|(name, _)| name != "repurchase")
        .map(|(model, w)| Row {
            model,
            metrics: score(&signals, &cases, &data, &w, k, true),
        })
        .collect();
    Ok(LeaveOneOutReport {
        k,
        users: cases.len(),
        items: data.items(),
        training_seconds,
        sequential,
        rows,
        weights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_empty_rankings_score_one_and_zero() {
        let purchases = [
            Purchase {
                customer: 1,
                product: 10,
                order: 1,
                at: 0,
            },
            Purchase {
                customer: 1,
                product: 11,
                order: 1,
                at: 0,
            },
            Purchase {
                customer: 2,
                product: 10,
                order: 2,
                at: 0,
            },
        ];
        let data = Dataset::new(&purchases, &[]);
        let models = Models::train(&data, &ModelSettings::default()).unwrap();
        let case = Case {
            customer: 0,
            relevant: [0u32, 1].into_iter().collect(),
        };
        let signals = vec![models.signals(&data.histories[0], &[])];
        let m = score(
            &signals,
            std::slice::from_ref(&case),
            &data,
            &Weights::only(0),
            2,
            false,
        );
        assert!(
            (m.ndcg - 1.0).abs() < 1e-9 && (m.precision - 1.0).abs() < 1e-9 && m.hit_rate == 1.0
        );
        let m = score(&signals, &[case], &data, &Weights::only(0), 2, true);
        assert_eq!((m.ndcg, m.hit_rate), (0.0, 0.0));
    }
}
