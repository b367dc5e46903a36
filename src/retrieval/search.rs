//! The search index: the LanceDB chunk table (text, metadata, BM25), an in-memory
//! FAISS index of its vectors and a metadata map for filters, kept in step.
//!
//! LanceDB is the index's durable form; FAISS and the metadata map are rebuilt from it
//! at start-up (or the saved FAISS file is loaded when it reflects the same table
//! version and embedder). Writes go through [`SearchIndex::apply`]; writes by other
//! processes (`tendero ingest`, other nodes) are picked up by [`SearchIndex::refresh`].
//! Readers never wait for writers: a search sees the catalog either before or after
//! a change, and a hit that vanished in between is dropped, not an error.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use super::Embedder;
use super::faiss_index::{IndexKind, VectorIndex};
pub use super::filters::{Filters, Meta, Mode};
use super::fusion::Fusion;
use super::learned::{Adjustments, LearnedTerm};
use super::mirror::ChunkMirror;
use super::store::{Chunk, ChunkKind, ChunkStore, Read};

mod query;

use query::{Hits, Shared};

/// Candidates each side of a hybrid search contributes before fusion.
const POOL: usize = 100;
/// Filters matching fewer than this share of the chunks go to LanceDB as a prefilter
/// (an exact scan of the few matching rows) instead of FAISS over-fetch.
const PREFILTER_SHARE: f64 = 0.02;
/// Query vectors remembered (customers repeat queries; embedding costs milliseconds).
const QUERY_CACHE: usize = 2048;

/// One ranked result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub key: i64,
    pub score: f32,
}

/// Results with where the time went.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
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
    mirror: RwLock<ChunkMirror>,
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
    vectors_in_flight: Shared<String, Arc<Vec<f32>>>,
    full_text_in_flight: Shared<(String, usize), Hits>,
    /// Embedding calls running at once, one per core: more only queue on the CPU, and
    /// each holds its own working memory (200 at once took RSS past 2 GB).
    embedding: tokio::sync::Semaphore,
    /// The term learned from clicks, once there is one.
    learned: RwLock<Option<Arc<dyn LearnedTerm>>>,
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
        let mut mirror = ChunkMirror::new(store.language());
        mirror.apply(&chunks, &[]);
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
            mirror: RwLock::new(mirror),
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
            learned: RwLock::new(None),
        };
        index.save().await?;
        Ok(index)
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// Hybrid searches add `term` to their fused scores from now on (`None`: no more).
    pub fn set_learned(&self, term: Option<Arc<dyn LearnedTerm>>) {
        *self.learned.write().expect("learned lock") = term;
    }

    /// What the learned term adds for `query` (as searched), unless `filters` says not.
    fn learned_for(
        &self,
        query: &str,
        vector: Option<&[f32]>,
        filters: &Filters,
    ) -> Option<Adjustments> {
        if filters.ignore_clicks {
            return None;
        }
        let term = self.learned.read().expect("learned lock").clone()?;
        term.adjustments(&super::learned::query_key(query), vector)
    }

    pub fn store(&self) -> &ChunkStore {
        &self.store
    }

    pub fn status(&self) -> IndexStatus {
        IndexStatus {
            embedder: self.embedder.id().to_owned(),
            dim: self.embedder.dim(),
            chunks: self.mirror.read().expect("mirror lock").meta.len(),
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
        let mirror = self.mirror.read().expect("mirror lock");
        let entry = |key: &i64| {
            mirror
                .meta
                .get(key)
                .filter(|m| m.kind == kind)
                .map(|m| (*key, m.content_hash.clone()))
        };
        match keys {
            Some(keys) => keys.iter().filter_map(entry).collect(),
            None => mirror.meta.keys().filter_map(entry).collect(),
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
        self.mirror
            .write()
            .expect("mirror lock")
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
            let mirror = self.mirror.read().expect("mirror lock");
            let present: HashSet<i64> = current.iter().map(|c| c.key).collect();
            let changed: Vec<i64> = current
                .iter()
                .filter(|c| {
                    mirror
                        .meta
                        .get(&c.key)
                        .is_none_or(|m| m.content_hash != c.content_hash)
                })
                .map(|c| c.key)
                .collect();
            let deletes: Vec<i64> = mirror
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

fn tag(embedder: &str, version: u64) -> String {
    format!("{embedder}@lancedb-v{version}")
}
