//! Retrieval: the embedders that turn text into vectors and the indexes that search
//! them.
//!
//! Every embedder produces unit-length vectors, so inner product is cosine similarity
//! everywhere. An embedder's [`Embedder::id`] is stored with any index built from it:
//! vectors of different embedders are never mixed.

pub mod faiss_index;
pub mod hash;
pub mod minilm;
pub mod store;
pub mod text;

pub use hash::HashEmbedder;
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
