//! What customers did, read for their recommendations: the products they bought (from
//! the orders) and the products they clicked (from the event log), each read for a
//! whole batch of customers in one query.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait};

use super::data::Bought;
use super::train::Trained;
use super::{MAX_CLICKS, RecommendError, Recommender};
use crate::db::entities::{pedido, pedido_item};
use crate::shop::pedidos::Estado as EstadoPedido;

impl Recommender {
    /// The products each of `customers` bought (non-cancelled orders), oldest first, as
    /// items of the current generation, and the ids of all they bought; one query.
    pub(super) async fn histories(
        &self,
        customers: &[i64],
        trained: &Trained,
    ) -> Result<HashMap<i64, (Vec<Bought>, HashSet<i64>)>, RecommendError> {
        let mut rows: Vec<(i64, i64, i64, DateTime<Utc>)> = pedido_item::Entity::find()
            .select_only()
            .column(pedido::Column::ClienteId)
            .column(pedido_item::Column::ProductoId)
            .column(pedido::Column::Id)
            .column(pedido::Column::CreatedAt)
            .join(JoinType::InnerJoin, pedido_item::Relation::Pedido.def())
            .filter(pedido::Column::ClienteId.is_in(customers.iter().copied()))
            .filter(pedido::Column::Estado.ne(EstadoPedido::Cancelado.as_str()))
            .into_tuple()
            .all(self.db.conn())
            .await?;
        rows.sort_by_key(|&(customer, product, order, at)| (customer, at, order, product));
        let mut out: HashMap<i64, (Vec<Bought>, HashSet<i64>)> = customers
            .iter()
            .map(|&c| (c, (Vec::new(), HashSet::new())))
            .collect();
        for (customer, product, order, at) in rows {
            let Some((history, bought)) = out.get_mut(&customer) else {
                continue;
            };
            bought.insert(product);
            if let Some(item) = trained.items.item(product) {
                history.push(Bought {
                    item,
                    order: order as u32,
                    at: at.timestamp(),
                });
            }
        }
        Ok(out)
    }

    /// The products one customer bought: see [`Recommender::histories`].
    pub(super) async fn history(
        &self,
        customer: i64,
        trained: &Trained,
    ) -> Result<(Vec<Bought>, HashSet<i64>), RecommendError> {
        Ok(self
            .histories(&[customer], trained)
            .await?
            .remove(&customer)
            .unwrap_or_default())
    }

    /// The products clicked in `chats` (the most recent [`MAX_CLICKS`]), as items of
    /// the current generation, oldest first.
    pub(super) async fn clicks_in(
        &self,
        chats: &[String],
        trained: &Trained,
    ) -> Result<Vec<Bought>, RecommendError> {
        Ok(steps(
            crate::learning::reads::clicks(&self.db, chats, MAX_CLICKS).await?,
            trained,
        ))
    }

    /// The products each of `customers` clicked in the conversations linked to them
    /// (those an order of theirs was taken in), the most recent [`MAX_CLICKS`] of each,
    /// as items of the current generation, oldest first; one query.
    pub(super) async fn customers_clicks(
        &self,
        customers: &[i64],
        trained: &Trained,
    ) -> Result<HashMap<i64, Vec<Bought>>, RecommendError> {
        Ok(
            crate::learning::reads::customer_clicks(&self.db, customers, MAX_CLICKS)
                .await?
                .into_iter()
                .map(|(customer, clicks)| (customer, steps(clicks, trained)))
                .collect(),
        )
    }
}

/// Clicks as steps of a customer's history: items of `trained`, after every order.
fn steps(clicks: Vec<(i64, DateTime<Utc>)>, trained: &Trained) -> Vec<Bought> {
    clicks
        .into_iter()
        .filter_map(|(product, at)| {
            Some(Bought {
                item: trained.items.item(product)?,
                order: u32::MAX,
                at: at.timestamp(),
            })
        })
        .collect()
}
