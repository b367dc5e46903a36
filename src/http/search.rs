//! `GET /api/search`: ranked products for a query, without the LLM. Public and rate
//! limited like the rest of the API; every search is recorded in the event log.
//!
//! Prices, stock and names come from the database at answer time (see
//! [`crate::retrieval::live`]).

use std::time::Instant;

use axum::extract::State;
use axum::{Extension, Json};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use std::sync::Arc;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::rate_limit::Client;
use crate::learning::{Intake, Sender};
use crate::retrieval::Search;
use crate::retrieval::search::{Filters, Mode};
use crate::retrieval::store::ChunkKind;
use crate::shop::productos::Producto;
use crate::shop::types::{FieldError, Money};

/// Results per search at most.
pub const MAX_K: usize = 100;

/// Query of `GET /api/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What the customer is looking for.
    pub q: Option<String>,
    /// Category, matched without regard to case or accents.
    pub categoria: Option<String>,
    #[param(value_type = Option<String>)]
    pub precio_min: Option<Decimal>,
    #[param(value_type = Option<String>)]
    pub precio_max: Option<Decimal>,
    /// Only products with stock.
    pub en_stock: Option<bool>,
    /// Results wanted, 1 to 100 (default 10).
    pub k: Option<usize>,
    /// hybrid (default), vector or bm25.
    #[param(value_type = Option<String>)]
    pub modo: Option<Mode>,
    /// `false` ranks without what customers' clicks taught (to compare); default
    /// `true`.
    pub aprendizaje: Option<bool>,
}

/// One ranked product.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resultado {
    /// Higher is better; comparable within one response only.
    pub score: f32,
    pub producto: Producto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchTimings {
    pub embed_ms: f64,
    pub search_ms: f64,
    pub total_ms: f64,
}

/// Body of a search answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// This search's id: send it with a click on one of its results
    /// (`POST /api/eventos`).
    pub busqueda_id: String,
    pub query: String,
    /// The query as searched when misspelt words were replaced by catalog words
    /// ("camizeta" → "camiseta"); `null` when it was searched as written.
    pub corrected_query: Option<String>,
    #[schema(value_type = String)]
    pub modo: Mode,
    pub k: usize,
    pub embedder: String,
    pub resultados: Vec<Resultado>,
    pub timings: SearchTimings,
}

fn validate(query: &SearchQuery, max_chars: usize) -> Result<(String, Filters, usize), FieldError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    if q.is_empty() {
        return Err(FieldError::new("q", "escribe qué buscas"));
    }
    if q.chars().count() > max_chars {
        return Err(FieldError::new(
            "q",
            format!("admite como máximo {max_chars} caracteres"),
        ));
    }
    let k = query.k.unwrap_or(10);
    if !(1..=MAX_K).contains(&k) {
        return Err(FieldError::new(
            "k",
            format!("debe estar entre 1 y {MAX_K}"),
        ));
    }
    let precio_min = query
        .precio_min
        .map(|p| Money::parse("precio_min", p).map(Money::cents))
        .transpose()?;
    let precio_max = query
        .precio_max
        .map(|p| Money::parse("precio_max", p).map(Money::cents))
        .transpose()?;
    if let (Some(min), Some(max)) = (precio_min, precio_max)
        && min > max
    {
        return Err(FieldError::new(
            "precio_min",
            "no puede ser mayor que precio_max",
        ));
    }
    let categoria = query
        .categoria
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let filters = Filters {
        kind: Some(ChunkKind::Producto),
        categoria,
        precio_min,
        precio_max,
        en_stock: query.en_stock.unwrap_or(false),
        ignore_clicks: !query.aprendizaje.unwrap_or(true),
    };
    Ok((q.to_owned(), filters, k))
}

#[utoipa::path(get, path = "/api/search", tag = "búsqueda", params(SearchQuery),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn search(
    State(search): State<Arc<Search>>,
    State(intake): State<Arc<Intake>>,
    Extension(Client(client)): Extension<Client>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResponse>, ApiError> {
    let started = Instant::now();
    let (q, filters, k) = validate(&query, search.max_query_chars())?;
    let modo = query.modo.unwrap_or(Mode::Hybrid);
    let (outcome, hits) = search
        .products(&q, modo, &filters, k)
        .await
        .map_err(ApiError::internal)?;
    let resultados: Vec<Resultado> = hits
        .into_iter()
        .map(|hit| Resultado {
            score: hit.score,
            producto: hit.producto.into(),
        })
        .collect();
    let total_ms = started.elapsed().as_secs_f64() * 1e3;
    let busqueda_id = uuid::Uuid::new_v4().to_string();
    let shown: Vec<i64> = resultados.iter().map(|r| r.producto.id).collect();
    let from = Sender {
        canal: "rest",
        key: &client,
    };
    intake.record_search(
        &busqueda_id,
        shown.clone(),
        &from,
        serde_json::json!({
            "busqueda_id": busqueda_id,
            "q": q,
            "corregida": outcome.corrected,
            "modo": modo,
            "k": k,
            "categoria": filters.categoria,
            "precio_min": filters.precio_min.map(|c| Money::from_cents(c).to_string()),
            "precio_max": filters.precio_max.map(|c| Money::from_cents(c).to_string()),
            "en_stock": filters.en_stock,
            "resultados": resultados.len(),
            "productos": shown,
            "aprendizaje": !filters.ignore_clicks,
            "ms": total_ms,
        }),
    );
    Ok(Json(SearchResponse {
        busqueda_id,
        query: q,
        corrected_query: outcome.corrected,
        modo,
        k,
        embedder: search.index().embedder().id().to_owned(),
        resultados,
        timings: SearchTimings {
            embed_ms: outcome.embed_ms,
            search_ms: outcome.search_ms,
            total_ms,
        },
    }))
}
