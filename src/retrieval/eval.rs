//! Retrieval quality on a shop's own judged queries (`tendero eval`).
//!
//! Input: `products.csv` (sku, nombre, optional other text
//! columns), `queries.csv` (query_id, query) and `judgments.csv` (query_id, sku,
//! grade; higher is better, 0 irrelevant). The products are indexed in a store of
//! their own (a temporary folder unless one is given, which is then reused when its
//! embedder matches), every query runs in every mode, and each mode gets NDCG@10
//! (linear gain = grade, ideal from all of the query's judgments, unjudged = 0),
//! MRR@10 and Recall@100 (relevant = grade >= `relevant_grade`), and search latency
//! percentiles excluding query embedding, which is measured apart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::Embedder;
use super::fusion::Fusion;
use super::search::{Filters, IndexOptions, Mode, SearchIndex};
use super::store::{Chunk, ChunkKind, ChunkStore};
use crate::progress::Progress;

/// Grade from which a product counts as relevant for MRR and recall (the Home Depot
/// set's 1.33 = two of three raters said relevant).
pub const RELEVANT_GRADE: f64 = 1.33;

/// One of two fixed halves of the judged queries (by a hash of the query id), so
/// that settings chosen on one half are reported on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The half settings are chosen on.
    Tune,
    /// The other half, where the chosen settings are reported.
    Test,
}

impl Split {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "tune" => Some(Self::Tune),
            "test" => Some(Self::Test),
            _ => None,
        }
    }

    /// Whether the query `id` belongs to this half.
    pub fn holds(self, id: &str) -> bool {
        let even = super::hash::fnv1a(id.as_bytes()).is_multiple_of(2);
        even == (self == Self::Tune)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tune => "tune",
            Self::Test => "test",
        }
    }
}

/// What to evaluate and how.
pub struct EvalConfig {
    pub dir: PathBuf,
    /// LanceDB folder to index into and reuse; a temporary one when `None`.
    pub store_dir: Option<PathBuf>,
    pub language: String,
    pub fusion: Fusion,
    pub hnsw_from: usize,
    pub ef_search: usize,
    /// Evaluate only the first `n` queries (all when `None`).
    pub limit: Option<usize>,
    /// Evaluate only one half of the queries (all when `None`).
    pub split: Option<Split>,
}

/// One mode's scores.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModeReport {
    pub mode: Mode,
    pub ndcg_at_10: f64,
    pub mrr_at_10: f64,
    pub recall_at_100: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
}

/// The whole evaluation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub embedder: String,
    pub fusion: String,
    /// The FAISS structure searched ("Flat", or "HNSW32, efSearch N").
    pub faiss: String,
    pub products: usize,
    /// The half of the queries evaluated (`tune` or `test`), when not all.
    pub split: Option<&'static str>,
    pub queries: usize,
    /// Queries with at least one grade above 0 (the ones NDCG averages over).
    pub judged_queries: usize,
    pub index_seconds: f64,
    pub embed_ms_p50: f64,
    pub embed_ms_p95: f64,
    pub modes: Vec<ModeReport>,
}

/// A judged query: its id, its text and the grade of each judged product's sku.
pub struct Judged {
    pub id: String,
    pub text: String,
    pub grades: HashMap<String, f64>,
}

/// The products indexed and the queries ready to search: what every evaluation of
/// the judged set starts from.
pub struct Prepared {
    pub index: SearchIndex,
    /// Each product's sku, by its key in the index.
    pub skus: Vec<String>,
    pub queries: Vec<Judged>,
    /// Each query as searched (misspellings corrected), with the correction's time.
    pub searched: Vec<(String, f64)>,
    /// Each searched query's vector, and how long it took.
    pub vectors: Vec<Vec<f32>>,
    pub embed_ms: Vec<f64>,
    pub index_seconds: f64,
    /// Keeps a temporary store alive while the index reads it.
    _temp: tempfile::TempDir,
}

fn read_csv(path: &Path) -> anyhow::Result<(Vec<String>, Vec<csv::StringRecord>)> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let records = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    Ok((headers, records))
}

fn column(headers: &[String], name: &str, file: &Path) -> anyhow::Result<usize> {
    headers
        .iter()
        .position(|h| h == name)
        .with_context(|| format!("{} has no column {name}", file.display()))
}

/// Products as chunks (without vectors): key = row number, text = every column but sku.
fn read_products(dir: &Path) -> anyhow::Result<(Vec<Chunk>, Vec<String>)> {
    let path = dir.join("products.csv");
    let (headers, records) = read_csv(&path)?;
    let sku_col = column(&headers, "sku", &path)?;
    let name_col =
        column(&headers, "nombre", &path).or_else(|_| column(&headers, "name", &path))?;
    let mut chunks = Vec::with_capacity(records.len());
    let mut skus = Vec::with_capacity(records.len());
    for (row, record) in records.iter().enumerate() {
        let sku = record.get(sku_col).unwrap_or_default().to_owned();
        let title = record.get(name_col).unwrap_or_default().to_owned();
        let text = record
            .iter()
            .enumerate()
            .filter(|(i, v)| *i != sku_col && !v.trim().is_empty())
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join("\n");
        chunks.push(Chunk {
            key: row as i64,
            kind: ChunkKind::Producto,
            sku: Some(sku.clone()),
            categoria: None,
            precio_centavos: None,
            stock: None,
            activo: true,
            title,
            content_hash: format!("{:016x}", super::hash::fnv1a(text.as_bytes())),
            text,
            vector: Vec::new(),
        });
        skus.push(sku);
    }
    Ok((chunks, skus))
}

fn read_queries(dir: &Path) -> anyhow::Result<Vec<Judged>> {
    let path = dir.join("queries.csv");
    let (headers, records) = read_csv(&path)?;
    let (id_col, text_col) = (
        column(&headers, "query_id", &path)?,
        column(&headers, "query", &path)?,
    );
    let mut queries: Vec<Judged> = records
        .iter()
        .map(|r| Judged {
            id: r.get(id_col).unwrap_or_default().to_owned(),
            text: r.get(text_col).unwrap_or_default().to_owned(),
            grades: HashMap::new(),
        })
        .collect();
    let path = dir.join("judgments.csv");
    let (headers, records) = read_csv(&path)?;
    let (q_col, sku_col, grade_col) = (
        column(&headers, "query_id", &path)?,
        column(&headers, "sku", &path)?,
        column(&headers, "grade", &path)?,
    );
    let position: HashMap<String, usize> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| (q.id.clone(), i))
        .collect();
    for (line, record) in records.iter().enumerate() {
        let grade: f64 = record
            .get(grade_col)
            .unwrap_or_default()
            .trim()
            .parse()
            .with_context(|| format!("{}:{}: grade is not a number", path.display(), line + 2))?;
        if let Some(&i) = position.get(record.get(q_col).unwrap_or_default()) {
            queries[i]
                .grades
                .insert(record.get(sku_col).unwrap_or_default().to_owned(), grade);
        }
    }
    Ok(queries)
}

/// NDCG@10, MRR@10 and Recall@100 of one ranking (`None` parts: nothing to score).
pub fn score(ranked: &[&str], grades: &HashMap<String, f64>) -> (Option<f64>, f64, Option<f64>) {
    let gain = |sku: &str| grades.get(sku).copied().unwrap_or(0.0).max(0.0);
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, sku)| gain(sku) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<f64> = grades.values().copied().filter(|g| *g > 0.0).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| g / (i as f64 + 2.0).log2())
        .sum();
    let ndcg = (idcg > 0.0).then(|| dcg / idcg);
    let relevant = |sku: &str| gain(sku) >= RELEVANT_GRADE;
    let mrr = ranked
        .iter()
        .take(10)
        .position(|sku| relevant(sku))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0));
    let total_relevant = grades.values().filter(|g| **g >= RELEVANT_GRADE).count();
    let recall = (total_relevant > 0).then(|| {
        ranked.iter().take(100).filter(|sku| relevant(sku)).count() as f64 / total_relevant as f64
    });
    (ndcg, mrr, recall)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Indexes the products (reusing `store_dir` when it already holds them) and
/// corrects and embeds every judged query.
pub async fn prepare(
    config: &EvalConfig,
    embedder: Arc<dyn Embedder>,
    progress: &dyn Progress,
) -> anyhow::Result<Prepared> {
    let (mut chunks, skus) = read_products(&config.dir)?;
    let mut queries = read_queries(&config.dir)?;
    if let Some(split) = config.split {
        queries.retain(|q| split.holds(&q.id));
    }
    if let Some(limit) = config.limit {
        queries.truncate(limit);
    }
    let temp = tempfile::tempdir()?;
    let store_dir = config
        .store_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let table = format!("eval_{}", super::embedders::slug(embedder.id()));
    let store = ChunkStore::open(
        store_dir.to_str().context("store folder is not UTF-8")?,
        &table,
        embedder.dim(),
        &config.language,
    )
    .await?;
    let started = Instant::now();
    let stored = store.hashes().await?;
    let complete = stored.len() == chunks.len()
        && chunks
            .iter()
            .all(|c| stored.get(&c.key) == Some(&c.content_hash));
    if !complete {
        if !stored.is_empty() {
            store
                .delete(&stored.keys().copied().collect::<Vec<_>>())
                .await?;
        }
        progress.start("embeddings", chunks.len() as u64);
        for batch in chunks.chunks_mut(1024) {
            let embedder = embedder.clone();
            let texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
            let vectors = tokio::task::spawn_blocking(move || {
                embedder.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .await??;
            for (chunk, vector) in batch.iter_mut().zip(vectors) {
                chunk.vector = vector;
            }
            store.append(batch).await?;
            progress.advance(batch.len() as u64);
        }
        progress.finish();
        // As the server's upkeep does after a large write.
        store.compact().await?;
    }
    let index = SearchIndex::open(
        store,
        embedder.clone(),
        IndexOptions {
            faiss_path: config
                .store_dir
                .as_ref()
                .map(|d| d.join(format!("{table}.faiss"))),
            hnsw_from: config.hnsw_from,
            ef_search: config.ef_search,
            fusion: config.fusion,
        },
    )
    .await?;
    let index_seconds = started.elapsed().as_secs_f64();

    progress.start("consultas", queries.len() as u64);
    let mut embed_ms = Vec::with_capacity(queries.len());
    let mut vectors = Vec::with_capacity(queries.len());
    // Queries as searched (misspellings corrected, as every search does), with the
    // time the correction took: it counts as search time.
    let mut searched = Vec::with_capacity(queries.len());
    for query in &queries {
        let t = Instant::now();
        let text = index
            .correct(&query.text)
            .unwrap_or_else(|| query.text.clone());
        searched.push((text.clone(), t.elapsed().as_secs_f64() * 1e3));
        let embedder = embedder.clone();
        let t = Instant::now();
        let vector = tokio::task::spawn_blocking(move || embedder.embed(&[text.as_str()]))
            .await??
            .pop()
            .context("no vector")?;
        embed_ms.push(t.elapsed().as_secs_f64() * 1e3);
        vectors.push(vector);
        progress.advance(1);
    }
    progress.finish();

    Ok(Prepared {
        index,
        skus,
        queries,
        searched,
        vectors,
        embed_ms,
        index_seconds,
        _temp: temp,
    })
}

/// Indexes the products (see [`prepare`]) and runs every judged query in every mode.
pub async fn run(
    config: &EvalConfig,
    embedder: Arc<dyn Embedder>,
    progress: &dyn Progress,
) -> anyhow::Result<EvalReport> {
    let Prepared {
        index,
        skus,
        queries,
        searched,
        vectors,
        mut embed_ms,
        index_seconds,
        _temp,
    } = prepare(config, embedder.clone(), progress).await?;
    let filters = Filters::default();
    let mut modes = Vec::new();
    for mode in Mode::ALL {
        progress.start(mode.as_str(), queries.len() as u64);
        let (mut ndcg, mut mrr, mut recall, mut latency) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((query, vector), (text, spell_ms)) in queries.iter().zip(&vectors).zip(&searched) {
            let outcome = index
                .search_with(text, Some(vector), mode, &filters, 100)
                .await?;
            latency.push(spell_ms + outcome.search_ms);
            let ranked: Vec<&str> = outcome
                .hits
                .iter()
                .map(|h| skus[h.key as usize].as_str())
                .collect();
            let (n, m, r) = score(&ranked, &query.grades);
            if let Some(n) = n {
                ndcg.push(n);
                mrr.push(m);
            }
            if let Some(r) = r {
                recall.push(r);
            }
            progress.advance(1);
        }
        progress.finish();
        latency.sort_by(f64::total_cmp);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        modes.push(ModeReport {
            mode,
            ndcg_at_10: mean(&ndcg),
            mrr_at_10: mean(&mrr),
            recall_at_100: mean(&recall),
            latency_ms_p50: percentile(&latency, 50.0),
            latency_ms_p95: percentile(&latency, 95.0),
            latency_ms_p99: percentile(&latency, 99.0),
        });
    }
    embed_ms.sort_by(f64::total_cmp);
    let judged_queries = queries
        .iter()
        .filter(|q| q.grades.values().any(|g| *g > 0.0))
        .count();
    Ok(EvalReport {
        embedder: embedder.id().to_owned(),
        fusion: format!("{:?}", config.fusion),
        faiss: match index.status().faiss {
            "hnsw" => format!("HNSW32, efSearch {}", config.ef_search),
            other => other.to_owned(),
        },
        products: skus.len(),
        split: config.split.map(Split::as_str),
        queries: queries.len(),
        judged_queries,
        index_seconds,
        embed_ms_p50: percentile(&embed_ms, 50.0),
        embed_ms_p95: percentile(&embed_ms, 95.0),
        modes,
    })
}

impl EvalReport {
    /// The report as a Markdown table (what the README shows).
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} products, {} queries{} ({} judged), embedder {}, fusion {}, FAISS {}\n\
             index ready in {:.1} s; query embedding p50 {:.2} ms, p95 {:.2} ms\n\n\
             | mode | NDCG@10 | MRR@10 | Recall@100 | p50 ms | p95 ms | p99 ms |\n\
             | --- | --- | --- | --- | --- | --- | --- |\n",
            self.products,
            self.queries,
            self.split
                .map(|s| format!(" (the {s} half)"))
                .unwrap_or_default(),
            self.judged_queries,
            self.embedder,
            self.fusion,
            self.faiss,
            self.index_seconds,
            self.embed_ms_p50,
            self.embed_ms_p95
        );
        for m in &self.modes {
            out.push_str(&format!(
                "| {} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} |\n",
                m.mode.as_str(),
                m.ndcg_at_10,
                m.mrr_at_10,
                m.recall_at_100,
                m.latency_ms_p50,
                m.latency_ms_p95,
                m.latency_ms_p99
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_halves_split_the_queries() {
        let ids: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let tune = ids.iter().filter(|id| Split::Tune.holds(id)).count();
        let test = ids.iter().filter(|id| Split::Test.holds(id)).count();
        assert_eq!(tune + test, ids.len());
        assert!(
            (400..600).contains(&tune),
            "{tune} of 1000 in the tuning half"
        );
    }

    #[test]
    fn scores_follow_their_definitions() {
        let grades: HashMap<String, f64> = [("a", 2.0), ("b", 1.0), ("c", 0.0)]
            .map(|(s, g)| (s.to_owned(), g))
            .into();
        // Ideal order: a, b.
        let (ndcg, mrr, recall) = score(&["a", "b", "x"], &grades);
        assert!((ndcg.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(mrr, 1.0);
        assert_eq!(recall, Some(1.0));
        // b first, a third: DCG = 1/log2(2) + 2/log2(4) = 2; IDCG = 2 + 1/log2(3).
        let (ndcg, mrr, _) = score(&["b", "x", "a"], &grades);
        let expected = 2.0 / (2.0 + 1.0 / 3f64.log2());
        assert!((ndcg.unwrap() - expected).abs() < 1e-9);
        // b (grade 1) is not "relevant" (< 1.33): the first relevant is a, at rank 3.
        assert!((mrr - 1.0 / 3.0).abs() < 1e-9);
        let (ndcg, mrr, recall) = score(&["x", "y"], &grades);
        assert_eq!((ndcg, mrr, recall), (Some(0.0), 0.0, Some(0.0)));
        let none: HashMap<String, f64> = [("c".to_owned(), 0.0)].into();
        assert_eq!(score(&["c"], &none), (None, 0.0, None));
    }
}
