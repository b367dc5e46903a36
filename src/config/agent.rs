//! The `agent` section: how the sales agent answers: its generator, instructions,
//! context, and the bounds on answers generated at once and on their time.

use serde::Deserialize;

use super::ConfigError;

/// Which generator writes the answers. `Auto` uses Ollama and falls back to the
/// extractive generator while Ollama cannot be reached.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorChoice {
    #[default]
    Auto,
    Ollama,
    Extractive,
}

/// Read by [`crate::agent`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AgentSettings {
    /// Which generator writes the answers (see [`GeneratorChoice`]).
    pub generator: GeneratorChoice,
    /// The agent's instructions; `None` means the built-in Spanish sales prompt.
    pub system_prompt: Option<String>,
    /// Earlier messages of a conversation given to the model with a new question.
    pub history_messages: usize,
    /// Products and document passages retrieved for each question.
    pub context_products: usize,
    pub context_documents: usize,
    /// Answers generated at once; more wait up to `generation_queue_ms`, then are
    /// told the service is busy.
    pub max_generations: usize,
    pub generation_queue_ms: u64,
    /// Seconds the generator may take to its first piece, and to the whole answer.
    pub first_token_timeout_secs: u64,
    pub generation_timeout_secs: u64,
    /// Whether a spoken question's misheard words are replaced by the catalog words
    /// they sound like before it is answered.
    pub correct_transcripts: bool,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            generator: GeneratorChoice::Auto,
            system_prompt: None,
            history_messages: 8,
            context_products: 5,
            context_documents: 2,
            max_generations: 4,
            generation_queue_ms: 10_000,
            first_token_timeout_secs: 60,
            generation_timeout_secs: 180,
            correct_transcripts: true,
        }
    }
}

impl AgentSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.max_generations == 0
            || self.first_token_timeout_secs == 0
            || self.generation_timeout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "TENDERO_MAX_GENERATIONS, TENDERO_FIRST_TOKEN_TIMEOUT_SECS and \
                 TENDERO_GENERATION_TIMEOUT_SECS must be at least 1"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}
