//! The `ollama` section: the Ollama server that writes answers and, when chosen,
//! embeds text.

use serde::Deserialize;

/// Read by [`crate::llm`] (the chat model) and [`crate::retrieval`] (the embedding
/// model).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OllamaSettings {
    /// Ollama server: the generator, and the embedder when chosen.
    pub ollama_url: String,
    /// Ollama chat model that writes the answers (it should support tool calls).
    pub ollama_model: String,
    /// Ollama model for `/api/embed`.
    pub ollama_embed_model: String,
}

impl Default for OllamaSettings {
    fn default() -> Self {
        Self {
            ollama_url: "http://127.0.0.1:11434".to_owned(),
            ollama_model: "qwen2.5:3b-instruct".to_owned(),
            ollama_embed_model: "nomic-embed-text".to_owned(),
        }
    }
}
