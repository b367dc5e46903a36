//! `/api/pedidos`: orders, their states and cancellation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use std::sync::Arc;

use super::ErrorBody;
use super::error::ApiError;
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Staff};
use crate::learning::Intake;
use crate::retrieval::Search;
use crate::shop::Shop;
use crate::shop::pedidos::{CambiosPedido, FiltroPedidos, NuevoPedido, Pedido};
use crate::shop::types::Paged;

#[utoipa::path(get, path = "/api/pedidos", tag = "pedidos", params(FiltroPedidos),
    security(("bearer" = [])),
    responses((status = 200, body = Paged<Pedido>), (status = 400, body = ErrorBody)))]
pub async fn list(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    ApiQuery(filter): ApiQuery<FiltroPedidos>,
) -> Result<Json<Paged<Pedido>>, ApiError> {
    Ok(Json(shop.list_orders(filter).await?))
}

#[utoipa::path(get, path = "/api/pedidos/{id}", tag = "pedidos", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Pedido), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Pedido>, ApiError> {
    Ok(Json(shop.order(id).await?))
}

/// Creates an order and its lines in one transaction; stock is checked and
/// decremented, unit prices copied, the total computed by the server. An order may
/// name the search it followed (`busqueda_id`, a search this shop answered) and the
/// conversation it was agreed in (`conversacion_id`): the analytics attribute it to
/// them.
#[utoipa::path(post, path = "/api/pedidos", tag = "pedidos", request_body = NuevoPedido,
    security(("bearer" = [])),
    responses((status = 201, body = Pedido), (status = 400, body = ErrorBody),
        (status = 404, description = "Unknown customer, product or search", body = ErrorBody),
        (status = 409, description = "Insufficient stock, inactive customer or product", body = ErrorBody)))]
pub async fn create(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    State(search): State<Arc<Search>>,
    State(intake): State<Arc<Intake>>,
    ApiJson(mut body): ApiJson<NuevoPedido>,
) -> Result<(StatusCode, Json<Pedido>), ApiError> {
    if let Some(id) = &body.busqueda_id {
        body.busqueda_id = Some(intake.known_search(id).await?);
    }
    let pedido = shop.create_order(body).await?;
    search.stock_changed(pedido.items.iter().map(|i| i.producto_id));
    intake.record_order(&pedido);
    Ok((StatusCode::CREATED, Json(pedido)))
}

/// Moves the state (pendiente → confirmado → enviado → entregado, or → cancelado,
/// which restores stock) and edits notes; any other move is 409.
#[utoipa::path(patch, path = "/api/pedidos/{id}", tag = "pedidos", request_body = CambiosPedido,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Pedido), (status = 404, body = ErrorBody),
        (status = 409, description = "Transition not allowed", body = ErrorBody)))]
pub async fn update(
    _: Staff,
    State(shop): State<Arc<Shop>>,
    State(search): State<Arc<Search>>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CambiosPedido>,
) -> Result<Json<Pedido>, ApiError> {
    let pedido = shop.update_order(id, body).await?;
    search.stock_changed(pedido.items.iter().map(|i| i.producto_id));
    Ok(Json(pedido))
}

/// Admins only. Orders are history: deleting one cancels it (restoring stock) and
/// keeps it.
#[utoipa::path(delete, path = "/api/pedidos/{id}", tag = "pedidos", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Pedido), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete(
    _: Admin,
    State(shop): State<Arc<Shop>>,
    State(search): State<Arc<Search>>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Pedido>, ApiError> {
    let pedido = shop.cancel_order(id).await?;
    search.stock_changed(pedido.items.iter().map(|i| i.producto_id));
    Ok(Json(pedido))
}
