//! Writing an answer: Ollama's streamed chat with tool-call rounds, or the
//! extractive generator, piece by piece into the answer being sent.

use std::time::Duration;

use ollama_rs::generation::chat::ChatMessage;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::config::GeneratorChoice;
use crate::error::ApiError;
use crate::llm::GeneratorKind;
use crate::llm::extractive;
use crate::llm::ollama::{ChatError, Piece};

use super::context::{Lang, Sources};
use super::memory::Turn;
use super::tools::{self, Toolbox};
use super::{Out, prompt};

/// Rounds of tool calls one answer may take before it must answer in words.
const MAX_TOOL_ROUNDS: usize = 4;

/// Writes the answer with the configured generator, falling back to the extractive
/// one when (in `auto`) Ollama cannot be reached before anything was said.
#[allow(clippy::too_many_arguments)]
pub(super) async fn generate(
    app: &AppState,
    query: &str,
    history: &[Turn],
    lang: Lang,
    sources: &mut Sources,
    toolbox: &mut Toolbox<'_>,
    out: &mut Out,
    cancel: &CancellationToken,
) -> Result<GeneratorKind, (GeneratorKind, ApiError)> {
    let agent = app.agent();
    let use_ollama = match agent.choice {
        GeneratorChoice::Extractive => false,
        GeneratorChoice::Ollama => true,
        GeneratorChoice::Auto => !agent.ollama.recently_down(),
    };
    if use_ollama {
        match with_ollama(app, query, history, lang, sources, toolbox, out, cancel).await {
            Ok(()) => return Ok(GeneratorKind::Ollama),
            Err(Unanswered::Unreachable(reason))
                if agent.choice == GeneratorChoice::Auto && out.text.is_empty() =>
            {
                tracing::warn!(%reason, "Ollama unreachable: answering with the extractive generator");
            }
            Err(Unanswered::Unreachable(reason)) => {
                return Err((
                    GeneratorKind::Ollama,
                    ApiError::GeneratorUnavailable(reason),
                ));
            }
            Err(Unanswered::Failed(error)) => return Err((GeneratorKind::Ollama, error)),
        }
    }
    for piece in extractive::compose(query, sources.all(), lang) {
        if cancel.is_cancelled() {
            return Err((GeneratorKind::Extractive, ApiError::Cancelled));
        }
        out.push(piece)
            .await
            .map_err(|err| (GeneratorKind::Extractive, err))?;
    }
    Ok(GeneratorKind::Extractive)
}

enum Unanswered {
    Unreachable(String),
    Failed(ApiError),
}

fn unavailable(message: impl Into<String>) -> Unanswered {
    Unanswered::Failed(ApiError::GeneratorUnavailable(message.into()))
}

/// Streams Ollama's answer, running the tool calls it asks for between rounds.
#[allow(clippy::too_many_arguments)]
async fn with_ollama(
    app: &AppState,
    query: &str,
    history: &[Turn],
    lang: Lang,
    sources: &mut Sources,
    toolbox: &mut Toolbox<'_>,
    out: &mut Out,
    cancel: &CancellationToken,
) -> Result<(), Unanswered> {
    let agent = app.agent();
    let settings = app.settings();
    let silence = Duration::from_secs(settings.first_token_timeout_secs);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(settings.generation_timeout_secs);
    let mut messages = prompt::messages(&agent.system_prompt, sources.all(), history, query, lang);
    let tools = tools::definitions();
    for round in 0..=MAX_TOOL_ROUNDS {
        let tools = if round < MAX_TOOL_ROUNDS {
            tools.clone()
        } else {
            Vec::new()
        };
        let mut stream = tokio::select! {
            () = cancel.cancelled() => return Err(Unanswered::Failed(ApiError::Cancelled)),
            started = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + silence),
                agent.ollama.stream(messages.clone(), tools),
            ) => match started {
                Err(_) => return Err(unavailable(format!(
                    "Ollama no respondió en {} s", silence.as_secs()
                ))),
                Ok(Err(ChatError::Unreachable(reason))) => return Err(Unanswered::Unreachable(reason)),
                Ok(Err(ChatError::Failed(reason))) => return Err(unavailable(reason)),
                Ok(Ok(stream)) => stream,
            },
        };
        let mut said = String::new();
        let mut calls = Vec::new();
        loop {
            let wait_until = deadline.min(tokio::time::Instant::now() + silence);
            let next = tokio::select! {
                () = cancel.cancelled() => return Err(Unanswered::Failed(ApiError::Cancelled)),
                next = tokio::time::timeout_at(wait_until, stream.next()) => next,
            };
            match next {
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(unavailable(format!(
                        "la respuesta superó el tiempo máximo de {} s",
                        settings.generation_timeout_secs
                    )));
                }
                Err(_) => {
                    return Err(unavailable(format!(
                        "Ollama dejó de responder durante {} s",
                        silence.as_secs()
                    )));
                }
                Ok(None) | Ok(Some(Ok(Piece::Done))) => break,
                Ok(Some(Err(err))) => return Err(unavailable(err.to_string())),
                Ok(Some(Ok(Piece::Text(text)))) => {
                    said.push_str(&text);
                    out.push(text).await.map_err(Unanswered::Failed)?;
                }
                Ok(Some(Ok(Piece::ToolCalls(more)))) => calls.extend(more),
            }
        }
        drop(stream);
        if calls.is_empty() {
            return Ok(());
        }
        let mut assistant = ChatMessage::assistant(said);
        assistant.tool_calls = calls.clone();
        messages.push(assistant);
        for call in &calls {
            let result = toolbox.call(sources, call).await;
            messages.push(ChatMessage::tool(result));
        }
    }
    Ok(())
}
