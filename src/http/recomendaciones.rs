//! Recommendations over REST: similar and complementary products (public, like
//! search), a customer's "for you" list and batches of them (staff), the models'
//! state and a training on demand (staff; training: admins).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Staff};
use crate::error::FieldError;
use crate::recommend::{Ask, EstadoRecomendaciones, MAX_BATCH, Recomendacion, Recommender};
use crate::retrieval::filters::Filters;
use crate::shop::types::Money;

/// Query of the product recommendations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProductQuery {
    /// Results wanted, 1 to 100 (default 10).
    pub k: Option<usize>,
    /// Category, matched without regard to case or accents.
    pub categoria: Option<String>,
    #[param(value_type = Option<String>)]
    pub precio_min: Option<Decimal>,
    #[param(value_type = Option<String>)]
    pub precio_max: Option<Decimal>,
    /// Only products with stock (default true: out-of-stock products only when asked
    /// with `en_stock=false`).
    pub en_stock: Option<bool>,
}

/// Query of a customer's recommendations.
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Results wanted, 1 to 100 (default 10).
    pub k: Option<usize>,
    /// Category, matched without regard to case or accents.
    pub categoria: Option<String>,
    #[param(value_type = Option<String>)]
    #[schema(value_type = Option<String>)]
    pub precio_min: Option<Decimal>,
    #[param(value_type = Option<String>)]
    #[schema(value_type = Option<String>)]
    pub precio_max: Option<Decimal>,
    /// Only products with stock (default true).
    pub en_stock: Option<bool>,
    /// Only products the customer has not bought (default false: what they buy again
    /// comes first).
    pub excluir_comprados: Option<bool>,
}

fn filters(
    categoria: Option<&str>,
    precio_min: Option<Decimal>,
    precio_max: Option<Decimal>,
    en_stock: Option<bool>,
) -> Result<Filters, FieldError> {
    Ok(Filters {
        kind: None,
        categoria: categoria
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        precio_min: precio_min
            .map(|p| Money::parse("precio_min", p).map(Money::cents))
            .transpose()?,
        precio_max: precio_max
            .map(|p| Money::parse("precio_max", p).map(Money::cents))
            .transpose()?,
        en_stock: en_stock.unwrap_or(true),
        ..Filters::default()
    })
}

impl ProductQuery {
    fn ask(&self) -> Result<Ask, FieldError> {
        let filters = filters(
            self.categoria.as_deref(),
            self.precio_min,
            self.precio_max,
            self.en_stock,
        )?;
        Ask::new(self.k, filters, false)
    }
}

impl CustomerQuery {
    fn ask(&self) -> Result<Ask, FieldError> {
        let filters = filters(
            self.categoria.as_deref(),
            self.precio_min,
            self.precio_max,
            self.en_stock,
        )?;
        Ask::new(self.k, filters, self.excluir_comprados.unwrap_or(false))
    }
}

/// A list of recommendations and the model generation that ranked it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recomendaciones {
    /// The models' generation (`null` before the first training: popular products
    /// then come in catalog order).
    pub version: Option<u64>,
    pub recomendaciones: Vec<Recomendacion>,
}

fn answer(recommender: &Recommender, list: Vec<Recomendacion>) -> Json<Recomendaciones> {
    Json(Recomendaciones {
        version: recommender.status_version(),
        recomendaciones: list,
    })
}

#[utoipa::path(get, path = "/api/productos/{id}/similares", tag = "recomendaciones",
    params(("id" = i64, Path), ProductQuery),
    responses((status = 200, body = Recomendaciones), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn similar(
    State(recommender): State<Arc<Recommender>>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<ProductQuery>,
) -> Result<Json<Recomendaciones>, ApiError> {
    let ask = query.ask()?;
    let list = recommender.similar(id, &ask).await?;
    Ok(answer(&recommender, list))
}

#[utoipa::path(get, path = "/api/productos/{id}/complementos", tag = "recomendaciones",
    params(("id" = i64, Path), ProductQuery),
    responses((status = 200, body = Recomendaciones), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn complements(
    State(recommender): State<Arc<Recommender>>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<ProductQuery>,
) -> Result<Json<Recomendaciones>, ApiError> {
    let ask = query.ask()?;
    let list = recommender.complements(id, &ask).await?;
    Ok(answer(&recommender, list))
}

#[utoipa::path(get, path = "/api/clientes/{id}/recomendaciones", tag = "recomendaciones",
    params(("id" = i64, Path), CustomerQuery), security(("bearer" = [])),
    responses((status = 200, body = Recomendaciones), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn for_customer(
    _: Staff,
    State(recommender): State<Arc<Recommender>>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<CustomerQuery>,
) -> Result<Json<Recomendaciones>, ApiError> {
    let ask = query.ask()?;
    let list = recommender.for_customer(id, &ask).await?;
    Ok(answer(&recommender, list))
}

/// Body of `POST /api/recomendaciones/lote`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lote {
    /// 1 to 100 customers.
    pub cliente_ids: Vec<i64>,
    /// Results per customer, 1 to 100 (default 10).
    pub k: Option<usize>,
    #[serde(default)]
    pub filtros: FiltrosLote,
}

/// The filters of a batch, the same for every customer.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiltrosLote {
    pub categoria: Option<String>,
    #[schema(value_type = Option<String>)]
    pub precio_min: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    pub precio_max: Option<Decimal>,
    pub en_stock: Option<bool>,
    pub excluir_comprados: Option<bool>,
}

/// One customer's list in a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListaCliente {
    pub cliente_id: i64,
    pub recomendaciones: Vec<Recomendacion>,
}

/// Answer of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultadoLote {
    pub version: Option<u64>,
    pub resultados: Vec<ListaCliente>,
}

#[utoipa::path(post, path = "/api/recomendaciones/lote", tag = "recomendaciones",
    request_body = Lote, security(("bearer" = [])),
    responses((status = 200, body = ResultadoLote), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "a customer does not exist", body = ErrorBody)))]
pub async fn batch(
    _: Staff,
    State(recommender): State<Arc<Recommender>>,
    ApiJson(body): ApiJson<Lote>,
) -> Result<Json<ResultadoLote>, ApiError> {
    if body.cliente_ids.is_empty() || body.cliente_ids.len() > MAX_BATCH {
        return Err(
            FieldError::new("cliente_ids", format!("da entre 1 y {MAX_BATCH} clientes")).into(),
        );
    }
    let f = &body.filtros;
    let ask = Ask::new(
        body.k,
        filters(
            f.categoria.as_deref(),
            f.precio_min,
            f.precio_max,
            f.en_stock,
        )?,
        f.excluir_comprados.unwrap_or(false),
    )?;
    let lists = recommender.for_customers(&body.cliente_ids, &ask).await?;
    let resultados = body
        .cliente_ids
        .iter()
        .zip(lists)
        .map(|(&cliente_id, recomendaciones)| ListaCliente {
            cliente_id,
            recomendaciones,
        })
        .collect();
    Ok(Json(ResultadoLote {
        version: recommender.status_version(),
        resultados,
    }))
}

#[utoipa::path(get, path = "/api/recomendaciones/estado", tag = "recomendaciones",
    security(("bearer" = [])),
    responses((status = 200, body = EstadoRecomendaciones), (status = 401, body = ErrorBody)))]
pub async fn status(
    _: Staff,
    State(recommender): State<Arc<Recommender>>,
) -> Json<EstadoRecomendaciones> {
    Json(recommender.status())
}

/// Admins only: trains from the orders now and answers when the new generation serves
/// (a failure leaves the previous one serving and answers `internal_error`; while
/// another node trains, `busy`).
#[utoipa::path(post, path = "/api/recomendaciones/entrenar", tag = "recomendaciones",
    security(("bearer" = [])),
    responses((status = 200, body = EstadoRecomendaciones), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn train(
    _: Admin,
    State(recommender): State<Arc<Recommender>>,
) -> Result<Json<EstadoRecomendaciones>, ApiError> {
    recommender.train().await?;
    Ok(Json(recommender.status()))
}
