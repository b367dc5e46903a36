//! `/api/conversaciones`: staff read what customers asked and what the agent
//! answered.

use axum::Json;
use axum::extract::State;

use std::sync::Arc;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, Staff};
use crate::agent::Agent;
use crate::agent::memory::{Conversacion, ConversacionCompleta, FiltroConversaciones};
use crate::shop::types::Paged;

#[utoipa::path(get, path = "/api/conversaciones", tag = "agente", params(FiltroConversaciones),
    security(("bearer" = [])),
    responses((status = 200, body = Paged<Conversacion>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn list(
    _: Staff,
    State(agent): State<Arc<Agent>>,
    ApiQuery(filter): ApiQuery<FiltroConversaciones>,
) -> Result<Json<Paged<Conversacion>>, ApiError> {
    Ok(Json(agent.memory().list(filter).await?))
}

#[utoipa::path(get, path = "/api/conversaciones/{chat_id}", tag = "agente",
    security(("bearer" = [])), params(("chat_id" = String, Path)),
    responses((status = 200, body = ConversacionCompleta), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Staff,
    State(agent): State<Arc<Agent>>,
    ApiPath(chat_id): ApiPath<String>,
) -> Result<Json<ConversacionCompleta>, ApiError> {
    Ok(Json(agent.memory().conversation(&chat_id).await?))
}
