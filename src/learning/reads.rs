//! What the event log says about customers, read for the recommendations: the
//! products clicked in a conversation, and those each customer clicked in the
//! conversations linked to them.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::events::CLICK;
use crate::db::Db;
use crate::db::entities::{conversacion, evento};

/// The products clicked in `chats`, most recent last, with when: at most `limit`
/// (the most recent ones).
pub async fn clicks(
    db: &Db,
    chats: &[String],
    limit: u64,
) -> Result<Vec<(i64, chrono::DateTime<Utc>)>, sea_orm::DbErr> {
    if chats.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<(Option<i64>, chrono::DateTime<Utc>)> = evento::Entity::find()
        .select_only()
        .column(evento::Column::ProductoId)
        .column(evento::Column::CreatedAt)
        .filter(evento::Column::ChatId.is_in(chats.iter().cloned()))
        .filter(evento::Column::Tipo.eq(CLICK))
        .filter(evento::Column::ProductoId.is_not_null())
        .order_by_desc(evento::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db.conn())
        .await?;
    rows.reverse();
    Ok(rows
        .into_iter()
        .filter_map(|(product, at)| Some((product?, at)))
        .collect())
}

/// The products each of `customers` clicked in the conversations linked to them (an
/// order of theirs was taken there), most recent last, with when: at most `limit` per
/// customer (the most recent ones). One query for all of them: the clicks are numbered
/// per customer, newest first, and only the first `limit` of each are read.
pub async fn customer_clicks(
    db: &Db,
    customers: &[i64],
    limit: u64,
) -> Result<HashMap<i64, Vec<(i64, chrono::DateTime<Utc>)>>, sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, WindowStatement};

    let mut out: HashMap<i64, Vec<(i64, chrono::DateTime<Utc>)>> = HashMap::new();
    if customers.is_empty() {
        return Ok(out);
    }
    let customer = (conversacion::Entity, conversacion::Column::ClienteId);
    let numbered = Query::select()
        .expr_as(Expr::col(customer), "cliente")
        .expr_as(Expr::col((evento::Entity, evento::Column::Id)), "evento")
        .expr_as(
            Expr::col((evento::Entity, evento::Column::ProductoId)),
            "producto",
        )
        .expr_as(
            Expr::col((evento::Entity, evento::Column::CreatedAt)),
            "cuando",
        )
        .expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            WindowStatement::partition_by(customer)
                .order_by((evento::Entity, evento::Column::Id), Order::Desc)
                .take(),
            "puesto",
        )
        .from(evento::Entity)
        .inner_join(
            conversacion::Entity,
            Expr::col((conversacion::Entity, conversacion::Column::Id))
                .equals((evento::Entity, evento::Column::ChatId)),
        )
        .and_where(Expr::col(customer).is_in(customers.iter().copied()))
        .and_where(Expr::col((evento::Entity, evento::Column::Tipo)).eq(CLICK))
        .and_where(Expr::col((evento::Entity, evento::Column::ProductoId)).is_not_null())
        .to_owned();
    let latest = Query::select()
        .columns(["cliente", "producto", "cuando"])
        .from_subquery(numbered, "numerados")
        .and_where(Expr::col("puesto").lte(limit))
        .order_by("cliente", Order::Asc)
        .order_by("evento", Order::Asc)
        .to_owned();
    for row in db.conn().query_all(&latest).await? {
        let customer: i64 = row.try_get("", "cliente")?;
        let product: i64 = row.try_get("", "producto")?;
        let at: chrono::DateTime<Utc> = row.try_get("", "cuando")?;
        out.entry(customer).or_default().push((product, at));
    }
    Ok(out)
}
