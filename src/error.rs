//! The one error type every HTTP handler returns.
//!
//! Each variant has a stable machine-readable `code` that clients may match on, a
//! status, and a Spanish message for people. The JSON shape is always
//! `{"error": {"code": "…", "message": "…"}}` (plus `field` for validation errors).
//! Internal failures are logged with their cause chain and answered as
//! `internal_error` without details.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::shop::types::FieldError;

/// A failure as the API reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(FieldError),
    #[error("el cuerpo no es JSON válido: {0}")]
    InvalidJson(String),
    #[error("el cuerpo JSON no tiene la forma esperada: {0}")]
    InvalidBody(String),
    #[error("parámetros de consulta inválidos: {0}")]
    InvalidQuery(String),
    #[error("ruta inválida: {0}")]
    InvalidPath(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("correo o contraseña incorrectos")]
    InvalidCredentials,
    #[error("tu rol no permite esta operación")]
    Forbidden,
    #[error("{0} no encontrado")]
    NotFound(&'static str),
    #[error("la ruta no existe")]
    RouteNotFound,
    #[error("método no permitido en esta ruta")]
    MethodNotAllowed,
    #[error("ya existe un registro con ese correo")]
    EmailTaken,
    #[error("ya existe un producto con ese SKU")]
    SkuTaken,
    #[error("stock insuficiente para {sku}: se piden {requested}, quedan {available}")]
    InsufficientStock {
        sku: String,
        requested: i64,
        available: i64,
    },
    #[error("un pedido no puede pasar de {from} a {to}")]
    InvalidTransition { from: String, to: String },
    #[error("el cliente {0} está inactivo")]
    CustomerInactive(i64),
    #[error("el producto {0} no está disponible")]
    ProductUnavailable(String),
    #[error("otro cambio simultáneo lo impidió: vuelve a intentarlo")]
    ConcurrentChange,
    #[error("el cuerpo supera el tamaño máximo permitido")]
    PayloadTooLarge,
    #[error(
        "la exportación tendría {rows} filas y el máximo es {max_rows}: acota con desde, hasta u otros filtros"
    )]
    ExportTooLarge { rows: u64, max_rows: u64 },
    #[error("tipo de contenido no soportado: se espera {0}")]
    UnsupportedMediaType(&'static str),
    #[error("el audio supera el tamaño máximo de {} MB", max_bytes / (1024 * 1024))]
    AudioTooLarge { max_bytes: usize },
    #[error("el audio dura más de {max_secs} s: graba un mensaje más corto")]
    AudioTooLong { max_secs: u64 },
    #[error("{0}")]
    UnsupportedAudio(String),
    #[error("{0}")]
    InvalidAudio(String),
    #[error("no se entendió nada en el audio: ¿puedes repetirlo, más cerca del micrófono?")]
    EmptyTranscription,
    #[error("la transcripción de voz no está disponible: {0}")]
    SpeechUnavailable(String),
    #[error("demasiadas solicitudes: reintenta en {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("la solicitud tardó demasiado")]
    Timeout,
    #[error("{component} no está disponible: {message}")]
    Unavailable {
        component: &'static str,
        message: String,
    },
    #[error("hay demasiadas respuestas en curso: reintenta en unos segundos")]
    Busy,
    #[error("el servicio se está reiniciando: vuelve a preguntar en unos segundos")]
    ShuttingDown,
    #[error("el generador de respuestas no está disponible: {0}")]
    GeneratorUnavailable(String),
    #[error("la respuesta se detuvo a pedido del cliente")]
    Cancelled,
    #[error("error interno")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidBody(_) => "invalid_body",
            Self::InvalidQuery(_) => "invalid_query",
            Self::InvalidPath(_) => "invalid_path",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::EmailTaken => "email_taken",
            Self::SkuTaken => "sku_taken",
            Self::InsufficientStock { .. } => "insufficient_stock",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::CustomerInactive(_) => "customer_inactive",
            Self::ProductUnavailable(_) => "product_unavailable",
            Self::ConcurrentChange => "concurrent_change",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ExportTooLarge { .. } => "export_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::AudioTooLarge { .. } => "payload_too_large",
            Self::AudioTooLong { .. } => "audio_too_long",
            Self::UnsupportedAudio(_) => "unsupported_audio",
            Self::InvalidAudio(_) => "invalid_audio",
            Self::EmptyTranscription => "empty_transcription",
            Self::SpeechUnavailable(_) => "speech_unavailable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Timeout => "timeout",
            Self::Unavailable { .. } => "service_unavailable",
            Self::Busy => "busy",
            Self::ShuttingDown => "shutting_down",
            Self::GeneratorUnavailable(_) => "generator_unavailable",
            Self::Cancelled => "cancelled",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_)
            | Self::InvalidJson(_)
            | Self::InvalidQuery(_)
            | Self::InvalidPath(_) => StatusCode::BAD_REQUEST,
            Self::InvalidBody(_)
            | Self::ExportTooLarge { .. }
            | Self::InvalidAudio(_)
            | Self::EmptyTranscription => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::EmailTaken
            | Self::SkuTaken
            | Self::InsufficientStock { .. }
            | Self::InvalidTransition { .. }
            | Self::CustomerInactive(_)
            | Self::ProductUnavailable(_)
            | Self::ConcurrentChange => StatusCode::CONFLICT,
            Self::PayloadTooLarge | Self::AudioTooLarge { .. } | Self::AudioTooLong { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::UnsupportedMediaType(_) | Self::UnsupportedAudio(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout
            | Self::Unavailable { .. }
            | Self::Busy
            | Self::ShuttingDown
            | Self::GeneratorUnavailable(_)
            | Self::SpeechUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // nginx's "client closed request": only ever logged, the client is gone.
            Self::Cancelled => StatusCode::from_u16(499).expect("valid status code"),
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Wraps any failure that is the server's fault.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        Self::Validation(err)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    /// A foreign-key violation means a referenced row vanished between a check and a
    /// write (e.g. a customer deleted while their order was being created): a conflict
    /// the client can retry, not a server fault.
    fn from(err: sea_orm::DbErr) -> Self {
        match err.sql_err() {
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => Self::ConcurrentChange,
            _ => Self::Internal(err.into()),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let field = match &self {
            Self::Validation(err) => Some(err.field),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            Self::RateLimited { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Busy | Self::ShuttingDown => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::internal(anyhow::anyhow!("password=hunter2 at db host"));
        assert_eq!(err.to_string(), "error interno");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let response = ApiError::RateLimited {
            retry_after_secs: 3,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
