//! The sales agent: one answer pipeline for every transport (REST, SSE, Socket.IO).
//!
//! A question goes through: the conversation so far (created when new) → retrieval
//! of products and shop passages, with prices and stock read from the database →
//! the prompt → the generator, streamed piece by piece to the caller (Ollama, with
//! tool calls that can look products up and take an order; or the extractive
//! generator while Ollama cannot be reached) → the price guard → storage of the
//! exchange. [`Agent::start`] runs it on its own task and hands back the pieces as
//! [`Event`]s and a token that stops it; a transport that goes away cancels it,
//! and the Ollama request in flight is dropped with it.
//!
//! [`Agent`] owns what answering uses: the database (for live rows), the search,
//! the shop (for orders), the recommender, the conversations' [`Memory`], the event
//! log, Ollama, and its settings.

mod answer;
pub mod context;
mod generate;
pub mod guard;
pub mod memory;
pub mod prompt;
pub mod suggest;
pub mod tools;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::config::{AgentSettings, GeneratorChoice, OllamaSettings};
use crate::db::Db;
use crate::error::{BUSY_MESSAGE, CANCELLED_MESSAGE, Code, Coded, FieldError, INTERNAL_MESSAGE};
use crate::learning::EventLog;
use crate::llm::GeneratorKind;
use crate::llm::ollama::OllamaChat;
use crate::llm::source::Source;
use crate::recommend::Recommender;
use crate::retrieval::Search;
use crate::shop::Shop;
use crate::speech::Transcription;

use answer::{Out, validate_query};
use guard::PriceCheck;
pub use memory::Memory;

/// Events buffered between the pipeline and a slow transport.
const EVENT_BUFFER: usize = 64;

/// Where a question came from (stored as the conversation's `canal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Rest,
    Socket,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Socket => "socket",
        }
    }
}

/// A customer's question.
#[derive(Debug, Clone)]
pub struct Question {
    pub query: String,
    /// The conversation to continue; a new one when absent.
    pub chat_id: Option<String>,
    pub channel: Channel,
    /// The signed-in staff member asking, if any.
    pub staff_id: Option<i64>,
}

/// A complete answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Answer {
    /// This answer's id (its stored message's number): send it with a click on one of
    /// its sources or a rating (`POST /api/eventos`, `product_click`, `feedback`).
    pub respuesta_id: i64,
    pub chat_id: String,
    pub response: String,
    /// The sources the answer cites (by `[n]`) or names.
    pub sources: Vec<Source>,
    pub generator: GeneratorKind,
    pub price_check: PriceCheck,
    /// The order taken in this answer, if one was.
    pub pedido_id: Option<i64>,
    pub timings: AnswerTimings,
}

/// Where an answer's time went, in milliseconds from the question.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct AnswerTimings {
    /// Retrieval of products and passages, with their live prices.
    pub retrieval_ms: f64,
    /// Of which embedding the question (next to nothing when its vector was cached)...
    pub embed_ms: f64,
    /// ...and the product and passage searches with the products' live rows.
    pub search_ms: f64,
    /// Until the first piece of the answer was ready to send.
    pub first_token_ms: Option<f64>,
    pub total_ms: f64,
}

/// Why an answer (or a conversation) could not be given.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Validation(#[from] FieldError),
    #[error("{0} no encontrado")]
    NotFound(&'static str),
    #[error("{BUSY_MESSAGE}")]
    Busy,
    #[error("el generador de respuestas no está disponible: {0}")]
    GeneratorUnavailable(String),
    #[error("{CANCELLED_MESSAGE}")]
    Cancelled,
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

impl Coded for AgentError {
    fn code(&self) -> Code {
        match self {
            Self::Validation(_) => Code::ValidationFailed,
            Self::NotFound(_) => Code::NotFound,
            Self::Busy => Code::Busy,
            Self::GeneratorUnavailable(_) => Code::GeneratorUnavailable,
            Self::Cancelled => Code::Cancelled,
            Self::Internal(_) => Code::Internal,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Validation(err) => Some(err.field),
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for AgentError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// An answer that could not be given (or finished).
#[derive(Debug)]
pub struct Failure {
    pub chat_id: Option<String>,
    pub error: AgentError,
    /// What had been sent before the failure; it is stored, marked as partial.
    pub partial: Option<String>,
}

/// What the pipeline sends a transport.
#[derive(Debug)]
pub enum Event {
    /// The next piece of the answer, in order.
    Chunk(String),
    /// The answer is complete; the last event.
    Done(Box<Answer>),
    /// The answer failed or was stopped; the last event.
    Failed(Failure),
}

/// A running answer.
pub struct Started {
    /// The conversation it belongs to, when the question named a valid one or
    /// none (then a new id); `None` only when the given id was invalid.
    pub chat_id: Option<String>,
    pub events: mpsc::Receiver<Event>,
    /// Cancelling it stops the answer and the generator request.
    pub cancel: CancellationToken,
}

/// What the agent answers with, besides its settings.
pub struct AgentParts {
    pub db: Db,
    pub search: Arc<Search>,
    pub shop: Shop,
    pub events: EventLog,
    pub recommender: Arc<Recommender>,
}

/// The sales agent: see the module docs.
pub struct Agent {
    db: Db,
    search: Arc<Search>,
    shop: Shop,
    memory: Memory,
    events: EventLog,
    recommender: Arc<Recommender>,
    ollama: OllamaChat,
    settings: AgentSettings,
    /// The cap on answers generated at once.
    permits: Arc<Semaphore>,
    system_prompt: String,
}

/// How the generator is doing, for `/ready`.
pub struct GeneratorStatus {
    /// False when the configured generator cannot answer at all.
    pub available: bool,
    pub detail: String,
}

impl Agent {
    pub fn new(
        parts: AgentParts,
        settings: &AgentSettings,
        ollama: &OllamaSettings,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            memory: Memory::new(parts.db.clone()),
            db: parts.db,
            search: parts.search,
            shop: parts.shop,
            events: parts.events,
            recommender: parts.recommender,
            ollama: OllamaChat::new(&ollama.ollama_url, &ollama.ollama_model)?,
            permits: Arc::new(Semaphore::new(settings.max_generations)),
            system_prompt: settings
                .system_prompt
                .clone()
                .filter(|p| !p.trim().is_empty())
                .unwrap_or_else(|| prompt::DEFAULT_SYSTEM_PROMPT.to_owned()),
            settings: settings.clone(),
        })
    }

    /// A spoken question made ready to answer: unless `correct_transcripts` is
    /// off, the words Whisper misheard in Spanish are replaced by the catalog words
    /// they sound like ("martíos" → "martillos"); what it wrote stays in `heard`.
    /// (The sounds compared are Spanish ones: a question heard in another language
    /// is left as heard.)
    pub fn hear(&self, mut transcription: Transcription) -> Transcription {
        if !self.settings.correct_transcripts || transcription.language != Some("es") {
            return transcription;
        }
        if let Some(corrected) = self.search.correct_spoken(&transcription.text) {
            tracing::info!(heard = %transcription.text, corrected = %corrected, "transcript corrected");
            transcription.heard = Some(std::mem::replace(&mut transcription.text, corrected));
        }
        transcription
    }

    /// The conversations, for the transports that show them.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// Probes Ollama (unless the extractive generator is configured).
    pub async fn status(&self) -> GeneratorStatus {
        if self.settings.generator == GeneratorChoice::Extractive {
            return GeneratorStatus {
                available: true,
                detail: "extractive (configurado)".to_owned(),
            };
        }
        if self.ollama.probe().await {
            return GeneratorStatus {
                available: true,
                detail: format!("ollama ({})", self.ollama.model()),
            };
        }
        match self.settings.generator {
            GeneratorChoice::Ollama => GeneratorStatus {
                available: false,
                detail: "Ollama no responde".to_owned(),
            },
            _ => GeneratorStatus {
                available: true,
                detail: "extractive: Ollama no responde".to_owned(),
            },
        }
    }
}

impl Agent {
    /// Starts answering `question` on its own task.
    pub fn start(self: &Arc<Self>, question: Question) -> Started {
        self.start_with(question, CancellationToken::new())
    }

    /// Starts answering `question`, stopped by `cancel` (a transport that already has
    /// a token for the request, e.g. one that transcribed it first).
    pub fn start_with(self: &Arc<Self>, question: Question, cancel: CancellationToken) -> Started {
        let (sender, events) = mpsc::channel(EVENT_BUFFER);
        let chat_id = match question.chat_id.as_deref() {
            None => Ok(memory::new_chat_id()),
            Some(raw) => memory::parse_chat_id(raw),
        };
        let chat_id = match chat_id {
            Ok(id) => id,
            Err(err) => {
                let failure = Failure {
                    chat_id: None,
                    error: err.into(),
                    partial: None,
                };
                sender
                    .try_send(Event::Failed(failure))
                    .expect("a new channel has room");
                return Started {
                    chat_id: None,
                    events,
                    cancel,
                };
            }
        };
        let task = {
            let agent = Arc::clone(self);
            let chat_id = chat_id.clone();
            let cancel = cancel.clone();
            async move {
                let mut out = Out {
                    sender: sender.clone(),
                    text: String::new(),
                    started: Instant::now(),
                    first_token_ms: None,
                };
                let event = match agent.answer(&question, &chat_id, &mut out, &cancel).await {
                    Ok(answer) => Event::Done(Box::new(answer)),
                    Err(failure) => Event::Failed(failure),
                };
                // The transport may be gone; the exchange is stored either way.
                let _ = sender.send(event).await;
            }
        };
        tokio::spawn(task);
        Started {
            chat_id: Some(chat_id),
            events,
            cancel,
        }
    }

    /// Checks a question before it is started, so that a transport can refuse it with
    /// a plain error instead of a stream.
    pub fn check(&self, question: &Question) -> Result<(), FieldError> {
        validate_query(&question.query, self.search.max_query_chars())?;
        if let Some(raw) = &question.chat_id {
            memory::parse_chat_id(raw)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_trimmed_and_bounded() {
        assert_eq!(validate_query("  hola  ", 10).unwrap(), "hola");
        assert!(validate_query("   ", 10).is_err());
        assert!(validate_query("x".repeat(11).as_str(), 10).is_err());
    }
}
