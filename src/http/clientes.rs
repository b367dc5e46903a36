//! `/api/clientes`: staff manage customers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use std::sync::Arc;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Staff};
use crate::shop::clientes::{CambiosCliente, Cliente, FiltroClientes, NuevoCliente};
use crate::shop::types::Paged;
use crate::shop::{Deletion, Shop};

#[utoipa::path(get, path = "/api/clientes", tag = "clientes", params(FiltroClientes),
    security(("bearer" = [])),
    responses((status = 200, body = Paged<Cliente>), (status = 400, body = ErrorBody)))]
pub async fn list(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    ApiQuery(filter): ApiQuery<FiltroClientes>,
) -> Result<Json<Paged<Cliente>>, ApiError> {
    Ok(Json(shop.list_customers(filter).await?))
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
    State(shop): State<Arc<Shop>>,
    ApiQuery(query): ApiQuery<Busqueda>,
) -> Result<Json<Vec<Cliente>>, ApiError> {
    Ok(Json(shop.search_customers(&query.q, query.limit).await?))
}

#[utoipa::path(get, path = "/api/clientes/{id}", tag = "clientes", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Cliente), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Cliente>, ApiError> {
    Ok(Json(shop.customer(id).await?))
}

#[utoipa::path(post, path = "/api/clientes", tag = "clientes", request_body = NuevoCliente,
    security(("bearer" = [])),
    responses((status = 201, body = Cliente), (status = 400, body = ErrorBody),
        (status = 409, description = "Email already used", body = ErrorBody)))]
pub async fn create(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    ApiJson(body): ApiJson<NuevoCliente>,
) -> Result<(StatusCode, Json<Cliente>), ApiError> {
    Ok((StatusCode::CREATED, Json(shop.create_customer(body).await?)))
}

#[utoipa::path(patch, path = "/api/clientes/{id}", tag = "clientes", request_body = CambiosCliente,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Cliente), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn update(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CambiosCliente>,
) -> Result<Json<Cliente>, ApiError> {
    Ok(Json(shop.update_customer(id, body).await?))
}

/// Admins only. A customer with orders is kept and marked deleted.
#[utoipa::path(delete, path = "/api/clientes/{id}", tag = "clientes", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Deletion), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    _: Admin,
    State(shop): State<Arc<Shop>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Deletion>, ApiError> {
    Ok(Json(shop.delete_customer(id).await?))
}
