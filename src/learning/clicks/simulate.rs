//! The click simulator (`tendero eval DIR --clics N`): how much the learned term
//! improves search on judged queries, measured without judging anything by hand.
//!
//! Half the judged queries (a fixed half, by a hash of their id) receive sessions;
//! the other half receive none. In each round every clicked query gets one session:
//! a simulated customer issues it, sees the first [`SHOWN`] results of Tendero's
//! real ranking (with what was learned so far), examines place `p` with probability
//! `1/p` and clicks a product it examines with a probability that grows with the
//! product's grade (`0.05 + 0.3 × grade`: an unjudged or irrelevant product is
//! clicked now and then, an exact one is skipped a third of the time). The learner
//! then fits on the sessions so far, exactly as the job does on the event log: it
//! sees the clicks, never the grades.
//!
//! NDCG@10 is scored after the rounds asked for on the queries with sessions, on
//! those without, and on those without whose closest clicked query is similar
//! enough to borrow from. The oracle reorders the results the first session showed
//! by their grades: the most that clicks on shown results could teach.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::artifact::Stored;
use super::model::{self, Sessions};
use super::{LearnedClicks, fit_settings};
use crate::config::LearningSettings;
use crate::progress::Progress;
use crate::retrieval::eval::{Prepared, percentile, score};
use crate::retrieval::hash::fnv1a;
use crate::retrieval::learned::{LearnedTerm, query_key};
use crate::retrieval::search::{Filters, Mode};

/// Results a simulated customer sees.
pub const SHOWN: usize = 10;

/// How the simulation runs.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// Sessions per clicked query (rounds).
    pub sessions: usize,
    /// Rounds after which NDCG is scored (0: before any).
    pub checkpoints: Vec<usize>,
    pub seed: u64,
    /// The learning's settings (weights, smoothing, borrowing).
    pub settings: LearningSettings,
}

/// NDCG@10 of each group of queries at one point.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Point {
    pub sessions: usize,
    pub clicked: f64,
    pub unclicked: f64,
    /// Of the unclicked: those close to a clicked query.
    pub close: f64,
    /// Of the unclicked: the others.
    pub far: f64,
}

/// The simulation's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimulationReport {
    pub queries: usize,
    pub clicked_queries: usize,
    pub unclicked_queries: usize,
    pub close_queries: usize,
    pub curve: Vec<Point>,
    /// NDCG@10 of the clicked queries with their first results reordered by grade.
    pub oracle_clicked: f64,
    /// Of the oracle's gain over no learning, the share reached after the last round.
    pub oracle_share: f64,
    pub clicks: u64,
    /// The last fit's time, on all the sessions.
    pub fit_ms: f64,
    /// Search time (past embedding) p50 with and without the learned term, after
    /// the last round, over every query.
    pub search_ms_p50_learned: f64,
    pub search_ms_p50_without: f64,
}

struct Query {
    /// Index in `prepared.queries`.
    at: usize,
    key: String,
}

/// Runs the simulation on the prepared judged set (see the module docs).
pub async fn run(
    prepared: &Prepared,
    config: &SimulationConfig,
    embedder_id: &str,
    progress: &dyn Progress,
) -> anyhow::Result<SimulationReport> {
    let index = &prepared.index;
    let judged: Vec<Query> = prepared
        .queries
        .iter()
        .enumerate()
        .filter(|(_, q)| q.grades.values().any(|g| *g > 0.0))
        .map(|(at, _)| Query {
            at,
            key: query_key(&prepared.searched[at].0),
        })
        .collect();
    // A high bit of the hash: FNV-1a's lowest bit is the parity of the bytes, which
    // the tune/test split already fixed, and bit 32 follows it on short ids.
    let (clicked, unclicked): (Vec<&Query>, Vec<&Query>) = judged
        .iter()
        .partition(|q| (fnv1a(prepared.queries[q.at].id.as_bytes()) >> 48).is_multiple_of(2));
    let close = close_queries(
        prepared,
        &clicked,
        &unclicked,
        config.settings.clicks_neighbour_similarity,
    );

    let search = async |q: &Query, learned: bool, k: usize| -> anyhow::Result<(Vec<i64>, f64)> {
        let filters = Filters {
            ignore_clicks: !learned,
            ..Filters::default()
        };
        let outcome = index
            .search_with(
                &prepared.searched[q.at].0,
                Some(&prepared.vectors[q.at]),
                Mode::Hybrid,
                &filters,
                k,
            )
            .await?;
        Ok((
            outcome.hits.iter().map(|h| h.key).collect(),
            outcome.search_ms,
        ))
    };
    let ndcg = |q: &Query, ranked: &[i64]| -> f64 {
        let skus: Vec<&str> = ranked
            .iter()
            .map(|k| prepared.skus[*k as usize].as_str())
            .collect();
        score(&skus, &prepared.queries[q.at].grades)
            .0
            .unwrap_or(0.0)
    };
    let attraction = |q: &Query, key: i64| -> f64 {
        let grade = prepared.queries[q.at]
            .grades
            .get(&prepared.skus[key as usize])
            .copied()
            .unwrap_or(0.0)
            .max(0.0);
        0.05 + 0.3 * grade
    };

    // The oracle, from the results shown before any learning.
    index.set_learned(None);
    let mut oracle = Vec::with_capacity(clicked.len());
    for &q in &clicked {
        let (mut ranked, _) = search(q, false, 100).await?;
        let grade = |key: &i64| attraction(q, *key);
        let top = SHOWN.min(ranked.len());
        ranked[..top].sort_by(|a, b| grade(b).total_cmp(&grade(a)));
        oracle.push(ndcg(q, &ranked));
    }

    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut sessions = Sessions::default();
    let mut curve = Vec::new();
    let mut fit_ms = 0.0;
    let vectors: HashMap<&str, &Vec<f32>> = judged
        .iter()
        .map(|q| (q.key.as_str(), &prepared.vectors[q.at]))
        .collect();
    progress.start("sesiones", (config.sessions * clicked.len()) as u64);
    for round in 0..=config.sessions {
        if round > 0 {
            for &q in &clicked {
                let (shown, _) = search(q, true, SHOWN).await?;
                let key =
                    sessions.search(&q.key, &format!("{}-{round}", q.key), round as i64, &shown);
                for (place, product) in shown.iter().enumerate() {
                    let examined = 1.0 / (place as f64 + 1.0);
                    if rng.random::<f64>() < examined * attraction(q, *product) {
                        sessions.click(key, *product);
                    }
                }
                progress.advance(1);
            }
            let started = Instant::now();
            let model = model::fit(&sessions, fit_settings(&config.settings));
            fit_ms = started.elapsed().as_secs_f64() * 1e3;
            let stored = Stored {
                vectors: model
                    .queries
                    .iter()
                    .map(|q| vectors.get(q.query.as_str()).map(|v| v.to_vec()))
                    .collect(),
                model,
                embedder: embedder_id.to_owned(),
            };
            let term = LearnedClicks::new(
                stored,
                &config.settings,
                embedder_id,
                index.embedder().dim(),
            )?;
            index.set_learned(Some(Arc::new(term) as Arc<dyn LearnedTerm>));
        }
        if config.checkpoints.contains(&round) {
            let mut clicked_scores = Vec::with_capacity(clicked.len());
            for &q in &clicked {
                clicked_scores.push(ndcg(q, &search(q, true, 100).await?.0));
            }
            let (mut all, mut near, mut far) = (Vec::new(), Vec::new(), Vec::new());
            for &q in &unclicked {
                let value = ndcg(q, &search(q, true, 100).await?.0);
                all.push(value);
                if close.contains(&q.at) {
                    near.push(value);
                } else {
                    far.push(value);
                }
            }
            curve.push(Point {
                sessions: round,
                clicked: mean(&clicked_scores),
                unclicked: mean(&all),
                close: mean(&near),
                far: mean(&far),
            });
        }
    }
    progress.finish();

    let (mut learned_ms, mut without_ms) = (Vec::new(), Vec::new());
    for q in &judged {
        learned_ms.push(search(q, true, SHOWN).await?.1);
        without_ms.push(search(q, false, SHOWN).await?.1);
    }
    learned_ms.sort_by(f64::total_cmp);
    without_ms.sort_by(f64::total_cmp);
    index.set_learned(None);

    let baseline = curve.first().map_or(0.0, |p| p.clicked);
    let last = curve.last().map_or(0.0, |p| p.clicked);
    let oracle_clicked = mean(&oracle);
    Ok(SimulationReport {
        queries: judged.len(),
        clicked_queries: clicked.len(),
        unclicked_queries: unclicked.len(),
        close_queries: close.len(),
        curve,
        oracle_clicked,
        oracle_share: if oracle_clicked > baseline {
            (last - baseline) / (oracle_clicked - baseline)
        } else {
            0.0
        },
        clicks: sessions.clicks(),
        fit_ms,
        search_ms_p50_learned: percentile(&learned_ms, 50.0),
        search_ms_p50_without: percentile(&without_ms, 50.0),
    })
}

/// The unclicked queries (their index in `prepared.queries`) whose closest clicked
/// query is at least `similarity` close.
fn close_queries(
    prepared: &Prepared,
    clicked: &[&Query],
    unclicked: &[&Query],
    similarity: f32,
) -> HashSet<usize> {
    unclicked
        .iter()
        .filter(|u| {
            let v = &prepared.vectors[u.at];
            clicked.iter().any(|c| {
                let w = &prepared.vectors[c.at];
                v.iter().zip(w).map(|(a, b)| a * b).sum::<f32>() >= similarity
            })
        })
        .map(|u| u.at)
        .collect()
}

impl SimulationReport {
    /// The report as Markdown (what the docs show).
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} judged queries: {} with sessions, {} without ({} close to a clicked one); {} clicks counted\n\n\
             | sessions per query | clicked queries | unclicked | unclicked, close | unclicked, far |\n\
             | --- | --- | --- | --- | --- |\n",
            self.queries,
            self.clicked_queries,
            self.unclicked_queries,
            self.close_queries,
            self.clicks
        );
        for p in &self.curve {
            out.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
                p.sessions, p.clicked, p.unclicked, p.close, p.far
            ));
        }
        out.push_str(&format!(
            "\noracle (first results reordered by grade) on the clicked queries: {:.4}; share of its gain reached: {:.0}%\n\
             last fit {:.1} ms; search p50 {:.3} ms learned, {:.3} ms without\n",
            self.oracle_clicked,
            self.oracle_share * 100.0,
            self.fit_ms,
            self.search_ms_p50_learned,
            self.search_ms_p50_without
        ));
        out
    }
}
