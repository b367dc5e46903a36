//! Choosing the embedder at start-up, and the Ollama `/api/embed` embedder.
//!
//! Resolution (`TENDERO_EMBEDDER=auto`): a configured model folder, else the folder
//! `make run` fetches; Ollama's embedding model when it answers; the hashing embedder
//! last, with a warning (it matches spellings, not meaning). An explicit choice that
//! cannot serve is an error: the operator asked for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ollama_rs::Ollama;
use ollama_rs::generation::embeddings::request::{EmbeddingsInput, GenerateEmbeddingsRequest};

use super::{Embedder, HashEmbedder, MiniLmEmbedder};
use crate::config::{EmbedderChoice, OllamaSettings, RetrievalSettings};

/// Dimension of the hashing embedder (the same as MiniLM's, for comparable sizes).
pub const HASH_DIM: usize = 384;

/// How long a single embedding request to Ollama may take.
const OLLAMA_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `auto` waits for Ollama before moving on.
const OLLAMA_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The model folder to load: the configured one, else the first default location
/// (`{data_dir}/models`, then where `make run` and `make test` put it) holding a model.
pub fn model_dir(settings: &RetrievalSettings) -> Option<PathBuf> {
    if let Some(dir) = &settings.embedder_model_dir {
        return Some(dir.clone());
    }
    let mut defaults = vec![settings.data_dir.join("models").join("all-MiniLM-L6-v2")];
    if let Some(home) = std::env::var_os("HOME") {
        defaults.push(PathBuf::from(home).join(".cache/tendero/models/all-MiniLM-L6-v2"));
    }
    defaults
        .into_iter()
        .find(|d| MiniLmEmbedder::is_model_dir(d))
}

/// The embedder the settings ask for; see the module docs for the order.
pub async fn resolve(
    settings: &RetrievalSettings,
    ollama: &OllamaSettings,
) -> anyhow::Result<Arc<dyn Embedder>> {
    match settings.embedder {
        EmbedderChoice::Hash => Ok(Arc::new(HashEmbedder::new(HASH_DIM))),
        EmbedderChoice::Minilm => {
            let dir = model_dir(settings).context(
                "TENDERO_EMBEDDER=minilm needs a model folder: set TENDERO_EMBEDDER_MODEL_DIR \
                     (`make run` fetches all-MiniLM-L6-v2 into ~/.cache/tendero/models)",
            )?;
            load_minilm(dir).await
        }
        EmbedderChoice::Ollama => Ok(Arc::new(
            OllamaEmbedder::connect(&ollama.ollama_url, &ollama.ollama_embed_model).await?,
        )),
        EmbedderChoice::Auto => {
            if let Some(dir) = model_dir(settings) {
                return load_minilm(dir).await;
            }
            match tokio::time::timeout(
                OLLAMA_PROBE_TIMEOUT,
                OllamaEmbedder::connect(&ollama.ollama_url, &ollama.ollama_embed_model),
            )
            .await
            {
                Ok(Ok(embedder)) => return Ok(Arc::new(embedder)),
                Ok(Err(err)) => tracing::info!(error = %format!("{err:#}"), "no Ollama embedder"),
                Err(_) => tracing::info!("no Ollama embedder: no answer within 3 s"),
            }
            tracing::warn!(
                "no sentence-embedding model found (TENDERO_EMBEDDER_MODEL_DIR, \
                 ~/.cache/tendero/models/all-MiniLM-L6-v2) and no Ollama embedding model: \
                 search uses the hashing embedder, which matches spellings, not meaning"
            );
            Ok(Arc::new(HashEmbedder::new(HASH_DIM)))
        }
    }
}

async fn load_minilm(dir: PathBuf) -> anyhow::Result<Arc<dyn Embedder>> {
    let embedder = tokio::task::spawn_blocking(move || MiniLmEmbedder::load(&dir)).await??;
    Ok(Arc::new(embedder))
}

/// Embeddings from an Ollama server's `/api/embed`.
pub struct OllamaEmbedder {
    client: Ollama,
    model: String,
    id: String,
    dim: usize,
    runtime: tokio::runtime::Handle,
}

impl OllamaEmbedder {
    /// Connects and asks for one embedding, to learn the dimension (and fail early).
    pub async fn connect(url: &str, model: &str) -> anyhow::Result<Self> {
        let client = Ollama::try_new(url).with_context(|| format!("bad Ollama URL {url}"))?;
        let probe = embed_request(&client, model, vec!["dimensión".to_owned()])
            .await
            .with_context(|| format!("Ollama at {url} did not embed with model {model}"))?;
        let dim = probe.first().map_or(0, Vec::len);
        anyhow::ensure!(dim > 0, "Ollama returned an empty embedding for {model}");
        Ok(Self {
            client,
            model: model.to_owned(),
            id: format!("ollama:{model}:{dim}"),
            dim,
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

async fn embed_request(
    client: &Ollama,
    model: &str,
    texts: Vec<String>,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let expected = texts.len();
    let request =
        GenerateEmbeddingsRequest::new(model.to_owned(), EmbeddingsInput::Multiple(texts));
    let response = tokio::time::timeout(OLLAMA_TIMEOUT, client.generate_embeddings(request))
        .await
        .context("Ollama took too long to embed")??;
    anyhow::ensure!(
        response.embeddings.len() == expected,
        "Ollama returned {} embeddings for {expected} texts",
        response.embeddings.len()
    );
    Ok(response.embeddings.into_iter().map(normalised).collect())
}

fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
    vector
}

impl Embedder for OllamaEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    /// Blocks on the request: call it on the blocking pool, never on a runtime worker.
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(64) {
            let owned = batch.iter().map(|t| (*t).to_owned()).collect();
            let batch_vectors =
                self.runtime
                    .block_on(embed_request(&self.client, &self.model, owned))?;
            for vector in &batch_vectors {
                anyhow::ensure!(
                    vector.len() == self.dim,
                    "Ollama returned a vector of dimension {}, not {}",
                    vector.len(),
                    self.dim
                );
            }
            vectors.extend(batch_vectors);
        }
        Ok(vectors)
    }
}

/// A file-name-safe form of an embedder id, for table and file names.
pub fn slug(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}
