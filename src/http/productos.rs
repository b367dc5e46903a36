//! `/api/productos`: staff manage the catalog.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use std::sync::Arc;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Staff};
use crate::retrieval::Search;
use crate::shop::productos::{CambiosProducto, FiltroProductos, NuevoProducto, Producto};
use crate::shop::types::Paged;
use crate::shop::{Deletion, Shop};

#[utoipa::path(get, path = "/api/productos", tag = "productos", params(FiltroProductos),
    security(("bearer" = [])),
    responses((status = 200, body = Paged<Producto>), (status = 400, body = ErrorBody)))]
pub async fn list(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    ApiQuery(filter): ApiQuery<FiltroProductos>,
) -> Result<Json<Paged<Producto>>, ApiError> {
    Ok(Json(shop.list_products(filter).await?))
}

#[utoipa::path(get, path = "/api/productos/{id}", tag = "productos", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Producto), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Producto>, ApiError> {
    Ok(Json(shop.product(id).await?))
}

#[utoipa::path(post, path = "/api/productos", tag = "productos", request_body = NuevoProducto,
    security(("bearer" = [])),
    responses((status = 201, body = Producto), (status = 400, body = ErrorBody),
        (status = 409, description = "SKU already used", body = ErrorBody)))]
pub async fn create(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    State(search): State<Arc<Search>>,
    ApiJson(body): ApiJson<NuevoProducto>,
) -> Result<(StatusCode, Json<Producto>), ApiError> {
    let created = shop.create_product(body).await?;
    search.products_changed(&[created.id]).await;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(patch, path = "/api/productos/{id}", tag = "productos",
    request_body = CambiosProducto, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Producto), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn update(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    State(search): State<Arc<Search>>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CambiosProducto>,
) -> Result<Json<Producto>, ApiError> {
    let updated = shop.update_product(id, body).await?;
    search.products_changed(&[id]).await;
    Ok(Json(updated))
}

/// Admins only. A product that orders refer to is kept and marked deleted.
#[utoipa::path(delete, path = "/api/productos/{id}", tag = "productos",
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Deletion), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    _: Admin,
    State(shop): State<Arc<Shop>>,
    State(search): State<Arc<Search>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Deletion>, ApiError> {
    let deletion = shop.delete_product(id).await?;
    search.products_changed(&[id]).await;
    Ok(Json(deletion))
}
