//! One answer, from the question to the stored exchange: the conversation so far,
//! the sources, the generator's pieces, the order number and the price guard's
//! note, the stored message and the event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{Coded, FieldError};
use crate::llm::source::{Lang, Source, SourceKind, language};
use crate::shop::types::pesos;

use super::memory::{ASSISTANT, NewMessage};
use super::tools::Toolbox;
use super::{
    Agent, AgentError, Answer, AnswerTimings, Event, Failure, Question, context, generate, guard,
};

impl Agent {
    pub(super) async fn answer(
        &self,
        question: &Question,
        chat_id: &str,
        out: &mut Out,
        cancel: &CancellationToken,
    ) -> Result<Answer, Failure> {
        let fail = |error: AgentError| Failure {
            chat_id: Some(chat_id.to_owned()),
            error,
            partial: None,
        };
        let settings = &self.settings;
        let query = validate_query(&question.query, self.search.max_query_chars())
            .map_err(|err| fail(err.into()))?;
        let queue = Duration::from_millis(settings.generation_queue_ms);
        let _permit = tokio::select! {
            () = cancel.cancelled() => return Err(fail(AgentError::Cancelled)),
            permit = tokio::time::timeout(queue, Arc::clone(&self.permits).acquire_owned()) => {
                match permit {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(fail(AgentError::Busy)),
                }
            }
        };
        let memory = &self.memory;
        // A question that starts its conversation (no id given) has no history to read.
        let history = match question.chat_id {
            None => Vec::new(),
            Some(_) => memory
                .history(chat_id, settings.history_messages)
                .await
                .map_err(fail)?,
        };
        // The question is stored while retrieval runs: the first piece waits for neither
        // more than it must.
        let lang = language(&query);
        let (stored, gathered) = tokio::join!(
            memory.add_question(
                chat_id,
                question.channel.as_str(),
                question.staff_id,
                &query
            ),
            context::gather(self, chat_id, &query, &history),
        );
        let started = stored.map_err(fail)?;
        let gathered = gathered.map_err(|err| fail(AgentError::Internal(err)))?;
        let mut sources = gathered.sources;
        let mut toolbox = Toolbox::new(self, chat_id);
        let generated = generate::generate(
            self,
            generate::Request {
                query: &query,
                history: &history,
                lang,
            },
            &mut sources,
            &mut toolbox,
            out,
            cancel,
        )
        .await;
        let timings = |out: &Out| AnswerTimings {
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
                    AgentError::Cancelled => "cancelado",
                    AgentError::GeneratorUnavailable(_) if !out.text.is_empty() => "parcial",
                    _ => "error",
                };
                // What already reached the customer is checked too, and corrected
                // while anyone still listens.
                let price_check = (!out.text.is_empty())
                    .then(|| guard::check(&out.text, sources.all(), &order_amounts(&toolbox)));
                if let Some(check) = &price_check
                    && let Some(note) = guard::correction(check, lang)
                {
                    tracing::warn!(chat_id, mismatches = ?check.mismatches, "price guard corrected a partial answer");
                    let _ = out.push(note).await;
                }
                tracing::warn!(
                    chat_id,
                    code = error.code().as_str(),
                    estado,
                    "answer not completed"
                );
                let stored = memory
                    .add(
                        chat_id,
                        NewMessage {
                            rol: ASSISTANT,
                            contenido: out.text.clone(),
                            estado,
                            generador: Some(generator.as_str()),
                            fuentes: serde_json::to_value(sources.all()).ok(),
                            price_check: price_check.and_then(|c| serde_json::to_value(c).ok()),
                            tiempos: serde_json::to_value(timings(out)).ok(),
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
            && !guard::states_order_number(&out.text, pedido.id)
        {
            let sentence = match lang {
                Lang::Spanish => format!(
                    "\n\nTu pedido número {} quedó registrado (pendiente) por {}.",
                    pedido.id,
                    pesos(pedido.total.cents())
                ),
                Lang::English => format!(
                    "\n\nYour order number {} is registered (pending), total {}.",
                    pedido.id,
                    pesos(pedido.total.cents())
                ),
            };
            let _ = out.push(sentence).await;
        }
        let price_check = guard::check(&out.text, sources.all(), &order_amounts(&toolbox));
        if let Some(note) = guard::correction(&price_check, lang) {
            tracing::warn!(chat_id, mismatches = ?price_check.mismatches, "price guard corrected an answer");
            let _ = out.push(note).await;
        }
        let mut cited = cited_sources(&out.text, sources.all());
        // What goes with the product the answer speaks of, shown after it.
        let suggested = super::suggest::after_answer(self, &mut sources, &cited).await;
        cited.extend(suggested);
        let timings = timings(out);
        let respuesta_id = memory
            .add(
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
        self.events.record(
            crate::learning::events::ANSWER,
            serde_json::json!({
                "respuesta_id": respuesta_id,
                "chat_id": chat_id,
                // This question started its conversation: conversations started are counted.
                "nueva": started,
                "generador": generator,
                "fuentes": cited.iter().map(|s| s.sku.as_deref().unwrap_or(&s.titulo)).collect::<Vec<_>>(),
                // The cards shown, by place (`null` for a document's passage).
                "productos": cited.iter().map(|s| (s.tipo == SourceKind::Producto).then_some(s.id)).collect::<Vec<_>>(),
                "price_check_ok": price_check.ok,
                "pedido_id": toolbox.pedido.as_ref().map(|p| p.id),
                "first_token_ms": timings.first_token_ms,
                "total_ms": timings.total_ms,
            }),
        );
        Ok(Answer {
            respuesta_id,
            chat_id: chat_id.to_owned(),
            response: out.text.clone(),
            sources: cited,
            generator,
            price_check,
            pedido_id: toolbox.pedido.as_ref().map(|p| p.id),
            timings,
        })
    }
}

/// The answer as it is sent.
pub(super) struct Out {
    pub(super) sender: mpsc::Sender<Event>,
    pub(super) text: String,
    pub(super) started: Instant,
    pub(super) first_token_ms: Option<f64>,
}

impl Out {
    /// Sends a piece; fails when the transport is gone.
    pub(super) async fn push(&mut self, piece: String) -> Result<(), AgentError> {
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
            .map_err(|_| AgentError::Cancelled)
    }
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

pub(super) fn validate_query(raw: &str, max_chars: usize) -> Result<String, FieldError> {
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

/// The amounts of the order taken in this answer (its total and each line's
/// subtotal): valid amounts for the price guard.
fn order_amounts(toolbox: &Toolbox<'_>) -> Vec<i64> {
    toolbox
        .pedido
        .iter()
        .flat_map(|p| {
            std::iter::once(p.total.cents()).chain(p.items.iter().map(|l| l.subtotal.cents()))
        })
        .collect()
}

/// The sources an answer cites by number or names, in source order.
fn cited_sources(text: &str, sources: &[Source]) -> Vec<Source> {
    let numbers: Vec<usize> = guard::citations(text).into_iter().map(|(n, _)| n).collect();
    let folded = crate::text::fold(text);
    sources
        .iter()
        .filter(|s| {
            numbers.contains(&s.n) || {
                let name = crate::text::fold(&s.titulo);
                s.tipo == SourceKind::Producto && !name.is_empty() && folded.contains(&name)
            }
        })
        .cloned()
        .collect()
}
