//! The trained models and what each says about a customer.
//!
//! - **popularity**: distinct customers per product over a recent window (all time
//!   breaks ties): the cold-start answer and the baseline;
//! - **repurchase**: the customer's own products, recent purchases weighing more (no
//!   training: it is read from the history);
//! - **item-kNN**: cosine between products over the customers who bought them, the
//!   nearest neighbours of each kept;
//! - **EASE**: the closed-form item-item model `B = I − P·diag(1/diag P)`,
//!   `P = (XᵀX + λI)⁻¹`, over the products most customers bought (at most
//!   `ease_max_items`: the matrix is dense);
//! - **bought together**: products in the same order, scored by confidence among the
//!   pairs whose lift is above 1 and whose support reaches `min_support`, so that one
//!   shared basket is not served as a rule;
//! - **sequential**: a gSASRec-style transformer over the customer's products in the
//!   order they were bought (`sequential`), when enough customers bought twice.
//!
//! Every score is computed over dense item indices (`data::Dataset`).

use super::data::{Bought, Dataset, History};
pub use super::item_item::{Ease, Neighbours};
use super::item_item::{bought_together, collaborative, customers_of};
use super::linalg::NotPositiveDefinite;
use super::sequential::{Sequential, SequentialSettings};

const SECONDS_PER_DAY: f32 = 86_400.0;

/// How the models are trained; the defaults are the ones chosen on Online Retail's
/// validation split (docs/recommendations.md).
#[derive(Clone, Debug)]
pub struct ModelSettings {
    /// Days after which a purchase counts half for repurchase and recency.
    pub half_life_days: f32,
    /// The window popularity counts customers over.
    pub popularity_days: i64,
    /// EASE's regularisation.
    pub ease_lambda: f64,
    /// EASE keeps the products most customers bought, up to this many.
    pub ease_max_items: usize,
    /// Neighbours kept per product (item-kNN and bought together).
    pub neighbours: usize,
    /// Orders two products must share before they are "bought together".
    pub min_support: u32,
    /// The sequential model's shape and training; `None` trains none.
    pub sequential: Option<SequentialSettings>,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            half_life_days: 365.0,
            popularity_days: 30,
            ease_lambda: 200.0,
            ease_max_items: 4_000,
            neighbours: 100,
            min_support: 3,
            sequential: Some(SequentialSettings::default()),
        }
    }
}

/// Every trained model, over one dataset's item numbering.
#[derive(Clone, Debug)]
pub struct Models {
    pub items: usize,
    pub settings: ModelSettings,
    /// The time recency is measured from.
    pub now: i64,
    pub popularity: Vec<f32>,
    pub knn: Neighbours,
    pub ease: Option<Ease>,
    pub together: Neighbours,
    pub sequential: Option<Sequential>,
}

/// Why the models could not be trained.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Ease(#[from] NotPositiveDefinite),
    #[error("the sequential model could not be trained: {0}")]
    Sequential(#[from] candle_core::Error),
}

/// Customers with two purchases or more the sequential model needs before it is
/// trained (fewer teach it nothing the other models do not know).
pub const MIN_SEQUENCES: usize = 20;

/// What each model scores for one customer, item-indexed, each scaled to a maximum of 1.
#[derive(Clone, Debug)]
pub struct Signals {
    pub repurchase: Vec<f32>,
    pub ease: Vec<f32>,
    pub knn: Vec<f32>,
    pub sequential: Vec<f32>,
    pub popularity: Vec<f32>,
}

/// The signals' names, in the order [`Signals::get`] and the fusion weights use
/// (popularity last).
pub const SIGNALS: [&str; 5] = ["repurchase", "ease", "knn", "sequential", "popularity"];
/// The index of the sequential signal in [`SIGNALS`].
pub const SEQUENTIAL: usize = 3;

impl Signals {
    pub fn get(&self, signal: usize) -> &[f32] {
        match signal {
            0 => &self.repurchase,
            1 => &self.ease,
            2 => &self.knn,
            3 => &self.sequential,
            _ => &self.popularity,
        }
    }
}

impl Models {
    /// Trains every model on `data`.
    pub fn train(data: &Dataset, settings: &ModelSettings) -> Result<Self, ModelError> {
        let items = data.items();
        let customers_of = customers_of(data);
        let popularity = popularity(data, settings);
        let (knn, ease) = collaborative(data, &customers_of, settings)?;
        let together = bought_together(data, settings);
        let sequential = match &settings.sequential {
            Some(s) => train_sequential(data, s)?,
            None => None,
        };
        Ok(Self {
            items,
            settings: settings.clone(),
            now: data.now,
            popularity,
            knn,
            ease,
            together,
            sequential,
        })
    }

    /// The same models with other recency settings (popularity recounted; the
    /// collaborative models, which do not depend on them, kept).
    pub fn with_recency(&self, data: &Dataset, half_life_days: f32, popularity_days: i64) -> Self {
        let settings = ModelSettings {
            half_life_days,
            popularity_days,
            ..self.settings.clone()
        };
        Self {
            popularity: popularity(data, &settings),
            settings,
            ..self.clone()
        }
    }

    /// The recency weight of a purchase at `at`.
    pub fn decay(&self, at: i64) -> f32 {
        let days = (self.now - at).max(0) as f32 / SECONDS_PER_DAY;
        0.5f32.powf(days / self.settings.half_life_days)
    }

    /// Each history item once, with the weight of its most recent purchase.
    fn weighted(&self, history: History<'_>) -> Vec<(u32, f32)> {
        let mut latest: Vec<(u32, f32)> = Vec::with_capacity(history.len());
        let mut seen = std::collections::HashMap::with_capacity(history.len());
        for bought in history.iter().rev() {
            if (bought.item as usize) >= self.items {
                continue;
            }
            seen.entry(bought.item).or_insert_with(|| {
                latest.push((bought.item, self.decay(bought.at)));
            });
        }
        latest
    }

    /// Every model's scores for a customer with `history` (purchases, oldest first) who
    /// also clicked `clicks` (oldest first; none in the offline evaluation). A click
    /// counts half a purchase for the collaborative models and is a step of the
    /// sequence for the sequential one; repurchase counts purchases only.
    pub fn signals(&self, history: History<'_>, clicks: &[Bought]) -> Signals {
        self.signals_with(history, clicks, true)
    }

    /// [`Models::signals`], the sequential model's only when `sequential` (its forward
    /// pass is most of a list's time: a use that gives it no weight skips it).
    pub fn signals_with(
        &self,
        history: History<'_>,
        clicks: &[Bought],
        sequential: bool,
    ) -> Signals {
        let n = self.items;
        let mut repurchase = vec![0.0f32; n];
        for Bought { item, at, .. } in history {
            if let Some(r) = repurchase.get_mut(*item as usize) {
                *r += self.decay(*at);
            }
        }
        let mut weighted = self.weighted(history);
        if !clicks.is_empty() {
            let bought: std::collections::HashSet<u32> = weighted.iter().map(|w| w.0).collect();
            weighted.extend(
                self.weighted(clicks)
                    .into_iter()
                    .filter(|(item, _)| !bought.contains(item))
                    .map(|(item, w)| (item, 0.5 * w)),
            );
        }
        let mut ease = vec![0.0f32; n];
        if let Some(model) = &self.ease {
            model.score(&weighted, &mut ease);
        }
        let mut knn = vec![0.0f32; n];
        for &(item, weight) in &weighted {
            for &(other, similarity) in self.knn.of(item) {
                knn[other as usize] += weight * similarity;
            }
        }
        let with_sequential = sequential;
        let mut sequential = vec![0.0f32; n];
        if let Some(model) = self.sequential.as_ref().filter(|_| with_sequential) {
            let items: Vec<u32> = if clicks.is_empty() {
                history.iter().map(|b| b.item).collect()
            } else {
                let mut steps: Vec<&Bought> = history.iter().chain(clicks).collect();
                steps.sort_by_key(|b| b.at);
                steps.into_iter().map(|b| b.item).collect()
            };
            match model.state(&items) {
                Ok(Some(state)) => {
                    if let Err(err) = model.scores(&state, &mut sequential) {
                        tracing::warn!(error = %err, "sequential scores not computed");
                    }
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "sequential state not computed"),
            }
        }
        let mut signals = Signals {
            repurchase,
            ease,
            knn,
            sequential,
            popularity: self.popularity.clone(),
        };
        for v in [
            &mut signals.repurchase,
            &mut signals.ease,
            &mut signals.knn,
            &mut signals.popularity,
        ] {
            scale_to_one(v);
        }
        signals
    }
}

/// Scales the positive part of `v` so its maximum is 1 (negatives become 0).
fn scale_to_one(v: &mut [f32]) {
    let max = v.iter().copied().fold(0.0f32, f32::max);
    if max > 0.0 {
        let inv = 1.0 / max;
        for x in v.iter_mut() {
            *x = (*x * inv).max(0.0);
        }
    } else {
        v.iter_mut().for_each(|x| *x = 0.0);
    }
}

/// The sequential model over every customer's items in time order, when at least
/// [`MIN_SEQUENCES`] customers bought twice.
fn train_sequential(
    data: &Dataset,
    settings: &SequentialSettings,
) -> Result<Option<Sequential>, candle_core::Error> {
    let sequences: Vec<Vec<u32>> = data
        .histories
        .iter()
        .map(|h| h.iter().map(|b| b.item).collect::<Vec<u32>>())
        .filter(|s| s.len() >= 2)
        .collect();
    if sequences.len() < MIN_SEQUENCES || data.items() < 2 {
        return Ok(None);
    }
    Sequential::train(data.items(), &sequences, settings).map(Some)
}

fn popularity(data: &Dataset, settings: &ModelSettings) -> Vec<f32> {
    let since = data.now - settings.popularity_days * 86_400;
    let mut recent = vec![0.0f32; data.items()];
    let mut all = vec![0.0f32; data.items()];
    for history in &data.histories {
        let mut seen_recent = std::collections::HashSet::new();
        let mut seen = std::collections::HashSet::new();
        for bought in history {
            if seen.insert(bought.item) {
                all[bought.item as usize] += 1.0;
            }
            if bought.at >= since && seen_recent.insert(bought.item) {
                recent[bought.item as usize] += 1.0;
            }
        }
    }
    recent.iter().zip(&all).map(|(r, a)| r + 0.01 * a).collect()
}

#[cfg(test)]
mod tests {
    use super::super::data::Purchase;
    use super::*;

    const DAY: i64 = 86_400;

    /// Drills are bought with bits, hammers with nails; everyone buys tape.
    fn shop() -> Dataset {
        let mut purchases = Vec::new();
        let mut order = 0;
        let mut buy = |customer: i64, products: &[i64], day: i64| {
            order += 1;
            for &product in products {
                purchases.push(Purchase {
                    customer,
                    product,
                    order,
                    at: day * DAY,
                });
            }
        };
        for c in 0..6 {
            buy(c, &[1, 2, 9], c);
        }
        for c in 6..12 {
            buy(c, &[3, 4, 9], c);
        }
        buy(12, &[1], 20);
        Dataset::new(&purchases, &[])
    }

    #[test]
    fn complements_follow_shared_orders_and_skip_noise() {
        let data = shop();
        let models = Models::train(&data, &ModelSettings::default()).unwrap();
        let drill = data.item(1).unwrap();
        let bits = data.item(2).unwrap();
        let hammer = data.item(3).unwrap();
        let complements: Vec<u32> = models.together.of(drill).iter().map(|e| e.0).collect();
        assert_eq!(complements.first(), Some(&bits));
        assert!(!complements.contains(&hammer));
        // Tape is in every order: its lift is 1, so it is nobody's complement.
        let tape = data.item(9).unwrap();
        assert!(!complements.contains(&tape));
    }

    #[test]
    fn a_drill_buyer_is_offered_bits_before_anything_else_new() {
        let data = shop();
        let models = Models::train(&data, &ModelSettings::default()).unwrap();
        let customer = data.customer(12).unwrap() as usize;
        let signals = models.signals(&data.histories[customer], &[]);
        let bits = data.item(2).unwrap() as usize;
        let hammer = data.item(3).unwrap() as usize;
        assert!(signals.ease[bits] > signals.ease[hammer]);
        assert!(signals.knn[bits] > signals.knn[hammer]);
        assert_eq!(signals.repurchase[data.item(1).unwrap() as usize], 1.0);
    }

    #[test]
    fn a_click_on_a_hammer_brings_nails_without_counting_as_a_purchase() {
        let data = shop();
        let models = Models::train(&data, &ModelSettings::default()).unwrap();
        let customer = data.customer(12).unwrap() as usize;
        let history = &data.histories[customer];
        let (hammer, nails) = (data.item(3).unwrap(), data.item(4).unwrap() as usize);
        let before = models.signals(history, &[]);
        let click = Bought {
            item: hammer,
            order: u32::MAX,
            at: 21 * DAY,
        };
        let after = models.signals(history, &[click]);
        assert_eq!(before.knn[nails], 0.0);
        assert!(after.knn[nails] > 0.0);
        assert!(after.ease[nails] > before.ease[nails]);
        assert_eq!(after.repurchase[hammer as usize], 0.0);
    }
}
