//! The generators that write answers: Ollama's chat API (streamed, with tool calls)
//! and the extractive generator, which needs no model and serves while Ollama is
//! unreachable. Both read the answer's numbered [`source::Source`]s and nothing else.

pub mod extractive;
pub mod ollama;
pub mod source;

/// Which generator wrote an answer, as clients and the stored messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    Ollama,
    Extractive,
}

impl GeneratorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::Extractive => "extractive",
        }
    }
}
