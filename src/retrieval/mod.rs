//! Retrieval: the embedders that turn text into vectors, the indexes that search
//! them, and the index kept in step with the database ([`live::Search`]).
//!
//! Every embedder produces unit-length vectors, so inner product is cosine similarity
//! everywhere. An embedder's [`Embedder::id`] is stored with any index built from it:
//! vectors of different embedders are never mixed.

pub mod chunks;
pub mod embedders;
pub mod eval;
pub mod faiss_index;
pub mod filters;
pub mod fusion;
pub mod hash;
pub mod learned;
pub mod lexicon;
pub mod live;
pub mod minilm;
mod mirror;
pub mod passages;
pub mod search;
pub mod store;
pub mod sync;
pub mod upkeep;

pub use hash::HashEmbedder;
pub use live::Search;
pub use minilm::MiniLmEmbedder;

/// Turns texts into unit-length vectors. Blocking: call it on the blocking pool.
pub trait Embedder: Send + Sync {
    /// Stable identity, e.g. `minilm:all-MiniLM-L6-v2` or `hash:384`.
    fn id(&self) -> &str;
    /// Length of every vector.
    fn dim(&self) -> usize;
    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>>;
}

impl Embedder for HashEmbedder {
    fn id(&self) -> &str {
        self.id_str()
    }

    fn dim(&self) -> usize {
        HashEmbedder::dim(self)
    }

    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

/// Opens the server's search index: the LanceDB table of the embedder in use
/// (`chunks_<embedder>`), whose vectors FAISS then loads or rebuilds. Tables of other
/// embedders are dropped with a log line: vectors of two embedders never mix, and a
/// changed embedder means the index is rebuilt from the database.
///
/// `serving` indexes load or build FAISS as configured and save it; a writer (such as
/// `tendero ingest`) keeps an exact in-memory copy only, which costs no graph build.
pub async fn open_index(
    settings: &crate::config::RetrievalSettings,
    embedder: std::sync::Arc<dyn Embedder>,
    serving: bool,
) -> anyhow::Result<search::SearchIndex> {
    use anyhow::Context;
    let uri = settings.lancedb_uri();
    let table = format!("chunks_{}", embedders::slug(embedder.id()));
    let db = lancedb::connect(&uri)
        .execute()
        .await
        .with_context(|| format!("opening LanceDB at {uri} (TENDERO_LANCEDB_URI)"))?;
    for stale in db.table_names().execute().await? {
        if stale.starts_with("chunks_") && stale != table {
            tracing::warn!(
                old = %stale,
                new = %table,
                "the embedder changed: dropping the old index, rebuilding from the database"
            );
            db.drop_table(&stale, &[]).await?;
        }
    }
    let store =
        store::ChunkStore::open(&uri, &table, embedder.dim(), &settings.search_language).await?;
    search::SearchIndex::open(
        store,
        embedder,
        search::IndexOptions {
            faiss_path: serving.then(|| settings.faiss_dir().join(format!("{table}.faiss"))),
            hnsw_from: if serving {
                settings.faiss_hnsw_from
            } else {
                usize::MAX
            },
            ef_search: settings.faiss_hnsw_ef_search,
            fusion: fusion::Fusion::DEFAULT,
        },
    )
    .await
}
