//! The stable error codes clients match on, in one table, and what every domain
//! error says about itself.
//!
//! Each domain returns its own error enum (`ShopError`, `AgentError`,
//! `SpeechError`…) and implements [`Coded`] for it: which [`Code`] it is, the field
//! at fault, how long to wait before retrying. The transports turn any [`Coded`]
//! error into what their clients read: HTTP into a status and the JSON error body,
//! Socket.IO into an `error` event, both with the same code and the same Spanish
//! message. A code's status and retry-after are written once, in [`Code::spec`].
//!
//! Internal failures (code `internal_error`) display only "error interno"; their
//! cause travels as the error's `source()`, for the log, never to the client.

/// Every stable code a client may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    ValidationFailed,
    InvalidJson,
    InvalidBody,
    InvalidQuery,
    InvalidPath,
    Unauthorized,
    InvalidCredentials,
    Forbidden,
    NotFound,
    RouteNotFound,
    MethodNotAllowed,
    EmailTaken,
    SkuTaken,
    InsufficientStock,
    InvalidTransition,
    CustomerInactive,
    ProductUnavailable,
    ConcurrentChange,
    PayloadTooLarge,
    ExportTooLarge,
    UnsupportedMediaType,
    AudioTooLong,
    UnsupportedAudio,
    InvalidAudio,
    EmptyTranscription,
    SpeechUnavailable,
    RateLimited,
    Timeout,
    Busy,
    ShuttingDown,
    GeneratorUnavailable,
    Cancelled,
    Internal,
}

/// What a code means on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The code as clients read it.
    pub name: &'static str,
    /// The HTTP status it answers with.
    pub status: u16,
    /// Seconds a client should wait before asking again, when the code says so
    /// by itself (`rate_limited` gives its own wait each time).
    pub retry_after: Option<u64>,
}

const fn spec(name: &'static str, status: u16) -> Spec {
    Spec {
        name,
        status,
        retry_after: None,
    }
}

/// How long `busy` and `shutting_down` ask a client to wait.
const COME_BACK_SECS: u64 = 5;

impl Code {
    /// Every code, for the documentation and the tests.
    pub const ALL: [Code; 33] = [
        Code::ValidationFailed,
        Code::InvalidJson,
        Code::InvalidBody,
        Code::InvalidQuery,
        Code::InvalidPath,
        Code::Unauthorized,
        Code::InvalidCredentials,
        Code::Forbidden,
        Code::NotFound,
        Code::RouteNotFound,
        Code::MethodNotAllowed,
        Code::EmailTaken,
        Code::SkuTaken,
        Code::InsufficientStock,
        Code::InvalidTransition,
        Code::CustomerInactive,
        Code::ProductUnavailable,
        Code::ConcurrentChange,
        Code::PayloadTooLarge,
        Code::ExportTooLarge,
        Code::UnsupportedMediaType,
        Code::AudioTooLong,
        Code::UnsupportedAudio,
        Code::InvalidAudio,
        Code::EmptyTranscription,
        Code::SpeechUnavailable,
        Code::RateLimited,
        Code::Timeout,
        Code::Busy,
        Code::ShuttingDown,
        Code::GeneratorUnavailable,
        Code::Cancelled,
        Code::Internal,
    ];

    /// The table: every code's name, status and retry-after.
    pub const fn spec(self) -> Spec {
        match self {
            Self::ValidationFailed => spec("validation_failed", 400),
            Self::InvalidJson => spec("invalid_json", 400),
            Self::InvalidQuery => spec("invalid_query", 400),
            Self::InvalidPath => spec("invalid_path", 400),
            Self::InvalidBody => spec("invalid_body", 422),
            Self::Unauthorized => spec("unauthorized", 401),
            Self::InvalidCredentials => spec("invalid_credentials", 401),
            Self::Forbidden => spec("forbidden", 403),
            Self::NotFound => spec("not_found", 404),
            Self::RouteNotFound => spec("route_not_found", 404),
            Self::MethodNotAllowed => spec("method_not_allowed", 405),
            Self::EmailTaken => spec("email_taken", 409),
            Self::SkuTaken => spec("sku_taken", 409),
            Self::InsufficientStock => spec("insufficient_stock", 409),
            Self::InvalidTransition => spec("invalid_transition", 409),
            Self::CustomerInactive => spec("customer_inactive", 409),
            Self::ProductUnavailable => spec("product_unavailable", 409),
            Self::ConcurrentChange => spec("concurrent_change", 409),
            Self::PayloadTooLarge => spec("payload_too_large", 413),
            Self::AudioTooLong => spec("audio_too_long", 413),
            Self::ExportTooLarge => spec("export_too_large", 422),
            Self::UnsupportedMediaType => spec("unsupported_media_type", 415),
            Self::UnsupportedAudio => spec("unsupported_audio", 415),
            Self::InvalidAudio => spec("invalid_audio", 422),
            Self::EmptyTranscription => spec("empty_transcription", 422),
            Self::RateLimited => spec("rate_limited", 429),
            Self::Timeout => spec("timeout", 503),
            Self::SpeechUnavailable => spec("speech_unavailable", 503),
            Self::GeneratorUnavailable => spec("generator_unavailable", 503),
            Self::Busy => Spec {
                retry_after: Some(COME_BACK_SECS),
                ..spec("busy", 503)
            },
            Self::ShuttingDown => Spec {
                retry_after: Some(COME_BACK_SECS),
                ..spec("shutting_down", 503)
            },
            // nginx's "client closed request": only ever logged, the client is gone.
            Self::Cancelled => spec("cancelled", 499),
            Self::Internal => spec("internal_error", 500),
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.spec().name
    }

    pub const fn status(self) -> u16 {
        self.spec().status
    }
}

/// An error a client may be shown: its code, and its `Display` is the Spanish
/// message for people. Internal errors display "error interno" and keep their
/// cause as `source()`.
pub trait Coded: std::error::Error + Send + Sync + 'static {
    fn code(&self) -> Code;

    /// The input field at fault, for `validation_failed`.
    fn field(&self) -> Option<&'static str> {
        None
    }

    /// Seconds the client should wait before asking again.
    fn retry_after(&self) -> Option<u64> {
        self.code().spec().retry_after
    }
}

/// The message every internal error shows.
pub const INTERNAL_MESSAGE: &str = "error interno";
/// What `busy` says, whichever queue was full.
pub const BUSY_MESSAGE: &str = "hay demasiadas respuestas en curso: reintenta en unos segundos";
/// What `cancelled` says, whatever was stopped.
pub const CANCELLED_MESSAGE: &str = "la respuesta se detuvo a pedido del cliente";

/// The cause chain of an error, `outer: inner: …`, for the log.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why one field of the input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl Coded for FieldError {
    fn code(&self) -> Code {
        Code::ValidationFailed
    }

    fn field(&self) -> Option<&'static str> {
        Some(self.field)
    }
}

/// What a transport refuses before any service sees the request: a body or a
/// payload it cannot read, a client over its budget, a server shutting down. The
/// same refusal reads the same over HTTP and Socket.IO.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("el cuerpo no es JSON válido: {0}")]
    InvalidJson(String),
    #[error("el cuerpo JSON no tiene la forma esperada: {0}")]
    InvalidBody(String),
    #[error("parámetros de consulta inválidos: {0}")]
    InvalidQuery(String),
    #[error("ruta inválida: {0}")]
    InvalidPath(String),
    /// No usable token where one is needed, and why.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("tu rol no permite esta operación")]
    Forbidden,
    #[error("la ruta no existe")]
    RouteNotFound,
    #[error("método no permitido en esta ruta")]
    MethodNotAllowed,
    #[error("el cuerpo supera el tamaño máximo permitido")]
    PayloadTooLarge,
    #[error("tipo de contenido no soportado: se espera {0}")]
    UnsupportedMediaType(&'static str),
    #[error("demasiadas solicitudes: reintenta en {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("la solicitud tardó demasiado")]
    Timeout,
    #[error("el servicio se está reiniciando: vuelve a preguntar en unos segundos")]
    ShuttingDown,
}

impl Coded for Refusal {
    fn code(&self) -> Code {
        match self {
            Self::InvalidJson(_) => Code::InvalidJson,
            Self::InvalidBody(_) => Code::InvalidBody,
            Self::InvalidQuery(_) => Code::InvalidQuery,
            Self::InvalidPath(_) => Code::InvalidPath,
            Self::Unauthorized(_) => Code::Unauthorized,
            Self::Forbidden => Code::Forbidden,
            Self::RouteNotFound => Code::RouteNotFound,
            Self::MethodNotAllowed => Code::MethodNotAllowed,
            Self::PayloadTooLarge => Code::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => Code::UnsupportedMediaType,
            Self::RateLimited { .. } => Code::RateLimited,
            Self::Timeout => Code::Timeout,
            Self::ShuttingDown => Code::ShuttingDown,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            other => other.code().spec().retry_after,
        }
    }
}

/// A failure that is the server's fault, for domains with no other reason to fail
/// than their infrastructure (its cause is logged, never shown).
#[derive(Debug, thiserror::Error)]
#[error("{INTERNAL_MESSAGE}")]
pub struct Internal(#[source] pub anyhow::Error);

impl Coded for Internal {
    fn code(&self) -> Code {
        Code::Internal
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_has_one_name_and_a_status() {
        let names: HashSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len(), "two codes share a name");
        for code in Code::ALL {
            let spec = code.spec();
            assert!((400..600).contains(&spec.status), "{spec:?}");
            assert!(
                spec.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
        }
        assert_eq!(Code::Busy.spec().retry_after, Some(5));
        assert_eq!(Code::Internal.status(), 500);
    }

    #[test]
    fn internal_errors_do_not_show_their_cause() {
        let err = Internal(anyhow::anyhow!("password=hunter2 at db host"));
        assert_eq!(err.to_string(), "error interno");
        assert_eq!(err.code(), Code::Internal);
        assert!(chain(&err).contains("hunter2"));
    }
}
