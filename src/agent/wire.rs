//! The messages transports send, the same over SSE and Socket.IO: `response`
//! pieces `{chat_id, chunk, complete: false}`, then the final `response`
//! `{chat_id, complete: true, response, sources, …}`, or an `error`
//! `{chat_id, code, message, parcial}`.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Answer, Failure};
use crate::error::{Code, Coded, chain};
use crate::speech::Transcription;

/// What a voice question said, sent before its answer.
#[derive(Debug, Serialize)]
pub struct TranscriptionMessage<'a> {
    pub chat_id: &'a str,
    #[serde(flatten)]
    pub transcription: &'a Transcription,
}

/// A question asked in a conversation, sent to the conversation's other followers
/// (the customer's other tabs and devices) before its answer.
#[derive(Debug, Serialize)]
pub struct QuestionMessage<'a> {
    pub chat_id: &'a str,
    pub query: &'a str,
}

/// One piece of an answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkMessage<'a> {
    pub chat_id: &'a str,
    pub chunk: &'a str,
    /// Always false.
    pub complete: bool,
}

/// The complete answer.
#[derive(Debug, Serialize)]
pub struct FinalMessage<'a> {
    #[serde(flatten)]
    pub answer: &'a Answer,
    /// Always true.
    pub complete: bool,
}

/// Why an answer failed or stopped.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorMessage {
    pub chat_id: Option<String>,
    /// Stable code: `validation_failed`, `rate_limited`, `busy`,
    /// `generator_unavailable`, `cancelled`, `internal_error`…
    pub code: &'static str,
    pub message: String,
    /// The offending field, for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// What had been answered before the failure (kept and stored as partial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parcial: Option<String>,
}

impl ErrorMessage {
    /// The message for any error a client may be shown; internal ones are logged
    /// with their cause, which the message never carries.
    pub fn new(chat_id: Option<String>, error: &dyn Coded, parcial: Option<String>) -> Self {
        if error.code() == Code::Internal {
            tracing::error!(error = chain(error), "internal error while answering");
        }
        Self {
            chat_id,
            code: error.code().as_str(),
            message: error.to_string(),
            field: error.field(),
            parcial,
        }
    }

    /// A transport's own refusal (a payload it cannot read, a client over its
    /// budget), with its code and message.
    pub fn refusal(chat_id: Option<String>, code: Code, message: impl Into<String>) -> Self {
        Self {
            chat_id,
            code: code.as_str(),
            message: message.into(),
            field: None,
            parcial: None,
        }
    }
}

impl From<&Failure> for ErrorMessage {
    fn from(failure: &Failure) -> Self {
        Self::new(
            failure.chat_id.clone(),
            &failure.error,
            failure.partial.clone(),
        )
    }
}
