//! Answering searches: the query's vector and its full-text hits (each computed once
//! for the searches that ask for it at the same time), the candidates of each side
//! under the filters, and their fusion.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;

use super::{Filters, Hit, Mode, POOL, PREFILTER_SHARE, QUERY_CACHE, SearchIndex, SearchOutcome};
use crate::retrieval::fusion::{self, Fusion};
use crate::retrieval::learned;
use crate::retrieval::store::ChunkKind;
use crate::text::fold;

/// Values being computed, each once for everyone asking for it meanwhile.
pub(super) type Shared<K, V> = Mutex<HashMap<K, Arc<tokio::sync::OnceCell<V>>>>;
/// Hits of one full-text search: chunk keys and scores.
pub(super) type Hits = Arc<Vec<(i64, f32)>>;

impl SearchIndex {
    /// The query's vector, from the cache when it was asked recently; computed once
    /// for the searches that ask for it at the same time.
    pub async fn query_vector(&self, query: &str) -> anyhow::Result<Arc<Vec<f32>>> {
        let cached = || {
            self.query_cache
                .lock()
                .expect("cache lock")
                .get(query)
                .cloned()
        };
        if let Some(vector) = cached() {
            return Ok(vector);
        }
        once(&self.vectors_in_flight, query.to_owned(), || async {
            // Computed by whoever asked just before, and no longer in flight.
            if let Some(vector) = cached() {
                return Ok(vector);
            }
            let vector = Arc::new(
                self.embed(vec![query.to_owned()])
                    .await?
                    .pop()
                    .context("the embedder returned no vector")?,
            );
            let mut cache = self.query_cache.lock().expect("cache lock");
            if cache.len() >= QUERY_CACHE {
                cache.clear();
            }
            cache.insert(query.to_owned(), vector.clone());
            Ok(vector)
        })
        .await
    }

    /// `query` with its misspelt words replaced by catalog words (see
    /// [`super::lexicon::Lexicon`]), or `None` when it needs no correction.
    pub fn correct(&self, query: &str) -> Option<String> {
        self.mirror
            .read()
            .expect("mirror lock")
            .lexicon
            .correct(query)
    }

    /// `transcript` with its misheard words replaced by the catalog words they
    /// sound like (see [`super::lexicon::Lexicon::correct_spoken`]), or `None`.
    pub fn correct_spoken(&self, transcript: &str) -> Option<String> {
        self.mirror
            .read()
            .expect("mirror lock")
            .lexicon
            .correct_spoken(transcript)
    }

    /// The best `k` chunks for `query` in `mode` among those `filters` accept.
    /// Misspelt words are corrected first (see [`SearchIndex::correct`]). The
    /// full-text candidates are searched while the query is embedded.
    pub async fn search(
        &self,
        query: &str,
        mode: Mode,
        filters: &Filters,
        k: usize,
    ) -> anyhow::Result<SearchOutcome> {
        let corrected = self.correct(query);
        let query = corrected.as_deref().unwrap_or(query);
        let vector = async {
            if mode.needs_vector() {
                self.query_vector(query).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let mut outcome = self.run(query, vector, mode, filters, k).await?;
        outcome.corrected = corrected;
        Ok(outcome)
    }

    /// [`SearchIndex::search`] with the query vector already computed (evaluation
    /// measures embedding and search apart).
    pub async fn search_with(
        &self,
        query: &str,
        vector: Option<&[f32]>,
        mode: Mode,
        filters: &Filters,
        k: usize,
    ) -> anyhow::Result<SearchOutcome> {
        let vector = vector.map(|v| Arc::new(v.to_vec()));
        self.run(query, std::future::ready(Ok(vector)), mode, filters, k)
            .await
    }

    /// The search, its vector side waiting for `vector` while its full-text side
    /// runs.
    async fn run(
        &self,
        query: &str,
        vector: impl Future<Output = anyhow::Result<Option<Arc<Vec<f32>>>>>,
        mode: Mode,
        filters: &Filters,
        k: usize,
    ) -> anyhow::Result<SearchOutcome> {
        let started = Instant::now();
        let empty = self.mirror.read().expect("mirror lock").meta.is_empty();
        if k == 0 || query.trim().is_empty() || empty {
            return Ok(SearchOutcome::default());
        }
        let categorias = match &filters.categoria {
            Some(c) => {
                let mirror = self.mirror.read().expect("mirror lock");
                match mirror.categorias.get(&fold(c)) {
                    Some(names) => Some(names.clone()),
                    // No chunk has that category: nothing can match.
                    None => return Ok(SearchOutcome::default()),
                }
            }
            None => None,
        };
        let pool = if mode == Mode::Hybrid { k.max(POOL) } else { k };
        let sql = filters.sql(categorias.as_ref());
        let vector_side = async {
            let vector = vector.await?;
            let ready = Instant::now();
            let hits = match (mode.needs_vector(), &vector) {
                (true, Some(vector)) => {
                    self.vector_candidates(vector, pool, filters, categorias.as_ref(), &sql)
                        .await?
                }
                _ => Vec::new(),
            };
            anyhow::Ok((vector, ready, hits))
        };
        let bm25_side = async {
            if mode == Mode::Vector {
                Ok(Vec::new())
            } else {
                self.bm25_candidates(query, pool, k, filters, categorias.as_ref(), &sql)
                    .await
            }
        };
        let ((vector, ready, vector_hits), bm25_hits) = tokio::try_join!(vector_side, bm25_side)?;
        let ranked = match mode {
            Mode::Vector => vector_hits,
            Mode::Bm25 => bm25_hits,
            Mode::Hybrid => {
                let vector_hits = match (&vector, self.options.fusion) {
                    (Some(vector), Fusion::Convex { .. } | Fusion::Theoretical { .. }) => {
                        fusion::with_similarities(&self.vectors, vector, vector_hits, &bm25_hits)?
                    }
                    _ => vector_hits,
                };
                match self.learned_for(query, vector.as_deref().map(Vec::as_slice), filters) {
                    None => self.options.fusion.fuse(&vector_hits, &bm25_hits, k),
                    // The whole pool, so that a candidate the clicks favour can rise
                    // into the first `k`.
                    Some(adjustments) => {
                        let mut fused =
                            self.options
                                .fusion
                                .fuse(&vector_hits, &bm25_hits, usize::MAX);
                        learned::apply(&mut fused, &adjustments);
                        fused
                    }
                }
            }
        };
        Ok(SearchOutcome {
            hits: ranked
                .into_iter()
                .take(k)
                .map(|(key, score)| Hit { key, score })
                .collect(),
            corrected: None,
            embed_ms: (ready - started).as_secs_f64() * 1e3,
            search_ms: ready.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// BM25 candidates. Selective filters go to LanceDB as a prefilter. Otherwise
    /// the query runs unfiltered (a prefilter reads the filter columns of every row,
    /// which costs more than the search itself) and the hits are filtered in memory
    /// with over-fetch, falling back to the prefilter when fewer than `want` (the
    /// results asked for) were left: a kind with few chunks (shop passages among
    /// thousands of products) rarely fills the whole pool, and needs not.
    async fn bm25_candidates(
        &self,
        query: &str,
        k: usize,
        want: usize,
        filters: &Filters,
        categorias: Option<&HashSet<String>>,
        sql: &str,
    ) -> anyhow::Result<Vec<(i64, f32)>> {
        if filters.is_selective() {
            return self.store.full_text(query, k, Some(sql)).await;
        }
        let fetch = k * 2;
        let raw = self.shared_full_text(query, fetch).await?;
        let exhausted = raw.len() < fetch;
        // A chunk this node has not reflected yet (written by another process a moment
        // ago) is kept when its key is of the wanted kind (products have non-negative
        // keys, document chunks negative ones): dropping it would hide a catalog that
        // is being replaced, and product hits are checked against the database anyway.
        let kept: Vec<(i64, f32)> = {
            let mirror = self.mirror.read().expect("mirror lock");
            raw.iter()
                .copied()
                .filter(|(key, _)| match mirror.meta.get(key) {
                    Some(meta) => filters.matches(meta, categorias),
                    None => filters
                        .kind
                        .is_none_or(|kind| (kind == ChunkKind::Producto) == (*key >= 0)),
                })
                .take(k)
                .collect()
        };
        if kept.len() >= want.min(k) || exhausted {
            return Ok(kept);
        }
        self.store.full_text(query, k, Some(sql)).await
    }

    /// The unfiltered full-text search for `query`, run once for the searches that
    /// ask for it at the same time; a later search runs it again (and sees changes).
    async fn shared_full_text(&self, query: &str, fetch: usize) -> anyhow::Result<Hits> {
        once(
            &self.full_text_in_flight,
            (query.to_owned(), fetch),
            || async { self.store.full_text(query, fetch, None).await.map(Arc::new) },
        )
        .await
    }

    async fn vector_candidates(
        &self,
        vector: &[f32],
        k: usize,
        filters: &Filters,
        categorias: Option<&HashSet<String>>,
        sql: &str,
    ) -> anyhow::Result<Vec<(i64, f32)>> {
        {
            let mirror = self.mirror.read().expect("mirror lock");
            let total = mirror.meta.len();
            let use_faiss = !filters.is_selective() || {
                let matching = mirror
                    .meta
                    .values()
                    .filter(|m| filters.matches(m, categorias))
                    .count();
                matching as f64 >= total as f64 * PREFILTER_SHARE
            };
            if use_faiss {
                return self.vectors.search(vector, k, |key| {
                    mirror
                        .meta
                        .get(&key)
                        .is_some_and(|m| filters.matches(m, categorias))
                });
            }
        }
        self.store.nearest(vector, k, sql).await
    }
}

/// The value for `key`, computed by `init` unless another caller is computing it
/// at this moment, in which case that computation is shared (and when it fails or
/// its caller goes away, the next waiter computes it instead).
async fn once<K, V, F, Fut>(in_flight: &Shared<K, V>, key: K, init: F) -> anyhow::Result<V>
where
    K: Eq + Hash + Clone,
    V: Clone,
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<V>>,
{
    let cell = in_flight
        .lock()
        .expect("in-flight lock")
        .entry(key.clone())
        .or_default()
        .clone();
    let value = cell.get_or_try_init(init).await.cloned();
    let mut in_flight = in_flight.lock().expect("in-flight lock");
    if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
        in_flight.remove(&key);
    }
    value
}
