//! The item-item models: item-kNN and EASE from the customers' baskets, and products
//! bought in the same order; each item's neighbours are kept as short lists.

use rayon::prelude::*;

use super::data::Dataset;
use super::linalg::{NotPositiveDefinite, invert_spd};
use super::models::ModelSettings;

/// Each product's nearest products with a score, best first.
#[derive(Clone, Debug, Default)]
pub struct Neighbours {
    pub lists: Vec<Vec<(u32, f32)>>,
}

impl Neighbours {
    /// The neighbours of `item` (none for an unknown one).
    pub fn of(&self, item: u32) -> &[(u32, f32)] {
        self.lists
            .get(item as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// EASE's weights over the products it keeps.
#[derive(Clone, Debug)]
pub struct Ease {
    /// Model row → item.
    pub items: Vec<u32>,
    /// Item → model row (`u32::MAX` when the item is not in the model).
    pub row_of: Vec<u32>,
    /// `items.len()`² weights, row-major, f32.
    pub weights: Vec<f32>,
}

impl Ease {
    /// Adds `weight × B[j, ·]` for every history item `j` into `out` (item-indexed).
    pub(super) fn score(&self, history: &[(u32, f32)], out: &mut [f32]) {
        let m = self.items.len();
        let mut acc = vec![0.0f32; m];
        for &(item, weight) in history {
            let Some(&row) = self.row_of.get(item as usize) else {
                continue;
            };
            if row == u32::MAX {
                continue;
            }
            let b = &self.weights[row as usize * m..(row as usize + 1) * m];
            for (a, w) in acc.iter_mut().zip(b) {
                *a += weight * w;
            }
        }
        for (row, &item) in self.items.iter().enumerate() {
            out[item as usize] = acc[row];
        }
    }
}

/// Per item, the customers who bought it (each once).
pub(super) fn customers_of(data: &Dataset) -> Vec<Vec<u32>> {
    let mut lists = vec![Vec::new(); data.items()];
    for (u, history) in data.histories.iter().enumerate() {
        for bought in history {
            let list: &mut Vec<u32> = &mut lists[bought.item as usize];
            if list.last() != Some(&(u as u32)) {
                list.push(u as u32);
            }
        }
    }
    for list in &mut lists {
        list.sort_unstable();
        list.dedup();
    }
    lists
}

/// Item-kNN (cosine over customers) and EASE, both from the one co-occurrence matrix.
pub(super) fn collaborative(
    data: &Dataset,
    customers_of: &[Vec<u32>],
    settings: &ModelSettings,
) -> Result<(Neighbours, Option<Ease>), NotPositiveDefinite> {
    let n = data.items();
    let items_of: Vec<Vec<u32>> = data
        .histories
        .iter()
        .map(|h| {
            let mut items: Vec<u32> = h.iter().map(|b| b.item).collect();
            items.sort_unstable();
            items.dedup();
            items
        })
        .collect();
    // Item-kNN over every item: cosine over the customers who bought both.
    let counts: Vec<f32> = customers_of.iter().map(|c| c.len() as f32).collect();
    let knn_lists = neighbour_lists(
        customers_of,
        &items_of,
        settings.neighbours,
        |i, j, shared| Some(shared as f32 / (counts[i] * counts[j]).sqrt()),
    );
    let knn = Neighbours { lists: knn_lists };

    // EASE over the items most customers bought.
    let mut ranked: Vec<u32> = (0..n as u32)
        .filter(|&i| counts[i as usize] > 0.0)
        .collect();
    ranked.sort_by(|&a, &b| {
        counts[b as usize]
            .total_cmp(&counts[a as usize])
            .then(a.cmp(&b))
    });
    ranked.truncate(settings.ease_max_items);
    if ranked.is_empty() {
        return Ok((knn, None));
    }
    ranked.sort_unstable();
    let m = ranked.len();
    let mut row_of = vec![u32::MAX; n];
    for (row, &item) in ranked.iter().enumerate() {
        row_of[item as usize] = row as u32;
    }
    let mut gram = vec![0.0f64; m * m];
    gram.par_chunks_mut(m).enumerate().for_each(|(r, out)| {
        let i = ranked[r] as usize;
        for &u in &customers_of[i] {
            for &j in &items_of[u as usize] {
                let c = row_of[j as usize];
                if c != u32::MAX {
                    out[c as usize] += 1.0;
                }
            }
        }
    });
    for r in 0..m {
        gram[r * m + r] += settings.ease_lambda;
    }
    invert_spd(&mut gram, m)?;
    let diagonal: Vec<f64> = (0..m).map(|r| gram[r * m + r]).collect();
    let weights: Vec<f32> = gram
        .par_chunks(m)
        .enumerate()
        .flat_map_iter(|(r, row)| {
            let diagonal = &diagonal;
            row.iter().enumerate().map(move |(c, &p)| {
                if r == c {
                    0.0
                } else {
                    (-p / diagonal[c]) as f32
                }
            })
        })
        .collect();
    Ok((
        knn,
        Some(Ease {
            items: ranked,
            row_of,
            weights,
        }),
    ))
}

/// Pairs of products in the same order: per product, the others by confidence, among
/// those with lift above 1 and at least `min_support` shared orders.
pub(super) fn bought_together(data: &Dataset, settings: &ModelSettings) -> Neighbours {
    let n = data.items();
    let mut orders_of = vec![Vec::new(); n];
    for (o, basket) in data.baskets.iter().enumerate() {
        for &item in basket {
            orders_of[item as usize].push(o as u32);
        }
    }
    let orders = data.baskets.len().max(1) as f32;
    let lists = neighbour_lists(
        &orders_of,
        &data.baskets,
        settings.neighbours,
        |i, j, shared| {
            let (count_i, count_j) = (orders_of[i].len() as f32, orders_of[j].len() as f32);
            let support = shared as f32;
            let lift = support * orders / (count_i * count_j);
            (shared >= settings.min_support && lift > 1.0).then_some(support / count_i)
        },
    );
    Neighbours { lists }
}

/// For every item `i`, the items sharing a group with it (`groups_of[i]`: the customers
/// or orders it is in; `members[g]`: the items of group `g`), scored by
/// `score(i, j, groups shared)` (`None` leaves `j` out), the best `keep` kept. One row of
/// counts per item, reused by each worker thread.
fn neighbour_lists(
    groups_of: &[Vec<u32>],
    members: &[Vec<u32>],
    keep: usize,
    score: impl Fn(usize, usize, u32) -> Option<f32> + Sync,
) -> Vec<Vec<(u32, f32)>> {
    let n = groups_of.len();
    (0..n)
        .into_par_iter()
        .map_init(
            || vec![0u32; n],
            |row, i| {
                let mut touched = Vec::new();
                for &g in &groups_of[i] {
                    for &j in &members[g as usize] {
                        if row[j as usize] == 0 {
                            touched.push(j);
                        }
                        row[j as usize] += 1;
                    }
                }
                let mut list: Vec<(u32, f32)> = touched
                    .iter()
                    .filter(|&&j| j as usize != i)
                    .filter_map(|&j| Some((j, score(i, j as usize, row[j as usize])?)))
                    .collect();
                for &j in &touched {
                    row[j as usize] = 0;
                }
                top(&mut list, keep);
                list
            },
        )
        .collect()
}

/// Keeps the `k` best-scored entries, best first (ties by index).
pub fn top(list: &mut Vec<(u32, f32)>, k: usize) {
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    list.truncate(k);
}
