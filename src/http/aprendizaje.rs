//! `/api/aprendizaje/…`: for staff, the state of the ranking learned from clicks, and
//! for admins, a learning now (`crate::learning::clicks`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{Admin, Staff};
use crate::learning::ClickLearner;
use crate::learning::clicks::Estado;

#[utoipa::path(get, path = "/api/aprendizaje/estado", tag = "aprendizaje",
    security(("bearer" = [])),
    responses((status = 200, body = Estado), (status = 401, body = ErrorBody)))]
pub async fn status(_: Staff, State(learner): State<Arc<ClickLearner>>) -> Json<Estado> {
    Json(learner.status())
}

/// Admins only: learns from the searches and clicks now and answers when the new
/// generation serves (a failure leaves the previous one serving and answers
/// `internal_error`; while another node learns, `busy`).
#[utoipa::path(post, path = "/api/aprendizaje/entrenar", tag = "aprendizaje",
    security(("bearer" = [])),
    responses((status = 200, body = Estado), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn learn(
    _: Admin,
    State(learner): State<Arc<ClickLearner>>,
) -> Result<Json<Estado>, ApiError> {
    Ok(Json(learner.learn().await?))
}
