//! Voice questions: a recording in any supported format is decoded and resampled
//! to 16 kHz mono ([`audio`]), then transcribed by Whisper ([`whisper`]) on the
//! blocking pool, a bounded number at once. The transcript goes to the sales agent
//! exactly like a typed question.
//!
//! The shop's words ([`Speech::set_vocabulary`]: the kinds of product it sells,
//! its categories, then the other words of its product names and its brands) are
//! given to Whisper as the prompt of every transcription, so that "taladros" wins
//! over a near-sounding word.
//!
//! Without a model (`TENDERO_WHISPER_MODEL`) or with one that fails to load, the
//! server still runs: voice requests answer 503 `speech_unavailable` and `/ready`
//! says why.

pub mod audio;
pub mod whisper;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::config::SpeechSettings;
use crate::error::{BUSY_MESSAGE, CANCELLED_MESSAGE, Code, Coded, INTERNAL_MESSAGE};
use audio::AudioError;
use whisper::Whisper;

/// What a recording said, sent before the answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transcription {
    /// What the customer said; empty when nothing was understood.
    pub text: String,
    /// What Whisper wrote, when `text` corrects it toward the catalog's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heard: Option<String>,
    /// The language spoken (ISO 639-1), as configured or detected.
    pub language: Option<&'static str>,
    /// The container the recording came in (`wav`, `mp3`, `ogg`, `flac`…).
    pub format: &'static str,
    pub audio_ms: f64,
    /// Decoding and resampling time, then transcription time, in milliseconds.
    pub decode_ms: f64,
    pub transcribe_ms: f64,
}

/// Why a recording was not transcribed.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("la transcripción de voz no está disponible: {0}")]
    Unavailable(String),
    #[error("el audio supera el tamaño máximo de {} MB", max_bytes / (1024 * 1024))]
    TooLarge { max_bytes: usize },
    #[error("el audio dura más de {max_secs} s: graba un mensaje más corto")]
    TooLong { max_secs: u64 },
    /// Not a recording in a format the decoder reads.
    #[error("{0}")]
    Unsupported(String),
    /// A recording in a known format that cannot be decoded.
    #[error("{0}")]
    Invalid(String),
    #[error("no se entendió nada en el audio: ¿puedes repetirlo, más cerca del micrófono?")]
    Empty,
    #[error("{BUSY_MESSAGE}")]
    Busy,
    #[error("{CANCELLED_MESSAGE}")]
    Cancelled,
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] anyhow::Error),
}

impl Coded for SpeechError {
    fn code(&self) -> Code {
        match self {
            Self::Unavailable(_) => Code::SpeechUnavailable,
            Self::TooLarge { .. } => Code::PayloadTooLarge,
            Self::TooLong { .. } => Code::AudioTooLong,
            Self::Unsupported(_) => Code::UnsupportedAudio,
            Self::Invalid(_) => Code::InvalidAudio,
            Self::Empty => Code::EmptyTranscription,
            Self::Busy => Code::Busy,
            Self::Cancelled => Code::Cancelled,
            Self::Internal(_) => Code::Internal,
        }
    }
}

fn internal(err: impl Into<anyhow::Error>) -> SpeechError {
    SpeechError::Internal(err.into())
}

/// The transcriber, or why there is none.
pub struct Speech {
    engine: Result<Arc<Whisper>, String>,
    /// Whether the shop's vocabulary is given to Whisper.
    use_vocabulary: bool,
    vocabulary: RwLock<Vocabulary>,
    permits: Arc<Semaphore>,
    queue: Duration,
    max_secs: u64,
    max_bytes: usize,
}

/// The prompt made of the shop's words, as text and as the model's tokens.
#[derive(Default)]
struct Vocabulary {
    /// Words the prompt holds (the first of those offered).
    words: usize,
    text: String,
    tokens: Arc<[i32]>,
}

/// How speech is doing, for `/ready`.
pub struct SpeechStatus {
    pub available: bool,
    pub detail: String,
}

impl Speech {
    /// Loads the configured model (on the blocking pool: large models take seconds).
    pub async fn start(settings: &SpeechSettings) -> Self {
        let engine = match settings.whisper_model.clone() {
            None => Err("no hay modelo de Whisper configurado (TENDERO_WHISPER_MODEL)".to_owned()),
            Some(path) => {
                let language = settings.whisper_language.clone();
                let threads = settings.transcription_threads();
                let shown = path.display().to_string();
                let loaded =
                    tokio::task::spawn_blocking(move || Whisper::load(&path, &language, threads))
                        .await
                        .map_err(anyhow::Error::from)
                        .and_then(|loaded| loaded);
                match loaded {
                    Ok(whisper) => {
                        tracing::info!(
                            model = %shown,
                            language = whisper.language().unwrap_or("auto"),
                            threads = whisper.threads(),
                            multilingual = whisper.multilingual(),
                            "Whisper model loaded"
                        );
                        Ok(Arc::new(whisper))
                    }
                    Err(err) => {
                        tracing::error!(
                            error = format!("{err:#}"),
                            "voice questions are off: the Whisper model did not load"
                        );
                        Err(format!("el modelo de Whisper {shown} no se pudo cargar"))
                    }
                }
            }
        };
        if let Err(reason) = &engine {
            tracing::warn!(reason, "voice questions answer 503 speech_unavailable");
        }
        Self {
            engine,
            use_vocabulary: settings.whisper_vocabulary,
            vocabulary: RwLock::default(),
            permits: Arc::new(Semaphore::new(settings.max_transcriptions)),
            queue: Duration::from_millis(settings.transcription_queue_ms),
            max_secs: settings.voice_max_secs,
            max_bytes: settings.voice_max_bytes,
        }
    }

    /// Whether [`Self::set_vocabulary`] has an effect: a model is loaded and
    /// `whisper_vocabulary` is on.
    pub fn wants_vocabulary(&self) -> bool {
        self.engine.is_ok() && self.use_vocabulary
    }

    /// Gives Whisper the shop's words (most important first) as the prompt of every
    /// transcription from now on; as many as fit in the prompt are kept. Does
    /// nothing without a model or with `whisper_vocabulary` off.
    pub fn set_vocabulary(&self, words: &[String]) {
        let Ok(whisper) = &self.engine else { return };
        if !self.use_vocabulary {
            return;
        }
        let text = vocabulary_prompt(words);
        match whisper.prompt_tokens(&text) {
            Ok(tokens) => {
                // The words the prompt holds: those before the cut, if it was cut.
                let kept = whisper.prompt_text(&tokens);
                let kept = kept.trim_end_matches([',', '.', ' ']);
                let held = if words.is_empty() {
                    0
                } else {
                    kept.matches(", ").count() + 1
                };
                let mut vocabulary = self.vocabulary.write().expect("vocabulary lock");
                if vocabulary.text != text {
                    tracing::info!(
                        words = held,
                        offered = words.len(),
                        tokens = tokens.len(),
                        "Whisper hears with the shop's vocabulary"
                    );
                }
                *vocabulary = Vocabulary {
                    words: held,
                    text,
                    tokens: tokens.into(),
                };
            }
            Err(err) => tracing::warn!(
                error = format!("{err:#}"),
                "the shop's vocabulary was not given to Whisper"
            ),
        }
    }

    /// Largest recording accepted, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Fails with `payload_too_large` for a recording over the size limit.
    pub fn check_size(&self, bytes: usize) -> Result<(), SpeechError> {
        if bytes > self.max_bytes {
            return Err(SpeechError::TooLarge {
                max_bytes: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Fails with `speech_unavailable` when there is no model.
    pub fn check(&self) -> Result<(), SpeechError> {
        self.engine
            .as_ref()
            .map(|_| ())
            .map_err(|reason| SpeechError::Unavailable(reason.clone()))
    }

    pub fn status(&self) -> SpeechStatus {
        match &self.engine {
            Ok(whisper) => SpeechStatus {
                available: true,
                detail: format!(
                    "whisper ({}, idioma {}, {} hilos, {})",
                    if whisper.multilingual() {
                        "multilingüe"
                    } else {
                        "solo inglés"
                    },
                    whisper.language().unwrap_or("automático"),
                    whisper.threads(),
                    match self.vocabulary.read().expect("vocabulary lock").words {
                        0 => "sin vocabulario de la tienda".to_owned(),
                        words => format!("vocabulario de la tienda: {words} palabras"),
                    }
                ),
            },
            Err(reason) => SpeechStatus {
                available: false,
                detail: reason.clone(),
            },
        }
    }

    /// Decodes and transcribes a recording. Waits for a free transcriber up to the
    /// queue limit (then `busy`); `cancel` stops the work (the client went away).
    pub async fn transcribe(
        &self,
        bytes: Bytes,
        cancel: &CancellationToken,
    ) -> Result<Transcription, SpeechError> {
        let whisper = self
            .engine
            .as_ref()
            .map_err(|reason| SpeechError::Unavailable(reason.clone()))?
            .clone();
        let max_secs = self.max_secs;
        let started = Instant::now();
        let decoding = tokio::task::spawn_blocking(move || audio::decode(bytes, max_secs));
        let decoded = tokio::select! {
            decoded = decoding => decoded,
            () = cancel.cancelled() => return Err(SpeechError::Cancelled),
        };
        let audio = decoded.map_err(internal)?.map_err(|err| match err {
            AudioError::NotAudio(message) => SpeechError::Unsupported(message),
            AudioError::Corrupt(message) => SpeechError::Invalid(message),
            AudioError::TooLong { max_secs } => SpeechError::TooLong { max_secs },
        })?;
        let decode_ms = ms_since(started);
        let audio_ms = audio.seconds() * 1e3;
        let format = audio.format;

        let permit = tokio::select! {
            permit = tokio::time::timeout(self.queue, Arc::clone(&self.permits).acquire_owned()) => {
                match permit {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return Err(internal(anyhow::anyhow!("transcription semaphore closed"))),
                    Err(_) => return Err(SpeechError::Busy),
                }
            }
            () = cancel.cancelled() => return Err(SpeechError::Cancelled),
        };
        let prompt = Arc::clone(&self.vocabulary.read().expect("vocabulary lock").tokens);
        let transcribing = Instant::now();
        let abort = Arc::new(AtomicBool::new(false));
        let run = {
            let abort = Arc::clone(&abort);
            tokio::task::spawn_blocking(move || {
                let heard = whisper.transcribe(&audio.samples, &prompt, &abort);
                drop(permit);
                heard
            })
        };
        tokio::pin!(run);
        let heard = tokio::select! {
            heard = &mut run => heard,
            () = cancel.cancelled() => {
                abort.store(true, Ordering::Relaxed);
                // The run stops at whisper.cpp's next check; its permit is freed then.
                return Err(SpeechError::Cancelled);
            }
        };
        let heard = heard.map_err(internal)?.map_err(internal)?;
        let transcription = Transcription {
            text: heard.text,
            heard: None,
            language: heard.language,
            format,
            audio_ms,
            decode_ms,
            transcribe_ms: ms_since(transcribing),
        };
        tracing::info!(
            format,
            audio_ms,
            decode_ms,
            transcribe_ms = transcription.transcribe_ms,
            chars = transcription.text.chars().count(),
            "transcribed"
        );
        Ok(transcription)
    }
}

/// The prompt text for a list of words. Whisper reads it as what was said before
/// the recording and copies its style: a sentence, since a bare list makes it write
/// lists ("Buzco, guantes, le rock").
fn vocabulary_prompt(words: &[String]) -> String {
    if words.is_empty() {
        return String::new();
    }
    format!("En la tienda vendemos {}.", words.join(", "))
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}
