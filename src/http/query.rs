//! `POST /api/query/text`: a customer's question answered by the sales agent, as one
//! JSON answer or, with `Accept: text/event-stream`, streamed as Server-Sent Events:
//! `response` events with the pieces, then the final `response` (or an `error`),
//! with keep-alive comments and proxy buffering turned off.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::sync::Arc;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{ApiJson, MaybeStaff};
use crate::agent::wire::{ChunkMessage, ErrorMessage, FinalMessage, TranscriptionMessage};
use crate::agent::{Agent, Answer, Channel, Event, Failure, Question, Started};
use crate::speech::Transcription;

/// How often an idle event stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Body of `POST /api/query/text`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryText {
    #[schema(example = "¿Tienen taladros inalámbricos por menos de 300.000?")]
    pub query: String,
    /// The conversation to continue; omit it to start one (the answer says its id).
    pub chat_id: Option<String>,
}

pub(crate) fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// An answer with the transcription of the question it answers, for voice.
#[derive(Serialize)]
struct WithTranscription<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    transcription: Option<&'a Transcription>,
    #[serde(flatten)]
    answer: &'a Answer,
}

/// An error answer that also says which conversation it was, what had been
/// answered before it failed and, for voice, what was heard.
pub(crate) fn failure_response(
    failure: &Failure,
    transcription: Option<&Transcription>,
) -> Response {
    let mut extra = serde_json::Map::new();
    extra.insert("chat_id".to_owned(), serde_json::json!(failure.chat_id));
    extra.insert("parcial".to_owned(), serde_json::json!(failure.partial));
    if let Some(transcription) = transcription {
        extra.insert("transcription".to_owned(), serde_json::json!(transcription));
    }
    ApiError::describe(&failure.error).into_response_with(extra)
}

fn sse_event(name: &str, data: &impl serde::Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| SseEvent::default().event("error").data("{}"))
}

#[utoipa::path(post, path = "/api/query/text", tag = "agente", request_body = QueryText,
    description = "Answers as JSON, or streams Server-Sent Events with `Accept: text/event-stream` \
                   (`response` events `{chat_id, chunk, complete: false}`, then the final \
                   `response` with `complete: true`, or an `error` event).",
    responses((status = 200, body = Answer), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "busy or generator_unavailable", body = ErrorBody)))]
pub async fn text(
    State(agent): State<Arc<Agent>>,
    MaybeStaff(staff): MaybeStaff,
    headers: HeaderMap,
    ApiJson(body): ApiJson<QueryText>,
) -> Result<Response, ApiError> {
    let question = Question {
        query: body.query,
        chat_id: body.chat_id,
        channel: Channel::Rest,
        staff_id: staff.map(|s| s.id),
    };
    agent.check(&question)?;
    let started = agent.start(question);
    respond(started, wants_event_stream(&headers), None).await
}

/// Sends a running answer as one JSON document or as an event stream; a voice
/// question's transcription goes first (a `transcription` field, or event).
pub(crate) async fn respond(
    started: Started,
    event_stream: bool,
    transcription: Option<Transcription>,
) -> Result<Response, ApiError> {
    // The answer stops when this handler or its stream is dropped (client gone).
    let stop = started.cancel.drop_guard();
    let mut events = started.events;
    let chat_id = started.chat_id.unwrap_or_default();

    if !event_stream {
        while let Some(event) = events.recv().await {
            match event {
                Event::Chunk(_) => {}
                Event::Done(answer) => {
                    return Ok(Json(WithTranscription {
                        transcription: transcription.as_ref(),
                        answer: &answer,
                    })
                    .into_response());
                }
                Event::Failed(failure) => {
                    return Ok(failure_response(&failure, transcription.as_ref()));
                }
            }
        }
        return Err(ApiError::internal(anyhow::anyhow!(
            "the answer ended without a final event"
        )));
    }

    let stream = async_stream::stream! {
        let _stop = stop;
        if let Some(transcription) = &transcription {
            yield Ok::<_, Infallible>(sse_event("transcription", &TranscriptionMessage {
                chat_id: &chat_id,
                transcription,
            }));
        }
        while let Some(event) = events.recv().await {
            match event {
                Event::Chunk(chunk) => {
                    yield Ok(sse_event("response", &ChunkMessage {
                        chat_id: &chat_id,
                        chunk: &chunk,
                        complete: false,
                    }));
                }
                Event::Done(answer) => {
                    yield Ok(sse_event("response", &FinalMessage { answer: &answer, complete: true }));
                    break;
                }
                Event::Failed(failure) => {
                    yield Ok(sse_event("error", &ErrorMessage::from(&failure)));
                    break;
                }
            }
        }
    };
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
