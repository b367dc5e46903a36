//! The search index: the LanceDB chunk table (text, metadata, BM25), an in-memory
//! FAISS index of its vectors and a metadata map for filters, kept in step.
//!
//! LanceDB is the index's durable form; FAISS and the metadata map are rebuilt from it
//! at start-up (or the saved FAISS file is loaded when it reflects the same table
//! version and embedder). Writes go through [`SearchIndex::apply`]; writes by other
//! processes (`tendero-ingest`, other nodes) are picked up by [`SearchIndex::refresh`].
//! Readers never wait for writers: a search sees the catalog either before or after
//! a change, and a hit that vanished in between is dropped, not an error.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use anyhow::Context;

use super::Embedder;
use super::faiss_index::{IndexKind, VectorIndex};
pub use super::filters::{Filters, Meta, Mode};
use super::fusion::{self, Fusion};
use super::mirror::Catalog;
use super::store::{Chunk, ChunkKind, ChunkStore, Read};
use super::text::fold;

/// Candidates each side of a hybrid search contributes before fusion.
const POOL: usize = 100;
/// Filters matching fewer than this share of the chunks go to LanceDB as a prefilter
/// (an exact scan of the few matching rows) instead of FAISS over-fetch.
const PREFILTER_SHARE: f64 = 0.02;
/// Query vectors remembered (customers repeat queries; embedding costs milliseconds).
const QUERY_CACHE: usize = 2048;

/// Values being computed, each once for everyone asking for it meanwhile.
type InFlight<K, V> = Mutex<HashMap<K, Arc<tokio::sync::OnceCell<V>>>>;
/// Hits of one full-text search: chunk keys and scores.
type Hits = Arc<Vec<(i64, f32)>>;

/// One ranked result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub key: i64,
    pub score: f32,
}

/// Results with where the time went.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub hits: Vec<Hit>,
    /// The query as searched, when misspelt words were corrected.
    pub corrected: Option<String>,
    /// Until the query's vector was ready (0 when cached or not needed).
    pub embed_ms: f64,
    /// What the search took past that: the vector's candidates, the full-text ones
    /// when they came later (they are searched while the query is embedded),
    /// filters, fusion.
    pub search_ms: f64,
}

/// How the index is built and where it is saved.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Where FAISS is saved (and loaded from); `None` keeps it in memory only.
    pub faiss_path: Option<PathBuf>,
    /// Chunk count from which HNSW replaces exact search.
    pub hnsw_from: usize,
    /// HNSW's `efSearch` (see [`VectorIndex::set_ef_search`]).
    pub ef_search: usize,
    pub fusion: Fusion,
}

/// Health of the index, for `/ready` and the logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexStatus {
    pub embedder: String,
    pub dim: usize,
    pub chunks: usize,
    pub faiss: &'static str,
    pub faiss_vectors: usize,
    pub lancedb_version: u64,
}

/// Searchable chunks: see the module docs.
pub struct SearchIndex {
    embedder: Arc<dyn Embedder>,
    store: ChunkStore,
    vectors: Arc<VectorIndex>,
    catalog: RwLock<Catalog>,
    options: IndexOptions,
    /// Serialises writers (local applies and refreshes from other processes).
    writer: tokio::sync::Mutex<()>,
    /// The LanceDB version FAISS and the metadata reflect.
    reflects: AtomicU64,
    /// The version of the last saved FAISS file.
    saved: AtomicU64,
    query_cache: Mutex<HashMap<String, Arc<Vec<f32>>>>,
    /// Query vectors and unfiltered full-text searches in flight, shared by the
    /// searches that ask for the same at the same time (an answer looks for products
    /// and for passages).
    vectors_in_flight: InFlight<String, Arc<Vec<f32>>>,
    full_text_in_flight: InFlight<(String, usize), Hits>,
    /// Embedding calls running at once, one per core: more only queue on the CPU, and
    /// each holds its own working memory (200 at once took RSS past 2 GB).
    embedding: tokio::sync::Semaphore,
}

impl SearchIndex {
    /// Opens the index over `store`: loads the saved FAISS file when it reflects this
    /// table version and embedder, otherwise rebuilds it from the table (and saves it).
    pub async fn open(
        store: ChunkStore,
        embedder: Arc<dyn Embedder>,
        options: IndexOptions,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            store.dim() == embedder.dim(),
            "the chunk table holds vectors of dimension {}, the embedder {} makes {}",
            store.dim(),
            embedder.id(),
            embedder.dim()
        );
        let version = store.version().await?;
        let tag = tag(embedder.id(), version);
        let loaded = match &options.faiss_path {
            Some(path) => {
                let path = path.clone();
                let tag = tag.clone();
                tokio::task::spawn_blocking(move || VectorIndex::load(&path, &tag))
                    .await?
                    .unwrap_or_else(|err| {
                        tracing::warn!(error = %format!("{err:#}"), "saved FAISS index unreadable: rebuilding");
                        None
                    })
                    .filter(|index| {
                        let wanted = IndexKind::for_size(index.len(), options.hnsw_from);
                        let fits = index.kind() == wanted;
                        if !fits {
                            tracing::info!(saved = ?index.kind(), ?wanted, "saved FAISS index of another structure: rebuilding");
                        }
                        fits
                    })
            }
            None => None,
        };
        let started = Instant::now();
        let from_file = loaded.is_some();
        let read = if from_file {
            Read::WithText
        } else {
            Read::WithVectors
        };
        let chunks = store.scan(None, read).await?;
        let vectors = match loaded {
            Some(index) => index,
            None => {
                let kind = IndexKind::for_size(chunks.len(), options.hnsw_from);
                let index = VectorIndex::new(kind, store.dim())?;
                let keys: Vec<i64> = chunks.iter().map(|c| c.key).collect();
                let flat: Vec<f32> = chunks
                    .iter()
                    .flat_map(|c| c.vector.iter().copied())
                    .collect();
                tokio::task::spawn_blocking(move || index.upsert(&keys, &flat).map(|()| index))
                    .await??
            }
        };
        vectors.set_ef_search(options.ef_search)?;
        let mut catalog = Catalog::new(store.language());
        catalog.apply(&chunks, &[]);
        tracing::info!(
            embedder = embedder.id(),
            chunks = chunks.len(),
            faiss = ?vectors.kind(),
            from_file,
            ms = started.elapsed().as_millis() as u64,
            "search index ready"
        );
        let index = Self {
            embedder,
            store,
            vectors: Arc::new(vectors),
            catalog: RwLock::new(catalog),
            options,
            writer: tokio::sync::Mutex::new(()),
            reflects: AtomicU64::new(version),
            saved: AtomicU64::new(if from_file { version } else { u64::MAX }),
            query_cache: Mutex::new(HashMap::new()),
            vectors_in_flight: Mutex::new(HashMap::new()),
            full_text_in_flight: Mutex::new(HashMap::new()),
            embedding: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
        };
        index.save().await?;
        Ok(index)
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    pub fn store(&self) -> &ChunkStore {
        &self.store
    }

    pub fn status(&self) -> IndexStatus {
        IndexStatus {
            embedder: self.embedder.id().to_owned(),
            dim: self.embedder.dim(),
            chunks: self.catalog.read().expect("catalog lock").meta.len(),
            faiss: match self.vectors.kind() {
                IndexKind::Flat => "flat",
                IndexKind::Hnsw => "hnsw",
            },
            faiss_vectors: self.vectors.len(),
            lancedb_version: self.reflects.load(Ordering::Acquire),
        }
    }

    /// The LanceDB version FAISS and the metadata reflect now.
    pub fn reflected_version(&self) -> u64 {
        self.reflects.load(Ordering::Acquire)
    }

    /// Content hash of the chunks of `kind` (only those of `keys` when given), by key:
    /// what incremental ingestion diffs.
    pub fn hashes(&self, kind: ChunkKind, keys: Option<&[i64]>) -> HashMap<i64, String> {
        let catalog = self.catalog.read().expect("catalog lock");
        let entry = |key: &i64| {
            catalog
                .meta
                .get(key)
                .filter(|m| m.kind == kind)
                .map(|m| (*key, m.content_hash.clone()))
        };
        match keys {
            Some(keys) => keys.iter().filter_map(entry).collect(),
            None => catalog.meta.keys().filter_map(entry).collect(),
        }
    }

    /// Embeds texts on the blocking pool.
    pub async fn embed(&self, texts: Vec<String>) -> anyhow::Result<Vec<Vec<f32>>> {
        let _turn = self.embedding.acquire().await?;
        let embedder = self.embedder.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await?
    }

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
        self.catalog
            .read()
            .expect("catalog lock")
            .lexicon
            .correct(query)
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
    ) -> anyhow::Result<Outcome> {
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
    ) -> anyhow::Result<Outcome> {
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
    ) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let empty = self.catalog.read().expect("catalog lock").meta.is_empty();
        if k == 0 || query.trim().is_empty() || empty {
            return Ok(Outcome::default());
        }
        let categorias = match &filters.categoria {
            Some(c) => {
                let catalog = self.catalog.read().expect("catalog lock");
                match catalog.categorias.get(&fold(c)) {
                    Some(names) => Some(names.clone()),
                    // No chunk has that category: nothing can match.
                    None => return Ok(Outcome::default()),
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
                self.options.fusion.fuse(&vector_hits, &bm25_hits, k)
            }
        };
        Ok(Outcome {
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
            let catalog = self.catalog.read().expect("catalog lock");
            raw.iter()
                .copied()
                .filter(|(key, _)| match catalog.meta.get(key) {
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
            let catalog = self.catalog.read().expect("catalog lock");
            let total = catalog.meta.len();
            let use_faiss = !filters.is_selective() || {
                let matching = catalog
                    .meta
                    .values()
                    .filter(|m| filters.matches(m, categorias))
                    .count();
                matching as f64 >= total as f64 * PREFILTER_SHARE
            };
            if use_faiss {
                return self.vectors.search(vector, k, |key| {
                    catalog
                        .meta
                        .get(&key)
                        .is_some_and(|m| filters.matches(m, categorias))
                });
            }
        }
        self.store.nearest(vector, k, sql).await
    }

    /// Writes chunks (replacing those with the same key) and removes `deletes`, in
    /// LanceDB first and then in FAISS and the metadata.
    pub async fn apply(&self, upserts: Vec<Chunk>, deletes: Vec<i64>) -> anyhow::Result<()> {
        if upserts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let _writer = self.writer.lock().await;
        self.store.upsert(&upserts).await?;
        self.store.delete(&deletes).await?;
        self.reflect(upserts, &deletes).await?;
        self.reflects
            .store(self.store.version().await?, Ordering::Release);
        Ok(())
    }

    async fn reflect(&self, upserts: Vec<Chunk>, deletes: &[i64]) -> anyhow::Result<()> {
        let keys: Vec<i64> = upserts.iter().map(|c| c.key).collect();
        let flat: Vec<f32> = upserts
            .iter()
            .flat_map(|c| c.vector.iter().copied())
            .collect();
        self.vectors.remove(deletes);
        if !keys.is_empty() {
            let vectors = self.vectors.clone();
            tokio::task::spawn_blocking(move || vectors.upsert(&keys, &flat)).await??;
        }
        self.catalog
            .write()
            .expect("catalog lock")
            .apply(&upserts, deletes);
        Ok(())
    }

    /// Picks up writes made by other processes since the last look; `true` when
    /// something changed.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let _writer = self.writer.lock().await;
        self.store.checkout_latest().await?;
        let version = self.store.version().await?;
        if version == self.reflects.load(Ordering::Acquire) {
            return Ok(false);
        }
        let current = self.store.scan(None, Read::Metadata).await?;
        let (changed, deletes) = {
            let catalog = self.catalog.read().expect("catalog lock");
            let present: HashSet<i64> = current.iter().map(|c| c.key).collect();
            let changed: Vec<i64> = current
                .iter()
                .filter(|c| {
                    catalog
                        .meta
                        .get(&c.key)
                        .is_none_or(|m| m.content_hash != c.content_hash)
                })
                .map(|c| c.key)
                .collect();
            let deletes: Vec<i64> = catalog
                .meta
                .keys()
                .filter(|k| !present.contains(k))
                .copied()
                .collect();
            (changed, deletes)
        };
        let upserts = self.store.get(&changed).await?;
        let (updated, removed) = (upserts.len(), deletes.len());
        self.reflect(upserts, &deletes).await?;
        self.reflects.store(version, Ordering::Release);
        tracing::info!(
            version,
            updated,
            removed,
            "search index caught up with LanceDB"
        );
        Ok(true)
    }

    /// Saves FAISS when it changed since the last save (no-op without a path).
    pub async fn save(&self) -> anyhow::Result<()> {
        let Some(path) = &self.options.faiss_path else {
            return Ok(());
        };
        let _writer = self.writer.lock().await;
        let version = self.reflects.load(Ordering::Acquire);
        if self.saved.load(Ordering::Acquire) == version {
            return Ok(());
        }
        let tag = tag(self.embedder.id(), version);
        let (vectors, path) = (self.vectors.clone(), path.clone());
        tokio::task::spawn_blocking(move || vectors.save(&path, &tag)).await??;
        self.saved.store(version, Ordering::Release);
        Ok(())
    }
}

/// The value for `key`, computed by `init` unless another caller is computing it
/// at this moment, in which case that computation is shared (and when it fails or
/// its caller goes away, the next waiter computes it instead).
async fn once<K, V, F, Fut>(in_flight: &InFlight<K, V>, key: K, init: F) -> anyhow::Result<V>
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

fn tag(embedder: &str, version: u64) -> String {
    format!("{embedder}@lancedb-v{version}")
}
