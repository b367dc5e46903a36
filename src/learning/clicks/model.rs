//! The click model: from what clients were shown and clicked for each query, how
//! attractive each product is for that query, with the bias of position taken out.
//!
//! A result high on the list is clicked more because it is seen more, not only
//! because it is better. The position-based model says a click needs both: the place
//! is examined (probability `θ(place)`, the same for every query) and the product
//! attracts (probability `γ(query, product)`). Both are fitted together by
//! expectation-maximisation on the observed views and clicks, with the first place
//! taken as always examined (which fixes the model's scale).
//!
//! Few views say little: each `γ` is smoothed toward its product's attractiveness
//! over all queries (itself smoothed toward the mean of all), as if `prior_strength`
//! views of it had been seen with that rate. One lucky click then moves a product a
//! little, twenty move it a lot.
//!
//! Abuse: views and clicks are counted per [`Sessions`] entry, one per client, query
//! and day, so one client flooding clicks on one product counts once.

use std::collections::HashMap;

/// Places with a propensity of their own; lower places share the last one.
pub const PLACES: usize = 20;
/// Rounds of expectation-maximisation (the fit changes by less than 1e-4 well before).
const ROUNDS: usize = 50;

/// One client's searches for one query on one day: every product shown, at the best
/// place it had, and those clicked.
/// (Lists, not maps: a session shows ten products or so, and there are many.)
#[derive(Debug, Default, Clone)]
struct Session {
    query: u32,
    /// Each product shown with its best place (from 1).
    shown: Vec<(i64, u32)>,
    clicked: Vec<i64>,
}

/// What the log says clients saw and clicked, at most once per client, query,
/// product and day.
#[derive(Debug, Default)]
pub struct Sessions {
    queries: Vec<String>,
    query_ids: HashMap<String, u32>,
    clients: HashMap<String, u32>,
    by_key: HashMap<(u32, u32, i64), Session>,
    /// Clicks counted (after the one-per-client cap) and clicks sent.
    clicks: u64,
    clicks_seen: u64,
    searches: u64,
}

/// Where a search's session is, for its clicks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey(u32, u32, i64);

impl Sessions {
    /// Adds a search for `query` (a [`crate::retrieval::learned::query_key`]) by
    /// `client` on `day` that showed `shown` in order; its clicks go to the key
    /// returned.
    pub fn search(&mut self, query: &str, client: &str, day: i64, shown: &[i64]) -> SessionKey {
        self.searches += 1;
        let query = match self.query_ids.get(query) {
            Some(id) => *id,
            None => {
                let id = self.queries.len() as u32;
                self.queries.push(query.to_owned());
                self.query_ids.insert(query.to_owned(), id);
                id
            }
        };
        let next = self.clients.len() as u32;
        let client = *self.clients.entry(client.to_owned()).or_insert(next);
        let session = self.by_key.entry((query, client, day)).or_default();
        session.query = query;
        for (place, product) in shown.iter().enumerate() {
            let place = place as u32 + 1;
            match session.shown.iter_mut().find(|(p, _)| p == product) {
                Some((_, best)) => *best = (*best).min(place),
                None => session.shown.push((*product, place)),
            }
        }
        SessionKey(query, client, day)
    }

    /// Adds a click on `product` in the session of `key`; a product the session did
    /// not show, or already counted, is not counted.
    pub fn click(&mut self, key: SessionKey, product: i64) {
        self.clicks_seen += 1;
        if let Some(session) = self.by_key.get_mut(&(key.0, key.1, key.2))
            && session.shown.iter().any(|(p, _)| *p == product)
            && !session.clicked.contains(&product)
        {
            session.clicked.push(product);
            self.clicks += 1;
        }
    }

    /// Searches added.
    pub fn searches(&self) -> u64 {
        self.searches
    }

    /// Clicks counted, after the one-per-client-query-product-day cap.
    pub fn clicks(&self) -> u64 {
        self.clicks
    }

    /// Clicks added, counted or not.
    pub fn clicks_seen(&self) -> u64 {
        self.clicks_seen
    }

    /// Sessions (client, query, day) kept.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// How the model is fitted.
#[derive(Debug, Clone, Copy)]
pub struct FitSettings {
    /// Views a product's attractiveness for a query is smoothed with (see the module
    /// docs).
    pub prior_strength: f64,
    /// Clicks a query needs (over all its products) to be learned at all: a query
    /// whose results are never clicked says more about the query than the products.
    pub min_clicks: u64,
}

/// What was learned for one query: each product shown for it, with how much more
/// (or less) attractive it is than the average product.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLifts {
    pub query: String,
    pub lifts: Vec<(i64, f32)>,
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickModel {
    /// `θ` of places 1..=[`PLACES`] (the first is 1).
    pub propensities: Vec<f64>,
    /// The mean attractiveness the lifts are measured from.
    pub mean: f64,
    pub queries: Vec<QueryLifts>,
}

/// Views and clicks of one product for one query at one place.
struct Cell {
    pair: usize,
    place: usize,
    views: f64,
    clicks: f64,
}

/// Fits the position-based model to `sessions` (see the module docs).
pub fn fit(sessions: &Sessions, settings: FitSettings) -> ClickModel {
    let mut query_clicks = vec![0u64; sessions.queries.len()];
    for session in sessions.by_key.values() {
        query_clicks[session.query as usize] += session.clicked.len() as u64;
    }
    let learned = |query: u32| query_clicks[query as usize] >= settings.min_clicks.max(1);

    // Views and clicks by (query, product, place), for the learned queries.
    let mut pairs: Vec<(u32, i64)> = Vec::new();
    let mut pair_ids: HashMap<(u32, i64), usize> = HashMap::new();
    let mut cells: HashMap<(usize, usize), (f64, f64)> = HashMap::new();
    for session in sessions.by_key.values().filter(|s| learned(s.query)) {
        for &(product, place) in &session.shown {
            let pair = *pair_ids.entry((session.query, product)).or_insert_with(|| {
                pairs.push((session.query, product));
                pairs.len() - 1
            });
            let place = (place as usize).min(PLACES) - 1;
            let cell = cells.entry((pair, place)).or_default();
            cell.0 += 1.0;
            if session.clicked.contains(&product) {
                cell.1 += 1.0;
            }
        }
    }
    let cells: Vec<Cell> = cells
        .into_iter()
        .map(|((pair, place), (views, clicks))| Cell {
            pair,
            place,
            views,
            clicks,
        })
        .collect();
    let mut products: HashMap<i64, usize> = HashMap::new();
    let product_of: Vec<usize> = pairs
        .iter()
        .map(|(_, product)| {
            let next = products.len();
            *products.entry(*product).or_insert(next)
        })
        .collect();

    let alpha = settings.prior_strength.max(0.0);
    let mut theta: Vec<f64> = (1..=PLACES).map(|p| 1.0 / p as f64).collect();
    let total_views: f64 = cells.iter().map(|c| c.views).sum();
    let total_clicks: f64 = cells.iter().map(|c| c.clicks).sum();
    let mut mean = if total_views > 0.0 {
        (total_clicks / total_views).clamp(0.01, 0.99)
    } else {
        0.5
    };
    let mut gamma = vec![mean; pairs.len()];
    let mut prior = vec![mean; products.len()];
    for _ in 0..ROUNDS {
        let mut theta_hits = [0.0; PLACES];
        let mut theta_views = [0.0; PLACES];
        let mut gamma_hits = vec![0.0; pairs.len()];
        let mut gamma_views = vec![0.0; pairs.len()];
        for cell in &cells {
            let (t, g) = (theta[cell.place], gamma[cell.pair]);
            let unclicked = cell.views - cell.clicks;
            let none = (1.0 - t * g).max(1e-12);
            // A view without a click: examined and unattractive, or not examined.
            theta_hits[cell.place] += cell.clicks + unclicked * t * (1.0 - g) / none;
            theta_views[cell.place] += cell.views;
            gamma_hits[cell.pair] += cell.clicks + unclicked * (1.0 - t) * g / none;
            gamma_views[cell.pair] += cell.views;
        }
        for place in 1..PLACES {
            if theta_views[place] > 0.0 {
                theta[place] = (theta_hits[place] / theta_views[place]).clamp(1e-3, 1.0);
            }
        }
        let (hits, views): (f64, f64) = (gamma_hits.iter().sum(), gamma_views.iter().sum());
        if views > 0.0 {
            mean = hits / views;
        }
        let mut product_hits = vec![0.0; products.len()];
        let mut product_views = vec![0.0; products.len()];
        for (pair, product) in product_of.iter().enumerate() {
            product_hits[*product] += gamma_hits[pair];
            product_views[*product] += gamma_views[pair];
        }
        for (p, rate) in prior.iter_mut().enumerate() {
            *rate = (product_hits[p] + alpha * mean) / (product_views[p] + alpha).max(1e-12);
        }
        for (pair, rate) in gamma.iter_mut().enumerate() {
            let p = product_of[pair];
            *rate = ((gamma_hits[pair] + alpha * prior[p])
                / (gamma_views[pair] + alpha).max(1e-12))
            .clamp(0.0, 1.0);
        }
    }

    let mut by_query: HashMap<u32, Vec<(i64, f32)>> = HashMap::new();
    for (pair, (query, product)) in pairs.iter().enumerate() {
        by_query
            .entry(*query)
            .or_default()
            .push((*product, (gamma[pair] - mean) as f32));
    }
    let mut queries: Vec<QueryLifts> = by_query
        .into_iter()
        .map(|(query, mut lifts)| {
            lifts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            QueryLifts {
                query: sessions.queries[query as usize].clone(),
                lifts,
            }
        })
        .collect();
    queries.sort_by(|a, b| a.query.cmp(&b.query));
    ClickModel {
        propensities: theta,
        mean,
        queries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: FitSettings = FitSettings {
        prior_strength: 5.0,
        min_clicks: 1,
    };

    fn lifts(model: &ClickModel, query: &str) -> HashMap<i64, f32> {
        model
            .queries
            .iter()
            .find(|q| q.query == query)
            .map(|q| q.lifts.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Clients shown `order` for "taladro", each clicking by a fixed rule.
    fn sessions(clients: usize, order: &[i64], clicks: impl Fn(usize) -> Vec<i64>) -> Sessions {
        let mut sessions = Sessions::default();
        for client in 0..clients {
            let key = sessions.search("taladro", &format!("c{client}"), 0, order);
            for product in clicks(client) {
                sessions.click(key, product);
            }
        }
        sessions
    }

    #[test]
    fn attractiveness_and_place_bias_are_told_apart() {
        use rand::{Rng, SeedableRng};
        // Clients examine place p with `theta[p]` and click what attracts them; the
        // four products take turns at every place, as rankings that change do.
        let theta = [1.0, 0.6, 0.4, 0.3];
        let attracts: HashMap<i64, f64> = HashMap::from([(1, 0.3), (2, 0.1), (3, 0.6), (4, 0.1)]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut sessions = Sessions::default();
        for client in 0..4000 {
            let order: Vec<i64> = (0..4).map(|i| (client + i) % 4 + 1).collect();
            let key = sessions.search("taladro", &format!("c{client}"), 0, &order);
            for (place, product) in order.iter().enumerate() {
                if rng.random::<f64>() < theta[place] * attracts[product] {
                    sessions.click(key, *product);
                }
            }
        }
        let model = fit(&sessions, SETTINGS);
        for (place, (fitted, truth)) in model.propensities.iter().zip(theta).enumerate() {
            assert!(
                (fitted - truth).abs() < 0.08,
                "place {}: {:?}",
                place + 1,
                &model.propensities[..4]
            );
        }
        let lifts = lifts(&model, "taladro");
        for (product, rate) in attracts {
            let fitted = lifts[&product] as f64 + model.mean;
            assert!(
                (fitted - rate).abs() < 0.08,
                "product {product}: {fitted} for {rate}"
            );
        }
    }

    #[test]
    fn a_product_clicked_lower_down_is_credited_for_its_place() {
        // Shown always in one order: 1 at the top is clicked by 30 of 100 clients, 3
        // at the third place by 20. Seen less often there, 3 is the more attractive.
        let model = fit(
            &sessions(100, &[1, 2, 3, 4], |c| match c % 10 {
                0..3 => vec![1],
                3 | 4 => vec![3],
                _ => vec![],
            }),
            SETTINGS,
        );
        let lifts = lifts(&model, "taladro");
        assert!(lifts[&3] > lifts[&1], "{lifts:?} {model:?}");
        assert!(lifts[&1] > lifts[&2] && lifts[&1] > lifts[&4], "{lifts:?}");
        assert_eq!(model.propensities[0], 1.0);
    }

    #[test]
    fn one_click_moves_a_product_less_than_many() {
        let one = fit(
            &sessions(20, &[1, 2, 3], |c| if c == 0 { vec![2] } else { vec![] }),
            SETTINGS,
        );
        let many = fit(
            &sessions(20, &[1, 2, 3], |c| if c < 10 { vec![2] } else { vec![] }),
            SETTINGS,
        );
        let (one, many) = (lifts(&one, "taladro")[&2], lifts(&many, "taladro")[&2]);
        assert!(one > 0.0 && many > one * 2.0, "one click {one}, ten {many}");
    }

    #[test]
    fn a_client_counts_once_per_query_product_and_day() {
        let honest = sessions(3, &[1, 2, 3], |_| vec![3]);
        let mut flooded = sessions(3, &[1, 2, 3], |_| vec![3]);
        // Client c0 searches again and clicks 3 fifty times the same day.
        for _ in 0..50 {
            let key = flooded.search("taladro", "c0", 0, &[1, 2, 3]);
            flooded.click(key, 3);
        }
        assert_eq!(flooded.clicks(), 3);
        assert_eq!(flooded.clicks_seen(), 53);
        assert_eq!(fit(&flooded, SETTINGS), fit(&honest, SETTINGS));
        // The next day it counts again.
        let key = flooded.search("taladro", "c0", 1, &[1, 2, 3]);
        flooded.click(key, 3);
        assert_eq!(flooded.clicks(), 4);
    }

    #[test]
    fn a_click_on_what_was_not_shown_is_not_counted() {
        let mut sessions = Sessions::default();
        let key = sessions.search("martillo", "c0", 0, &[5, 6]);
        sessions.click(key, 9);
        assert_eq!(sessions.clicks(), 0);
    }

    #[test]
    fn queries_without_clicks_are_not_learned() {
        let mut sessions = sessions(5, &[1, 2], |_| vec![1]);
        sessions.search("pintura", "c0", 0, &[7, 8]);
        let model = fit(&sessions, SETTINGS);
        assert_eq!(
            model
                .queries
                .iter()
                .map(|q| q.query.as_str())
                .collect::<Vec<_>>(),
            ["taladro"]
        );
    }
}
