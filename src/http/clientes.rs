//! `/api/clientes`: staff manage customers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::ErrorBody;
use crate::http::extract::{Admin, ApiJson, ApiPath, ApiQuery, Staff};
use crate::shop::Deletion;
use crate::shop::clientes::{self, CambiosCliente, Cliente, FiltroClientes, NuevoCliente};
use crate::shop::types::Paged;

#[utoipa::path(get, path = "/api/clientes", tag = "clientes", params(FiltroClientes),
    security(("bearer" = [])),
    responses((status = 200, body = Paged<Cliente>), (status = 400, body = ErrorBody)))]
pub async fn list(
    _: Staff,
    State(app): State<AppState>,
    ApiQuery(filter): ApiQuery<FiltroClientes>,
) -> Result<Json<Paged<Cliente>>, ApiError> {
    Ok(Json(clientes::list(app.db(), filter).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Busqueda {
    /// Name, email or phone fragment.
    pub q: String,
    pub limit: Option<u64>,
}

#[utoipa::path(get, path = "/api/clientes/buscar", tag = "clientes", params(Busqueda),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<Cliente>), (status = 400, body = ErrorBody)))]
pub async fn search(
    _: Staff,
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<Busqueda>,
) -> Result<Json<Vec<Cliente>>, ApiError> {
    Ok(Json(
        clientes::search(app.db(), &query.q, query.limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/clientes/{id}", tag = "clientes", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Cliente), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Staff,
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Cliente>, ApiError> {
    Ok(Json(clientes::get(app.db(), id).await?))
}

#[utoipa::path(post, path = "/api/clientes", tag = "clientes", request_body = NuevoCliente,
    security(("bearer" = [])),
    responses((status = 201, body = Cliente), (status = 400, body = ErrorBody),
        (status = 409, description = "Email already used", body = ErrorBody)))]
pub async fn create(
    _: Staff,
    State(app): State<AppState>,
    ApiJson(body): ApiJson<NuevoCliente>,
) -> Result<(StatusCode, Json<Cliente>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(clientes::create(app.db(), body).await?),
    ))
}

#[utoipa::path(patch, path = "/api/clientes/{id}", tag = "clientes", request_body = CambiosCliente,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Cliente), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn update(
    _: Staff,
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CambiosCliente>,
) -> Result<Json<Cliente>, ApiError> {
    Ok(Json(clientes::update(app.db(), id, body).await?))
}

/// Admins only. A customer with orders is kept and marked deleted.
#[utoipa::path(delete, path = "/api/clientes/{id}", tag = "clientes", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Deletion), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    _: Admin,
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Deletion>, ApiError> {
    Ok(Json(clientes::delete(app.db(), id).await?))
}
