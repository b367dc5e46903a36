//! Ollama's `/api/chat`, streamed through ollama-rs.
//!
//! A stream that ends without its `done` line failed: ollama-rs skips lines it cannot
//! read (an `{"error": …}` line in the middle of a stream is one), so the missing
//! final line is how a failure mid-stream shows. Dropping the stream closes the
//! HTTP connection, which is how a cancelled answer stops the model.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use ollama_rs::Ollama;
use ollama_rs::error::OllamaError;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::chat::{ChatMessage, ChatMessageResponseStream};
use ollama_rs::generation::tools::{ToolCall, ToolInfo};

/// After Ollama could not be reached, how long `auto` answers extractively before
/// trying Ollama again.
const DOWN_FOR: Duration = Duration::from_secs(5);
/// How long a reachability probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a chat request produced no (complete) answer.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Nothing answers at the configured address.
    #[error("no se pudo conectar con Ollama: {0}")]
    Unreachable(String),
    /// Ollama answered with an error, cut the stream short, or sent nonsense.
    #[error("{0}")]
    Failed(String),
}

/// One piece of a streamed chat answer.
#[derive(Debug)]
pub enum Piece {
    Text(String),
    ToolCalls(Vec<ToolCall>),
    /// The final line arrived: the answer (or this tool-call round) is complete.
    Done,
}

/// A chat stream: pieces, then `Done`; an error ends it.
pub struct ChatStream {
    inner: ChatMessageResponseStream,
    pending: VecDeque<Piece>,
    finished: bool,
}

impl ChatStream {
    /// The next piece; `None` after `Done` or an error.
    pub async fn next(&mut self) -> Option<Result<Piece, ChatError>> {
        loop {
            if let Some(piece) = self.pending.pop_front() {
                return Some(Ok(piece));
            }
            if self.finished {
                return None;
            }
            let Some(item) = self.inner.next().await else {
                self.finished = true;
                return Some(Err(ChatError::Failed(
                    "Ollama cortó la respuesta antes de terminarla".to_owned(),
                )));
            };
            let Ok(response) = item else {
                self.finished = true;
                return Some(Err(ChatError::Failed(
                    "se perdió la conexión con Ollama en medio de la respuesta".to_owned(),
                )));
            };
            let message = response.message;
            if !message.content.is_empty() {
                self.pending.push_back(Piece::Text(message.content));
            }
            if !message.tool_calls.is_empty() {
                self.pending.push_back(Piece::ToolCalls(message.tool_calls));
            }
            if response.done {
                self.pending.push_back(Piece::Done);
                self.finished = true;
            }
        }
    }
}

/// The Ollama chat client and what it knows of Ollama's health.
pub struct OllamaChat {
    client: Ollama,
    /// For `/api/tags`, asked directly: a server that lists its models with their
    /// names alone (which ollama-rs's listing rejects) is up all the same.
    http: reqwest::Client,
    model: String,
    down_since: Mutex<Option<Instant>>,
}

impl OllamaChat {
    pub fn new(url: &str, model: &str) -> anyhow::Result<Self> {
        let client = Ollama::try_new(url).with_context(|| format!("bad Ollama URL {url}"))?;
        Ok(Self {
            client,
            http: reqwest::Client::new(),
            model: model.to_owned(),
            down_since: Mutex::new(None),
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether Ollama failed to connect within the last few seconds.
    pub fn recently_down(&self) -> bool {
        self.down_since
            .lock()
            .expect("down_since lock")
            .is_some_and(|at| at.elapsed() < DOWN_FOR)
    }

    fn mark(&self, reachable: bool) {
        *self.down_since.lock().expect("down_since lock") = (!reachable).then(Instant::now);
    }

    /// Asks Ollama for its models (`/api/tags`), a cheap reachability check: up
    /// when it answers with a list of models.
    pub async fn probe(&self) -> bool {
        let listing = async {
            // The address ollama-rs forms its own requests on.
            let tags = format!("{}api/tags", self.client.url_str());
            let response = self.http.get(tags).send().await?;
            response.error_for_status()?.json::<Tags>().await
        };
        let reachable = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, listing).await,
            Ok(Ok(_))
        );
        self.mark(reachable);
        reachable
    }

    /// Starts a streamed chat answer.
    pub async fn stream(
        &self,
        messages: Vec<ChatMessage>,
        tools: Vec<ToolInfo>,
    ) -> Result<ChatStream, ChatError> {
        let request = ChatMessageRequest::new(self.model.clone(), messages).tools(tools);
        match self.client.send_chat_messages_stream(request).await {
            Ok(inner) => {
                self.mark(true);
                Ok(ChatStream {
                    inner,
                    pending: VecDeque::new(),
                    finished: false,
                })
            }
            Err(OllamaError::ReqwestError(err)) if err.is_connect() => {
                self.mark(false);
                Err(ChatError::Unreachable(err.to_string()))
            }
            Err(OllamaError::Other(body)) => Err(ChatError::Failed(error_message(&body))),
            Err(err) => Err(ChatError::Failed(err.to_string())),
        }
    }
}

/// What a reachability probe needs of `/api/tags`.
#[derive(serde::Deserialize)]
struct Tags {
    #[serde(rename = "models")]
    _models: Vec<serde::de::IgnoredAny>,
}

/// The message of an Ollama error body (`{"error": "…"}`), or the body itself.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }
}
