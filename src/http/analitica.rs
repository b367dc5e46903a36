//! `/api/analitica/…`, for staff: what customers searched, clicked, rated and bought
//! over a range of days (`crate::learning::analytics`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{ApiQuery, Staff};
use crate::learning::Analytics;
use crate::learning::analytics::filters::{FiltroLista, FiltroSerie, FiltroValoraciones};
use crate::learning::analytics::report::{Consultas, Productos, Serie, Valoraciones};

/// The figures per day or week (searches, clicks, click-through, answers,
/// conversations, orders and revenue attributed to searches and conversations,
/// ratings), with every period of the range, and over the whole range.
#[utoipa::path(get, path = "/api/analitica/serie", tag = "analitica", params(FiltroSerie),
    security(("bearer" = [])),
    responses((status = 200, body = Serie), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn serie(
    _: Staff,
    State(analytics): State<Arc<Analytics>>,
    ApiQuery(filtro): ApiQuery<FiltroSerie>,
) -> Result<Json<Serie>, ApiError> {
    Ok(Json(analytics.serie(&filtro).await?))
}

/// Queries over the range: the most searched (`populares`), those that found nothing
/// (`sin_resultados`: what the shop is missing) or those whose results nobody clicked
/// (`sin_clics`), with click-through, mean click position, orders and revenue.
#[utoipa::path(get, path = "/api/analitica/consultas", tag = "analitica", params(FiltroLista),
    security(("bearer" = [])),
    responses((status = 200, body = Consultas), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn consultas(
    _: Staff,
    State(analytics): State<Arc<Analytics>>,
    ApiQuery(filtro): ApiQuery<FiltroLista>,
) -> Result<Json<Consultas>, ApiError> {
    Ok(Json(analytics.consultas(&filtro).await?))
}

/// Products over the range, with the most clicks, impressions, units sold or revenue.
#[utoipa::path(get, path = "/api/analitica/productos", tag = "analitica", params(FiltroLista),
    security(("bearer" = [])),
    responses((status = 200, body = Productos), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn productos(
    _: Staff,
    State(analytics): State<Arc<Analytics>>,
    ApiQuery(filtro): ApiQuery<FiltroLista>,
) -> Result<Json<Productos>, ApiError> {
    Ok(Json(analytics.productos(&filtro).await?))
}

/// The ratings of answers over the range and the newest comments.
#[utoipa::path(get, path = "/api/analitica/valoraciones", tag = "analitica",
    params(FiltroValoraciones), security(("bearer" = [])),
    responses((status = 200, body = Valoraciones), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn valoraciones(
    _: Staff,
    State(analytics): State<Arc<Analytics>>,
    ApiQuery(filtro): ApiQuery<FiltroValoraciones>,
) -> Result<Json<Valoraciones>, ApiError> {
    Ok(Json(analytics.valoraciones(&filtro).await?))
}
