//! Writing an answer: Ollama's streamed chat with tool-call rounds, or the
//! extractive generator, piece by piece into the answer being sent.

use std::time::Duration;

use ollama_rs::generation::chat::ChatMessage;
use tokio_util::sync::CancellationToken;

use crate::config::GeneratorChoice;
use crate::llm::GeneratorKind;
use crate::llm::extractive;
use crate::llm::ollama::{ChatError, Piece};
use crate::llm::source::Lang;

use super::context::Sources;
use super::memory::Turn;
use super::tools::{self, Toolbox};
use super::{Agent, AgentError, Out, prompt};

/// Rounds of tool calls one answer may take before it must answer in words.
const MAX_TOOL_ROUNDS: usize = 4;

/// What the answer is to: the question, the conversation before it, its language.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    pub query: &'a str,
    pub history: &'a [Turn],
    pub lang: Lang,
}

/// Writes the answer with the configured generator, falling back to the extractive
/// one when (in `auto`) Ollama cannot be reached before anything was said.
pub(super) async fn generate(
    agent: &Agent,
    request: Request<'_>,
    sources: &mut Sources,
    toolbox: &mut Toolbox<'_>,
    out: &mut Out,
    cancel: &CancellationToken,
) -> Result<GeneratorKind, (GeneratorKind, AgentError)> {
    let choice = agent.settings.generator;
    let use_ollama = match choice {
        GeneratorChoice::Extractive => false,
        GeneratorChoice::Ollama => true,
        GeneratorChoice::Auto => !agent.ollama.recently_down(),
    };
    if use_ollama {
        match with_ollama(agent, request, sources, toolbox, out, cancel).await {
            Ok(()) => return Ok(GeneratorKind::Ollama),
            Err(Unanswered::Unreachable(reason))
                if choice == GeneratorChoice::Auto && out.text.is_empty() =>
            {
                tracing::warn!(%reason, "Ollama unreachable: answering with the extractive generator");
            }
            Err(Unanswered::Unreachable(reason)) => {
                return Err((
                    GeneratorKind::Ollama,
                    AgentError::GeneratorUnavailable(reason),
                ));
            }
            Err(Unanswered::Failed(error)) => return Err((GeneratorKind::Ollama, error)),
        }
    }
    for piece in extractive::compose(request.query, sources.all(), request.lang) {
        if cancel.is_cancelled() {
            return Err((GeneratorKind::Extractive, AgentError::Cancelled));
        }
        out.push(piece)
            .await
            .map_err(|err| (GeneratorKind::Extractive, err))?;
    }
    Ok(GeneratorKind::Extractive)
}

enum Unanswered {
    Unreachable(String),
    Failed(AgentError),
}

fn unavailable(message: impl Into<String>) -> Unanswered {
    Unanswered::Failed(AgentError::GeneratorUnavailable(message.into()))
}

/// Streams Ollama's answer, running the tool calls it asks for between rounds.
async fn with_ollama(
    agent: &Agent,
    request: Request<'_>,
    sources: &mut Sources,
    toolbox: &mut Toolbox<'_>,
    out: &mut Out,
    cancel: &CancellationToken,
) -> Result<(), Unanswered> {
    let settings = &agent.settings;
    let silence = Duration::from_secs(settings.first_token_timeout_secs);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(settings.generation_timeout_secs);
    let mut messages = prompt::messages(
        &agent.system_prompt,
        sources.all(),
        request.history,
        request.query,
        request.lang,
    );
    let tools = tools::definitions();
    for round in 0..=MAX_TOOL_ROUNDS {
        let tools = if round < MAX_TOOL_ROUNDS {
            tools.clone()
        } else {
            Vec::new()
        };
        let mut stream = tokio::select! {
            () = cancel.cancelled() => return Err(Unanswered::Failed(AgentError::Cancelled)),
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
                () = cancel.cancelled() => return Err(Unanswered::Failed(AgentError::Cancelled)),
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
