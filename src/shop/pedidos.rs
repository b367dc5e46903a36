//! Orders: created with their lines in one transaction that checks and decrements
//! stock, moved through their states, cancelled with stock restored.
//!
//! Stock is decremented with a conditional `UPDATE … SET stock = stock - n WHERE
//! stock >= n`, so concurrent orders can never oversell: the database decides, row by
//! row. Lines are locked in product-id order so two orders cannot deadlock.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::Db;
use crate::db::entities::{cliente, pedido, pedido_item, producto};
use crate::error::ApiError;
use crate::shop::found;
use crate::shop::types::{FieldError, Money, Page, Paged, Patch, Sku, parse_quantity, parse_text};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Estado {
    Pendiente,
    Confirmado,
    Enviado,
    Entregado,
    Cancelado,
}

impl Estado {
    pub fn as_str(self) -> &'static str {
        match self {
            Estado::Pendiente => "pendiente",
            Estado::Confirmado => "confirmado",
            Estado::Enviado => "enviado",
            Estado::Entregado => "entregado",
            Estado::Cancelado => "cancelado",
        }
    }

    pub fn parse(raw: &str) -> Option<Estado> {
        [
            Estado::Pendiente,
            Estado::Confirmado,
            Estado::Enviado,
            Estado::Entregado,
            Estado::Cancelado,
        ]
        .into_iter()
        .find(|e| e.as_str() == raw)
    }

    /// pendiente → confirmado → enviado → entregado; pendiente or confirmado →
    /// cancelado. A shipped order is not cancelled (it comes back as a return).
    pub fn can_move_to(self, next: Estado) -> bool {
        use Estado::*;
        matches!(
            (self, next),
            (Pendiente, Confirmado)
                | (Confirmado, Enviado)
                | (Enviado, Entregado)
                | (Pendiente, Cancelado)
                | (Confirmado, Cancelado)
        )
    }
}

impl fmt::Display for Estado {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Linea {
    pub id: i64,
    pub producto_id: i64,
    pub sku: String,
    pub nombre: String,
    pub cantidad: i64,
    #[schema(value_type = String, example = "49900.00")]
    pub precio_unitario: Money,
    #[schema(value_type = String, example = "99800.00")]
    pub subtotal: Money,
}

impl From<pedido_item::Model> for Linea {
    fn from(m: pedido_item::Model) -> Self {
        Self {
            id: m.id,
            producto_id: m.producto_id,
            sku: m.sku,
            nombre: m.nombre,
            cantidad: m.cantidad,
            precio_unitario: Money::from_cents(m.precio_unitario_centavos),
            subtotal: Money::from_cents(m.subtotal_centavos),
        }
    }
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pedido {
    pub id: i64,
    pub cliente_id: i64,
    pub estado: Estado,
    #[schema(value_type = String, example = "99800.00")]
    pub total: Money,
    pub notas: Option<String>,
    pub direccion_envio: Option<String>,
    pub items: Vec<Linea>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Pedido {
    fn new(m: pedido::Model, items: Vec<pedido_item::Model>) -> Self {
        Self {
            id: m.id,
            cliente_id: m.cliente_id,
            estado: Estado::parse(&m.estado).unwrap_or(Estado::Pendiente),
            total: Money::from_cents(m.total_centavos),
            notas: m.notas,
            direccion_envio: m.direccion_envio,
            items: items.into_iter().map(Into::into).collect(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// One requested line: a product by id or by SKU, and a quantity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineaSolicitada {
    pub producto_id: Option<i64>,
    pub sku: Option<String>,
    pub cantidad: i64,
}

/// Body of `POST /api/pedidos`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NuevoPedido {
    pub cliente_id: i64,
    pub items: Vec<LineaSolicitada>,
    pub notas: Option<String>,
    pub direccion_envio: Option<String>,
}

/// Body of `PATCH /api/pedidos/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CambiosPedido {
    pub estado: Option<Estado>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notas: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub direccion_envio: Patch<String>,
}

/// Query of `GET /api/pedidos`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiltroPedidos {
    pub estado: Option<Estado>,
    pub cliente_id: Option<i64>,
    /// Created at or after: a date (`2026-01-31`) or an RFC 3339 instant.
    pub desde: Option<String>,
    /// Created at or before: a date (the whole day counts) or an RFC 3339 instant.
    pub hasta: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ProductRef {
    Id(i64),
    Sku(String),
}

/// A validated order request: merged lines, bounded quantities.
struct OrderRequest {
    cliente_id: i64,
    lines: BTreeMap<ProductRef, i64>,
    notas: Option<String>,
    direccion_envio: Option<String>,
}

const MAX_LINES: usize = 100;

impl OrderRequest {
    fn parse(input: NuevoPedido) -> Result<Self, FieldError> {
        if input.items.is_empty() {
            return Err(FieldError::new(
                "items",
                "un pedido necesita al menos una línea",
            ));
        }
        if input.items.len() > MAX_LINES {
            return Err(FieldError::new(
                "items",
                format!("un pedido admite como máximo {MAX_LINES} líneas"),
            ));
        }
        let mut lines = BTreeMap::new();
        for item in input.items {
            let product = match (item.producto_id, item.sku.as_deref()) {
                (Some(id), None) => ProductRef::Id(id),
                (None, Some(sku)) => ProductRef::Sku(Sku::parse("items.sku", sku)?.into_inner()),
                _ => {
                    return Err(FieldError::new(
                        "items",
                        "cada línea indica producto_id o sku (uno de los dos)",
                    ));
                }
            };
            let qty = parse_quantity("items.cantidad", item.cantidad)?;
            let total: &mut i64 = lines.entry(product).or_default();
            *total = parse_quantity("items.cantidad", *total + qty)?;
        }
        Ok(Self {
            cliente_id: input.cliente_id,
            lines,
            notas: parse_text("notas", input.notas.as_deref(), 2000)?,
            direccion_envio: parse_text("direccion_envio", input.direccion_envio.as_deref(), 500)?,
        })
    }
}

async fn load_items<C: ConnectionTrait>(
    conn: &C,
    pedido_ids: &[i64],
) -> Result<HashMap<i64, Vec<pedido_item::Model>>, ApiError> {
    let mut by_order: HashMap<i64, Vec<pedido_item::Model>> = HashMap::new();
    if pedido_ids.is_empty() {
        return Ok(by_order);
    }
    let rows = pedido_item::Entity::find()
        .filter(pedido_item::Column::PedidoId.is_in(pedido_ids.iter().copied()))
        .order_by_asc(pedido_item::Column::Id)
        .all(conn)
        .await?;
    for row in rows {
        by_order.entry(row.pedido_id).or_default().push(row);
    }
    Ok(by_order)
}

/// Creates an order with its lines, checking and decrementing stock atomically.
#[tracing::instrument(skip(db, input), fields(cliente_id = input.cliente_id))]
pub async fn create(db: &Db, input: NuevoPedido) -> Result<Pedido, ApiError> {
    let request = OrderRequest::parse(input)?;
    let txn = db.begin_write().await?;

    let customer = cliente::Entity::find_by_id(request.cliente_id)
        .filter(cliente::Column::EliminadoAt.is_null())
        .one(&*txn)
        .await?;
    let customer = found(customer, "cliente")?;
    if !customer.activo {
        return Err(ApiError::CustomerInactive(customer.id));
    }

    // Resolve every line to a product, merging lines that name one product twice.
    let mut wanted: BTreeMap<i64, (producto::Model, i64)> = BTreeMap::new();
    for (reference, qty) in request.lines {
        let query = producto::Entity::find();
        let product = match &reference {
            ProductRef::Id(id) => query.filter(producto::Column::Id.eq(*id)),
            ProductRef::Sku(sku) => query.filter(producto::Column::Sku.eq(sku.as_str())),
        }
        .one(&*txn)
        .await?;
        let product = found(product, "producto")?;
        if !product.activo || product.eliminado_at.is_some() {
            return Err(ApiError::ProductUnavailable(product.sku));
        }
        let entry = wanted.entry(product.id).or_insert((product, 0));
        entry.1 = parse_quantity("items.cantidad", entry.1 + qty)?;
    }

    let now = Utc::now();
    let mut total = Money::ZERO;
    let mut lines = Vec::with_capacity(wanted.len());
    for (product_id, (product, qty)) in wanted {
        let decremented = producto::Entity::update_many()
            .col_expr(
                producto::Column::Stock,
                Expr::col(producto::Column::Stock).sub(qty),
            )
            .col_expr(producto::Column::UpdatedAt, Expr::value(now))
            .filter(producto::Column::Id.eq(product_id))
            .filter(producto::Column::Stock.gte(qty))
            .exec(&*txn)
            .await?;
        if decremented.rows_affected == 0 {
            let available = producto::Entity::find_by_id(product_id)
                .one(&*txn)
                .await?
                .map_or(0, |p| p.stock);
            return Err(ApiError::InsufficientStock {
                sku: product.sku,
                requested: qty,
                available,
            });
        }
        let unit = Money::from_cents(product.precio_centavos);
        let subtotal = unit
            .checked_mul(qty)
            .ok_or_else(|| FieldError::new("items", "el total del pedido es demasiado grande"))?;
        total = total
            .checked_add(subtotal)
            .ok_or_else(|| FieldError::new("items", "el total del pedido es demasiado grande"))?;
        lines.push((product, qty, unit, subtotal));
    }

    let order = pedido::ActiveModel {
        cliente_id: Set(customer.id),
        estado: Set(Estado::Pendiente.as_str().to_owned()),
        total_centavos: Set(total.cents()),
        notas: Set(request.notas),
        direccion_envio: Set(request.direccion_envio),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;

    let mut items = Vec::with_capacity(lines.len());
    for (product, qty, unit, subtotal) in lines {
        let item = pedido_item::ActiveModel {
            pedido_id: Set(order.id),
            producto_id: Set(product.id),
            sku: Set(product.sku),
            nombre: Set(product.nombre),
            cantidad: Set(qty),
            precio_unitario_centavos: Set(unit.cents()),
            subtotal_centavos: Set(subtotal.cents()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
        items.push(item);
    }
    txn.commit().await?;
    tracing::info!(pedido_id = order.id, total = %total, "order created");
    Ok(Pedido::new(order, items))
}

pub async fn get(db: &Db, id: i64) -> Result<Pedido, ApiError> {
    let order = found(
        pedido::Entity::find_by_id(id).one(db.conn()).await?,
        "pedido",
    )?;
    let mut items = load_items(db.conn(), &[id]).await?;
    Ok(Pedido::new(order, items.remove(&id).unwrap_or_default()))
}

/// Parses a `desde`/`hasta` bound: a date or an RFC 3339 instant.
fn parse_bound(
    field: &'static str,
    raw: &str,
    end_of_day: bool,
) -> Result<DateTime<Utc>, FieldError> {
    let raw = raw.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
        return Ok(instant.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            field,
            "usa una fecha AAAA-MM-DD o un instante RFC 3339 (2026-01-31T10:00:00Z)",
        )
    })?;
    let time = if end_of_day {
        date.and_hms_nano_opt(23, 59, 59, 999_999_999)
    } else {
        date.and_hms_opt(0, 0, 0)
    };
    Ok(time.expect("valid time of day").and_utc())
}

#[tracing::instrument(skip(db))]
pub async fn list(db: &Db, filter: FiltroPedidos) -> Result<Paged<Pedido>, ApiError> {
    let page = Page::parse(filter.limit, filter.offset)?;
    let mut query = pedido::Entity::find();
    if let Some(estado) = filter.estado {
        query = query.filter(pedido::Column::Estado.eq(estado.as_str()));
    }
    if let Some(cliente_id) = filter.cliente_id {
        query = query.filter(pedido::Column::ClienteId.eq(cliente_id));
    }
    let desde = filter
        .desde
        .as_deref()
        .map(|d| parse_bound("desde", d, false))
        .transpose()?;
    let hasta = filter
        .hasta
        .as_deref()
        .map(|h| parse_bound("hasta", h, true))
        .transpose()?;
    if let (Some(d), Some(h)) = (desde, hasta)
        && d > h
    {
        return Err(FieldError::new("desde", "es posterior a hasta").into());
    }
    if let Some(d) = desde {
        query = query.filter(pedido::Column::CreatedAt.gte(d));
    }
    if let Some(h) = hasta {
        query = query.filter(pedido::Column::CreatedAt.lte(h));
    }
    let total = query.clone().count(db.conn()).await?;
    let orders = query
        .order_by_desc(pedido::Column::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(db.conn())
        .await?;
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    let mut items = load_items(db.conn(), &ids).await?;
    Ok(Paged {
        items: orders
            .into_iter()
            .map(|o| {
                let lines = items.remove(&o.id).unwrap_or_default();
                Pedido::new(o, lines)
            })
            .collect(),
        total,
        limit: page.limit,
        offset: page.offset,
    })
}

/// Changes an order's state and/or notes. Cancelling restores the stock of its lines.
#[tracing::instrument(skip(db, changes))]
pub async fn update(db: &Db, id: i64, changes: CambiosPedido) -> Result<Pedido, ApiError> {
    let notas = match changes.notas {
        Patch::Missing => None,
        Patch::Null => Some(None),
        Patch::Value(n) => Some(parse_text("notas", Some(&n), 2000)?),
    };
    let direccion = match changes.direccion_envio {
        Patch::Missing => None,
        Patch::Null => Some(None),
        Patch::Value(d) => Some(parse_text("direccion_envio", Some(&d), 500)?),
    };
    let txn = db.begin_write().await?;
    let order = found(pedido::Entity::find_by_id(id).one(&*txn).await?, "pedido")?;
    let current = Estado::parse(&order.estado).unwrap_or(Estado::Pendiente);
    let now = Utc::now();

    if let Some(next) = changes.estado.filter(|next| *next != current) {
        if !current.can_move_to(next) {
            return Err(ApiError::InvalidTransition {
                from: current.to_string(),
                to: next.to_string(),
            });
        }
        // Conditional on the state read above: a concurrent change makes this a no-op
        // and the request a conflict, so stock is never restored twice.
        let moved = pedido::Entity::update_many()
            .col_expr(pedido::Column::Estado, Expr::value(next.as_str()))
            .col_expr(pedido::Column::UpdatedAt, Expr::value(now))
            .filter(pedido::Column::Id.eq(id))
            .filter(pedido::Column::Estado.eq(current.as_str()))
            .exec(&*txn)
            .await?;
        if moved.rows_affected == 0 {
            return Err(ApiError::InvalidTransition {
                from: current.to_string(),
                to: next.to_string(),
            });
        }
        if next == Estado::Cancelado {
            let lines = pedido_item::Entity::find()
                .filter(pedido_item::Column::PedidoId.eq(id))
                .order_by_asc(pedido_item::Column::ProductoId)
                .all(&*txn)
                .await?;
            for line in lines {
                producto::Entity::update_many()
                    .col_expr(
                        producto::Column::Stock,
                        Expr::col(producto::Column::Stock).add(line.cantidad),
                    )
                    .col_expr(producto::Column::UpdatedAt, Expr::value(now))
                    .filter(producto::Column::Id.eq(line.producto_id))
                    .exec(&*txn)
                    .await?;
            }
        }
    }

    if notas.is_some() || direccion.is_some() {
        let mut model = pedido::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            ..Default::default()
        };
        if let Some(n) = notas {
            model.notas = Set(n);
        }
        if let Some(d) = direccion {
            model.direccion_envio = Set(d);
        }
        model.updated_at = Set(now);
        model.update(&*txn).await?;
    }

    let order = found(pedido::Entity::find_by_id(id).one(&*txn).await?, "pedido")?;
    let mut items = load_items(&*txn, &[id]).await?;
    txn.commit().await?;
    Ok(Pedido::new(order, items.remove(&id).unwrap_or_default()))
}

/// Orders are history and are never removed: deleting one cancels it.
pub async fn cancel(db: &Db, id: i64) -> Result<Pedido, ApiError> {
    update(
        db,
        id,
        CambiosPedido {
            estado: Some(Estado::Cancelado),
            ..Default::default()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_allows_only_forward_moves_and_early_cancel() {
        use Estado::*;
        let all = [Pendiente, Confirmado, Enviado, Entregado, Cancelado];
        let allowed: Vec<(Estado, Estado)> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_move_to(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pendiente, Confirmado),
                (Pendiente, Cancelado),
                (Confirmado, Enviado),
                (Confirmado, Cancelado),
                (Enviado, Entregado),
            ]
        );
    }

    #[test]
    fn order_requests_merge_lines_and_reject_ambiguity() {
        let req = OrderRequest::parse(NuevoPedido {
            cliente_id: 1,
            items: vec![
                LineaSolicitada {
                    producto_id: Some(3),
                    sku: None,
                    cantidad: 2,
                },
                LineaSolicitada {
                    producto_id: Some(3),
                    sku: None,
                    cantidad: 1,
                },
            ],
            notas: None,
            direccion_envio: None,
        })
        .unwrap();
        assert_eq!(req.lines.get(&ProductRef::Id(3)), Some(&3));

        let both = OrderRequest::parse(NuevoPedido {
            cliente_id: 1,
            items: vec![LineaSolicitada {
                producto_id: Some(3),
                sku: Some("A".into()),
                cantidad: 1,
            }],
            notas: None,
            direccion_envio: None,
        });
        assert!(both.is_err());
    }

    #[test]
    fn date_bounds_cover_whole_days() {
        let start = parse_bound("desde", "2026-01-31", false).unwrap();
        let end = parse_bound("hasta", "2026-01-31", true).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert!(end > start && end.date_naive() == start.date_naive());
        assert!(parse_bound("desde", "31/01/2026", false).is_err());
    }
}
