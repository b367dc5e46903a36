//! The `retrieval` section: where the search index lives, how it is built and
//! searched, and which embedder fills it.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// Which embedder serves. `Auto` takes the first that works of: a local model folder
/// (`embedder_model_dir`, else the one `make run` fetches), Ollama `/api/embed`, and
/// the hashing embedder (lexical only, logged as a warning).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderChoice {
    #[default]
    Auto,
    Minilm,
    Ollama,
    Hash,
}

/// Read by [`crate::retrieval`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetrievalSettings {
    /// LanceDB location: a folder or an `s3://` URI; `None` means `{data_dir}/lancedb`.
    pub lancedb_uri: Option<String>,
    /// Folder of the saved FAISS index; `None` means `{data_dir}/faiss`.
    pub faiss_dir: Option<PathBuf>,
    /// Indexes of at least this many chunks use HNSW; smaller ones exact (Flat) search.
    pub faiss_hnsw_from: usize,
    /// Candidates an HNSW search explores (FAISS `efSearch`): higher finds more of
    /// the true nearest neighbours, at some cost in time.
    pub faiss_hnsw_ef_search: usize,
    /// Which embedder turns text into vectors (see [`EmbedderChoice`]).
    pub embedder: EmbedderChoice,
    /// A local sentence-embedding model folder (config.json, tokenizer.json,
    /// model.safetensors), e.g. all-MiniLM-L6-v2.
    pub embedder_model_dir: Option<PathBuf>,
    /// Language of the full-text analyzer (stemming, stop words): Spanish, English…
    pub search_language: String,
    /// Longest search query (or question) accepted, in characters.
    pub search_max_query_chars: usize,
    /// How often the server looks for index changes written by other processes
    /// (`tendero ingest`, other nodes), in milliseconds.
    pub index_poll_ms: u64,
    /// The data folder, where a model folder is looked for when none is set
    /// (`{data_dir}/models`); filled in by [`super::Settings::resolve`].
    #[serde(skip)]
    pub data_dir: PathBuf,
}

impl Default for RetrievalSettings {
    fn default() -> Self {
        Self {
            lancedb_uri: None,
            faiss_dir: None,
            faiss_hnsw_from: 20_000,
            faiss_hnsw_ef_search: 128,
            embedder: EmbedderChoice::Auto,
            embedder_model_dir: None,
            search_language: "Spanish".to_owned(),
            search_max_query_chars: 2000,
            index_poll_ms: 1000,
            data_dir: PathBuf::from("data"),
        }
    }
}

impl RetrievalSettings {
    /// The LanceDB URI in force.
    pub fn lancedb_uri(&self) -> String {
        match &self.lancedb_uri {
            Some(uri) => uri.clone(),
            None => self.data_dir.join("lancedb").display().to_string(),
        }
    }

    /// The folder of the saved FAISS index.
    pub fn faiss_dir(&self) -> PathBuf {
        self.faiss_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("faiss"))
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.search_max_query_chars == 0 || self.index_poll_ms == 0 {
            return Err(ConfigError::Invalid(
                "TENDERO_SEARCH_MAX_QUERY_CHARS and TENDERO_INDEX_POLL_MS must be at least 1"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}
