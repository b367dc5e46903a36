//! `POST /api/query/voice`: a spoken question (multipart field `audio`, optional
//! `chat_id`) transcribed by Whisper and answered by the sales agent like a typed
//! one: as JSON with a `transcription` field, or, with `Accept:
//! text/event-stream`, as a `transcription` event followed by the `response`
//! events of `/api/query/text`.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use std::sync::Arc;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::MaybeStaff;
use super::query::{respond, wants_event_stream};
use crate::agent::memory::{new_chat_id, parse_chat_id};
use crate::agent::{Agent, Channel, Question};
use crate::error::{FieldError, Refusal};
use crate::speech::{Speech, SpeechError};

/// Room for the multipart framing and the `chat_id` field around the audio.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The form `POST /api/query/voice` takes (documentation only).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueryVoice {
    /// The recording: WAV, MP3, OGG Vorbis or FLAC; any rate, mono or stereo.
    #[schema(format = Binary, value_type = String)]
    audio: Vec<u8>,
    /// The conversation to continue; omit it to start one.
    chat_id: Option<String>,
}

/// What the multipart body held.
struct VoiceForm {
    audio: Bytes,
    chat_id: Option<String>,
}

#[utoipa::path(post, path = "/api/query/voice", tag = "agente",
    request_body(content = QueryVoice, content_type = "multipart/form-data"),
    description = "Transcribes the recording and answers it like `/api/query/text`: JSON with a \
                   `transcription` field, or with `Accept: text/event-stream` a `transcription` \
                   event, then the `response` events. Nothing understood: 422 \
                   `empty_transcription`.",
    responses((status = 200, body = crate::agent::Answer),
        (status = 413, description = "payload_too_large or audio_too_long", body = ErrorBody),
        (status = 415, description = "unsupported_audio or unsupported_media_type", body = ErrorBody),
        (status = 422, description = "invalid_audio or empty_transcription", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "speech_unavailable, busy or generator_unavailable", body = ErrorBody)))]
pub async fn voice(
    State(agent): State<Arc<Agent>>,
    State(speech): State<Arc<Speech>>,
    MaybeStaff(staff): MaybeStaff,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    // Without a model nothing is read: the client learns at once.
    speech.check()?;
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(Refusal::UnsupportedMediaType(
            "multipart/form-data con la grabación en el campo `audio`",
        )
        .into());
    }
    let multipart = form.map_err(|rejection| Refusal::InvalidBody(rejection.body_text()))?;
    let form = read_form(multipart, speech.max_bytes()).await?;
    let chat_id = match &form.chat_id {
        Some(raw) => parse_chat_id(raw)?,
        None => new_chat_id(),
    };

    let cancel = CancellationToken::new();
    // Transcription stops if the client goes away while it runs.
    let stop = cancel.clone().drop_guard();
    let transcription = agent.hear(speech.transcribe(form.audio, &cancel).await?);
    if transcription.text.is_empty() {
        // The conversation and what was heard (nothing), so that a client can show
        // it and ask again.
        let empty = ApiError::from(SpeechError::Empty);
        let mut extra = serde_json::Map::new();
        extra.insert("chat_id".to_owned(), serde_json::json!(chat_id));
        extra.insert("parcial".to_owned(), serde_json::Value::Null);
        extra.insert("transcription".to_owned(), serde_json::json!(transcription));
        return Ok(empty.into_response_with(extra));
    }
    let question = Question {
        query: transcription.text.clone(),
        chat_id: Some(chat_id),
        channel: Channel::Rest,
        staff_id: staff.map(|s| s.id),
    };
    agent.check(&question)?;
    let started = agent.start_with(question, stop.disarm());
    respond(started, wants_event_stream(&headers), Some(transcription)).await
}

async fn read_form(mut multipart: Multipart, max_bytes: usize) -> Result<VoiceForm, ApiError> {
    let mut audio = None;
    let mut chat_id = None;
    while let Some(field) = multipart.next_field().await.map_err(form_error)? {
        match field.name() {
            Some("audio") => audio = Some(read_audio(field, max_bytes).await?),
            Some("chat_id") => {
                let text = field.text().await.map_err(form_error)?;
                chat_id = Some(text.trim().to_owned()).filter(|t| !t.is_empty());
            }
            other => {
                return Err(Refusal::InvalidBody(format!(
                    "campo desconocido `{}`: se esperan `audio` y, opcional, `chat_id`",
                    other.unwrap_or_default()
                ))
                .into());
            }
        }
    }
    let audio = audio
        .ok_or_else(|| FieldError::new("audio", "adjunta la grabación en el campo `audio`"))?;
    Ok(VoiceForm { audio, chat_id })
}

/// Reads the audio field, refusing it as soon as it passes the size limit.
async fn read_audio(mut field: Field<'_>, max_bytes: usize) -> Result<Bytes, ApiError> {
    let mut audio = BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        if audio.len() + chunk.len() > max_bytes {
            return Err(SpeechError::TooLarge { max_bytes }.into());
        }
        audio.extend_from_slice(&chunk);
    }
    Ok(audio.freeze())
}

fn form_error(err: MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Refusal::PayloadTooLarge.into();
    }
    Refusal::InvalidBody(format!(
        "el formulario multipart es inválido: {}",
        err.body_text()
    ))
    .into()
}
