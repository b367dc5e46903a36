//! The sales agent: one answer pipeline for every transport (REST, SSE, Socket.IO).
//!
//! A question goes through: the conversation so far (created when new) → retrieval
//! of products and shop passages, with prices and stock read from the database →
//! the prompt → the generator, streamed piece by piece to the caller (Ollama, with
//! tool calls that can look products up and take an order; or the extractive
//! generator while Ollama cannot be reached) → the price guard → storage of the
//! exchange. [`start`] runs it on its own task and hands back the pieces as
//! [`Event`]s and a token that stops it; a transport that goes away cancels it,
//! and the Ollama request in flight is dropped with it.

pub mod context;
mod generate;
pub mod guard;
pub mod memory;
pub mod prompt;
pub mod tools;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::config::{GeneratorChoice, Settings};
use crate::error::ApiError;
use crate::llm::GeneratorKind;
use crate::llm::ollama::OllamaChat;
use crate::shop::types::FieldError;

use context::{Lang, Source};
use guard::PriceCheck;
use memory::{ASSISTANT, NewMessage};
use tools::Toolbox;

/// Events buffered between the pipeline and a slow transport.
const EVENT_BUFFER: usize = 64;

/// Where a question came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canal {
    Rest,
    Socket,
}

impl Canal {
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
    pub canal: Canal,
    /// The signed-in staff member asking, if any.
    pub usuario_id: Option<i64>,
}

/// A complete answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Answer {
    pub chat_id: String,
    pub response: String,
    /// The sources the answer cites (by `[n]`) or names.
    pub sources: Vec<Source>,
    pub generator: GeneratorKind,
    pub price_check: PriceCheck,
    /// The order taken in this answer, if one was.
    pub pedido_id: Option<i64>,
    pub timings: Timings,
}

/// Where an answer's time went, in milliseconds from the question.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Timings {
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

/// An answer that could not be given (or finished).
#[derive(Debug)]
pub struct Failure {
    pub chat_id: Option<String>,
    pub error: ApiError,
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

/// The generators and the cap on answers generated at once.
pub struct Agent {
    ollama: OllamaChat,
    choice: GeneratorChoice,
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
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            ollama: OllamaChat::new(&settings.ollama_url, &settings.ollama_model)?,
            choice: settings.generator,
            permits: Arc::new(Semaphore::new(settings.max_generations)),
            system_prompt: settings
                .system_prompt
                .clone()
                .filter(|p| !p.trim().is_empty())
                .unwrap_or_else(|| prompt::DEFAULT_SYSTEM_PROMPT.to_owned()),
        })
    }

    /// Probes Ollama (unless the extractive generator is configured).
    pub async fn status(&self) -> GeneratorStatus {
        if self.choice == GeneratorChoice::Extractive {
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
        match self.choice {
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

/// Starts answering `question` on its own task.
pub fn start(app: &AppState, question: Question) -> Started {
    start_with(app, question, CancellationToken::new())
}

/// Starts answering `question`, stopped by `cancel` (a transport that already has
/// a token for the request, e.g. one that transcribed it first).
pub fn start_with(app: &AppState, question: Question, cancel: CancellationToken) -> Started {
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
        let app = app.clone();
        let chat_id = chat_id.clone();
        let cancel = cancel.clone();
        async move {
            let mut out = Out {
                sender: sender.clone(),
                text: String::new(),
                started: Instant::now(),
                first_token_ms: None,
            };
            let event = match answer(&app, &question, &chat_id, &mut out, &cancel).await {
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

/// The answer as it is sent.
struct Out {
    sender: mpsc::Sender<Event>,
    text: String,
    started: Instant,
    first_token_ms: Option<f64>,
}

impl Out {
    /// Sends a piece; fails when the transport is gone.
    async fn push(&mut self, piece: String) -> Result<(), ApiError> {
        if piece.is_empty() {
            return Ok(());
        }
        if self.first_token_ms.is_none() {
            self.first_token_ms = Some(ms_since(self.started));
        }
        self.text.push_str(&piece);
        self.sender
            .send(Event::Chunk(piece))
            .await
            .map_err(|_| ApiError::Cancelled)
    }
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// Checks a question before it is started, so that a transport can refuse it with
/// a plain error instead of a stream.
pub fn check(question: &Question, settings: &Settings) -> Result<(), FieldError> {
    validate_query(&question.query, settings.search_max_query_chars)?;
    if let Some(raw) = &question.chat_id {
        memory::parse_chat_id(raw)?;
    }
    Ok(())
}

fn validate_query(raw: &str, max_chars: usize) -> Result<String, FieldError> {
    let query = raw.trim();
    if query.is_empty() {
        return Err(FieldError::new("query", "escribe tu pregunta"));
    }
    if query.chars().count() > max_chars {
        return Err(FieldError::new(
            "query",
            format!("admite como máximo {max_chars} caracteres"),
        ));
    }
    Ok(query.to_owned())
}

async fn answer(
    app: &AppState,
    question: &Question,
    chat_id: &str,
    out: &mut Out,
    cancel: &CancellationToken,
) -> Result<Answer, Failure> {
    let fail = |error: ApiError| Failure {
        chat_id: Some(chat_id.to_owned()),
        error,
        partial: None,
    };
    let settings = app.settings();
    let query = validate_query(&question.query, settings.search_max_query_chars)
        .map_err(|err| fail(err.into()))?;
    let agent = app.agent();
    let queue = Duration::from_millis(settings.generation_queue_ms);
    let _permit = tokio::select! {
        () = cancel.cancelled() => return Err(fail(ApiError::Cancelled)),
        permit = tokio::time::timeout(queue, Arc::clone(&agent.permits).acquire_owned()) => {
            match permit {
                Ok(Ok(permit)) => permit,
                _ => return Err(fail(ApiError::Busy)),
            }
        }
    };
    let db = app.db();
    // A question that starts its conversation (no id given) has no history to read.
    let history = match question.chat_id {
        None => Vec::new(),
        Some(_) => memory::history(db, chat_id, settings.history_messages)
            .await
            .map_err(fail)?,
    };
    // The question is stored while retrieval runs: the first piece waits for neither
    // more than it must.
    let lang = context::language(&query);
    let (stored, gathered) = tokio::join!(
        memory::add_question(
            db,
            chat_id,
            question.canal.as_str(),
            question.usuario_id,
            &query,
        ),
        context::gather(app, &query, &history),
    );
    stored.map_err(fail)?;
    let gathered = gathered.map_err(|err| fail(ApiError::Internal(err)))?;
    let mut sources = gathered.sources;
    let mut toolbox = Toolbox::new(app, chat_id);
    let generated = generate::generate(
        app,
        &query,
        &history,
        lang,
        &mut sources,
        &mut toolbox,
        out,
        cancel,
    )
    .await;
    let timings = |out: &Out| Timings {
        retrieval_ms: gathered.retrieval_ms,
        embed_ms: gathered.embed_ms,
        search_ms: gathered.search_ms,
        first_token_ms: out.first_token_ms,
        total_ms: ms_since(out.started),
    };
    let generator = match generated {
        Ok(generator) => generator,
        Err((generator, error)) => {
            let estado = match &error {
                ApiError::Cancelled => "cancelado",
                ApiError::GeneratorUnavailable(_) if !out.text.is_empty() => "parcial",
                _ => "error",
            };
            tracing::warn!(chat_id, code = error.code(), estado, "answer not completed");
            let stored = memory::add(
                db,
                chat_id,
                NewMessage {
                    rol: ASSISTANT,
                    contenido: out.text.clone(),
                    estado,
                    generador: Some(generator.as_str()),
                    fuentes: serde_json::to_value(sources.all()).ok(),
                    tiempos: serde_json::to_value(timings(out)).ok(),
                    ..NewMessage::default()
                },
            )
            .await;
            if let Err(err) = stored {
                tracing::error!(error = %err, chat_id, "could not store a partial answer");
            }
            return Err(Failure {
                chat_id: Some(chat_id.to_owned()),
                error,
                partial: (!out.text.is_empty()).then(|| out.text.clone()),
            });
        }
    };

    // The order number is stated even when the model forgot to.
    if let Some(pedido) = &toolbox.pedido
        && !out.text.contains(&pedido.id.to_string())
    {
        let sentence = match lang {
            Lang::Spanish => format!(
                "\n\nTu pedido número {} quedó registrado (pendiente) por {}.",
                pedido.id,
                prompt::pesos(pedido.total.cents())
            ),
            Lang::English => format!(
                "\n\nYour order number {} is registered (pending), total {}.",
                pedido.id,
                prompt::pesos(pedido.total.cents())
            ),
        };
        let _ = out.push(sentence).await;
    }
    let order_amounts: Vec<i64> = toolbox
        .pedido
        .iter()
        .flat_map(|p| {
            std::iter::once(p.total.cents()).chain(p.items.iter().map(|l| l.subtotal.cents()))
        })
        .collect();
    let price_check = guard::check(&out.text, sources.all(), &order_amounts);
    if let Some(note) = guard::correction(&price_check, lang) {
        tracing::warn!(chat_id, mismatches = ?price_check.mismatches, "price guard corrected an answer");
        let _ = out.push(note).await;
    }
    let cited = cited_sources(&out.text, sources.all());
    let timings = timings(out);
    memory::add(
        db,
        chat_id,
        NewMessage {
            rol: ASSISTANT,
            contenido: out.text.clone(),
            estado: "completo",
            generador: Some(generator.as_str()),
            fuentes: serde_json::to_value(&cited).ok(),
            price_check: serde_json::to_value(&price_check).ok(),
            tiempos: serde_json::to_value(&timings).ok(),
        },
    )
    .await
    .map_err(fail)?;
    app.events().record(
        "respuesta",
        serde_json::json!({
            "chat_id": chat_id,
            "generador": generator,
            "fuentes": cited.iter().map(|s| s.sku.as_deref().unwrap_or(&s.titulo)).collect::<Vec<_>>(),
            "price_check_ok": price_check.ok,
            "pedido_id": toolbox.pedido.as_ref().map(|p| p.id),
            "first_token_ms": timings.first_token_ms,
            "total_ms": timings.total_ms,
        }),
    );
    Ok(Answer {
        chat_id: chat_id.to_owned(),
        response: out.text.clone(),
        sources: cited,
        generator,
        price_check,
        pedido_id: toolbox.pedido.as_ref().map(|p| p.id),
        timings,
    })
}

/// The sources an answer cites by number or names, in source order.
fn cited_sources(text: &str, sources: &[Source]) -> Vec<Source> {
    let numbers: Vec<usize> = guard::citations(text).into_iter().map(|(n, _)| n).collect();
    let folded = crate::retrieval::text::fold(text);
    sources
        .iter()
        .filter(|s| {
            numbers.contains(&s.n) || {
                let name = crate::retrieval::text::fold(&s.titulo);
                s.tipo == context::SourceKind::Producto
                    && !name.is_empty()
                    && folded.contains(&name)
            }
        })
        .cloned()
        .collect()
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
