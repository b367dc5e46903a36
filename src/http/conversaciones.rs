//! `/api/conversaciones`: staff read what customers asked and what the agent
//! answered.

use axum::Json;
use axum::extract::State;

use crate::agent::memory::{self, Conversacion, ConversacionCompleta, FiltroConversaciones};
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::ErrorBody;
use crate::http::extract::{ApiPath, ApiQuery, Staff};
use crate::shop::types::Paged;

#[utoipa::path(get, path = "/api/conversaciones", tag = "agente", params(FiltroConversaciones),
    security(("bearer" = [])),
    responses((status = 200, body = Paged<Conversacion>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn list(
    _: Staff,
    State(app): State<AppState>,
    ApiQuery(filter): ApiQuery<FiltroConversaciones>,
) -> Result<Json<Paged<Conversacion>>, ApiError> {
    Ok(Json(memory::list(app.db(), filter).await?))
}

#[utoipa::path(get, path = "/api/conversaciones/{chat_id}", tag = "agente",
    security(("bearer" = [])), params(("chat_id" = String, Path)),
    responses((status = 200, body = ConversacionCompleta), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Staff,
    State(app): State<AppState>,
    ApiPath(chat_id): ApiPath<String>,
) -> Result<Json<ConversacionCompleta>, ApiError> {
    Ok(Json(memory::get(app.db(), &chat_id).await?))
}
