//! Errors as HTTP answers them: any [`Coded`] error becomes its status (from the
//! one table, [`crate::error::Code`]) and the JSON body
//! `{"error": {"code": "…", "message": "…"}}` (plus `field` for validation
//! errors), with `Retry-After` when the code asks a client to come back later.
//! Internal failures are logged with their cause chain and answered as
//! `internal_error` without details.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Code, Coded, Internal, chain};

/// A failure as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    code: Code,
    message: String,
    field: Option<&'static str>,
    retry_after: Option<u64>,
    /// The cause chain of an internal error, for the log only.
    cause: Option<String>,
}

impl ApiError {
    /// What a client is told of `err`.
    pub fn describe(err: &dyn Coded) -> Self {
        let code = err.code();
        Self {
            code,
            message: err.to_string(),
            field: err.field(),
            retry_after: err.retry_after(),
            cause: (code == Code::Internal).then(|| chain(err)),
        }
    }

    /// Wraps any failure that is the server's fault.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::from(Internal(err.into()))
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).expect("the code table holds valid statuses")
    }

    /// The response with more fields beside `error` in its body (the conversation
    /// and partial answer of a failed question, what a recording was heard to say).
    pub fn into_response_with(self, extra: serde_json::Map<String, serde_json::Value>) -> Response {
        self.respond(extra)
    }

    fn respond(self, extra: serde_json::Map<String, serde_json::Value>) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(error = %cause, "internal error");
        }
        // An answer's failure has always written `field`, null when there is none;
        // other errors leave it out.
        let field = match (self.field, extra.is_empty()) {
            (None, true) => None,
            (field, _) => Some(field),
        };
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str(),
                message: self.message,
                field,
            },
            extra,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == Code::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl<E: Coded> From<E> for ApiError {
    fn from(err: E) -> Self {
        Self::describe(&err)
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
    /// Absent, `null`, or the field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<Option<&'static str>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(serde_json::Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Refusal;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::internal(anyhow::anyhow!("password=hunter2 at db host"));
        assert_eq!(err.message, "error interno");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.cause.as_deref().is_some_and(|c| c.contains("hunter2")));
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let response = ApiError::from(Refusal::RateLimited {
            retry_after_secs: 3,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
