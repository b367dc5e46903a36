//! `/api/productos`: staff manage the catalog.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::ErrorBody;
use crate::http::extract::{Admin, ApiJson, ApiPath, ApiQuery, Staff};
use crate::shop::Deletion;
use crate::shop::productos::{self, CambiosProducto, FiltroProductos, NuevoProducto, Producto};
use crate::shop::types::Paged;

#[utoipa::path(get, path = "/api/productos", tag = "productos", params(FiltroProductos),
    security(("bearer" = [])),
    responses((status = 200, body = Paged<Producto>), (status = 400, body = ErrorBody)))]
pub async fn list(
    _: Staff,
    State(app): State<AppState>,
    ApiQuery(filter): ApiQuery<FiltroProductos>,
) -> Result<Json<Paged<Producto>>, ApiError> {
    Ok(Json(productos::list(app.db(), filter).await?))
}

#[utoipa::path(get, path = "/api/productos/{id}", tag = "productos", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Producto), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Staff,
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Producto>, ApiError> {
    Ok(Json(productos::get(app.db(), id).await?))
}

#[utoipa::path(post, path = "/api/productos", tag = "productos", request_body = NuevoProducto,
    security(("bearer" = [])),
    responses((status = 201, body = Producto), (status = 400, body = ErrorBody),
        (status = 409, description = "SKU already used", body = ErrorBody)))]
pub async fn create(
    _: Staff,
    State(app): State<AppState>,
    ApiJson(body): ApiJson<NuevoProducto>,
) -> Result<(StatusCode, Json<Producto>), ApiError> {
    let created = productos::create(app.db(), body).await?;
    app.reindex_products(&[created.id]).await;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(patch, path = "/api/productos/{id}", tag = "productos",
    request_body = CambiosProducto, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Producto), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn update(
    _: Staff,
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CambiosProducto>,
) -> Result<Json<Producto>, ApiError> {
    let updated = productos::update(app.db(), id, body).await?;
    app.reindex_products(&[id]).await;
    Ok(Json(updated))
}

/// Admins only. A product that orders refer to is kept and marked deleted.
#[utoipa::path(delete, path = "/api/productos/{id}", tag = "productos",
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Deletion), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    _: Admin,
    State(app): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Deletion>, ApiError> {
    let deletion = productos::delete(app.db(), id).await?;
    app.reindex_products(&[id]).await;
    Ok(Json(deletion))
}
