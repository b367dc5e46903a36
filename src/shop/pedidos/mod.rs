//! Orders: created with their lines in one transaction that checks and decrements
//! stock, moved through their states, cancelled with stock restored.
//!
//! Stock is decremented with a conditional `UPDATE … SET stock = stock - n WHERE
//! stock >= n`, so concurrent orders can never oversell: the database decides, row by
//! row. The decrements come last in the transaction, in product-id order: a hot
//! product's row stays locked only from its decrement to the commit, and two orders
//! cannot deadlock.

mod model;

pub use model::{
    CambiosPedido, Estado, FiltroPedidos, Linea, LineaSolicitada, NuevoPedido, Pedido, parse_range,
};

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, Set,
};

use crate::db::entities::{cliente, conversacion, pedido, pedido_item, producto};
use crate::shop::types::{FieldError, Money, Page, Paged, Patch, parse_quantity, parse_text};
use crate::shop::{Shop, ShopError, found};
use model::{OrderRequest, ProductRef};

async fn load_items<C: ConnectionTrait>(
    conn: &C,
    pedido_ids: &[i64],
) -> Result<HashMap<i64, Vec<pedido_item::Model>>, ShopError> {
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

impl Shop {
    /// Creates an order with its lines, checking and decrementing stock atomically.
    pub async fn create_order(&self, input: NuevoPedido) -> Result<Pedido, ShopError> {
        self.create_order_in(input, None).await
    }

    /// [`Shop::create_order`], for an order taken in the conversation `conversacion_id`.
    #[tracing::instrument(skip(self, input), fields(cliente_id = input.cliente_id))]
    pub async fn create_order_in(
        &self,
        input: NuevoPedido,
        conversacion_id: Option<&str>,
    ) -> Result<Pedido, ShopError> {
        let db = &self.db;
        let request = OrderRequest::parse(input)?;
        let txn = db.begin_write().await?;

        let customer = cliente::Entity::find_by_id(request.cliente_id)
            .filter(cliente::Column::EliminadoAt.is_null())
            .one(&*txn)
            .await?;
        let customer = found(customer, "cliente")?;
        let conversacion_id = conversacion_id
            .map(str::to_owned)
            .or(request.conversacion_id.clone());
        if let Some(chat) = &conversacion_id
            && conversacion::Entity::find_by_id(chat.clone())
                .one(&*txn)
                .await?
                .is_none()
        {
            return Err(
                FieldError::new("conversacion_id", "no es una conversación de la tienda").into(),
            );
        }
        if !customer.activo {
            return Err(ShopError::CustomerInactive(customer.id));
        }

        // Every product the lines name, in one query.
        let (ids, skus): (Vec<_>, Vec<_>) = request
            .lines
            .keys()
            .partition(|r| matches!(r, ProductRef::Id(_)));
        let products = producto::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        producto::Column::Id.is_in(ids.iter().filter_map(|r| match r {
                            ProductRef::Id(id) => Some(*id),
                            ProductRef::Sku(_) => None,
                        })),
                    )
                    .add(
                        producto::Column::Sku.is_in(skus.iter().filter_map(|r| match r {
                            ProductRef::Sku(sku) => Some(sku.clone()),
                            ProductRef::Id(_) => None,
                        })),
                    ),
            )
            .all(&*txn)
            .await?;

        // Resolve every line, merging lines that name one product twice.
        let mut wanted: BTreeMap<i64, (&producto::Model, i64)> = BTreeMap::new();
        for (reference, qty) in &request.lines {
            let product = products.iter().find(|p| match reference {
                ProductRef::Id(id) => p.id == *id,
                ProductRef::Sku(sku) => p.sku == *sku,
            });
            let product = found(product, "producto")?;
            if !product.activo || product.eliminado_at.is_some() {
                return Err(ShopError::ProductUnavailable(product.sku.clone()));
            }
            let entry = wanted.entry(product.id).or_insert((product, 0));
            entry.1 = parse_quantity("items.cantidad", entry.1 + qty)?;
        }

        let too_large = || FieldError::new("items", "el total del pedido es demasiado grande");
        let mut total = Money::ZERO;
        let mut lines = Vec::with_capacity(wanted.len());
        for (product, qty) in wanted.values() {
            let unit = Money::from_cents(product.precio_centavos);
            let subtotal = unit.checked_mul(*qty).ok_or_else(too_large)?;
            total = total.checked_add(subtotal).ok_or_else(too_large)?;
            lines.push((*product, *qty, unit, subtotal));
        }

        let now = Utc::now();
        let order = pedido::ActiveModel {
            cliente_id: Set(customer.id),
            estado: Set(Estado::Pendiente.as_str().to_owned()),
            total_centavos: Set(total.cents()),
            notas: Set(request.notas),
            direccion_envio: Set(request.direccion_envio),
            conversacion_id: Set(conversacion_id),
            busqueda_id: Set(request.busqueda_id),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
        let items =
            pedido_item::Entity::insert_many(lines.iter().map(|(product, qty, unit, subtotal)| {
                pedido_item::ActiveModel {
                    pedido_id: Set(order.id),
                    producto_id: Set(product.id),
                    sku: Set(product.sku.clone()),
                    nombre: Set(product.nombre.clone()),
                    cantidad: Set(*qty),
                    precio_unitario_centavos: Set(unit.cents()),
                    subtotal_centavos: Set(subtotal.cents()),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
            }))
            .exec_with_returning(&*txn)
            .await?;

        for (product, qty, _, _) in &lines {
            let decremented = producto::Entity::update_many()
                .col_expr(
                    producto::Column::Stock,
                    Expr::col(producto::Column::Stock).sub(*qty),
                )
                .col_expr(producto::Column::UpdatedAt, Expr::value(now))
                .filter(producto::Column::Id.eq(product.id))
                .filter(producto::Column::Stock.gte(*qty))
                .filter(producto::Column::Activo.eq(true))
                .filter(producto::Column::EliminadoAt.is_null())
                .exec(&*txn)
                .await?;
            if decremented.rows_affected == 0 {
                // Out of stock, or deactivated since it was read above.
                let now = producto::Entity::find_by_id(product.id).one(&*txn).await?;
                return Err(match now {
                    Some(p) if p.activo && p.eliminado_at.is_none() => {
                        ShopError::InsufficientStock {
                            sku: product.sku.clone(),
                            requested: *qty,
                            available: p.stock,
                        }
                    }
                    _ => ShopError::ProductUnavailable(product.sku.clone()),
                });
            }
        }
        txn.commit().await?;
        tracing::info!(pedido_id = order.id, total = %total, "order created");
        let pedido = Pedido::new(order, items);
        // Nobody listening is not an error.
        let _ = self.created.send(pedido.clone());
        Ok(pedido)
    }

    pub async fn order(&self, id: i64) -> Result<Pedido, ShopError> {
        let db = &self.db;
        let order = found(
            pedido::Entity::find_by_id(id).one(db.conn()).await?,
            "pedido",
        )?;
        let mut items = load_items(db.conn(), &[id]).await?;
        Ok(Pedido::new(order, items.remove(&id).unwrap_or_default()))
    }

    #[tracing::instrument(skip(self))]
    pub async fn list_orders(&self, filter: FiltroPedidos) -> Result<Paged<Pedido>, ShopError> {
        let db = &self.db;
        let page = Page::parse(filter.limit, filter.offset)?;
        let mut query = pedido::Entity::find();
        if let Some(estado) = filter.estado {
            query = query.filter(pedido::Column::Estado.eq(estado.as_str()));
        }
        if let Some(cliente_id) = filter.cliente_id {
            query = query.filter(pedido::Column::ClienteId.eq(cliente_id));
        }
        let (desde, hasta) = parse_range(filter.desde.as_deref(), filter.hasta.as_deref())?;
        if let Some(d) = desde {
            query = query.filter(pedido::Column::CreatedAt.gte(d));
        }
        if let Some(h) = hasta {
            query = query.filter(pedido::Column::CreatedAt.lte(h));
        }
        let (orders, total) = db
            .page_of(
                query,
                |q| q.order_by_desc(pedido::Column::Id),
                page.limit,
                page.offset,
            )
            .await?;
        let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
        let mut items = load_items(db.conn(), &ids).await?;
        let orders = orders
            .into_iter()
            .map(|o| {
                let lines = items.remove(&o.id).unwrap_or_default();
                Pedido::new(o, lines)
            })
            .collect();
        Ok(page.of(orders, total))
    }

    /// Changes an order's state and/or notes. Cancelling restores the stock of its lines.
    #[tracing::instrument(skip(self, changes))]
    pub async fn update_order(&self, id: i64, changes: CambiosPedido) -> Result<Pedido, ShopError> {
        let db = &self.db;
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
                return Err(ShopError::InvalidTransition {
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
                return Err(ShopError::InvalidTransition {
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
    pub async fn cancel_order(&self, id: i64) -> Result<Pedido, ShopError> {
        self.update_order(
            id,
            CambiosPedido {
                estado: Some(Estado::Cancelado),
                ..Default::default()
            },
        )
        .await
    }
}
